//! Idle upstream connections kept for the next request to the same peer.
//!
//! pingora's pool spawns a task per idle connection to watch it close, and takes a lock and
//! asks the kernel for the peer's address (`getpeername`) on every reuse. Here an idle
//! connection is just a stream in a short list: nothing watches it, and whether it is still
//! open is asked once, when it is taken — one non-blocking read that must find nothing to
//! read. A server that closed it (an idle timeout, a restart) has sent a FIN, so the read
//! finds the end of the stream and the connection is dropped. A close still in flight when
//! the connection is taken is what the forwarder's retry covers.
//!
//! Bounded: at most `capacity` connections in all (the oldest goes first), none kept longer
//! than [`IDLE_TIMEOUT`]; a connection past it is dropped the next time the pool is used.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use pingora::protocols::Stream;
use tokio::io::{AsyncRead, ReadBuf};

/// How long an idle upstream connection is kept (nginx's `keepalive_timeout` for upstreams
/// is 60 s as well).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

struct Idle {
    peer: u64,
    since: Instant,
    stream: Stream,
}

/// The idle connections, most recently returned last.
pub struct Pool {
    idle: Mutex<Vec<Idle>>,
    capacity: usize,
}

impl Pool {
    pub fn new(capacity: usize) -> Self {
        Self { idle: Mutex::new(Vec::with_capacity(capacity)), capacity }
    }

    /// An open idle connection to `peer` (a peer's `reuse_hash`), the most recently used
    /// first: it is the likeliest to be open, and the others age out.
    pub fn take(&self, peer: u64) -> Option<Stream> {
        let now = Instant::now();
        loop {
            let found = {
                let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                idle.retain(|entry| now.duration_since(entry.since) < IDLE_TIMEOUT);
                let position = idle.iter().rposition(|entry| entry.peer == peer)?;
                idle.swap_remove(position)
            };
            // Checked outside the lock; a closed one is dropped (closed) and the next tried.
            let mut stream = found.stream;
            if is_open(&mut stream) {
                return Some(stream);
            }
        }
    }

    /// Keeps `stream` for the next request to `peer`.
    pub fn put(&self, peer: u64, stream: Stream) {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        idle.retain(|entry| now.duration_since(entry.since) < IDLE_TIMEOUT);
        if idle.len() >= self.capacity {
            idle.remove(0);
        }
        idle.push(Idle { peer, since: now, stream });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }
}

/// Whether an idle connection is still usable: a read must have nothing to give. Data (a
/// server speaking out of turn) or the end of the stream both disqualify it.
fn is_open(stream: &mut Stream) -> bool {
    let mut context = Context::from_waker(Waker::noop());
    let mut byte = [0u8; 1];
    let mut buffer = ReadBuf::new(&mut byte);
    matches!(Pin::new(stream).poll_read(&mut context, &mut buffer), Poll::Pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn connected_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = tokio::net::TcpStream::connect(listener.local_addr().expect("address")).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (client, server)
    }

    fn boxed(stream: tokio::net::TcpStream) -> Stream {
        Box::new(pingora::protocols::l4::stream::Stream::from(stream))
    }

    #[tokio::test]
    async fn an_open_connection_is_given_back_for_its_peer_only() {
        let pool = Pool::new(4);
        let (stream, _server) = connected_pair().await;
        pool.put(1, boxed(stream));
        assert!(pool.take(2).is_none(), "another peer's connection");
        assert!(pool.take(1).is_some());
        assert!(pool.take(1).is_none(), "taken once");
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_or_wrote_on_is_dropped() {
        let pool = Pool::new(4);
        let (closed, server) = connected_pair().await;
        drop(server);
        let (spoken, mut talker) = connected_pair().await;
        talker.write_all(b"HTTP/1.1 408 Request Timeout\r\n\r\n").await.expect("write");
        // Taken only once the FIN and the bytes are there to be read.
        closed.readable().await.expect("readable");
        spoken.readable().await.expect("readable");
        pool.put(1, boxed(closed));
        pool.put(1, boxed(spoken));
        assert!(pool.take(1).is_none(), "neither is usable");
        assert_eq!(pool.len(), 0, "and both are gone");
    }

    #[tokio::test]
    async fn the_pool_keeps_at_most_its_capacity_dropping_the_oldest() {
        let pool = Pool::new(2);
        let mut servers = Vec::new();
        for peer in [1, 2, 3] {
            let (stream, server) = connected_pair().await;
            servers.push(server);
            pool.put(peer, boxed(stream));
        }
        assert_eq!(pool.len(), 2);
        assert!(pool.take(1).is_none(), "the oldest went first");
        assert!(pool.take(3).is_some());
    }
}
