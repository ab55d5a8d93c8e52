//! mcp-edge: a TLS-terminating edge proxy and MCP gateway on pingora.
//!
//! Start with `ARCHITECTURE.md` at the repository root: it maps these modules onto the
//! request path.

pub mod config;
pub mod demo;
pub mod edge;
pub mod healthcheck;
pub mod lifecycle;
pub mod listener;
pub mod mcp;
pub mod reload;
pub mod server;
pub mod sessions;
pub mod telemetry;
pub mod tls;
pub mod upstream;
