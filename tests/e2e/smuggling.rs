//! Request smuggling (desync) corpus on the passthrough: every case is raw bytes a client
//! sends, and what must follow. Either the upstream (a strict stand-in that records every
//! request it parses) sees exactly the requests the client meant, in order, and never the
//! smuggled one as a request of its own, or the edge refuses with a 4xx and closes. After each
//! case a request on a fresh connection must arrive intact, so a desync between the edge and
//! a pooled upstream connection shows too. Plaintext and TLS listeners run the same table;
//! `h2` checks the h2 → h1 downgrade.

use serde_json::json;

use crate::support::edge::{TestEdge, TestEdgeBuilder};
use crate::support::policy;
use crate::support::raw_upstream::{RawUpstream, SeenRequest};
use crate::support::wire_client::{Listener, WireConnection, WireResponse};

const TOKEN: &str = "smuggling-token-0123456789";

/// The `Authorization` line every accepted case carries (`concat!` needs a literal).
macro_rules! auth {
    () => {
        "Authorization: Bearer smuggling-token-0123456789\r\n"
    };
}

/// A request the smuggled bytes would be, if anyone parsed them as a request.
macro_rules! smuggled {
    () => {
        concat!("GET /smuggled HTTP/1.1\r\nHost: edge\r\n", auth!(), "\r\n")
    };
}

/// One HTTP/1.1 desync attempt.
struct Case {
    name: &'static str,
    /// Written to the connection in one go.
    request: &'static [u8],
    expect: Expect,
}

enum Expect {
    /// The edge answers `status` itself, closes the connection, and forwards nothing.
    Refused { status: u16 },
    /// The edge answers `status` itself and forwards nothing; the connection then does `after`.
    Answered { status: u16, after: After },
    /// Exactly `requests` reach the upstream, in order, each answered 200 to the client; the
    /// connection then does `after`. `UPSTREAM` in a target stands for the upstream's address.
    Forwarded { requests: &'static [Upstream], after: After },
}

/// What the upstream must have parsed.
struct Upstream {
    method: &'static str,
    target: &'static str,
    body: &'static [u8],
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum After {
    /// The connection stays open and in step: a further request on it is answered as itself.
    KeepsAlive,
    /// The edge closes the connection after its answers.
    Closes,
}

const GET_A: &[Upstream] = &[Upstream { method: "GET", target: "/a", body: b"" }];
const POST_A_EMPTY: &[Upstream] = &[Upstream { method: "POST", target: "/a", body: b"" }];
const POST_A_HELLO: &[Upstream] = &[Upstream { method: "POST", target: "/a", body: b"hello" }];

const CASES: &[Case] = &[
    // CL.TE and TE.CL: Transfer-Encoding wins (RFC 9112 §6.3) and the connection closes.
    Case {
        name: "cl_te_content_length_covering_a_smuggled_request",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Content-Length: 93\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            smuggled!()
        )
        .as_bytes(),
        expect: Expect::Forwarded { requests: POST_A_EMPTY, after: After::Closes },
    },
    Case {
        name: "te_cl_short_content_length_inside_a_chunk",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Forwarded { requests: POST_A_HELLO, after: After::Closes },
    },
    // TE.TE: obfuscated Transfer-Encoding values and lines.
    Case {
        name: "te_xchunked",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "te_value_after_extra_space",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding:  chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Forwarded { requests: POST_A_HELLO, after: After::KeepsAlive },
    },
    Case {
        name: "te_line_folded_onto_the_previous_header",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "X-Padding: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "te_chunked_then_identity",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "te_identity_then_chunked",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: identity, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 501 },
    },
    Case {
        name: "te_tab_before_value",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Forwarded { requests: POST_A_HELLO, after: After::KeepsAlive },
    },
    Case {
        name: "te_upper_case_value",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "TRANSFER-ENCODING: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Forwarded { requests: POST_A_HELLO, after: After::KeepsAlive },
    },
    Case {
        name: "te_duplicate_lines_chunked_then_identity",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "te_duplicate_lines_chunked_twice",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 501 },
    },
    Case {
        name: "te_space_before_colon",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "te_name_with_underscore",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello"
        )
        .as_bytes(),
        expect: Expect::Answered { status: 400, after: After::KeepsAlive },
    },
    Case {
        name: "te_on_http_1_0",
        request: concat!(
            "POST /a HTTP/1.0\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "te_gzip_then_chunked",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 501 },
    },
    Case {
        name: "te_quoted_value",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: \"chunked\"\r\nContent-Length: 5\r\n\r\nhello"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "te_vertical_tab_before_value",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding:\x0bchunked\r\nContent-Length: 5\r\n\r\nhello"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "te_and_cl_on_a_request_answered_early",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            smuggled!()
        )
        .as_bytes(),
        expect: Expect::Refused { status: 401 },
    },
    // Hop-by-hop stripping must not take the framing header with it.
    Case {
        name: "connection_nominating_content_length",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Connection: Content-Length\r\nContent-Length: 5\r\n\r\nhello"
        )
        .as_bytes(),
        expect: Expect::Forwarded { requests: POST_A_HELLO, after: After::KeepsAlive },
    },
    Case {
        name: "connection_nominating_transfer_encoding",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Forwarded { requests: POST_A_HELLO, after: After::KeepsAlive },
    },
    // Content-Length: duplicates, lists and number syntax.
    Case {
        name: "cl_duplicate_identical_lines",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "cl_duplicate_differing_lines",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Content-Length: 5\r\nContent-Length: 93\r\n\r\nhello",
            smuggled!()
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "cl_comma_joined",
        request: concat!("POST /a HTTP/1.1\r\nHost: edge\r\n", auth!(), "Content-Length: 5, 5\r\n\r\nhello").as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "cl_plus_sign",
        request: concat!("POST /a HTTP/1.1\r\nHost: edge\r\n", auth!(), "Content-Length: +5\r\n\r\nhello").as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "cl_minus_sign",
        request: concat!("POST /a HTTP/1.1\r\nHost: edge\r\n", auth!(), "Content-Length: -5\r\n\r\nhello").as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "cl_leading_zeros",
        request: concat!("POST /a HTTP/1.1\r\nHost: edge\r\n", auth!(), "Content-Length: 0005\r\n\r\nhello").as_bytes(),
        expect: Expect::Forwarded { requests: POST_A_HELLO, after: After::KeepsAlive },
    },
    Case {
        name: "cl_space_inside_the_number",
        request: concat!("POST /a HTTP/1.1\r\nHost: edge\r\n", auth!(), "Content-Length: 5 5\r\n\r\nhello").as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "cl_hex_number",
        request: concat!("POST /a HTTP/1.1\r\nHost: edge\r\n", auth!(), "Content-Length: 0x5\r\n\r\nhello").as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "cl_overflowing_u64",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Content-Length: 18446744073709551621\r\n\r\nhello"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "cl_folded_second_line",
        request: concat!("POST /a HTTP/1.1\r\nHost: edge\r\n", auth!(), "Content-Length: 5\r\n 0\r\n\r\nhello")
            .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "cl_body_followed_by_a_smuggled_request",
        request: concat!("POST /a HTTP/1.1\r\nHost: edge\r\n", auth!(), "Content-Length: 5\r\n\r\nhello", smuggled!())
            .as_bytes(),
        expect: Expect::Forwarded { requests: POST_A_HELLO, after: After::Closes },
    },
    // Chunk-size lines.
    Case {
        name: "chunk_size_with_leading_zeros",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: chunked\r\n\r\n0005\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Forwarded { requests: POST_A_HELLO, after: After::KeepsAlive },
    },
    Case {
        name: "chunk_size_overflowing_u64",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n",
            smuggled!()
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "chunk_extension",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: chunked\r\n\r\n5;name=\"va;lue\"\r\nhello\r\n0;last\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Forwarded { requests: POST_A_HELLO, after: After::KeepsAlive },
    },
    Case {
        name: "chunk_size_in_0x_notation",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "chunk_size_negative",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "chunk_data_not_followed_by_crlf",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "chunk_size_line_ending_in_bare_lf",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "chunk_size_followed_by_space",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        // pingora tolerates the space; harmless, because the body is decoded here and sent
        // upstream re-chunked, never as received.
        expect: Expect::Forwarded { requests: POST_A_HELLO, after: After::KeepsAlive },
    },
    Case {
        name: "last_chunk_with_a_trailer",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Forwarded { requests: POST_A_HELLO, after: After::KeepsAlive },
    },
    // Line endings in the head.
    Case {
        name: "head_with_bare_lf_line_endings",
        request: b"GET /a HTTP/1.1\nHost: edge\nAuthorization: Bearer smuggling-token-0123456789\n\n",
        expect: Expect::Forwarded { requests: GET_A, after: After::KeepsAlive },
    },
    Case {
        name: "bare_lf_before_a_te_header",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "X-Padding: a\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Forwarded { requests: POST_A_HELLO, after: After::KeepsAlive },
    },
    Case {
        name: "bare_cr_inside_the_head",
        request: concat!("GET /a HTTP/1.1\r\nHost: edge\rX-Padding: a\r\n", auth!(), "\r\n").as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "nul_in_a_header_value",
        request: concat!("GET /a HTTP/1.1\r\nHost: edge\r\nX-Padding: a\0b\r\n", auth!(), "\r\n").as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "request_line_with_a_double_space",
        request: concat!("GET  /a HTTP/1.1\r\nHost: edge\r\n", auth!(), "\r\n").as_bytes(),
        // pingora would make the target `%20/a`; the framing is still known, so keep-alive.
        expect: Expect::Answered { status: 400, after: After::KeepsAlive },
    },
    Case {
        name: "space_inside_the_target",
        request: concat!("GET /a b HTTP/1.1\r\nHost: edge\r\n", auth!(), "\r\n").as_bytes(),
        // pingora percent-encodes the space rather than refusing the line: one request still.
        expect: Expect::Forwarded {
            requests: &[Upstream { method: "GET", target: "/a%20b", body: b"" }],
            after: After::KeepsAlive,
        },
    },
    Case {
        name: "get_with_content_length_zero_and_trailing_bytes",
        request: concat!("GET /a HTTP/1.1\r\nHost: edge\r\n", auth!(), "Content-Length: 0\r\n\r\n", smuggled!())
            .as_bytes(),
        expect: Expect::Forwarded { requests: GET_A, after: After::Closes },
    },
    // Host and the absolute form.
    Case {
        name: "absolute_form_naming_another_host",
        request: concat!("GET http://other.example/a HTTP/1.1\r\nHost: edge\r\n", auth!(), "\r\n").as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "absolute_form_matching_host",
        request: concat!("GET http://edge/a HTTP/1.1\r\nHost: edge\r\n", auth!(), "\r\n").as_bytes(),
        // Sent on in origin form, the path and query only (RFC 9112 §3.2.1: a request to an
        // origin server); the authority is the upstream's, in the rewritten Host.
        expect: Expect::Forwarded {
            requests: &[Upstream { method: "GET", target: "/a", body: b"" }],
            after: After::KeepsAlive,
        },
    },
    Case {
        name: "duplicate_host",
        request: concat!("GET /a HTTP/1.1\r\nHost: edge\r\nHost: other.example\r\n", auth!(), "\r\n").as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "http_1_1_without_host",
        request: concat!("GET /a HTTP/1.1\r\n", auth!(), "\r\n").as_bytes(),
        // RFC 9112 §3.2 requires the 400; the framing is known, so the connection stays.
        expect: Expect::Answered { status: 400, after: After::KeepsAlive },
    },
    // Expect: 100-continue.
    Case {
        name: "expect_continue_with_the_body_sent_at_once",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"
        )
        .as_bytes(),
        expect: Expect::Forwarded { requests: POST_A_HELLO, after: After::KeepsAlive },
    },
    Case {
        name: "expect_continue_refused_early_body_is_not_a_request",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\nExpect: 100-continue\r\nContent-Length: 88\r\n\r\n",
            smuggled!()
        )
        .as_bytes(),
        expect: Expect::Answered { status: 401, after: After::KeepsAlive },
    },
    Case {
        name: "expect_continue_refused_early_chunked_body_is_not_a_request",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n58\r\n",
            smuggled!(),
            "\r\n0\r\n\r\n"
        )
        .as_bytes(),
        expect: Expect::Answered { status: 401, after: After::KeepsAlive },
    },
    Case {
        name: "expect_unknown_expectation",
        request: concat!(
            "POST /a HTTP/1.1\r\nHost: edge\r\n",
            auth!(),
            "Expect: 200-ok\r\nContent-Length: 5\r\n\r\nhello"
        )
        .as_bytes(),
        expect: Expect::Forwarded { requests: POST_A_HELLO, after: After::KeepsAlive },
    },
    // Pipelining after an error or an answer: the queued request is never served.
    Case {
        name: "pipelined_after_a_bad_content_length",
        request: concat!("POST /a HTTP/1.1\r\nHost: edge\r\n", auth!(), "Content-Length: abc\r\n\r\n", smuggled!())
            .as_bytes(),
        expect: Expect::Refused { status: 400 },
    },
    Case {
        name: "pipelined_after_a_401",
        request: concat!("GET /a HTTP/1.1\r\nHost: edge\r\n\r\n", smuggled!()).as_bytes(),
        expect: Expect::Refused { status: 401 },
    },
    Case {
        name: "pipelined_after_a_forwarded_request",
        request: concat!("GET /a HTTP/1.1\r\nHost: edge\r\n", auth!(), "\r\n", smuggled!()).as_bytes(),
        expect: Expect::Forwarded { requests: GET_A, after: After::Closes },
    },
];

fn policy() -> TestEdgeBuilder {
    let mut policy = policy::bearer(&[TOKEN]);
    policy["rate_limit"] = json!({"requests_per_minute": 60000, "burst": 10000});
    TestEdge::new(policy)
}

/// The request sent on a fresh connection after every case: it must arrive as itself.
const PROBE: &[u8] = concat!("GET /probe HTTP/1.1\r\nHost: edge\r\n", auth!(), "Connection: close\r\n\r\n").as_bytes();
/// Sent on the case's own connection when it must still be in step.
const IN_STEP: &[u8] =
    concat!("GET /in-step HTTP/1.1\r\nHost: edge\r\n", auth!(), "Connection: close\r\n\r\n").as_bytes();

fn finals(responses: &[WireResponse]) -> Vec<u16> {
    responses.iter().filter(|response| !response.is_interim()).map(|response| response.status).collect()
}

fn summary(requests: &[SeenRequest]) -> Vec<(String, String, String)> {
    requests
        .iter()
        .map(|request| {
            (request.method.clone(), request.target.clone(), String::from_utf8_lossy(&request.body).into_owned())
        })
        .collect()
}

/// Runs one case and returns what went wrong, if anything.
async fn run_case(case: &Case, listener: Listener, edge: &TestEdge, upstream: &RawUpstream) -> Vec<String> {
    let address = match listener {
        Listener::Plain => edge.http.expect("plain listener"),
        Listener::Tls => edge.https,
    };
    let mut problems = Vec::new();
    upstream.clear();
    let mut connection = WireConnection::connect(listener, address).await;
    connection.write(case.request).await;
    let mut expected: Vec<(String, String, String)> = Vec::new();
    let (statuses, after) = match &case.expect {
        Expect::Refused { status } => (vec![*status], After::Closes),
        Expect::Answered { status, after } => (vec![*status], *after),
        Expect::Forwarded { requests, after } => {
            for request in *requests {
                expected.push((
                    request.method.to_string(),
                    request.target.replace("UPSTREAM", &upstream.address.to_string()),
                    String::from_utf8_lossy(request.body).into_owned(),
                ));
            }
            (vec![200; requests.len()], *after)
        }
    };
    let mut responses = Vec::new();
    if after == After::KeepsAlive {
        responses = connection.read_responses(statuses.len()).await;
        connection.write(IN_STEP).await;
        expected.push(("GET".to_string(), "/in-step".to_string(), String::new()));
    }
    match connection.read_until_closed().await {
        Some(rest) => responses.extend(rest),
        None => problems.push("the edge kept the connection open".to_string()),
    }
    let mut expected_statuses = statuses.clone();
    if after == After::KeepsAlive {
        expected_statuses.push(200);
    }
    if finals(&responses) != expected_statuses {
        problems.push(format!("client got {:?}, expected {expected_statuses:?}", finals(&responses)));
    }
    let mut probe = WireConnection::connect(listener, address).await;
    probe.write(PROBE).await;
    let probe_statuses = finals(&probe.read_until_closed().await.unwrap_or_default());
    if probe_statuses != [200] {
        problems.push(format!("the probe after the case got {probe_statuses:?}"));
    }
    expected.push(("GET".to_string(), "/probe".to_string(), String::new()));
    let log = upstream.log();
    let seen = summary(&log.requests);
    if seen != expected {
        // Heads the edge sent and then abandoned (a chunked body refused mid-stream) are not
        // requests and are not counted; they are shown to explain a mismatch.
        let abandoned = summary(&log.aborted);
        problems.push(format!("upstream parsed {seen:?}, expected {expected:?}; abandoned heads {abandoned:?}"));
    }
    if log.requests.iter().any(|request| request.target.contains("smuggled")) {
        problems.push("the smuggled request reached the upstream as a request".to_string());
    }
    if !log.violations.is_empty() {
        problems.push(format!("the edge sent the upstream malformed bytes: {:?}", log.violations));
    }
    problems.into_iter().map(|problem| format!("{} ({listener:?}): {problem}", case.name)).collect()
}

async fn run_corpus(listener: Listener) {
    assert!(CASES.len() >= 25, "the corpus is the point");
    let upstream = RawUpstream::start().await;
    let edge = policy().plain_http().passthrough(&upstream.url()).start();
    let mut problems = Vec::new();
    for case in CASES {
        problems.extend(run_case(case, listener, &edge, &upstream).await);
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[tokio::test]
async fn http1_desync_corpus_on_the_plaintext_listener() {
    run_corpus(Listener::Plain).await;
}

#[tokio::test]
async fn http1_desync_corpus_on_the_tls_listener() {
    run_corpus(Listener::Tls).await;
}

mod h2;
