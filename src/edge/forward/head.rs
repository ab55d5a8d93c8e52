//! The request head the passthrough sends upstream: HTTP/1.1, origin-form, without the
//! downstream connection's own fields, with the edge's forwarding headers.
//!
//! The rules are RFC 9110 §7.6.1 and RFC 9112 as pingora's proxy applies them (its
//! `HttpUpstreamRequestPolicy::default`, or `deny_upgrades` without `passthrough.websocket`),
//! so moving the hop off pingora's proxy changed nothing a server sees:
//! - every field the client's `Connection` nominates is removed; a nomination of a field
//!   the edge writes (`Host`, `X-Forwarded-For/-Host/-Proto`), of a pseudo-header, of a
//!   non-token, or of more than [`MAX_NOMINATIONS`] fields refuses the request (400): each
//!   is a way to make the edge drop a header it vouches for;
//! - the standard hop-by-hop fields go (`Keep-Alive`, `Proxy-Connection`, `Proxy-*`, `TE`,
//!   `Trailer`, `Transfer-Encoding`, `Connection`, `Upgrade`, `HTTP2-Settings`), and so do
//!   the fields the edge writes or vouches for ([`passthrough::EDGE_WRITTEN`], and from an
//!   untrusted peer [`passthrough::UNTRUSTED_CLIENT_HEADERS`]);
//! - a WebSocket upgrade from an HTTP/1.1 client is written back as `Connection: Upgrade`
//!   and `Upgrade: websocket` when `passthrough.websocket` allows it; nothing else upgrades;
//! - a body without `Content-Length` (chunked, or HTTP/2 without one) goes chunked.

use http::header::{self, HeaderName};
use pingora::http::RequestHeader;

use super::super::context::RequestContext;
use super::super::passthrough;
use crate::config::Passthrough;
use crate::request::EdgeError;

/// The most fields one request's `Connection` may nominate.
pub const MAX_NOMINATIONS: usize = 10;

const HOP_BY_HOP: [&str; 10] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "connection",
    "upgrade",
    "http2-settings",
];

/// Fields the edge writes for the upstream; a client may not have them removed.
const PROTECTED: [&str; 4] = ["host", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"];

/// The head to send upstream for `downstream`, which has a body to follow when `has_body`.
pub fn upstream_head(
    downstream: &RequestHeader,
    has_body: bool,
    target: &Passthrough,
    ctx: &RequestContext,
) -> Result<RequestHeader, EdgeError> {
    let mut head = downstream.clone();
    let websocket = target.websocket
        && downstream.version == http::Version::HTTP_11
        && downstream
            .headers
            .get(header::UPGRADE)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    head.set_version(http::Version::HTTP_11);
    origin_form(&mut head)?;
    // One pass over the request's fields finds the ones to drop (usually none), where a
    // removal per listed name would look each up.
    let nominated = nominations(downstream)?;
    let keep_client_headers = passthrough::peer_trusted(ctx);
    let dropped: Vec<HeaderName> = head
        .headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            HOP_BY_HOP.contains(&name)
                || passthrough::EDGE_WRITTEN.contains(&name)
                || (!keep_client_headers && passthrough::UNTRUSTED_CLIENT_HEADERS.contains(&name))
                || nominated.iter().any(|nominee| nominee.as_str() == name)
        })
        .cloned()
        .collect();
    for name in dropped {
        head.remove_header(&name);
    }
    if websocket {
        head.insert_header(header::CONNECTION, "Upgrade").map_err(|_| EdgeError::Internal)?;
        head.insert_header(header::UPGRADE, "websocket").map_err(|_| EdgeError::Internal)?;
    }
    passthrough::prepare_request(&mut head, target, ctx).map_err(|_| EdgeError::Internal)?;
    if has_body && !head.headers.contains_key(header::CONTENT_LENGTH) {
        head.insert_header(header::TRANSFER_ENCODING, "chunked").map_err(|_| EdgeError::Internal)?;
    }
    Ok(head)
}

/// An absolute-form target (`GET http://host/path`) goes upstream as its path and query: the
/// authority is the upstream's (`Host`), and the original one travels in `X-Forwarded-Host`.
fn origin_form(head: &mut RequestHeader) -> Result<(), EdgeError> {
    let target = head.raw_path();
    if target.starts_with(b"/") || target == b"*" {
        return Ok(());
    }
    let path = head.uri.path_and_query().map_or("/", |path| path.as_str()).to_string();
    let uri = http::Uri::try_from(path).map_err(|_| EdgeError::BadRequest)?;
    head.set_uri(uri);
    Ok(())
}

/// The fields the request's `Connection` header nominates, checked.
fn nominations(request: &RequestHeader) -> Result<Vec<HeaderName>, EdgeError> {
    let mut names = Vec::new();
    let tokens = request
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|value| value.as_bytes().split(|byte| *byte == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|token| !token.is_empty());
    for token in tokens {
        if names.len() == MAX_NOMINATIONS || !token.iter().all(|byte| is_tchar(*byte)) {
            return Err(EdgeError::BadRequest);
        }
        // `HeaderName` lowercases, so no spelling escapes the protected list.
        let name = HeaderName::from_bytes(token).map_err(|_| EdgeError::BadRequest)?;
        if PROTECTED.contains(&name.as_str()) {
            return Err(EdgeError::BadRequest);
        }
        names.push(name);
    }
    Ok(names)
}

/// A `tchar` of RFC 9110 §5.6.2 (the bytes of a token); a `:` (a pseudo-header) is not one.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lines: &[(&str, &str)]) -> RequestHeader {
        let mut request = RequestHeader::build("GET", b"/ws", None).expect("request");
        for (name, value) in lines {
            request.append_header(name.to_string(), *value).expect("header");
        }
        request
    }

    #[test]
    fn nominated_fields_are_named_in_lower_case() {
        let names = nominations(&request(&[("connection", "keep-alive, X-Secret"), ("connection", "Upgrade")]))
            .expect("valid nominations");
        let names: Vec<&str> = names.iter().map(HeaderName::as_str).collect();
        assert_eq!(names, ["keep-alive", "x-secret", "upgrade"]);
    }

    #[test]
    fn nominating_a_field_the_edge_writes_or_a_non_token_is_refused() {
        for value in ["X-Forwarded-For", "host", "\"x-forwarded-for\"", ":authority", "a b", "x-forwarded-proto"] {
            let refused = nominations(&request(&[("connection", value)]));
            assert!(matches!(refused, Err(EdgeError::BadRequest)), "{value}");
        }
    }

    #[test]
    fn more_nominations_than_the_limit_are_refused() {
        let many = (0..=MAX_NOMINATIONS).map(|index| format!("x-{index}")).collect::<Vec<_>>().join(",");
        assert!(nominations(&request(&[("connection", many.as_str())])).is_err());
        let enough = (0..MAX_NOMINATIONS).map(|index| format!("x-{index}")).collect::<Vec<_>>().join(",");
        assert_eq!(
            nominations(&request(&[("connection", enough.as_str())])).expect("at the limit").len(),
            MAX_NOMINATIONS
        );
    }

    #[test]
    fn an_absolute_form_target_becomes_its_path_and_query() {
        let mut head = RequestHeader::build("GET", b"http://example.test/a/b?c=d", None).expect("request");
        origin_form(&mut head).expect("origin form");
        assert_eq!(head.raw_path(), b"/a/b?c=d");
        let mut head = RequestHeader::build("GET", b"/kept%2Fas/sent", None).expect("request");
        origin_form(&mut head).expect("origin form");
        assert_eq!(head.raw_path(), b"/kept%2Fas/sent");
    }
}
