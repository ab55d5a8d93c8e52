//! Which route a request takes, decided once from its path and the policy; each handler
//! then checks the method it serves (405 names the allowed ones).

use super::Policy;
use crate::mcp::rest::TOOLS_PATH;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /health`: liveness kept from the original MCP server; never authenticated.
    Health,
    /// The MCP endpoint (`mcp.path`).
    Mcp,
    /// `POST /init` (credential sessions).
    Init,
    /// `DELETE /sessions/{id}`.
    SessionEnd,
    /// `GET /api/tools`.
    ToolList,
    /// `/api/tools/{name}`.
    ToolCall,
    /// RFC 9728 protected-resource metadata; never authenticated.
    ResourceMetadata,
    /// Anything else when `passthrough.url` is set.
    Passthrough,
    /// Anything else without a passthrough: JSON 404 (after authentication).
    NotFound,
}

impl Route {
    pub const ALL: [Route; 9] = [
        Route::Health,
        Route::Mcp,
        Route::Init,
        Route::SessionEnd,
        Route::ToolList,
        Route::ToolCall,
        Route::ResourceMetadata,
        Route::Passthrough,
        Route::NotFound,
    ];

    pub fn decide(path: &str, policy: &Policy) -> Self {
        if path == "/health" {
            Route::Health
        } else if policy.credential_sessions.is_some() && path == "/init" {
            Route::Init
        } else if policy.credential_sessions.is_some() && path.starts_with("/sessions/") {
            Route::SessionEnd
        } else if policy.serves_mcp() && path == policy.config.mcp.path {
            Route::Mcp
        } else if policy.serves_mcp() && path == TOOLS_PATH {
            Route::ToolList
        } else if policy.serves_mcp() && path.strip_prefix(TOOLS_PATH).is_some_and(|rest| rest.starts_with('/')) {
            Route::ToolCall
        } else if path == "/.well-known/oauth-protected-resource"
            || path.starts_with("/.well-known/oauth-protected-resource/")
        {
            Route::ResourceMetadata
        } else if policy.passthrough.is_some() {
            Route::Passthrough
        } else {
            Route::NotFound
        }
    }

    /// Routes that never need credentials.
    pub fn is_public(self) -> bool {
        matches!(self, Route::Health | Route::ResourceMetadata)
    }

    /// Every route but `/health` is rate limited, so probes never starve.
    pub fn is_rate_limited(self) -> bool {
        !matches!(self, Route::Health)
    }

    /// A low-cardinality name for logs and metrics (`telemetry::metrics::ROUTE_LABELS` lists
    /// them all, so every series exists from the start).
    pub fn name(self) -> &'static str {
        match self {
            Route::Health => "health",
            Route::ResourceMetadata => "resource_metadata",
            Route::Mcp => "mcp",
            Route::Init => "init",
            Route::SessionEnd => "session_end",
            Route::ToolList => "tools_list",
            Route::ToolCall => "tools_call",
            Route::Passthrough => "passthrough",
            Route::NotFound => "not_found",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Route;

    #[test]
    fn the_metrics_pre_register_every_route_name() {
        let names: Vec<&str> = Route::ALL.iter().map(|route| route.name()).collect();
        assert_eq!(names, crate::telemetry::metrics::ROUTE_LABELS);
    }
}
