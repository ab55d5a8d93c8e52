//! `mcp-edge healthcheck`: one GET against the admin `/healthz`, for Docker's HEALTHCHECK
//! (the runtime image has no curl). Blocking I/O is fine here: it is a one-shot command.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

pub const DEFAULT_URL: &str = "http://127.0.0.1:9901/healthz";
const TIMEOUT: Duration = Duration::from_secs(3);

/// Returns `Ok` when the URL answers 200.
pub fn check(url: &str) -> Result<(), String> {
    let url = url::Url::parse(url).map_err(|error| format!("{url:?} is not a URL: {error}"))?;
    if url.scheme() != "http" {
        return Err("only http:// URLs are supported (the admin listener is plain HTTP)".to_string());
    }
    let host = url.host_str().ok_or("the URL has no host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let address = (host.trim_start_matches('[').trim_end_matches(']'), port)
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve {host}: {error}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)
        .map_err(|error| format!("cannot connect to {address}: {error}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|error| error.to_string())?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|error| error.to_string())?;
    let request = format!("GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n", url.path());
    stream.write_all(request.as_bytes()).map_err(|error| format!("cannot send the request: {error}"))?;
    let mut head = [0u8; 64];
    let read = stream.read(&mut head).map_err(|error| format!("no answer: {error}"))?;
    let status_line = String::from_utf8_lossy(&head[..read]);
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    if status == "200" { Ok(()) } else { Err(format!("{url} answered {status:?}")) }
}
