//! What a handler sees of the request: the head and body behind [`Downstream`], and the
//! [`Caller`] the pipeline established. Handlers never see pingora's session, so they can be
//! driven by the proxy phases today and by a leaner server loop tomorrow.

use bytes::Bytes;

use super::{EdgeError, Principal};
use crate::telemetry::trace_context::TraceContext;

/// The downstream request a handler answers.
#[async_trait::async_trait]
pub trait Downstream: Send + Sync {
    /// Method, URI and headers.
    fn head(&self) -> &http::request::Parts;

    /// The whole request body; `PayloadTooLarge` once it passes `limit` bytes, `BadRequest`
    /// when it cannot be read.
    async fn read_body(&mut self, limit: u64) -> Result<Bytes, EdgeError>;

    /// A header's value, when present and visible ASCII.
    fn header(&self, name: &str) -> Option<&str> {
        self.head().headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Who is calling and how the request is known, as the pipeline established it.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// `None` when the route is public or `auth.mode: none`.
    pub principal: Option<&'a Principal>,
    pub request_id: &'a str,
    /// The W3C trace the request belongs to; upstream calls carry a child of it.
    pub trace: Option<&'a TraceContext>,
}
