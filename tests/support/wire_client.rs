//! HTTP/1.1 as raw bytes over plain TCP or TLS, for framing tests: the test writes exactly
//! the bytes it wants and reads every response the edge sends, interim ones included, until
//! the edge closes the connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tls_client::{Protocol, raw_config};

/// How long one connection may take to answer or close; far above any real answer time.
const PATIENCE: Duration = Duration::from_secs(10);

/// Which of the edge's listeners a connection goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Plain,
    Tls,
}

#[derive(Debug, Clone)]
pub struct WireResponse {
    pub status: u16,
    /// Lower-cased names, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl WireResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status)
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub struct WireConnection {
    stream: Box<dyn Stream>,
    buffer: Vec<u8>,
    closed: bool,
}

impl WireConnection {
    pub async fn connect(listener: Listener, address: SocketAddr) -> Self {
        let tcp = TcpStream::connect(address).await.expect("connect");
        let stream: Box<dyn Stream> = match listener {
            Listener::Plain => Box::new(tcp),
            Listener::Tls => {
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(&raw_config(Protocol::Http1)));
                let name = ServerName::try_from("localhost").expect("name");
                Box::new(connector.connect(name, tcp).await.expect("TLS handshake"))
            }
        };
        Self { stream, buffer: Vec::new(), closed: false }
    }

    /// Writes `bytes` in one go. `false` when the edge had already closed the connection.
    pub async fn write(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok() && self.stream.flush().await.is_ok()
    }

    /// Reads until `finals` final (non-1xx) responses have arrived or the edge closes, and
    /// returns every response read, interim ones included.
    pub async fn read_responses(&mut self, finals: usize) -> Vec<WireResponse> {
        let mut responses = Vec::new();
        tokio::time::timeout(PATIENCE, async {
            while responses.iter().filter(|response: &&WireResponse| !response.is_interim()).count() < finals {
                match take_response(&mut self.buffer, self.closed) {
                    Some(response) => responses.push(response),
                    None if self.closed => break,
                    None => self.fill().await,
                }
            }
        })
        .await
        .expect("responses in time");
        responses
    }

    /// Reads until the edge closes the connection and returns every response that arrived
    /// before the close; `None` if the connection is still open after [`PATIENCE`].
    pub async fn read_until_closed(&mut self) -> Option<Vec<WireResponse>> {
        let closed = tokio::time::timeout(PATIENCE, async {
            while !self.closed {
                self.fill().await;
            }
        })
        .await;
        let mut responses = Vec::new();
        while let Some(response) = take_response(&mut self.buffer, closed.is_ok()) {
            responses.push(response);
        }
        closed.is_ok().then_some(responses)
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await {
            // A reset or a TLS close without close_notify is a close too.
            Ok(0) | Err(_) => self.closed = true,
            Ok(read) => self.buffer.extend_from_slice(&chunk[..read]),
        }
    }
}

/// Takes one complete response off the front of `buffer`. With `closed`, a response framed
/// by the close (no length) ends at the end of the buffer.
fn take_response(buffer: &mut Vec<u8>, closed: bool) -> Option<WireResponse> {
    let head_end = buffer.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let find = |name: &str| headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
    let body_start = head_end + 4;
    let no_body = (100..200).contains(&status) || status == 204 || status == 304;
    let (body, consumed) = if no_body {
        (Vec::new(), body_start)
    } else if let Some(length) = find("content-length") {
        let length: usize = length.parse().ok()?;
        let end = body_start + length;
        if buffer.len() < end {
            return None;
        }
        (buffer[body_start..end].to_vec(), end)
    } else if find("transfer-encoding").is_some_and(|value| value.eq_ignore_ascii_case("chunked")) {
        decode_chunked(&buffer[body_start..]).map(|(body, used)| (body, body_start + used))?
    } else if closed {
        (buffer[body_start..].to_vec(), buffer.len())
    } else {
        return None;
    };
    buffer.drain(..consumed);
    Some(WireResponse { status, headers, body })
}

/// A complete chunked body at the start of `bytes` and how many bytes it took.
fn decode_chunked(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + bytes[at..].windows(2).position(|window| window == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&bytes[at..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            let trailer_end = at + bytes[at..].windows(2).position(|window| window == b"\r\n")?;
            return Some((body, trailer_end + 2));
        }
        if bytes.len() < at + size + 2 {
            return None;
        }
        body.extend_from_slice(&bytes[at..at + size]);
        at += size + 2;
    }
}
