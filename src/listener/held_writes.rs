//! A downstream stream that gathers a response's writes into one.
//!
//! pingora writes an HTTP/1 response head and its body with two writes; under TLS each write
//! is its own record (two AEAD seals, two record headers) and, once the two pass the socket
//! buffer, two `send`s. Writes are therefore held here until pingora flushes (which it does
//! at the end of every response and after each chunk of a streamed one) or until
//! [`MAX_HELD`] bytes are waiting, and go down as one write. Everything else is passed
//! straight through.

use std::any::Any;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{ALPN, Peek, Shutdown, Ssl, Stream, UniqueID, UniqueIDType};
use pingora::protocols::{GetProxyDigest, GetSocketDigest, GetTimingDigest, SocketDigest, TimingDigest};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most response bytes held before they are written without waiting for a flush: one
/// full TLS record.
pub const MAX_HELD: usize = 16 * 1024;

/// `inner`, with writes held until a flush.
#[derive(Debug)]
pub struct HeldWrites {
    inner: Stream,
    /// Written by pingora, not yet by us.
    held: Vec<u8>,
    /// How much of `held` went down already (a write to `inner` may be partial).
    sent: usize,
}

impl HeldWrites {
    pub fn new(inner: Stream) -> Self {
        Self { inner, held: Vec::new(), sent: 0 }
    }

    /// The stream, once every held byte is written.
    pub async fn into_inner(mut self) -> std::io::Result<Stream> {
        tokio::io::AsyncWriteExt::flush(&mut self).await?;
        Ok(self.inner)
    }

    /// Writes what is held until none is left.
    fn poll_write_held(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.sent < self.held.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.held[self.sent..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(count)) => self.sent += count,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.held.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for HeldWrites {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for HeldWrites {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.held.len() + buf.len() > MAX_HELD {
            ready!(this.poll_write_held(cx))?;
            if buf.len() >= MAX_HELD {
                return Pin::new(&mut this.inner).poll_write(cx, buf);
            }
        }
        this.held.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.poll_write_held(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.poll_write_held(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for HeldWrites {
    async fn shutdown(&mut self) {
        // What pingora wrote last (a refusal before a close) must not be lost.
        let _ = tokio::io::AsyncWriteExt::flush(self).await;
        self.inner.shutdown().await;
    }
}

impl UniqueID for HeldWrites {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HeldWrites {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for HeldWrites {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for HeldWrites {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for HeldWrites {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, socket_digest: SocketDigest) {
        self.inner.set_socket_digest(socket_digest);
    }
}

#[async_trait]
impl Peek for HeldWrites {
    /// pingora peeks only to detect an h2c preface, which the connection layer has already
    /// decided; peeking is reported unsupported (pingora parses the head it was given as a
    /// prefix, which a peek at the socket would not see).
    async fn try_peek(&mut self, _buf: &mut [u8]) -> std::io::Result<bool> {
        Ok(false)
    }
}

/// Recovers the [`HeldWrites`] pingora hands back with a reusable connection.
pub fn recover(stream: Stream) -> Option<HeldWrites> {
    let any: Box<dyn Any> = stream.into_any();
    any.downcast::<HeldWrites>().ok().map(|replayed| *replayed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_are_held_until_a_flush_and_then_go_down_whole() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut client =
            tokio::net::TcpStream::connect(listener.local_addr().expect("address")).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let server: Stream = Box::new(pingora::protocols::l4::stream::Stream::from(server));
        let mut held = HeldWrites::new(server);
        held.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n").await.expect("head");
        held.write_all(b"ok").await.expect("body");
        assert_eq!(held.held.len(), 40, "nothing is written before the flush");
        held.flush().await.expect("flush");
        assert!(held.held.is_empty());
        let mut response = [0u8; 40];
        client.read_exact(&mut response).await.expect("the whole response");
        assert!(response.ends_with(b"\r\n\r\nok"));

        // A write larger than the limit goes through at once, after what was held.
        held.write_all(b"first").await.expect("small");
        let large = vec![b'x'; MAX_HELD + 1];
        held.write_all(&large).await.expect("large");
        let mut seen = vec![0u8; 5 + large.len()];
        client.read_exact(&mut seen).await.expect("both, in order, without a flush");
        assert_eq!(&seen[..5], b"first");
        assert!(seen[5..].iter().all(|byte| *byte == b'x'));
        let _ = held.into_inner().await.expect("the stream");
    }
}
