//! End-to-end tests: the real binary over real TLS, a mock upstream, real signals.
//! One test binary (fast linking) with a module per area.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests fail loudly by design

#[path = "../support/mod.rs"]
mod support;

mod auth;
mod cli;
mod config;
mod connections;
mod dpop;
mod edge_policy;
mod h2_floods;
mod mcp;
mod mcp_protocol;
mod openapi;
mod passthrough;
mod reload;
mod resilience;
mod sessions;
mod shutdown;
mod smuggling;
mod store;
mod telemetry;
mod tls;
