//! Shared state on Redis (DESIGN.md §17), end to end: two edge processes sharing one private
//! `redis-server` behave as one for the global rate limit, per-principal keys and per-tool
//! quotas; Redis killed and restarted mid-test (`on_error: allow` falls back, `deny` answers
//! 503, the error counter and `/readyz` show it, the edge recovers without a restart); a wrong
//! password; and no token in plaintext anywhere under the key prefix.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::edge::{TestEdge, admin_body, admin_status};
use crate::support::mock_api::{MockApi, Reply};
use crate::support::raw_http::RawConnection;
use crate::support::redis_server::RedisServer;
use crate::support::tls_client::{Protocol, client};

const ALICE: &str = "alice-edge-token-0123456789";
const BOB: &str = "bob-edge-token-0123456789ab";
const PREFIX: &str = "edge-test:";

/// The store section for `redis`: a generous timeout, since these machines are busy and a
/// slow answer would be a (correct) fallback that the exact counts below do not expect.
fn store(redis: &RedisServer, on_error: &str) -> Value {
    json!({"backend": "redis", "redis": {"url": redis.url(), "key_prefix": PREFIX, "timeout": "1s", "on_error": on_error}})
}

/// No auth, a global limit with the defaults, the REST tool list as the 200 route.
fn global_policy(redis: &RedisServer, on_error: &str) -> Value {
    json!({
        "auth": {"mode": "none"},
        "rate_limit": {"requests_per_minute": 100, "burst": 20, "scope": "global"},
        "store": store(redis, on_error),
        "tools": [{"name": "get_a", "path": "/a"}],
    })
}

/// The value of the counter series `series` (`name{labels}`) in the admin metrics.
fn counter(edge: &TestEdge, series: &str) -> f64 {
    let metrics = admin_body(edge.admin, "/metrics").expect("metrics");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no series {series} in\n{metrics}"))
}

fn readyz(edge: &TestEdge) -> Value {
    serde_json::from_str(&admin_body(edge.admin, "/readyz").expect("readyz")).expect("readyz JSON")
}

/// Polls `/readyz` (bounded: 15 s) until it reports the store as `state`.
fn wait_store(edge: &TestEdge, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while readyz(edge)["store"] != state {
        assert!(Instant::now() < deadline, "the store never showed {state}: {}", readyz(edge));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn two_replicas_sharing_redis_admit_exactly_21_of_25_alternating_requests() {
    let redis = RedisServer::start();
    let replicas =
        [TestEdge::new(global_policy(&redis, "allow")).start(), TestEdge::new(global_policy(&redis, "allow")).start()];
    let mut connections =
        [RawConnection::connect(replicas[0].https).await, RawConnection::connect(replicas[1].https).await];
    let mut statuses = Vec::new();
    for n in 0..25 {
        let response = connections[n % 2].get("/api/tools", &[]).await;
        if response.status == 429 {
            let retry_after: u64 = response.header("retry-after").expect("Retry-After").parse().expect("seconds");
            assert!((1..=60).contains(&retry_after), "{retry_after}");
            assert_eq!(response.header("ratelimit"), Some(format!("\"default\";r=0;t={retry_after}").as_str()));
            assert_eq!(response.header("ratelimit-policy"), Some("\"default\";q=100;w=60"));
        } else {
            // From the script's answer: the requests left and the seconds until the bucket is full
            // (not compared exactly: time passes between the requests).
            let header = response.header("ratelimit").expect("RateLimit").to_string();
            let (remaining, reset) = header
                .strip_prefix("\"default\";r=")
                .and_then(|rest| rest.split_once(";t="))
                .map(|(r, t)| (r.parse::<u32>().expect("r"), t.parse::<u64>().expect("t")))
                .expect("RateLimit form");
            assert!(remaining <= 20 && (1..=13).contains(&reset), "{header} at request {n}");
        }
        statuses.push(response.status);
    }
    let admitted = statuses.iter().filter(|status| **status == 200).count();
    let limited = statuses.iter().filter(|status| **status == 429).count();
    assert_eq!((admitted, limited), (21, 4), "{statuses:?}");
    for replica in &replicas {
        assert_eq!(readyz(replica)["store"], "up");
        assert_eq!(counter(replica, "mcp_edge_store_errors_total{op=\"rate_limit\"}"), 0.0);
    }
    // The bucket lives in Redis under the prefix, named by a digest, and expires by itself.
    let keys = redis.dump(PREFIX);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].0.starts_with("edge-test:rl:ip:"), "{keys:?}");
    assert!(!keys[0].0.contains("127.0.0.1"));
    let ttl: i64 = redis::cmd("PTTL").arg(&keys[0].0).query(&mut redis.connection().expect("redis")).expect("PTTL");
    assert!((1..=15_000).contains(&ttl), "the key expires when the bucket is full again: {ttl} ms");
}

#[tokio::test]
async fn a_principal_key_gives_two_tokens_from_one_address_21_each_and_bad_tokens_stay_limited_by_ip() {
    let redis = RedisServer::start();
    for scope in ["local", "global"] {
        let mut connection = redis.connection().expect("redis");
        let _: () = redis::cmd("FLUSHALL").query(&mut connection).expect("FLUSHALL");
        let edge = TestEdge::new(json!({
            "auth": {"mode": "bearer", "bearer": {"tokens": [{"id": "alice", "value": ALICE}, {"id": "bob", "value": BOB}]}},
            "rate_limit": {"requests_per_minute": 100, "burst": 20, "key": "principal", "scope": scope},
            "store": store(&redis, "deny"),
            "tools": [{"name": "get_a", "path": "/a"}],
        }))
        .start();
        let mut connection = RawConnection::connect(edge.https).await;
        for token in [ALICE, BOB] {
            let authorization = format!("Authorization: Bearer {token}");
            let statuses: Vec<u16> = {
                let mut statuses = Vec::new();
                for _ in 0..23 {
                    statuses.push(connection.get("/api/tools", &[&authorization]).await.status);
                }
                statuses
            };
            assert_eq!(statuses.iter().filter(|status| **status == 200).count(), 21, "{scope} {token}: {statuses:?}");
            assert_eq!(&statuses[21..], [429, 429], "{scope}");
        }
        // Bad tokens from this address: the IP's own bucket, charged by each failure and
        // looked at before verification, so the 22nd never reaches it.
        let mut failures = Vec::new();
        for n in 0..23 {
            let authorization = format!("Authorization: Bearer wrong-token-{n:04}-0123456789");
            failures.push(connection.get("/api/tools", &[&authorization]).await.status);
        }
        assert_eq!(failures.iter().filter(|status| **status == 401).count(), 21, "{scope}: {failures:?}");
        assert_eq!(&failures[21..], [429, 429], "{scope}");
        if scope == "global" {
            let dump = redis.dump(PREFIX);
            assert_eq!(dump.len(), 3, "two principals and one address: {dump:?}");
            for (key, value) in &dump {
                for secret in [ALICE, BOB, "alice", "bob"] {
                    assert!(!key.contains(secret) && !value.contains(secret), "{key} = {value}");
                }
            }
        }
    }
}

async fn rest_call(edge: &TestEdge, tool: &str, token: &str) -> (u16, Option<String>, Value) {
    let response = client(Protocol::Http1)
        .post(edge.https_url(&format!("/api/tools/{tool}")))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .expect("POST /api/tools");
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|value| value.to_str().expect("ascii").to_string());
    (status, retry_after, response.json().await.unwrap_or(Value::Null))
}

/// A stateless-era `tools/call` over MCP: (HTTP status, the JSON-RPC reply).
async fn mcp_call(edge: &TestEdge, tool: &str, token: &str) -> (u16, Value) {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "store-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": {}, "_meta": meta}});
    let response = client(Protocol::Http1)
        .post(edge.https_url("/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(&body)
        .send()
        .await
        .expect("POST /mcp");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_tool_quota_is_shared_by_the_replicas_refuses_that_tool_and_leaves_others_alone() {
    let redis = RedisServer::start();
    let api = MockApi::new()
        .any("/a", Reply::json(json!({"ok": "a"})))
        .any("/b", Reply::json(json!({"ok": "b"})))
        .start()
        .await;
    let policy = json!({
        "auth": {"mode": "bearer", "bearer": {"tokens": [{"id": "alice", "value": ALICE}, {"id": "bob", "value": BOB}]}},
        "rate_limit": {"scope": "global"},
        "store": store(&redis, "allow"),
        "upstream": {"base_url": api.url()},
        "tools": [
            {"name": "create_shift", "method": "POST", "path": "/a", "rate_limit": {"requests_per_minute": 1, "burst": 1}},
            {"name": "get_b", "path": "/b"},
        ],
    });
    let replicas = [TestEdge::new(&policy).start(), TestEdge::new(&policy).start()];
    // Two calls (burst 1) across both replicas, then the third is refused on either.
    assert_eq!(rest_call(&replicas[0], "create_shift", ALICE).await.0, 200);
    assert_eq!(rest_call(&replicas[1], "create_shift", ALICE).await.0, 200);
    let (status, retry_after, body) = rest_call(&replicas[0], "create_shift", ALICE).await;
    assert_eq!(status, 429, "{body}");
    let retry_after: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&retry_after));
    assert_eq!(body["isError"], true);
    assert!(body["content"][0]["text"].as_str().expect("text").starts_with("rate limited, retry in "), "{body}");

    // Over MCP: a tool result with isError, and HTTP 200.
    let (status, reply) = mcp_call(&replicas[1], "create_shift", ALICE).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    let text = reply["result"]["content"][0]["text"].as_str().expect("text");
    assert!(text.starts_with("rate limited, retry in ") && text.ends_with(" s"), "{text}");

    // Other tools, and other principals, are untouched.
    assert_eq!(rest_call(&replicas[0], "get_b", ALICE).await.0, 200);
    let (status, reply) = mcp_call(&replicas[1], "get_b", ALICE).await;
    assert_eq!((status, &reply["result"]["structuredContent"]), (200, &json!({"ok": "b"})), "{reply}");
    assert_eq!(rest_call(&replicas[1], "create_shift", BOB).await.0, 200);
    assert_eq!(api.hits("/a"), 3, "refused calls never reach the API");
}

#[tokio::test]
async fn redis_killed_with_allow_falls_back_counts_and_reports_then_recovers_on_restart() {
    let mut redis = RedisServer::start();
    let mut policy = global_policy(&redis, "allow");
    policy["store"]["redis"]["timeout"] = json!("500ms");
    let edge = TestEdge::new(&policy).start();
    let mut connection = RawConnection::connect(edge.https).await;
    assert_eq!(connection.get("/api/tools", &[]).await.status, 200);
    assert_eq!(readyz(&edge)["store"], "up");

    redis.kill();
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(connection.get("/api/tools", &[]).await.status, 200, "the local limiter decides");
        assert!(started.elapsed() < Duration::from_secs(2), "never hangs past the timeout");
    }
    assert!(counter(&edge, "mcp_edge_store_errors_total{op=\"rate_limit\"}") >= 1.0);
    wait_store(&edge, "down");
    assert_eq!(admin_status(edge.admin, "/readyz"), Some(200), "a down store does not make the edge unready");
    let warnings = edge.stderr().matches("Store unreachable").count();
    assert_eq!(warnings, 1, "one log line per state change:\n{}", edge.stderr());

    // The same port again, empty: the global limit works again without restarting the edge.
    redis.restart();
    wait_store(&edge, "up");
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(connection.get("/api/tools", &[]).await.status);
    }
    assert_eq!(statuses.iter().filter(|status| **status == 429).count(), 4, "{statuses:?}");
    assert_eq!(redis.dump(PREFIX).len(), 1, "the bucket is in the restarted Redis (the script was loaded again)");
    assert_eq!(edge.stderr().matches("Store reachable again").count(), 1);
}

#[tokio::test]
async fn redis_killed_with_deny_answers_503_at_once() {
    let mut redis = RedisServer::start();
    let edge = TestEdge::new(global_policy(&redis, "deny")).start();
    let mut connection = RawConnection::connect(edge.https).await;
    assert_eq!(connection.get("/api/tools", &[]).await.status, 200);
    redis.kill();
    let started = Instant::now();
    let response = connection.get("/api/tools", &[]).await;
    assert_eq!(response.status, 503);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(response.header("retry-after"), Some("1"));
    assert_eq!(response.json()["error"], "try again later");
    assert_eq!(connection.get("/health", &[]).await.status, 200, "/health needs no store");
}

#[tokio::test]
async fn a_wrong_password_is_a_store_error_handled_by_on_error() {
    let redis = RedisServer::with_password("the-right-password");
    let mut policy = global_policy(&redis, "deny");
    policy["store"]["redis"]["url"] = json!(redis.url_with_password("a-wrong-password"));
    let edge = TestEdge::new(&policy).start();
    let mut connection = RawConnection::connect(edge.https).await;
    assert_eq!(connection.get("/api/tools", &[]).await.status, 503);
    wait_store(&edge, "down");
    assert!(counter(&edge, "mcp_edge_store_errors_total{op=\"ping\"}") >= 1.0);
    assert!(!edge.stderr().contains("a-wrong-password"), "the password is never logged");

    policy["store"]["redis"]["on_error"] = json!("allow");
    let edge = TestEdge::new(&policy).start();
    let mut connection = RawConnection::connect(edge.https).await;
    assert_eq!(connection.get("/api/tools", &[]).await.status, 200, "allow: the local limiter decides");
}

/// A JWT-shaped token of subject `ada` (the mock API accepts any token).
const SESSION_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJlLW9mLWFkYS1zZWNyZXQ";
const ENCRYPTION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// Credential sessions in Redis, optionally bound to the edge principal, in front of `api`.
fn sessions_policy(redis: &RedisServer, api: &MockApi, edge_auth: bool) -> Value {
    let mut policy = json!({
        "auth": {"mode": "none"},
        "rate_limit": {"enabled": false},
        "store": store(redis, "allow"),
        "sessions": {
            "enabled": true,
            "allowed_api_urls": [format!("{}/api", api.url())],
            "encryption_key": ENCRYPTION_KEY,
        },
        "upstream": {"auth": {"mode": "session"}},
        "tools": [{"name": "get_shifts", "path": "/shifts", "input_schema": {"type": "object"}}],
    });
    if edge_auth {
        policy["auth"] = json!({"mode": "bearer", "bearer": {"tokens": [{"id": "alice", "value": ALICE}, {"id": "bob", "value": BOB}]}});
        policy["sessions"]["auth"] = json!("edge");
    }
    policy
}

async fn init(edge: &TestEdge, bearer: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = client(Protocol::Http1).post(edge.https_url("/init")).json(body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.expect("POST /init");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn session_call(edge: &TestEdge, bearer: Option<&str>, session_id: &str) -> (u16, Value) {
    let mut request = client(Protocol::Http1)
        .post(edge.https_url("/api/tools/get_shifts"))
        .header("x-session-id", session_id)
        .body("{}");
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.expect("POST tool");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn delete(edge: &TestEdge, bearer: Option<&str>, id: &str) -> u16 {
    let mut request = client(Protocol::Http1).delete(edge.https_url(&format!("/sessions/{id}")));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.expect("DELETE").status().as_u16()
}

#[tokio::test]
async fn a_credential_session_made_on_one_replica_is_used_and_ended_on_the_other_and_never_stored_in_clear() {
    let redis = RedisServer::start();
    let api = MockApi::new().any("/api/settings/validate", Reply::json(json!({"valid": true}))).start().await;
    let policy = sessions_policy(&redis, &api, false);
    let (a, b) = (TestEdge::new(&policy).start(), TestEdge::new(&policy).start());

    let (status, reply) =
        init(&a, None, &json!({"apiUrl": format!("{}/api", api.url()), "jwtToken": SESSION_TOKEN})).await;
    assert_eq!(status, 200, "{reply}");
    let id = reply["session_id"].as_str().expect("minted id").to_string();
    let (status, result) = session_call(&b, None, &id).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["structuredContent"]["headers"]["authorization"], format!("Bearer {SESSION_TOKEN}"), "{result}");
    let (status, _) =
        init(&b, None, &json!({"session_id": id, "apiUrl": format!("{}/api", api.url()), "jwtToken": SESSION_TOKEN}))
            .await;
    assert_eq!(status, 200, "the same session, known on B");
    assert_eq!(api.hits("/api/settings/validate"), 1, "validated once, on A");

    // Nothing under the prefix holds the token, the id or the subject in clear.
    let dump = redis.dump(PREFIX);
    assert!(dump.iter().any(|(key, _)| key.starts_with("edge-test:cs:")), "{dump:?}");
    let payload = SESSION_TOKEN.split('.').nth(1).expect("payload");
    for (key, value) in &dump {
        for secret in [SESSION_TOKEN, payload, "c2lnbmF0dXJl", id.as_str(), "ada"] {
            assert!(!key.contains(secret) && !value.contains(secret), "{secret} in {key} = {value}");
        }
    }
    let session_key = dump.iter().find(|(key, _)| key.starts_with("edge-test:cs:")).expect("session").0.clone();
    let ttl: i64 = redis::cmd("PTTL").arg(&session_key).query(&mut redis.connection().expect("redis")).expect("PTTL");
    assert!((1..=3_600_000).contains(&ttl), "the TTL is the idle timeout (1h), less than ttl (8h): {ttl}");

    // DELETE on B, then a call on A: unknown.
    assert_eq!(delete(&b, None, &id).await, 204);
    assert_eq!(session_call(&a, None, &id).await.0, 401);
    assert_eq!(delete(&a, None, &id).await, 404);
    assert!(redis.dump(PREFIX).iter().all(|(key, _)| !key.starts_with("edge-test:cs:")), "gone from Redis");
}

#[tokio::test]
async fn a_shared_session_stays_bound_to_its_owner_on_every_replica() {
    let redis = RedisServer::start();
    let api = MockApi::new().any("/api/settings/validate", Reply::json(json!({"valid": true}))).start().await;
    let policy = sessions_policy(&redis, &api, true);
    let (a, b) = (TestEdge::new(&policy).start(), TestEdge::new(&policy).start());
    let id = "team-a.laptop_0123456789abcdef~XYZ";
    let body = json!({"session_id": id, "apiUrl": format!("{}/api", api.url()), "jwtToken": SESSION_TOKEN});
    assert_eq!(init(&a, Some(ALICE), &body).await.0, 200);
    assert_eq!(init(&b, Some(BOB), &body).await.0, 409, "another principal cannot take the id over");
    assert_eq!(session_call(&b, Some(BOB), id).await.0, 401, "nor use it");
    assert_eq!(delete(&b, Some(BOB), id).await, 404, "nor end it");
    assert_eq!(session_call(&b, Some(ALICE), id).await.0, 200, "its owner uses it on either replica");
    for (key, value) in redis.dump(PREFIX) {
        assert!(!key.contains("alice") && !value.contains("alice"), "{key} = {value}");
    }
}

/// A session-era MCP request: (status, `Mcp-Session-Id` answered, JSON-RPC reply).
async fn mcp_session(
    edge: &TestEdge,
    method: reqwest::Method,
    session: Option<&str>,
    body: &str,
) -> (u16, Option<String>, Value) {
    let mut request = client(Protocol::Http1)
        .request(method, edge.https_url("/mcp"))
        .bearer_auth(ALICE)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string());
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.expect("MCP request");
    let status = response.status().as_u16();
    let id = response.headers().get("mcp-session-id").map(|value| value.to_str().expect("ascii").to_string());
    (status, id, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_mcp_session_ended_on_one_replica_is_ended_on_the_other() {
    let redis = RedisServer::start();
    let policy = json!({
        "auth": {"mode": "bearer", "bearer": {"tokens": [{"id": "alice", "value": ALICE}]}},
        "rate_limit": {"enabled": false},
        "store": store(&redis, "allow"),
        "mcp": {"session_key": "a-shared-mcp-session-key-of-at-least-32-bytes"},
        "tools": [{"name": "get_a", "path": "/a"}],
    });
    let (a, b) = (TestEdge::new(&policy).start(), TestEdge::new(&policy).start());
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    let (status, session, _) = mcp_session(&a, reqwest::Method::POST, None, initialize).await;
    assert_eq!(status, 200);
    let session = session.expect("Mcp-Session-Id");
    let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    assert_eq!(mcp_session(&b, reqwest::Method::POST, Some(&session), ping).await.0, 200, "any replica accepts it");

    assert_eq!(mcp_session(&a, reqwest::Method::DELETE, Some(&session), "").await.0, 204);
    assert_eq!(mcp_session(&b, reqwest::Method::POST, Some(&session), ping).await.0, 404, "ended on B too");
    assert_eq!(mcp_session(&b, reqwest::Method::DELETE, Some(&session), "").await.0, 404);
    let dump = redis.dump(PREFIX);
    assert_eq!(dump.len(), 1, "{dump:?}");
    assert!(dump[0].0.starts_with("edge-test:mcp-ended:") && !dump[0].0.contains(&session));
}

#[tokio::test]
async fn a_tls_redis_is_reached_over_rediss_and_its_certificate_is_checked() {
    let redis = RedisServer::with_tls();
    let ca = crate::support::repo_root().join("certs.example/ca.crt");
    let mut policy = global_policy(&redis, "deny");
    policy["rate_limit"]["burst"] = json!(1);
    let edge = TestEdge::new(&policy).env("SSL_CERT_FILE", ca.to_str().expect("utf-8")).start();
    let mut connection = RawConnection::connect(edge.https).await;
    let statuses = [
        connection.get("/api/tools", &[]).await.status,
        connection.get("/api/tools", &[]).await.status,
        connection.get("/api/tools", &[]).await.status,
    ];
    assert_eq!(statuses, [200, 200, 429], "the limit is decided in the TLS Redis");
    assert_eq!(readyz(&edge)["store"], "up");

    // Without the development CA the server's certificate is not trusted: no store.
    let untrusting = TestEdge::new(&policy).start();
    let mut connection = RawConnection::connect(untrusting.https).await;
    assert_eq!(connection.get("/api/tools", &[]).await.status, 503);
    wait_store(&untrusting, "down");
}

#[tokio::test]
async fn shared_sessions_are_bounded_across_replicas_least_recently_used_first() {
    use sha2::Digest;
    let redis = RedisServer::start();
    let api = MockApi::new().any("/api/settings/validate", Reply::json(json!({"valid": true}))).start().await;
    let mut policy = sessions_policy(&redis, &api, false);
    policy["sessions"]["max_sessions"] = json!(2);
    let a = TestEdge::new(&policy).audit_file(None, 1000).start();
    let b = TestEdge::new(&policy).start();
    let ids: Vec<String> = (0..3).map(|n| format!("shared-bound-session-{n}-0123456789abcdef")).collect();
    let init_body =
        |id: &str| json!({"session_id": id, "apiUrl": format!("{}/api", api.url()), "jwtToken": SESSION_TOKEN});
    assert_eq!(init(&a, None, &init_body(&ids[0])).await.0, 200);
    assert_eq!(init(&b, None, &init_body(&ids[1])).await.0, 200);
    assert_eq!(session_call(&b, None, &ids[0]).await.0, 200, "using the first makes the second the least recent");
    assert_eq!(init(&a, None, &init_body(&ids[2])).await.0, 200);
    assert_eq!(session_call(&a, None, &ids[1]).await.0, 401, "evicted for the third, on every replica");
    assert_eq!(session_call(&b, None, &ids[0]).await.0, 200);
    assert_eq!(session_call(&b, None, &ids[2]).await.0, 200);
    let digest: String =
        sha2::Sha256::digest(ids[1].as_bytes())[..4].iter().map(|byte| format!("{byte:02x}")).collect();
    a.wait_audit(|events| {
        events.iter().any(|event| {
            event["event.action"] == "SESSION_END"
                && event["event.reason"] == "evicted"
                && event["session.id"] == digest
        })
    });
}

#[tokio::test]
async fn with_redis_down_a_session_is_a_miss_under_allow_and_503_under_deny() {
    let mut redis = RedisServer::start();
    let api = MockApi::new().any("/api/settings/validate", Reply::json(json!({"valid": true}))).start().await;
    let allow = TestEdge::new(sessions_policy(&redis, &api, false)).start();
    let mut policy = sessions_policy(&redis, &api, false);
    policy["store"]["redis"]["on_error"] = json!("deny");
    let deny = TestEdge::new(&policy).start();
    let body = json!({"apiUrl": format!("{}/api", api.url()), "jwtToken": SESSION_TOKEN});
    let (status, reply) = init(&allow, None, &body).await;
    assert_eq!(status, 200);
    let id = reply["session_id"].as_str().expect("id").to_string();
    assert_eq!(session_call(&deny, None, &id).await.0, 200);

    redis.kill();
    assert_eq!(session_call(&allow, None, &id).await.0, 401, "allow: a miss");
    let (status, result) = session_call(&deny, None, &id).await;
    assert_eq!(status, 503, "deny: {result}");
    assert_eq!(init(&allow, None, &body).await.0, 503, "a session cannot be stored without the store");
    assert_eq!(delete(&deny, None, &id).await, 503);
}
