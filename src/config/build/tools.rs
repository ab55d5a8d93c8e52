//! The tool catalogue: names, methods, path templates and JSON Schemas, checked at load so a
//! tool that could never be called correctly stops the edge from starting.

use super::*;
use crate::config::PathTemplate;

impl Builder<'_> {
    pub(super) fn build_tools(&mut self, raw: Vec<RawTool>) -> Vec<Tool> {
        let mut names = HashSet::new();
        raw.into_iter().filter_map(|raw_tool| self.build_tool(raw_tool, &mut names)).collect()
    }

    /// One tool, or `None` when it has no usable path (every other problem is recorded and
    /// the tool still built, so the later checks run).
    fn build_tool(&mut self, raw_tool: RawTool, names: &mut HashSet<String>) -> Option<Tool> {
        let name = raw_tool.name.value.clone();
        if !is_tool_name(&name) {
            self.at(
                &raw_tool.name,
                "tools.name",
                format!("{name:?} is not a tool name; use 1 to 128 of A-Z a-z 0-9 _ . -"),
            );
        } else if !names.insert(name.clone()) {
            self.at(&raw_tool.name, "tools.name", format!("{name:?} is declared twice"));
        }
        let key = format!("tools[{name}]");
        let method = self.tool_method(&raw_tool, &key);
        let input_schema = raw_tool.input_schema.clone().unwrap_or_else(|| serde_json::json!({"type": "object"}));
        self.check_schema(&raw_tool, &format!("{key}.input_schema"), &input_schema, true);
        if let Some(output_schema) = &raw_tool.output_schema {
            self.check_schema(&raw_tool, &format!("{key}.output_schema"), output_schema, false);
        }
        let path = self.tool_path(&raw_tool, &key, &input_schema);
        self.check_tool_arguments(&raw_tool, &key, &input_schema);
        let idempotent = raw_tool.idempotent.unwrap_or(matches!(
            method,
            http::Method::GET | http::Method::HEAD | http::Method::PUT | http::Method::DELETE
        ));
        Some(Tool {
            name,
            description: raw_tool.description.unwrap_or_default(),
            method,
            path: path?,
            input_schema,
            output_schema: raw_tool.output_schema,
            idempotent,
            scopes: raw_tool.scopes,
            query: raw_tool.query,
            body: raw_tool.body,
            headers: raw_tool.headers.unwrap_or_default(),
            binding: None,
            fixed: serde_json::Map::new(),
            defaults: serde_json::Map::new(),
            rate_limit: raw_tool.rate_limit.as_ref().map(|raw| self.tool_quota(&key, raw)),
            source: ToolSource::Policy,
        })
    }

    /// `tools[].rate_limit`: `requests_per_minute` is required, `burst` defaults to 0.
    pub(super) fn tool_quota(&mut self, key: &str, raw: &Located<RawToolRateLimit>) -> Quota {
        let key = format!("{key}.rate_limit");
        if raw.value.requests_per_minute.is_none() {
            self.at(raw, &format!("{key}.requests_per_minute"), "is required");
        }
        let requests_per_minute =
            self.number(&format!("{key}.requests_per_minute"), &raw.value.requests_per_minute, 60, (1, 6_000_000));
        Quota {
            requests_per_minute: NonZeroU32::new(requests_per_minute).unwrap_or(NonZeroU32::MIN),
            burst: self.number(&format!("{key}.burst"), &raw.value.burst, 0, (0, 1_000_000)),
        }
    }

    /// The tool's `path`, each of whose variables must be a required property of the input.
    fn tool_path(&mut self, raw_tool: &RawTool, key: &str, input_schema: &serde_json::Value) -> Option<PathTemplate> {
        let Some(located) = &raw_tool.path else {
            self.at(
                &raw_tool.name,
                &format!("{key}.path"),
                "is missing; set the upstream path, e.g. /companies/{companyId}/shifts",
            );
            return None;
        };
        let template = match PathTemplate::parse(&located.value) {
            Ok(template) => template,
            Err(message) => {
                self.at(located, &format!("{key}.path"), message);
                return None;
            }
        };
        let properties = schema_properties(input_schema);
        let required: Vec<&str> = input_schema
            .get("required")
            .and_then(serde_json::Value::as_array)
            .map(|list| list.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        for variable in template.variables() {
            if !properties.iter().any(|property| property == variable) || !required.contains(&variable) {
                self.at(
                    located,
                    &format!("{key}.path"),
                    format!("{{{variable}}} must be a property of input_schema listed in its required"),
                );
            }
        }
        Some(template)
    }

    /// `query` and `body` name properties of the input; `headers` are valid header lines.
    fn check_tool_arguments(&mut self, raw_tool: &RawTool, key: &str, input_schema: &serde_json::Value) {
        let properties = schema_properties(input_schema);
        for (list_name, list) in [("query", &raw_tool.query), ("body", &raw_tool.body)] {
            for argument in list.iter().flatten() {
                if !properties.contains(argument) {
                    self.at(
                        &raw_tool.name,
                        &format!("{key}.{list_name}"),
                        format!("{argument:?} is not a property of input_schema"),
                    );
                }
            }
        }
        for (header, value) in raw_tool.headers.iter().flatten() {
            if http::HeaderName::from_bytes(header.as_bytes()).is_err() || http::HeaderValue::from_str(value).is_err() {
                self.at(&raw_tool.name, &format!("{key}.headers"), format!("{header:?} is not a valid header"));
            }
        }
    }

    /// With credential sessions on, `validate_settings` re-checks the calling session's
    /// credentials (POST `{apiUrl}{validate_path}`), unless the policy declares its own.
    /// Session-mode upstream auth needs sessions.
    pub(super) fn with_builtin_tools(
        &mut self,
        mut tools: Vec<Tool>,
        sessions: &Sessions,
        upstream: &Upstream,
    ) -> Vec<Tool> {
        if upstream.auth == UpstreamAuth::Session && !sessions.enabled {
            self.problem(
                Source::Document,
                "upstream.auth.mode",
                "session needs credential sessions: set sessions.enabled: true",
            );
        }
        if sessions.enabled && !tools.iter().any(|tool| tool.name == "validate_settings") {
            match PathTemplate::parse(&sessions.validate_path) {
                Ok(path) => tools.push(Tool {
                    name: "validate_settings".to_string(),
                    description: "Check that the API accepts the credentials of this session".to_string(),
                    method: http::Method::POST,
                    path,
                    input_schema: serde_json::json!({"type": "object", "properties": {}}),
                    output_schema: None,
                    idempotent: true,
                    scopes: Vec::new(),
                    query: None,
                    body: None,
                    headers: std::collections::BTreeMap::new(),
                    binding: None,
                    fixed: serde_json::Map::new(),
                    defaults: serde_json::Map::new(),
                    rate_limit: None,
                    source: ToolSource::Builtin,
                }),
                Err(message) => self.problem(Source::Document, "sessions.validate_path", message),
            }
        }
        tools
    }

    fn tool_method(&mut self, raw_tool: &RawTool, key: &str) -> http::Method {
        let Some(located) = &raw_tool.method else { return http::Method::GET };
        match located.value.to_ascii_uppercase().as_str() {
            "GET" => http::Method::GET,
            "POST" => http::Method::POST,
            "PUT" => http::Method::PUT,
            "PATCH" => http::Method::PATCH,
            "DELETE" => http::Method::DELETE,
            "HEAD" => http::Method::HEAD,
            other => {
                self.at(
                    located,
                    &format!("{key}.method"),
                    format!("{other:?} is not allowed; use GET, POST, PUT, PATCH, DELETE or HEAD"),
                );
                http::Method::GET
            }
        }
    }

    /// A JSON Schema 2020-12 that compiles; input schemas must describe an object.
    fn check_schema(&mut self, raw_tool: &RawTool, key: &str, schema: &serde_json::Value, input: bool) {
        if input && schema.get("type").and_then(serde_json::Value::as_str) != Some("object") {
            self.at(&raw_tool.name, key, "must be a JSON Schema with type: object (tool arguments are an object)");
            return;
        }
        if let Err(error) = jsonschema::draft202012::new(schema) {
            self.at(&raw_tool.name, key, format!("is not a valid JSON Schema 2020-12: {error}"));
        }
    }
}

/// The property names an input schema declares at its top level.
fn schema_properties(input_schema: &serde_json::Value) -> Vec<String> {
    input_schema
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default()
}
