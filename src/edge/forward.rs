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
pub mod pool;

use pingora::connectors::TransportConnector;
use pingora::protocols::http::HttpTask;
use pingora::protocols::http::ServerSession;
use pingora::protocols::http::v1::client::HttpSession as UpstreamSession;
use pingora::{Error, ErrorType};

use super::context::RequestContext;
use super::{limits, observe, passthrough, respond};
use crate::request::EdgeError;
use pool::Pool;

/// How a forwarded request ended, when it did not fail.
struct Forwarded {
    /// The downstream connection may serve another request.
    reusable: bool,
    /// The upstream connection may (its response was read to its end; whether the server
    /// keeps it open is for its own headers to say).
    upstream_reusable: bool,
}

/// Why a forwarded request did not complete.
enum Failure {
    /// The edge refuses the request itself (an unsafe `Connection` header, a body over the
    /// limit), before anything reached the upstream or after.
    Refused(EdgeError),
    /// The connection to the upstream or the client broke, or the upstream misbehaved.
    Broken(Box<Error>),
    /// The request head could not be written upstream: nothing reached the server.
    Unsent(Box<Error>),
}

/// The upstream hop: connects (pingora's connector: TCP, TLS with the peer's name and
/// verification) and forwards.
pub struct Forwarder {
    connector: TransportConnector,
    pool: Pool,
}

impl Forwarder {
    /// `pool_size`: the most idle upstream connections kept.
    pub fn new(connector: TransportConnector, pool_size: usize) -> Self {
        Self { connector, pool: Pool::new(pool_size) }
    }

    /// Serves a request the pipeline decided to proxy; the connection, if it may be kept.
    pub async fn serve(
        &self,
        mut session: ServerSession,
        ctx: &mut RequestContext,
    ) -> Option<pingora::apps::ReusedHttpStream> {
        let (reply, error) = match self.forward(&mut session, ctx).await {
            Ok(Forwarded { reusable, .. }) => {
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
            Err(Failure::Broken(error) | Failure::Unsent(error)) => {
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
        let (Some(target), Some(upstream_peer)) = (&policy.passthrough, &policy.passthrough_peer) else {
            return Err(Failure::Broken(Error::explain(
                ErrorType::InternalError,
                "no passthrough for a proxied route",
            )));
        };
        passthrough::acquire_breaker(ctx).map_err(Failure::Broken)?;
        let has_body = !session.is_body_empty();
        // Built before a connection is taken, so a request refused for its head costs none.
        let mut request =
            Some(head::upstream_head(session.req_header(), has_body, target, ctx).map_err(Failure::Refused)?);
        let (peer, key) = (&upstream_peer.peer, upstream_peer.pool_key);
        let mut pooled = self.pool.take(key);
        let mut progress = Progress { request_done: !has_body, body_read: false, response_started: false };
        loop {
            let reused = pooled.is_some();
            let stream = match pooled.take() {
                Some(stream) => stream,
                // Boxed: connecting (TCP, TLS) is an 8 KB future, and only a pool miss needs it.
                None => {
                    Box::pin(self.connector.new_stream(peer)).await.map_err(|error| Failure::Broken(error.into_up()))?
                }
            };
            let mut upstream = UpstreamSession::new_with_options(stream, peer);
            // Built again for a retry rather than cloned for one: most requests never retry.
            let request = match request.take() {
                Some(request) => request,
                None => head::upstream_head(session.req_header(), has_body, target, ctx).map_err(Failure::Refused)?,
            };
            let outcome = match upstream.write_request_header(Box::new(request)).await {
                Ok(_) => exchange(session, &mut upstream, ctx, &mut progress).await,
                Err(error) => Err(Failure::Unsent(error.into_up())),
            };
            match outcome {
                Ok(forwarded) => {
                    if forwarded.upstream_reusable
                        && let Some(stream) = upstream.reuse().await
                    {
                        self.pool.put(key, stream);
                    }
                    return Ok(forwarded);
                }
                Err(Failure::Unsent(error)) if reused => {
                    tracing::debug!(request_id = %ctx.request_id, error = %error, "A pooled upstream connection was closed; retrying on a new one");
                }
                // Only the upstream's failure: a client that left is not a reason to call again.
                Err(Failure::Broken(error))
                    if reused
                        && matches!(error.esource(), pingora::ErrorSource::Upstream)
                        && !progress.response_started
                        && !progress.body_read
                        && replayable(session) =>
                {
                    tracing::debug!(request_id = %ctx.request_id, error = %error, "A pooled upstream connection failed before answering; retrying on a new one");
                }
                Err(Failure::Unsent(error)) => return Err(Failure::Broken(error)),
                Err(other) => return Err(other),
            }
        }
    }
}

/// What an exchange got done, carried into a retry.
struct Progress {
    request_done: bool,
    /// Some of the request body was read from the client (and so cannot be sent again).
    body_read: bool,
    /// The upstream answered something (a head, even a 1xx).
    response_started: bool,
}

/// Whether a request that may have reached the server can be sent again: its method is
/// idempotent (RFC 9110 §9.2.2) or it carries an `Idempotency-Key`. A POST on a pooled
/// connection that closed under it is not resent (nginx and Go's client do the same): the
/// server may have acted on it. The pool's check on taking a connection makes that rare.
fn replayable(session: &ServerSession) -> bool {
    use http::Method;
    let request = session.req_header();
    matches!(request.method, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE)
        || request.headers.contains_key("idempotency-key")
}

/// Moves the request body up and the response down until both are done (or, upgraded,
/// until either side closes).
async fn exchange(
    downstream: &mut ServerSession,
    upstream: &mut UpstreamSession,
    ctx: &mut RequestContext,
    progress: &mut Progress,
) -> Result<Forwarded, Failure> {
    let up = |error: Box<Error>| Failure::Broken(error.into_up());
    let down = |error: Box<Error>| Failure::Broken(error.into_down());
    const CLOSED: Forwarded = Forwarded { reusable: false, upstream_reusable: false };
    let mut response_done = false;
    let mut upgraded = false;
    let mut held: Option<bytes::Bytes> = None;
    let declared_length = if downstream.is_http2() {
        downstream
            .req_header()
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<usize>().ok())
    } else {
        None
    };
    while !(progress.request_done && response_done) {
        tokio::select! {
            // Once the request body is in, this waits for the client to go away (an error
            // that ends the exchange), as pingora's proxy does.
            body = downstream.read_body_or_idle(progress.request_done) => {
                let body = body.map_err(down)?;
                if upgraded {
                    upstream.maybe_upgrade_body_writer();
                    match body {
                        Some(bytes) => { upstream.write_body(&bytes).await.map_err(up)?; }
                        None => {
                            // The client closed its side: the tunnel ends.
                            let _ = upstream.finish_body().await;
                            return Ok(CLOSED);
                        }
                    }
                    continue;
                }
                // An empty chunk is no data; written, it would be the chunked body's end.
                if let Some(bytes) = body.as_ref().filter(|bytes| !bytes.is_empty()) {
                    progress.body_read = true;
                    limits::count_body(&mut ctx.body_bytes, bytes.len(), &ctx.policy.config.limits)
                        .map_err(Failure::Refused)?;
                    if declared_length.is_some_and(|length| downstream.body_bytes_read() >= length) {
                        // An HTTP/2 body is whole only at END_STREAM (more DATA than its
                        // `Content-Length` resets the stream instead): the bytes that complete
                        // the length, which would complete the request upstream, wait for it.
                        if let Some(previous) = held.replace(bytes.clone()) {
                            upstream.write_body(&previous).await.map_err(up)?;
                        }
                    } else {
                        upstream.write_body(bytes).await.map_err(up)?;
                    }
                }
                if body.is_none() || downstream.is_body_done() {
                    if let Some(last) = held.take() {
                        upstream.write_body(&last).await.map_err(up)?;
                    }
                    upstream.finish_body().await.map_err(up)?;
                    progress.request_done = true;
                }
            }
            task = upstream.read_response_task(), if !response_done => {
                let task = match task.map_err(up)? {
                    HttpTask::Header(mut response, end) => {
                        progress.response_started = true;
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
                            return Err(up(Error::explain(ErrorType::InvalidHTTPHeader, "101 without an upgrade")));
                        }
                        upstream.respect_keepalive();
                        ctx.upstream_status = Some(status);
                        respond::remove_upstream_cors(&mut response);
                        respond::add_common_headers(&mut *response, ctx).map_err(down)?;
                        HttpTask::Header(response, end)
                    }
                    other => other,
                };
                response_done = downstream.response_duplex_vec(vec![task]).await.map_err(down)?;
                if !upgraded && downstream.was_upgraded() {
                    // From here the client's bytes are the tunnel's, until it closes.
                    upgraded = true;
                    progress.request_done = false;
                }
                if upgraded && response_done {
                    // The server closed its side: the tunnel ends.
                    return Ok(CLOSED);
                }
                if response_done && !progress.request_done {
                    // Answered before the body was in (a server's early 413 or 401): the
                    // rest of the body is not read, and the server did not read all of it.
                    return Ok(CLOSED);
                }
            }
        }
    }
    Ok(Forwarded { reusable: true, upstream_reusable: true })
}
