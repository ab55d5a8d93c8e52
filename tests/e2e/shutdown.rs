//! SIGTERM: readiness fails at once, listeners accept during the drain delay, requests in
//! flight finish, and the process exits 0 within drain_delay + drain_timeout + 1 s.

use std::time::{Duration, Instant};

use crate::support::edge::{TestEdge, admin_status};
use axum::http::Method;
use serde_json::json;

use crate::support::mock_api::{MockApi, Reply};
use crate::support::policy;
use crate::support::tls_client::{Protocol, client};

#[tokio::test]
async fn sigterm_drains_then_exits_with_in_flight_requests_completed() {
    let api = MockApi::new()
        .route(Method::GET, "/slow", Reply::json(json!({"slept_ms": 1500})).delay(Duration::from_millis(1500)))
        .start()
        .await;
    let mut edge = TestEdge::new(policy::open()).passthrough(&api.url()).drain("1s", "4s").start();
    let http = client(Protocol::Http1);

    // A slow request is in flight when SIGTERM arrives.
    let slow = tokio::spawn(http.get(edge.https_url("/slow")).send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    edge.signal(nix::sys::signal::Signal::SIGTERM);

    // Readiness fails at once, liveness still answers.
    let deadline = Instant::now() + Duration::from_secs(1);
    let admin = edge.admin;
    let mut readiness = None;
    while Instant::now() < deadline {
        readiness = tokio::task::spawn_blocking(move || admin_status(admin, "/readyz")).await.expect("join");
        if readiness == Some(503) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(readiness, Some(503), "readyz must fail right after SIGTERM");

    // During the drain delay new requests are still served.
    let during_delay =
        client(Protocol::Http2).get(edge.https_url("/health")).send().await.expect("served during delay");
    assert_eq!(during_delay.status(), 200);

    let response = slow.await.expect("join").expect("the in-flight request completes");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["slept_ms"], 1500);

    let status = tokio::task::spawn_blocking(move || {
        let status = edge.wait_exit(Duration::from_secs(1 + 4 + 1));
        (status, edge)
    })
    .await
    .expect("join");
    let (status, edge) = status;
    let status = status.unwrap_or_else(|| panic!("did not exit in time:\n{}", edge.stderr()));
    assert!(status.success(), "exit status {status}");
    assert!(signalled.elapsed() < Duration::from_secs(1 + 4 + 1), "took {:?}", signalled.elapsed());
}

#[tokio::test]
async fn an_idle_edge_exits_soon_after_the_drain_delay() {
    let mut edge = TestEdge::new(policy::open()).drain("0s", "10s").start();
    let signalled = Instant::now();
    edge.signal(nix::sys::signal::Signal::SIGTERM);
    let (status, edge) =
        tokio::task::spawn_blocking(move || (edge.wait_exit(Duration::from_secs(5)), edge)).await.expect("join");
    let status = status.unwrap_or_else(|| panic!("did not exit in time:\n{}", edge.stderr()));
    assert!(status.success(), "exit status {status}:\n{}", edge.stderr());
    // Nothing was in flight: no need to wait out the 10 s drain timeout.
    assert!(signalled.elapsed() < Duration::from_secs(5), "took {:?}", signalled.elapsed());
}
