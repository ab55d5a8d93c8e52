//! The ordered request policy: one function, one line per step.

use std::sync::Arc;

use pingora::protocols::http::ServerSession;

use super::auth::{AuthRefusal, ProofTarget};
use super::context::RequestContext;
use super::cors::CorsDecision;
use super::rate_limit::RateDecision;
use super::route::Route;
use super::{client_ip, limits, request_id};
use crate::request::{AuthRecord, EdgeError, Reply, scopes};
use crate::store::StoreUnavailable;
use crate::telemetry::trace_context::TraceContext;

/// What the pipeline decided for a request.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Hand the request to pingora's upstream phases (passthrough).
    Proxy,
    /// Answer it with this reply.
    Answer(Reply),
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
pub async fn run(downstream: &mut ServerSession, ctx: &mut RequestContext) -> Decision {
    match decide(downstream, ctx).await {
        Ok(decision) => decision,
        Err(error) => {
            tracing::debug!(request_id = %ctx.request_id, ?error, "Request refused");
            Decision::Answer(error.into_reply(&ctx.request_id))
        }
    }
}

async fn decide(downstream: &mut ServerSession, ctx: &mut RequestContext) -> Result<Decision, EdgeError> {
    limits::check_head(downstream.req_header(), &ctx.policy.config.limits)?;
    ctx.cors = ctx.policy.cors.decide(downstream.req_header());
    ctx.route = Route::decide(downstream.req_header().uri.path(), &ctx.policy);
    rate_limit(ctx).await?;
    match &ctx.cors {
        CorsDecision::Rejected => {
            rate_limit_after_auth(downstream, ctx).await?;
            return Err(EdgeError::OriginNotAllowed);
        }
        CorsDecision::Preflight(allowed) => {
            let reply = ctx.policy.cors.preflight_reply(allowed);
            rate_limit_after_auth(downstream, ctx).await?;
            return Ok(Decision::Answer(reply));
        }
        CorsDecision::NoOrigin | CorsDecision::Allowed(_) => {}
    }
    let authenticated = authenticate(downstream, ctx).await;
    rate_limit_after_auth(downstream, ctx).await?;
    authenticated?;
    route(downstream, ctx).await
}

/// Step 1 (run by the phase before [`run`], so the request span can carry its ids): the
/// request id (a trusted proxy's, if well-formed), the client address and the trace.
pub fn identify(downstream: &ServerSession, ctx: &mut RequestContext) {
    ctx.downstream_tls = downstream.digest().is_some_and(|digest| digest.ssl_digest.is_some());
    let Some(peer) = downstream.client_addr().and_then(|address| address.as_inet()).map(|address| address.ip()) else {
        return;
    };
    let trusted = &ctx.policy.config.trusted_proxies;
    let headers = &downstream.req_header().headers;
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

/// How long a client waits when the store is down and `on_error: deny` refuses.
const STORE_RETRY_AFTER_SECONDS: u64 = 1;

/// Records a decision for the response headers and turns a refusal into its error.
fn rate_decision(ctx: &mut RequestContext, decision: Result<RateDecision, StoreUnavailable>) -> Result<(), EdgeError> {
    match decision {
        Ok(decision) => {
            ctx.rate_limit = Some(decision);
            match decision {
                RateDecision::Limited { retry_after_seconds } => {
                    Err(EdgeError::TooManyRequests { retry_after_seconds })
                }
                RateDecision::Admitted { .. } => Ok(()),
            }
        }
        Err(StoreUnavailable) => Err(EdgeError::StoreUnavailable { retry_after_seconds: STORE_RETRY_AFTER_SECONDS }),
    }
}

/// Step 4: the client IP, charged (`key: client_ip`) or only looked at (keyed by principal:
/// charged in [`rate_limit_after_auth`]).
async fn rate_limit(ctx: &mut RequestContext) -> Result<(), EdgeError> {
    let Some(limiter) = ctx.policy.rate_limiter.clone() else { return Ok(()) };
    let Some(client) = ctx.client_ip.filter(|_| ctx.route.is_rate_limited()) else { return Ok(()) };
    let decision = limiter.before_auth(client).await;
    if limiter.keys_by_principal() && matches!(decision, Ok(RateDecision::Admitted { .. })) {
        return Ok(());
    }
    rate_decision(ctx, decision)
}

/// After step 6 (or an answer before it), with `key: principal` or `principal_and_tool`:
/// the principal is charged, or the client IP when there is none. The tool a request calls
/// is read from what is known without its body: the REST path, or a stateless-era
/// `Mcp-Name` of a `tools/call` (the endpoint refuses one that differs from the body).
async fn rate_limit_after_auth(downstream: &ServerSession, ctx: &mut RequestContext) -> Result<(), EdgeError> {
    let Some(limiter) = ctx.policy.rate_limiter.clone().filter(|limiter| limiter.keys_by_principal()) else {
        return Ok(());
    };
    let Some(client) = ctx.client_ip.filter(|_| ctx.route.is_rate_limited()) else { return Ok(()) };
    let headers = &downstream.req_header().headers;
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let tool = match ctx.route {
        Route::ToolCall => downstream
            .req_header()
            .uri
            .path()
            .strip_prefix(crate::mcp::rest::TOOLS_PATH)
            .and_then(|rest| rest.strip_prefix('/')),
        Route::Mcp if header("mcp-method") == Some("tools/call") => header("mcp-name"),
        _ => None,
    };
    let owner = ctx.principal.as_ref().map(crate::request::Principal::owner_key);
    match limiter.after_auth(client, owner.as_deref(), tool).await {
        Ok(Some(decision)) => rate_decision(ctx, Ok(decision)),
        Ok(None) => Ok(()),
        Err(unavailable) => rate_decision(ctx, Err(unavailable)),
    }
}

/// Step 6, for every route that is not public. `/init` needs the edge's own credentials only
/// with `sessions.auth: edge`.
async fn authenticate(downstream: &ServerSession, ctx: &mut RequestContext) -> Result<(), EdgeError> {
    let session_route_is_public = matches!(ctx.route, Route::Init | Route::SessionEnd)
        && ctx.policy.config.sessions.auth == crate::config::SessionAuth::None;
    if ctx.route.is_public() || session_route_is_public {
        return Ok(());
    }
    let policy = Arc::clone(&ctx.policy);
    let request = downstream.req_header();
    let authorization = request.headers.get(http::header::AUTHORIZATION).map(|value| value.as_bytes());
    let proofs: Vec<&[u8]> = request.headers.get_all("dpop").iter().map(http::HeaderValue::as_bytes).collect();
    // The URI as this edge served it (RFC 9449 §4.3 check 9): its TLS status and the `Host`
    // or `:authority` it answered, unless `auth.jwt.dpop_public_url` overrides both.
    let authority = limits::authority(request).unwrap_or_default();
    let target = ProofTarget {
        proofs: &proofs,
        method: request.method.as_str(),
        scheme: if ctx.downstream_tls { "https" } else { "http" },
        authority,
        path: request.uri.path(),
    };
    match policy.auth.authenticate_request(authorization, &target).await {
        Ok(principal) => {
            ctx.records.auth = if principal.is_some() { AuthRecord::Succeeded } else { AuthRecord::NotChecked };
            ctx.principal = principal;
            Ok(())
        }
        Err(AuthRefusal::Failed(failure)) => {
            ctx.records.auth = AuthRecord::Failed(failure);
            tracing::info!(request_id = %ctx.request_id, reason = failure.reason(), "Authentication failed");
            Err(EdgeError::Unauthorized { failure, challenges: policy.challenges.for_failure(failure) })
        }
        Err(AuthRefusal::ReplayCacheFull { retry_after_seconds }) => {
            crate::telemetry::metrics::METRICS.dpop_replay_cache_full.inc();
            tracing::warn!(request_id = %ctx.request_id, "DPoP replay cache full; raise auth.jwt.dpop_replay_cache");
            Err(EdgeError::DpopReplayCacheFull { retry_after_seconds })
        }
        Err(AuthRefusal::StoreUnavailable) => {
            Err(EdgeError::StoreUnavailable { retry_after_seconds: STORE_RETRY_AFTER_SECONDS })
        }
    }
}

/// What the passthrough forwards (everything but TRACE; pingora refuses CONNECT).
const PASSTHROUGH_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// Step 7. The handlers' futures are boxed: each holds an upstream call's state, and inline
/// they would make every request's future (a refusal's, the passthrough's) that large, moved
/// and copied whole.
async fn route(downstream: &mut ServerSession, ctx: &mut RequestContext) -> Result<Decision, EdgeError> {
    let policy = Arc::clone(&ctx.policy);
    let gateway = &policy.gateway;
    let reply = match ctx.route {
        Route::Passthrough => {
            // TRACE echoes the request, credentials included, back to whoever sent it; no MCP
            // server needs it (nginx refuses it too).
            if downstream.req_header().method == http::Method::TRACE {
                return Err(EdgeError::MethodNotAllowed { allow: PASSTHROUGH_METHODS });
            }
            let required = policy.passthrough.as_ref().map(|target| target.scopes.as_slice()).unwrap_or_default();
            scopes::require(ctx.principal.as_ref(), required)?;
            return Ok(Decision::Proxy);
        }
        Route::Health => health(&downstream.req_header().method)?,
        Route::ResourceMetadata => match &policy.resource_metadata {
            Some(document) => Reply::json(200, &document.body),
            None => return Err(EdgeError::NotFound),
        },
        Route::Mcp => {
            let (caller, records) = ctx.caller_and_records();
            Box::pin(crate::mcp::endpoint::handle(gateway, downstream, &caller, records)).await?
        }
        Route::ToolList => crate::mcp::rest::list(gateway, downstream, &ctx.caller_and_records().0)?,
        Route::ToolCall => {
            let (caller, records) = ctx.caller_and_records();
            Box::pin(crate::mcp::rest::call(gateway, downstream, &caller, records)).await?
        }
        Route::Init => {
            let service = policy.credential_sessions.as_deref().ok_or(EdgeError::NotFound)?;
            let limit = policy.config.limits.max_body_bytes;
            let (caller, records) = ctx.caller_and_records();
            Box::pin(crate::credential_sessions::handlers::init(service, downstream, &caller, records, limit)).await?
        }
        Route::SessionEnd => {
            let service = policy.credential_sessions.as_deref().ok_or(EdgeError::NotFound)?;
            let (caller, records) = ctx.caller_and_records();
            crate::credential_sessions::handlers::end(service, downstream, &caller, records).await?
        }
        Route::NotFound => return Err(EdgeError::NotFound),
    };
    Ok(Decision::Answer(reply))
}

/// `/health`: liveness, for GET and HEAD.
fn health(method: &http::Method) -> Result<Reply, EdgeError> {
    if method == http::Method::GET || method == http::Method::HEAD {
        Ok(Reply::json(200, &serde_json::json!({"status": "ok"})))
    } else {
        Err(EdgeError::MethodNotAllowed { allow: "GET, HEAD" })
    }
}
