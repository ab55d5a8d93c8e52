//! The MCP gateway end to end over TLS: the rmcp client in both protocol eras, raw JSON-RPC
//! for every status and error code of DESIGN.md 6.2, and the REST view of the same tools.

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::support::edge::TestEdge;
use crate::support::mock_api::{MockApi, Reply};
use crate::support::tls_client::{Protocol, client};

/// A session-era request and what the edge answers: the HTTP status and the JSON-RPC error
/// code (`None`: a result).
struct SessionCase<'a> {
    headers: &'a [(&'a str, &'a str)],
    body: &'a str,
    status: u16,
    code: Option<i64>,
}

/// A stateless-era request the edge refuses, with the HTTP status and JSON-RPC error code.
struct StatelessCase {
    headers: Vec<(&'static str, String)>,
    body: String,
    status: u16,
    code: i64,
}

/// A REST tool call and the HTTP status it gets.
struct RestCase {
    tool: &'static str,
    body: &'static str,
    status: u16,
}

const READER: &str = "reader-token-00001";
const ADMIN: &str = "admin-token-000001";

/// The REST API behind the tools: `fail_with` reaches `/status/{code}`, which answers that
/// status with a problem body; everything else is echoed.
async fn api() -> MockApi {
    let mut api = MockApi::new();
    for code in [404, 409, 500, 503] {
        api = api.any(&format!("/status/{code}"), Reply::problem(code));
    }
    api.start().await
}

fn policy(api: &MockApi) -> Value {
    let string = json!({"type": "string"});
    json!({
        "auth": {
            "mode": "bearer",
            "bearer": {
                "tokens": [
                    {"id": "reader", "value": READER, "scopes": ["shifts"]},
                    {"id": "admin", "value": ADMIN, "scopes": ["shifts", "admin"]},
                ],
            },
        },
        "rate_limit": {"requests_per_minute": 6000, "burst": 200},
        "upstream": {"base_url": format!("{}/api", api.url()), "timeout": "2s", "try_timeout": "1s"},
        "tools": [
            {
                "name": "get_shifts",
                "description": "List the shifts of a company",
                "method": "GET",
                "path": "/companies/{companyId}/shifts",
                "input_schema": {
                    "type": "object",
                    "required": ["companyId"],
                    "properties": {"companyId": string, "from": string, "tags": {"type": "array", "items": string}},
                },
            },
            {
                "name": "create_shift",
                "method": "POST",
                "path": "/companies/{companyId}/shifts",
                "input_schema": {
                    "type": "object",
                    "required": ["companyId", "employeeId"],
                    "properties": {"companyId": string, "employeeId": string, "hours": {"type": "integer", "minimum": 1}},
                },
            },
            {
                "name": "fail_with",
                "method": "GET",
                "path": "/../status/{code}",
                "input_schema": {"type": "object", "required": ["code"], "properties": {"code": string}},
            },
            {
                "name": "typed_reply",
                "path": "/typed",
                "input_schema": {"type": "object"},
                "output_schema": {"type": "object", "required": ["count"], "properties": {"count": {"type": "integer"}}},
            },
            {
                "name": "delete_company",
                "method": "DELETE",
                "path": "/companies/{companyId}",
                "scopes": ["admin"],
                "input_schema": {"type": "object", "required": ["companyId"], "properties": {"companyId": string}},
            },
        ],
    })
}

async fn rmcp_client(
    edge: &TestEdge,
    lifecycle: Option<ClientLifecycleMode>,
) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    let config = StreamableHttpClientTransportConfig::with_uri(edge.https_url("/mcp")).auth_header(READER);
    let transport = StreamableHttpClientTransport::with_client(client(Protocol::Http2), config);
    match lifecycle {
        None => ().serve(transport).await.expect("initialize"),
        Some(lifecycle) => ().serve_with_lifecycle(transport, lifecycle).await.expect("discover"),
    }
}

async fn exercise(client: &rmcp::service::RunningService<rmcp::RoleClient, ()>, api: &MockApi) {
    let tools = client.list_all_tools().await.expect("tools/list");
    let mut names: Vec<String> = tools.iter().map(|tool| tool.name.to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        ["create_shift", "fail_with", "get_shifts", "typed_reply"],
        "delete_company needs the admin scope"
    );

    let arguments = json!({"companyId": "42", "from": "2026-11-23", "tags": ["a", "b"]});
    let result = client
        .call_tool(
            CallToolRequestParams::new("get_shifts").with_arguments(arguments.as_object().expect("object").clone()),
        )
        .await
        .expect("tools/call");
    assert_eq!(result.is_error, Some(false));
    let seen = result.structured_content.expect("structured content");
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["path"], "/api/companies/42/shifts");
    assert_eq!(seen["query"], "from=2026-11-23&tags=a&tags=b");
    assert!(seen["headers"]["authorization"].is_null(), "upstream.auth none sends no credential");

    let before = api.request_count();
    let arguments = json!({"companyId": "42", "employeeId": "e-1", "hours": 8});
    let result = client
        .call_tool(
            CallToolRequestParams::new("create_shift").with_arguments(arguments.as_object().expect("object").clone()),
        )
        .await
        .expect("tools/call");
    let seen = result.structured_content.expect("structured content");
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/api/companies/42/shifts");
    let body: Value = serde_json::from_str(seen["body"].as_str().expect("body")).expect("JSON body");
    assert_eq!(body, json!({"employeeId": "e-1", "hours": 8}), "path arguments are not repeated in the body");
    assert_eq!(api.request_count(), before + 1);

    // A schema violation names the field and never reaches the upstream.
    let arguments = json!({"companyId": "42", "employeeId": "e-1", "hours": 0});
    let result = client
        .call_tool(
            CallToolRequestParams::new("create_shift").with_arguments(arguments.as_object().expect("object").clone()),
        )
        .await
        .expect("tools/call");
    assert_eq!(result.is_error, Some(true));
    let text = serde_json::to_string(&result.content).expect("content");
    assert!(text.contains("hours"), "{text}");
    assert_eq!(api.request_count(), before + 1, "the upstream was not called");
}

#[tokio::test]
async fn an_rmcp_client_initializes_lists_and_calls_tools_in_the_session_era() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api)).start();
    let client = rmcp_client(&edge, None).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
    exercise(&client, &api).await;
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn an_rmcp_client_discovers_lists_and_calls_tools_in_the_stateless_era() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api)).start();
    let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
    let client = rmcp_client(&edge, Some(lifecycle)).await;
    exercise(&client, &api).await;
    client.cancel().await.expect("close");
}

/// A raw JSON-RPC POST; returns status, the response headers and the JSON body (or Null).
async fn post(
    edge: &TestEdge,
    token: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = client(Protocol::Http1)
        .post(edge.https_url("/mcp"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string());
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("accept")) {
        request = request.header("accept", "application/json, text/event-stream");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("POST /mcp");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn initialize(edge: &TestEdge, token: &str) -> String {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    let (status, headers, reply) = post(edge, token, &[], body).await;
    assert_eq!(status, 200);
    assert_eq!(reply["result"]["protocolVersion"], "2025-06-18", "a supported version is echoed");
    assert_eq!(reply["result"]["capabilities"]["tools"]["listChanged"], false);
    headers["mcp-session-id"].to_str().expect("ascii").to_string()
}

/// The `_meta` every 2026-07-28 request carries, as a JSON member.
const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}"#;

/// A complete 2026-07-28 `_meta` naming `version`.
fn meta_with_version(version: &str) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

fn modern_request(id: i64, method: &str, params: &Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

fn modern(method: &str) -> Vec<(&'static str, String)> {
    vec![("mcp-protocol-version", "2026-07-28".to_string()), ("mcp-method", method.to_string())]
}

async fn post_modern(edge: &TestEdge, headers: &[(&'static str, String)], body: &str) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let (status, _, reply) = post(edge, READER, &headers, body).await;
    (status, reply)
}

#[tokio::test]
async fn session_era_status_and_error_codes() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api)).start();
    let session = initialize(&edge, READER).await;
    let with_session = [("mcp-session-id", session.as_str()), ("mcp-protocol-version", "2025-06-18")];

    let cases = [
        SessionCase {
            headers: &with_session,
            body: r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
            status: 200,
            code: None,
        },
        SessionCase { headers: &with_session, body: "{not json", status: 400, code: Some(-32700) },
        SessionCase {
            headers: &with_session,
            body: r#"[{"jsonrpc":"2.0","id":3,"method":"ping"}]"#,
            status: 400,
            code: Some(-32600),
        },
        SessionCase {
            headers: &with_session,
            body: r#"{"jsonrpc":"2.0","id":4,"method":5}"#,
            status: 400,
            code: Some(-32600),
        },
        SessionCase {
            headers: &with_session,
            body: r#"{"jsonrpc":"2.0","id":5,"method":"resources/list"}"#,
            status: 200,
            code: Some(-32601),
        },
        SessionCase {
            headers: &with_session,
            body: r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"nope"}}"#,
            status: 200,
            code: Some(-32602),
        },
        SessionCase {
            headers: &[],
            body: r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#,
            status: 400,
            code: Some(-32600),
        },
        SessionCase {
            headers: &[("mcp-session-id", "bogus.session")],
            body: r#"{"jsonrpc":"2.0","id":8,"method":"tools/list"}"#,
            status: 404,
            code: Some(-32001),
        },
        SessionCase {
            headers: &[("mcp-session-id", session.as_str()), ("mcp-protocol-version", "1999-01-01")],
            body: r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#,
            status: 400,
            code: Some(-32600),
        },
    ];
    for SessionCase { headers, body, status, code } in cases {
        let (got_status, _, reply) = post(&edge, READER, headers, body).await;
        assert_eq!(got_status, status, "{body}: {reply}");
        assert_eq!(reply["error"]["code"].as_i64(), code, "{body}: {reply}");
        assert_eq!(reply["jsonrpc"], "2.0");
    }
    // Notifications and responses: 202, no body.
    for body in [r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, r#"{"jsonrpc":"2.0","id":1,"result":{}}"#]
    {
        let (status, headers, reply) = post(&edge, READER, &with_session, body).await;
        assert_eq!((status, reply), (202, Value::Null));
        assert_eq!(headers["content-length"], "0");
    }
    // A session is bound to its principal.
    let (status, _, _) = post(&edge, ADMIN, &with_session, r#"{"jsonrpc":"2.0","id":10,"method":"ping"}"#).await;
    assert_eq!(status, 404, "another principal's session is unknown");
    // Accept must allow JSON; GET has no stream; DELETE ends the session.
    let (status, _, _) = post(
        &edge,
        READER,
        &[("mcp-session-id", session.as_str()), ("accept", "text/html")],
        r#"{"jsonrpc":"2.0","id":11,"method":"ping"}"#,
    )
    .await;
    assert_eq!(status, 406);
    let http = client(Protocol::Http1);
    let get = http.get(edge.https_url("/mcp")).bearer_auth(READER).send().await.expect("GET");
    assert_eq!(get.status(), 405);
    let delete = http
        .delete(edge.https_url("/mcp"))
        .bearer_auth(READER)
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(delete.status(), 204);
    let (status, _, _) = post(&edge, READER, &with_session, r#"{"jsonrpc":"2.0","id":12,"method":"ping"}"#).await;
    assert_eq!(status, 404, "an ended session is unknown");
}

#[tokio::test]
async fn stateless_era_header_checks_discover_and_results() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api)).start();
    let meta = META;

    let (status, reply) = post_modern(
        &edge,
        &modern("server/discover"),
        &format!(r#"{{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{{{meta}}}}}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["result"]["resultType"], "complete");
    assert!(reply["result"]["supportedVersions"].as_array().expect("versions").contains(&json!("2026-07-28")));
    assert!(reply["result"]["capabilities"]["tools"].is_object());

    let (status, reply) = post_modern(
        &edge,
        &modern("tools/list"),
        &format!(r#"{{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{{{meta}}}}}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["result"]["resultType"], "complete");
    assert_eq!(reply["result"]["cacheScope"], "private");
    assert!(reply["result"]["ttlMs"].as_u64().is_some());

    let call = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"get_shifts","arguments":{{"companyId":"7"}},{meta}}}}}"#
    );
    let mut headers = modern("tools/call");
    headers.push(("mcp-name", "get_shifts".to_string()));
    let (status, reply) = post_modern(&edge, &headers, &call).await;
    assert_eq!(status, 200);
    assert_eq!(reply["result"]["resultType"], "complete");
    assert_eq!(reply["result"]["structuredContent"]["path"], "/api/companies/7/shifts");

    let mismatched_name = {
        let mut headers = modern("tools/call");
        headers.push(("mcp-name", "create_shift".to_string()));
        headers
    };
    let cases = [
        StatelessCase { headers: modern("tools/call"), body: call.clone(), status: 400, code: -32020 },
        StatelessCase { headers: mismatched_name, body: call.clone(), status: 400, code: -32020 },
        StatelessCase { headers: modern("tools/list"), body: call.clone(), status: 400, code: -32020 },
        StatelessCase {
            headers: vec![("mcp-method", "tools/list".to_string())],
            body: format!(r#"{{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{{{meta}}}}}"#),
            status: 400,
            code: -32020,
        },
        StatelessCase {
            headers: vec![("mcp-protocol-version", "2099-01-01".to_string()), ("mcp-method", "tools/list".to_string())],
            body: modern_request(5, "tools/list", &json!({"_meta": meta_with_version("2099-01-01")})),
            status: 400,
            code: -32022,
        },
        StatelessCase {
            headers: modern("prompts/list"),
            body: format!(r#"{{"jsonrpc":"2.0","id":6,"method":"prompts/list","params":{{{meta}}}}}"#),
            status: 404,
            code: -32601,
        },
    ];
    for StatelessCase { headers, body, status, code } in cases {
        let (got_status, reply) = post_modern(&edge, &headers, &body).await;
        assert_eq!((got_status, reply["error"]["code"].as_i64()), (status, Some(code)), "{headers:?} {body}: {reply}");
    }
}

/// 2026-07-28 requires `_meta` with the protocol version and the client capabilities on every
/// request; a request without them is 400 with -32602 and its own id. `clientInfo` is only a
/// SHOULD, so a `_meta` without it is served.
#[tokio::test]
async fn stateless_requests_without_the_required_meta_are_invalid_params() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api)).start();
    let mut without_version = meta_with_version("2026-07-28");
    without_version.as_object_mut().expect("object").remove("io.modelcontextprotocol/protocolVersion");
    let mut without_capabilities = meta_with_version("2026-07-28");
    without_capabilities.as_object_mut().expect("object").remove("io.modelcontextprotocol/clientCapabilities");
    let mut capabilities_not_an_object = meta_with_version("2026-07-28");
    capabilities_not_an_object["io.modelcontextprotocol/clientCapabilities"] = json!("sampling");
    let cases = [
        ("server/discover", json!({})),
        ("server/discover", json!({"_meta": without_version})),
        ("server/discover", json!({"_meta": without_capabilities})),
        ("server/discover", json!({"_meta": capabilities_not_an_object})),
        ("tools/list", json!({"_meta": "2026-07-28"})),
        ("tools/list", Value::Null),
    ];
    for (id, (method, params)) in (101..).zip(cases) {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        let (status, reply) = post_modern(&edge, &modern(method), &body).await;
        assert_eq!((status, reply["error"]["code"].as_i64()), (400, Some(-32602)), "{body}: {reply}");
        assert_eq!(reply["id"], id, "the error carries the request's id");
    }

    let mut without_client_info = meta_with_version("2026-07-28");
    without_client_info.as_object_mut().expect("object").remove("io.modelcontextprotocol/clientInfo");
    let body = modern_request(200, "server/discover", &json!({"_meta": without_client_info}));
    let (status, reply) = post_modern(&edge, &modern("server/discover"), &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"]["resultType"], "complete");
}

/// The spec's order: header and `_meta` must agree (-32020) before the version is checked for
/// support (-32022), so a header of 2026-07-28 over a `_meta` of v999.0.0 is a mismatch, and
/// only a version both name that the edge does not speak is unsupported.
#[tokio::test]
async fn a_header_disagreeing_with_meta_is_a_mismatch_before_the_version_is_checked() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api)).start();
    let body = modern_request(302, "server/discover", &json!({"_meta": meta_with_version("v999.0.0")}));
    let (status, reply) = post_modern(&edge, &modern("server/discover"), &body).await;
    assert_eq!((status, reply["error"]["code"].as_i64()), (400, Some(-32020)), "{reply}");
    assert_eq!(reply["id"], 302);

    let headers = vec![("mcp-protocol-version", "v999.0.0".to_string()), ("mcp-method", "server/discover".to_string())];
    let body = modern_request(301, "server/discover", &json!({"_meta": meta_with_version("v999.0.0")}));
    let (status, reply) = post_modern(&edge, &headers, &body).await;
    assert_eq!((status, reply["error"]["code"].as_i64()), (400, Some(-32022)), "{reply}");
    assert_eq!(reply["error"]["data"], json!({"requested": "v999.0.0", "supported": ["2026-07-28"]}));
    assert_eq!(reply["id"], 301);
}

/// In the stateless era `initialize` (and every other method 2026-07-28 removed) is an unknown
/// method: 404 with -32601 and no session id. A session-era `initialize` still opens one.
#[tokio::test]
async fn initialize_and_other_removed_methods_are_not_found_in_the_stateless_era() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api)).start();
    for method in ["initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"] {
        let mut params = json!({"_meta": meta_with_version("2026-07-28")});
        if method == "initialize" {
            params["protocolVersion"] = json!("2026-07-28");
            params["capabilities"] = json!({});
            params["clientInfo"] = json!({"name": "raw", "version": "1"});
        }
        let body = modern_request(500, method, &params);
        let headers: Vec<(&str, String)> = modern(method);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let (status, response_headers, reply) = post(&edge, READER, &headers, &body).await;
        assert_eq!((status, reply["error"]["code"].as_i64()), (404, Some(-32601)), "{method}: {reply}");
        assert_eq!(reply["id"], 500);
        assert!(response_headers.get("mcp-session-id").is_none(), "{method} opened a session");
    }
    initialize(&edge, READER).await;
}

/// A `tools/call` request body.
fn call(name: &str, arguments: &Value) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}})
        .to_string()
}

#[tokio::test]
async fn upstream_errors_traversal_and_scopes() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api)).start();
    let session = initialize(&edge, READER).await;
    let headers = [("mcp-session-id", session.as_str())];

    let (_, _, reply) = post(&edge, READER, &headers, &call("fail_with", &json!({"code": "404"}))).await;
    assert_eq!(reply["result"]["isError"], true);
    assert_eq!(reply["result"]["content"][0]["text"], "upstream returned 404 Not Found: mock said 404: Not Found");
    let (_, _, reply) = post(&edge, READER, &headers, &call("fail_with", &json!({"code": "500"}))).await;
    assert_eq!(reply["result"]["content"][0]["text"], "the upstream API failed", "5xx detail stays inside");

    let (_, _, reply) =
        post(&edge, READER, &headers, &call("get_shifts", &json!({"companyId": "../../admin?x=1#y"}))).await;
    assert_eq!(
        reply["result"]["structuredContent"]["path"],
        "/api/companies/%2E%2E%2F%2E%2E%2Fadmin%3Fx%3D1%23y/shifts"
    );
    let (_, _, reply) = post(&edge, READER, &headers, &call("get_shifts", &json!({"companyId": ".."}))).await;
    assert_eq!(reply["result"]["isError"], true);

    let (status, response_headers, reply) =
        post(&edge, READER, &headers, &call("delete_company", &json!({"companyId": "1"}))).await;
    assert_eq!(status, 403);
    assert_eq!(
        response_headers["www-authenticate"],
        "Bearer realm=\"mcp-edge\", error=\"insufficient_scope\", scope=\"admin\""
    );
    assert_eq!(reply["error"], "insufficient scope");
    let admin_session = initialize(&edge, ADMIN).await;
    let (status, _, reply) = post(
        &edge,
        ADMIN,
        &[("mcp-session-id", admin_session.as_str())],
        &call("delete_company", &json!({"companyId": "1"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["result"]["structuredContent"]["method"], "DELETE");
}

#[tokio::test]
async fn rest_tools_return_the_same_data_with_http_statuses() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api)).start();
    let http = client(Protocol::Http1);
    let listed: Value = http
        .get(edge.https_url("/api/tools"))
        .bearer_auth(READER)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let session = initialize(&edge, READER).await;
    let (_, _, mcp_list) = post(
        &edge,
        READER,
        &[("mcp-session-id", session.as_str())],
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
    )
    .await;
    assert_eq!(listed["tools"], mcp_list["result"]["tools"], "REST and MCP list the same Tool objects");

    let rest = |name: &str, body: &str| {
        http.post(edge.https_url(&format!("/api/tools/{name}")))
            .bearer_auth(READER)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let response = rest("get_shifts", r#"{"companyId":"42"}"#).await.expect("POST");
    assert_eq!(response.status(), 200);
    let rest_result: Value = response.json().await.expect("json");
    let (_, _, mcp_result) = post(
        &edge,
        READER,
        &[("mcp-session-id", session.as_str())],
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_shifts","arguments":{"companyId":"42"}}}"#,
    )
    .await;
    let strip = |mut value: Value| {
        value["structuredContent"]["headers"] = Value::Null;
        value["content"] = Value::Null;
        value
    };
    assert_eq!(strip(rest_result), strip(mcp_result["result"].clone()), "REST and MCP return the same result");

    for RestCase { tool, body, status } in [
        RestCase { tool: "fail_with", body: r#"{"code":"404"}"#, status: 404 },
        RestCase { tool: "fail_with", body: r#"{"code":"409"}"#, status: 409 },
        RestCase { tool: "fail_with", body: r#"{"code":"503"}"#, status: 502 },
        RestCase { tool: "create_shift", body: r#"{"companyId":"1"}"#, status: 400 },
        RestCase { tool: "create_shift", body: "[1,2]", status: 400 },
        RestCase { tool: "no_such_tool", body: "{}", status: 404 },
        RestCase { tool: "delete_company", body: r#"{"companyId":"1"}"#, status: 403 },
        // The mock's echo has no `count`: a reply that breaks the output schema is not passed on.
        RestCase { tool: "typed_reply", body: "{}", status: 502 },
    ] {
        let response = rest(tool, body).await.expect("POST");
        assert_eq!(response.status().as_u16(), status, "{tool} {body}");
    }
    let response = http.get(edge.https_url("/api/tools/get_shifts")).bearer_auth(READER).send().await.expect("GET");
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn unreachable_and_slow_upstreams_are_502_and_504() {
    let api = MockApi::new()
        .any("/slow", Reply::json(json!({"slept_ms": 3000})).delay(std::time::Duration::from_secs(3)))
        .start()
        .await;
    let policy = json!({
        "auth": {"mode": "none"},
        "upstream": {"base_url": api.url(), "timeout": "1s", "try_timeout": "500ms"},
        "tools": [
            {"name": "slow", "path": "/slow", "input_schema": {"type": "object", "properties": {"ms": {"type": "integer"}}}},
        ],
    });
    let edge = TestEdge::new(policy).start();
    let http = client(Protocol::Http1);
    let response = http.post(edge.https_url("/api/tools/slow")).body(r#"{"ms": 3000}"#).send().await.expect("POST");
    assert_eq!(response.status(), 504);
    let down = TestEdge::new(json!({
        "auth": {"mode": "none"},
        "upstream": {"base_url": "http://127.0.0.1:1"},
        "tools": [{"name": "any", "path": "/x", "input_schema": {"type": "object"}}],
    }))
    .start();
    let response = http.post(down.https_url("/api/tools/any")).body("{}").send().await.expect("POST");
    assert_eq!(response.status(), 502);
    let result: Value = response.json().await.expect("json");
    assert_eq!(result["isError"], true);
    assert_eq!(result["content"][0]["text"], "the upstream API failed");
}

/// DESIGN §15 (mass assignment): arguments the tool's schema does not declare never reach the
/// API, over MCP and REST, for bodies and query strings alike.
#[tokio::test]
async fn undeclared_arguments_are_refused_and_never_reach_the_api() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api)).start();
    let session = initialize(&edge, READER).await;
    let headers = [("mcp-session-id", session.as_str())];
    let before = api.request_count();
    let (status, _, reply) = post(
        &edge,
        READER,
        &headers,
        &call("create_shift", &json!({"companyId": "42", "employeeId": "e-1", "approved": true, "role": "admin"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["result"]["isError"], true);
    let text = reply["result"]["content"][0]["text"].as_str().expect("text");
    assert!(text.contains(r#""approved""#) && text.contains(r#""role""#), "names each argument: {text}");
    let (_, _, reply) =
        post(&edge, READER, &headers, &call("get_shifts", &json!({"companyId": "42", "includeDeleted": "true"}))).await;
    assert_eq!(reply["result"]["isError"], true, "{reply}");

    let response = client(Protocol::Http1)
        .post(edge.https_url("/api/tools/create_shift"))
        .bearer_auth(READER)
        .header("content-type", "application/json")
        .body(r#"{"companyId":"42","employeeId":"e-1","approved":true}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 400);
    assert_eq!(api.request_count(), before, "the API was never called");

    let (_, _, reply) =
        post(&edge, READER, &headers, &call("create_shift", &json!({"companyId": "42", "employeeId": "e-1"}))).await;
    assert_eq!(reply["result"]["isError"], false, "declared arguments still work: {reply}");
    assert!(reply["result"]["structuredContent"]["body"].get("approved").is_none());
}

/// DESIGN §15: `\` (a separator to HTTP.sys/IIS) and control characters are refused in path
/// variables.
#[tokio::test]
async fn backslashes_and_control_characters_in_path_variables_are_refused() {
    let api = api().await;
    let edge = TestEdge::new(policy(&api)).start();
    let session = initialize(&edge, READER).await;
    let headers = [("mcp-session-id", session.as_str())];
    let before = api.request_count();
    for company in ["..\\..\\admin", "a\\b", "a\u{0}b", "a\r\nX-Injected: 1"] {
        let (_, _, reply) = post(&edge, READER, &headers, &call("get_shifts", &json!({"companyId": company}))).await;
        assert_eq!(reply["result"]["isError"], true, "{company:?}: {reply}");
        let text = reply["result"]["content"][0]["text"].as_str().expect("text");
        assert!(text.contains("companyId"), "{text}");
    }
    assert_eq!(api.request_count(), before, "the API was never called");
}
