//! The MCP protocol beyond the basics (issue 19): rich content, `Mcp-Param-*` headers,
//! lenient scalars, progress and cancellation, telemetry. Requests are raw JSON-RPC over TLS
//! in the 2026-07-28 era (no session to open), unless a test is about the session era.

use base64::Engine;
use serde_json::{Value, json};

use crate::support::edge::TestEdge;
use crate::support::mock_api::{MockApi, Reply};
use crate::support::policy;
use crate::support::tls_client::{Protocol, client};

/// The `_meta` of every 2026-07-28 request.
fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// A no-argument tool `name` that GETs `/{name}`.
fn get_tool(name: &str) -> Value {
    json!({"name": name, "method": "GET", "path": format!("/{name}"), "input_schema": {"type": "object"}})
}

fn open_policy(api: &MockApi, tools: Vec<Value>) -> Value {
    let mut policy = policy::open();
    policy["rate_limit"] = json!({"enabled": false});
    policy["upstream"] = json!({"base_url": format!("{}/api", api.url()), "timeout": "5s", "try_timeout": "5s"});
    policy["tools"] = Value::Array(tools);
    policy
}

/// A 2026-07-28 `tools/call` with these extra headers; the status and the JSON body.
async fn call_with(edge: &TestEdge, tool: &str, arguments: Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let body = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": meta()},
    });
    let mut request = client(Protocol::Http1)
        .post(edge.https_url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("POST /mcp");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The `CallToolResult` of a 2026-07-28 call, without the era's `resultType` (so that it
/// compares with the REST result).
async fn call(edge: &TestEdge, tool: &str, arguments: Value) -> Value {
    let (status, mut reply) = call_with(edge, tool, arguments, &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"]["resultType"], "complete");
    reply["result"].as_object_mut().expect("result").remove("resultType");
    reply["result"].clone()
}

/// `POST /api/tools/{tool}`: the status and the JSON body.
async fn rest(edge: &TestEdge, tool: &str, arguments: Value) -> (u16, Value) {
    let response = client(Protocol::Http1)
        .post(edge.https_url(&format!("/api/tools/{tool}")))
        .header("content-type", "application/json")
        .body(arguments.to_string())
        .send()
        .await
        .expect("POST /api/tools");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Bytes that are not UTF-8, the way image and audio files are not.
const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe, 0x80];
const WAV: &[u8] = &[b'R', b'I', b'F', b'F', 0x24, 0x00, 0x00, 0x00, b'W', b'A', b'V', b'E', 0x80, 0xff];

#[tokio::test]
async fn binary_replies_become_image_audio_and_resource_content_with_their_bytes_intact() {
    let mixed = [
        &b"--part\r\nContent-Type: text/plain\r\n\r\nThree things:\r\n--part\r\nContent-Type: image/png\r\n\r\n"[..],
        PNG,
        b"\r\n--part\r\nContent-Type: application/json\r\nContent-Location: test://report\r\n\r\n{\"a\":1}\r\n--part--\r\n",
    ]
    .concat();
    let api = MockApi::new()
        .any("/api/image", Reply::bytes("image/png", PNG))
        .any("/api/audio", Reply::bytes("audio/wav", WAV))
        .any("/api/pdf", Reply::bytes("application/pdf", PNG))
        .any("/api/csv", Reply::bytes("text/csv; charset=utf-8", b"a,b\n1,2\n"))
        .any("/api/mixed", Reply::bytes("multipart/mixed; boundary=part", &mixed))
        .any("/api/huge", Reply::bytes("image/png", &vec![0u8; 5 << 20]))
        .any("/api/broken", Reply::bytes("multipart/mixed; boundary=part", b"--part\r\n\r\ncut"))
        .start()
        .await;
    let tools = ["image", "audio", "pdf", "csv", "mixed", "huge", "broken"].map(get_tool).to_vec();
    let edge = TestEdge::new(open_policy(&api, tools)).start();

    let image = call(&edge, "image", json!({})).await;
    assert_eq!(image["content"], json!([{"type": "image", "data": base64(PNG), "mimeType": "image/png"}]));
    assert_eq!(image["isError"], false);
    assert_eq!(rest(&edge, "image", json!({})).await, (200, image.clone()), "REST returns the same result");

    let audio = call(&edge, "audio", json!({})).await;
    assert_eq!(audio["content"], json!([{"type": "audio", "data": base64(WAV), "mimeType": "audio/wav"}]));

    let pdf = call(&edge, "pdf", json!({})).await;
    assert_eq!(
        pdf["content"],
        json!([{"type": "resource", "resource": {
            "uri": "mcp-edge://tools/pdf/result", "mimeType": "application/pdf", "blob": base64(PNG),
        }}])
    );
    assert_eq!(rest(&edge, "pdf", json!({})).await, (200, pdf));

    let csv = call(&edge, "csv", json!({})).await;
    assert_eq!(csv["content"], json!([{"type": "text", "text": "a,b\n1,2\n"}]), "text types stay text");

    let mixed = call(&edge, "mixed", json!({})).await;
    assert_eq!(
        mixed["content"],
        json!([
            {"type": "text", "text": "Three things:"},
            {"type": "image", "data": base64(PNG), "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "test://report", "mimeType": "application/json", "text": "{\"a\":1}"}},
        ])
    );

    let huge = call(&edge, "huge", json!({})).await;
    assert_eq!(huge["isError"], true);
    assert_eq!(
        huge["content"][0]["text"],
        "the upstream reply is larger than 4 MiB, the most one tool result may carry"
    );
    assert_eq!(rest(&edge, "huge", json!({})).await.0, 502);

    let broken = call(&edge, "broken", json!({})).await;
    assert_eq!(broken["isError"], true);
    assert_eq!(broken["content"][0]["text"], "the multipart reply is cut short");
}

#[tokio::test]
async fn mcp_param_headers_must_match_the_arguments_they_mirror() {
    let api = MockApi::new().any("/api/regional", Reply::json(json!({"ok": true}))).start().await;
    let tool = json!({
        "name": "regional", "method": "GET", "path": "/regional", "query": ["region"],
        "input_schema": {
            "type": "object", "required": ["region"],
            "properties": {"region": {"type": "string", "x-mcp-header": "Region"}},
        },
    });
    let edge = TestEdge::new(open_policy(&api, vec![tool])).start();
    let hello = json!({"region": "Hello"});

    for accepted in ["=?base64?SGVsbG8=?=", "Hello", " Hello "] {
        let (status, reply) = call_with(&edge, "regional", hello.clone(), &[("mcp-param-region", accepted)]).await;
        assert_eq!((status, &reply["result"]["isError"]), (200, &json!(false)), "{accepted}: {reply}");
    }
    let literal = json!({"region": "SGVsbG8="});
    let (status, _) = call_with(&edge, "regional", literal, &[("Mcp-Param-Region", "SGVsbG8=")]).await;
    assert_eq!(status, 200, "a value without the =?base64?…?= wrapper is literal");

    for (refused, why) in [
        (Some("=?base64?SGVsbG8?="), "bad padding"),
        (Some("=?base64?SGVs!!!bG8=?="), "bad characters"),
        (Some("Goodbye"), "another value"),
        (None, "absent"),
    ] {
        let headers: Vec<(&str, &str)> = refused.map(|value| ("mcp-param-region", value)).into_iter().collect();
        let (status, reply) = call_with(&edge, "regional", hello.clone(), &headers).await;
        assert_eq!((status, &reply["error"]["code"]), (400, &json!(-32020)), "{why}: {reply}");
        assert!(reply["error"]["message"].as_str().unwrap_or_default().contains("Mcp-Param-Region"), "{reply}");
    }
    assert_eq!(api.hits("/api/regional"), 4, "a refused call never reaches the API");
}

/// A tool with one field of each scalar type, whose API echoes what it was sent.
fn typed_tool() -> Value {
    json!({
        "name": "typed", "method": "POST", "path": "/typed",
        "input_schema": {
            "type": "object",
            "properties": {
                "companyId": {"type": "string"}, "count": {"type": "integer"},
                "ratio": {"type": "number"}, "active": {"type": "boolean"},
            },
        },
    })
}

#[tokio::test]
async fn scalars_of_the_wrong_type_are_coerced_losslessly_before_validation() {
    let api = MockApi::start().await;
    let edge = TestEdge::new(open_policy(&api, vec![typed_tool()])).start();
    let sent = json!({"companyId": 42, "count": "7", "ratio": "0.5", "active": "true"});
    let result = call(&edge, "typed", sent.clone()).await;
    assert_eq!(result["isError"], false, "{result}");
    let body: Value =
        serde_json::from_str(result["structuredContent"]["body"].as_str().expect("echoed body")).expect("json");
    assert_eq!(body, json!({"companyId": "42", "count": 7, "ratio": 0.5, "active": true}));
    let (status, rest_result) = rest(&edge, "typed", sent).await;
    assert_eq!(status, 200, "REST coerces the same way: {rest_result}");

    for (arguments, field) in [
        (json!({"count": "07"}), "arguments/count"),
        (json!({"count": "1.5"}), "arguments/count"),
        (json!({"active": "yes"}), "arguments/active"),
        (json!({"companyId": true}), "arguments/companyId"),
    ] {
        let result = call(&edge, "typed", arguments.clone()).await;
        assert_eq!(result["isError"], true, "{arguments}");
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        assert!(text.contains(field), "{arguments}: {text}");
    }
    assert_eq!(api.hits("/api/typed"), 2, "refused arguments never reach the API");
}

#[tokio::test]
async fn coercion_can_be_turned_off() {
    let api = MockApi::start().await;
    let mut policy = open_policy(&api, vec![typed_tool()]);
    policy["mcp"] = json!({"coerce_arguments": false});
    let edge = TestEdge::new(policy).start();
    let result = call(&edge, "typed", json!({"companyId": 42})).await;
    assert_eq!(result["isError"], true);
    assert_eq!(
        result["content"][0]["text"],
        r#"invalid arguments: arguments/companyId: value is not of type "string""#
    );
    assert_eq!(api.request_count(), 0);
}

/// Starts a 2026-07-28 `tools/call` of `tool` with a progress token; the streaming response.
async fn start_streamed_call(http: &reqwest::Client, edge: &TestEdge, tool: &str, id: i64) -> reqwest::Response {
    let mut meta = meta();
    meta["progressToken"] = json!("tok-1");
    let body = json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": {}, "_meta": meta},
    });
    let response = http
        .post(edge.https_url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(body.to_string())
        .send()
        .await
        .expect("POST /mcp");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response
}

/// The JSON-RPC messages of the SSE events in `text` (complete events only).
fn sse_messages(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|event| event.lines().find_map(|line| line.strip_prefix("data: ")))
        .filter_map(|data| serde_json::from_str(data).ok())
        .collect()
}

/// Reads the stream until `enough` holds for its messages (bounded: 15 s).
async fn read_until(response: &mut reqwest::Response, enough: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let messages = sse_messages(&text);
        if enough(&messages) {
            return messages;
        }
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) => return sse_messages(&text),
            other => panic!("stream stalled or failed: {other:?} after {text:?}"),
        }
    }
}

fn streaming_policy(api: &MockApi) -> Value {
    let mut policy = open_policy(api, vec![get_tool("slow"), get_tool("stuck"), get_tool("slower")]);
    policy["upstream"]["timeout"] = json!("30s");
    policy["upstream"]["try_timeout"] = json!("30s");
    policy
}

fn streaming_api() -> crate::support::mock_api::MockApiBuilder {
    MockApi::new()
        .any("/api/slow", Reply::json(json!({"done": true})).delay(std::time::Duration::from_millis(1500)))
        .any("/api/stuck", Reply::json(json!({"never": true})).delay(std::time::Duration::from_secs(60)))
        .any("/api/slower", Reply::json(json!({"late": true})).delay(std::time::Duration::from_secs(4)))
}

#[tokio::test]
async fn a_call_with_a_progress_token_streams_progress_and_then_its_result() {
    let api = streaming_api().start().await;
    let edge = TestEdge::new(streaming_policy(&api)).audit_file(None, 1).start();
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let http = client(protocol);
        let mut response = start_streamed_call(&http, &edge, "slow", 3).await;
        let messages = read_until(&mut response, |messages| messages.iter().any(|m| m.get("result").is_some())).await;
        let (result, progress) = messages.split_last().expect("messages");
        assert_eq!(result["id"], 3, "{protocol:?}: the result comes last");
        assert_eq!(result["result"]["structuredContent"], json!({"done": true}));
        assert_eq!(result["result"]["resultType"], "complete");
        assert!(progress.len() >= 3, "{protocol:?}: {progress:?}");
        let values: Vec<u64> = progress
            .iter()
            .map(|message| {
                assert_eq!(message["method"], "notifications/progress");
                assert_eq!(message["params"]["progressToken"], "tok-1");
                message["params"]["progress"].as_u64().expect("progress")
            })
            .collect();
        assert!(values.windows(2).all(|pair| pair[0] < pair[1]), "increasing: {values:?}");
        let said: Vec<&str> = progress.iter().filter_map(|m| m["params"]["message"].as_str()).collect();
        assert!(said.iter().any(|m| m.starts_with("calling the API (attempt 1 of")), "{said:?}");
        assert!(said.iter().any(|m| m.starts_with("still waiting")), "a 1.5 s call says it waits: {said:?}");
    }
    // Without a token the same call is one JSON document.
    let (status, reply) = call_with(&edge, "slow", json!({}), &[]).await;
    assert_eq!((status, &reply["result"]["structuredContent"]), (200, &json!({"done": true})));
    let tool_events = |events: &[Value]| -> Vec<Value> {
        events.iter().filter(|e| e["event.action"] == "TOOL_EXECUTE").cloned().collect()
    };
    let events = edge.wait_audit(|events| tool_events(events).len() >= 3);
    for event in tool_events(&events) {
        assert_eq!(event["gen_ai.tool.name"], "slow", "streamed calls are audited too: {event}");
        assert_eq!(event["upstream.status_code"], 200);
    }
}

/// Waits (bounded: 15 s) until the call of `stuck` number `count` reached the API.
async fn wait_reached(api: &MockApi, count: usize) {
    for _ in 0..150 {
        if api.hits("/api/stuck") >= count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the call never reached the API");
}

/// Waits (bounded: 30 s) until the mock saw `count` abandoned requests.
async fn wait_abandoned(api: &MockApi, edge: &TestEdge, count: usize) {
    for _ in 0..300 {
        if api.abandoned_count() >= count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the API still serves the call: {} abandoned\n{}", api.abandoned_count(), edge.stderr());
}

#[tokio::test]
async fn a_client_that_goes_away_or_cancels_stops_the_upstream_call() {
    let api = streaming_api().start().await;
    let edge = TestEdge::new(streaming_policy(&api)).start();

    // Gone away: the response (and its connection) dropped after the first event.
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let http = client(protocol);
        let mut response = start_streamed_call(&http, &edge, "stuck", 1).await;
        read_until(&mut response, |messages| !messages.is_empty()).await;
        wait_reached(&api, api.abandoned_count() + 1).await;
        let before = api.abandoned_count();
        drop(response);
        drop(http);
        wait_abandoned(&api, &edge, before + 1).await;
    }

    // notifications/cancelled for the request id: the stream ends with no result.
    let http = client(Protocol::Http2);
    let mut response = start_streamed_call(&http, &edge, "stuck", 9).await;
    read_until(&mut response, |messages| !messages.is_empty()).await;
    wait_reached(&api, 3).await;
    let before = api.abandoned_count();
    let cancel =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9, "reason": "user"}});
    let status = http
        .post(edge.https_url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(cancel.to_string())
        .send()
        .await
        .expect("cancel")
        .status();
    assert_eq!(status, 202);
    let messages = read_until(&mut response, |_| false).await;
    assert!(messages.iter().all(|m| m.get("result").is_none()), "a cancelled call has no result: {messages:?}");
    wait_abandoned(&api, &edge, before + 1).await;
}

#[tokio::test]
async fn mcp_spans_carry_the_semantic_convention_attributes_and_continue_the_meta_trace() {
    use std::sync::{Arc, Mutex};
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
    let api = MockApi::start().await;
    let mut edge = TestEdge::new(open_policy(&api, vec![get_tool("lookup")])).otlp(&receiver).drain("0s", "2s").start();

    let trace_id = "5bf92f3577b34da6a3ce929d0e0e4737";
    let mut meta = meta();
    meta["traceparent"] = json!(format!("00-{trace_id}-00f067aa0ba902b7-01"));
    let body = json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": {"name": "lookup", "arguments": {}, "_meta": meta}});
    let response = client(Protocol::Http1)
        .post(edge.https_url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "lookup")
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.expect("json");
    let echoed = &reply["result"]["structuredContent"]["headers"]["traceparent"];
    let upstream_traceparent = echoed.as_str().unwrap_or_default().to_string();
    let (status, _) = call_with(&edge, "nope", json!({}), &[]).await;
    assert_eq!(status, 200, "an unknown tool is a JSON-RPC error in a 200");

    let metrics = crate::support::edge::admin_body(edge.admin, "/metrics").expect("metrics");
    assert!(
        metrics.contains(
            r#"mcp_server_operation_duration_seconds_count{mcp_method_name="tools/call",gen_ai_tool_name="lookup",error_type=""} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"mcp_server_operation_duration_seconds_count{mcp_method_name="tools/call",gen_ai_tool_name="",error_type="-32602"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        upstream_traceparent.contains(trace_id),
        "the upstream call continues the _meta trace: {upstream_traceparent}"
    );

    edge.signal(nix::sys::signal::Signal::SIGTERM);
    let status = tokio::task::spawn_blocking(move || (edge.wait_exit(std::time::Duration::from_secs(10)), edge))
        .await
        .expect("join");
    assert!(status.0.is_some_and(|status| status.success()), "{}", status.1.stderr());
    let bodies = bodies.lock().expect("lock");
    let exported: Vec<u8> = bodies.concat();
    let has = |needle: &[u8]| exported.windows(needle.len()).any(|window| window == needle);
    for attribute in [
        &b"tools/call lookup"[..],
        b"mcp.method.name",
        b"mcp.protocol.version",
        b"2026-07-28",
        b"jsonrpc.request.id",
        b"gen_ai.tool.name",
        b"gen_ai.operation.name",
        b"execute_tool",
        b"error.type",
        b"-32602",
    ] {
        assert!(has(attribute), "no {:?} in the exported spans", String::from_utf8_lossy(attribute));
    }
    let trace_bytes: Vec<u8> =
        (0..16).map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).expect("hex")).collect();
    assert!(has(&trace_bytes), "the MCP span does not continue the _meta trace");
}

#[tokio::test]
async fn a_call_without_a_token_that_outlives_the_threshold_is_streamed_to_a_client_that_accepts_it() {
    let api = streaming_api().start().await;
    let edge = TestEdge::new(streaming_policy(&api)).audit_file(None, 1).start();
    let body = json!({
        "jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "slower", "arguments": {}, "_meta": meta()},
    });
    let post = |accept: &'static str| {
        client(Protocol::Http1)
            .post(edge.https_url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", accept)
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "slower")
            .body(body.to_string())
            .send()
    };
    let response = post("application/json, text/event-stream").await.expect("POST");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.expect("stream");
    assert!(text.contains(": still waiting\n\n"), "kept alive by comments: {text:?}");
    let messages = sse_messages(&text);
    assert_eq!(messages.len(), 1, "no progress without a token: {messages:?}");
    assert_eq!(messages[0]["id"], 5);
    assert_eq!(messages[0]["result"]["structuredContent"], json!({"late": true}));

    let response = post("application/json").await.expect("POST");
    assert_eq!(response.headers()["content-type"], "application/json", "JSON for a client that takes no stream");
    let reply: Value = response.json().await.expect("json");
    assert_eq!(reply["result"]["structuredContent"], json!({"late": true}));
    let events = edge.wait_audit(|events| events.iter().filter(|e| e["event.action"] == "TOOL_EXECUTE").count() >= 2);
    assert!(events.iter().filter(|e| e["event.action"] == "TOOL_EXECUTE").all(|e| e["gen_ai.tool.name"] == "slower"));
}
