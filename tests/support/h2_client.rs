//! HTTP/2 over TLS (ALPN h2) for framing tests: the `h2` crate's client for requests it
//! will send (a `content-length` that the DATA frames contradict), and a few hand-made frames
//! for what no conforming client sends (connection-specific headers, CR/LF inside a value).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::tls_client::{Protocol, raw_config};

const PATIENCE: Duration = Duration::from_secs(10);

/// A TLS connection to `address` that negotiated h2.
pub async fn tls(address: SocketAddr) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(address).await.expect("connect");
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&raw_config(Protocol::Http2)));
    let stream = connector.connect(ServerName::try_from("localhost").expect("name"), tcp).await.expect("TLS");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "the edge negotiates h2");
    stream
}

/// How one h2 request ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum H2Outcome {
    Response {
        status: u16,
        body: Vec<u8>,
    },
    /// The stream was reset or the connection went away, with this error code.
    Refused {
        reason: u32,
    },
    /// The connection broke without an HTTP/2 error code.
    Broken(String),
}

/// Sends one request with the `h2` crate on a fresh connection: the head, then each of
/// `data` as a DATA frame, the last one ending the stream.
pub async fn send(address: SocketAddr, request: http::Request<()>, data: &[&[u8]]) -> H2Outcome {
    let (client, connection) = h2::client::handshake(tls(address).await).await.expect("h2 handshake");
    let driver = tokio::spawn(connection);
    let outcome = tokio::time::timeout(PATIENCE, exchange(client, request, data)).await.expect("h2 answer in time");
    driver.abort();
    outcome
}

async fn exchange(client: h2::client::SendRequest<Bytes>, request: http::Request<()>, data: &[&[u8]]) -> H2Outcome {
    let mut client = match client.ready().await {
        Ok(client) => client,
        Err(error) => return outcome_of(&error),
    };
    let (response, mut stream) = match client.send_request(request, data.is_empty()) {
        Ok(sent) => sent,
        Err(error) => return outcome_of(&error),
    };
    for (index, chunk) in data.iter().enumerate() {
        if let Err(error) = stream.send_data(Bytes::copy_from_slice(chunk), index + 1 == data.len()) {
            return outcome_of(&error);
        }
    }
    let response = match response.await {
        Ok(response) => response,
        Err(error) => return outcome_of(&error),
    };
    let status = response.status().as_u16();
    let mut body_stream = response.into_body();
    let mut body = Vec::new();
    while let Some(chunk) = body_stream.data().await {
        match chunk {
            Ok(chunk) => {
                let _ = body_stream.flow_control().release_capacity(chunk.len());
                body.extend_from_slice(&chunk);
            }
            Err(error) => return outcome_of(&error),
        }
    }
    H2Outcome::Response { status, body }
}

fn outcome_of(error: &h2::Error) -> H2Outcome {
    match error.reason() {
        Some(reason) => H2Outcome::Refused { reason: u32::from(reason) },
        None => H2Outcome::Broken(error.to_string()),
    }
}

/// Frame types and flags used here (RFC 9113 §6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

/// Sends one request on stream 1 of a fresh connection with hand-encoded headers (HPACK
/// literals, no Huffman, no indexing), so header fields a conforming client refuses to send
/// can be sent; then `body` as one DATA frame if it is not empty. Returns how stream 1 ended.
pub async fn send_raw(address: SocketAddr, headers: &[(&str, &[u8])], body: &[u8]) -> H2Outcome {
    let mut stream = tls(address).await;
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    let mut block = Vec::new();
    for (name, value) in headers {
        block.push(0x00); // literal header field without indexing, new name
        encode_string(&mut block, name.as_bytes());
        encode_string(&mut block, value);
    }
    let headers_flags = END_HEADERS | if body.is_empty() { END_STREAM } else { 0 };
    out.extend(frame(HEADERS, headers_flags, 1, &block));
    if !body.is_empty() {
        out.extend(frame(DATA, END_STREAM, 1, body));
    }
    stream.write_all(&out).await.expect("write frames");
    stream.flush().await.expect("flush");
    tokio::time::timeout(PATIENCE, read_outcome(&mut stream)).await.expect("h2 answer in time")
}

async fn read_outcome(stream: &mut TlsStream<TcpStream>) -> H2Outcome {
    let mut status = None;
    let mut body = Vec::new();
    loop {
        let mut header = [0u8; 9];
        if let Err(error) = stream.read_exact(&mut header).await {
            return H2Outcome::Broken(error.to_string());
        }
        let length = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let (kind, flags) = (header[3], header[4]);
        let stream_id = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; length];
        if let Err(error) = stream.read_exact(&mut payload).await {
            return H2Outcome::Broken(error.to_string());
        }
        match kind {
            SETTINGS if flags & ACK == 0 => {
                let _ = stream.write_all(&frame(SETTINGS, ACK, 0, &[])).await;
            }
            RST_STREAM if stream_id == 1 && payload.len() >= 4 => {
                return H2Outcome::Refused {
                    reason: u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]),
                };
            }
            GOAWAY if payload.len() >= 8 => {
                let reason = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
                if reason != 0 || status.is_none() {
                    return H2Outcome::Refused { reason };
                }
            }
            HEADERS if stream_id == 1 => {
                // The edge's encoder sends common statuses as static-table indexes (RFC 7541
                // Appendix A: 8 = 200 ... 14 = 500); anything else is reported as 0.
                status = Some(match payload.first() {
                    Some(0x88) => 200,
                    Some(0x89) => 204,
                    Some(0x8c) => 400,
                    Some(0x8d) => 404,
                    Some(0x8e) => 500,
                    _ => 0,
                });
                if flags & END_STREAM != 0 {
                    return H2Outcome::Response { status: status.unwrap_or(0), body };
                }
            }
            DATA if stream_id == 1 => {
                body.extend_from_slice(&payload);
                if flags & END_STREAM != 0 {
                    return H2Outcome::Response { status: status.unwrap_or(0), body };
                }
            }
            _ => {}
        }
    }
}

fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).expect("frame fits").to_be_bytes();
    let mut out = vec![length[1], length[2], length[3], kind, flags];
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK string literal without Huffman coding: a 7-bit-prefix length, then the bytes.
fn encode_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut length = bytes.len();
    if length < 127 {
        out.push(u8::try_from(length).expect("under 127"));
    } else {
        out.push(127);
        length -= 127;
        while length >= 128 {
            out.push(u8::try_from(length % 128).expect("under 128") | 0x80);
            length /= 128;
        }
        out.push(u8::try_from(length).expect("under 128"));
    }
    out.extend_from_slice(bytes);
}
