//! Reading one HTTP/1 request head under the connection's deadline and size cap.
//!
//! pingora reads a head with a timeout per read (so a byte every minute keeps it waiting)
//! into a buffer that may grow to 1 MiB. Reading the head here first bounds both: the
//! whole head must arrive by one deadline, and no more than `max_header_bytes` of it (plus
//! the blank line that ends it) is ever buffered.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

/// Bytes asked of the socket at a time while a head is incomplete.
const READ_CHUNK: usize = 4096;

/// When a head must have arrived.
#[derive(Debug, Clone, Copy)]
pub enum HeadWait {
    /// A connection's first request: the deadline ran from accept (TLS handshake included).
    By(Instant),
    /// A later request on a kept-alive connection: its first byte may take `idle`, the rest
    /// must follow within `header_timeout` of that byte.
    KeptAlive { idle: Duration, header_timeout: Duration },
}

/// How reading a head ended.
#[derive(Debug)]
pub enum HeadRead {
    /// The buffer starts with a whole head (and may hold bytes after it: the start of a
    /// body, or of a pipelined request).
    Complete { buffer: BytesMut },
    /// The client went away, stayed silent, or the service is shutting down: nothing to say.
    Closed,
    /// The deadline passed with part of a head read: 408.
    TimedOut,
    /// The head passed the size cap: 431.
    TooLarge,
}

/// Reads until a whole request head is in. `max_head_bytes` counts everything before the
/// blank line.
pub async fn read_head(
    stream: &mut Stream,
    wait: HeadWait,
    max_head_bytes: usize,
    shutdown: &ShutdownWatch,
) -> HeadRead {
    // The blank line is not part of what `limits.max_header_bytes` counts (edge/limits.rs
    // counts the request line and header lines as they are on the wire).
    let max_buffered = max_head_bytes + 2;
    let mut scanner = HeadScanner::default();
    let (mut deadline, idle_until, header_timeout) = match wait {
        HeadWait::By(deadline) => (Some(deadline), None, Duration::ZERO),
        HeadWait::KeptAlive { idle, header_timeout } => (None, Some(Instant::now() + idle), header_timeout),
    };
    let mut shutdown = shutdown.clone();
    let mut buffer = BytesMut::new();
    loop {
        if let Some(end) = scanner.scan(&buffer) {
            return if end > max_buffered { HeadRead::TooLarge } else { HeadRead::Complete { buffer } };
        }
        if buffer.len() > max_buffered {
            return HeadRead::TooLarge;
        }
        if deadline.is_none() && !buffer.is_empty() {
            deadline = Some(Instant::now() + header_timeout);
        }
        // Never read more than one byte past the cap, so an oversized head costs at most
        // the cap in memory however fast it arrives.
        let room = max_buffered + 1 - buffer.len();
        buffer.reserve(room.min(READ_CHUNK));
        let read = {
            let mut limited = (&mut buffer).limit(room);
            let read = stream.read_buf(&mut limited);
            match (deadline, idle_until) {
                (Some(deadline), _) => tokio::time::timeout_at(deadline, read).await,
                (None, Some(idle_until)) => tokio::select! {
                    biased;
                    () = shutting_down(&mut shutdown) => return HeadRead::Closed,
                    read = tokio::time::timeout_at(idle_until, read) => read,
                },
                (None, None) => Ok(read.await),
            }
        };
        match read {
            Err(_elapsed) if buffer.is_empty() => return HeadRead::Closed,
            Err(_elapsed) => return HeadRead::TimedOut,
            Ok(Ok(0) | Err(_)) => return HeadRead::Closed,
            Ok(Ok(_)) => {}
        }
    }
}

/// Resolves once the service is shutting down (never, if the sender is gone).
async fn shutting_down(shutdown: &mut ShutdownWatch) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Finds the end of a request head across reads: the first empty line after the request
/// line, with CRLF or bare LF line ends (httparse accepts both). Empty lines before the
/// request line are skipped, as RFC 9112 §2.2 allows and httparse does.
#[derive(Debug, Default)]
struct HeadScanner {
    scanned: usize,
    started: bool,
    /// Bytes since the last LF that were only a CR (1) or nothing (0); `None` mid-line.
    after_line_feed: Option<u8>,
}

impl HeadScanner {
    /// The length of the head, through its blank line, once `buffer` holds all of it.
    fn scan(&mut self, buffer: &[u8]) -> Option<usize> {
        while self.scanned < buffer.len() {
            if self.started && self.after_line_feed.is_none() {
                // Mid-line only a line feed changes anything: skip to it (memchr looks at a
                // word or a vector at a time, where this loop looked at a byte).
                let Some(offset) = memchr::memchr(b'\n', &buffer[self.scanned..]) else {
                    self.scanned = buffer.len();
                    return None;
                };
                self.scanned += offset + 1;
                self.after_line_feed = Some(0);
                continue;
            }
            let byte = buffer[self.scanned];
            self.scanned += 1;
            if !self.started {
                if byte == b'\r' || byte == b'\n' {
                    continue;
                }
                self.started = true;
            }
            self.after_line_feed = match (self.after_line_feed, byte) {
                (Some(_), b'\n') => return Some(self.scanned),
                (None, b'\n') => Some(0),
                (Some(0), b'\r') => Some(1),
                _ => None,
            };
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end_of(chunks: &[&[u8]]) -> Option<usize> {
        let mut scanner = HeadScanner::default();
        let mut buffer = Vec::new();
        for chunk in chunks {
            buffer.extend_from_slice(chunk);
            if let Some(end) = scanner.scan(&buffer) {
                return Some(end);
            }
        }
        None
    }

    #[test]
    fn finds_the_blank_line_across_reads_in_every_line_ending() {
        let cases: &[(&[&[u8]], Option<usize>)] = &[
            (&[b"GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY"], Some(27)),
            (&[b"GET / HTTP/1.1\r\nHost: a\r", b"\n", b"\r", b"\nBODY"], Some(27)),
            (&[b"GET / HTTP/1.1\nHost: a\n\nBODY"], Some(24)),
            (&[b"GET / HTTP/1.1\r\nHost: a\n\r\n"], Some(26)),
            (&[b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"], Some(22)),
            (&[b"GET / HTTP/1.1\r\nHost: a\r\n"], None),
            (&[b"\r\n\r\n\r\n"], None),
            (&[b"GET / HTTP/1.1\r\nX: a\rb\r\n"], None),
            (&[b"GET / HTTP/1.1\r\nX: a\rb", b"c\r\n", b"\r\n"], Some(27)),
            (&[b"GET /", b"long/path HTTP/1.1\n", b"\n"], Some(25)),
        ];
        for (chunks, expected) in cases {
            assert_eq!(end_of(chunks), *expected, "{chunks:?}");
        }
    }
}
