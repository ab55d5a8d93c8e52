//! Request hygiene: header size and count (431), body size (413), header names with `_`
//! (400). Checked on the parsed request head before anything else looks at it; bodies
//! without a `Content-Length` are counted as they stream.

use pingora::http::RequestHeader;

use super::respond::EdgeError;
use crate::config::Limits;

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
    match declared_body_length(request) {
        Ok(Some(length)) if length > limits.max_body_bytes => Err(EdgeError::PayloadTooLarge),
        Ok(_) => Ok(()),
        Err(()) => Err(EdgeError::InvalidContentLength),
    }
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

    fn check(headers: &[(&str, &str)], expected: Result<(), EdgeError>) {
        let mut request = RequestHeader::build("POST", b"/mcp", None).expect("request");
        for (name, value) in headers {
            request.append_header(name.to_string(), *value).expect("header");
        }
        assert_eq!(check_head(&request, &limits()), expected, "{headers:?}");
    }

    #[test]
    fn ordinary_requests_pass() {
        check(&[("host", "edge"), ("content-type", "application/json"), ("content-length", "100")], Ok(()));
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
    fn streamed_bodies_are_counted() {
        let mut seen = 0;
        assert_eq!(count_body(&mut seen, 60, &limits()), Ok(()));
        assert_eq!(count_body(&mut seen, 40, &limits()), Ok(()));
        assert_eq!(count_body(&mut seen, 1, &limits()), Err(EdgeError::PayloadTooLarge));
    }
}
