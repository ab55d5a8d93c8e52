//! Upstream resilience end to end against a scripted mock: retries only where safe, the
//! budget, the breaker opening, failing fast and recovering, the overall deadline, and the
//! passthrough behind its own breaker. The mock counts every call it gets.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::edge::{TestEdge, admin_body};
use crate::support::mock_api::{MockApi, Reply};
use crate::support::tls_client::{Protocol, client};

/// Two tools on `/flaky/{key}` (GET and POST) and one on `/slow`; the test's mock decides
/// what each key's path answers.
fn policy(base_url: &str, retry: &Value, breaker: &Value) -> Value {
    let flaky_schema = json!({"type": "object", "required": ["key"], "properties": {"key": {"type": "string"}}});
    json!({
        "auth": {"mode": "none"},
        "rate_limit": {"enabled": false},
        "upstream": {
            "base_url": base_url,
            "timeout": "1s",
            "try_timeout": "500ms",
            "retry": retry,
            "circuit_breaker": breaker,
        },
        "tools": [
            {"name": "flaky_get", "method": "GET", "path": "/flaky/{key}", "input_schema": flaky_schema},
            {"name": "flaky_post", "method": "POST", "path": "/flaky/{key}", "input_schema": flaky_schema},
            {"name": "slow", "method": "GET", "path": "/slow", "input_schema": {"type": "object", "properties": {"ms": {"type": "integer"}}}},
        ],
    })
}

fn retries(attempts: u32, backoff: &str, max_backoff: &str) -> Value {
    json!({"attempts": attempts, "backoff": backoff, "max_backoff": max_backoff, "budget_percent": 20})
}

fn fast_retries() -> Value {
    retries(3, "10ms", "50ms")
}

fn single_attempt() -> Value {
    retries(1, "10ms", "50ms")
}

fn breaker(failure_threshold: u32, open_for: &str) -> Value {
    json!({"failure_threshold": failure_threshold, "open_for": open_for, "half_open_probes": 1})
}

fn patient_breaker() -> Value {
    breaker(1000, "1s")
}

/// What a failing key answers: `code` with a small JSON body.
fn failing(code: u16) -> Reply {
    Reply::json(json!({"title": "flaky"})).status(code)
}

/// `code` to the first `failures` calls, then 200 with the hit number.
fn recovering(failures: usize, code: u16) -> Reply {
    failing(code).times(failures).then(Reply::hit_number())
}

async fn call(edge: &TestEdge, tool: &str, arguments: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = client(Protocol::Http1)
        .post(edge.https_url(&format!("/api/tools/{tool}")))
        .header("content-type", "application/json")
        .body(arguments.to_string())
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_idempotent_call_is_retried_through_two_503s() {
    let api = MockApi::new().any("/flaky/get", recovering(2, 503)).start().await;
    let edge = TestEdge::new(policy(&api.url(), &fast_retries(), &patient_breaker())).start();
    let (status, _, result) = call(&edge, "flaky_get", r#"{"key":"get"}"#).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["structuredContent"]["hit"], 3);
    assert_eq!(api.hits("/flaky/get"), 3);
}

#[tokio::test]
async fn a_non_idempotent_call_is_never_retried_once_sent() {
    let api = MockApi::new().any("/flaky/post", recovering(5, 503)).start().await;
    let edge = TestEdge::new(policy(&api.url(), &fast_retries(), &patient_breaker())).start();
    let (status, _, result) = call(&edge, "flaky_post", r#"{"key":"post"}"#).await;
    assert_eq!(status, 502);
    assert_eq!(result["isError"], true);
    assert_eq!(api.hits("/flaky/post"), 1, "exactly one attempt: the upstream may have acted on it");
}

#[tokio::test]
async fn a_refused_connection_is_retried_even_for_a_post() {
    let edge = TestEdge::new(policy("http://127.0.0.1:1", &fast_retries(), &patient_breaker())).start();
    let (status, _, _) = call(&edge, "flaky_post", r#"{"key":"x"}"#).await;
    assert_eq!(status, 502);
    let retries = edge.stderr().lines().filter(|line| line.contains("Retrying an upstream call")).count();
    assert_eq!(retries, 2, "three attempts in all: nothing was sent, so retrying is safe");
}

#[tokio::test]
async fn a_slow_upstream_is_cut_at_the_overall_deadline() {
    let api =
        MockApi::new().any("/slow", Reply::json(json!({"slept_ms": 5000})).delay(Duration::from_secs(5))).start().await;
    let edge = TestEdge::new(policy(&api.url(), &fast_retries(), &patient_breaker())).start();
    let started = Instant::now();
    let (status, _, _) = call(&edge, "slow", r#"{"ms":5000}"#).await;
    assert_eq!(status, 504);
    assert!(started.elapsed() < Duration::from_secs(2), "timeout 1s + 1s, took {:?}", started.elapsed());
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_probes_and_recovers() {
    let api = MockApi::new().any("/flaky/down", recovering(3, 503)).start().await;
    let edge = TestEdge::new(policy(&api.url(), &single_attempt(), &breaker(3, "1s"))).audit_file(None, 1024).start();
    let arguments = r#"{"key":"down"}"#;
    for _ in 0..3 {
        assert_eq!(call(&edge, "flaky_get", arguments).await.0, 502);
    }
    assert_eq!(api.hits("/flaky/down"), 3);
    let readiness = admin_body(edge.admin, "/readyz").expect("readyz");
    assert!(readiness.contains(r#""circuit":"open""#), "{readiness}");
    assert!(readiness.contains(r#""status":"ready""#), "an open breaker does not make the edge unready");

    let (status, headers, result) = call(&edge, "flaky_get", arguments).await;
    assert_eq!(status, 503);
    let retry_after: u64 = headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert_eq!(retry_after, 1, "open_for is 1 s");
    assert!(result["content"][0]["text"].as_str().expect("text").starts_with("upstream unavailable, retry in"));
    assert_eq!(api.hits("/flaky/down"), 3, "an open breaker does not touch the upstream");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, result) = call(&edge, "flaky_get", arguments).await;
    assert_eq!(status, 200, "the probe reaches the recovered upstream: {result}");
    assert_eq!(api.hits("/flaky/down"), 4);
    let readiness = admin_body(edge.admin, "/readyz").expect("readyz");
    assert!(readiness.contains(r#""circuit":"closed""#), "{readiness}");
    let events = edge.wait_audit(|events| events.iter().any(|event| event["event.action"] == "CIRCUIT_CLOSED"));
    let transitions: Vec<&str> = events
        .iter()
        .filter(|event| event["event.action"].as_str().is_some_and(|action| action.starts_with("CIRCUIT_")))
        .filter_map(|event| event["event.action"].as_str())
        .collect();
    assert_eq!(transitions, ["CIRCUIT_OPEN", "CIRCUIT_CLOSED"]);
    assert!(
        events.iter().any(|event| event["event.action"] == "CIRCUIT_OPEN" && event["upstream.name"].as_str().is_some())
    );
}

#[tokio::test]
async fn a_failing_upstream_never_sees_a_retry_storm() {
    let api = MockApi::new().any("/flaky/storm", failing(503)).start().await;
    let edge = TestEdge::new(policy(&api.url(), &retries(3, "1ms", "2ms"), &patient_breaker())).start();
    let started = Instant::now();
    let mut calls = 0usize;
    while calls < 150 && started.elapsed() < Duration::from_secs(3) {
        let (status, _, _) = call(&edge, "flaky_get", r#"{"key":"storm"}"#).await;
        assert_eq!(status, 502);
        calls += 1;
    }
    let seconds = started.elapsed().as_secs_f64().ceil() as usize;
    let hits = api.hits("/flaky/storm");
    assert!(hits >= calls);
    assert!(hits <= calls + calls / 5 + 3 * seconds, "{hits} upstream calls for {calls} client calls in {seconds} s");
}

/// A passthrough whose breaker opens after two failures.
fn passthrough_breaker() -> Value {
    json!({"auth": {"mode": "none"}, "upstream": {"circuit_breaker": breaker(2, "30s")}})
}

#[tokio::test]
async fn the_passthrough_is_behind_its_own_breaker() {
    let api = MockApi::new().any("/flaky/pass", failing(503)).start().await;
    let edge = TestEdge::new(passthrough_breaker()).passthrough(&api.url()).start();
    let http = client(Protocol::Http1);
    for _ in 0..2 {
        let response = http.get(edge.https_url("/flaky/pass")).send().await.expect("GET");
        assert_eq!(response.status(), 503, "the upstream's own 503");
    }
    let response = http.get(edge.https_url("/flaky/pass")).send().await.expect("GET");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "upstream unavailable");
    assert_eq!(api.hits("/flaky/pass"), 2, "the open breaker kept the third request away");
}

/// DESIGN §15: a caller who makes the API answer 500 must not open the breaker for everyone.
#[tokio::test]
async fn ten_calls_answered_500_leave_the_breaker_closed() {
    let api = MockApi::new().any("/flaky/bug", failing(500)).any("/flaky/other", Reply::hit_number()).start().await;
    let edge = TestEdge::new(policy(&api.url(), &single_attempt(), &breaker(5, "30s"))).start();
    for _ in 0..10 {
        let (status, _, result) = call(&edge, "flaky_get", r#"{"key":"bug"}"#).await;
        assert_ne!(status, 503, "the breaker stayed closed: {result}");
    }
    assert_eq!(api.hits("/flaky/bug"), 10, "every call reached the API");
    let (status, _, result) = call(&edge, "flaky_get", r#"{"key":"other"}"#).await;
    assert_eq!(status, 200, "another user's call still works: {result}");
    let readiness = admin_body(edge.admin, "/readyz").expect("readyz");
    assert!(!readiness.contains(r#""circuit":"open""#), "{readiness}");
}

#[tokio::test]
async fn a_502_or_a_refused_connection_still_opens_the_breaker() {
    let api = MockApi::new().any("/flaky/gw", recovering(3, 502)).start().await;
    let (retry, breaker) = (single_attempt(), breaker(3, "30s"));
    let edge = TestEdge::new(policy(&api.url(), &retry, &breaker)).start();
    for _ in 0..3 {
        call(&edge, "flaky_get", r#"{"key":"gw"}"#).await;
    }
    let (status, headers, _) = call(&edge, "flaky_get", r#"{"key":"gw"}"#).await;
    assert_eq!(status, 503, "three 502s opened it");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(api.hits("/flaky/gw"), 3);

    let refused = TestEdge::new(policy("http://127.0.0.1:1", &retry, &breaker)).start();
    for _ in 0..3 {
        assert_eq!(call(&refused, "flaky_get", r#"{"key":"x"}"#).await.0, 502);
    }
    assert_eq!(call(&refused, "flaky_get", r#"{"key":"x"}"#).await.0, 503);
}

#[tokio::test]
async fn failure_statuses_choose_what_opens_the_breaker() {
    let api = MockApi::new().any("/flaky/bad-gw", failing(503)).any("/flaky/bug", recovering(2, 500)).start().await;
    let mut breaker = breaker(2, "30s");
    breaker["failure_statuses"] = json!([500]);
    let edge = TestEdge::new(policy(&api.url(), &single_attempt(), &breaker)).start();
    for _ in 0..3 {
        call(&edge, "flaky_get", r#"{"key":"bad-gw"}"#).await;
    }
    assert_eq!(api.hits("/flaky/bad-gw"), 3, "503 is not listed: it no longer counts");
    for _ in 0..2 {
        call(&edge, "flaky_get", r#"{"key":"bug"}"#).await;
    }
    assert_eq!(call(&edge, "flaky_get", r#"{"key":"bug"}"#).await.0, 503);
}

#[tokio::test]
async fn the_passthrough_breaker_ignores_the_servers_own_500s() {
    let api = MockApi::new().any("/flaky/pass500", failing(500)).start().await;
    let edge = TestEdge::new(passthrough_breaker()).passthrough(&api.url()).start();
    let http = client(Protocol::Http1);
    for _ in 0..10 {
        let response = http.get(edge.https_url("/flaky/pass500")).send().await.expect("GET");
        assert_eq!(response.status(), 500, "the server's own 500, passed on");
    }
    assert_eq!(api.hits("/flaky/pass500"), 10, "the breaker never opened");
}
