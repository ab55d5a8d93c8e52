//! The logging phase: the audit events of one request (one per security-relevant step, then
//! `HTTP_REQUEST`, all sharing `http.request.id`) and its metrics.

use std::time::Duration;

use serde_json::Value;

use super::auth::AuthFailure;
use super::context::RequestContext;
use super::cors::CorsDecision;
use super::rate_limit::RateDecision;
use crate::telemetry::audit::{self, AuditEvent, action};
use crate::telemetry::metrics::{METRICS, RouteCode, RouteLabel, ToolLabel, ToolOutcomeLabels};

/// What authentication concluded for a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuthRecord {
    /// Public route or auth off: nothing to record.
    #[default]
    NotChecked,
    Succeeded,
    Failed(AuthFailure),
}

/// A credential-session step (`SESSION_INIT`, `SESSION_REJECTED`, `SESSION_END`).
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub action: &'static str,
    pub reason: Option<&'static str>,
    /// The session id's digest.
    pub session: Option<String>,
}

/// A tool call, for `TOOL_EXECUTE` and the tool metrics.
#[derive(Debug, Clone)]
pub struct ToolRecord {
    pub tool: String,
    /// `success`, `tool_error`, `invalid_arguments`, `denied`, `unavailable`, `timeout`, `upstream_error`.
    pub outcome: &'static str,
    pub is_error: bool,
    pub upstream_status: Option<u16>,
    pub upstream_duration: Option<Duration>,
    /// Already redacted.
    pub arguments: Value,
}

impl ToolRecord {
    /// The outcome label for a finished call, from its REST status and `isError`.
    pub fn outcome_for(rest_status: u16, is_error: bool) -> &'static str {
        match (is_error, rest_status) {
            (false, _) => "success",
            (true, 400) => "invalid_arguments",
            (true, 403) => "denied",
            (true, 503) => "unavailable",
            (true, 504) => "timeout",
            (true, 500..) => "upstream_error",
            (true, _) => "tool_error",
        }
    }

    pub fn new(tool: &str, outcome: &'static str, arguments: &Value) -> Self {
        Self {
            tool: tool.to_string(),
            outcome,
            is_error: outcome != "success",
            upstream_status: None,
            upstream_duration: None,
            arguments: audit::redact(arguments, audit::redact_keys()),
        }
    }
}

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
    let host = request
        .headers
        .get(http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri.authority().map(|authority| authority.as_str()))
        .unwrap_or("-");
    format!("{} {}, Host: {host}", request.method, request.uri.path())
}

/// Emits the request's audit events and records its metrics.
pub fn finish_request(ctx: &RequestContext, method: &str, path: &str, status: u16) {
    let elapsed = ctx.started.elapsed();
    // A credential-session id is a credential: its path is logged as the template.
    let path = if ctx.route == super::route::Route::SessionEnd { "/sessions/{id}" } else { path };
    if ctx.cors == CorsDecision::Rejected {
        METRICS.cors_rejected.inc();
        let mut event = base_event(ctx, action::CORS_REJECTED, "failure", method, path);
        event.reason = Some("origin_not_allowed".into());
        audit::emit(event);
    }
    if let Some(RateDecision::Limited { .. }) = ctx.rate_limit {
        METRICS.rate_limited.inc();
        let mut event = base_event(ctx, action::RATE_LIMITED, "failure", method, path);
        event.reason = Some("rate_limited".into());
        audit::emit(event);
    }
    match &ctx.auth_record {
        AuthRecord::NotChecked => {}
        AuthRecord::Succeeded => audit::emit(base_event(ctx, action::AUTH_SUCCESS, "success", method, path)),
        AuthRecord::Failed(failure) => {
            METRICS
                .auth_failures
                .get_or_create(&crate::telemetry::metrics::ReasonLabel { reason: failure.reason() })
                .inc();
            let mut event = base_event(ctx, action::AUTH_FAILED, "failure", method, path);
            event.reason = Some(failure.reason().into());
            // 401, or 0 when the client hung up before the answer went out.
            event.status = Some(status);
            audit::emit(event);
        }
    }
    if let Some(tool) = &ctx.tool_record {
        METRICS.tool_calls.get_or_create(&ToolOutcomeLabels { tool: tool.tool.clone(), outcome: tool.outcome }).inc();
        if let Some(duration) = tool.upstream_duration {
            METRICS
                .upstream_duration
                .get_or_create(&ToolLabel { tool: tool.tool.clone() })
                .observe(duration.as_secs_f64());
        }
        let mut event =
            base_event(ctx, action::TOOL_EXECUTE, if tool.is_error { "failure" } else { "success" }, method, path);
        event.tool = Some(tool.tool.as_str().into());
        event.mcp_method = ctx.mcp_method.as_deref().map(Into::into);
        event.is_error = Some(tool.is_error);
        event.reason = tool.is_error.then_some(tool.outcome.into());
        event.upstream_status = tool.upstream_status;
        event.duration_ns = tool.upstream_duration.map(|duration| duration.as_nanos() as u64);
        event.arguments = Some(std::borrow::Cow::Borrowed(&tool.arguments));
        audit::emit(event);
    }
    if let Some(record) = &ctx.session_record {
        let outcome = if record.action == action::SESSION_REJECTED { "failure" } else { "success" };
        let mut event = base_event(ctx, record.action, outcome, method, path);
        event.reason = record.reason.map(Into::into);
        event.session_id = record.session.as_deref().map(Into::into);
        audit::emit(event);
    }
    let route = ctx.route.name();
    METRICS.requests.get_or_create(&RouteCode { route, code: status }).inc();
    METRICS.request_duration.get_or_create(&RouteLabel { route }).observe(elapsed.as_secs_f64());
    // Status 0: no response went out because the client hung up first (nginx's 499).
    let outcome = if (1..400).contains(&status) { "success" } else { "failure" };
    let mut event = base_event(ctx, action::HTTP_REQUEST, outcome, method, path);
    if status == 0 {
        event.reason = Some("client_closed_request".into());
    }
    event.status = Some(status);
    event.duration_ns = Some(elapsed.as_nanos() as u64);
    event.mcp_method = ctx.mcp_method.as_deref().map(Into::into);
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
