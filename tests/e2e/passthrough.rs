//! The passthrough route: headers added, bodies and SSE streamed, errors as JSON.

use std::time::Duration;

use axum::http::Method;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::support::edge::TestEdge;
use crate::support::mock_api::{MockApi, Reply};
use crate::support::policy;
use crate::support::tls_client::{Protocol, client};

/// Static bearer authentication with one token.
fn bearer_policy() -> Value {
    policy::bearer(&["test-token-0123456789"])
}

#[tokio::test]
async fn get_and_post_reach_the_upstream_with_forwarding_headers() {
    let api = MockApi::start().await;
    let edge = TestEdge::new(bearer_policy()).passthrough(&api.url()).start();
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let http = client(protocol);
        let response = http
            .get(edge.https_url("/tools/list?page=2"))
            .bearer_auth("test-token-0123456789")
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200);
        let request_id = response.headers()["x-request-id"].to_str().expect("ascii").to_string();
        let seen: serde_json::Value = response.json().await.expect("json");
        assert_eq!(seen["method"], "GET");
        assert_eq!(seen["path"], "/tools/list");
        assert_eq!(seen["query"], "page=2");
        assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");
        assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
        assert_eq!(seen["headers"]["x-request-id"], request_id.as_str(), "upstream sees the same request id");
        assert_eq!(seen["headers"]["host"], api.address.to_string());

        let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        let response = http
            .post(edge.https_url("/mcp"))
            .bearer_auth("test-token-0123456789")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 200);
        let seen: serde_json::Value = response.json().await.expect("json");
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["body"], body);
    }
}

#[tokio::test]
async fn encoded_slashes_in_the_path_are_forwarded_as_received() {
    let api = MockApi::start().await;
    let edge = TestEdge::new(policy::open()).passthrough(&api.url()).start();
    let response = client(Protocol::Http1).get(edge.https_url("/files/a%2Fb/..%2Fc")).send().await.expect("GET");
    let seen: serde_json::Value = response.json().await.expect("json");
    assert_eq!(seen["path"], "/files/a%2Fb/..%2Fc");
}

#[tokio::test]
async fn sse_events_arrive_before_the_upstream_finishes() {
    let events = ["event: message\ndata: first\n\n", "event: message\ndata: second\n\n"];
    let api = MockApi::new().route(Method::GET, "/sse", Reply::held_stream(&events)).start().await;
    let edge = TestEdge::new(policy::open()).passthrough(&api.url()).start();
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let response = client(protocol).get(edge.https_url("/sse")).send().await.expect("GET /sse");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut stream = response.bytes_stream();
        // The upstream holds the second event until released: if the edge buffered, this
        // read would wait for the whole response and time out.
        let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("first event arrives while the upstream is still open")
            .expect("a chunk")
            .expect("no error");
        assert!(String::from_utf8_lossy(&first).contains("data: first"));
        api.release_stream();
        let mut rest = Vec::new();
        while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("stream ends")
        {
            rest.extend_from_slice(&chunk.expect("chunk"));
        }
        assert!(String::from_utf8_lossy(&rest).contains("data: second"));
    }
}

#[tokio::test]
async fn unrouted_requests_without_passthrough_get_a_json_404() {
    let edge = TestEdge::new(policy::open()).start();
    let response = client(Protocol::Http2).get(edge.https_url("/nowhere")).send().await.expect("GET");
    assert_eq!(response.status(), 404);
    let request_id = response.headers()["x-request-id"].to_str().expect("ascii").to_string();
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body, serde_json::json!({"error": "not found", "request_id": request_id}));
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_json_502_and_the_client_carries_on() {
    // Port 1 (tcpmux) has no listener; a "free" port could be taken by a parallel test.
    let edge = TestEdge::new(policy::open()).passthrough("http://127.0.0.1:1").start();
    let http = client(Protocol::Http1);
    for _ in 0..2 {
        let response = http.get(edge.https_url("/anything")).send().await.expect("GET");
        assert_eq!(response.status(), 502);
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["error"], "bad gateway");
    }
    let response = http.get(edge.https_url("/health")).send().await.expect("health after 502");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn bearer_mode_refuses_requests_without_a_valid_token_but_not_health() {
    let api = MockApi::start().await;
    let edge = TestEdge::new(bearer_policy()).passthrough(&api.url()).start();
    let http = client(Protocol::Http1);
    for token in [None, Some("wrong-token"), Some("test-token-0123456789x")] {
        let mut request = http.get(edge.https_url("/mcp"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("GET");
        assert_eq!(response.status(), 401, "token {token:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"mcp-edge\", error=\"invalid_token\"");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["error"], "unauthorized");
    }
    assert_eq!(http.get(edge.https_url("/health")).send().await.expect("health").status(), 200);
}

// Multi-threaded: `wait_audit` blocks while the mock API still has to answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hanging_up_mid_request_is_not_logged_as_a_proxy_failure() {
    let api = MockApi::new()
        .route(Method::GET, "/slow", Reply::json(json!({"slept_ms": 1500})).delay(Duration::from_millis(1500)))
        .start()
        .await;
    let edge = TestEdge::new(policy::open()).passthrough(&api.url()).audit_file(None, 1000).start();
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let impatient = client(protocol);
        let abandoned = impatient.get(edge.https_url("/slow")).timeout(Duration::from_millis(200)).send().await;
        assert!(abandoned.is_err(), "{protocol:?}: the client gave up first");
    }
    // Both abandoned requests are audited as failures with no response.
    let events = edge.wait_audit(|events| events.iter().filter(|event| event["url.path"] == "/slow").count() == 2);
    for event in events.iter().filter(|event| event["url.path"] == "/slow") {
        assert_eq!(event["http.response.status_code"], 0, "{event}");
        assert_eq!(event["event.outcome"], "failure", "{event}");
        assert_eq!(event["event.reason"], "client_closed_request", "{event}");
    }
    let stderr = edge.stderr();
    assert!(!stderr.contains("Passthrough failed"), "{stderr}");
    assert!(!stderr.contains("Fail to proxy"), "{stderr}");
    let response = client(Protocol::Http2).get(edge.https_url("/health")).send().await.expect("health");
    assert_eq!(response.status(), 200);
}

const WEBSOCKET_UPGRADE: &[u8] =
    b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

#[tokio::test]
async fn a_websocket_upgrade_is_stripped_by_default_and_the_server_answers_plain_http() {
    let api = MockApi::start().await;
    let edge = TestEdge::new(policy::open()).passthrough(&api.url()).start();
    let mut connection = crate::support::raw_http::RawConnection::connect(edge.https).await;
    let response = connection.send(WEBSOCKET_UPGRADE).await;
    assert_eq!(response.status, 200);
    let seen = response.json();
    assert_eq!(seen["path"], "/ws");
    assert!(seen["headers"].get("upgrade").is_none(), "Upgrade was forwarded: {seen}");
    assert!(
        seen["headers"]
            .get("connection")
            .is_none_or(|value| !value.to_string().to_ascii_lowercase().contains("upgrade")),
        "Connection: Upgrade was forwarded: {seen}"
    );
    assert_eq!(connection.get("/after", &[]).await.status, 200, "the connection is still plain HTTP");
}

#[tokio::test]
async fn with_websocket_true_the_upgrade_reaches_the_server() {
    let api = MockApi::start().await;
    let mut policy = policy::open();
    policy["passthrough"] = json!({"url": api.url(), "websocket": true});
    let edge = TestEdge::new(policy).start();
    let mut connection = crate::support::raw_http::RawConnection::connect(edge.https).await;
    let response = connection.send(WEBSOCKET_UPGRADE).await;
    assert_eq!(response.status, 200, "the mock answers plain HTTP even to an upgrade");
    let seen = response.json();
    assert_eq!(seen["headers"]["upgrade"], "websocket", "{seen}");
}

/// Reads a request head byte by byte (leaving what follows it unread); `None` if the
/// connection closes first.
async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

/// A server that accepts a WebSocket upgrade (101) and then echoes bytes, or answers 200
/// `no upgrade` when the request carries none.
async fn websocket_echo_server() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some(head) = read_head(&mut stream).await else { return };
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                if !head.contains("upgrade: websocket") {
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\r\nno upgrade",
                        )
                        .await;
                    return;
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
                    .await;
                let mut buffer = [0u8; 1024];
                while let Ok(read) = stream.read(&mut buffer).await {
                    if read == 0 || stream.write_all(&buffer[..read]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

/// Sends the upgrade over TLS by hand and returns what came back within a few seconds,
/// after also sending `after_head` once the response head arrived.
async fn upgrade_exchange(edge: &TestEdge, after_head: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(edge.https).await.expect("connect");
    let connector = tokio_rustls::TlsConnector::from(crate::support::tls_client::raw_config(Protocol::Http1));
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let mut stream = connector.connect(name, tcp).await.expect("TLS");
    stream.write_all(WEBSOCKET_UPGRADE).await.expect("write");
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut sent = false;
    loop {
        let text = String::from_utf8_lossy(&received).to_string();
        if !sent && text.contains("\r\n\r\n") {
            sent = true;
            stream.write_all(after_head).await.expect("write after the head");
        }
        if sent && (text.contains("ping-through-the-tunnel") || text.contains("no upgrade")) {
            return text;
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(read)) if read > 0 => received.extend_from_slice(&buffer[..read]),
            _ => return text,
        }
    }
}

#[tokio::test]
async fn with_websocket_true_a_101_tunnels_bytes_both_ways_and_by_default_no_101_happens() {
    let server = websocket_echo_server().await;
    let url = format!("http://{server}");
    let tunnelling =
        TestEdge::new(json!({"auth": {"mode": "none"}, "passthrough": {"url": url, "websocket": true}})).start();
    let text = upgrade_exchange(&tunnelling, b"ping-through-the-tunnel").await;
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(text.contains("ping-through-the-tunnel"), "the tunnel echoes: {text}");

    let guarded = TestEdge::new(policy::open()).passthrough(&url).start();
    let text = upgrade_exchange(&guarded, b"").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("no upgrade"), "{text}");
}

/// A server that answers every connection with a 101 before it reads the request, then
/// echoes: the proxy reads the 101 the moment its request is out.
async fn eager_websocket_echo_server() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let switching =
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
                if stream.write_all(switching).await.is_err() {
                    return;
                }
                if read_head(&mut stream).await.is_none() {
                    return;
                }
                let mut buffer = [0u8; 1024];
                while let Ok(read) = stream.read(&mut buffer).await {
                    if read == 0 || stream.write_all(&buffer[..read]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

/// pingora 0.9.1's proxy ends a tunnel whose 101 it read before the upgrade request's empty
/// body (cloudflare/pingora#946): the client got the 101 and then nothing, about half the
/// time against a server this quick. Twenty rounds stay inside the default burst.
#[tokio::test]
async fn a_tunnel_whose_101_arrives_at_once_still_carries_the_clients_bytes() {
    let server = eager_websocket_echo_server().await;
    let edge = TestEdge::new(
        json!({"auth": {"mode": "none"}, "passthrough": {"url": format!("http://{server}"), "websocket": true}}),
    )
    .start();
    for round in 0..20 {
        let text = upgrade_exchange(&edge, b"ping-through-the-tunnel").await;
        assert!(text.starts_with("HTTP/1.1 101"), "round {round}: {text}");
        assert!(text.contains("ping-through-the-tunnel"), "round {round}: the tunnel echoes: {text}");
    }
}

/// A client must not choose the headers a server routes or identifies it by.
#[tokio::test]
async fn client_headers_that_name_the_client_or_rewrite_the_url_are_the_edges_to_write() {
    let api = MockApi::start().await;
    let edge = TestEdge::new(bearer_policy()).passthrough(&api.url()).start();
    let response = client(Protocol::Http1)
        .get(edge.https_url("/public"))
        .bearer_auth("test-token-0123456789")
        .header("x-real-ip", "203.0.113.66")
        .header("forwarded", "for=203.0.113.66")
        .header("x-original-url", "/admin")
        .header("x-rewrite-url", "/admin")
        .header("x-forwarded-prefix", "/admin")
        .header("x-forwarded-port", "1")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    let seen: serde_json::Value = response.json().await.expect("json");
    assert_eq!(seen["headers"]["x-real-ip"], "127.0.0.1", "the client the edge resolved");
    for name in ["forwarded", "x-original-url", "x-rewrite-url", "x-forwarded-prefix", "x-forwarded-port"] {
        assert!(seen["headers"].get(name).is_none(), "{name} from an untrusted client: {seen}");
    }

    let trusted = {
        let mut policy = bearer_policy();
        policy["trusted_proxies"] = json!(["127.0.0.1/32"]);
        TestEdge::new(policy).passthrough(&api.url()).start()
    };
    let response = client(Protocol::Http1)
        .get(trusted.https_url("/public"))
        .bearer_auth("test-token-0123456789")
        .header("forwarded", "for=198.51.100.7")
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .expect("GET");
    let seen: serde_json::Value = response.json().await.expect("json");
    assert_eq!(seen["headers"]["forwarded"], "for=198.51.100.7", "a trusted proxy's header is kept");
    assert_eq!(seen["headers"]["x-real-ip"], "198.51.100.7");
}

#[tokio::test]
async fn trace_is_refused_at_the_edge() {
    let api = MockApi::start().await;
    let edge = TestEdge::new(bearer_policy()).passthrough(&api.url()).start();
    let before = api.request_count();
    let response = client(Protocol::Http1)
        .request(reqwest::Method::TRACE, edge.https_url("/anything"))
        .bearer_auth("test-token-0123456789")
        .send()
        .await
        .expect("TRACE");
    assert_eq!(response.status(), 405);
    assert!(response.headers()["allow"].to_str().expect("ascii").contains("GET"));
    assert_eq!(api.request_count(), before, "never forwarded");
}

/// A server that answers the first request on each connection (keeping it open) and closes
/// a connection at the second request without answering: an idle timeout that raced the
/// request. Returns its address and the `(connection, target)` of every head it read.
async fn server_closing_reused_connections()
-> (std::net::SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<(usize, String)>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    tokio::spawn(async move {
        let mut connections = 0;
        while let Ok((mut stream, _)) = listener.accept().await {
            connections += 1;
            let connection = connections;
            let log = std::sync::Arc::clone(&log);
            tokio::spawn(async move {
                for request in 0.. {
                    let Some(head) = read_head(&mut stream).await else { return };
                    let text = String::from_utf8_lossy(&head).to_string();
                    let target = text.split(' ').nth(1).unwrap_or_default().to_string();
                    log.lock().expect("log").push((connection, target));
                    let length = text
                        .lines()
                        .find_map(|line| {
                            line.to_ascii_lowercase().strip_prefix("content-length:").map(|n| n.trim().to_string())
                        })
                        .and_then(|n| n.parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; length];
                    if stream.read_exact(&mut body).await.is_err() || request > 0 {
                        return;
                    }
                    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (address, seen)
}

#[tokio::test]
async fn a_pooled_connection_closed_under_a_get_is_retried_once_and_a_post_is_never_resent() {
    let (server, seen) = server_closing_reused_connections().await;
    let edge = TestEdge::new(policy::open()).passthrough(&format!("http://{server}")).start();
    let mut connection = crate::support::raw_http::RawConnection::connect(edge.https).await;
    assert_eq!(connection.get("/first", &[]).await.status, 200);
    // Pooled after /first; the server closes it on reading /second, so the edge resends
    // /second on a new connection.
    assert_eq!(connection.get("/second", &[]).await.status, 200, "a GET is retried on a new connection");
    {
        let seen = seen.lock().expect("log").clone();
        assert_eq!(seen, [(1, "/first".to_string()), (1, "/second".to_string()), (2, "/second".to_string())]);
    }
    // The same for a POST: the server may have acted on it, so it is not sent again.
    let mut connection = crate::support::raw_http::RawConnection::connect(edge.https).await;
    let post =
        b"POST /third HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    assert_eq!(connection.send(post).await.status, 502, "the POST is answered 502");
    let posts = seen.lock().expect("log").iter().filter(|(_, target)| target == "/third").count();
    assert_eq!(posts, 1, "the POST reached the server once");
}

/// A server that switches protocols on a request that asked for no upgrade (or for one the
/// edge did not forward) leaves both connections' framing unknown: 502, never a tunnel the
/// policy did not allow, and the edge keeps serving.
#[tokio::test]
async fn a_101_the_edge_did_not_ask_for_is_a_502() {
    let server = eager_websocket_echo_server().await;
    let edge = TestEdge::new(policy::open()).passthrough(&format!("http://{server}")).start();
    let text = upgrade_exchange(&edge, b"ping-through-the-tunnel").await;
    assert!(text.starts_with("HTTP/1.1 502"), "an upgrade with websocket off: {text}");
    assert!(!text.contains("ping-through-the-tunnel"), "{text}");
    let mut connection = crate::support::raw_http::RawConnection::connect(edge.https).await;
    assert_eq!(connection.get("/plain", &[]).await.status, 502, "a plain GET answered 101");
    let response = client(Protocol::Http1).get(edge.https_url("/health")).send().await.expect("health");
    assert_eq!(response.status(), 200);
}

/// An HTTP/2 upload without a length goes upstream as it arrives (chunked): a client that
/// streams and waits for the server must not have its last part held back. (Only the bytes
/// completing a declared `Content-Length` wait for END_STREAM: the desync corpus.)
#[tokio::test]
async fn an_http2_upload_without_a_length_reaches_the_server_as_it_streams() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = listener.local_addr().expect("address");
    let (first_part_seen, first_part_arrived) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else { return };
        let mut received = Vec::new();
        let mut buffer = [0u8; 1024];
        let mut signal = Some(first_part_seen);
        while !received.ends_with(b"0\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => received.extend_from_slice(&buffer[..read]),
            }
            if String::from_utf8_lossy(&received).contains("first-part")
                && let Some(signal) = signal.take()
            {
                let _ = signal.send(());
            }
        }
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
    });
    let edge = TestEdge::new(policy::open()).passthrough(&format!("http://{server}")).start();
    let (client, connection) =
        h2::client::handshake(crate::support::h2_client::tls(edge.https).await).await.expect("h2");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let request = http::Request::post("https://localhost/upload").body(()).expect("request");
    let (response, mut upload) = client.send_request(request, false).expect("send");
    upload.send_data(bytes::Bytes::from_static(b"first-part"), false).expect("first part");
    tokio::time::timeout(Duration::from_secs(10), first_part_arrived)
        .await
        .expect("the first part reached the server before the upload ended")
        .expect("signal");
    upload.send_data(bytes::Bytes::from_static(b"second-part"), true).expect("second part");
    let response = tokio::time::timeout(Duration::from_secs(10), response).await.expect("in time").expect("response");
    assert_eq!(response.status(), 200);
}

/// A client that hangs up while the server works is not the upstream failing: the request
/// is not sent again on a new connection (on a pooled one, a GET would be retryable).
#[tokio::test]
async fn a_client_that_leaves_before_the_answer_is_not_resent_upstream() {
    use tokio::io::AsyncWriteExt;
    let api = MockApi::new()
        .route(Method::GET, "/slow", Reply::json(json!({"ok": true})).delay(Duration::from_secs(3)))
        .start()
        .await;
    let edge = TestEdge::new(policy::open()).passthrough(&api.url()).start();
    let mut warm = crate::support::raw_http::RawConnection::connect(edge.https).await;
    assert_eq!(warm.get("/warm", &[]).await.status, 200, "a pooled upstream connection now");
    let tcp = tokio::net::TcpStream::connect(edge.https).await.expect("connect");
    let connector = tokio_rustls::TlsConnector::from(crate::support::tls_client::raw_config(Protocol::Http1));
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let mut leaving = connector.connect(name, tcp).await.expect("TLS");
    leaving.write_all(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("write");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while api.hits("/slow") == 0 {
        assert!(std::time::Instant::now() < deadline, "the request reached the server");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(leaving);
    // A resend would follow the hang-up at once; give it well over that.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(api.hits("/slow"), 1, "the request was sent once");
}
