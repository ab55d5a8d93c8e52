//! Serving an HTTP/1 connection: each request head is read here (deadline and size cap),
//! then the edge's HTTP application handles the request, and the connection comes back for
//! the next one.
//!
//! This replaces pingora's own HTTP/1 loop (`ServerApp for HttpServerApp`), whose head
//! reading has only a per-read timeout and a 1 MiB buffer. Keep-alive, the request limit
//! and pipelined bytes behave as there; pingora's `HttpPersistentSettings` carry its
//! per-connection state from one request to the next.

use std::sync::Arc;

use pingora::apps::{HttpPersistentSettings, HttpServerApp};
use pingora::protocols::Stream;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use tokio::time::Instant;

use super::ConnectionLimits;
use super::head::{HeadRead, HeadWait, read_head};
use super::held_writes::{HeldWrites, recover};
use super::refusal::{Refusal, refuse};

/// Serves requests on `stream` until it closes; `deadline` is when the first head must be in.
pub async fn serve<A: HttpServerApp + Send + Sync + 'static>(
    app: &Arc<A>,
    mut stream: Stream,
    deadline: Instant,
    limits: &ConnectionLimits,
    shutdown: &ShutdownWatch,
) {
    let mut persistent: Option<HttpPersistentSettings> = None;
    let mut wait = HeadWait::By(deadline);
    loop {
        let buffer = match read_head(&mut stream, wait, limits.max_header_bytes, shutdown).await {
            HeadRead::Complete { buffer } => buffer,
            HeadRead::Closed => return,
            HeadRead::TimedOut => return refused(stream, Refusal::Timeout).await,
            HeadRead::TooLarge => return refused(stream, Refusal::HeadTooLarge).await,
        };
        let mut session = ServerSession::new_http1(Box::new(HeldWrites::new(stream)));
        match persistent.take() {
            Some(settings) => settings.apply_to_session(&mut session),
            None => {
                // pingora's keep-alive timeout applies to reading the next head, which the
                // connection layer does itself; here it only has to say "keep alive".
                let keepalive = (!*shutdown.borrow()).then(|| limits.idle_timeout.as_secs().max(1));
                session.set_keepalive(keepalive);
                // pingora counts reuses, not requests: the first request is not a reuse.
                session.set_keepalive_reuses_remaining(Some(limits.max_requests_per_connection.saturating_sub(1)));
            }
        }
        // pingora parses what was read from this prefix, without reading the stream; bytes
        // past the head are the start of the body.
        session.set_pipelined_prefix(buffer);
        let Some(reused) = app.process_new_http(session, shutdown).await else { return };
        let (returned, settings) = reused.consume();
        persistent = settings;
        // pingora hands back no bytes of a next request: with pipelining off (its default),
        // a client that sent one early has its connection closed after the response.
        let Some(held) = recover(returned) else {
            tracing::warn!("pingora returned a connection of an unexpected type; closing it");
            return;
        };
        stream = match held.into_inner().await {
            Ok(stream) => stream,
            Err(_) => return,
        };
        wait = HeadWait::KeptAlive { idle: limits.idle_timeout, header_timeout: limits.header_timeout };
    }
}

async fn refused(stream: Stream, refusal: Refusal) {
    let peer =
        stream.get_socket_digest().and_then(|digest| digest.peer_addr().and_then(|address| address.as_inet().copied()));
    tracing::debug!(?peer, limit = refusal.as_str(), "Refused a request head; closing the connection");
    refuse(stream, refusal).await;
}
