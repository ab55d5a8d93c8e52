//! The ordered request policy: one function, one line per step.

use pingora::Result;
use pingora::proxy::Session;

use super::context::RequestContext;
use super::respond::{self, EdgeError};
use super::route::Route;

/// What the pipeline decided for a request.
#[derive(Debug)]
pub enum Decision {
    /// Hand the request to pingora's upstream phases (passthrough).
    Proxy,
    /// The edge already wrote the response.
    Responded,
}

/// Runs the edge policy on a request and either answers it or lets it through.
///
/// The order is deliberate. Identity (request id, client address) comes first because every
/// response and log line needs it. Public routes such as `/health` are answered before
/// credentials are looked at. Authentication comes last before routing, so later steps can
/// rely on a known principal; hygiene limits, CORS and rate limiting (which must run before
/// authentication, so floods of bad tokens never reach token checks) slot in above it.
pub async fn run(session: &mut Session, ctx: &mut RequestContext) -> Result<Decision> {
    ctx.client_ip = session.client_addr().and_then(|address| address.as_inet()).map(|address| address.ip());
    ctx.downstream_tls = session.digest().is_some_and(|digest| digest.ssl_digest.is_some());
    ctx.route = Route::decide(&session.req_header().method, session.req_header().uri.path(), &ctx.policy);

    if ctx.route == Route::Health {
        return answer_health(session, ctx).await;
    }
    if !ctx.route.is_public() {
        let authorization = session.req_header().headers.get(http::header::AUTHORIZATION).map(|value| value.as_bytes());
        if let Err(failure) = ctx.policy.bearer.authenticate(authorization) {
            tracing::debug!(request_id = %ctx.request_id, reason = failure.reason(), "Authentication failed");
            respond::write_error(session, ctx, &EdgeError::Unauthorized(failure)).await?;
            return Ok(Decision::Responded);
        }
    }
    match ctx.route {
        Route::Passthrough => Ok(Decision::Proxy),
        Route::NotFound | Route::Health => {
            respond::write_error(session, ctx, &EdgeError::NotFound).await?;
            Ok(Decision::Responded)
        }
    }
}

async fn answer_health(session: &mut Session, ctx: &RequestContext) -> Result<Decision> {
    let method = &session.req_header().method;
    if method == http::Method::GET || method == http::Method::HEAD {
        respond::write_json(session, ctx, 200, &serde_json::json!({"status": "ok"}), &[]).await?;
    } else {
        respond::write_error(session, ctx, &EdgeError::MethodNotAllowed { allow: "GET, HEAD" }).await?;
    }
    Ok(Decision::Responded)
}
