//! The downstream connection layer: what happens to a public connection between accept and
//! pingora's proxy, and between its requests.
//!
//! pingora's listening service calls [`EdgeListener::process_new`] right after accept (the
//! public listeners are plain TCP to pingora; TLS is done here), and this layer:
//! 1. admits the connection under `limits.max_connections` and `max_connections_per_ip`
//!    (`limiter.rs`), or closes it at once;
//! 2. runs the TLS handshake under the first request's `header_timeout`, which runs from
//!    accept;
//! 3. for HTTP/1, reads each request head itself under that deadline and the
//!    `max_header_bytes` cap (`head.rs`), refusing with 408 or 431 and a lingering close
//!    (`refusal.rs`), and hands the edge's application the head as the session's prefix over
//!    a stream that writes each response whole (`held_writes.rs`), then waits `idle_timeout`
//!    for the next request (`http1.rs`);
//! 4. for HTTP/2, accepts streams with the idle GOAWAY, the request limit and the stream and
//!    header-list limits pingora's own loop does not apply (`http2.rs`).
//!
//! The limits are read from the current policy for every new connection, so a reload
//! applies to connections accepted after it.

mod head;
mod held_writes;
mod http1;
mod http2;
pub mod limiter;
mod refusal;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::listeners::tls::Acceptor;
use pingora::protocols::{ALPN, Digest, Stream};
use pingora::server::ShutdownWatch;
use tokio::time::Instant;

use crate::config::Limits;
use crate::edge::policy::PolicyHandle;
use limiter::ConnectionLimiter;

/// The limits one connection runs under, copied from the policy when it is accepted.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_requests_per_connection: u32,
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
    pub h2_max_concurrent_streams: u32,
}

impl From<&Limits> for ConnectionLimits {
    fn from(limits: &Limits) -> Self {
        Self {
            header_timeout: limits.header_timeout,
            idle_timeout: limits.idle_timeout,
            max_header_bytes: limits.max_header_bytes,
            max_headers: limits.max_headers,
            max_requests_per_connection: limits.max_requests_per_connection,
            max_connections: limits.max_connections,
            max_connections_per_ip: limits.max_connections_per_ip,
            h2_max_concurrent_streams: limits.h2_max_concurrent_streams,
        }
    }
}

/// The public listeners' application: the connection layer in front of `app` (the edge's
/// `EdgeApp`).
pub struct EdgeListener<A> {
    app: Arc<A>,
    policy: PolicyHandle,
    limiter: Arc<ConnectionLimiter>,
    /// The TLS listener's address and acceptor; connections to other addresses are plain.
    tls: Option<(SocketAddr, Acceptor)>,
}

impl<A> EdgeListener<A> {
    pub fn new(app: A, policy: PolicyHandle, tls: Option<(SocketAddr, Acceptor)>) -> Self {
        Self { app: Arc::new(app), policy, limiter: Arc::new(ConnectionLimiter::default()), tls }
    }

    /// The acceptor when `stream` arrived on the TLS listener.
    fn tls_acceptor(&self, stream: &Stream) -> Option<&Acceptor> {
        let (listen, acceptor) = self.tls.as_ref()?;
        let local = stream.get_socket_digest()?.local_addr()?.as_inet().copied()?;
        let same_ip = listen.ip().is_unspecified() || listen.ip() == local.ip();
        (same_ip && listen.port() == local.port()).then_some(acceptor)
    }
}

#[async_trait]
impl<A> ServerApp for EdgeListener<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new(self: &Arc<Self>, stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        let accepted_at = Instant::now();
        let limits = ConnectionLimits::from(&self.policy.load().config.limits);
        let peer = peer_ip(&stream);
        let _permit = match self.limiter.try_admit(peer, limits.max_connections, limits.max_connections_per_ip) {
            Ok(permit) => permit,
            Err(refused) => {
                tracing::debug!(?peer, ?refused, "Connection over the limit: closed");
                return None;
            }
        };
        let deadline = accepted_at + limits.header_timeout;
        let stream = match self.tls_acceptor(&stream) {
            None => stream,
            Some(acceptor) => {
                let tcp = match stream.into_any().downcast::<pingora::protocols::l4::stream::Stream>() {
                    Ok(tcp) => *tcp,
                    Err(_) => {
                        tracing::warn!("The TLS listener accepted an unexpected stream type; closing it");
                        return None;
                    }
                };
                match tokio::time::timeout_at(deadline, acceptor.tls_handshake(tcp)).await {
                    Ok(Ok(tls)) => Box::new(tls),
                    Ok(Err(error)) => {
                        tracing::debug!(?peer, %error, "TLS handshake failed");
                        return None;
                    }
                    Err(_) => {
                        tracing::debug!(?peer, "TLS handshake not done within header_timeout: closed");
                        return None;
                    }
                }
            }
        };
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            self.serve_http2(stream, deadline, &limits, shutdown).await;
        } else {
            http1::serve(&self.app, stream, deadline, &limits, shutdown).await;
        }
        None
    }

    async fn cleanup(&self) {
        self.app.http_cleanup().await;
    }
}

impl<A> EdgeListener<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn serve_http2(
        &self,
        stream: Stream,
        deadline: Instant,
        limits: &ConnectionLimits,
        shutdown: &ShutdownWatch,
    ) {
        let digest = Arc::new(Digest {
            ssl_digest: stream.get_ssl_digest(),
            timing_digest: stream.get_timing_digest(),
            proxy_digest: stream.get_proxy_digest(),
            socket_digest: stream.get_socket_digest(),
        });
        // The client preface and SETTINGS are part of the first request's head.
        let handshake = pingora::protocols::http::v2::server::handshake(stream, Some(http2::options(limits)));
        let connection = match tokio::time::timeout_at(deadline, handshake).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => {
                tracing::debug!(%error, "HTTP/2 handshake failed");
                return;
            }
            Err(_) => return,
        };
        http2::serve(&self.app, connection, digest, deadline, limits, shutdown).await;
    }
}

fn peer_ip(stream: &Stream) -> Option<IpAddr> {
    Some(stream.get_socket_digest()?.peer_addr()?.as_inet()?.ip())
}
