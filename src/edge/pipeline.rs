//! The ordered request policy: one function, one line per step.

use pingora::Result;
use pingora::proxy::Session;

use super::context::RequestContext;
use super::cors::CorsDecision;
use super::observe::AuthRecord;
use super::rate_limit::RateDecision;
use super::respond::{self, EdgeError};
use super::route::Route;
use super::{auth, client_ip, limits, request_id};
use crate::telemetry::trace_context::TraceContext;

/// What the pipeline decided for a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Hand the request to pingora's upstream phases (passthrough).
    Proxy,
    /// The edge already wrote the response.
    Responded,
}

/// Runs the edge policy on a request and either answers it or lets it through.
///
/// The order is deliberate, cheapest and most general first:
/// 1. Identity (request id, client address) first: every response and log line needs it.
/// 2. Hygiene limits next: nothing else should parse an oversized or malformed head.
/// 3. The CORS decision and the route, which cost nothing to compute.
/// 4. Rate limiting before anything is answered or verified: preflights and refused origins
///    count against the client like any request (each writes audit lines, so an unmetered
///    kind of request would be free log flooding), and floods of bad tokens never reach token
///    verification (nginx runs `limit_req` before `auth_request` for the same reason).
///    `/health` is exempt so probes never starve.
/// 5. CORS answers before authentication: preflights carry no credentials and are answered
///    here, and a disallowed `Origin` is refused before it costs a token check.
/// 6. Authentication, for every route that is not public.
/// 7. The route.
pub async fn run(session: &mut Session, ctx: &mut RequestContext) -> Result<Decision> {
    if let Err(error) = limits::check_head(session.req_header(), &ctx.policy.config.limits) {
        return reject(session, ctx, error).await;
    }
    ctx.cors = ctx.policy.cors.decide(session.req_header());
    ctx.route = Route::decide(&session.req_header().method, session.req_header().uri.path(), &ctx.policy);
    if let Some(retry_after_seconds) = rate_limit(ctx) {
        return reject(session, ctx, EdgeError::TooManyRequests { retry_after_seconds }).await;
    }
    match ctx.cors {
        CorsDecision::Rejected => return reject(session, ctx, EdgeError::OriginNotAllowed).await,
        CorsDecision::Preflight(_) => {
            respond::write_preflight(session, ctx).await?;
            return Ok(Decision::Responded);
        }
        CorsDecision::NoOrigin | CorsDecision::Allowed(_) => {}
    }
    // `/init` needs the edge's own credentials only with `sessions.auth: edge`.
    let session_route_is_public = matches!(ctx.route, Route::Init | Route::SessionEnd)
        && ctx.policy.config.sessions.auth == crate::config::SessionAuth::None;
    if !ctx.route.is_public() && !session_route_is_public {
        let policy = std::sync::Arc::clone(&ctx.policy);
        let authorization = session.req_header().headers.get(http::header::AUTHORIZATION).map(|value| value.as_bytes());
        match policy.auth.authenticate(authorization).await {
            Ok(principal) => {
                ctx.auth_record = if principal.is_some() { AuthRecord::Succeeded } else { AuthRecord::NotChecked };
                ctx.principal = principal;
            }
            Err(failure) => {
                ctx.auth_record = AuthRecord::Failed(failure);
                tracing::info!(request_id = %ctx.request_id, reason = failure.reason(), "Authentication failed");
                return reject(session, ctx, EdgeError::Unauthorized(failure)).await;
            }
        }
    }
    route(session, ctx).await
}

/// Step 1 (run by the phase before [`run`], so the request span can carry its ids): the
/// request id (a trusted proxy's, if well-formed), the client address and the trace.
pub fn identify(session: &Session, ctx: &mut RequestContext) {
    ctx.downstream_tls = session.digest().is_some_and(|digest| digest.ssl_digest.is_some());
    let Some(peer) = session.client_addr().and_then(|address| address.as_inet()).map(|address| address.ip()) else {
        return;
    };
    let trusted = &ctx.policy.config.trusted_proxies;
    let headers = &session.req_header().headers;
    let forwarded_for = headers.get_all("x-forwarded-for").iter().map(http::HeaderValue::as_bytes);
    ctx.peer_ip = Some(client_ip::canonical(peer));
    ctx.client_ip = Some(client_ip::resolve(peer, forwarded_for, trusted));
    let peer_trusted = client_ip::is_trusted(client_ip::canonical(peer), trusted);
    if peer_trusted
        && let Some(incoming) = headers.get("x-request-id").and_then(|value| value.to_str().ok())
        && request_id::is_well_formed(incoming)
    {
        ctx.request_id = incoming.to_string();
    }
    let traceparent = headers.get("traceparent").and_then(|value| value.to_str().ok());
    let mut trace = TraceContext::from_request(traceparent, &ctx.request_id);
    ctx.span = crate::telemetry::trace_context::request_span(&mut trace, &ctx.request_id);
    ctx.trace = Some(trace);
}

/// Step 4: `Some(retry_after_seconds)` when the client is over its rate.
fn rate_limit(ctx: &mut RequestContext) -> Option<u64> {
    let limiter = ctx.policy.rate_limiter.as_ref()?;
    if !ctx.route.is_rate_limited() {
        return None;
    }
    let decision = limiter.check(ctx.client_ip?);
    ctx.rate_limit = Some(decision);
    match decision {
        RateDecision::Limited { retry_after_seconds } => Some(retry_after_seconds),
        RateDecision::Admitted { .. } => None,
    }
}

/// What the passthrough forwards (everything but TRACE; pingora refuses CONNECT).
const PASSTHROUGH_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// Step 7.
async fn route(session: &mut Session, ctx: &mut RequestContext) -> Result<Decision> {
    match ctx.route {
        Route::Passthrough => {
            // TRACE echoes the request, credentials included, back to whoever sent it; no MCP
            // server needs it (nginx refuses it too).
            if session.req_header().method == http::Method::TRACE {
                return reject(session, ctx, EdgeError::MethodNotAllowed { allow: PASSTHROUGH_METHODS }).await;
            }
            let policy = std::sync::Arc::clone(&ctx.policy);
            let required = policy.passthrough.as_ref().map(|target| target.scopes.as_slice()).unwrap_or_default();
            if !auth::scopes::missing_scopes(ctx.principal.as_ref(), required).is_empty() {
                ctx.scope_challenge =
                    http::HeaderValue::try_from(auth::scopes::insufficient_scope_challenge(required)).ok();
                return reject(session, ctx, EdgeError::InsufficientScope).await;
            }
            Ok(Decision::Proxy)
        }
        Route::Health => {
            let method = &session.req_header().method;
            if method == http::Method::GET || method == http::Method::HEAD {
                respond::write_json(session, ctx, 200, &serde_json::json!({"status": "ok"}), &[]).await?;
                Ok(Decision::Responded)
            } else {
                reject(session, ctx, EdgeError::MethodNotAllowed { allow: "GET, HEAD" }).await
            }
        }
        Route::ResourceMetadata => match &ctx.policy.resource_metadata {
            Some(document) => {
                respond::write_json(session, ctx, 200, &document.body, &[]).await?;
                Ok(Decision::Responded)
            }
            None => reject(session, ctx, EdgeError::NotFound).await,
        },
        Route::Mcp => {
            crate::mcp::endpoint::handle(session, ctx).await?;
            Ok(Decision::Responded)
        }
        Route::Init => {
            crate::sessions::init::init(session, ctx).await?;
            Ok(Decision::Responded)
        }
        Route::SessionEnd => {
            let path = session.req_header().uri.path().to_string();
            let id = path.strip_prefix("/sessions/").unwrap_or_default();
            crate::sessions::init::end(session, ctx, id).await?;
            Ok(Decision::Responded)
        }
        Route::ToolList => {
            crate::mcp::rest::list(session, ctx).await?;
            Ok(Decision::Responded)
        }
        Route::ToolCall => {
            let path = session.req_header().uri.path().to_string();
            let name = path.strip_prefix("/api/tools/").unwrap_or_default();
            crate::mcp::rest::call(session, ctx, name).await?;
            Ok(Decision::Responded)
        }
        Route::NotFound => reject(session, ctx, EdgeError::NotFound).await,
    }
}

async fn reject(session: &mut Session, ctx: &RequestContext, error: EdgeError) -> Result<Decision> {
    tracing::debug!(request_id = %ctx.request_id, status = error.status(), ?error, "Request refused at the edge");
    respond::write_error(session, ctx, error).await?;
    Ok(Decision::Responded)
}
