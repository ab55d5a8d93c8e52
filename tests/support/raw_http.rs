//! HTTP/1.1 by hand over one TLS connection, for tests about the connection itself
//! (keep-alive after a rejection) and for requests a normal client will not send.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::tls_client::{Protocol, raw_config};

pub struct RawResponse {
    pub status: u16,
    /// Lower-cased names; repeated headers joined with ", ".
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// One TLS connection speaking HTTP/1.1.
pub struct RawConnection {
    stream: TlsStream<TcpStream>,
    buffer: Vec<u8>,
}

impl RawConnection {
    pub async fn connect(address: SocketAddr) -> Self {
        Self::connect_from(address, None).await
    }

    /// Connects from a chosen loopback source address (e.g. 127.0.0.2) to look like another client.
    pub async fn connect_from(address: SocketAddr, source: Option<std::net::IpAddr>) -> Self {
        let tcp = match source {
            None => TcpStream::connect(address).await.expect("connect"),
            Some(source) => {
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                socket.bind(SocketAddr::new(source, 0)).expect("bind source");
                socket.connect(address).await.expect("connect")
            }
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&raw_config(Protocol::Http1)));
        let stream = connector.connect(ServerName::try_from("localhost").expect("name"), tcp).await.expect("TLS");
        Self { stream, buffer: Vec::new() }
    }

    /// Sends `request` (a full HTTP/1.1 request, head and body) and reads one response.
    pub async fn send(&mut self, request: &[u8]) -> RawResponse {
        self.stream.write_all(request).await.expect("write");
        self.stream.flush().await.expect("flush");
        tokio::time::timeout(Duration::from_secs(10), self.read_response()).await.expect("response in time")
    }

    /// A GET with the given extra header lines (`"Name: value"`).
    pub async fn get(&mut self, path: &str, headers: &[&str]) -> RawResponse {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        self.send(request.as_bytes()).await
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(read) => {
                self.buffer.extend_from_slice(&chunk[..read]);
                true
            }
        }
    }

    async fn read_response(&mut self) -> RawResponse {
        let head_end = loop {
            if let Some(position) = self.buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                break position;
            }
            assert!(self.fill().await, "connection closed before a response head");
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        self.buffer.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .expect("status");
        let mut headers: HashMap<String, String> = HashMap::new();
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                headers
                    .entry(name.trim().to_ascii_lowercase())
                    .and_modify(|existing| {
                        existing.push_str(", ");
                        existing.push_str(value.trim());
                    })
                    .or_insert_with(|| value.trim().to_string());
            }
        }
        let length: usize = headers.get("content-length").and_then(|value| value.parse().ok()).unwrap_or(0);
        while self.buffer.len() < length {
            assert!(self.fill().await, "connection closed inside a body");
        }
        let body = self.buffer.drain(..length).collect();
        RawResponse { status, headers, body }
    }

    /// The DER of the certificate the server presented.
    pub fn peer_certificate(&self) -> Vec<u8> {
        self.stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| cert.to_vec())
            .expect("peer certificate")
    }

    /// True when the server has closed the connection (reads EOF within a short wait).
    pub async fn is_closed(&mut self) -> bool {
        matches!(tokio::time::timeout(Duration::from_millis(300), self.fill()).await, Ok(false))
    }
}
