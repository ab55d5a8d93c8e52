//! A strict HTTP/1.1 upstream stand-in on raw TCP, for request-smuggling tests: it parses
//! every request the edge forwards by the letter of RFC 9112 (CRLF only, no obs-fold, one
//! `Host`, never both `Content-Length` and `Transfer-Encoding`, plain `chunked` only, no
//! chunk extensions) and records each request head and body it reads, so a test can count
//! what arrived. Anything it cannot parse strictly is recorded as a violation and the
//! connection is closed: the edge must never send such bytes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Generous bounds: the edge's own limits are far lower.
const MAX_LINE: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// One request as the upstream parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    pub target: String,
    /// Names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// Everything the upstream saw since the last [`RawUpstream::clear`].
#[derive(Debug, Default, Clone)]
pub struct UpstreamLog {
    /// Requests read completely, head and body.
    pub requests: Vec<SeenRequest>,
    /// Request heads whose connection closed before the body was complete (the edge gave up
    /// on the request mid-body): not requests, but not a framing error either.
    pub aborted: Vec<SeenRequest>,
    /// Bytes the strict parser refused, with the reason.
    pub violations: Vec<String>,
}

pub struct RawUpstream {
    pub address: SocketAddr,
    log: Arc<Mutex<UpstreamLog>>,
}

impl RawUpstream {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind raw upstream");
        let address = listener.local_addr().expect("address");
        let log = Arc::new(Mutex::new(UpstreamLog::default()));
        let shared = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        Self { address, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A copy of what was seen so far.
    pub fn log(&self) -> UpstreamLog {
        self.log.lock().expect("log lock").clone()
    }

    pub fn clear(&self) {
        *self.log.lock().expect("log lock") = UpstreamLog::default();
    }
}

/// How reading one request ended.
enum Read {
    Request(SeenRequest),
    /// The connection closed cleanly between requests.
    Closed,
    Aborted(SeenRequest),
    Violation(String),
}

async fn serve(stream: TcpStream, log: Arc<Mutex<UpstreamLog>>) {
    let (read_half, mut write_half) = stream.into_split();
    let mut reader = BufReader::new(read_half);
    loop {
        let outcome = read_request(&mut reader, &mut write_half).await;
        let reply = {
            let mut log = log.lock().expect("log lock");
            match outcome {
                Read::Request(request) => {
                    let body = format!("seen {}", request.target);
                    log.requests.push(request);
                    Some(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()))
                }
                Read::Closed => None,
                Read::Aborted(head) => {
                    log.aborted.push(head);
                    None
                }
                Read::Violation(reason) => {
                    log.violations.push(reason);
                    None
                }
            }
        };
        let Some(reply) = reply else { return };
        if write_half.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn read_request(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
) -> Read {
    let request_line = match read_line(reader).await {
        Ok(Some(line)) => line,
        Ok(None) => return Read::Closed,
        Err(reason) => return Read::Violation(reason),
    };
    let mut request = match parse_request_line(&request_line) {
        Ok(request) => request,
        Err(reason) => return Read::Violation(reason),
    };
    loop {
        let line = match read_line(reader).await {
            Ok(Some(line)) => line,
            Ok(None) => return Read::Aborted(request),
            Err(reason) => return Read::Violation(reason),
        };
        if line.is_empty() {
            break;
        }
        match parse_header_line(&line) {
            Ok(header) => request.headers.push(header),
            Err(reason) => return Read::Violation(reason),
        }
    }
    let framing = match body_framing(&request) {
        Ok(framing) => framing,
        Err(reason) => return Read::Violation(reason),
    };
    let expects_continue = request.header("expect").is_some_and(|value| value.eq_ignore_ascii_case("100-continue"));
    if expects_continue && writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err() {
        return Read::Aborted(request);
    }
    let body = match framing {
        Framing::Length(length) => read_exact(reader, length).await,
        Framing::Chunked => read_chunked(reader).await,
    };
    match body {
        Ok(Some(body)) => {
            request.body = body;
            Read::Request(request)
        }
        Ok(None) => Read::Aborted(request),
        Err(reason) => Read::Violation(reason),
    }
}

enum Framing {
    Length(usize),
    Chunked,
}

fn body_framing(request: &SeenRequest) -> Result<Framing, String> {
    let lengths: Vec<&str> =
        request.headers.iter().filter(|(name, _)| name == "content-length").map(|(_, value)| value.as_str()).collect();
    let encodings: Vec<&str> = request
        .headers
        .iter()
        .filter(|(name, _)| name == "transfer-encoding")
        .map(|(_, value)| value.as_str())
        .collect();
    let hosts = request.headers.iter().filter(|(name, _)| name == "host").count();
    if hosts != 1 {
        return Err(format!("{hosts} Host headers"));
    }
    match (lengths.as_slice(), encodings.as_slice()) {
        ([], []) => Ok(Framing::Length(0)),
        ([length], []) => {
            if length.is_empty() || !length.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(format!("Content-Length {length:?}"));
            }
            let length: usize = length.parse().map_err(|_| format!("Content-Length {length:?} overflows"))?;
            if length > MAX_BODY {
                return Err(format!("Content-Length {length} over the stand-in's limit"));
            }
            Ok(Framing::Length(length))
        }
        ([], ["chunked"]) => Ok(Framing::Chunked),
        (lengths, encodings) => {
            Err(format!("framing headers Content-Length {lengths:?} Transfer-Encoding {encodings:?}"))
        }
    }
}

/// One CRLF-terminated line without its CRLF; `None` on a clean EOF before any byte.
async fn read_line(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Result<Option<String>, String> {
    let mut line = Vec::new();
    let read = (&mut *reader).take(MAX_LINE as u64).read_until(b'\n', &mut line).await.map_err(|e| e.to_string())?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return if line.len() >= MAX_LINE { Err("line too long".to_string()) } else { Ok(None) };
    }
    line.pop();
    if line.pop() != Some(b'\r') {
        return Err(format!("bare LF after {:?}", String::from_utf8_lossy(&line)));
    }
    if let Some(byte) = line.iter().find(|byte| **byte == b'\r' || **byte == 0) {
        return Err(format!("byte {byte:#04x} inside a line: {:?}", String::from_utf8_lossy(&line)));
    }
    String::from_utf8(line).map(Some).map_err(|_| "line is not UTF-8".to_string())
}

fn parse_request_line(line: &str) -> Result<SeenRequest, String> {
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts.as_slice() else {
        return Err(format!("request line {line:?}"));
    };
    if method.is_empty() || !method.bytes().all(|byte| byte.is_ascii_uppercase()) {
        return Err(format!("method {method:?}"));
    }
    if target.is_empty() || !target.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(format!("target {target:?}"));
    }
    if *version != "HTTP/1.1" {
        return Err(format!("version {version:?}"));
    }
    Ok(SeenRequest { method: method.to_string(), target: target.to_string(), headers: Vec::new(), body: Vec::new() })
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn parse_header_line(line: &str) -> Result<(String, String), String> {
    if line.starts_with([' ', '\t']) {
        return Err(format!("obs-fold line {line:?}"));
    }
    let Some((name, value)) = line.split_once(':') else {
        return Err(format!("header line without a colon: {line:?}"));
    };
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(format!("header name {name:?}"));
    }
    let value = value.trim_matches([' ', '\t']);
    if !value.bytes().all(|byte| byte == b'\t' || (b' '..=b'~').contains(&byte) || byte >= 0x80) {
        return Err(format!("header value {value:?}"));
    }
    Ok((name.to_ascii_lowercase(), value.to_string()))
}

/// `None` when the connection closed before `length` bytes arrived.
async fn read_exact(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    length: usize,
) -> Result<Option<Vec<u8>>, String> {
    let mut body = vec![0u8; length];
    match reader.read_exact(&mut body).await {
        Ok(_) => Ok(Some(body)),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(error) => Err(error.to_string()),
    }
}

/// A chunked body: `1*HEXDIG CRLF data CRLF`, no extensions, then `0 CRLF`, trailer lines
/// and `CRLF`. `None` when the connection closed inside it.
async fn read_chunked(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(size_line) = read_line(reader).await? else { return Ok(None) };
        if size_line.is_empty() || size_line.len() > 8 || !size_line.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(format!("chunk size line {size_line:?}"));
        }
        let size = usize::from_str_radix(&size_line, 16).map_err(|e| e.to_string())?;
        if size == 0 {
            break;
        }
        if body.len() + size > MAX_BODY {
            return Err("chunked body over the stand-in's limit".to_string());
        }
        let Some(mut chunk) = read_exact(reader, size + 2).await? else { return Ok(None) };
        if !chunk.ends_with(b"\r\n") {
            return Err("chunk data not followed by CRLF".to_string());
        }
        chunk.truncate(size);
        body.extend_from_slice(&chunk);
    }
    loop {
        let Some(trailer) = read_line(reader).await? else { return Ok(None) };
        if trailer.is_empty() {
            return Ok(Some(body));
        }
        parse_header_line(&trailer)?;
    }
}
