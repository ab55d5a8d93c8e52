//! mcp-edge: a TLS-terminating edge proxy and MCP gateway on pingora.
//!
//! Start with `ARCHITECTURE.md` at the repository root: it maps these modules onto the
//! request path.

pub mod admin;
pub mod background;
pub mod config;
pub mod credential_sessions;
pub mod crypto;
pub mod demo;
pub mod edge;
pub mod healthcheck;
pub mod lifecycle;
pub mod listener;
pub mod mcp;
pub mod reload;
pub mod request;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod upstream;

#[cfg(test)]
mod layering;
