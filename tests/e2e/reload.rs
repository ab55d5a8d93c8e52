//! Live reload end to end: a policy change enforced without restart, an invalid policy
//! rejected while the old one serves, a certificate rotated by a Kubernetes `..data` swap, and
//! SIGHUP.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::certs::{SecretMount, issue_server_certificate, leaf_der};
use crate::support::edge::{TestEdge, admin_body};
use crate::support::raw_http::RawConnection;

/// No auth, this rate limit, and the policy file watched every `watch_interval`.
fn limited_to(rate_limit: Value, watch_interval: &str) -> Value {
    let mut policy = json!({"auth": {"mode": "none"}, "reload": {"watch_interval": watch_interval}});
    policy["rate_limit"] = rate_limit;
    policy
}

fn generous() -> Value {
    limited_to(json!({"requests_per_minute": 6000, "burst": 1000}), "200ms")
}

fn strict() -> Value {
    limited_to(json!({"requests_per_minute": 1, "burst": 0}), "200ms")
}

/// Polls (bounded: 10 s) until `condition` holds.
async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn limited(edge: &TestEdge) -> bool {
    let mut connection = RawConnection::connect(edge.https).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(connection.get("/anything", &[]).await.status);
    }
    statuses.contains(&429)
}

#[tokio::test]
async fn a_changed_rate_limit_is_enforced_without_a_restart() {
    let edge = TestEdge::new(generous()).audit_file(None, 1024).start();
    let pid = edge.pid();
    assert!(!limited(&edge).await);
    edge.rewrite_policy(strict());
    eventually("the stricter limit", async || limited(&edge).await).await;
    assert_eq!(edge.pid(), pid, "same process");
    let events = edge.wait_audit(|events| events.iter().any(|event| event["event.action"] == "CONFIG_RELOAD"));
    let reload = events.iter().find(|event| event["event.action"] == "CONFIG_RELOAD").expect("event");
    assert_eq!(reload["event.outcome"], "success");
    let metrics = admin_body(edge.admin, "/metrics").expect("metrics");
    assert!(metrics.contains("mcp_edge_config_reloads_total{outcome=\"success\"} 1"), "{metrics}");
}

#[tokio::test]
async fn an_invalid_policy_is_rejected_and_the_old_one_keeps_serving() {
    let edge = TestEdge::new(generous()).audit_file(None, 1024).start();
    edge.rewrite_policy(limited_to(json!({"requests_per_minute": 0, "brust": 3}), "200ms"));
    let events = edge.wait_audit(|events| events.iter().any(|event| event["event.action"] == "CONFIG_RELOAD"));
    let reload = events.iter().find(|event| event["event.action"] == "CONFIG_RELOAD").expect("event");
    assert_eq!(reload["event.outcome"], "failure");
    assert_eq!(reload["event.reason"], "invalid_config");
    assert!(edge.stderr().contains("unknown field `brust`"), "the problem is logged");
    assert!(!limited(&edge).await, "the old, generous policy still serves");
    let metrics = admin_body(edge.admin, "/metrics").expect("metrics");
    assert!(metrics.contains("mcp_edge_config_reloads_total{outcome=\"failure\"} 1"), "{metrics}");
    // Fixing the file is picked up too.
    edge.rewrite_policy(strict());
    eventually("the fixed policy", async || limited(&edge).await).await;
}

#[tokio::test]
async fn a_certificate_rotated_by_a_data_symlink_swap_serves_new_handshakes() {
    let folder = tempfile::tempdir().expect("dir");
    let (first_chain, first_key) = issue_server_certificate(folder.path(), "first");
    let (second_chain, second_key) = issue_server_certificate(folder.path(), "second");
    let mount_folder = folder.path().join("secret");
    std::fs::create_dir(&mount_folder).expect("mount");
    let mut mount = SecretMount::new(&mount_folder, &first_chain, &first_key);
    let edge = TestEdge::new(generous()).tls_files(mount.cert(), mount.key()).audit_file(None, 1024).start();

    let mut old_connection = RawConnection::connect(edge.https).await;
    assert_eq!(old_connection.peer_certificate(), leaf_der(&first_chain));
    mount.publish(&second_chain, &second_key);
    eventually("the new certificate", async || {
        RawConnection::connect(edge.https).await.peer_certificate() == leaf_der(&second_chain)
    })
    .await;
    assert_eq!(old_connection.get("/health", &[]).await.status, 200, "an open connection keeps working");
    let events = edge.wait_audit(|events| events.iter().any(|event| event["event.action"] == "CERT_RELOAD"));
    assert!(events.iter().any(|event| event["event.action"] == "CERT_RELOAD" && event["event.outcome"] == "success"));
}

#[tokio::test]
async fn sighup_reloads_when_files_are_not_watched() {
    let edge = TestEdge::new(limited_to(json!({"requests_per_minute": 6000, "burst": 1000}), "0s")).start();
    edge.rewrite_policy(limited_to(json!({"requests_per_minute": 1, "burst": 0}), "0s"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!limited(&edge).await, "not watched: the change waits for a signal");
    edge.signal(nix::sys::signal::Signal::SIGHUP);
    eventually("the reload on SIGHUP", async || limited(&edge).await).await;
}

/// A new self-signed CA in `folder`; returns its certificate's path.
fn other_ca(folder: &std::path::Path) -> std::path::PathBuf {
    let cert = folder.join("other-ca.crt");
    let key = folder.join("other-ca.key");
    let output = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=another test CA", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(output.status.success(), "openssl: {}", String::from_utf8_lossy(&output.stderr));
    cert
}

#[tokio::test]
async fn a_client_ca_bundle_replaced_in_place_applies_to_new_handshakes() {
    use crate::support::tls_client::{Protocol, client_with_certificate};
    let folder = tempfile::tempdir().expect("dir");
    let bundle = folder.path().join("client-ca.crt");
    std::fs::copy(crate::support::repo_root().join("certs.example/ca.crt"), &bundle).expect("copy CA");
    let edge = TestEdge::new(generous()).client_ca_file(bundle.clone()).audit_file(None, 1024).start();
    let health = edge.https_url("/health");
    let admitted = client_with_certificate(Protocol::Http1).get(&health).send().await.expect("mTLS");
    assert_eq!(admitted.status(), 200);

    // The CA that signed the client's certificate leaves the bundle (same path, new content).
    let next = folder.path().join("client-ca.next");
    std::fs::copy(other_ca(folder.path()), &next).expect("copy");
    std::fs::rename(&next, &bundle).expect("replace the bundle");
    eventually("the client certificate is refused", async || {
        client_with_certificate(Protocol::Http1).get(&health).send().await.is_err()
    })
    .await;
    let events = edge.wait_audit(|events| events.iter().any(|event| event["event.action"] == "CERT_RELOAD"));
    let reload = events.iter().find(|event| event["event.action"] == "CERT_RELOAD").expect("event");
    assert_eq!(reload["event.outcome"], "success");
    assert_eq!(reload["event.reason"], "client_ca");
}
