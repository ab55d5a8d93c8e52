//! Calls from the edge to the upstream REST API: the pooled client and the credentials a
//! call carries.

pub mod client;
pub mod credentials;

pub use client::{UpstreamClient, UpstreamError, UpstreamReply, UpstreamRequest};
