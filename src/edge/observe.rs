//! The logging phase: the audit events of one request (one per security-relevant step, then
//! `HTTP_REQUEST`, all sharing `http.request.id`) and its metrics.
//!
//! A request the edge refused at one of its steps (`CORS_REJECTED`, `RATE_LIMITED`,
//! `AUTH_FAILED`) gives that one event, carrying the status and duration `HTTP_REQUEST` would
//! have: refusals are what floods are made of, and a second line per refusal doubled what a
//! flood writes to the audit sink.

use super::context::RequestContext;
use super::cors::CorsDecision;
use super::rate_limit::RateDecision;
use crate::request::AuthRecord;
use crate::telemetry::audit::{self, AuditEvent, action};
use crate::telemetry::metrics::{METRICS, RouteCode, RouteLabel, ToolLabel, ToolOutcomeLabels};

fn base_event<'a>(
    ctx: &'a RequestContext,
    action: &'static str,
    outcome: &'static str,
    method: &'a str,
    path: &'a str,
) -> AuditEvent<'a> {
    let mut event = AuditEvent::new(action, outcome);
    event.request_id = Some(ctx.request_id.as_str().into());
    event.source_ip = ctx.client_ip;
    event.method = Some(method.into());
    event.path = Some(path.into());
    event.trace_id = ctx.trace.as_ref().map(|trace| trace.trace_id.as_str().into());
    if let Some(principal) = &ctx.principal {
        event.user_id = Some(principal.subject.as_str().into());
        event.auth_method = Some(principal.method.as_str());
    }
    event
}

/// What pingora's own error lines say about a request: method, path and host. pingora's
/// default prints the path with its query, which may carry credentials (`?access_token=`).
pub fn request_summary(request: &pingora::http::RequestHeader) -> String {
    let host = super::limits::authority(request).unwrap_or("-");
    format!("{} {}, Host: {host}", request.method, request.uri.path())
}

/// The end of a request, however it was served: its audit events, metrics and debug line.
pub fn request_done(
    ctx: &RequestContext,
    request: &pingora::http::RequestHeader,
    status: u16,
    error: Option<&pingora::Error>,
) {
    finish_request(ctx, request.method.as_str(), request.uri.path(), status);
    tracing::debug!(
        request_id = %ctx.request_id,
        route = ctx.route.name(),
        method = %request.method,
        status,
        duration_us = ctx.started.elapsed().as_micros() as u64,
        error = error.map(|error| error.to_string()),
        "Request done"
    );
}

/// Emits the request's audit events and records its metrics.
pub fn finish_request(ctx: &RequestContext, method: &str, path: &str, status: u16) {
    let elapsed = ctx.started.elapsed();
    // A credential-session id is a credential: its path is logged as the template.
    let path = if ctx.route == super::route::Route::SessionEnd { "/sessions/{id}" } else { path };
    let route = ctx.route.name();
    METRICS.requests.get_or_create(&RouteCode { route, code: status }).inc();
    METRICS.request_duration.get_or_create(&RouteLabel { route }).observe(elapsed.as_secs_f64());
    // The one event of a refused request: the refusal, with the request's status and duration.
    let refusal = |action: &'static str, reason: &'static str| {
        let mut event = base_event(ctx, action, "failure", method, path);
        event.reason = Some(reason.into());
        // 0 when the client hung up before the answer went out.
        event.status = Some(status);
        event.duration_ns = Some(elapsed.as_nanos() as u64);
        event
    };
    if ctx.cors == CorsDecision::Rejected {
        METRICS.cors_rejected.inc();
        return audit::emit(refusal(action::CORS_REJECTED, "origin_not_allowed"));
    }
    if let Some(RateDecision::Limited { .. }) = ctx.rate_limit {
        METRICS.rate_limited.inc();
        return audit::emit(refusal(action::RATE_LIMITED, "rate_limited"));
    }
    match &ctx.records.auth {
        AuthRecord::NotChecked => {}
        AuthRecord::Succeeded => {
            let mut event = base_event(ctx, action::AUTH_SUCCESS, "success", method, path);
            // The key's thumbprint names the client key; the proof itself is never logged.
            event.dpop_jkt = ctx
                .principal
                .as_ref()
                .filter(|principal| principal.method == crate::request::AuthMethod::Dpop)
                .and_then(|principal| principal.dpop_jkt.as_deref())
                .map(Into::into);
            audit::emit(event);
        }
        AuthRecord::Failed(failure) => {
            METRICS
                .auth_failures
                .get_or_create(&crate::telemetry::metrics::ReasonLabel { reason: failure.reason() })
                .inc();
            return audit::emit(refusal(action::AUTH_FAILED, failure.reason()));
        }
    }
    if let Some(tool) = &ctx.records.tool {
        METRICS
            .tool_calls
            .get_or_create(&ToolOutcomeLabels { tool: tool.tool.clone(), outcome: tool.outcome.as_str() })
            .inc();
        if let Some(duration) = tool.upstream_duration {
            METRICS
                .upstream_duration
                .get_or_create(&ToolLabel { tool: tool.tool.clone() })
                .observe(duration.as_secs_f64());
        }
        let is_error = tool.outcome.is_error();
        let mut event =
            base_event(ctx, action::TOOL_EXECUTE, if is_error { "failure" } else { "success" }, method, path);
        event.tool = Some(tool.tool.as_str().into());
        event.mcp_method = ctx.records.mcp_method.as_deref().map(Into::into);
        event.is_error = Some(is_error);
        event.reason = is_error.then_some(tool.outcome.as_str().into());
        event.upstream_status = tool.upstream_status;
        event.duration_ns = tool.upstream_duration.map(|duration| duration.as_nanos() as u64);
        event.arguments = Some(std::borrow::Cow::Borrowed(&tool.arguments));
        audit::emit(event);
    }
    if let Some(record) = &ctx.records.session {
        let outcome = if record.action == action::SESSION_REJECTED { "failure" } else { "success" };
        let mut event = base_event(ctx, record.action, outcome, method, path);
        event.reason = record.reason.map(Into::into);
        event.session_id = record.session.as_deref().map(Into::into);
        audit::emit(event);
    }
    // Status 0: no response went out because the client hung up first (nginx's 499).
    let outcome = if (1..400).contains(&status) { "success" } else { "failure" };
    let mut event = base_event(ctx, action::HTTP_REQUEST, outcome, method, path);
    if status == 0 {
        event.reason = Some("client_closed_request".into());
    }
    event.status = Some(status);
    event.duration_ns = Some(elapsed.as_nanos() as u64);
    event.mcp_method = ctx.records.mcp_method.as_deref().map(Into::into);
    audit::emit(event);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_summary_leaves_out_the_query() {
        let mut request =
            pingora::http::RequestHeader::build("GET", b"/sse?access_token=secret-in-query", None).expect("request");
        request.insert_header("host", "edge.example").expect("host");
        assert_eq!(request_summary(&request), "GET /sse, Host: edge.example");
    }
}
