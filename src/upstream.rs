//! Calls from the edge to the upstream REST API: the resilient client (pool, timeouts,
//! retries, budget, breaker), its state machines, and the `Bearer` header a call carries. It
//! knows no principals: which credential a call carries is decided by its caller.

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod client;
pub mod clock;
pub mod credentials;

pub use client::{CallEvent, UpstreamClient, UpstreamError, UpstreamReply, UpstreamRequest};
