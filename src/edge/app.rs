//! The public listeners' HTTP application: every request is served here, on pingora's
//! server session, without pingora's proxy.
//!
//! pingora's `HttpProxy` costs every request the same machinery whether it proxies or not:
//! one boxed future of about 15 KB allocated and copied, the proxy `Session` with its cache
//! and module state, a shutdown waiter registered and removed, a boxed call per phase, the
//! request head cloned twice. Here the head is parsed once on pingora's server session, the
//! pipeline decides, and an answer (`/health`, every refusal, preflights, `/mcp`,
//! `/api/tools`, `/init`, `/sessions`) is written and logged at once; [`Decision::Proxy`]
//! goes to the edge's own upstream hop ([`Forwarder`]) on the same session.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::ErrorType;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use tracing::Instrument;

use super::context::RequestContext;
use super::forward::Forwarder;
use super::pipeline::{self, Decision};
use super::policy::PolicyHandle;
use super::{observe, respond};
use crate::lifecycle::Lifecycle;

/// The edge's `HttpServerApp`: the pipeline, then the passthrough's upstream hop.
pub struct EdgeApp {
    forwarder: Forwarder,
    policy: PolicyHandle,
    lifecycle: Arc<Lifecycle>,
}

impl EdgeApp {
    pub fn new(forwarder: Forwarder, policy: PolicyHandle, lifecycle: Arc<Lifecycle>) -> Self {
        Self { forwarder, policy, lifecycle }
    }

    /// The request's head, read as pingora's `HttpProxy` reads it: a malformed head gets pingora's 400
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
}

#[async_trait]
impl HttpServerApp for EdgeApp {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
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
            Decision::Proxy => {
                let span = ctx.span.clone();
                // Boxed: the forwarding future (two sessions, the exchange loop) is about 5 KB,
                // and inline it would be allocated and copied with every request's.
                Box::pin(self.forwarder.serve(session, &mut ctx).instrument(span)).await
            }
        }
    }
}
