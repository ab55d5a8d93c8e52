//! [`Reply`]: a response the edge answers itself, as a value. Handlers and the error map
//! build replies; one writer (`edge::respond::write`) adds the headers every response
//! carries and puts them on the connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use tokio::sync::mpsc;

use super::ToolRecord;

/// A self-made response: status, the headers particular to it, and its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: ReplyBody,
    /// Whether the connection may serve another request after this one.
    pub connection: Connection,
}

/// What a reply carries after its head.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyBody {
    /// Nothing (`Content-Length: 0`): 202, 204, a preflight.
    Empty,
    /// A JSON document, already serialised (`Content-Type: application/json`, `no-store`).
    Json(Bytes),
    /// A server-sent event stream (`Content-Type: text/event-stream`, chunked on HTTP/1.1,
    /// data frames on HTTP/2), written as its producer sends the events; see [`EventStream`].
    Stream(EventStream),
}

/// What the producer of an [`EventStream`] sends: bytes to write as they are, or, once, the
/// record of the tool call the stream answers (the call ends after the handler returned, so
/// its record comes with the stream).
#[derive(Debug)]
pub enum StreamItem {
    Chunk(Bytes),
    Record(ToolRecord),
}

/// The receiving end of a streamed reply. The writer takes it once; when the writer stops
/// (the stream ended, or the client went away and a write failed) the receiver is dropped,
/// which is how the producer learns to stop its work (`Sender::closed`).
#[derive(Debug, Clone)]
pub struct EventStream(Arc<Mutex<Option<mpsc::Receiver<StreamItem>>>>);

impl EventStream {
    /// A stream and the sender its producer writes to; `capacity` events may wait unwritten.
    pub fn channel(capacity: usize) -> (mpsc::Sender<StreamItem>, Self) {
        let (sender, receiver) = mpsc::channel(capacity);
        (sender, Self(Arc::new(Mutex::new(Some(receiver)))))
    }

    /// The receiver, the first time (a cloned reply cannot write the stream twice).
    pub fn take(&self) -> Option<mpsc::Receiver<StreamItem>> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

impl PartialEq for EventStream {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    KeepAlive,
    /// The framing of the rest of the connection is unknown (a bad `Content-Length`, an
    /// unsupported `Transfer-Encoding`) or the connection is lost anyway: `Connection: close`.
    Close,
}

impl Reply {
    /// A JSON reply. A body that cannot be serialised (a map with non-string keys, which no
    /// handler builds) becomes a 500 rather than a half-written response.
    pub fn json(status: u16, body: &(impl serde::Serialize + ?Sized)) -> Self {
        // `to_vec` writes straight into the buffer; `Display` would go through `fmt` per token.
        Self::serialized(status, serde_json::to_vec(body))
    }

    /// A JSON reply from bytes already serialised, or a 500 like [`Reply::json`]'s.
    pub fn serialized(status: u16, body: serde_json::Result<Vec<u8>>) -> Self {
        let (status, body) = match body {
            Ok(body) => (status, body),
            Err(_) => (500, br#"{"error":"internal error"}"#.to_vec()),
        };
        Self {
            status,
            headers: Vec::new(),
            body: ReplyBody::Json(Bytes::from(body)),
            connection: Connection::KeepAlive,
        }
    }

    /// A 200 server-sent event stream.
    pub fn stream(stream: EventStream) -> Self {
        Self { status: 200, headers: Vec::new(), body: ReplyBody::Stream(stream), connection: Connection::KeepAlive }
    }

    /// A reply without a body.
    pub fn empty(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: ReplyBody::Empty, connection: Connection::KeepAlive }
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn with_headers(mut self, headers: impl IntoIterator<Item = (HeaderName, HeaderValue)>) -> Self {
        self.headers.extend(headers);
        self
    }

    /// Says `Connection: close` and closes the connection after the reply.
    pub fn closing(mut self) -> Self {
        self.connection = Connection::Close;
        self
    }
}

/// Whole seconds, rounded up: `RateLimit`'s `t=` (0 when nothing is to wait for).
pub fn ceil_seconds(duration: Duration) -> u64 {
    let whole = duration.as_secs();
    if duration.subsec_nanos() > 0 { whole + 1 } else { whole }
}

/// A `Retry-After` value: whole seconds rounded up, and at least 1 (`Retry-After: 0` invites
/// an immediate retry of what was just refused).
pub fn retry_after_seconds(duration: Duration) -> u64 {
    ceil_seconds(duration).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_seconds(Duration::ZERO), 0);
        assert_eq!(ceil_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ceil_seconds(Duration::from_secs(2)), 2);
        assert_eq!(ceil_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1, "never Retry-After: 0");
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
    }

    #[test]
    fn a_json_reply_is_serialised_once() {
        let reply = Reply::json(200, &serde_json::json!({"status": "ok"}));
        assert_eq!(reply.body, ReplyBody::Json(Bytes::from_static(br#"{"status":"ok"}"#)));
        assert_eq!(reply.connection, Connection::KeepAlive);
    }
}
