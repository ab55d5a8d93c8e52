//! MCP telemetry (OpenTelemetry MCP semantic conventions, DESIGN.md §21): the span of one MCP
//! request and the `mcp.server.operation.duration` histogram
//! (`mcp_server_operation_duration_seconds`).
//!
//! The span is named `tools/call {tool}` for a call of a catalogued tool, else the method
//! (`tools/list`; `other` for a method the edge does not serve, so a client cannot mint span
//! names), and carries `mcp.method.name`, `mcp.protocol.version`, `mcp.session.id` (a digest,
//! never the id), `jsonrpc.request.id`, `gen_ai.tool.name`, `gen_ai.operation.name`
//! (`execute_tool`) and, when it failed, `error.type` (the JSON-RPC error code, `tool_error`
//! for a result with `isError`, or `refused` for an HTTP refusal). In the 2026-07-28 era a
//! `traceparent` in `params._meta` is honoured: the span continues that trace, and the
//! upstream call carries a child of it.

use std::time::Instant;

use serde_json::{Map, Value};

use crate::request::{EdgeError, Records};
use crate::telemetry::metrics::{METRICS, McpOperationLabels};
use crate::telemetry::trace_context::{self, TraceContext};

/// The methods the edge answers; any other is `other` in span names and labels.
const METHODS: [&str; 6] = ["initialize", "ping", "tools/list", "tools/call", "server/discover", "notifications"];

fn method_label(method: &str) -> &'static str {
    METHODS.iter().copied().find(|known| *known == method).unwrap_or("other")
}

/// The `_meta` `traceparent` of a 2026-07-28 request, as the trace it continues.
pub fn meta_trace(params: &Map<String, Value>, request_id: &str) -> Option<TraceContext> {
    let traceparent = params.get("_meta")?.get("traceparent")?.as_str()?;
    let context = TraceContext::from_request(Some(traceparent), request_id);
    context.is_continued().then_some(context)
}

/// One MCP request being observed: its span, and what its histogram sample is labelled with.
pub struct Operation {
    pub span: tracing::Span,
    method: &'static str,
    tool: Option<String>,
    started: Instant,
}

impl Operation {
    /// `tool` is the name of a catalogued tool (`None` for another method or an unknown tool).
    pub fn start(
        method: &str,
        tool: Option<&str>,
        id: &Value,
        version: Option<&str>,
        session_id: Option<&str>,
        meta_trace: Option<&TraceContext>,
    ) -> Self {
        let method = method_label(method);
        let name = tool.map_or_else(|| method.to_string(), |tool| format!("tools/call {tool}"));
        let span = tracing::info_span!(
            "mcp",
            otel.name = name.as_str(),
            mcp.method.name = method,
            mcp.protocol.version = version,
            mcp.session.id = session_id.map(crate::credential_sessions::store::id_digest),
            jsonrpc.request.id = id.to_string(),
            gen_ai.tool.name = tool,
            gen_ai.operation.name = tool.map(|_| "execute_tool"),
            error.type = tracing::field::Empty,
        );
        if let Some(trace) = meta_trace {
            trace_context::continue_trace(&span, trace);
        }
        Self { span, method, tool: tool.map(str::to_string), started: Instant::now() }
    }

    /// Records how the request ended: `error.type` on the span and one histogram sample.
    pub fn finish(self, error_type: Option<&'static str>) {
        if let Some(error_type) = error_type {
            self.span.record("error.type", error_type);
        }
        METRICS
            .mcp_operation_duration
            .get_or_create(&McpOperationLabels {
                mcp_method_name: self.method,
                gen_ai_tool_name: self.tool.unwrap_or_default(),
                error_type: error_type.unwrap_or_default(),
            })
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// The `error.type` of a request that ended with `outcome` (the tool record says whether a
/// result was an `isError`).
pub fn error_type<T>(outcome: &Result<T, EdgeError>, records: &Records) -> Option<&'static str> {
    match outcome {
        Ok(_) => records.tool.as_ref().filter(|tool| tool.outcome.is_error()).map(|_| "tool_error"),
        Err(EdgeError::Rpc(error)) => Some(error.kind.code_label()),
        Err(_) => Some("refused"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::request::{RpcError, RpcErrorKind, ToolOutcome, ToolRecord};

    #[test]
    fn method_labels_are_bounded() {
        assert_eq!(method_label("tools/call"), "tools/call");
        assert_eq!(method_label("resources/read"), "other");
        assert_eq!(method_label(&"x".repeat(9000)), "other");
    }

    #[test]
    fn error_types_name_the_code_or_the_tool_error() {
        let mut records = Records::default();
        assert_eq!(error_type(&Ok::<(), EdgeError>(()), &records), None);
        records.tool = Some(ToolRecord::new("t", ToolOutcome::ToolError, &json!({})));
        assert_eq!(error_type(&Ok::<(), EdgeError>(()), &records), Some("tool_error"));
        let mismatch = EdgeError::Rpc(RpcError::new(json!(1), RpcErrorKind::HeaderMismatch, "no"));
        assert_eq!(error_type(&Err::<(), _>(mismatch), &records), Some("-32020"));
        assert_eq!(error_type(&Err::<(), _>(EdgeError::NotFound), &records), Some("refused"));
    }

    #[test]
    fn only_a_valid_meta_traceparent_is_a_trace() {
        let meta = |traceparent: &str| {
            let Value::Object(params) = json!({"_meta": {"traceparent": traceparent}}) else { unreachable!() };
            params
        };
        let trace = meta_trace(&meta("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), "r").expect("trace");
        assert_eq!(trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(meta_trace(&meta("00-zz-00f067aa0ba902b7-01"), "r").is_none());
        assert!(meta_trace(&Map::new(), "r").is_none());
    }
}
