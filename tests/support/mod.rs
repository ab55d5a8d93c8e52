//! Builders that start the real `mcp-edge` binary (`edge`, with policies as JSON values from
//! `policy`) and a mock upstream API whose routes a test declares (`mock_api`) on free loopback
//! ports, plus TLS clients that trust the development CA.

#![allow(dead_code)]

pub mod certs;
pub mod edge;
pub mod flood;
pub mod h2_client;
pub mod jwt;
pub mod mock_api;
pub mod policy;
pub mod raw_http;
pub mod raw_upstream;
pub mod redis_server;
pub mod tls_client;
pub mod wire_client;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

/// The repository root (where `certs.example/` and `conf/` live).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port")
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
