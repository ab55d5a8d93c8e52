//! Tools imported from OpenAPI documents (DESIGN.md §18), end to end: real public documents
//! (tests/fixtures/openapi/README.md) become the expected tools with flat schemas, and a
//! `tools/call` through the rmcp client reaches the right method, path, query, headers and
//! body on the mock API; overrides, include/exclude, hand-written tools winning, documents
//! refused at `validate` with located errors, paging through a 1 000-operation catalogue,
//! reload, a document fetched from a URL, and `mcp-edge tools --json`.

use std::process::Command;
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::support::edge::{BINARY, TestEdge};
use crate::support::mock_api::{MockApi, Reply};
use crate::support::repo_root;
use crate::support::tls_client::{Protocol, client};

const READER: &str = "reader-token-00001";
const ADMIN: &str = "admin-token-000001";

type Client = rmcp::service::RunningService<rmcp::RoleClient, ()>;

fn fixture(name: &str) -> String {
    repo_root().join("tests/fixtures/openapi").join(name).display().to_string()
}

/// Bearer auth (a reader without scopes, an admin with `pets:write`), the API behind
/// `/api`, and these `openapi` entries.
fn policy(api: &MockApi, openapi: Value) -> Value {
    let mut policy = json!({
        "auth": {"mode": "bearer", "bearer": {"tokens": [
            {"id": "reader", "value": READER},
            {"id": "admin", "value": ADMIN, "scopes": ["pets:write"]},
        ]}},
        "rate_limit": {"requests_per_minute": 60000, "burst": 5000},
        "upstream": {"base_url": format!("{}/api", api.url()), "timeout": "3s", "try_timeout": "2s"},
    });
    policy["openapi"] = openapi;
    policy
}

async fn rmcp_client(edge: &TestEdge, token: &str) -> Client {
    let config = StreamableHttpClientTransportConfig::with_uri(edge.https_url("/mcp")).auth_header(token);
    let transport = StreamableHttpClientTransport::with_client(client(Protocol::Http2), config);
    ().serve(transport).await.expect("initialize")
}

async fn tools(client: &Client) -> Vec<rmcp::model::Tool> {
    client.list_all_tools().await.expect("tools/list")
}

fn names(tools: &[rmcp::model::Tool]) -> Vec<String> {
    tools.iter().map(|tool| tool.name.to_string()).collect()
}

fn tool<'a>(tools: &'a [rmcp::model::Tool], name: &str) -> &'a rmcp::model::Tool {
    tools.iter().find(|tool| tool.name == name).unwrap_or_else(|| panic!("no tool {name}"))
}

fn schema(tool: &rmcp::model::Tool) -> Value {
    Value::Object((*tool.input_schema).clone())
}

fn property_names(schema: &Value) -> Vec<String> {
    let mut names: Vec<String> = schema["properties"].as_object().expect("properties").keys().cloned().collect();
    names.sort();
    names
}

async fn call(client: &Client, name: &str, arguments: Value) -> rmcp::model::CallToolResult {
    let params =
        CallToolRequestParams::new(name.to_string()).with_arguments(arguments.as_object().expect("object").clone());
    client.call_tool(params).await.expect("tools/call")
}

/// What the mock saw last, with the body parsed as JSON when it is JSON.
fn last(api: &MockApi) -> Value {
    let mut seen = api.last_request().expect("a request reached the API");
    let body = seen["body"].as_str().unwrap_or_default().to_string();
    if let Ok(parsed) = serde_json::from_str::<Value>(&body) {
        seen["json"] = parsed;
    }
    seen
}

fn pet(id: i64) -> Value {
    json!({"id": id, "name": "doggie", "photoUrls": ["https://example.test/1.jpg"], "status": "available"})
}

#[tokio::test]
async fn the_swagger_2_petstore_becomes_flat_tools_that_reach_the_api() {
    let api = MockApi::new()
        .route(http::Method::GET, "/v2/pet/findByStatus", Reply::json(json!([pet(1)])))
        .route(http::Method::PUT, "/v2/user/alice", Reply::json(json!({})))
        .fallback(Reply::json(json!({})))
        .start()
        .await;
    let edge = TestEdge::new(policy(&api, json!([{"file": fixture("petstore-2.0.json")}]))).start();
    let client = rmcp_client(&edge, READER).await;
    let tools = tools(&client).await;
    assert_eq!(
        names(&tools),
        [
            "updatePet",
            "addPet",
            "findPetsByStatus",
            "findPetsByTags",
            "getPetById",
            "updatePetWithForm",
            "deletePet",
            "getInventory",
            "placeOrder",
            "getOrderById",
            "deleteOrder",
            "createUser",
            "createUsersWithArrayInput",
            "createUsersWithListInput",
            "loginUser",
            "logoutUser",
            "getUserByName",
            "updateUser",
            "deleteUser",
        ],
        "uploadFile (multipart) is not imported"
    );
    let update_user = schema(tool(&tools, "updateUser"));
    assert_eq!(
        property_names(&update_user),
        ["body_username", "email", "firstName", "id", "lastName", "password", "phone", "userStatus", "username"],
        "flat: the body's username clashes with the path's and is prefixed"
    );
    assert_eq!(update_user["required"], json!(["username"]));
    assert_eq!(tool(&tools, "getPetById").annotations.as_ref().and_then(|a| a.read_only_hint), Some(true));
    assert_eq!(tool(&tools, "deletePet").annotations.as_ref().and_then(|a| a.destructive_hint), Some(true));
    let by_status = tool(&tools, "findPetsByStatus");
    let output = Value::Object((**by_status.output_schema.as_ref().expect("outputSchema")).clone());
    assert_eq!(output["properties"]["result"]["type"], "array", "an array reply is wrapped as result: {output}");

    // collectionFormat: multi → repeated keys; basePath /v2 on the upstream's origin.
    let result = call(&client, "findPetsByStatus", json!({"status": ["available", "sold"]})).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(result.structured_content, Some(json!({"result": [pet(1)]})));
    let seen = last(&api);
    assert_eq!((seen["method"].as_str(), seen["path"].as_str()), (Some("GET"), Some("/v2/pet/findByStatus")));
    assert_eq!(seen["query"], "status=available&status=sold");

    let result =
        call(&client, "updateUser", json!({"username": "alice", "body_username": "alice2", "email": "a@example.test"}))
            .await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let seen = last(&api);
    assert_eq!((seen["method"].as_str(), seen["path"].as_str()), (Some("PUT"), Some("/v2/user/alice")));
    assert_eq!(seen["json"], json!({"username": "alice2", "email": "a@example.test"}));
    assert_eq!(seen["headers"]["content-type"], "application/json");

    // formData → a form body; a header parameter → a header.
    let result = call(&client, "updatePetWithForm", json!({"petId": "7", "name": "rex", "status": "sold"})).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let seen = last(&api);
    assert_eq!((seen["method"].as_str(), seen["path"].as_str()), (Some("POST"), Some("/v2/pet/7")));
    assert_eq!(seen["body"], "name=rex&status=sold");
    assert_eq!(seen["headers"]["content-type"], "application/x-www-form-urlencoded");
    call(&client, "deletePet", json!({"petId": 7, "api_key": "k-123"})).await;
    let seen = last(&api);
    assert_eq!((seen["method"].as_str(), seen["path"].as_str()), (Some("DELETE"), Some("/v2/pet/7")));
    assert_eq!(seen["headers"]["api_key"], "k-123");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn the_openapi_3_0_petstore_joins_its_server_path_to_the_upstream_origin() {
    let api = MockApi::new()
        .route(http::Method::POST, "/api/v3/pet", Reply::json(pet(10)))
        .route(http::Method::GET, "/api/v3/pet/findByTags", Reply::json(json!([])))
        .fallback(Reply::problem(404))
        .start()
        .await;
    let edge = TestEdge::new(policy(&api, json!([{"file": fixture("petstore-3.0.yaml")}]))).start();
    let client = rmcp_client(&edge, READER).await;
    let tools = tools(&client).await;
    assert_eq!(
        names(&tools),
        [
            "updatePet",
            "addPet",
            "findPetsByStatus",
            "findPetsByTags",
            "getPetById",
            "updatePetWithForm",
            "deletePet",
            "uploadFile",
            "getInventory",
            "placeOrder",
            "getOrderById",
            "deleteOrder",
            "createUser",
            "createUsersWithListInput",
            "loginUser",
            "logoutUser",
            "getUserByName",
            "updateUser",
            "deleteUser",
        ]
    );
    let add_pet = tool(&tools, "addPet");
    assert_eq!(
        add_pet.description.as_deref(),
        Some("Add a new pet to the store."),
        "summary and description are equal"
    );
    let input = schema(add_pet);
    assert_eq!(property_names(&input), ["category", "id", "name", "photoUrls", "status", "tags"]);
    assert_eq!(input["required"], json!(["name", "photoUrls"]));
    assert_eq!(input["properties"]["category"]["properties"]["name"]["type"], "string", "refs inlined: {input}");
    assert!(!input.to_string().contains("$ref"), "no refs left: {input}");
    let upload = schema(tool(&tools, "uploadFile"));
    assert_eq!(upload["properties"]["body"]["contentEncoding"], "base64", "a binary body is one base64 argument");

    let arguments =
        json!({"name": "doggie", "photoUrls": ["https://example.test/1.jpg"], "category": {"id": 1, "name": "Dogs"}});
    let result = call(&client, "addPet", arguments).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(result.structured_content, Some(pet(10)));
    let seen = last(&api);
    // servers[0] is https://petstore3.swagger.io/api/v3: its path, never its host.
    assert_eq!((seen["method"].as_str(), seen["path"].as_str()), (Some("POST"), Some("/api/v3/pet")));
    assert_eq!(
        seen["json"],
        json!({"name": "doggie", "photoUrls": ["https://example.test/1.jpg"], "category": {"id": 1, "name": "Dogs"}})
    );

    let result = call(&client, "findPetsByTags", json!({"tags": ["a", "b c"]})).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(last(&api)["query"], "tags=a&tags=b+c");
    let refused = call(&client, "addPet", json!({"name": "x", "photoUrls": [], "owner": "mallory"})).await;
    assert_eq!(refused.is_error, Some(true), "undeclared arguments are refused (§15)");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn the_openapi_3_1_petstore_imports_with_its_id_refs_and_headers() {
    let api = MockApi::new().fallback(Reply::json(pet(3))).start().await;
    let edge = TestEdge::new(policy(&api, json!([{"file": fixture("petstore-3.1.yaml")}]))).start();
    let client = rmcp_client(&edge, READER).await;
    let tools = tools(&client).await;
    assert_eq!(names(&tools), ["updatePet", "addPet", "findPetsByStatus", "findPetsByTags", "getPetById", "deletePet"]);
    let update = schema(tool(&tools, "updatePet"));
    assert_eq!(update["required"], json!(["id", "name", "photoUrls"]), "3.1 $ref siblings apply: {update}");
    assert_eq!(update["properties"]["petDetailsId"]["type"], "integer", "a $id#anchor ref resolves: {update}");

    let result = call(&client, "getPetById", json!({"petId": 3})).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let seen = last(&api);
    assert_eq!((seen["method"].as_str(), seen["path"].as_str()), (Some("GET"), Some("/api/v31/pet/3")));
    call(&client, "deletePet", json!({"petId": 3, "api_key": "secret-key"})).await;
    let seen = last(&api);
    assert_eq!((seen["method"].as_str(), seen["path"].as_str()), (Some("DELETE"), Some("/api/v31/pet/3")));
    assert_eq!(seen["headers"]["api_key"], "secret-key");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_swashbuckle_document_calls_api_paths_without_doubling_the_base_path() {
    let api = MockApi::new()
        .route(http::Method::POST, "/api/items", Reply::json(json!({"id": "t-1"})).status(201))
        .route(http::Method::GET, "/api/items/find", Reply::json(json!({"items": []})))
        .fallback(Reply::text("").status(204))
        .start()
        .await;
    // upstream.base_url ends in /api and Swashbuckle's paths begin with /api.
    let edge = TestEdge::new(policy(&api, json!([{"file": fixture("swashbuckle-todoapp-3.0.json")}]))).start();
    let client = rmcp_client(&edge, READER).await;
    let tools = tools(&client).await;
    assert_eq!(
        names(&tools),
        [
            "ListTodos",
            "CreateTodo",
            "FindTodo",
            "GetAfterDate",
            "GetTodo",
            "DeleteTodo",
            "CompleteTodo",
            "UpdateTodoPriority"
        ]
    );
    let priority = schema(tool(&tools, "UpdateTodoPriority"));
    assert_eq!(property_names(&priority), ["id", "priority"]);
    assert_eq!(priority["properties"]["priority"]["allOf"][0]["enum"], json!(["Normal", "Low", "High"]));

    let result = call(&client, "CreateTodo", json!({"text": "Buy milk"})).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(result.structured_content, Some(json!({"id": "t-1"})));
    let seen = last(&api);
    assert_eq!((seen["method"].as_str(), seen["path"].as_str()), (Some("POST"), Some("/api/items")));
    assert_eq!(seen["json"], json!({"text": "Buy milk"}));

    let result = call(&client, "FindTodo", json!({"Text": "milk", "IsCompleted": false})).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let seen = last(&api);
    assert_eq!(
        (seen["path"].as_str(), seen["query"].as_str()),
        (Some("/api/items/find"), Some("IsCompleted=false&Text=milk"))
    );

    call(&client, "UpdateTodoPriority", json!({"id": "t-1", "priority": "High"})).await;
    let seen = last(&api);
    assert_eq!((seen["method"].as_str(), seen["path"].as_str()), (Some("PATCH"), Some("/api/items/t-1/priority")));
    assert_eq!(seen["json"], json!({"priority": "High"}));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn overrides_rename_describe_pin_default_and_scope_tools() {
    let api = MockApi::new().fallback(Reply::json(json!({}))).start().await;
    let mut policy = policy(&api, json!([{"file": fixture("petstore-3.0.yaml"), "include": {"tags": ["pet"]}}]));
    policy["tool_overrides"] = json!({
        "deletePet": {
            "name": "delete_pet",
            "description": "Delete one pet (reviewed)",
            "arguments": {"api_key": {"value": "pinned-key"}},
            "scopes": ["pets:write"],
            "rate_limit": {"requests_per_minute": 10, "burst": 2},
        },
        "findPetsByStatus": {"arguments": {"status": {"default": "sold"}}},
    });
    let edge = TestEdge::new(policy).start();
    let reader = rmcp_client(&edge, READER).await;
    let listed = names(&tools(&reader).await);
    assert!(!listed.iter().any(|name| name == "delete_pet" || name == "deletePet"), "scoped away: {listed:?}");
    let status = schema(tool(&tools(&reader).await, "findPetsByStatus"));
    assert_eq!(status["properties"]["status"]["default"], "sold");
    call(&reader, "findPetsByStatus", json!({})).await;
    assert_eq!(last(&api)["query"], "status=sold", "the default is sent when the caller leaves it out");
    reader.cancel().await.expect("close");

    let admin = rmcp_client(&edge, ADMIN).await;
    let tools = tools(&admin).await;
    let delete = tool(&tools, "delete_pet");
    assert_eq!(delete.description.as_deref(), Some("Delete one pet (reviewed)"));
    assert_eq!(property_names(&schema(delete)), ["petId"], "the fixed argument is hidden");
    let result = call(&admin, "delete_pet", json!({"petId": 5})).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let seen = last(&api);
    assert_eq!((seen["method"].as_str(), seen["path"].as_str()), (Some("DELETE"), Some("/api/v3/pet/5")));
    assert_eq!(seen["headers"]["api_key"], "pinned-key", "the fixed value is sent upstream");
    let before = api.request_count();
    let refused = call(&admin, "delete_pet", json!({"petId": 5, "api_key": "callers-key"})).await;
    assert_eq!(refused.is_error, Some(true), "a caller cannot send a fixed argument");
    assert_eq!(api.request_count(), before, "the API is not called");
    admin.cancel().await.expect("close");
}

#[tokio::test]
async fn include_exclude_and_hand_written_tools_shape_the_catalogue() {
    let api = MockApi::new().fallback(Reply::json(json!({"hand": "written"}))).start().await;
    let mut policy = policy(
        &api,
        json!([{
            "file": fixture("petstore-2.0.json"),
            "include": {"tags": ["store"], "operations": ["loginUser"]},
            "exclude": {"operations": ["deleteOrder"]},
            "name_prefix": "shop.",
        }]),
    );
    policy["tools"] = json!([{
        "name": "shop.getInventory",
        "description": "The hand-written inventory",
        "path": "/inventory",
        "input_schema": {"type": "object", "properties": {}},
    }]);
    let edge = TestEdge::new(policy).start();
    let client = rmcp_client(&edge, READER).await;
    let tools = tools(&client).await;
    assert_eq!(names(&tools), ["shop.getInventory", "shop.placeOrder", "shop.getOrderById", "shop.loginUser"]);
    assert_eq!(tool(&tools, "shop.getInventory").description.as_deref(), Some("The hand-written inventory"));
    call(&client, "shop.getInventory", json!({})).await;
    assert_eq!(last(&api)["path"], "/api/inventory", "the hand-written tool serves, joined to base_url as before");
    client.cancel().await.expect("close");
}

/// `mcp-edge validate` on a policy importing `document` (written to a temporary file).
fn validate_document(document: &str, name: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join(name), document).expect("document");
    let policy = format!(
        "listen: {{https: null, http: 127.0.0.1:1, admin: 127.0.0.1:2}}\nauth: {{mode: none}}\nopenapi:\n  - file: {name}\n"
    );
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy).expect("policy");
    let output = Command::new(BINARY).arg("validate").arg("--config").arg(&path).output().expect("validate");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn validate_refuses_external_refs_and_broken_documents_with_located_errors() {
    let external = r##"{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {"/pets": {"get": {
        "operationId": "listPets",
        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "https://schemas.example/pet.json#/Pet"}}}}}}}}}"##;
    let (code, stderr) = validate_document(external, "external.json");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("policy.yaml:4:11: openapi[0].file: external.json at #/paths/~1pets/get/responses/200/content/application~1json/schema/$ref"), "{stderr}");
    assert!(stderr.contains("external references are not supported"), "{stderr}");

    let (code, stderr) = validate_document("{\"openapi\": \"3.0.3\", \"paths\": {", "truncated.json");
    assert_eq!(code, Some(78));
    assert!(stderr.contains("openapi[0].file: truncated.json is not valid JSON"), "{stderr}");

    let undeclared = "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /pets/{petId}:\n    get:\n      operationId: getPet\n      responses: {'200': {description: ok}}\n";
    let (code, stderr) = validate_document(undeclared, "undeclared.yaml");
    assert_eq!(code, Some(78));
    assert!(
        stderr.contains(
            "undeclared.yaml at #/paths/~1pets~1{petId}/get: path variable {petId} has no `in: path` parameter"
        ),
        "{stderr}"
    );

    let collision = r#"{"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {
        "/a": {"get": {"operationId": "same", "responses": {"200": {"description": "ok"}}}},
        "/b": {"get": {"operationId": "same", "responses": {"200": {"description": "ok"}}}}}}"#;
    let (code, stderr) = validate_document(collision, "collision.json");
    assert_eq!(code, Some(78));
    assert!(
        stderr.contains(
            "collision.json at #/paths/~1b/get: tool name \"same\" is also the name of the operation at #/paths/~1a/get"
        ),
        "{stderr}"
    );

    let (code, stderr) = validate_document("openapi: 4.0.0\npaths: {}\n", "future.yaml");
    assert_eq!(code, Some(78));
    assert!(stderr.contains("future.yaml openapi: 4.0.0 is not supported"), "{stderr}");

    let (code, stderr) =
        validate_document(&std::fs::read_to_string(fixture("petstore-3.1.yaml")).expect("fixture"), "p.yaml");
    assert_eq!(code, Some(0), "the real 3.1 petstore validates, with warnings: {stderr}");
    assert!(
        stderr.contains("warning: ") && stderr.contains("#/components/schemas/Pet/properties/petDetails/$ref"),
        "{stderr}"
    );
}

/// A Swagger 2.0 document of `count` operations `op0000`..., each with a path, a query and
/// a body argument.
fn generated_document(count: usize) -> Value {
    let mut paths = serde_json::Map::new();
    for n in 0..count {
        paths.insert(
            format!("/things{n}/{{id}}"),
            json!({"post": {
                "operationId": format!("op{n:04}"),
                "tags": [format!("group{}", n % 10)],
                "summary": format!("Operation {n}"),
                "parameters": [
                    {"name": "id", "in": "path", "required": true, "type": "string"},
                    {"name": "verbose", "in": "query", "type": "boolean"},
                    {"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/Thing"}},
                ],
                "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/Thing"}}},
            }}),
        );
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "generated", "version": "1"},
        "paths": paths,
        "definitions": {"Thing": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "size": {"type": "integer", "minimum": 0}, "tags": {"type": "array", "items": {"type": "string"}},
        }}},
    })
}

#[tokio::test]
async fn a_thousand_operation_catalogue_pages_through_every_tool_exactly_once() {
    let api = MockApi::new().fallback(Reply::json(json!({"name": "n"}))).start().await;
    let dir = tempfile::tempdir().expect("dir");
    let document = dir.path().join("big.json");
    std::fs::write(&document, generated_document(1000).to_string()).expect("document");
    let edge = TestEdge::new(policy(&api, json!([{"file": document.display().to_string()}]))).start();

    // Raw JSON-RPC, stateless era: page by page, counting pages.
    let http = client(Protocol::Http1);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 20, "paging does not end");
        let mut params = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}});
        if let Some(cursor) = &cursor {
            params["cursor"] = json!(cursor);
        }
        let response = http
            .post(edge.https_url("/mcp"))
            .bearer_auth(READER)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/list")
            .body(json!({"jsonrpc": "2.0", "id": pages, "method": "tools/list", "params": params}).to_string())
            .send()
            .await
            .expect("tools/list");
        let body: Value = response.json().await.expect("json");
        let result = &body["result"];
        let tools = result["tools"].as_array().expect("tools");
        assert!(tools.len() <= 100, "mcp.page_size defaults to 100");
        seen.extend(tools.iter().map(|tool| tool["name"].as_str().expect("name").to_string()));
        match result["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 10);
    let expected: Vec<String> = (0..1000).map(|n| format!("op{n:04}")).collect();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "every tool exactly once");

    // The rmcp client follows nextCursor itself; the REST list pages the same way.
    let client_tools = rmcp_client(&edge, READER).await;
    assert_eq!(names(&tools(&client_tools).await), seen, "the same stable order");
    let result = call(&client_tools, "op0999", json!({"id": "x", "verbose": true, "name": "n"})).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(last(&api)["path"], "/things999/x");
    client_tools.cancel().await.expect("close");
    let first: Value = http
        .get(edge.https_url("/api/tools"))
        .bearer_auth(READER)
        .send()
        .await
        .expect("rest")
        .json()
        .await
        .expect("json");
    assert_eq!(first["tools"].as_array().map(Vec::len), Some(100));
    let next = first["nextCursor"].as_str().expect("nextCursor");
    let second: Value = http
        .get(edge.https_url(&format!("/api/tools?cursor={next}")))
        .bearer_auth(READER)
        .send()
        .await
        .expect("rest")
        .json()
        .await
        .expect("json");
    assert_eq!(second["tools"][0]["name"].as_str(), Some(seen[100].as_str()));
    let bad = http.get(edge.https_url("/api/tools?cursor=forged")).bearer_auth(READER).send().await.expect("rest");
    assert_eq!(bad.status(), 400);
}

/// Polls (bounded: 10 s) until `condition` holds.
async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn rest_names(edge: &TestEdge) -> Vec<String> {
    let body: Value = client(Protocol::Http1)
        .get(edge.https_url("/api/tools"))
        .bearer_auth(READER)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    body["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|tool| tool["name"].as_str().expect("name").to_string())
        .collect()
}

#[tokio::test]
async fn a_changed_document_is_reimported_and_an_invalid_one_keeps_the_old_catalogue() {
    let api = MockApi::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let document = dir.path().join("api.json");
    std::fs::write(&document, generated_document(2).to_string()).expect("document");
    let mut policy = policy(&api, json!([{"file": document.display().to_string()}]));
    policy["reload"] = json!({"watch_interval": "200ms"});
    let edge = TestEdge::new(policy).audit_file(None, 1024).start();
    assert_eq!(rest_names(&edge).await, ["op0000", "op0001"]);

    std::fs::write(&document, generated_document(3).to_string()).expect("document");
    eventually("the re-import", async || rest_names(&edge).await.len() == 3).await;

    std::fs::write(
        &document,
        "{\"swagger\": \"2.0\", \"paths\": {\"/x\": {\"get\": {\"parameters\": [{\"$ref\": \"other.json#/p\"}]}}}}",
    )
    .expect("document");
    let events = edge.wait_audit(|events| {
        events.iter().any(|event| event["event.action"] == "CONFIG_RELOAD" && event["event.outcome"] == "failure")
    });
    assert!(events.iter().any(|event| event["event.reason"] == "invalid_config"));
    assert!(edge.stderr().contains("external references are not supported"), "the problem is logged");
    assert_eq!(rest_names(&edge).await, ["op0000", "op0001", "op0002"], "the old catalogue keeps serving");
}

// Multi-threaded: the edge fetches from the mock while `start` blocks this thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_is_fetched_from_the_api_at_load() {
    let document = std::fs::read_to_string(fixture("swashbuckle-todoapp-3.0.json")).expect("fixture");
    let api = MockApi::new()
        .route(
            http::Method::GET,
            "/swagger/v1/swagger.json",
            Reply::text(&document).header("content-type", "application/json"),
        )
        .route(http::Method::GET, "/api/items/t-9", Reply::json(json!({"id": "t-9", "text": "x"})))
        .route(http::Method::GET, "/nothing.json", Reply::problem(404))
        .start()
        .await;
    let entry =
        json!([{"url": format!("{}/swagger/v1/swagger.json", api.url()), "include": {"operations": ["GetTodo"]}}]);
    let edge = TestEdge::new(policy(&api, entry)).start();
    let client = rmcp_client(&edge, READER).await;
    assert_eq!(names(&tools(&client).await), ["GetTodo"]);
    let result = call(&client, "GetTodo", json!({"id": "t-9"})).await;
    assert_eq!(result.structured_content, Some(json!({"id": "t-9", "text": "x"})), "{result:?}");
    client.cancel().await.expect("close");

    let missing = json!([{"url": format!("{}/nothing.json", api.url())}]);
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("policy.yaml");
    let mut policy = policy(&api, missing);
    policy["listen"] = json!({"https": null, "http": "127.0.0.1:1", "admin": "127.0.0.1:2"});
    std::fs::write(&path, crate::support::policy::to_yaml(&policy)).expect("policy");
    let output = Command::new(BINARY).arg("validate").arg("--config").arg(&path).output().expect("validate");
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nothing.json answered 404 Not Found when fetched"), "{stderr}");
}

#[test]
fn the_tools_command_prints_the_catalogue_a_security_team_reviews() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("policy.yaml");
    let policy = json!({
        "listen": {"https": null, "http": "127.0.0.1:1", "admin": "127.0.0.1:2"},
        "auth": {"mode": "none"},
        "upstream": {"base_url": "http://127.0.0.1:5000/api"},
        "openapi": [{"file": fixture("petstore-3.0.yaml"), "include": {"operations": ["deletePet", "getPetById"]}}],
        "tool_overrides": {"deletePet": {"arguments": {"api_key": {"value": "k"}}, "scopes": ["pets:write"]}},
        "tools": [{"name": "get_shifts", "path": "/companies/{companyId}/shifts", "input_schema": {
            "type": "object", "required": ["companyId"], "properties": {"companyId": {"type": "string"}, "from": {"type": "string"}}}}],
    });
    std::fs::write(&path, crate::support::policy::to_yaml(&policy)).expect("policy");
    let output = Command::new(BINARY).args(["tools", "--json", "--config"]).arg(&path).output().expect("tools");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let catalogue: Value = serde_json::from_slice(&output.stdout).expect("json");
    let source = format!("openapi:{}#/paths/~1pet~1{{petId}}/delete", fixture("petstore-3.0.yaml"));
    assert_eq!(
        catalogue,
        json!({"tools": [
            {"name": "get_shifts", "method": "GET", "path": "/api/companies/{companyId}/shifts", "scopes": [], "source": "policy",
             "arguments": [{"name": "companyId", "in": "path", "required": true}, {"name": "from", "in": "query", "required": false}]},
            {"name": "getPetById", "method": "GET", "path": "/api/v3/pet/{petId}", "scopes": [],
             "source": format!("openapi:{}#/paths/~1pet~1{{petId}}/get", fixture("petstore-3.0.yaml")),
             "arguments": [{"name": "petId", "in": "path", "required": true}]},
            {"name": "deletePet", "method": "DELETE", "path": "/api/v3/pet/{petId}", "scopes": ["pets:write"], "source": source,
             "arguments": [{"name": "petId", "in": "path", "required": true}, {"name": "api_key", "in": "header", "required": true, "fixed": true}]},
        ]})
    );
    let text = Command::new(BINARY).args(["tools", "--config"]).arg(&path).output().expect("tools");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("deletePet  DELETE /api/v3/pet/{petId}  scopes: pets:write"), "{text}");
    assert!(text.ends_with("3 tools\n"), "{text}");
}

#[tokio::test]
async fn openapi_base_url_sends_the_calls_to_its_own_origin() {
    let upstream = MockApi::new().fallback(Reply::problem(418)).start().await;
    let other = MockApi::new().fallback(Reply::json(json!({"id": "t-2", "text": "y"}))).start().await;
    let entry = json!([{
        "file": fixture("swashbuckle-todoapp-3.0.json"),
        "base_url": format!("{}/ignored/path", other.url()),
        "include": {"operations": ["GetTodo"]},
    }]);
    let edge = TestEdge::new(policy(&upstream, entry)).start();
    let client = rmcp_client(&edge, READER).await;
    let result = call(&client, "GetTodo", json!({"id": "t-2"})).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(last(&other)["path"], "/api/items/t-2", "the origin of openapi[].base_url, the document's path");
    assert_eq!(upstream.request_count(), 0, "upstream.base_url is not used for these tools");
    client.cancel().await.expect("close");
}
