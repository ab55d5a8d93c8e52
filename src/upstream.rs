//! Calls from the edge to the upstream REST API: the resilient client (pool, timeouts,
//! retries, budget, breaker), its state machines, and the credentials a call carries.

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod client;
pub mod clock;
pub mod credentials;

pub use client::{UpstreamClient, UpstreamError, UpstreamReply, UpstreamRequest};
