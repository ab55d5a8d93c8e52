//! Serving an HTTP/2 connection: pingora's stream accept loop, with the limits its own loop
//! lacks.
//!
//! pingora's loop (`accept_downstream_sessions`) is private to it and closes an idle
//! connection without a GOAWAY; this one sends GOAWAY (`NO_ERROR`, with the last stream it
//! processed) when the connection has had no stream for `idle_timeout` (for a new
//! connection: by the end of `header_timeout`), and a graceful GOAWAY once
//! `max_requests_per_connection` streams have been accepted. Each stream is served by
//! pingora's proxy on its own task, as pingora does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pingora::apps::HttpServerApp;
use pingora::protocols::http::ServerSession;
use pingora::protocols::http::v2::server::{H2Accept, HttpSession};
use pingora::protocols::{Digest, Stream};
use pingora::server::ShutdownWatch;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::ConnectionLimits;

type H2Connection = h2::server::Connection<Stream, bytes::Bytes>;

/// Streams pingora refused as malformed before the connection is dropped (pingora's own
/// per-connection budget, `MAX_MALFORMED_STREAMS_PER_CONN`, is private to its loop).
const MAX_MALFORMED_STREAMS: usize = 32;
/// How long a connection that was sent GOAWAY for idleness may take to take it.
const GOAWAY_FLUSH_TIME: Duration = Duration::from_secs(1);
/// What one HPACK header entry costs beyond its name and value (RFC 7541 §4.1).
const HPACK_ENTRY_OVERHEAD: usize = 32;
/// The most response bytes h2 buffers for one stream beyond what the client's window takes.
pub const MAX_SEND_BUFFER: usize = 64 * 1024;

/// The HTTP/2 settings for a new connection under `limits`.
pub fn options(limits: &ConnectionLimits) -> pingora::protocols::http::v2::server::H2Options {
    let mut options = pingora::protocols::http::v2::server::default_h2_options();
    options.max_concurrent_streams(limits.h2_max_concurrent_streams);
    // The same budget as an HTTP/1 head, in HPACK's own measure (name, value, 32 per entry),
    // instead of pingora's 64 KiB: every open stream holds its decoded headers.
    let header_list = limits.max_header_bytes + limits.max_headers * HPACK_ENTRY_OVERHEAD;
    options.max_header_list_size(u32::try_from(header_list).unwrap_or(u32::MAX));
    options.max_send_buffer_size(MAX_SEND_BUFFER);
    options
}

/// Accepts streams until the connection closes; `first_stream_by` is when a new connection
/// must have opened its first stream.
pub async fn serve<A: HttpServerApp + Send + Sync + 'static>(
    app: &Arc<A>,
    mut connection: H2Connection,
    digest: Arc<Digest>,
    first_stream_by: Instant,
    limits: &ConnectionLimits,
    shutdown: &ShutdownWatch,
) {
    let active = Arc::new(ActiveStreams::default());
    let mut watch = shutdown.clone();
    let mut accepted: u64 = 0;
    let mut malformed = 0usize;
    let mut going_away = false;
    let mut idle_goaway_sent = false;
    let mut give_up_at: Option<Instant> = None;
    loop {
        let idle_until =
            if accepted == 0 { IdleUntil::At(first_stream_by) } else { IdleUntil::After(limits.idle_timeout) };
        let next = tokio::select! {
            biased;
            changed = watch.changed(), if !going_away => {
                if changed.is_err() || *watch.borrow() {
                    connection.graceful_shutdown();
                    going_away = true;
                }
                continue;
            }
            () = sleep_until(give_up_at) => return,
            () = active.idle(idle_until), if !idle_goaway_sent => {
                tracing::debug!(accepted, "HTTP/2 connection idle: GOAWAY");
                connection.abrupt_shutdown(h2::Reason::NO_ERROR);
                going_away = true;
                idle_goaway_sent = true;
                give_up_at = Some(Instant::now() + GOAWAY_FLUSH_TIME);
                continue;
            }
            next = HttpSession::from_h2_conn(&mut connection, Arc::clone(&digest)) => next,
        };
        match next {
            Err(error) => {
                tracing::debug!(%error, "HTTP/2 connection ended");
                return;
            }
            Ok(None) => return,
            Ok(Some(H2Accept::Rejected)) => {
                malformed += 1;
                if malformed >= MAX_MALFORMED_STREAMS {
                    tracing::debug!("Too many malformed HTTP/2 streams; dropping the connection");
                    return;
                }
            }
            Ok(Some(H2Accept::Session(stream))) => {
                accepted += 1;
                let guard = active.start();
                let app = Arc::clone(app);
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let _guard = guard;
                    app.process_new_http(ServerSession::new_http2(stream), &shutdown).await;
                });
                if accepted >= u64::from(limits.max_requests_per_connection) && !going_away {
                    // Streams already open finish; the client opens new ones elsewhere.
                    connection.graceful_shutdown();
                    going_away = true;
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum IdleUntil {
    At(Instant),
    After(Duration),
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Streams being served, so the idle timer runs only while there are none.
#[derive(Debug, Default)]
struct ActiveStreams {
    count: AtomicUsize,
    none_left: Notify,
}

struct StreamGuard(Arc<ActiveStreams>);

impl ActiveStreams {
    fn start(self: &Arc<Self>) -> StreamGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        StreamGuard(Arc::clone(self))
    }

    /// Resolves when no stream has been open for the idle period. Only the accept loop
    /// starts streams, and it drops this future when it does, so while this waits the count
    /// only falls.
    async fn idle(&self, until: IdleUntil) {
        while self.count.load(Ordering::Acquire) != 0 {
            self.none_left.notified().await;
        }
        match until {
            IdleUntil::At(at) => tokio::time::sleep_until(at).await,
            IdleUntil::After(idle) => tokio::time::sleep(idle).await,
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.none_left.notify_one();
        }
    }
}
