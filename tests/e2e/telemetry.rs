//! Audit log, metrics and traces end to end: the events each kind of request produces, no
//! secret in any output at debug level, `/metrics` moving as requests arrive, a blocked audit
//! sink that stalls nothing, and spans exported to a local OTLP/HTTP receiver.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::edge::{TestEdge, admin_body};
use crate::support::jwt;
use crate::support::mock_api::MockApi;
use crate::support::policy;
use crate::support::raw_http::RawConnection;

const TOKEN: &str = "audit-bearer-token-000001";
const HS_SECRET: &str = "audit-hs256-secret-with-enough-bytes-123";
const UPSTREAM_TOKEN: &str = "upstream-service-token-0001";
const SESSION_KEY: &str = "mcp-session-key-with-at-least-32-bytes!!";
const PASSWORD: &str = "pw-very-secret-value";

fn policy(api: &MockApi) -> Value {
    let string = json!({"type": "string"});
    json!({
        "auth": {
            "mode": "bearer_or_jwt",
            "bearer": {"tokens": [{"id": "auditor", "value": TOKEN}]},
            "jwt": {
                "issuer": jwt::ISSUER,
                "audiences": [jwt::AUDIENCE],
                "hs256_secret": HS_SECRET,
                "algorithms": ["HS256"],
            },
        },
        "cors": {"allowed_origins": ["https://app.example"]},
        "rate_limit": {"requests_per_minute": 60, "burst": 5},
        "upstream": {"base_url": api.url(), "auth": {"mode": "static", "token": UPSTREAM_TOKEN}},
        "mcp": {"session_key": SESSION_KEY},
        "tools": [{
            "name": "login_check",
            "method": "POST",
            "path": "/login",
            "input_schema": {
                "type": "object",
                "properties": {"user": string, "password": string, "nested": {"type": "object"}},
            },
        }],
    })
}

fn actions(events: &[Value], request_id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|event| event["http.request.id"] == request_id)
        .map(|event| event["event.action"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The request's event with `action`.
fn event<'a>(events: &'a [Value], request_id: &str, action: &str) -> &'a Value {
    events
        .iter()
        .find(|event| event["http.request.id"] == request_id && event["event.action"] == action)
        .unwrap_or_else(|| panic!("no {action} event for {request_id}"))
}

fn request_id(response: &crate::support::raw_http::RawResponse) -> String {
    response.header("x-request-id").expect("x-request-id").to_string()
}

#[tokio::test]
async fn each_kind_of_request_produces_its_audit_events() {
    let api = MockApi::start().await;
    let edge = TestEdge::new(policy(&api)).audit_file(None, 16_384).start();
    let mut connection = RawConnection::connect(edge.https).await;

    // A bad token: exactly one event, AUTH_FAILED, with its reason, the client address and
    // what HTTP_REQUEST carries for other requests (status, duration).
    let bad = connection.get("/api/tools", &["Authorization: Bearer wrong-token"]).await;
    assert_eq!(bad.status, 401);
    let bad_id = request_id(&bad);
    let events = edge.wait_audit(|events| actions(events, &bad_id).contains(&"AUTH_FAILED".to_string()));
    let failed = event(&events, &bad_id, "AUTH_FAILED");
    assert_eq!(failed["event.reason"], "invalid_token");
    assert_eq!(failed["event.outcome"], "failure");
    assert_eq!(failed["source.ip"], "127.0.0.1");
    assert_eq!(failed["http.response.status_code"], 401);
    assert_eq!(failed["http.request.method"], "GET");
    assert_eq!(failed["url.path"], "/api/tools");
    assert!(failed["event.duration"].as_u64().is_some(), "{failed}");

    // A good tool call: AUTH_SUCCESS and TOOL_EXECUTE with the password redacted.
    let body = json!({"user": "ada", "password": PASSWORD, "nested": {"Token": "nested-secret-1"}}).to_string();
    let request = format!(
        "POST /api/tools/login_check HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let good = connection.send(request.as_bytes()).await;
    assert_eq!(good.status, 200);
    let good_id = request_id(&good);
    let events = edge.wait_audit(|events| actions(events, &good_id).len() == 3);
    assert_eq!(actions(&events, &good_id), ["AUTH_SUCCESS", "TOOL_EXECUTE", "HTTP_REQUEST"]);
    let tool = event(&events, &good_id, "TOOL_EXECUTE");
    assert_eq!(tool["gen_ai.tool.name"], "login_check");
    assert_eq!(tool["user.id"], "auditor");
    assert_eq!(tool["auth.method"], "bearer");
    assert_eq!(tool["tool.is_error"], false);
    assert_eq!(tool["upstream.status_code"], 200);
    assert!(tool["event.duration"].as_u64().is_some());
    assert_eq!(
        tool["tool.arguments"],
        json!({"user": "ada", "password": "[REDACTED]", "nested": {"Token": "[REDACTED]"}})
    );

    // A disallowed origin, then a flood: CORS_REJECTED and RATE_LIMITED.
    let cors = connection.get("/health", &["Origin: https://evil.example"]).await;
    assert_eq!(cors.status, 403);
    let cors_id = request_id(&cors);
    let mut limited_id = None;
    for _ in 0..10 {
        let response = connection.get("/api/tools", &[&format!("Authorization: Bearer {TOKEN}")]).await;
        if response.status == 429 {
            limited_id = Some(request_id(&response));
            break;
        }
    }
    let limited_id = limited_id.expect("the burst of 6 runs out");
    let events =
        edge.wait_audit(|events| !actions(events, &limited_id).is_empty() && !actions(events, &cors_id).is_empty());
    for (id, action, status) in [(&cors_id, "CORS_REJECTED", 403), (&limited_id, "RATE_LIMITED", 429)] {
        assert_eq!(actions(&events, id), [action], "a refused request gives one event");
        let refusal = event(&events, id, action);
        assert_eq!(refusal["http.response.status_code"], status, "{refusal}");
        assert!(refusal["event.duration"].as_u64().is_some(), "{refusal}");
    }
    // The bad token's request gave no more than its AUTH_FAILED either.
    assert_eq!(actions(&events, &bad_id), ["AUTH_FAILED"]);

    // One event with a status per request (HTTP_REQUEST, or the refusal), each with its own id.
    let requests: Vec<&Value> = events.iter().filter(|event| event["http.response.status_code"].is_number()).collect();
    let mut ids: Vec<&str> = requests.iter().filter_map(|event| event["http.request.id"].as_str()).collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "request ids are unique");
    assert!(count >= 4);
    for event in &events {
        assert!(event["@timestamp"].as_str().is_some_and(|time| time.ends_with('Z')));
    }
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name_and_labels).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

/// Every sample line is `name{labels} value` and every family has HELP and TYPE.
fn assert_parses(text: &str) {
    assert!(text.trim_end().ends_with("# EOF"));
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {line}"));
        assert!(value.parse::<f64>().is_ok(), "bad value in {line}");
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            name.starts_with("mcp_edge_") && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{line}"
        );
        if series.contains('{') {
            assert!(series.ends_with('}'), "{line}");
        }
    }
}

/// `/metrics` once `ready` holds (bounded: 5 s), or as it is then.
fn metrics_when(edge: &TestEdge, ready: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let text = admin_body(edge.admin, "/metrics").expect("metrics");
        if ready(&text) || std::time::Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[tokio::test]
async fn metrics_parse_and_move_with_the_requests() {
    let api = MockApi::start().await;
    let edge = TestEdge::new(policy(&api)).start();
    let before = admin_body(edge.admin, "/metrics").expect("metrics");
    assert_parses(&before);
    let mut connection = RawConnection::connect(edge.https).await;
    connection.get("/health", &[]).await;
    // The response is written before pingora's logging phase counts it: wait for the count.
    let first = metrics_when(&edge, |text| text.contains("mcp_edge_requests_total{"));
    for name in [
        "mcp_edge_requests",
        "mcp_edge_request_duration_seconds",
        "mcp_edge_rate_limited",
        "mcp_edge_auth_failures",
        "mcp_edge_cors_rejected",
        "mcp_edge_tool_calls",
        "mcp_edge_upstream_request_duration_seconds",
        "mcp_edge_upstream_retries",
        "mcp_edge_circuit_state",
        "mcp_edge_audit_dropped",
        "mcp_edge_config_reloads",
        "mcp_edge_tls_cert_expiry_timestamp_seconds",
        "mcp_edge_build_info",
    ] {
        assert!(first.contains(&format!("# TYPE {name} ")), "{name} missing:\n{first}");
    }
    assert!(
        metric(&before, "mcp_edge_tls_cert_expiry_timestamp_seconds") > 1.7e9,
        "the dev certificate expires in the 2030s"
    );
    assert_eq!(metric(&before, &format!("mcp_edge_circuit_state{{upstream=\"{}/\"}}", api.url())), 0.0);

    connection.get("/api/tools", &["Authorization: Bearer nope"]).await;
    connection.get("/health", &["Origin: https://evil.example"]).await;
    let body = r#"{"user":"ada"}"#;
    let request = format!(
        "POST /api/tools/login_check HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(connection.send(request.as_bytes()).await.status, 200);
    for _ in 0..8 {
        connection.get("/api/tools", &[&format!("Authorization: Bearer {TOKEN}")]).await;
    }
    let after = metrics_when(&edge, |text| {
        metric(text, "mcp_edge_request_duration_seconds_count{route=\"tools_list\"}")
            - metric(&before, "mcp_edge_request_duration_seconds_count{route=\"tools_list\"}")
            >= 8.0
    });
    assert_parses(&after);
    let moved = |series: &str| metric(&after, series) - metric(&before, series);
    assert_eq!(moved("mcp_edge_auth_failures_total{reason=\"invalid_token\"}"), 1.0);
    assert_eq!(moved("mcp_edge_cors_rejected_total"), 1.0);
    assert_eq!(moved("mcp_edge_tool_calls_total{tool=\"login_check\",outcome=\"success\"}"), 1.0);
    assert_eq!(moved("mcp_edge_requests_total{route=\"tools_call\",code=\"200\"}"), 1.0);
    assert!(moved("mcp_edge_rate_limited_total") >= 1.0);
    assert_eq!(moved("mcp_edge_upstream_request_duration_seconds_count{tool=\"login_check\"}"), 1.0);
    assert!(moved("mcp_edge_request_duration_seconds_count{route=\"tools_list\"}") >= 5.0);
}

#[tokio::test]
async fn no_token_jwt_or_secret_appears_in_any_output_at_debug_level() {
    let api = MockApi::start().await;
    let edge = TestEdge::new(policy(&api)).audit_file(None, 16_384).env("RUST_LOG", "debug").start();
    let jwt = jwt::sign_hs256(HS_SECRET.as_bytes(), &jwt::claims());
    let mut connection = RawConnection::connect(edge.https).await;
    let body = json!({"user": "ada", "password": PASSWORD}).to_string();
    for token in [TOKEN, jwt.as_str(), "a-wrong-token-value-xyz"] {
        let request = format!(
            "POST /api/tools/login_check HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        connection.send(request.as_bytes()).await;
    }
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {jwt}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{initialize}",
        initialize.len()
    );
    let response = connection.send(request.as_bytes()).await;
    let session_id = response.header("mcp-session-id").expect("session").to_string();
    // Every request's closing event (HTTP_REQUEST, or a refusal's own) carries its status.
    edge.wait_audit(|events| events.iter().filter(|event| event["http.response.status_code"].is_number()).count() >= 4);
    let outputs = [
        ("stdout", edge.stdout()),
        ("stderr", edge.stderr()),
        ("audit", std::fs::read_to_string(edge.audit_path.as_ref().expect("audit")).expect("audit file")),
    ];
    assert!(outputs[1].1.contains("DEBUG"), "the edge ran at debug level");
    for (name, output) in &outputs {
        for secret in [TOKEN, jwt.as_str(), HS_SECRET, UPSTREAM_TOKEN, SESSION_KEY, PASSWORD, "a-wrong-token-value-xyz"]
        {
            assert!(!output.contains(secret), "a secret appeared in {name}");
        }
        let jwt_signature = jwt.rsplit('.').next().expect("signature");
        assert!(!output.contains(jwt_signature), "a JWT signature appeared in {name}");
        assert!(!output.contains(&session_id), "a session id appeared in {name}");
    }
}

#[tokio::test]
async fn a_blocked_audit_sink_stalls_no_request_and_counts_what_it_drops() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().expect("dir");
    let fifo = dir.path().join("audit.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    // Someone holds the read end and never reads: the writer blocks once the pipe is full.
    let reader = nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK,
        nix::sys::stat::Mode::empty(),
    )
    .expect("open the read end");
    let edge = TestEdge::new(json!({"auth": {"mode": "none"}, "rate_limit": {"enabled": false}}))
        .audit_file(Some(&fifo), 32)
        .start();
    let mut connection = RawConnection::connect(edge.https).await;
    let padding = format!("/health?{}", "p".repeat(1500));
    for _ in 0..400 {
        let response = tokio::time::timeout(Duration::from_secs(5), connection.get(&padding, &[]))
            .await
            .expect("no request stalls");
        assert_eq!(response.status, 200);
    }
    let metrics = admin_body(edge.admin, "/metrics").expect("metrics");
    assert!(metric(&metrics, "mcp_edge_audit_dropped_total") > 0.0, "{metrics}");
    assert!(reader.as_raw_fd() >= 0);
}

#[tokio::test]
async fn spans_are_exported_to_an_otlp_receiver_and_continue_the_callers_trace() {
    let bodies: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let receiver_bodies = Arc::clone(&bodies);
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let bodies = Arc::clone(&receiver_bodies);
            async move {
                bodies.lock().expect("lock").push(body.to_vec());
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let receiver = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let mut edge = TestEdge::new(policy::open()).otlp(&receiver).drain("0s", "2s").start();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut connection = RawConnection::connect(edge.https).await;
    let response = connection.get("/health", &[&format!("traceparent: 00-{trace_id}-00f067aa0ba902b7-01")]).await;
    assert_eq!(response.status, 200);
    drop(connection);
    edge.signal(nix::sys::signal::Signal::SIGTERM);
    let status =
        tokio::task::spawn_blocking(move || (edge.wait_exit(Duration::from_secs(10)), edge)).await.expect("join");
    assert!(status.0.is_some_and(|status| status.success()), "{}", status.1.stderr());
    let trace_bytes: Vec<u8> =
        (0..16).map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).expect("hex")).collect();
    let bodies = bodies.lock().expect("lock");
    assert!(!bodies.is_empty(), "no OTLP export arrived");
    assert!(
        bodies.iter().any(|body| body.windows(16).any(|window| window == trace_bytes.as_slice())),
        "the exported span does not continue the caller's trace"
    );
}

/// An upstream that reads each request and closes the connection without answering.
async fn closing_upstream() -> std::net::SocketAddr {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut head)).await;
            });
        }
    });
    address
}

#[tokio::test]
async fn a_failed_upstream_call_logs_no_query_or_argument_secret() {
    const QUERY_SECRET: &str = "query-secret-access-token-0042";
    let upstream = closing_upstream().await;
    let string = json!({"type": "string"});
    let policy = json!({
        "auth": {"mode": "bearer", "bearer": {"tokens": [TOKEN]}},
        "upstream": {
            "base_url": format!("http://{upstream}/api"),
            "retry": {"attempts": 2, "backoff": "10ms", "max_backoff": "10ms"},
        },
        "tools": [{
            "name": "lookup",
            "method": "GET",
            "path": "/accounts/{account}",
            "input_schema": {
                "type": "object",
                "required": ["account"],
                "properties": {"account": string, "access_token": string, "clientSecret": string},
            },
        }],
    });
    let edge = TestEdge::new(policy).audit_file(None, 1024).env("RUST_LOG", "debug").start();
    let mut connection = RawConnection::connect(edge.https).await;
    let body = json!({"account": "acct-7731", "access_token": QUERY_SECRET, "clientSecret": "client-secret-value-99"})
        .to_string();
    let request = format!(
        "POST /api/tools/lookup HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let response = connection.send(request.as_bytes()).await;
    assert_eq!(response.status, 502, "{}", String::from_utf8_lossy(&response.body));
    let id = request_id(&response);
    let events = edge.wait_audit(|events| actions(events, &id).contains(&"HTTP_REQUEST".to_string()));
    let tool = event(&events, &id, "TOOL_EXECUTE");
    assert_eq!(tool["tool.arguments"]["access_token"], "[REDACTED]");
    assert_eq!(tool["tool.arguments"]["clientSecret"], "[REDACTED]");
    let stderr = edge.stderr();
    let failure = stderr.lines().find(|line| line.contains("Upstream call failed")).expect("the failure is logged");
    assert!(failure.contains("lookup") && failure.contains("/accounts/{account}"), "{failure}");
    let audit = std::fs::read_to_string(edge.audit_path.as_ref().expect("audit")).expect("audit file");
    for (name, output) in [("stdout", edge.stdout()), ("stderr", stderr), ("audit", audit)] {
        for secret in [QUERY_SECRET, "client-secret-value-99", TOKEN] {
            assert!(!output.contains(secret), "{secret} appeared in {name}");
        }
    }
}

#[tokio::test]
async fn a_malformed_head_with_credentials_leaves_them_out_of_the_debug_log() {
    let edge = TestEdge::new(policy::open()).env("RUST_LOG", "debug").start();
    let mut connection = RawConnection::connect(edge.https).await;
    let response = connection
        .send(b"GET /health?access_token=query-secret-in-head-1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer header-secret-in-head-2\r\nBad\x01: x\r\n\r\n")
        .await;
    assert_eq!(response.status, 400);
    // A later request proves the edge logged the failed one before we look.
    let mut next = RawConnection::connect(edge.https).await;
    assert_eq!(next.get("/health", &[]).await.status, 200);
    let stderr = edge.stderr();
    assert!(stderr.contains("DEBUG"), "the edge ran at debug level");
    for secret in ["query-secret-in-head-1", "header-secret-in-head-2"] {
        assert!(!stderr.contains(secret), "{secret} appeared in the log");
    }
}

#[tokio::test]
async fn a_9_kb_json_rpc_method_still_gives_its_request_an_audit_line() {
    let edge = TestEdge::new(json!({
        "auth": {"mode": "none"},
        "tools": [{"name": "ping", "method": "GET", "path": "/ping", "input_schema": {"type": "object"}}],
    }))
    .audit_file(None, 1024)
    .start();
    let mut connection = RawConnection::connect(edge.https).await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "x".repeat(9000)}).to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let response = connection.send(request.as_bytes()).await;
    let id = request_id(&response);
    let events = edge.wait_audit(|events| actions(events, &id).contains(&"HTTP_REQUEST".to_string()));
    let line = event(&events, &id, "HTTP_REQUEST");
    assert_eq!(line["http.response.status_code"], response.status);
    assert!(line["mcp.method.name"].as_str().is_some_and(|method| method.starts_with("xxxx")), "{line}");
    let metrics = admin_body(edge.admin, "/metrics").expect("metrics");
    assert_eq!(metric(&metrics, "mcp_edge_audit_dropped_total"), 0.0, "nothing was dropped");
}

#[tokio::test]
async fn a_failed_passthrough_s_log_lines_have_no_query() {
    let api = MockApi::start().await;
    let edge = TestEdge::new(json!({"auth": {"mode": "none"}, "limits": {"max_body_bytes": "1KiB"}}))
        .passthrough(&api.url())
        .start();
    let mut connection = RawConnection::connect(edge.https).await;
    let chunk = "z".repeat(800);
    // Streamed past the body limit: refused while the body is forwarded.
    let request = format!(
        "POST /upload?access_token=query-secret-in-passthrough HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
         {len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        len = chunk.len()
    );
    assert_eq!(connection.send(request.as_bytes()).await.status, 413);

    // An upstream that is gone: the failure is logged as a warning, with the request id.
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("address"))
    };
    let failing = TestEdge::new(json!({"auth": {"mode": "none"}})).passthrough(&gone).start();
    let mut connection = RawConnection::connect(failing.https).await;
    let response = connection.get("/upload?access_token=query-secret-in-passthrough", &[]).await;
    assert_eq!(response.status, 502);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let line = loop {
        let stderr = failing.stderr();
        if let Some(line) = stderr.lines().find(|line| line.contains("Passthrough failed")) {
            break line.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no failure was logged:\n{stderr}");
        std::thread::sleep(Duration::from_millis(25));
    };
    assert!(line.contains("request_id"), "{line}");
    for stderr in [edge.stderr(), failing.stderr()] {
        assert!(!stderr.contains("query-secret-in-passthrough"), "the query reached the log:\n{stderr}");
    }
}
