//! The public listeners' HTTP application: the edge answers what it can itself, and hands
//! only the passthrough to pingora's proxy.
//!
//! pingora's `HttpProxy` costs every request the same machinery whether it proxies or not:
//! one boxed future of about 15 KB allocated and copied, the proxy `Session` with its cache
//! and module state, a shutdown waiter registered and removed, and a boxed call per phase.
//! `/health`, every refusal (401, 403, 429, 431, 413, 404, 405), preflights, `/mcp`,
//! `/api/tools`, `/init` and `/sessions` need none of it. So the request runs here first: the
//! head is parsed on pingora's server session, the pipeline decides, and an answer is written
//! and logged here, with the same headers, keep-alive and audit events as through the proxy.
//!
//! Only [`Decision::Proxy`] goes on to `HttpProxy`, with the decided [`RequestContext`]
//! (`proxy::with_decided`): its `request_filter` then does nothing, so no request is rate
//! limited or authenticated twice. An HTTP/2 session is handed on as it is (its request was
//! read with the stream); an HTTP/1 session has consumed its head, so a fresh session over
//! the same connection gets the head's bytes back as its prefix, followed by the bytes the
//! connection layer read past the head ([`BytesPastHead`]: pingora keeps its own copy of
//! them private), and pingora parses them again.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::ErrorType;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::protocols::http::v2::server::H2Options;
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use tracing::Instrument;

use super::context::RequestContext;
use super::forward::Forwarder;
use super::pipeline::{self, Decision};
use super::policy::PolicyHandle;
use super::proxy::{self, EdgeProxy};
use super::{observe, respond};
use crate::lifecycle::Lifecycle;

/// The bytes an HTTP/1 session's prefix holds past the request head (the start of a body),
/// given with the session by the connection layer as its connection context, for the
/// hand-off to the proxy.
#[derive(Debug)]
pub struct BytesPastHead(pub Bytes);

/// The edge's `HttpServerApp`: the pipeline, then pingora's proxy for the passthrough.
pub struct EdgeApp {
    proxy: Arc<HttpProxy<EdgeProxy>>,
    forwarder: Forwarder,
    policy: PolicyHandle,
    lifecycle: Arc<Lifecycle>,
}

impl EdgeApp {
    pub fn new(
        proxy: HttpProxy<EdgeProxy>,
        forwarder: Forwarder,
        policy: PolicyHandle,
        lifecycle: Arc<Lifecycle>,
    ) -> Self {
        Self { proxy: Arc::new(proxy), forwarder, policy, lifecycle }
    }

    /// The request's head, read as `HttpProxy` reads it: a malformed head gets pingora's 400
    /// and CONNECT its 405 (pingora does not proxy CONNECT), both closing the connection.
    async fn read_request(session: &mut ServerSession) -> Option<()> {
        match session.read_request().await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(error) => {
                if matches!(error.etype(), ErrorType::InvalidHTTPHeader) {
                    // Not the error itself: it quotes the head, credentials and all.
                    tracing::debug!("Malformed request head: 400");
                    let _ = session.respond_error(400).await;
                }
                session.shutdown().await;
                return None;
            }
        }
        if session.req_header().method == http::Method::CONNECT {
            let _ = session.respond_error(405).await;
            session.shutdown().await;
            return None;
        }
        Some(())
    }

    /// Writes the pipeline's answer and logs the request; the connection, if it may be kept.
    async fn answer(
        mut session: ServerSession,
        ctx: &mut RequestContext,
        reply: crate::request::Reply,
    ) -> Option<ReusedHttpStream> {
        let span = ctx.span.clone();
        let written = respond::write(&mut session, ctx, reply).instrument(span).await;
        let status = session.response_written().map_or(0, |response| response.status.as_u16());
        observe::request_done(ctx, session.req_header(), status, written.as_ref().err().map(|error| &**error));
        if written.is_err() {
            return None;
        }
        let settings = HttpPersistentSettings::for_session(&session);
        let reusable = session.finish().await.ok().flatten()?;
        Some(ReusedHttpStream::from_reusable_stream(reusable, settings))
    }

    /// Hands a request the pipeline let through to pingora's proxy.
    async fn proxy(
        self: &Arc<Self>,
        session: ServerSession,
        past_head: Option<Box<BytesPastHead>>,
        ctx: RequestContext,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let session = match session {
            ServerSession::H1(http1) => {
                let raw_head = http1.get_headers_raw_bytes();
                let past_head = past_head.as_ref().map_or(&[][..], |bytes| &bytes.0[..]);
                let mut head = BytesMut::with_capacity(raw_head.len() + past_head.len());
                head.extend_from_slice(&raw_head);
                head.extend_from_slice(past_head);
                let keepalive = http1.get_keepalive_timeout();
                let reuses_remaining = http1.get_keepalive_reuses_remaining();
                let mut fresh = ServerSession::new_http1(http1.into_inner());
                fresh.set_keepalive(keepalive);
                fresh.set_keepalive_reuses_remaining(reuses_remaining);
                fresh.set_pipelined_prefix(head);
                fresh
            }
            other => other,
        };
        proxy::with_decided(ctx, self.proxy.process_new_http(session, shutdown)).await
    }
}

#[async_trait]
impl HttpServerApp for EdgeApp {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let past_head = session.take_connection_user_context().and_then(|context| context.downcast().ok());
        Self::read_request(&mut session).await?;
        if *shutdown.borrow() {
            // Answer this request, but close the connection: the service is stopping.
            session.set_keepalive(None);
        }
        // The policy current when the request starts serves it to the end, across reloads.
        let mut ctx = RequestContext::new(self.policy.load_full(), self.lifecycle.track_request());
        pipeline::identify(&session, &mut ctx);
        let span = ctx.span.clone();
        let decision = pipeline::run(&mut session, &mut ctx).instrument(span).await;
        match decision {
            Decision::Answer(reply) => Self::answer(session, &mut ctx, reply).await,
            Decision::Proxy if forwards(&session) => {
                let span = ctx.span.clone();
                self.forwarder.serve(session, &mut ctx).instrument(span).await
            }
            Decision::Proxy => self.proxy(session, past_head, ctx, shutdown).await,
        }
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.proxy.server_options()
    }

    fn h2_options(&self) -> Option<H2Options> {
        self.proxy.h2_options()
    }

    async fn http_cleanup(&self) {
        self.proxy.http_cleanup().await;
    }
}

/// Whether the edge forwards the request itself rather than through pingora's proxy: an
/// HTTP/1 upgrade (pingora's proxy can drop the tunnel, see `edge::forward`).
fn forwards(session: &ServerSession) -> bool {
    session.is_upgrade_req()
}
