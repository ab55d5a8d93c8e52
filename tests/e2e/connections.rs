//! Downstream connection limits: the header deadline (408), the head size cap (431), idle
//! keep-alive, requests per connection, and connection caps in total and per peer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::edge::TestEdge;
use crate::support::flood::{health_answers, read_to_close, rss_kib, status_of, tls};
use crate::support::policy;
use crate::support::raw_http::RawConnection;
use crate::support::tls_client::Protocol;

/// An edge with these `limits` and a plaintext listener.
fn edge_with(limits: Value) -> TestEdge {
    let mut policy = policy::open();
    policy["limits"] = limits;
    TestEdge::new(policy).plain_http().start()
}

/// A plaintext connection that has sent the start of a head and nothing more.
async fn unfinished_head(address: SocketAddr, padding: usize) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let head = format!("GET /health HTTP/1.1\r\nHost: localhost\r\nX-Padding: {}", "a".repeat(padding));
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream
}

trait Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Connection for T {}

/// Opens `count` connections that each hold an unfinished 12 KiB head (under the 16 KiB
/// cap, so only the deadline can end them), checks the edge's memory and `/health` while
/// they are held, then that every one gets its 408 and is closed in time.
async fn hold_unfinished_heads(edge: &TestEdge, count: usize, over_tls: bool, header_timeout: Duration) {
    let before = rss_kib(edge.pid());
    let started = Instant::now();
    let head = format!("GET /health HTTP/1.1\r\nHost: localhost\r\nX-Padding: {}", "a".repeat(12 * 1024));
    let https = edge.https;
    let http = edge.http;
    let opening: Vec<_> = (0..count)
        .map(|_| {
            let head = head.clone();
            tokio::spawn(async move {
                let mut stream: Box<dyn Connection> = if over_tls {
                    Box::new(tls(https, Protocol::Http1).await)
                } else {
                    Box::new(TcpStream::connect(http.expect("plain listener")).await.expect("connect"))
                };
                stream.write_all(head.as_bytes()).await.expect("write head");
                stream.flush().await.expect("flush");
                stream
            })
        })
        .collect();
    let mut streams = Vec::with_capacity(count);
    for task in opening {
        streams.push(task.await.expect("opened"));
    }
    let all_open = started.elapsed();
    assert!(all_open < header_timeout, "opening took {all_open:?}; the first heads already timed out");
    assert!(health_answers(edge.https).await, "/health must answer while the heads are held");
    let grown_kib = rss_kib(edge.pid()).saturating_sub(before);
    eprintln!("RSS grew by {grown_kib} KiB for {count} unfinished heads (TLS: {over_tls})");
    assert!(grown_kib < 64 * 1024, "RSS grew by {grown_kib} KiB for {count} unfinished heads");

    // Each is closed within header_timeout of its accept (the last was accepted `all_open`
    // after the first), with slack for a busy machine.
    let limit = header_timeout + all_open + Duration::from_secs(5);
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut stream| tokio::spawn(async move { read_to_close(&mut stream, limit).await }))
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for task in tasks {
        let received = task.await.expect("task").expect("the edge must close an unfinished head");
        *statuses.entry(status_of(&received)).or_insert(0) += 1;
    }
    assert_eq!(statuses, std::collections::BTreeMap::from([(Some(408), count)]));
    assert!(health_answers(edge.https).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_unfinished_heads_cost_little_memory_and_close_within_header_timeout() {
    let edge = edge_with(json!({"header_timeout": "3s"}));
    hold_unfinished_heads(&edge, 1000, false, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_unfinished_tls_heads_cost_little_memory_and_close_within_header_timeout() {
    // Long enough for 1000 handshakes on a busy two-core machine in a debug build.
    let edge = TestEdge::new(json!({"auth": {"mode": "none"}, "limits": {"header_timeout": "15s"}})).start();
    hold_unfinished_heads(&edge, 1000, true, Duration::from_secs(15)).await;
}

#[tokio::test]
async fn a_slow_tls_head_gets_408_and_the_connection_closes() {
    let edge = TestEdge::new(json!({"auth": {"mode": "none"}, "limits": {"header_timeout": "2s"}})).start();
    let mut stream = tls(edge.https, Protocol::Http1).await;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n").await.expect("write");
    let started = Instant::now();
    // One byte every 300 ms: each read is quick, only a deadline on the whole head helps.
    let trickle = async {
        for _ in 0..100 {
            if stream.write_all(b"X").await.is_err() || stream.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            if stream.get_ref().0.peek(&mut [0u8; 1]).await.map(|read| read > 0).unwrap_or(true) {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(35), trickle).await.expect("bounded trickle");
    let received = read_to_close(&mut stream, Duration::from_secs(5)).await.expect("closed after the refusal");
    assert_eq!(status_of(&received), Some(408), "{}", String::from_utf8_lossy(&received));
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("connection: close") && text.contains("x-request-id: "), "{text}");
    assert!(started.elapsed() < Duration::from_secs(10), "closed after {:?}", started.elapsed());
}

#[tokio::test]
async fn a_tls_handshake_that_never_finishes_is_closed_by_header_timeout() {
    let edge = TestEdge::new(json!({"auth": {"mode": "none"}, "limits": {"header_timeout": "2s"}})).start();
    let mut stream = TcpStream::connect(edge.https).await.expect("connect");
    // The first bytes of a TLS record header, then silence.
    stream.write_all(&[0x16, 0x03, 0x01]).await.expect("write");
    let received = read_to_close(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(received, Some(Vec::new()), "closed without an answer, well before pingora's 60 s");
}

#[tokio::test]
async fn a_head_over_max_header_bytes_gets_431_at_once_not_after_a_mebibyte() {
    let edge = edge_with(json!({"max_header_bytes": "4KiB", "header_timeout": "30s"}));
    let mut stream = unfinished_head(edge.http.expect("plain"), 0).await;
    let (mut reader, mut writer) = stream.split();
    // 64 KiB of one header and no end: the edge must answer before the head is complete.
    let padding = vec![b'a'; 64 * 1024];
    let write = async {
        let _ = writer.write_all(&padding).await;
        std::future::pending::<()>().await;
    };
    let read = read_to_close(&mut reader, Duration::from_secs(10));
    let received = tokio::select! {
        received = read => received,
        () = write => unreachable!(),
    };
    let received = received.expect("refused and closed long before header_timeout");
    assert_eq!(status_of(&received), Some(431), "{}", String::from_utf8_lossy(&received));
}

#[tokio::test]
async fn a_head_exactly_at_max_header_bytes_is_still_served() {
    let edge = edge_with(json!({"max_header_bytes": "4KiB"}));
    let mut connection = TcpStream::connect(edge.http.expect("plain")).await.expect("connect");
    // The request line and header lines as edge/limits.rs counts them, 4096 bytes in all.
    let start = "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Padding: ";
    let padding = 4096 - start.len() - 2;
    let request = format!("{start}{}\r\n\r\n", "a".repeat(padding));
    connection.write_all(request.as_bytes()).await.expect("write");
    let mut response = [0u8; 12];
    connection.read_exact(&mut response).await.expect("response");
    assert_eq!(status_of(&response), Some(200));
    let request = format!("{start}{}\r\n\r\n", "a".repeat(padding + 1));
    let mut connection = TcpStream::connect(edge.http.expect("plain")).await.expect("connect");
    connection.write_all(request.as_bytes()).await.expect("write");
    let received = read_to_close(&mut connection, Duration::from_secs(5)).await.expect("closed");
    assert_eq!(status_of(&received), Some(431));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let edge = TestEdge::new(json!({"auth": {"mode": "none"}, "limits": {"idle_timeout": "2s"}})).start();
    let mut connection = RawConnection::connect(edge.https).await;
    assert_eq!(connection.get("/health", &[]).await.status, 200);
    // Still open shortly after the response: idle is not "closed at once".
    assert!(!connection.is_closed().await);
    let closed_by = Instant::now() + Duration::from_secs(10);
    while !connection.is_closed().await {
        assert!(Instant::now() < closed_by, "an idle keep-alive connection must be closed after idle_timeout");
    }
}

#[tokio::test]
async fn a_later_request_on_a_kept_alive_connection_has_its_own_header_deadline() {
    let edge = edge_with(json!({"header_timeout": "2s", "idle_timeout": "30s"}));
    let mut stream = TcpStream::connect(edge.http.expect("plain")).await.expect("connect");
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("first");
    let mut response = vec![0u8; 4096];
    let read = stream.read(&mut response).await.expect("first response");
    assert_eq!(status_of(&response[..read]), Some(200));
    // Waiting longer than header_timeout before the next request is idle time, allowed...
    tokio::time::sleep(Duration::from_secs(3)).await;
    // ...but once it starts, the head must be complete within header_timeout.
    stream.write_all(b"GET /health HTTP/1.1\r\n").await.expect("second, unfinished");
    let received = read_to_close(&mut stream, Duration::from_secs(10)).await.expect("closed");
    assert_eq!(status_of(&received), Some(408), "{}", String::from_utf8_lossy(&received));
}

#[tokio::test]
async fn max_requests_per_connection_closes_the_connection_after_the_last() {
    let edge = TestEdge::new(json!({"auth": {"mode": "none"}, "limits": {"max_requests_per_connection": 3}})).start();
    let mut connection = RawConnection::connect(edge.https).await;
    for _ in 0..2 {
        let response = connection.get("/health", &[]).await;
        assert_eq!(response.status, 200);
        assert_ne!(response.header("connection"), Some("close"));
    }
    let last = connection.get("/health", &[]).await;
    assert_eq!(last.status, 200);
    assert_eq!(last.header("connection"), Some("close"));
    assert!(connection.is_closed().await);
}

/// Sends a GET on a fresh plaintext connection; the status, or `None` when the connection
/// was closed without an answer.
async fn plain_get(address: SocketAddr, source: Option<std::net::IpAddr>) -> (Option<u16>, TcpStream) {
    let mut stream = match source {
        None => TcpStream::connect(address).await.expect("connect"),
        Some(source) => {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.bind(SocketAddr::new(source, 0)).expect("bind source");
            socket.connect(address).await.expect("connect")
        }
    };
    let _ = stream.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    let mut response = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut response)).await.expect("answer or close");
    (read.ok().and_then(|read| status_of(&response[..read])), stream)
}

#[tokio::test]
async fn max_connections_closes_the_connection_over_it_at_once() {
    let edge = edge_with(json!({"max_connections": 3}));
    let http = edge.http.expect("plain");
    let mut held = Vec::new();
    // The readiness check's own connections hold slots until the edge sees them close, so
    // the three are taken as slots come free (bounded), before the limit is tested.
    let deadline = Instant::now() + Duration::from_secs(5);
    while held.len() < 3 {
        let (status, stream) = plain_get(http, None).await;
        if status == Some(200) {
            held.push(stream);
            continue;
        }
        assert!(Instant::now() < deadline, "three connections must fit under max_connections: 3");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _refused) = plain_get(http, None).await;
    assert_eq!(status, None, "the fourth connection must be closed without an answer");
    drop(held.pop());
    // The slot comes back when a connection closes (the edge notices the EOF).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, stream) = plain_get(http, None).await;
        if status == Some(200) {
            held.push(stream);
            break;
        }
        assert!(Instant::now() < deadline, "a closed connection must free its slot");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn max_connections_per_ip_counts_each_peer_apart() {
    let edge =
        TestEdge::new(json!({"auth": {"mode": "none"}, "limits": {"max_connections_per_ip": 2}})).plain_http().start();
    let http = edge.http.expect("plain");
    // Not 127.0.0.1: the readiness check's connections come from there, and each holds its
    // peer's slot until the edge sees it close.
    let one: std::net::IpAddr = "127.0.0.3".parse().expect("ip");
    let two: std::net::IpAddr = "127.0.0.4".parse().expect("ip");
    let mut held = Vec::new();
    for _ in 0..2 {
        let (status, stream) = plain_get(http, Some(one)).await;
        assert_eq!(status, Some(200));
        held.push(stream);
    }
    assert_eq!(plain_get(http, Some(one)).await.0, None, "a third connection from one peer is closed");
    let (status, _other) = plain_get(http, Some(two)).await;
    assert_eq!(status, Some(200), "another peer is not affected");
}
