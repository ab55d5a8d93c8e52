//! What a request leaves for the audit log and the metrics: [`Records`], filled by the
//! pipeline and the handlers, read once by the logging phase (`edge::observe`).

use std::time::Duration;

use serde_json::Value;

use super::AuthFailure;
use crate::telemetry::audit;

/// Everything a request's steps and handler recorded about it.
#[derive(Debug, Default)]
pub struct Records {
    /// What authentication concluded.
    pub auth: AuthRecord,
    /// The JSON-RPC method of an MCP request.
    pub mcp_method: Option<String>,
    /// The tool call this request made, if any.
    pub tool: Option<ToolRecord>,
    /// The credential-session step this request made, if any.
    pub session: Option<SessionRecord>,
}

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

/// How a tool call ended: the `mcp_edge_tool_calls` label and the audit `event.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolOutcome {
    Success,
    ToolError,
    InvalidArguments,
    Denied,
    Unavailable,
    Timeout,
    UpstreamError,
}

impl ToolOutcome {
    /// The outcome of a finished call, from its REST status and `isError`.
    pub fn of(rest_status: u16, is_error: bool) -> Self {
        match (is_error, rest_status) {
            (false, _) => ToolOutcome::Success,
            (true, 400) => ToolOutcome::InvalidArguments,
            (true, 403) => ToolOutcome::Denied,
            (true, 503) => ToolOutcome::Unavailable,
            (true, 504) => ToolOutcome::Timeout,
            (true, 500..) => ToolOutcome::UpstreamError,
            (true, _) => ToolOutcome::ToolError,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ToolOutcome::Success => "success",
            ToolOutcome::ToolError => "tool_error",
            ToolOutcome::InvalidArguments => "invalid_arguments",
            ToolOutcome::Denied => "denied",
            ToolOutcome::Unavailable => "unavailable",
            ToolOutcome::Timeout => "timeout",
            ToolOutcome::UpstreamError => "upstream_error",
        }
    }

    pub fn is_error(self) -> bool {
        self != ToolOutcome::Success
    }
}

/// A tool call, for `TOOL_EXECUTE` and the tool metrics.
#[derive(Debug, Clone)]
pub struct ToolRecord {
    pub tool: String,
    pub outcome: ToolOutcome,
    pub upstream_status: Option<u16>,
    pub upstream_duration: Option<Duration>,
    /// Already redacted.
    pub arguments: Value,
}

impl ToolRecord {
    /// A record of a call to `tool`; the arguments are redacted here, so no record can hold
    /// a secret an argument carried.
    pub fn new(tool: &str, outcome: ToolOutcome, arguments: &Value) -> Self {
        Self {
            tool: tool.to_string(),
            outcome,
            upstream_status: None,
            upstream_duration: None,
            arguments: audit::redact(arguments, audit::redact_keys()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ToolOutcome;

    #[test]
    fn outcomes_follow_the_rest_status_of_an_error() {
        assert_eq!(ToolOutcome::of(200, false), ToolOutcome::Success);
        assert_eq!(ToolOutcome::of(502, false), ToolOutcome::Success, "not an error: whatever the status");
        assert_eq!(ToolOutcome::of(400, true), ToolOutcome::InvalidArguments);
        assert_eq!(ToolOutcome::of(404, true), ToolOutcome::ToolError);
        assert_eq!(ToolOutcome::of(502, true), ToolOutcome::UpstreamError);
        assert_eq!(ToolOutcome::of(504, true).as_str(), "timeout");
    }
}
