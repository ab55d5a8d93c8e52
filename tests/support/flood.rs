//! Tools for connection-level tests: the edge's resident memory, raw TCP and TLS
//! connections, an `h2` client, raw HTTP/2 frames, and a plain upstream that answers every
//! request with a large body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;

use super::tls_client::{Protocol, raw_config};

/// The resident set of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A TLS connection to `address` offering exactly `protocol` by ALPN.
pub async fn tls(address: SocketAddr, protocol: Protocol) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(address).await.expect("connect");
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&raw_config(protocol)));
    connector.connect(ServerName::try_from("localhost").expect("name"), tcp).await.expect("TLS")
}

/// Reads until EOF or error and returns what was read; `None` if the peer kept the
/// connection open for all of `limit`.
pub async fn read_to_close(stream: &mut (impl AsyncRead + Unpin), limit: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(received),
            Ok(Ok(read)) => received.extend_from_slice(&chunk[..read]),
        }
    }
}

/// The status code of the first HTTP/1 response in `bytes`.
pub fn status_of(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes.get(..bytes.len().min(64))?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// An `h2` client connection over TLS; the connection is driven on its own task, whose
/// handle resolves when the server closes the connection.
pub async fn h2_client(
    address: SocketAddr,
    builder: &h2::client::Builder,
) -> (h2::client::SendRequest<Bytes>, tokio::task::JoinHandle<Result<(), h2::Error>>) {
    let stream = tls(address, Protocol::Http2).await;
    let (send, connection) = builder.handshake(stream).await.expect("h2 handshake");
    (send, tokio::spawn(connection))
}

/// A GET for `path` on the edge over HTTP/2.
pub fn h2_get(path: &str) -> http::Request<()> {
    http::Request::get(format!("https://localhost{path}")).body(()).expect("request")
}

/// One HTTP/2 frame (RFC 9113 §4.1).
pub fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).expect("frame length");
    let mut frame = Vec::with_capacity(9 + payload.len());
    frame.extend_from_slice(&length.to_be_bytes()[1..]);
    frame.push(kind);
    frame.push(flags);
    frame.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const HEADERS: u8 = 0x1;
pub const SETTINGS: u8 = 0x4;
pub const RST_STREAM: u8 = 0x3;
pub const PING: u8 = 0x6;
pub const CONTINUATION: u8 = 0x9;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
/// RST_STREAM's CANCEL error code.
pub const CANCEL: u32 = 0x8;

/// An HPACK literal header without indexing and with literal names (RFC 7541 §6.2.2);
/// values shorter than 127 bytes.
pub fn hpack_literal(name: &str, value: &str) -> Vec<u8> {
    assert!(name.len() < 127 && value.len() < 127, "short strings only");
    let mut block = vec![0x00, name.len() as u8];
    block.extend_from_slice(name.as_bytes());
    block.push(value.len() as u8);
    block.extend_from_slice(value.as_bytes());
    block
}

/// A plaintext HTTP/1.1 upstream that answers every request with `body_bytes` of `x`, as
/// fast as the proxy reads.
pub async fn bulk_upstream(body_bytes: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
    let address = listener.local_addr().expect("address");
    let body = Bytes::from(vec![b'x'; body_bytes]);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    if request.windows(4).any(|window| window == b"\r\n\r\n") {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        );
                        if socket.write_all(head.as_bytes()).await.is_err() || socket.write_all(&body).await.is_err() {
                            return;
                        }
                        request.clear();
                    }
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => request.extend_from_slice(&chunk[..read]),
                    }
                }
            });
        }
    });
    address
}

/// True when `/health` answers 200 over a fresh HTTP/1.1 TLS connection within 5 s.
pub async fn health_answers(https: SocketAddr) -> bool {
    let client = super::tls_client::client(Protocol::Http1);
    let request = client.get(format!("https://localhost:{}/health", https.port())).send();
    matches!(tokio::time::timeout(Duration::from_secs(5), request).await, Ok(Ok(response)) if response.status() == 200)
}
