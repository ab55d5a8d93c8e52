use super::*;

fn tools(document: &Value) -> Vec<Tool> {
    translate(document, &Options::default()).expect("translates").tools
}

fn binding(tool: &Tool, argument: &str) -> ArgumentBinding {
    tool.binding.as_ref().expect("binding").arguments[argument].clone()
}

#[test]
fn names_come_from_operation_ids_or_method_and_path() {
    let document = json!({"openapi": "3.0.3", "paths": {
        "/pet/{petId}": {"get": {"parameters": [{"name": "petId", "in": "path", "required": true, "schema": {"type": "integer"}}], "responses": {}}},
        "/odd": {"post": {"operationId": "Odd Name/v2", "responses": {}}},
    }});
    let tools = tools(&document);
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_str()).collect();
    assert_eq!(names, ["Odd_Name_v2", "get_pet_petId"]);
    let prefixed = translate(
        &json!({"swagger": "2.0", "paths": {"/a": {"get": {"operationId": "a", "responses": {}}}}}),
        &Options { name_prefix: "api.".into(), ..Options::default() },
    )
    .expect("translates");
    assert_eq!(prefixed.tools[0].name, "api.a");
}

#[test]
fn clashing_names_are_prefixed_with_where_they_go() {
    let document = json!({"openapi": "3.1.0", "paths": {"/items/{id}": {"put": {
        "operationId": "put",
        "parameters": [
            {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
            {"name": "id", "in": "query", "schema": {"type": "string"}},
            {"name": "id", "in": "header", "schema": {"type": "string"}},
        ],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
            "type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}}}},
        "responses": {},
    }}}});
    let tool = &tools(&document)[0];
    let properties: Vec<&String> = tool.input_schema["properties"].as_object().expect("object").keys().collect();
    assert_eq!(properties, ["body_id", "header_id", "id", "name", "query_id"]);
    assert_eq!(tool.input_schema["required"], json!(["id", "body_id"]));
    assert_eq!(
        binding(tool, "body_id"),
        ArgumentBinding { wire_name: "id".into(), place: ArgumentPlace::BodyProperty }
    );
    assert_eq!(binding(tool, "header_id").place, ArgumentPlace::Header);
    assert_eq!(tool.input_schema["properties"]["header_id"]["x-mcp-header"], "id", "mirrored as Mcp-Param-id");
    assert!(tool.input_schema["properties"]["query_id"].get("x-mcp-header").is_none());
}

#[test]
fn reserved_headers_never_become_arguments() {
    let document = json!({"openapi": "3.0.3", "paths": {"/a": {"get": {"operationId": "a", "parameters": [
        {"name": "Host", "in": "header", "schema": {"type": "string"}},
        {"name": "Transfer-Encoding", "in": "header", "schema": {"type": "string"}},
        {"name": "Authorization", "in": "header", "schema": {"type": "string"}},
        {"name": "X-Tenant", "in": "header", "schema": {"type": "string"}},
    ], "responses": {}}}}});
    let translation = translate(&document, &Options::default()).expect("translates");
    let properties: Vec<&String> =
        translation.tools[0].input_schema["properties"].as_object().expect("object").keys().collect();
    assert_eq!(properties, ["X-Tenant"]);
    assert_eq!(translation.warnings.len(), 2, "{:?}", translation.warnings);
}

#[test]
fn query_styles_follow_the_document() {
    let parameter = |extra: Value| {
        let mut parameter =
            json!({"name": "q", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}});
        parameter.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        parameter
    };
    let cases = [
        (json!({}), QueryStyle::Repeated),
        (json!({"explode": false}), QueryStyle::Comma),
        (json!({"style": "pipeDelimited"}), QueryStyle::Pipe),
        (json!({"style": "spaceDelimited"}), QueryStyle::Space),
        (json!({"style": "deepObject", "explode": true}), QueryStyle::DeepObject),
    ];
    for (extra, style) in cases {
        assert_eq!(query_style(Version::OpenApi30, &parameter(extra.clone())), style, "{extra}");
    }
    assert_eq!(query_style(Version::Swagger2, &json!({"collectionFormat": "csv"})), QueryStyle::Comma);
    assert_eq!(query_style(Version::Swagger2, &json!({"collectionFormat": "multi"})), QueryStyle::Repeated);
    assert_eq!(query_style(Version::Swagger2, &json!({})), QueryStyle::Repeated, "§18's default");
}

#[test]
fn servers_paths_and_base_paths_prefix_the_operation_path() {
    let document = json!({"openapi": "3.0.3",
        "servers": [{"url": "https://{host}/{base}/", "variables": {"host": {"default": "api.example"}, "base": {"default": "v2"}}}],
        "paths": {"/a": {"get": {"operationId": "a", "responses": {}},
                         "post": {"operationId": "b", "servers": [{"url": "/other"}], "responses": {}}}}});
    let found = tools(&document);
    assert_eq!(found[0].path.to_string(), "/v2/a");
    assert_eq!(found[1].path.to_string(), "/other/a", "an operation's servers win");
    let swagger = tools(
        &json!({"swagger": "2.0", "basePath": "/api/", "paths": {"/a": {"get": {"operationId": "a", "responses": {}}}}}),
    );
    assert_eq!(swagger[0].path.to_string(), "/api/a");
}

#[test]
fn output_schemas_wrap_what_is_not_an_object() {
    let document = json!({"openapi": "3.0.3", "paths": {
        "/list": {"get": {"operationId": "list", "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "string"}}}}}}}},
        "/one": {"get": {"operationId": "one", "responses": {"204": {"description": "none"}, "201": {"description": "ok", "content": {"application/json": {"schema": {"type": "object", "properties": {"id": {"type": "string"}}}}}}}}},
        "/text": {"get": {"operationId": "text", "responses": {"200": {"description": "ok", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    }});
    let tools = tools(&document);
    let output = |name: &str| tools.iter().find(|tool| tool.name == name).expect("tool").output_schema.clone();
    assert_eq!(
        output("list"),
        Some(
            json!({"type": "object", "properties": {"result": {"type": "array", "items": {"type": "string"}}}, "required": ["result"]})
        )
    );
    assert_eq!(output("one"), Some(json!({"type": "object", "properties": {"id": {"type": "string"}}})));
    assert_eq!(output("text"), None);
}

#[test]
fn include_and_exclude_select_by_tag_and_operation() {
    let document = json!({"openapi": "3.0.3", "paths": {
        "/a": {"get": {"operationId": "a", "tags": ["x"], "responses": {}}, "delete": {"operationId": "d", "tags": ["x"], "responses": {}}},
        "/b": {"get": {"operationId": "b", "tags": ["y"], "responses": {}}},
        "/c": {"get": {"operationId": "c", "responses": {}}},
    }});
    let options = Options {
        include: Some(Selection { tags: vec!["x".into()], operations: vec!["c".into(), "typo".into()] }),
        exclude: Some(Selection { tags: vec![], operations: vec!["d".into()] }),
        ..Options::default()
    };
    let translation = translate(&document, &options).expect("translates");
    let names: Vec<&str> = translation.tools.iter().map(|tool| tool.name.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
    assert!(
        translation.warnings.iter().any(|warning| warning.message.contains("\"typo\"")),
        "{:?}",
        translation.warnings
    );
}
