//! Per-request state (pingora's `CTX`): everything later phases and the logging phase need.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::Policy;
use super::cors::CorsDecision;
use super::rate_limit::RateDecision;
use super::route::Route;
use crate::lifecycle::InFlight;
use crate::request::{Caller, Principal, Records};
use crate::telemetry::trace_context::TraceContext;
use crate::upstream::breaker::Permit;

#[derive(Debug)]
pub struct RequestContext {
    pub request_id: String,
    pub started: Instant,
    /// The policy this request started with; a reload never changes it mid-request.
    pub policy: Arc<Policy>,
    /// The client for policy decisions (after trusted `X-Forwarded-For`).
    pub client_ip: Option<IpAddr>,
    /// The socket peer (what `X-Forwarded-For` gets appended upstream).
    pub peer_ip: Option<IpAddr>,
    pub route: Route,
    pub cors: CorsDecision,
    pub rate_limit: Option<RateDecision>,
    /// Who the request is from, once authenticated (`None` with `auth.mode: none`).
    pub principal: Option<Principal>,
    /// The W3C trace this request belongs to.
    pub trace: Option<TraceContext>,
    /// The passthrough breaker's permission for this request's proxied call.
    pub breaker_permit: Option<Permit>,
    /// `Retry-After` seconds when the passthrough breaker refused the call.
    pub unavailable_retry_after: Option<u64>,
    /// The status the passthrough upstream answered.
    pub upstream_status: Option<u16>,
    /// What the steps and the handler recorded, for the audit log and metrics.
    pub records: Records,
    /// The request's tracing span (exported to OTLP when configured).
    pub span: tracing::Span,
    /// Request body bytes seen so far (for bodies without `Content-Length`).
    pub body_bytes: u64,
    /// Whether the downstream connection is TLS (for `X-Forwarded-Proto`).
    pub downstream_tls: bool,
    _in_flight: InFlight,
}

impl RequestContext {
    pub fn new(policy: Arc<Policy>, in_flight: InFlight) -> Self {
        Self {
            request_id: super::request_id::new_request_id(),
            started: Instant::now(),
            policy,
            client_ip: None,
            peer_ip: None,
            route: Route::NotFound,
            cors: CorsDecision::NoOrigin,
            rate_limit: None,
            principal: None,
            trace: None,
            breaker_permit: None,
            unavailable_retry_after: None,
            upstream_status: None,
            records: Records::default(),
            span: tracing::Span::none(),
            body_bytes: 0,
            downstream_tls: false,
            _in_flight: in_flight,
        }
    }
}

impl RequestContext {
    /// The caller as a handler sees it, and the records it fills (borrowed apart, so both
    /// can be lent at once).
    pub fn caller_and_records(&mut self) -> (Caller<'_>, &mut Records) {
        let caller =
            Caller { principal: self.principal.as_ref(), request_id: &self.request_id, trace: self.trace.as_ref() };
        (caller, &mut self.records)
    }
}
