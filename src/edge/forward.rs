//! The passthrough's upstream hop over HTTP/1.1, driven from the edge's application on the
//! session the pipeline read (no second parse of the head, no proxy `Session`).
//!
//! One loop moves both directions at once, as a proxy must (a server may answer before the
//! body is in; an upgraded connection carries both ways): the client's body is read with
//! pingora's server session and written with its HTTP/1 client session, the response the
//! other way, each with pingora's own framing (chunked, `Content-Length`, close-delimited,
//! HEAD, 1xx). The request head is [`head::upstream_head`].
//!
//! A WebSocket upgrade is a tunnel from the `101` on, until either side closes. pingora
//! 0.9.1's proxy tears such a tunnel down when the server's `101` is read before the
//! request's own (empty) body end (cloudflare/pingora#946, open): the end of the upgrade
//! request's body is taken for the end of the tunnel, so the client gets the `101` and then
//! nothing. Here the request side of an upgrade ends only with the client's connection.
//!
//! Failures are answered as pingora's proxy answered them ([`passthrough::failure_reply`]):
//! 502, 504, 503 from the breaker, 400 for a malformed body, 413 over
//! `limits.max_body_bytes`; all close the connection.

pub mod head;

use pingora::connectors::TransportConnector;
use pingora::protocols::http::HttpTask;
use pingora::protocols::http::ServerSession;
use pingora::protocols::http::v1::client::HttpSession as UpstreamSession;
use pingora::{Error, ErrorType};

use super::context::RequestContext;
use super::{limits, observe, passthrough, respond};
use crate::request::EdgeError;

/// How a forwarded request ended, when it did not fail.
struct Forwarded {
    /// The downstream connection may serve another request.
    reusable: bool,
}

/// Why a forwarded request did not complete.
enum Failure {
    /// The edge refuses the request itself (an unsafe `Connection` header, a body over the
    /// limit), before anything reached the upstream or after.
    Refused(EdgeError),
    /// The connection to the upstream or the client broke, or the upstream misbehaved.
    Broken(Box<Error>),
}

/// The upstream hop: connects (pingora's connector: TCP, TLS with the peer's name and
/// verification) and forwards.
pub struct Forwarder {
    connector: TransportConnector,
}

impl Forwarder {
    pub fn new(connector: TransportConnector) -> Self {
        Self { connector }
    }

    /// Serves a request the pipeline decided to proxy; the connection, if it may be kept.
    pub async fn serve(
        &self,
        mut session: ServerSession,
        ctx: &mut RequestContext,
    ) -> Option<pingora::apps::ReusedHttpStream> {
        let (reply, error) = match self.forward(&mut session, ctx).await {
            Ok(Forwarded { reusable }) => {
                passthrough::settle_breaker(ctx, None);
                let status = session.response_written().map_or(0, |response| response.status.as_u16());
                observe::request_done(ctx, session.req_header(), status, None);
                if !reusable {
                    session.set_keepalive(None);
                }
                let settings = pingora::apps::HttpPersistentSettings::for_session(&session);
                let reusable = session.finish().await.ok().flatten()?;
                return Some(pingora::apps::ReusedHttpStream::from_reusable_stream(reusable, settings));
            }
            Err(Failure::Refused(refusal)) => {
                // The request never became a call the upstream can be judged by.
                ctx.breaker_permit = None;
                let written = session.response_written().is_some();
                ((!written).then(|| refusal.into_reply(&ctx.request_id).closing()), None)
            }
            Err(Failure::Broken(error)) => {
                let written = session.response_written().is_some();
                (passthrough::failure_reply(&error, ctx, written), Some(error))
            }
        };
        if let Some(reply) = reply {
            let _ = respond::write(&mut session, ctx, reply).await;
        }
        passthrough::settle_breaker(ctx, error.as_deref());
        let status = session.response_written().map_or(0, |response| response.status.as_u16());
        observe::request_done(ctx, session.req_header(), status, error.as_deref());
        session.set_keepalive(None);
        session.shutdown().await;
        None
    }

    async fn forward(&self, session: &mut ServerSession, ctx: &mut RequestContext) -> Result<Forwarded, Failure> {
        let policy = std::sync::Arc::clone(&ctx.policy);
        let Some(target) = &policy.passthrough else {
            return Err(Failure::Broken(Error::explain(
                ErrorType::InternalError,
                "no passthrough for a proxied route",
            )));
        };
        passthrough::acquire_breaker(ctx).map_err(Failure::Broken)?;
        let has_body = !session.is_body_empty();
        let request = head::upstream_head(session.req_header(), has_body, target, ctx).map_err(Failure::Refused)?;
        let peer = passthrough::peer(target, policy.config.upstream.connect_timeout);
        let stream = self.connector.new_stream(&*peer).await.map_err(|error| Failure::Broken(error.into_up()))?;
        let mut upstream = UpstreamSession::new_with_options(stream, &*peer);
        upstream.write_request_header(Box::new(request)).await.map_err(|error| Failure::Broken(error.into_up()))?;
        exchange(session, &mut upstream, ctx, has_body).await
    }
}

/// Moves the request body up and the response down until both are done (or, upgraded,
/// until either side closes).
async fn exchange(
    downstream: &mut ServerSession,
    upstream: &mut UpstreamSession,
    ctx: &mut RequestContext,
    has_body: bool,
) -> Result<Forwarded, Failure> {
    let up = |error: Box<Error>| Failure::Broken(error.into_up());
    let down = |error: Box<Error>| Failure::Broken(error.into_down());
    let mut request_done = !has_body;
    let mut response_done = false;
    let mut upgraded = false;
    while !(request_done && response_done) {
        tokio::select! {
            // Once the request body is in, this waits for the client to go away (an error
            // that ends the exchange), as pingora's proxy does.
            body = downstream.read_body_or_idle(request_done) => {
                let body = body.map_err(down)?;
                if upgraded {
                    upstream.maybe_upgrade_body_writer();
                    match body {
                        Some(bytes) => { upstream.write_body(&bytes).await.map_err(up)?; }
                        None => {
                            // The client closed its side: the tunnel ends.
                            let _ = upstream.finish_body().await;
                            return Ok(Forwarded { reusable: false });
                        }
                    }
                    continue;
                }
                if let Some(bytes) = &body {
                    limits::count_body(&mut ctx.body_bytes, bytes.len(), &ctx.policy.config.limits)
                        .map_err(Failure::Refused)?;
                    upstream.write_body(bytes).await.map_err(up)?;
                }
                if body.is_none() || downstream.is_body_done() {
                    upstream.finish_body().await.map_err(up)?;
                    request_done = true;
                }
            }
            task = upstream.read_response_task(), if !response_done => {
                let task = task.map_err(up)?;
                let task = match task {
                    HttpTask::Header(mut response, end) => {
                        let status = response.status.as_u16();
                        if response.status.is_informational() && status != 101 {
                            // `100 Continue` and the like: an HTTP/1 client may be waiting for
                            // it; HTTP/2 has no use for it here.
                            if !downstream.is_http2() {
                                downstream.write_response_header(response).await.map_err(down)?;
                            }
                            continue;
                        }
                        if status == 101 && !upstream.was_upgraded() {
                            // A 101 to a request that did not ask for it (or asked for an
                            // upgrade the edge does not forward): the framing of both
                            // connections would be guesswork.
                            return Err(Failure::Broken(
                                Error::explain(ErrorType::InvalidHTTPHeader, "101 without an upgrade").into_up(),
                            ));
                        }
                        upstream.respect_keepalive();
                        ctx.upstream_status = Some(status);
                        respond::remove_upstream_cors(&mut response);
                        respond::add_common_headers(&mut response, ctx).map_err(down)?;
                        HttpTask::Header(response, end)
                    }
                    other => other,
                };
                response_done = downstream.response_duplex_vec(vec![task]).await.map_err(down)?;
                if !upgraded && downstream.was_upgraded() {
                    // From here the client's bytes are the tunnel's, until it closes.
                    upgraded = true;
                    request_done = false;
                }
                if upgraded && response_done {
                    // The server closed its side: the tunnel ends.
                    return Ok(Forwarded { reusable: false });
                }
                if response_done && !request_done {
                    // Answered before the body was in (a server's early 413 or 401): the
                    // rest of the body is not read, so the connection cannot be reused.
                    return Ok(Forwarded { reusable: false });
                }
            }
        }
    }
    Ok(Forwarded { reusable: true })
}
