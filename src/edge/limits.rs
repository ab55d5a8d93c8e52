//! Request hygiene: header size and count (431), body size (413), header names with `_`
//! (400), message framing and target (`Content-Length`, `Transfer-Encoding`, `Host`, the
//! request target: 400 or 501).
//! Checked on the parsed request head before anything else looks at it; bodies without a
//! `Content-Length` are counted as they stream.

use pingora::http::RequestHeader;

use crate::config::Limits;
use crate::request::EdgeError;

/// Bytes a header line costs on the wire besides name and value (`: ` and CRLF), as nginx
/// and Envoy count it.
const LINE_OVERHEAD: usize = 4;

/// Checks the request head against `limits`.
pub fn check_head(request: &RequestHeader, limits: &Limits) -> Result<(), EdgeError> {
    let headers = &request.headers;
    if headers.len() > limits.max_headers {
        return Err(EdgeError::HeadersTooLarge);
    }
    let request_line = request.method.as_str().len() + request.uri.to_string().len() + 12;
    let mut total = request_line;
    for (name, value) in headers {
        total += name.as_str().len() + value.len() + LINE_OVERHEAD;
        if limits.reject_underscore_headers && name.as_str().contains('_') {
            return Err(EdgeError::BadRequest);
        }
    }
    if total > limits.max_header_bytes {
        return Err(EdgeError::HeadersTooLarge);
    }
    // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without `Host` (h2
    // requests carry `:authority` instead, and HTTP/1.0 may omit it). pingora would forward it
    // with an empty `Host` of its own making.
    if request.version == http::Version::HTTP_11 && !headers.contains_key(http::header::HOST) {
        return Err(EdgeError::BadRequest);
    }
    check_target(request)?;
    check_transfer_encoding(request)?;
    match declared_body_length(request) {
        Ok(Some(length)) if length > limits.max_body_bytes => Err(EdgeError::PayloadTooLarge),
        Ok(_) => Ok(()),
        Err(()) => Err(EdgeError::InvalidContentLength),
    }
}

/// The request target must be origin-form (`/…`), absolute-form (pingora has checked it
/// against `Host`) or `*` for `OPTIONS`. pingora percent-encodes bytes it finds illegal in a
/// request line instead of refusing the line, so `GET  /a` (two spaces) would be forwarded with
/// the target `%20/a`, which no origin server routes like the edge did; RFC 9112 §3 asks for 400.
fn check_target(request: &RequestHeader) -> Result<(), EdgeError> {
    let target = request.raw_path();
    if target.first() == Some(&b'/') {
        return Ok(());
    }
    // pingora keeps an absolute-form target verbatim in `raw_path` and only its path in `uri`.
    let absolute_form =
        || http::Uri::try_from(target).is_ok_and(|uri| uri.scheme().is_some() && uri.authority().is_some());
    let asterisk = target == b"*" && request.method == http::Method::OPTIONS;
    if asterisk || absolute_form() { Ok(()) } else { Err(EdgeError::BadRequest) }
}

/// `Transfer-Encoding`, when present, must be one line saying exactly `chunked`, the only
/// coding the edge implements (nginx's rule). pingora accepts any list that ends in
/// `chunked` (`identity, chunked`, `gzip, chunked`, two `chunked` lines), decodes only the
/// chunking and forwards the rest of the list to nobody, so the upstream would get a body
/// whose codings it is never told about; a hop that read the list the other way (chunked
/// applied twice) would frame the body differently. RFC 9112 §6.1 asks for 501 for a coding
/// the server does not understand.
fn check_transfer_encoding(request: &RequestHeader) -> Result<(), EdgeError> {
    let mut values = request.headers.get_all(http::header::TRANSFER_ENCODING).iter();
    let Some(value) = values.next() else { return Ok(()) };
    let only_chunked = value.to_str().is_ok_and(|text| text.trim().eq_ignore_ascii_case("chunked"));
    if only_chunked && values.next().is_none() { Ok(()) } else { Err(EdgeError::UnsupportedTransferCoding) }
}

/// `Content-Length` when present; `Err` when it is not a single non-negative integer.
fn declared_body_length(request: &RequestHeader) -> Result<Option<u64>, ()> {
    let mut values = request.headers.get_all(http::header::CONTENT_LENGTH).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(());
    }
    let text = value.to_str().map_err(|_| ())?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    text.parse().map(Some).map_err(|_| ())
}

/// Adds a streamed body chunk to the running count; `Err` once it passes the limit.
pub fn count_body(seen: &mut u64, chunk_len: usize, limits: &Limits) -> Result<(), EdgeError> {
    *seen = seen.saturating_add(chunk_len as u64);
    if *seen > limits.max_body_bytes { Err(EdgeError::PayloadTooLarge) } else { Ok(()) }
}

/// The authority a request names: its `Host`, or the `:authority` of an absolute or h2
/// target.
pub fn authority(request: &RequestHeader) -> Option<&str> {
    request
        .headers
        .get(http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri.authority().map(|authority| authority.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_header_bytes: 1024,
            max_headers: 5,
            max_body_bytes: 100,
            reject_underscore_headers: true,
            header_timeout: std::time::Duration::from_secs(10),
            idle_timeout: std::time::Duration::from_secs(60),
            max_requests_per_connection: 10_000,
            max_connections: 4096,
            max_connections_per_ip: 0,
            h2_max_concurrent_streams: 100,
        }
    }

    #[expect(clippy::needless_pass_by_value, reason = "the cases read best as values")]
    fn check(headers: &[(&str, &str)], expected: Result<(), EdgeError>) {
        let mut request = RequestHeader::build("POST", b"/mcp", None).expect("request");
        request.append_header("host", "edge").expect("host");
        for (name, value) in headers {
            request.append_header(name.to_string(), *value).expect("header");
        }
        assert_eq!(check_head(&request, &limits()), expected, "{headers:?}");
    }

    #[test]
    fn ordinary_requests_pass() {
        check(&[("content-type", "application/json"), ("content-length", "100")], Ok(()));
    }

    #[test]
    fn too_many_or_too_large_headers_are_431() {
        let six: Vec<(&str, &str)> = vec![("a", "1"), ("b", "1"), ("c", "1"), ("d", "1"), ("e", "1"), ("f", "1")];
        check(&six, Err(EdgeError::HeadersTooLarge));
        let big = "x".repeat(1000);
        check(&[("cookie", &big)], Err(EdgeError::HeadersTooLarge));
    }

    #[test]
    fn underscores_in_names_are_400() {
        check(&[("x_forwarded_for", "1.2.3.4")], Err(EdgeError::BadRequest));
    }

    #[test]
    fn declared_bodies_over_the_limit_are_413_and_bad_lengths_400() {
        check(&[("content-length", "101")], Err(EdgeError::PayloadTooLarge));
        check(&[("content-length", "-1")], Err(EdgeError::InvalidContentLength));
        check(&[("content-length", "12abc")], Err(EdgeError::InvalidContentLength));
        check(&[("content-length", "5"), ("content-length", "5")], Err(EdgeError::InvalidContentLength));
    }

    #[test]
    fn transfer_encoding_other_than_one_chunked_is_501() {
        check(&[("transfer-encoding", "chunked")], Ok(()));
        check(&[("transfer-encoding", "Chunked ")], Ok(()));
        check(&[("transfer-encoding", "identity, chunked")], Err(EdgeError::UnsupportedTransferCoding));
        check(&[("transfer-encoding", "gzip")], Err(EdgeError::UnsupportedTransferCoding));
        check(
            &[("transfer-encoding", "chunked"), ("transfer-encoding", "chunked")],
            Err(EdgeError::UnsupportedTransferCoding),
        );
    }

    #[test]
    fn targets_that_are_no_request_target_form_are_400() {
        let target = |method: &str, target: &[u8]| {
            let mut request = RequestHeader::build(method, target, None).expect("request");
            request.append_header("host", "edge").expect("host");
            check_head(&request, &limits())
        };
        assert_eq!(target("GET", b"/a?b=c"), Ok(()));
        assert_eq!(target("GET", b"http://edge/a"), Ok(()));
        assert_eq!(target("OPTIONS", b"*"), Ok(()));
        assert_eq!(target("GET", b"%20/a"), Err(EdgeError::BadRequest));
        assert_eq!(target("GET", b"*"), Err(EdgeError::BadRequest));
        assert_eq!(target("GET", b"a/b"), Err(EdgeError::BadRequest));
        assert_eq!(target("GET", b"?a"), Err(EdgeError::BadRequest));
    }

    #[test]
    fn http_1_1_without_host_is_400() {
        let request = RequestHeader::build("GET", b"/", None).expect("request");
        assert_eq!(check_head(&request, &limits()), Err(EdgeError::BadRequest));
        let mut request = RequestHeader::build("GET", b"/", None).expect("request");
        request.set_version(http::Version::HTTP_10);
        assert_eq!(check_head(&request, &limits()), Ok(()));
    }

    #[test]
    fn streamed_bodies_are_counted() {
        let mut seen = 0;
        assert_eq!(count_body(&mut seen, 60, &limits()), Ok(()));
        assert_eq!(count_body(&mut seen, 40, &limits()), Ok(()));
        assert_eq!(count_body(&mut seen, 1, &limits()), Err(EdgeError::PayloadTooLarge));
    }
}
