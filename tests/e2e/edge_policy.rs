//! The edge pipeline over real TLS: rate limiting, trusted client IP, CORS, hygiene limits,
//! and connections that stay open after every rejection.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::support::edge::TestEdge;
use crate::support::mock_api::MockApi;
use crate::support::policy;
use crate::support::raw_http::RawConnection;

const SECOND_CLIENT: &str = "127.0.0.2";

fn second_client() -> Option<IpAddr> {
    Some(SECOND_CLIENT.parse().expect("ip"))
}

#[tokio::test]
async fn twenty_five_back_to_back_requests_give_21_admissions_then_429s_like_nginx() {
    let api = MockApi::start().await;
    let edge =
        TestEdge::new(json!({"auth": {"mode": "none"}, "rate_limit": {"requests_per_minute": 100, "burst": 20}}))
            .passthrough(&api.url())
            .start();
    let mut connection = RawConnection::connect(edge.https).await;
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let response = connection.get("/anything", &[]).await;
        if response.status == 429 {
            let retry_after: u64 = response.header("retry-after").expect("Retry-After").parse().expect("seconds");
            assert!(retry_after >= 1);
            assert_eq!(response.header("ratelimit-policy"), Some("\"default\";q=100;w=60"));
            assert_eq!(response.header("ratelimit"), Some(format!("\"default\";r=0;t={retry_after}").as_str()));
            assert_eq!(response.header("content-type"), Some("application/json"));
            assert_eq!(response.json()["error"], "too many requests");
            assert!(response.header("x-request-id").is_some());
        } else {
            assert!(
                response.header("ratelimit").expect("RateLimit on admitted responses").starts_with("\"default\";r=")
            );
        }
        statuses.push(response.status);
    }
    let admitted = statuses.iter().filter(|status| **status == 200).count();
    let limited = statuses.iter().filter(|status| **status == 429).count();
    assert_eq!((admitted, limited), (21, 4), "{statuses:?}");
    assert!(statuses[..21].iter().all(|status| *status == 200), "{statuses:?}");

    // The connection survived four 429s, and /health is never rate limited.
    assert_eq!(connection.get("/health", &[]).await.status, 200);
    // Another client is unaffected.
    let mut other = RawConnection::connect_from(edge.https, second_client()).await;
    assert_eq!(other.get("/anything", &[]).await.status, 200);
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_peers() {
    let api = MockApi::start().await;
    let policy = json!({
        "auth": {"mode": "none"},
        "trusted_proxies": ["127.0.0.1/32"],
        "rate_limit": {"requests_per_minute": 1, "burst": 0},
    });
    let edge = TestEdge::new(policy).passthrough(&api.url()).start();

    // 127.0.0.1 is trusted: each forwarded client has its own bucket.
    let mut trusted = RawConnection::connect(edge.https).await;
    assert_eq!(trusted.get("/a", &["X-Forwarded-For: 203.0.113.1"]).await.status, 200);
    assert_eq!(trusted.get("/a", &["X-Forwarded-For: 203.0.113.1"]).await.status, 429);
    let response = trusted.get("/a", &["X-Forwarded-For: 198.51.100.7, 203.0.113.2"]).await;
    assert_eq!(response.status, 200, "the rightmost untrusted hop is the client, not the leftmost");
    assert_eq!(response.json()["headers"]["x-forwarded-for"], "198.51.100.7, 203.0.113.2, 127.0.0.1");

    // 127.0.0.2 is not trusted: its X-Forwarded-For is ignored, so it is one client.
    let mut untrusted = RawConnection::connect_from(edge.https, second_client()).await;
    assert_eq!(untrusted.get("/a", &["X-Forwarded-For: 203.0.113.3"]).await.status, 200);
    assert_eq!(untrusted.get("/a", &["X-Forwarded-For: 203.0.113.4"]).await.status, 429);
}

/// Bearer authentication and one allowed origin.
fn cors_policy() -> Value {
    let mut policy = policy::bearer(&["cors-test-token-123"]);
    policy["cors"] = json!({"allowed_origins": ["https://app.example"], "max_age": "5m"});
    policy
}

#[tokio::test]
async fn preflights_are_answered_at_the_edge_for_allowed_origins_only() {
    let edge = TestEdge::new(cors_policy()).start();
    let mut connection = RawConnection::connect(edge.https).await;
    let preflight = |origin: &str| {
        format!(
            "OPTIONS /mcp HTTP/1.1\r\nHost: localhost\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: authorization, content-type, mcp-session-id\r\n\r\n"
        )
    };
    let allowed = connection.send(preflight("https://app.example").as_bytes()).await;
    assert_eq!(allowed.status, 204, "no token needed for a preflight");
    assert_eq!(allowed.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(allowed.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(allowed.header("access-control-max-age"), Some("300"));
    assert_eq!(allowed.header("vary"), Some("Origin"));
    let methods = allowed.header("access-control-allow-methods").expect("methods");
    assert!(methods.contains("POST") && methods.contains("DELETE"), "{methods}");
    let headers = allowed.header("access-control-allow-headers").expect("headers").to_ascii_lowercase();
    for name in [
        "authorization",
        "content-type",
        "accept",
        "mcp-session-id",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
        "last-event-id",
    ] {
        assert!(headers.contains(name), "{name} missing from {headers}");
    }

    let denied = connection.send(preflight("https://evil.example").as_bytes()).await;
    assert_eq!(denied.status, 403);
    assert!(denied.headers.keys().all(|name| !name.starts_with("access-control-")), "{:?}", denied.headers);
    assert_eq!(denied.json()["error"], "origin not allowed");

    // The same connection still works after the 403.
    assert_eq!(connection.get("/health", &[]).await.status, 200);
}

#[tokio::test]
async fn actual_requests_get_cors_headers_even_on_errors_and_bad_origins_get_403() {
    let edge = TestEdge::new(cors_policy()).start();
    let mut connection = RawConnection::connect(edge.https).await;
    let unauthorized = connection.get("/mcp", &["Origin: https://app.example"]).await;
    assert_eq!(unauthorized.status, 401);
    assert_eq!(unauthorized.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(unauthorized.header("access-control-allow-credentials"), Some("true"));
    let exposed = unauthorized.header("access-control-expose-headers").expect("expose");
    for name in ["Mcp-Session-Id", "Retry-After", "RateLimit", "RateLimit-Policy", "WWW-Authenticate"] {
        assert!(exposed.contains(name), "{name} missing from {exposed}");
    }
    assert_eq!(unauthorized.header("vary"), Some("Origin"));

    let no_origin = connection.get("/health", &[]).await;
    assert_eq!(no_origin.header("vary"), Some("Origin"), "Vary: Origin always");
    assert!(no_origin.header("access-control-allow-origin").is_none());

    let bad = connection.get("/health", &["Origin: http://app.example"]).await;
    assert_eq!(bad.status, 403, "scheme differs: not the same origin");
    assert!(bad.header("access-control-allow-origin").is_none());
    assert_eq!(connection.get("/health", &[]).await.status, 200, "connection reused after 403");
}

#[tokio::test]
async fn credentials_are_not_allowed_when_auth_is_off() {
    let edge = TestEdge::new(json!({"auth": {"mode": "none"}, "cors": {"allowed_origins": ["http://localhost:8080"]}}))
        .start();
    let mut connection = RawConnection::connect(edge.https).await;
    let response = connection.get("/health", &["Origin: http://localhost:8080"]).await;
    assert_eq!(response.header("access-control-allow-origin"), Some("http://localhost:8080"));
    assert!(response.header("access-control-allow-credentials").is_none());
}

#[tokio::test]
async fn hygiene_limits_answer_431_413_400_and_keep_the_connection() {
    let api = MockApi::start().await;
    let policy = json!({
        "auth": {"mode": "none"},
        "limits": {"max_header_bytes": "2KiB", "max_headers": 10, "max_body_bytes": "1KiB"},
    });
    let edge = TestEdge::new(policy).passthrough(&api.url()).start();
    let mut connection = RawConnection::connect(edge.https).await;

    let many: Vec<String> = (0..12).map(|n| format!("X-Extra-{n}: {n}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(connection.get("/a", &many).await.status, 431);
    // A head over max_header_bytes on the wire is refused before it is complete, and that
    // connection closes (DESIGN §15); it is tested in connections.rs.
    let underscore = connection.get("/a", &["X_Forwarded_For: 1.2.3.4"]).await;
    assert_eq!(underscore.status, 400);
    assert_eq!(underscore.json()["error"], "bad request");

    let body = "x".repeat(2048);
    let oversized = format!("POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let response = connection.send(oversized.as_bytes()).await;
    assert_eq!(response.status, 413);
    assert_ne!(response.header("connection"), Some("close"));
    assert_eq!(response.json()["error"], "request body too large");

    let fits = format!("POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 512\r\n\r\n{}", "y".repeat(512));
    let response = connection.send(fits.as_bytes()).await;
    assert_eq!(response.status, 200, "the same connection serves a request after 431, 400 and 413");
    assert_eq!(response.json()["body"].as_str().map(str::len), Some(512));
}

#[tokio::test]
async fn chunked_bodies_are_counted_as_they_stream() {
    let api = MockApi::start().await;
    let edge = TestEdge::new(json!({"auth": {"mode": "none"}, "limits": {"max_body_bytes": "1KiB"}}))
        .passthrough(&api.url())
        .start();
    let mut connection = RawConnection::connect(edge.https).await;
    let chunk = "z".repeat(800);
    let request = format!(
        "POST /a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n{len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        len = chunk.len()
    );
    let response = connection.send(request.as_bytes()).await;
    assert_eq!(response.status, 413);
}

#[tokio::test]
async fn a_401_to_a_post_with_a_body_keeps_the_connection_alive() {
    let edge = TestEdge::new(policy::bearer(&["keep-alive-token-1"])).start();
    let mut connection = RawConnection::connect(edge.https).await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    for _ in 0..3 {
        let response = connection.send(request.as_bytes()).await;
        assert_eq!(response.status, 401);
        assert_ne!(response.header("connection"), Some("close"));
    }
    assert_eq!(connection.get("/health", &[]).await.status, 200);
}

#[tokio::test]
async fn a_malformed_content_length_is_400_and_closes_the_connection() {
    let edge = TestEdge::new(policy::open()).start();
    let mut connection = RawConnection::connect(edge.https).await;
    let response = connection
        .send(b"POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello")
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(response.header("connection"), Some("close"), "unknown framing must not be reused");
}

#[tokio::test]
async fn a_401_keeps_the_connection_alive() {
    let edge = TestEdge::new(policy::bearer(&["keep-alive-token-1"])).start();
    let mut connection = RawConnection::connect(edge.https).await;
    for _ in 0..3 {
        let response = connection.get("/mcp", &["Authorization: Bearer nope"]).await;
        assert_eq!(response.status, 401);
        assert_ne!(response.header("connection"), Some("close"));
    }
    assert_eq!(connection.get("/health", &[]).await.status, 200);
    assert!(!connection.is_closed().await);
}

/// DESIGN §15: every `X-Forwarded-For` line counts. A trusted proxy that adds its own line
/// (HAProxy `option forwardfor`) must not let the client pick its address with a first line.
#[tokio::test]
async fn every_forwarded_for_line_counts_so_a_spoofed_first_line_is_not_the_client() {
    let api = MockApi::start().await;
    let policy = json!({
        "auth": {"mode": "none"},
        "trusted_proxies": ["127.0.0.1/32"],
        "rate_limit": {"requests_per_minute": 1, "burst": 1},
    });
    let edge = TestEdge::new(policy).passthrough(&api.url()).audit_file(None, 1024).start();
    let mut proxy = RawConnection::connect(edge.https).await;
    let mut statuses = Vec::new();
    for n in 1..=5 {
        let spoofed = format!("X-Forwarded-For: 203.0.113.{n}");
        let response = proxy.get("/a", &[&spoofed, "X-Forwarded-For: 198.51.100.7"]).await;
        if response.status == 200 {
            assert_eq!(
                response.json()["headers"]["x-forwarded-for"],
                format!("203.0.113.{n}, 198.51.100.7, 127.0.0.1"),
                "both lines are passed on, in order, with the peer appended"
            );
        }
        statuses.push(response.status);
    }
    assert_eq!(statuses, [200, 200, 429, 429, 429], "one client, 198.51.100.7, whatever the first line says");
    // One event with a status per request: HTTP_REQUEST for the two served, RATE_LIMITED for
    // the three refused.
    let with_status = |event: &&serde_json::Value| event["http.response.status_code"].is_number();
    let events = edge.wait_audit(|events| events.iter().filter(with_status).count() >= 5);
    for event in events.iter().filter(with_status) {
        assert_eq!(event["source.ip"], "198.51.100.7", "the audit names the resolved client: {event}");
    }
}

/// DESIGN §15: a full rate-limit table evicts; newcomers never share one bucket.
#[tokio::test]
async fn a_full_rate_limit_table_gives_every_newcomer_its_own_bucket() {
    let api = MockApi::start().await;
    let policy = json!({
        "auth": {"mode": "none"},
        "rate_limit": {"requests_per_minute": 1, "burst": 20, "max_tracked_clients": 10},
    });
    let edge = TestEdge::new(policy).passthrough(&api.url()).start();
    for n in 2..=11 {
        let address: IpAddr = format!("127.0.0.{n}").parse().expect("ip");
        let mut connection = RawConnection::connect_from(edge.https, Some(address)).await;
        assert_eq!(connection.get("/fill", &[]).await.status, 200);
    }
    let mut statuses = Vec::new();
    for n in 100..=103 {
        let address: IpAddr = format!("127.0.0.{n}").parse().expect("ip");
        let mut newcomer = RawConnection::connect_from(edge.https, Some(address)).await;
        for _ in 0..21 {
            statuses.push(newcomer.get("/new", &[]).await.status);
        }
    }
    assert!(statuses.iter().all(|status| *status == 200), "each newcomer had its own burst of 21: {statuses:?}");
}

/// DESIGN §15: preflights and refused origins count against the client's limit.
#[tokio::test]
async fn preflights_and_refused_origins_count_against_the_rate_limit() {
    let mut policy = policy::bearer(&["cors-test-token-123"]);
    policy["cors"] = json!({"allowed_origins": ["https://app.example"]});
    policy["rate_limit"] = json!({"requests_per_minute": 1, "burst": 2});
    let edge = TestEdge::new(policy).start();
    let mut connection = RawConnection::connect(edge.https).await;
    let preflight = b"OPTIONS /mcp HTTP/1.1\r\nHost: localhost\r\nOrigin: https://app.example\r\n\
                      Access-Control-Request-Method: POST\r\n\r\n";
    assert_eq!(connection.send(preflight).await.status, 204);
    assert_eq!(connection.get("/mcp", &["Origin: https://evil.example"]).await.status, 403);
    assert_eq!(connection.send(preflight).await.status, 204);
    let limited = connection.send(preflight).await;
    assert_eq!(limited.status, 429, "three requests used the burst of 3");
    assert_eq!(connection.get("/mcp", &["Origin: https://evil.example"]).await.status, 429);
    let mut other = RawConnection::connect_from(edge.https, second_client()).await;
    assert_eq!(other.send(preflight).await.status, 204, "another client is unaffected");
}
