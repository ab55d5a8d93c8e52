//! TLS termination: h2 and http/1.1 by ALPN, TLS 1.2/1.3 only.

use std::process::{Command, Stdio};

use crate::support::edge::TestEdge;
use crate::support::policy;
use crate::support::tls_client::{Protocol, client, client_with_certificate};

#[tokio::test]
async fn health_answers_over_http1_and_http2() {
    let edge = TestEdge::new(policy::open()).start();
    for (protocol, version) in
        [(Protocol::Http1, reqwest::Version::HTTP_11), (Protocol::Http2, reqwest::Version::HTTP_2)]
    {
        let response = client(protocol).get(edge.https_url("/health")).send().await.expect("health");
        assert_eq!(response.version(), version);
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("x-request-id"));
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body, serde_json::json!({"status": "ok"}));
    }
}

/// `openssl s_client` with one protocol version; true when the handshake completed.
fn handshake(edge: &TestEdge, version_flag: &str) -> bool {
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &edge.https.to_string(), "-servername", "localhost", version_flag])
        // Let the client offer old versions at all; the point is what the server accepts.
        .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = String::from_utf8_lossy(&output.stdout);
    output.status.success() && !text.contains("Cipher is (NONE)")
}

#[test]
fn only_tls12_and_tls13_handshakes_succeed() {
    let edge = TestEdge::new(policy::open()).start();
    assert!(!handshake(&edge, "-tls1_1"), "TLS 1.1 must be refused");
    assert!(!handshake(&edge, "-tls1"), "TLS 1.0 must be refused");
    assert!(handshake(&edge, "-tls1_2"), "TLS 1.2 must work");
    assert!(handshake(&edge, "-tls1_3"), "TLS 1.3 must work");
}

#[tokio::test]
async fn plaintext_listener_serves_the_same_routes() {
    let edge = TestEdge::new(policy::open()).plain_http().start();
    let address = edge.http.expect("plain listener");
    let response = reqwest::get(format!("http://{address}/health")).await.expect("health");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn with_client_ca_only_clients_with_a_certificate_get_in() {
    let edge = TestEdge::new(policy::open()).client_ca().start();
    let without = client(Protocol::Http1).get(edge.https_url("/health")).send().await;
    assert!(without.is_err(), "a client without a certificate must fail the handshake");
    let with = client_with_certificate(Protocol::Http2).get(edge.https_url("/health")).send().await.expect("mTLS");
    assert_eq!(with.status(), 200);
}
