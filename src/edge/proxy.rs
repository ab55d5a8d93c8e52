//! pingora's `ProxyHttp` phases for the passthrough. Each method is a few lines that delegate
//! to the edge modules.
//!
//! Requests reach these phases only through `edge::app`, which ran the pipeline on them and
//! decided to proxy; `new_ctx` takes that request's context ([`with_decided`]).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};

use super::context::RequestContext;
use super::policy::PolicyHandle;
use super::respond;
use super::{limits, passthrough};
use crate::lifecycle::Lifecycle;

/// The public listener's request handler.
pub struct EdgeProxy {
    policy: PolicyHandle,
    lifecycle: Arc<Lifecycle>,
}

impl EdgeProxy {
    pub fn new(policy: PolicyHandle, lifecycle: Arc<Lifecycle>) -> Self {
        Self { policy, lifecycle }
    }
}

#[async_trait]
impl ProxyHttp for EdgeProxy {
    type CTX = RequestContext;

    /// No downstream modules: pingora's default adds a response-compression module that is
    /// disabled yet still built and called on every request.
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    fn new_ctx(&self) -> RequestContext {
        if let Some(decided) = DECIDED.try_with(|slot| slot.take()).ok().flatten() {
            return decided;
        }
        // The policy current when the request starts serves it to the end, across reloads.
        RequestContext::new(self.policy.load_full(), self.lifecycle.track_request())
    }

    async fn request_filter(&self, _downstream: &mut Session, ctx: &mut RequestContext) -> Result<bool> {
        if ctx.decided {
            return Ok(false);
        }
        // Every request reaches the proxy through `EdgeApp`, which ran the pipeline on it; one
        // that did not would skip the edge's policy, so it is refused, never proxied.
        tracing::error!(request_id = %ctx.request_id, "A request reached the proxy without the edge pipeline");
        Error::e_explain(ErrorType::InternalError, "request reached the proxy without the edge pipeline")
    }

    async fn upstream_peer(&self, _downstream: &mut Session, ctx: &mut RequestContext) -> Result<Box<HttpPeer>> {
        passthrough::acquire_breaker(ctx)?;
        match &ctx.policy.passthrough {
            Some(target) => Ok(passthrough::peer(target, ctx.policy.config.upstream.connect_timeout)),
            None => Error::e_explain(ErrorType::InternalError, "no passthrough peer for a proxied route"),
        }
    }

    async fn upstream_request_filter(
        &self,
        _downstream: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        match &ctx.policy.passthrough {
            Some(target) => passthrough::prepare_request(upstream_request, target, ctx),
            None => Ok(()),
        }
    }

    async fn request_body_filter(
        &self,
        _downstream: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        // Bodies without Content-Length (chunked, h2) are counted as they stream.
        let chunk_len = body.as_ref().map_or(0, Bytes::len);
        if limits::count_body(&mut ctx.body_bytes, chunk_len, &ctx.policy.config.limits).is_err() {
            return Error::e_explain(ErrorType::HTTPStatus(413), "request body over limits.max_body_bytes");
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _downstream: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        ctx.upstream_status = Some(upstream_response.status.as_u16());
        Ok(())
    }

    async fn response_filter(
        &self,
        _downstream: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        respond::remove_upstream_cors(upstream_response);
        respond::add_common_headers(upstream_response, ctx)
    }

    async fn fail_to_proxy(&self, downstream: &mut Session, error: &Error, ctx: &mut RequestContext) -> FailToProxy {
        let written = downstream.response_written().is_some();
        match passthrough::failure_reply(error, ctx, written) {
            Some(reply) => {
                let status = reply.status;
                let _ = respond::write(downstream, ctx, reply).await;
                FailToProxy { error_code: status, can_reuse_downstream: false }
            }
            None => FailToProxy { error_code: 0, can_reuse_downstream: false },
        }
    }

    fn request_summary(&self, downstream: &Session, _ctx: &RequestContext) -> String {
        super::observe::request_summary(downstream.req_header())
    }

    fn suppress_error_log(&self, _downstream: &Session, _ctx: &RequestContext, error: &Error) -> bool {
        // Upstream failures are already logged once, with the request id, by fail_to_proxy;
        // a client that went away is not an error of the proxy.
        matches!(error.esource(), pingora::ErrorSource::Upstream)
            || passthrough::client_went_away(error)
            || passthrough::client_sent_bad_framing(error)
    }

    async fn logging(&self, downstream: &mut Session, error: Option<&Error>, ctx: &mut RequestContext) {
        passthrough::settle_breaker(ctx, error);
        let status = downstream.response_written().map_or(0, |response| response.status.as_u16());
        super::observe::request_done(ctx, downstream.req_header(), status, error);
    }
}

tokio::task_local! {
    /// The context of a request the edge's application already decided to proxy, for
    /// [`EdgeProxy::new_ctx`] to take.
    static DECIDED: std::cell::Cell<Option<RequestContext>>;
}

/// Runs `proxying` (pingora's proxy serving one request) with the context the pipeline built
/// for that request: the proxy's phases continue from it instead of starting over.
pub async fn with_decided<F: std::future::Future>(mut ctx: RequestContext, proxying: F) -> F::Output {
    ctx.decided = true;
    DECIDED.scope(std::cell::Cell::new(Some(ctx)), proxying).await
}
