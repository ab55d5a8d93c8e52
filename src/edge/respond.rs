//! The one place where an edge decision becomes an HTTP response.
//!
//! Every response the edge writes itself goes through [`write_response`], which adds the
//! headers every response carries ([`add_common_headers`]: `x-request-id`, security headers,
//! `Vary: Origin`, CORS and rate-limit headers when they apply) and keeps the connection
//! alive: pingora's `respond_error*` would turn keep-alive off, costing the client a new TCP
//! and TLS handshake for every 401 or 429.

use bytes::Bytes;
use http::Method;
use http::header::{HeaderName, HeaderValue};
use pingora::Result;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use super::auth::AuthFailure;
use super::context::RequestContext;
use super::cors::{self, CorsDecision};
use super::rate_limit::RateDecision;

/// Errors the edge raises itself. The public message is generic; detail goes to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeError {
    BadRequest,
    /// A `Content-Length` that cannot be trusted: the message framing is unknown, so the
    /// connection must close (reusing it would invite request smuggling).
    InvalidContentLength,
    /// A `Transfer-Encoding` other than one `chunked`: a coding the edge does not implement
    /// (501, RFC 9112 §6.1). The connection closes for the same reason as above.
    UnsupportedTransferCoding,
    Unauthorized(AuthFailure),
    OriginNotAllowed,
    /// The principal lacks scopes the route requires (the challenge names them).
    InsufficientScope,
    /// `/init`: the API URL or the credentials were not accepted.
    CredentialsRejected,
    /// `/init`: the API could not be asked (down, slow, or an error).
    SessionValidationFailed,
    /// A tool call named a credential session that does not exist (or expired).
    UnknownSession,
    NotFound,
    MethodNotAllowed {
        allow: &'static str,
    },
    PayloadTooLarge,
    TooManyRequests {
        retry_after_seconds: u64,
    },
    HeadersTooLarge,
    Internal,
    BadGateway,
    /// The upstream's breaker is open: come back after the given seconds.
    ServiceUnavailable {
        retry_after_seconds: u64,
    },
    GatewayTimeout,
}

impl EdgeError {
    pub fn status(self) -> u16 {
        match self {
            EdgeError::BadRequest | EdgeError::InvalidContentLength => 400,
            EdgeError::Unauthorized(_) | EdgeError::CredentialsRejected | EdgeError::UnknownSession => 401,
            EdgeError::OriginNotAllowed | EdgeError::InsufficientScope => 403,
            EdgeError::NotFound => 404,
            EdgeError::MethodNotAllowed { .. } => 405,
            EdgeError::PayloadTooLarge => 413,
            EdgeError::TooManyRequests { .. } => 429,
            EdgeError::HeadersTooLarge => 431,
            EdgeError::Internal | EdgeError::SessionValidationFailed => 500,
            EdgeError::UnsupportedTransferCoding => 501,
            EdgeError::BadGateway => 502,
            EdgeError::ServiceUnavailable { .. } => 503,
            EdgeError::GatewayTimeout => 504,
        }
    }

    fn public_message(self) -> &'static str {
        match self {
            EdgeError::BadRequest | EdgeError::InvalidContentLength => "bad request",
            EdgeError::Unauthorized(_) | EdgeError::CredentialsRejected => "unauthorized",
            EdgeError::UnknownSession => "unknown or expired session",
            EdgeError::SessionValidationFailed => "could not validate the credentials",
            EdgeError::OriginNotAllowed => "origin not allowed",
            EdgeError::InsufficientScope => "insufficient scope",
            EdgeError::NotFound => "not found",
            EdgeError::MethodNotAllowed { .. } => "method not allowed",
            EdgeError::PayloadTooLarge => "request body too large",
            EdgeError::TooManyRequests { .. } => "too many requests",
            EdgeError::HeadersTooLarge => "request headers too large",
            EdgeError::Internal => "internal error",
            EdgeError::UnsupportedTransferCoding => "unsupported transfer coding",
            EdgeError::BadGateway => "bad gateway",
            EdgeError::ServiceUnavailable { .. } => "upstream unavailable",
            EdgeError::GatewayTimeout => "gateway timeout",
        }
    }

    fn extra_headers(self, ctx: &RequestContext) -> Vec<(HeaderName, HeaderValue)> {
        match self {
            EdgeError::MethodNotAllowed { allow } => vec![(http::header::ALLOW, HeaderValue::from_static(allow))],
            EdgeError::Unauthorized(_) => {
                vec![(http::header::WWW_AUTHENTICATE, ctx.policy.unauthorized_challenge.clone())]
            }
            EdgeError::InsufficientScope => {
                ctx.scope_challenge.iter().map(|value| (http::header::WWW_AUTHENTICATE, value.clone())).collect()
            }
            EdgeError::TooManyRequests { retry_after_seconds }
            | EdgeError::ServiceUnavailable { retry_after_seconds } => {
                vec![(http::header::RETRY_AFTER, HeaderValue::from(retry_after_seconds))]
            }
            _ => Vec::new(),
        }
    }
}

/// Headers every response carries, proxied or self-written.
pub fn add_common_headers(response: &mut ResponseHeader, ctx: &RequestContext) -> Result<()> {
    response.insert_header("x-request-id", ctx.request_id.as_str())?;
    response.insert_header("x-content-type-options", "nosniff")?;
    add_vary_origin(response)?;
    if let CorsDecision::Allowed(allowed) = &ctx.cors {
        response.insert_header(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed.allow_origin.clone())?;
        if allowed.credentials {
            response.insert_header(http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true")?;
        }
        response.insert_header(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, cors::EXPOSE_HEADERS)?;
    }
    if let Some(decision) = ctx.rate_limit {
        let (remaining, reset_seconds) = match decision {
            RateDecision::Admitted { remaining, reset_seconds } => (remaining, reset_seconds),
            RateDecision::Limited { retry_after_seconds } => (0, retry_after_seconds),
        };
        response.insert_header("ratelimit-policy", ctx.policy.rate_limit_policy.clone())?;
        response.insert_header("ratelimit", format!("\"default\";r={remaining};t={reset_seconds}"))?;
    }
    Ok(())
}

/// The edge owns CORS: upstream CORS headers would contradict ours.
pub fn remove_upstream_cors(response: &mut ResponseHeader) {
    let names: Vec<HeaderName> =
        response.headers.keys().filter(|name| name.as_str().starts_with("access-control-")).cloned().collect();
    for name in names {
        response.remove_header(&name);
    }
}

fn add_vary_origin(response: &mut ResponseHeader) -> Result<()> {
    let mentions_origin = response
        .headers
        .get_all(http::header::VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| {
            let token = token.trim();
            token.eq_ignore_ascii_case("origin") || token == "*"
        });
    if !mentions_origin {
        response.append_header(http::header::VARY, HeaderValue::from_static("Origin"))?;
    }
    Ok(())
}

/// Writes `{"error": ..., "request_id": ...}` with the error's status and headers.
pub async fn write_error(session: &mut Session, ctx: &RequestContext, error: EdgeError) -> Result<()> {
    if matches!(error, EdgeError::InvalidContentLength | EdgeError::UnsupportedTransferCoding) {
        session.set_keepalive(None);
    }
    #[derive(serde::Serialize)]
    struct ErrorBody<'a> {
        error: &'static str,
        request_id: &'a str,
    }
    let body = ErrorBody { error: error.public_message(), request_id: &ctx.request_id };
    write_json(session, ctx, error.status(), &body, &error.extra_headers(ctx)).await
}

/// Writes a JSON response and keeps the connection reusable.
pub async fn write_json(
    session: &mut Session,
    ctx: &RequestContext,
    status: u16,
    body: &(impl serde::Serialize + ?Sized),
    headers: &[(HeaderName, HeaderValue)],
) -> Result<()> {
    // `to_vec` writes straight into the buffer; `Display` would go through `fmt` per token.
    let body = Bytes::from(serde_json::to_vec(body).map_err(|error| {
        pingora::Error::because(pingora::ErrorType::InternalError, "serializing a JSON body", error)
    })?);
    let mut response = ResponseHeader::build(status, Some(12 + headers.len()))?;
    response.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    response.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    response.insert_header(http::header::CACHE_CONTROL, "no-store")?;
    for (name, value) in headers {
        response.insert_header(name.clone(), value.clone())?;
    }
    write_response(session, ctx, response, Some(body)).await
}

/// Writes a response without a body (202 for MCP notifications, 204 for a DELETE).
pub async fn write_empty(
    session: &mut Session,
    ctx: &RequestContext,
    status: u16,
    headers: &[(HeaderName, HeaderValue)],
) -> Result<()> {
    let mut response = ResponseHeader::build(status, Some(8 + headers.len()))?;
    response.insert_header(http::header::CONTENT_LENGTH, 0)?;
    for (name, value) in headers {
        response.insert_header(name.clone(), value.clone())?;
    }
    write_response(session, ctx, response, None).await
}

/// Answers an allowed CORS preflight: 204 with the allowed methods and headers.
pub async fn write_preflight(session: &mut Session, ctx: &RequestContext) -> Result<()> {
    let CorsDecision::Preflight(allowed) = &ctx.cors else { return Ok(()) };
    let mut response = ResponseHeader::build(204, Some(12))?;
    response.insert_header(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed.allow_origin.clone())?;
    if allowed.credentials {
        response.insert_header(http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true")?;
    }
    response.insert_header(http::header::ACCESS_CONTROL_ALLOW_METHODS, cors::ALLOW_METHODS)?;
    response.insert_header(http::header::ACCESS_CONTROL_ALLOW_HEADERS, cors::ALLOW_HEADERS)?;
    response.insert_header(http::header::ACCESS_CONTROL_MAX_AGE, ctx.policy.cors.max_age.clone())?;
    response.insert_header(http::header::CONTENT_LENGTH, 0)?;
    write_response(session, ctx, response, None).await
}

/// How long the edge keeps reading an unread request body after answering early (a 401 or
/// 429 to a POST), so the connection can serve the next request. A client still sending
/// after this loses the connection.
const BODY_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Adds the common headers and writes the response, with its body unless the request was HEAD.
async fn write_response(
    session: &mut Session,
    ctx: &RequestContext,
    mut response: ResponseHeader,
    body: Option<Bytes>,
) -> Result<()> {
    add_common_headers(&mut response, ctx)?;
    // pingora closes a connection answered before its request body was read; drain the
    // body instead (bounded in time), as nginx does for 401 and 429.
    session.set_close_on_response_before_downstream_finish(false);
    session.set_total_drain_timeout(Some(BODY_DRAIN_TIMEOUT));
    let body = body.filter(|_| session.req_header().method != Method::HEAD);
    match body {
        Some(body) => {
            session.write_response_header(Box::new(response), false).await?;
            session.write_response_body(Some(body), true).await
        }
        None => session.write_response_header(Box::new(response), true).await,
    }
}
