//! The HTTP/2 → HTTP/1.1 downgrade: h2 requests whose `content-length` contradicts their DATA
//! frames, or that carry fields HTTP/2 forbids (`transfer-encoding`, `connection`, CR/LF in a
//! value or the path), are refused and never reach the upstream as a request; well-framed
//! bodies arrive re-framed, once.

use super::{PROBE, TOKEN, finals, policy, summary};
use crate::support::edge::TestEdge;
use crate::support::h2_client::{self, H2Outcome};
use crate::support::raw_upstream::RawUpstream;
use crate::support::wire_client::{Listener, WireConnection};

/// One HTTP/2 request whose framing disagrees with itself, downgraded to HTTP/1.1 upstream.
struct H2Case {
    name: &'static str,
    request: H2Request,
    expect: H2Expect,
}

enum H2Request {
    /// Through the `h2` crate: a `content-length` header and the DATA frames sent.
    Client { content_length: Option<&'static str>, data: &'static [&'static [u8]] },
    /// Hand-encoded header fields (no conforming client sends these) and one DATA frame.
    Raw { path: &'static [u8], extra: &'static [(&'static str, &'static [u8])], body: &'static [u8] },
}

enum H2Expect {
    /// The stream is reset or answered 4xx; no complete request reaches the upstream.
    Refused,
    /// The upstream gets exactly one `POST /a` with this body.
    Forwarded { body: &'static [u8] },
}

const H2_CASES: &[H2Case] = &[
    H2Case {
        name: "h2_content_length_shorter_than_data",
        request: H2Request::Client { content_length: Some("5"), data: &[concat!("hello", smuggled!()).as_bytes()] },
        expect: H2Expect::Refused,
    },
    H2Case {
        name: "h2_content_length_longer_than_data",
        request: H2Request::Client { content_length: Some("93"), data: &[b"hello"] },
        expect: H2Expect::Refused,
    },
    H2Case {
        name: "h2_content_length_spread_over_frames",
        request: H2Request::Client { content_length: Some("10"), data: &[b"hello", b"hello", b"hello"] },
        expect: H2Expect::Refused,
    },
    H2Case {
        name: "h2_body_holding_chunked_framing_and_a_request",
        request: H2Request::Client { content_length: None, data: &[concat!("0\r\n\r\n", smuggled!()).as_bytes()] },
        expect: H2Expect::Forwarded { body: concat!("0\r\n\r\n", smuggled!()).as_bytes() },
    },
    H2Case {
        name: "h2_matching_content_length",
        request: H2Request::Client { content_length: Some("5"), data: &[b"hel", b"lo"] },
        expect: H2Expect::Forwarded { body: b"hello" },
    },
    // The hand-made frames, well-formed: the refusals below are for what they carry.
    H2Case {
        name: "h2_hand_encoded_control",
        request: H2Request::Raw { path: b"/a", extra: &[("x-padding", b"a")], body: b"hello" },
        expect: H2Expect::Forwarded { body: b"hello" },
    },
    H2Case {
        name: "h2_transfer_encoding_chunked",
        request: H2Request::Raw {
            path: b"/a",
            extra: &[("transfer-encoding", b"chunked")],
            body: concat!("0\r\n\r\n", smuggled!()).as_bytes(),
        },
        expect: H2Expect::Refused,
    },
    H2Case {
        name: "h2_differing_content_lengths",
        request: H2Request::Raw {
            path: b"/a",
            extra: &[("content-length", b"5"), ("content-length", b"93")],
            body: concat!("hello", smuggled!()).as_bytes(),
        },
        expect: H2Expect::Refused,
    },
    H2Case {
        name: "h2_host_header_naming_another_host",
        request: H2Request::Raw { path: b"/a", extra: &[("host", b"other.example")], body: b"hello" },
        expect: H2Expect::Refused,
    },
    H2Case {
        name: "h2_connection_header",
        request: H2Request::Raw { path: b"/a", extra: &[("connection", b"keep-alive")], body: b"hello" },
        expect: H2Expect::Refused,
    },
    H2Case {
        name: "h2_crlf_inside_a_header_value",
        request: H2Request::Raw {
            path: b"/a",
            extra: &[("x-padding", b"a\r\nTransfer-Encoding: chunked")],
            body: concat!("0\r\n\r\n", smuggled!()).as_bytes(),
        },
        expect: H2Expect::Refused,
    },
    H2Case {
        name: "h2_request_line_inside_the_path",
        request: H2Request::Raw {
            path: concat!("/a HTTP/1.1\r\nHost: edge\r\n\r\n", smuggled!()).as_bytes(),
            extra: &[],
            body: b"",
        },
        expect: H2Expect::Refused,
    },
];

async fn send_h2(case: &H2Case, edge: &TestEdge) -> H2Outcome {
    let authorization = format!("Bearer {TOKEN}");
    match &case.request {
        H2Request::Client { content_length, data } => {
            let mut request = http::Request::builder()
                .method("POST")
                .uri(format!("https://localhost:{}/a", edge.https.port()))
                .header("authorization", authorization.as_str());
            if let Some(length) = content_length {
                request = request.header("content-length", *length);
            }
            h2_client::send(edge.https, request.body(()).expect("request"), data).await
        }
        H2Request::Raw { path, extra, body } => {
            let mut headers: Vec<(&str, &[u8])> = vec![
                (":method", b"POST"),
                (":scheme", b"https"),
                (":authority", b"localhost"),
                (":path", path),
                ("authorization", authorization.as_bytes()),
            ];
            headers.extend(extra.iter().copied());
            h2_client::send_raw(edge.https, &headers, body).await
        }
    }
}

#[tokio::test]
async fn h2_downgrade_corpus() {
    let upstream = RawUpstream::start().await;
    let edge = policy().plain_http().passthrough(&upstream.url()).start();
    let mut problems = Vec::new();
    for case in H2_CASES {
        upstream.clear();
        let outcome = send_h2(case, &edge).await;
        let mut probe = WireConnection::connect(Listener::Tls, edge.https).await;
        probe.write(PROBE).await;
        let probe_statuses = finals(&probe.read_until_closed().await.unwrap_or_default());
        let log = upstream.log();
        let seen = summary(&log.requests);
        let mut case_problems = Vec::new();
        if probe_statuses != [200] {
            case_problems.push(format!("the probe after the case got {probe_statuses:?}"));
        }
        match &case.expect {
            H2Expect::Refused => {
                let refused = match &outcome {
                    H2Outcome::Response { status, .. } => (400..500).contains(status),
                    H2Outcome::Refused { reason } => *reason != 0,
                    H2Outcome::Broken(_) => false,
                };
                if !refused {
                    case_problems.push(format!("the client saw {outcome:?}, expected a refusal"));
                }
                if seen != [("GET".to_string(), "/probe".to_string(), String::new())] {
                    case_problems.push(format!("upstream parsed {seen:?}, expected only the probe"));
                }
            }
            H2Expect::Forwarded { body } => {
                if !matches!(&outcome, H2Outcome::Response { status: 200, .. }) {
                    case_problems.push(format!("the client saw {outcome:?}, expected 200"));
                }
                let expected = vec![
                    ("POST".to_string(), "/a".to_string(), String::from_utf8_lossy(body).into_owned()),
                    ("GET".to_string(), "/probe".to_string(), String::new()),
                ];
                if seen != expected {
                    case_problems.push(format!("upstream parsed {seen:?}, expected {expected:?}"));
                }
            }
        }
        if !log.violations.is_empty() {
            case_problems.push(format!("the edge sent the upstream malformed bytes: {:?}", log.violations));
        }
        problems.extend(case_problems.into_iter().map(|problem| format!("{}: {problem}", case.name)));
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}
