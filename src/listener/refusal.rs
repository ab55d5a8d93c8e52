//! Refusing a request head the connection layer will not pass on (408, 431), then closing
//! the connection the way nginx does (lingering close).
//!
//! The answer is written here, not by `edge/respond.rs`: no request was parsed, so there is
//! no pingora session to answer through. It has the same JSON body and `x-request-id` as the
//! edge's own errors, and says `Connection: close`.

use std::time::Duration;

use pingora::protocols::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// How long writing the refusal may take; a client that does not read loses it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long, and how much, the connection keeps reading after the refusal so the client's
/// unsent bytes do not make the kernel answer with a reset that destroys the response in
/// flight (nginx: `lingering_time`, `lingering_timeout`).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 * 1024;

/// Why a head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not complete within `limits.header_timeout`.
    Timeout,
    /// Larger than `limits.max_header_bytes`.
    HeadTooLarge,
}

impl Refusal {
    fn status_line(self) -> &'static str {
        match self {
            Refusal::Timeout => "408 Request Timeout",
            Refusal::HeadTooLarge => "431 Request Header Fields Too Large",
        }
    }

    fn public_message(self) -> &'static str {
        match self {
            Refusal::Timeout => "request timeout",
            Refusal::HeadTooLarge => "request headers too large",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Timeout => "header_timeout",
            Refusal::HeadTooLarge => "max_header_bytes",
        }
    }
}

/// Writes the refusal, half-closes, and drains what the client still sends (bounded).
pub async fn refuse(mut stream: Stream, refusal: Refusal) {
    let response = response_bytes(refusal, &crate::edge::request_id::new_request_id());
    let written = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&response).await?;
        stream.flush().await?;
        // Half-close: the client reads the answer and then EOF (TLS: close_notify first).
        AsyncWriteExt::shutdown(&mut stream).await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    linger(&mut stream).await;
}

fn response_bytes(refusal: Refusal, request_id: &str) -> Vec<u8> {
    let body = format!(r#"{{"error":"{}","request_id":"{request_id}"}}"#, refusal.public_message());
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\
         cache-control: no-store\r\nx-content-type-options: nosniff\r\nx-request-id: {request_id}\r\n\
         connection: close\r\n\r\n{body}",
        status = refusal.status_line(),
        length = body.len(),
    )
    .into_bytes()
}

async fn linger(stream: &mut Stream) {
    let until = Instant::now() + LINGER_TIME;
    let mut scratch = [0u8; 4096];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match tokio::time::timeout_at(until, stream.read(&mut scratch)).await {
            Ok(Ok(read)) if read > 0 => drained += read,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_response_that_closes() {
        let text = String::from_utf8(response_bytes(Refusal::Timeout, "abc")).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 408 Request Timeout\r\n"));
        assert!(head.contains("\r\nconnection: close"));
        assert!(head.contains(&format!("\r\ncontent-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(json["error"], "request timeout");
        assert_eq!(json["request_id"], "abc");
    }
}
