//! HTTP/2 abuse: idle and stream-less connections, the advertised limits, requests per
//! connection, Rapid Reset, CONTINUATION, PING and SETTINGS floods, and streams whose
//! client never opens its flow-control window. Each leaves `/health` answering and the
//! edge's memory bounded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::edge::TestEdge;
use crate::support::flood::{
    CANCEL, CONTINUATION, END_HEADERS, END_STREAM, HEADERS, PING, PREFACE, RST_STREAM, SETTINGS, frame, h2_client,
    h2_get, health_answers, hpack_literal, read_to_close, rss_kib, tls,
};
use crate::support::policy;
use crate::support::tls_client::Protocol;

/// An edge with these `limits` (none: the defaults).
fn edge_with(limits: Value) -> TestEdge {
    let mut policy = policy::open();
    if limits != json!({}) {
        policy["limits"] = limits;
    }
    TestEdge::new(policy).start()
}

/// One GET over an established h2 connection; its status.
async fn get(send: &mut h2::client::SendRequest<bytes::Bytes>, path: &str) -> u16 {
    let ready = send.clone().ready().await.expect("ready");
    *send = ready;
    let (response, _) = send.send_request(h2_get(path), true).expect("send");
    let response = tokio::time::timeout(Duration::from_secs(10), response).await.expect("in time").expect("response");
    let status = response.status().as_u16();
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("body");
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    status
}

#[tokio::test]
async fn an_idle_h2_connection_gets_goaway_after_idle_timeout() {
    let edge = edge_with(json!({"idle_timeout": "2s"}));
    let (mut send, connection) = h2_client(edge.https, &h2::client::Builder::new()).await;
    assert_eq!(get(&mut send, "/health").await, 200);
    let ended = tokio::time::timeout(Duration::from_secs(10), connection).await;
    let ended = ended.expect("an idle h2 connection must be closed after idle_timeout").expect("task");
    // A GOAWAY with NO_ERROR ends the client's connection cleanly; a bare close would not.
    assert!(ended.is_ok(), "expected a clean GOAWAY, got {ended:?}");
}

#[tokio::test]
async fn an_h2_connection_that_opens_no_stream_is_closed_by_header_timeout() {
    let edge = edge_with(json!({"header_timeout": "2s", "idle_timeout": "60s"}));
    let (_send, connection) = h2_client(edge.https, &h2::client::Builder::new()).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), connection).await;
    assert!(ended.is_ok(), "a connection without a first stream must be closed by header_timeout");
}

/// The server's first SETTINGS frame on a fresh h2 connection, as (identifier, value) pairs.
async fn server_settings(address: SocketAddr) -> Vec<(u16, u32)> {
    let mut stream = tls(address, Protocol::Http2).await;
    stream.write_all(PREFACE).await.expect("preface");
    stream.write_all(&frame(SETTINGS, 0, 0, &[])).await.expect("settings");
    stream.flush().await.expect("flush");
    loop {
        let mut header = [0u8; 9];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut header))
            .await
            .expect("frame")
            .expect("read");
        let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; length];
        stream.read_exact(&mut payload).await.expect("payload");
        if header[3] == SETTINGS && header[4] & 0x1 == 0 {
            return payload
                .chunks_exact(6)
                .map(|pair| {
                    (u16::from_be_bytes([pair[0], pair[1]]), u32::from_be_bytes([pair[2], pair[3], pair[4], pair[5]]))
                })
                .collect();
        }
    }
}

#[tokio::test]
async fn the_policy_sets_the_advertised_stream_and_header_list_limits() {
    let edge = edge_with(json!({"h2_max_concurrent_streams": 7, "max_header_bytes": "8KiB", "max_headers": 50}));
    let settings = server_settings(edge.https).await;
    const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    assert!(settings.contains(&(MAX_CONCURRENT_STREAMS, 7)), "{settings:?}");
    // The HTTP/1 head budget in HPACK's measure: 8 KiB plus 32 bytes for each of 50 headers.
    assert!(settings.contains(&(MAX_HEADER_LIST_SIZE, 8 * 1024 + 50 * 32)), "{settings:?}");
}

#[tokio::test]
async fn max_requests_per_connection_sends_goaway_after_the_last_h2_stream() {
    let edge = edge_with(json!({"max_requests_per_connection": 3}));
    let (mut send, connection) = h2_client(edge.https, &h2::client::Builder::new()).await;
    for _ in 0..3 {
        assert_eq!(get(&mut send, "/health").await, 200);
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), connection).await;
    assert!(ended.is_ok(), "the connection must end after its third stream");
}

/// Checks `/health` every 250 ms until `done` resolves; how many checks failed.
async fn health_failures_during(https: SocketAddr, done: impl std::future::Future<Output = ()>) -> usize {
    tokio::pin!(done);
    let mut failures = 0;
    loop {
        tokio::select! {
            () = &mut done => return failures,
            healthy = health_answers(https) => {
                if !healthy {
                    failures += 1;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rapid_reset_burst_of_20000_streams_leaves_health_answering() {
    const STREAMS: u32 = 20_000;
    // A small request limit shows the streams reach the edge: it must send GOAWAY.
    let edge = edge_with(json!({"max_requests_per_connection": 5000}));
    let before = rss_kib(edge.pid());
    let https = edge.https;
    let mut block = request_block();
    block.extend(hpack_literal(":path", "/no-such-route"));
    let burst = async move {
        let mut sent = 0;
        let mut connections = 0;
        while sent < STREAMS {
            connections += 1;
            assert!(connections < 100, "the edge refused the burst too early: {sent} streams sent");
            let stream = tls(https, Protocol::Http2).await;
            let (mut reader, mut writer) = tokio::io::split(stream);
            let drain = tokio::spawn(async move { read_to_close(&mut reader, Duration::from_secs(60)).await });
            if writer.write_all(&[PREFACE, &frame(SETTINGS, 0, 0, &[])].concat()).await.is_err() {
                continue;
            }
            // HEADERS, then RST_STREAM(CANCEL) at once, 100 pairs per write: the streams
            // never count as open, so the concurrency limit does not stop them.
            let mut id = 1u32;
            'connection: while sent < STREAMS && id < (1 << 30) {
                let mut batch = Vec::new();
                for _ in 0..100 {
                    batch.extend(frame(HEADERS, END_STREAM | END_HEADERS, id, &block));
                    batch.extend(frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
                    id += 2;
                }
                match tokio::time::timeout(Duration::from_secs(5), writer.write_all(&batch)).await {
                    Ok(Ok(())) => sent += 100,
                    _ => break 'connection,
                }
            }
            drop(writer);
            drain.abort();
        }
        connections
    };
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let driver = tokio::spawn(async move {
        let result = tokio::time::timeout(Duration::from_secs(120), burst).await;
        let _ = sender.send(());
        result
    });
    let failures = health_failures_during(https, async {
        let _ = receiver.await;
    })
    .await;
    let connections = driver.await.expect("burst task").expect("burst in time");
    eprintln!("rapid reset: {STREAMS} streams over {connections} connections, {failures} failed health checks");
    assert!(connections > 1, "the edge never closed a connection: did the streams reach it?");
    assert_eq!(failures, 0, "/health must answer during the burst");
    assert!(health_answers(https).await);
    let grown_kib = rss_kib(edge.pid()).saturating_sub(before);
    assert!(grown_kib < 64 * 1024, "RSS grew by {grown_kib} KiB");
}

/// Writes `frames` (each from `next`) on a fresh h2 connection without reading, until
/// `count` frames are written, the server closes, or 5 s pass; the bytes written.
async fn flood(address: SocketAddr, first: Vec<u8>, count: usize, next: impl Fn(usize) -> Vec<u8>) -> usize {
    let stream = tls(address, Protocol::Http2).await;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let closed = tokio::spawn(async move { read_to_close(&mut reader, Duration::from_secs(30)).await.is_some() });
    let mut written = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut bytes = [PREFACE.to_vec(), frame(SETTINGS, 0, 0, &[]), first].concat();
    for index in 0..count {
        if closed.is_finished() || Instant::now() > deadline {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(1), writer.write_all(&bytes)).await {
            Ok(Ok(())) => written += bytes.len(),
            _ => break,
        }
        bytes = next(index);
    }
    written
}

/// The request header block of a GET, without END_HEADERS.
fn request_block() -> Vec<u8> {
    // :method GET, :scheme https (static table 2, 7), then :authority.
    let mut block = vec![0x82, 0x87];
    block.extend(hpack_literal(":authority", "localhost"));
    block
}

#[tokio::test]
async fn a_continuation_flood_is_cut_off_early() {
    let edge = edge_with(json!({}));
    let before = rss_kib(edge.pid());
    let value = "v".repeat(100);
    let mut block = request_block();
    block.push(0x84); // :path /
    let headers = frame(HEADERS, END_STREAM, 1, &block);
    // Up to 12 MB of header block for one stream, never ended.
    let written = flood(edge.https, headers, 100_000, |index| {
        frame(CONTINUATION, 0, 1, &hpack_literal(&format!("x-flood-{index}"), &value))
    })
    .await;
    assert!(written < 1024 * 1024, "the edge read {written} bytes of one header block before cutting it off");
    assert!(health_answers(edge.https).await);
    let grown_kib = rss_kib(edge.pid()).saturating_sub(before);
    assert!(grown_kib < 16 * 1024, "RSS grew by {grown_kib} KiB");
}

#[tokio::test]
async fn ping_and_settings_floods_leave_memory_bounded_and_health_answering() {
    let edge = edge_with(json!({}));
    let before = rss_kib(edge.pid());
    let https = edge.https;
    let floods = async {
        let pings = flood(https, Vec::new(), 500_000, |index| frame(PING, 0, 0, &(index as u64).to_be_bytes()));
        let settings = flood(https, Vec::new(), 500_000, |_| frame(SETTINGS, 0, 0, &[]));
        let (pings, settings) = tokio::join!(pings, settings);
        eprintln!("flood: wrote {pings} bytes of PING and {settings} bytes of SETTINGS");
    };
    let failures = health_failures_during(https, floods).await;
    assert_eq!(failures, 0, "/health must answer during the floods");
    let grown_kib = rss_kib(edge.pid()).saturating_sub(before);
    assert!(grown_kib < 16 * 1024, "RSS grew by {grown_kib} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_whose_window_stays_closed_pin_bounded_memory() {
    const CONNECTIONS: usize = 2;
    const STREAMS: usize = 100;
    let upstream = crate::support::flood::bulk_upstream(1024 * 1024).await;
    let edge = TestEdge::new(json!({"auth": {"mode": "none"}, "rate_limit": {"enabled": false}}))
        .passthrough(&format!("http://{upstream}"))
        .start();
    let before = rss_kib(edge.pid());
    let mut builder = h2::client::Builder::new();
    // The client never opens a stream's window, so no DATA can be sent to it.
    builder.initial_window_size(0);
    let mut responses = Vec::new();
    let mut connections = Vec::new();
    for _ in 0..CONNECTIONS {
        let (mut send, connection) = h2_client(edge.https, &builder).await;
        for _ in 0..STREAMS {
            send = send.ready().await.expect("ready");
            let (response, _) = send.send_request(h2_get("/bulk"), true).expect("send");
            responses.push(response);
        }
        connections.push((send, connection));
    }
    // Headers are not flow-controlled: every stream gets its 200 while its body is stuck.
    let mut bodies = Vec::new();
    for response in responses {
        let response =
            tokio::time::timeout(Duration::from_secs(20), response).await.expect("in time").expect("headers");
        assert_eq!(response.status(), 200);
        bodies.push(response.into_body());
    }
    // Give the edge time to read whatever it will read from the upstream.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let grown_kib = rss_kib(edge.pid()).saturating_sub(before);
    eprintln!("zero window: RSS grew by {grown_kib} KiB for {} stalled streams", CONNECTIONS * STREAMS);
    assert!(health_answers(edge.https).await);
    // 64 KiB a stream plus 16 MiB for everything else; pingora's pipeline alone held about
    // 530 KiB of response for each (security review, H4).
    let allowed_kib = (CONNECTIONS * STREAMS * 64 + 16 * 1024) as u64;
    assert!(grown_kib < allowed_kib, "RSS grew by {grown_kib} KiB for {} stalled streams", CONNECTIONS * STREAMS);
    drop((bodies, connections));
}
