//! Credential sessions end to end: every `/init` status path against a mock API, reuse
//! without a second validation, one validation for concurrent inits, the session's token on
//! tool calls, expiry, eviction, DELETE, and the token absent from every output; and the
//! security of DESIGN.md §16: minted and strong ids, sessions bound to their owner and
//! subject (no hijack, no fixation, no foreign DELETE), probing that does not keep a session
//! alive, and one upstream per allowed API however it is spelled.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::edge::{TestEdge, admin_body};
use crate::support::jwt::unsigned;
use crate::support::mock_api::{MockApi, Reply};
use crate::support::tls_client::{Protocol, client};

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJlLW9mLWFkYQ";
const OTHER_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLW9mLWJvYg";

/// Client-chosen ids that follow the id rule (32 to 128 URL-safe characters).
const ID: &str = "team-a.laptop_0123456789abcdef~XYZ";
const OTHER_ID: &str = "team-b.laptop_0123456789abcdef~XYZ";

/// The edge's own bearer tokens of two principals (`sessions.auth: edge`).
const ALICE: &str = "alice-edge-token-0123456789";
const MALLORY: &str = "mallory-edge-token-0123456789";

/// Where the edge validates credentials for the allowed API `{api}/api/ok`.
const VALIDATE_OK: &str = "/api/ok/settings/validate";

/// The API behind the sessions: one allowed API URL per way a credential check can go (valid,
/// refused, failing, too slow); tool calls are echoed.
async fn api() -> MockApi {
    MockApi::new()
        .any(VALIDATE_OK, Reply::json(json!({"valid": true})))
        .any(
            "/api/forbidden/settings/validate",
            Reply::text(r#"{"title":"Forbidden: token for the wrong tenant"}"#).status(403),
        )
        .any("/api/error/settings/validate", Reply::text("stack trace with secrets").status(500))
        .any("/api/slow/settings/validate", Reply::json(json!({"valid": true})).delay(Duration::from_secs(3)))
        .start()
        .await
}

/// A JWT-shaped token with these claims (the mock API accepts any token).
fn token(claims: &Value, signature: &str) -> String {
    unsigned(&json!({"alg": "RS256"}), claims, signature)
}

/// A later token of the subject of `TOKEN` (`ada`).
fn refreshed_token() -> String {
    token(&json!({"sub": "ada", "iat": 2}), "cmVmcmVzaGVk")
}

/// Credential sessions on (for the four allowed APIs of the mock and one that refuses
/// connections), no edge auth, and one tool that calls the session's API with its token.
fn sessions_policy(api: &MockApi) -> Value {
    let api = api.url();
    json!({
        "auth": {"mode": "none"},
        "rate_limit": {"enabled": false},
        "sessions": {
            "enabled": true,
            "allowed_api_urls": [
                format!("{api}/api/ok"),
                format!("{api}/api/forbidden"),
                format!("{api}/api/error"),
                format!("{api}/api/slow"),
                "http://127.0.0.1:1/api",
            ],
            "validate_path": "/settings/validate",
            "validate_timeout": "1s",
        },
        "upstream": {"auth": {"mode": "session"}},
        "tools": [{"name": "get_shifts", "path": "/shifts", "input_schema": {"type": "object"}}],
    })
}

fn policy(api: &MockApi, ttl: &str, max_sessions: u32) -> Value {
    let mut policy = sessions_policy(api);
    policy["sessions"]["ttl"] = json!(ttl);
    policy["sessions"]["idle_timeout"] = json!("1h");
    policy["sessions"]["max_sessions"] = json!(max_sessions);
    policy
}

/// Two edge principals, alice and mallory, and `sessions.auth: edge`.
fn edge_bound_policy(api: &MockApi) -> Value {
    let mut policy = sessions_policy(api);
    policy["auth"] = json!({
        "mode": "bearer",
        "bearer": {"tokens": [{"id": "alice", "value": ALICE}, {"id": "mallory", "value": MALLORY}]},
    });
    policy["sessions"]["auth"] = json!("edge");
    policy
}

async fn init(edge: &TestEdge, body: &Value) -> (u16, Value) {
    init_as(edge, None, body).await
}

async fn init_as(edge: &TestEdge, bearer: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = client(Protocol::Http1).post(edge.https_url("/init")).json(body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.expect("POST /init");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn body(id: &str, api_url: &str, token: &str) -> Value {
    json!({"session_id": id, "apiUrl": api_url, "jwtToken": token})
}

async fn call_tool(edge: &TestEdge, tool: &str, session_id: Option<&str>) -> (u16, Value) {
    call_tool_as(edge, None, tool, session_id).await
}

async fn call_tool_as(edge: &TestEdge, bearer: Option<&str>, tool: &str, session_id: Option<&str>) -> (u16, Value) {
    let mut request = client(Protocol::Http1).post(edge.https_url(&format!("/api/tools/{tool}"))).body("{}");
    if let Some(id) = session_id {
        request = request.header("x-session-id", id);
    }
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.expect("POST tool");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `get_shifts` through MCP (one stateless-era request); status and the JSON-RPC reply.
async fn mcp_call_as(edge: &TestEdge, bearer: &str, session_id: &str) -> (u16, Value) {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_shifts","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let response = client(Protocol::Http1)
        .post(edge.https_url("/mcp"))
        .bearer_auth(bearer)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "get_shifts")
        .header("x-session-id", session_id)
        .body(body)
        .send()
        .await
        .expect("POST /mcp");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn delete_as(edge: &TestEdge, bearer: Option<&str>, id: &str) -> u16 {
    let mut request = client(Protocol::Http1).delete(edge.https_url(&format!("/sessions/{id}")));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.expect("DELETE").status().as_u16()
}

/// The token the mock API received on a tool call's echo.
fn authorization(result: &Value) -> &Value {
    &result["structuredContent"]["headers"]["authorization"]
}

/// An `/init` body and the status it gets.
struct InitCase {
    request: Value,
    status: u16,
}

#[tokio::test]
async fn every_init_status_path() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api, "1h", 100)).audit_file(None, 4096).start();
    let ok = format!("{}/api/ok", api.url());
    let cases = [
        InitCase { request: json!({"session_id": ID, "apiUrl": ok}), status: 400 },
        InitCase { request: json!({"session_id": ID, "jwtToken": TOKEN}), status: 400 },
        InitCase { request: json!("not an object"), status: 400 },
        InitCase { request: body(ID, "ftp://127.0.0.1/api", TOKEN), status: 401 },
        InitCase { request: body(ID, "not a url", TOKEN), status: 401 },
        InitCase { request: body(ID, "http://evil.example/api", TOKEN), status: 401 },
        InitCase { request: body(ID, &ok, "not-a-jwt"), status: 401 },
        InitCase { request: body(ID, &ok, "a.b"), status: 401 },
        InitCase { request: body(ID, &format!("{}/api/forbidden", api.url()), TOKEN), status: 401 },
        InitCase { request: body(ID, &format!("{}/api/error", api.url()), TOKEN), status: 500 },
        InitCase { request: body(ID, "http://127.0.0.1:1/api", TOKEN), status: 500 },
        InitCase { request: body(ID, &ok, TOKEN), status: 200 },
        InitCase { request: json!({"apiUrl": ok, "jwtToken": TOKEN}), status: 200 },
    ];
    for InitCase { request, status: expected } in cases {
        let (status, reply) = init(&edge, &request).await;
        assert_eq!(status, expected, "{request}: {reply}");
        let text = reply.to_string();
        assert!(!text.contains(TOKEN) && !text.contains("secrets") && !text.contains("tenant"), "{text}");
    }
    let started = Instant::now();
    let (status, _) = init(&edge, &body(OTHER_ID, &format!("{}/api/slow", api.url()), TOKEN)).await;
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
    let api = api().await;
    let edge = TestEdge::new(policy(&api, "1h", 100)).audit_file(None, 4096).start();
    let ok = format!("{}/api/ok", api.url());

    // Ten concurrent inits of one session validate once.
    let http = client(Protocol::Http2);
    let inits = (0..10).map(|_| http.post(edge.https_url("/init")).json(&body(ID, &ok, TOKEN)).send());
    for response in futures_util::future::join_all(inits).await {
        assert_eq!(response.expect("init").status(), 200);
    }
    assert_eq!(api.hits(VALIDATE_OK), 1);
    // The same credentials again: answered at once.
    assert_eq!(init(&edge, &body(ID, &ok, TOKEN)).await.0, 200);
    assert_eq!(api.hits(VALIDATE_OK), 1, "no second validate call");

    // Tool calls carry the session's token to the session's API.
    let (status, result) = call_tool(&edge, "get_shifts", Some(ID)).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["structuredContent"]["path"], "/api/ok/shifts");
    assert_eq!(result["structuredContent"]["headers"]["authorization"], format!("Bearer {TOKEN}"));
    // The built-in validate_settings re-checks the credentials.
    let (status, result) = call_tool(&edge, "validate_settings", Some(ID)).await;
    assert_eq!((status, result["isError"].clone()), (200, json!(false)));
    assert_eq!(api.hits(VALIDATE_OK), 2);
    // Unknown or missing session: 401.
    assert_eq!(call_tool(&edge, "get_shifts", Some("nobody")).await.0, 401);
    assert_eq!(call_tool(&edge, "get_shifts", None).await.0, 401);

    // A different token of the same subject for a live id is validated, then replaces the old one.
    let refreshed = refreshed_token();
    assert_eq!(init(&edge, &body(ID, &ok, &refreshed)).await.0, 200);
    assert_eq!(api.hits(VALIDATE_OK), 3);
    let (_, result) = call_tool(&edge, "get_shifts", Some(ID)).await;
    assert_eq!(result["structuredContent"]["headers"]["authorization"], format!("Bearer {refreshed}"));
    // ... but a rejected one does not.
    assert_eq!(init(&edge, &body(ID, &format!("{}/api/forbidden", api.url()), TOKEN)).await.0, 401);
    let (_, result) = call_tool(&edge, "get_shifts", Some(ID)).await;
    assert_eq!(result["structuredContent"]["headers"]["authorization"], format!("Bearer {refreshed}"));

    // DELETE ends it.
    let http = client(Protocol::Http1);
    assert_eq!(http.delete(edge.https_url(&format!("/sessions/{ID}"))).send().await.expect("DELETE").status(), 204);
    assert_eq!(http.delete(edge.https_url(&format!("/sessions/{ID}"))).send().await.expect("DELETE").status(), 404);
    assert_eq!(call_tool(&edge, "get_shifts", Some(ID)).await.0, 401);

    let events = edge.wait_audit(|events| events.iter().any(|event| event["event.action"] == "SESSION_END"));
    assert!(events.iter().any(|event| event["event.action"] == "SESSION_END" && event["event.reason"] == "deleted"));
    assert!(events.iter().all(|event| event["session.id"].as_str().is_none_or(|id| id.len() == 8)), "ids are digests");

    // The token is in no output.
    let audit = std::fs::read_to_string(edge.audit_path.as_ref().expect("audit")).expect("audit");
    for (name, output) in [("stdout", edge.stdout()), ("stderr", edge.stderr()), ("audit", audit)] {
        assert!(!output.contains(TOKEN) && !output.contains(&refreshed), "a session token appeared in {name}");
        assert!(!output.contains(ID), "a session id appeared in {name}");
    }
}

#[tokio::test]
async fn sessions_expire_and_the_least_recently_used_is_evicted() {
    let api = api().await;
    let ok = format!("{}/api/ok", api.url());
    let edge = TestEdge::new(policy(&api, "1s", 2)).start();
    let [one, two, three] = ["one", "two", "three"].map(|name| format!("{name}-0123456789abcdefghijklmnopqrstuvwxyz"));
    for id in [&one, &two] {
        assert_eq!(init(&edge, &body(id, &ok, TOKEN)).await.0, 200);
    }
    assert_eq!(call_tool(&edge, "get_shifts", Some(&one)).await.0, 200, "touch one: two is now the least recent");
    assert_eq!(init(&edge, &body(&three, &ok, TOKEN)).await.0, 200);
    assert_eq!(call_tool(&edge, "get_shifts", Some(&two)).await.0, 401, "evicted");
    assert_eq!(call_tool(&edge, "get_shifts", Some(&one)).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(call_tool(&edge, "get_shifts", Some(&one)).await.0, 401, "expired after ttl 1s");
}

#[tokio::test]
async fn another_principal_can_neither_take_over_nor_use_nor_delete_a_session() {
    let api = api().await;
    let edge = TestEdge::new(edge_bound_policy(&api)).audit_file(None, 4096).start();
    let ok = format!("{}/api/ok", api.url());
    assert_eq!(init_as(&edge, Some(ALICE), &body(ID, &ok, TOKEN)).await.0, 200);
    assert_eq!(api.hits(VALIDATE_OK), 1);

    // Mallory cannot take the id over, with her own token or even with alice's, and the API
    // is not asked on her behalf.
    for token in [OTHER_TOKEN, TOKEN] {
        let (status, reply) = init_as(&edge, Some(MALLORY), &body(ID, &ok, token)).await;
        assert_eq!((status, &reply["error"]), (409, &json!("session exists")), "{reply}");
        assert!(reply["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{reply}");
    }
    assert_eq!(api.hits(VALIDATE_OK), 1, "no validation for another principal's id");
    assert_eq!(init(&edge, &body(ID, &ok, OTHER_TOKEN)).await.0, 401, "/init needs the edge's auth");

    // Nor use it, through REST or MCP: it is as unknown as a missing session.
    assert_eq!(call_tool_as(&edge, Some(MALLORY), "get_shifts", Some(ID)).await.0, 401);
    assert_eq!(mcp_call_as(&edge, MALLORY, ID).await.0, 401);
    // Alice's session is unchanged: her token, her API.
    let (status, result) = call_tool_as(&edge, Some(ALICE), "get_shifts", Some(ID)).await;
    assert_eq!((status, authorization(&result)), (200, &json!(format!("Bearer {TOKEN}"))), "{result}");
    let (status, reply) = mcp_call_as(&edge, ALICE, ID).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(authorization(&reply["result"]), &json!(format!("Bearer {TOKEN}")), "{reply}");

    // Nor delete it: 404 to another principal, 401 without the edge's auth.
    assert_eq!(delete_as(&edge, Some(MALLORY), ID).await, 404);
    assert_eq!(delete_as(&edge, None, ID).await, 401);
    assert_eq!(call_tool_as(&edge, Some(ALICE), "get_shifts", Some(ID)).await.0, 200, "still there");
    assert_eq!(delete_as(&edge, Some(ALICE), ID).await, 204);
    assert_eq!(call_tool_as(&edge, Some(ALICE), "get_shifts", Some(ID)).await.0, 401);

    let events = edge.wait_audit(|events| events.iter().any(|event| event["event.reason"] == "deleted"));
    assert!(
        events
            .iter()
            .any(|event| event["event.action"] == "SESSION_REJECTED" && event["event.reason"] == "session_exists"),
        "409s are audited"
    );
}

#[tokio::test]
async fn an_unauthenticated_init_cannot_fix_a_live_session_to_another_subject() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api, "1h", 100)).start();
    let ok = format!("{}/api/ok", api.url());
    assert_eq!(init(&edge, &body(ID, &ok, TOKEN)).await.0, 200);

    // The attacker's token is valid at the API, but for another subject: 409, nothing changes.
    let (status, reply) = init(&edge, &body(ID, &ok, OTHER_TOKEN)).await;
    assert_eq!((status, &reply["error"]), (409, &json!("session exists")), "{reply}");
    assert!(reply["request_id"].as_str().is_some(), "{reply}");
    let (status, result) = call_tool(&edge, "get_shifts", Some(ID)).await;
    assert_eq!((status, authorization(&result)), (200, &json!(format!("Bearer {TOKEN}"))), "{result}");

    // The victim's own refreshed token (same subject) replaces it.
    let refreshed = refreshed_token();
    assert_eq!(init(&edge, &body(ID, &ok, &refreshed)).await.0, 200);
    let (_, result) = call_tool(&edge, "get_shifts", Some(ID)).await;
    assert_eq!(authorization(&result), &json!(format!("Bearer {refreshed}")));

    // A token without `sub` binds the session to itself: any other token is refused.
    let [first, second] = ["Zmlyc3Q", "c2Vjb25k"].map(|signature| token(&json!({"iss": "api"}), signature));
    assert_eq!(init(&edge, &body(OTHER_ID, &ok, &first)).await.0, 200);
    assert_eq!(init(&edge, &body(OTHER_ID, &ok, &second)).await.0, 409);
    assert_eq!(init(&edge, &body(OTHER_ID, &ok, TOKEN)).await.0, 409, "nor one that has a sub");
    let (_, result) = call_tool(&edge, "get_shifts", Some(OTHER_ID)).await;
    assert_eq!(authorization(&result), &json!(format!("Bearer {first}")));
}

#[tokio::test]
async fn init_mints_a_strong_session_id_when_none_is_given() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api, "1h", 100)).start();
    let ok = format!("{}/api/ok", api.url());
    let mut minted = Vec::new();
    for _ in 0..2 {
        let (status, reply) = init(&edge, &json!({"apiUrl": ok, "jwtToken": TOKEN})).await;
        assert_eq!((status, &reply["status"]), (200, &json!("ok")), "{reply}");
        let id = reply["session_id"].as_str().expect("a minted session_id").to_string();
        assert_eq!(id.len(), 43, "256 bits in base64url: {id}");
        assert!(id.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_')), "{id}");
        let (status, result) = call_tool(&edge, "get_shifts", Some(&id)).await;
        assert_eq!((status, authorization(&result)), (200, &json!(format!("Bearer {TOKEN}"))), "{result}");
        minted.push(id);
    }
    assert_ne!(minted[0], minted[1]);
    // A client-chosen id is not echoed (the client knows it).
    let (status, reply) = init(&edge, &body(ID, &ok, TOKEN)).await;
    assert_eq!((status, reply), (200, json!({"status": "ok"})));
}

#[tokio::test]
async fn short_or_odd_session_ids_are_refused_unless_allow_short_ids() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api, "1h", 100)).start();
    let ok = format!("{}/api/ok", api.url());
    let refused = [
        json!("team-a"),
        json!("1"),
        json!(""),
        json!("a".repeat(31)),
        json!("a".repeat(129)),
        json!(format!("{}+/", "a".repeat(32))),
        json!(format!("ada@example.com-{}", "a".repeat(32))),
        json!(12345678901234567890_u64),
    ];
    for id in refused {
        let (status, reply) = init(&edge, &json!({"session_id": id, "apiUrl": ok, "jwtToken": TOKEN})).await;
        assert_eq!(status, 400, "{id}: {reply}");
        let error = reply["error"].as_str().unwrap_or_default();
        assert!(error.contains("^[A-Za-z0-9._~-]{32,128}$"), "the error names the rule: {reply}");
        assert!(reply["request_id"].as_str().is_some(), "{reply}");
    }
    assert_eq!(api.hits(VALIDATE_OK), 0, "refused before the API is asked");
    for id in ["a".repeat(32), "Az09._~-".repeat(16)] {
        assert_eq!(init(&edge, &body(&id, &ok, TOKEN)).await.0, 200, "{id}");
    }

    // With allow_short_ids (unsafe, for compatibility) the old ids work again.
    let mut policy = sessions_policy(&api);
    policy["sessions"]["allow_short_ids"] = json!(true);
    let lenient = TestEdge::new(policy).start();
    for id in ["team-a", "ada@example.com"] {
        assert_eq!(init(&lenient, &body(id, &ok, TOKEN)).await.0, 200, "{id}");
        let (status, result) = call_tool(&lenient, "get_shifts", Some(id)).await;
        assert_eq!((status, authorization(&result)), (200, &json!(format!("Bearer {TOKEN}"))), "{result}");
    }
    let (status, reply) = init(&lenient, &body(&"a".repeat(129), &ok, TOKEN)).await;
    assert_eq!(status, 400, "still at most 128: {reply}");
    assert!(reply["error"].as_str().is_some_and(|error| error.contains("1 to 128 characters")), "{reply}");
}

#[tokio::test]
async fn probing_init_does_not_keep_a_session_alive() {
    let api = api().await;
    let mut policy = sessions_policy(&api);
    policy["sessions"]["idle_timeout"] = json!("1s");
    let edge = TestEdge::new(policy).start();
    let ok = format!("{}/api/ok", api.url());
    assert_eq!(init(&edge, &body(ID, &ok, TOKEN)).await.0, 200);
    assert_eq!(call_tool(&edge, "get_shifts", Some(ID)).await.0, 200, "the last real use");
    // Probes that know the id but not the token, for longer than idle_timeout.
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert_eq!(init(&edge, &body(ID, &ok, "not-a-jwt")).await.0, 401);
        assert_eq!(init(&edge, &body(ID, "http://evil.example/api", TOKEN)).await.0, 401);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(call_tool(&edge, "get_shifts", Some(ID)).await.0, 401, "idle since the last use, probes or not");
}

#[tokio::test]
async fn twenty_spellings_of_an_allowed_api_share_one_upstream() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api, "1h", 100)).start();
    let host = api.address.to_string();
    let mut spellings: Vec<String> =
        (0..10).map(|slashes| format!("http://{host}/api/ok{}", "/".repeat(slashes))).collect();
    spellings.extend(
        [
            "HTTP://{host}/api/ok",
            "Http://{host}/api/ok//",
            "HTTP://{host}/api/ok///",
            "http://{host}/api/ok/.",
            "http://{host}/api/ok/./",
            "http://{host}/api/x/../ok",
            "http://{host}/./api/ok",
            "http://{host}/api/./ok",
            "http://{host}/api/ok/x/..",
            "http://{host}/api/ok/x/../",
        ]
        .map(|spelling| spelling.replace("{host}", &host)),
    );
    assert_eq!(spellings.len(), 20);
    for (index, spelling) in spellings.iter().enumerate() {
        let id = format!("spelling-{index:02}-0123456789abcdefghijklmnop");
        let (status, reply) = init(&edge, &body(&id, spelling, TOKEN)).await;
        assert_eq!(status, 200, "{spelling}: {reply}");
        let (status, result) = call_tool(&edge, "get_shifts", Some(&id)).await;
        assert_eq!(status, 200, "{spelling}: {result}");
        assert_eq!(result["structuredContent"]["path"], "/api/ok/shifts", "{spelling}");
    }
    let readyz: Value = serde_json::from_str(&admin_body(edge.admin, "/readyz").expect("readyz")).expect("JSON");
    let names: Vec<&str> = readyz["upstreams"]
        .as_array()
        .expect("upstreams")
        .iter()
        .filter_map(|upstream| upstream["upstream"].as_str())
        .collect();
    let ok_upstreams: Vec<&&str> = names.iter().filter(|name| name.contains("/api/ok")).collect();
    assert_eq!(ok_upstreams, [&format!("http://{host}/api/ok").as_str()], "{names:?}");
    // The tool upstream plus one per allow-list entry, used or not.
    assert_eq!(names.len(), 1 + 5, "{names:?}");
    let metrics = admin_body(edge.admin, "/metrics").expect("metrics");
    let series =
        metrics.lines().filter(|line| line.starts_with("mcp_edge_circuit_state{") && line.contains("/api/ok")).count();
    assert_eq!(series, 1, "one breaker series for the API");
}
