//! The one place where an edge decision becomes an HTTP response.
//!
//! Every response the edge writes itself goes through [`write_response`], which adds the
//! headers every response carries (`x-request-id`, security headers) and keeps the
//! connection alive: pingora's `respond_error*` would turn keep-alive off, costing the
//! client a new TCP and TLS handshake for every 401 or 429.

use bytes::Bytes;
use http::Method;
use pingora::Result;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use super::auth::AuthFailure;
use super::context::RequestContext;

/// Errors the edge raises itself. The public message is generic; detail goes to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeError {
    NotFound,
    MethodNotAllowed { allow: &'static str },
    Unauthorized(AuthFailure),
    BadGateway,
    GatewayTimeout,
    Internal,
}

impl EdgeError {
    pub fn status(&self) -> u16 {
        match self {
            EdgeError::NotFound => 404,
            EdgeError::MethodNotAllowed { .. } => 405,
            EdgeError::Unauthorized(_) => 401,
            EdgeError::BadGateway => 502,
            EdgeError::GatewayTimeout => 504,
            EdgeError::Internal => 500,
        }
    }

    fn public_message(&self) -> &'static str {
        match self {
            EdgeError::NotFound => "not found",
            EdgeError::MethodNotAllowed { .. } => "method not allowed",
            EdgeError::Unauthorized(_) => "unauthorized",
            EdgeError::BadGateway => "bad gateway",
            EdgeError::GatewayTimeout => "gateway timeout",
            EdgeError::Internal => "internal error",
        }
    }

    fn extra_headers(&self) -> Vec<(&'static str, &'static str)> {
        match self {
            EdgeError::MethodNotAllowed { allow } => vec![("allow", allow)],
            EdgeError::Unauthorized(_) => {
                vec![("www-authenticate", "Bearer realm=\"mcp-edge\", error=\"invalid_token\"")]
            }
            _ => Vec::new(),
        }
    }
}

/// Headers every response carries, proxied or self-written.
pub fn add_common_headers(response: &mut ResponseHeader, ctx: &RequestContext) -> Result<()> {
    response.insert_header("x-request-id", ctx.request_id.as_str())?;
    response.insert_header("x-content-type-options", "nosniff")?;
    Ok(())
}

/// Writes `{"error": ..., "request_id": ...}` with the error's status and headers.
pub async fn write_error(session: &mut Session, ctx: &RequestContext, error: &EdgeError) -> Result<()> {
    let body = serde_json::json!({"error": error.public_message(), "request_id": ctx.request_id});
    write_json(session, ctx, error.status(), &body, &error.extra_headers()).await
}

/// Writes a JSON response and keeps the connection reusable.
pub async fn write_json(
    session: &mut Session,
    ctx: &RequestContext,
    status: u16,
    body: &serde_json::Value,
    headers: &[(&'static str, &'static str)],
) -> Result<()> {
    let body = Bytes::from(body.to_string());
    let mut response = ResponseHeader::build(status, Some(6 + headers.len()))?;
    response.insert_header("content-type", "application/json")?;
    response.insert_header("content-length", body.len().to_string())?;
    response.insert_header("cache-control", "no-store")?;
    for (name, value) in headers {
        response.insert_header(*name, *value)?;
    }
    add_common_headers(&mut response, ctx)?;
    let head_only = session.req_header().method == Method::HEAD;
    session.write_response_header(Box::new(response), head_only).await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}
