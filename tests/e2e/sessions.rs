//! Credential sessions end to end: every `/init` status path against a mock API, reuse
//! without a second validation, one validation for concurrent inits, the session's token on
//! tool calls, expiry, eviction, DELETE, and the token absent from every output.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::edge::TestEdge;
use crate::support::mock_api::MockApi;
use crate::support::tls_client::{Protocol, client};

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJlLW9mLWFkYQ";
const OTHER_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLW9mLWJvYg";

fn policy(api: &MockApi, ttl: &str, max_sessions: u32) -> String {
    let api = api.url();
    format!(
        r#"auth: {{mode: none}}
rate_limit: {{enabled: false}}
sessions:
  enabled: true
  allowed_api_urls: ["{api}/api/ok", "{api}/api/forbidden", "{api}/api/error", "{api}/api/slow", "http://127.0.0.1:1/api"]
  validate_path: /settings/validate
  validate_timeout: 1s
  ttl: {ttl}
  idle_timeout: 1h
  max_sessions: {max_sessions}
upstream:
  auth: {{mode: session}}
tools:
  - name: get_shifts
    path: /shifts
    input_schema: {{type: object}}
"#
    )
}

async fn init(edge: &TestEdge, body: &Value) -> (u16, Value) {
    let response = client(Protocol::Http1).post(edge.https_url("/init")).json(body).send().await.expect("POST /init");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn body(id: &str, api_url: &str, token: &str) -> Value {
    json!({"session_id": id, "apiUrl": api_url, "jwtToken": token})
}

async fn call_tool(edge: &TestEdge, tool: &str, session_id: Option<&str>) -> (u16, Value) {
    let mut request = client(Protocol::Http1).post(edge.https_url(&format!("/api/tools/{tool}"))).body("{}");
    if let Some(id) = session_id {
        request = request.header("x-session-id", id);
    }
    let response = request.send().await.expect("POST tool");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_init_status_path() {
    let api = MockApi::start().await;
    let edge = TestEdge::new(&policy(&api, "1h", 100)).audit_file(None, 4096).start();
    let ok = format!("{}/api/ok", api.url());
    let cases: Vec<(Value, u16)> = vec![
        (json!({"session_id": "s", "apiUrl": ok}), 400),
        (json!({"apiUrl": ok, "jwtToken": TOKEN}), 400),
        (json!("not an object"), 400),
        (body("s", "ftp://127.0.0.1/api", TOKEN), 401),
        (body("s", "not a url", TOKEN), 401),
        (body("s", "http://evil.example/api", TOKEN), 401),
        (body("s", &ok, "not-a-jwt"), 401),
        (body("s", &ok, "a.b"), 401),
        (body("s", &format!("{}/api/forbidden", api.url()), TOKEN), 401),
        (body("s", &format!("{}/api/error", api.url()), TOKEN), 500),
        (body("s", "http://127.0.0.1:1/api", TOKEN), 500),
        (body("s", &ok, TOKEN), 200),
    ];
    for (request, expected) in cases {
        let (status, reply) = init(&edge, &request).await;
        assert_eq!(status, expected, "{request}: {reply}");
        let text = reply.to_string();
        assert!(!text.contains(TOKEN) && !text.contains("secrets") && !text.contains("tenant"), "{text}");
    }
    let started = Instant::now();
    let (status, _) = init(&edge, &body("slow", &format!("{}/api/slow", api.url()), TOKEN)).await;
    assert_eq!(status, 500);
    assert!(started.elapsed() < Duration::from_secs(2), "validate_timeout 1s + 1s: {:?}", started.elapsed());

    let events = edge.wait_audit(|events| events.iter().any(|event| event["event.action"] == "SESSION_INIT"));
    let rejected: Vec<&str> = events
        .iter()
        .filter(|event| event["event.action"] == "SESSION_REJECTED")
        .filter_map(|event| event["event.reason"].as_str())
        .collect();
    for reason in
        ["missing_field", "api_url_not_allowed", "malformed_token", "credentials_rejected", "validation_failed"]
    {
        assert!(rejected.contains(&reason), "{reason} not audited: {rejected:?}");
    }
}

#[tokio::test]
async fn sessions_are_reused_validated_once_and_used_for_tool_calls() {
    let api = MockApi::start().await;
    let edge = TestEdge::new(&policy(&api, "1h", 100)).audit_file(None, 4096).start();
    let ok = format!("{}/api/ok", api.url());

    // Ten concurrent inits of one session validate once.
    let http = client(Protocol::Http2);
    let inits = (0..10).map(|_| http.post(edge.https_url("/init")).json(&body("team-a", &ok, TOKEN)).send());
    for response in futures_util::future::join_all(inits).await {
        assert_eq!(response.expect("init").status(), 200);
    }
    assert_eq!(api.flaky_hits("validate-ok"), 1);
    // The same credentials again: answered at once.
    assert_eq!(init(&edge, &body("team-a", &ok, TOKEN)).await.0, 200);
    assert_eq!(api.flaky_hits("validate-ok"), 1, "no second validate call");

    // Tool calls carry the session's token to the session's API.
    let (status, result) = call_tool(&edge, "get_shifts", Some("team-a")).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["structuredContent"]["path"], "/api/ok/shifts");
    assert_eq!(result["structuredContent"]["headers"]["authorization"], format!("Bearer {TOKEN}"));
    // The built-in validate_settings re-checks the credentials.
    let (status, result) = call_tool(&edge, "validate_settings", Some("team-a")).await;
    assert_eq!((status, result["isError"].clone()), (200, json!(false)));
    assert_eq!(api.flaky_hits("validate-ok"), 2);
    // Unknown or missing session: 401.
    assert_eq!(call_tool(&edge, "get_shifts", Some("nobody")).await.0, 401);
    assert_eq!(call_tool(&edge, "get_shifts", None).await.0, 401);

    // A different token for a live id is validated, then replaces the old one.
    assert_eq!(init(&edge, &body("team-a", &ok, OTHER_TOKEN)).await.0, 200);
    assert_eq!(api.flaky_hits("validate-ok"), 3);
    let (_, result) = call_tool(&edge, "get_shifts", Some("team-a")).await;
    assert_eq!(result["structuredContent"]["headers"]["authorization"], format!("Bearer {OTHER_TOKEN}"));
    // ... but a rejected one does not.
    assert_eq!(init(&edge, &body("team-a", &format!("{}/api/forbidden", api.url()), TOKEN)).await.0, 401);
    let (_, result) = call_tool(&edge, "get_shifts", Some("team-a")).await;
    assert_eq!(result["structuredContent"]["headers"]["authorization"], format!("Bearer {OTHER_TOKEN}"));

    // DELETE ends it.
    let http = client(Protocol::Http1);
    assert_eq!(http.delete(edge.https_url("/sessions/team-a")).send().await.expect("DELETE").status(), 204);
    assert_eq!(http.delete(edge.https_url("/sessions/team-a")).send().await.expect("DELETE").status(), 404);
    assert_eq!(call_tool(&edge, "get_shifts", Some("team-a")).await.0, 401);

    let events = edge.wait_audit(|events| events.iter().any(|event| event["event.action"] == "SESSION_END"));
    assert!(events.iter().any(|event| event["event.action"] == "SESSION_END" && event["event.reason"] == "deleted"));
    assert!(events.iter().all(|event| event["session.id"].as_str().is_none_or(|id| id.len() == 8)), "ids are digests");

    // The token is in no output.
    let audit = std::fs::read_to_string(edge.audit_path.as_ref().expect("audit")).expect("audit");
    for (name, output) in [("stdout", edge.stdout()), ("stderr", edge.stderr()), ("audit", audit)] {
        assert!(!output.contains(TOKEN) && !output.contains(OTHER_TOKEN), "a session token appeared in {name}");
        assert!(!output.contains("team-a"), "a session id appeared in {name}");
    }
}

#[tokio::test]
async fn sessions_expire_and_the_least_recently_used_is_evicted() {
    let api = MockApi::start().await;
    let ok = format!("{}/api/ok", api.url());
    let edge = TestEdge::new(&policy(&api, "1s", 2)).start();
    for id in ["one", "two"] {
        assert_eq!(init(&edge, &body(id, &ok, TOKEN)).await.0, 200);
    }
    assert_eq!(call_tool(&edge, "get_shifts", Some("one")).await.0, 200, "touch one: two is now the least recent");
    assert_eq!(init(&edge, &body("three", &ok, TOKEN)).await.0, 200);
    assert_eq!(call_tool(&edge, "get_shifts", Some("two")).await.0, 401, "evicted");
    assert_eq!(call_tool(&edge, "get_shifts", Some("one")).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(call_tool(&edge, "get_shifts", Some("one")).await.0, 401, "expired after ttl 1s");
}
