//! One tool per operation (DESIGN.md §18): its name, description, one flat object of
//! arguments with where each goes, the output schema, and where the call is sent.
//!
//! Arguments are flat because models call nested `{path: {...}, query: {...}, body: ...}`
//! shapes wrongly: path, query and header parameters and the properties of an object body
//! (through `allOf`) are the properties of one object schema, in that order; a later name
//! that clashes with an earlier one is prefixed with where it goes (`body_id`, `header_id`,
//! `query_id`). A body that is not an object (an array, a scalar, bytes) is one argument
//! `body`. Swagger 2.0 `formData` and 3.x `application/x-www-form-urlencoded` bodies are
//! sent as forms; multipart and XML-only bodies are not imported (a warning names the
//! operation), as no flat argument list describes them well.
//!
//! The document's `security` requirements do not become scopes: the edge's own `auth` and
//! `tool_overrides.*.scopes` decide who may call, and `upstream.auth` what the API is sent.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value, json};
use url::Url;

use super::document::Version;
use super::refs::Resolver;
use super::{Problem, push_pointer};
use crate::config::runtime::{ArgumentBinding, ArgumentPlace, Binding, BodyFormat, QueryStyle, Tool, ToolSource};
use crate::config::template::PathTemplate;

/// Operations by tag and by `operationId` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub tags: Vec<String>,
    pub operations: Vec<String>,
}

impl Selection {
    fn matches(&self, operation_id: Option<&str>, tags: &[String]) -> bool {
        operation_id.is_some_and(|id| self.operations.iter().any(|name| name == id))
            || tags.iter().any(|tag| self.tags.contains(tag))
    }
}

/// How one `openapi:` entry is imported.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The document as the policy names it (path or URL), for `source` and messages.
    pub label: String,
    pub name_prefix: String,
    pub include: Option<Selection>,
    pub exclude: Option<Selection>,
    /// `openapi[].base_url`'s origin, when given.
    pub origin: Option<Url>,
}

/// The tools of one document and what an operator should know about it.
#[derive(Debug, Default)]
pub struct Translation {
    pub tools: Vec<Tool>,
    pub warnings: Vec<Problem>,
}

/// Header parameters a caller may not set: message framing, routing, hop-by-hop headers, and
/// those the edge sets on every call.
const RESERVED_HEADERS: [&str; 16] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "proxy-authorization",
    "proxy-connection",
    "cookie",
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-session-id",
];

/// HTTP methods an operation may have, in the order their tools are listed.
const METHODS: [(&str, http::Method); 6] = [
    ("get", http::Method::GET),
    ("put", http::Method::PUT),
    ("post", http::Method::POST),
    ("delete", http::Method::DELETE),
    ("patch", http::Method::PATCH),
    ("head", http::Method::HEAD),
];

/// Every tool of `document`, or every problem that stops it from being imported.
pub fn translate(document: &Value, options: &Options) -> Result<Translation, Vec<Problem>> {
    let version = super::document::version(document).map_err(|message| vec![Problem::new("", message)])?;
    let resolver = Resolver::new(document);
    let mut translation = Translation::default();
    let mut problems = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut selected_ids = HashSet::new();
    let mut seen_tags = HashSet::new();
    let Some(paths) = document.get("paths").and_then(Value::as_object) else {
        translation.warnings.push(Problem::new("/paths", "the document has no paths: no tools"));
        return Ok(translation);
    };
    let context = Context { document, version, resolver: &resolver, options };
    for (path, item) in paths {
        let item_pointer = push_pointer("/paths", path);
        let item = match resolver.follow(item, &item_pointer) {
            Ok((item, _)) => item,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        for (key, _) in item.as_object().into_iter().flatten() {
            if matches!(key.as_str(), "options" | "trace") {
                translation.warnings.push(Problem::new(
                    push_pointer(&item_pointer, key),
                    format!("{} operations are not imported", key.to_ascii_uppercase()),
                ));
            }
        }
        for (key, method) in METHODS {
            let Some(operation) = item.get(key) else { continue };
            let pointer = push_pointer(&item_pointer, key);
            let operation_id = operation.get("operationId").and_then(Value::as_str);
            let tags: Vec<String> = operation
                .get("tags")
                .and_then(Value::as_array)
                .map(|tags| tags.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            seen_tags.extend(tags.iter().cloned());
            selected_ids.extend(operation_id.map(str::to_string));
            let included = options.include.as_ref().is_none_or(|include| include.matches(operation_id, &tags));
            let excluded = options.exclude.as_ref().is_some_and(|exclude| exclude.matches(operation_id, &tags));
            if !included || excluded {
                continue;
            }
            let request = OperationRef { path, method: method.clone(), item, operation, pointer: pointer.clone() };
            match context.tool(&request) {
                Ok(Outcome::Tool(tool)) => match names.get(&tool.name) {
                    Some(first) => problems.push(Problem::new(
                        &pointer,
                        format!("tool name {:?} is also the name of the operation at #{first}; exclude one or rename it with tool_overrides", tool.name),
                    )),
                    None => {
                        names.insert(tool.name.clone(), pointer);
                        translation.tools.push(*tool);
                    }
                },
                Ok(Outcome::Skipped(warning)) => translation.warnings.push(warning),
                Err(problem) => problems.push(problem),
            }
        }
    }
    for (selection, key) in [(&options.include, "include"), (&options.exclude, "exclude")] {
        let Some(selection) = selection else { continue };
        for name in selection.operations.iter().filter(|name| !selected_ids.contains(*name)) {
            translation
                .warnings
                .push(Problem::new("", format!("{key}.operations: no operation has operationId {name:?}")));
        }
        for tag in selection.tags.iter().filter(|tag| !seen_tags.contains(*tag)) {
            translation.warnings.push(Problem::new("", format!("{key}.tags: no operation has the tag {tag:?}")));
        }
    }
    // A schema shared by many operations is resolved once per use: say each thing once.
    let mut said = HashSet::new();
    translation.warnings.extend(resolver.take_warnings().into_iter().filter(|warning| said.insert(warning.clone())));
    if problems.is_empty() { Ok(translation) } else { Err(problems) }
}

/// What one operation becomes.
enum Outcome {
    Tool(Box<Tool>),
    /// Not imported, and why.
    Skipped(Problem),
}

struct OperationRef<'d> {
    path: &'d str,
    method: http::Method,
    item: &'d Value,
    operation: &'d Value,
    pointer: String,
}

struct Context<'d> {
    document: &'d Value,
    version: Version,
    resolver: &'d Resolver<'d>,
    options: &'d Options,
}

/// The flat argument object being assembled.
#[derive(Default)]
struct Arguments {
    properties: Map<String, Value>,
    required: Vec<String>,
    bindings: BTreeMap<String, ArgumentBinding>,
}

impl Arguments {
    /// Adds an argument named `wire_name`, or `{prefix}_{wire_name}` when that is taken.
    fn add(
        &mut self,
        wire_name: &str,
        prefix: &str,
        place: ArgumentPlace,
        schema: Value,
        required: bool,
        pointer: &str,
    ) -> Result<(), Problem> {
        let name = if self.bindings.contains_key(wire_name) {
            let prefixed = format!("{prefix}_{wire_name}");
            if self.bindings.contains_key(&prefixed) {
                return Err(Problem::new(
                    pointer,
                    format!("argument {wire_name:?} clashes with {wire_name:?} and {prefixed:?}"),
                ));
            }
            prefixed
        } else {
            wire_name.to_string()
        };
        if required {
            self.required.push(name.clone());
        }
        self.properties.insert(name.clone(), schema);
        self.bindings.insert(name, ArgumentBinding { wire_name: wire_name.to_string(), place });
        Ok(())
    }
}

impl Context<'_> {
    fn tool(&self, request: &OperationRef<'_>) -> Result<Outcome, Problem> {
        let operation = request.operation;
        let pointer = &request.pointer;
        let name = self.name(request)?;
        let full_path = format!("{}{}", self.server_path(request), request.path);
        let path = PathTemplate::parse_openapi(&full_path).map_err(|message| Problem::new(pointer, message))?;
        let mut arguments = Arguments::default();
        let parameters = self.parameters(request)?;
        for variable in path.variables() {
            if !parameters.iter().any(|parameter| parameter.location == "path" && parameter.name == variable) {
                return Err(Problem::new(pointer, format!("path variable {{{variable}}} has no `in: path` parameter")));
            }
        }
        let mut form_fields = Vec::new();
        let mut body_parameter = None;
        for location in ["path", "query", "header"] {
            for parameter in parameters.iter().filter(|parameter| parameter.location == location) {
                let place = match location {
                    "path" => ArgumentPlace::Path,
                    "query" => ArgumentPlace::Query(parameter.style),
                    _ => ArgumentPlace::Header,
                };
                let mut schema = parameter.schema.clone();
                // A header parameter is what `x-mcp-header` describes (2026-07-28): clients
                // mirror the argument into `Mcp-Param-{Name}`, and the edge checks the two agree.
                if location == "header"
                    && parameter.name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                    && let Some(object) = schema.as_object_mut()
                {
                    object.insert("x-mcp-header".to_string(), Value::String(parameter.name.clone()));
                }
                arguments.add(
                    &parameter.name,
                    location,
                    place,
                    schema,
                    parameter.required || location == "path",
                    &parameter.pointer,
                )?;
            }
        }
        for parameter in &parameters {
            match parameter.location.as_str() {
                "formData" => form_fields.push(parameter),
                "body" => body_parameter = Some(parameter),
                "cookie" => {
                    return Ok(Outcome::Skipped(Problem::new(
                        &parameter.pointer,
                        "cookie parameters are not supported; the operation is not imported",
                    )));
                }
                _ => {}
            }
        }
        let body = match self.version {
            Version::Swagger2 => self.swagger2_body(request, body_parameter, &form_fields)?,
            Version::OpenApi30 | Version::OpenApi31 => self.request_body(request)?,
        };
        let (body_format, body_required) = match body {
            Body::None => (None, false),
            Body::Unsupported(problem) => return Ok(Outcome::Skipped(problem)),
            Body::Some { format, schema, required, pointer: body_pointer } => {
                self.add_body(&mut arguments, &format, schema, required, &body_pointer)?;
                (Some(format), required)
            }
        };
        let mut input_schema = json!({"type": "object", "properties": Value::Object(arguments.properties)});
        if !arguments.required.is_empty() {
            input_schema["required"] = json!(arguments.required);
        }
        let method = request.method.clone();
        let idempotent =
            matches!(method, http::Method::GET | http::Method::HEAD | http::Method::PUT | http::Method::DELETE);
        Ok(Outcome::Tool(Box::new(Tool {
            name,
            description: description(operation),
            method,
            path,
            input_schema,
            output_schema: self.output_schema(request)?,
            idempotent,
            scopes: Vec::new(),
            query: None,
            body: None,
            headers: BTreeMap::new(),
            binding: Some(Binding {
                arguments: arguments.bindings,
                body: body_format,
                body_required,
                origin: self.options.origin.clone(),
            }),
            fixed: Map::new(),
            defaults: Map::new(),
            rate_limit: None,
            source: ToolSource::OpenApi { document: self.options.label.clone(), pointer: pointer.clone() },
        })))
    }

    /// `name_prefix` + `operationId` sanitised, or + `{method}_{path}`.
    fn name(&self, request: &OperationRef<'_>) -> Result<String, Problem> {
        let base = match request.operation.get("operationId").and_then(Value::as_str) {
            Some(id) => id
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '_' })
                .collect(),
            None => {
                let mut words = vec![request.method.as_str().to_ascii_lowercase()];
                words.extend(
                    request
                        .path
                        .split(|c: char| !c.is_ascii_alphanumeric())
                        .filter(|word| !word.is_empty())
                        .map(str::to_string),
                );
                words.join("_")
            }
        };
        let name = format!("{}{base}", self.options.name_prefix);
        if !crate::config::build::is_tool_name(&name) {
            return Err(Problem::new(
                push_pointer(&request.pointer, "operationId"),
                format!("{name:?} is not a tool name (1 to 128 of A-Z a-z 0-9 _ . -)"),
            ));
        }
        Ok(name)
    }

    /// The path of the server the operation is served from (3.x `servers[0]`, the
    /// operation's or path item's first; 2.0 `basePath`), without a trailing `/`.
    fn server_path(&self, request: &OperationRef<'_>) -> String {
        let path = if self.version == Version::Swagger2 {
            self.document.get("basePath").and_then(Value::as_str).unwrap_or_default().to_string()
        } else {
            let servers = [request.operation, request.item, self.document]
                .into_iter()
                .find_map(|holder| holder.get("servers").and_then(Value::as_array).filter(|list| !list.is_empty()));
            let Some(server) = servers.and_then(|list| list.first()) else { return String::new() };
            let mut url = server.get("url").and_then(Value::as_str).unwrap_or_default().to_string();
            for (name, variable) in server.get("variables").and_then(Value::as_object).into_iter().flatten() {
                let value = variable.get("default").and_then(Value::as_str).unwrap_or_default();
                url = url.replace(&format!("{{{name}}}"), value);
            }
            match Url::parse(&url) {
                Ok(absolute) => absolute.path().to_string(),
                Err(_) => {
                    let relative = url.split(['?', '#']).next().unwrap_or_default();
                    if relative.starts_with('/') { relative.to_string() } else { format!("/{relative}") }
                }
            }
        };
        path.trim_end_matches('/').to_string()
    }

    /// The path item's parameters with the operation's (which replace those of the same
    /// name and place).
    fn parameters(&self, request: &OperationRef<'_>) -> Result<Vec<Parameter>, Problem> {
        let mut parameters: Vec<Parameter> = Vec::new();
        for (holder, holder_pointer) in [
            (request.item, request.pointer.rsplit_once('/').map_or("", |(item, _)| item)),
            (request.operation, &request.pointer),
        ] {
            let Some(list) = holder.get("parameters").and_then(Value::as_array) else { continue };
            let list_pointer = push_pointer(holder_pointer, "parameters");
            for (index, raw) in list.iter().enumerate() {
                let Some(parameter) = self.parameter(raw, &push_pointer(&list_pointer, &index.to_string()))? else {
                    continue;
                };
                parameters
                    .retain(|earlier| !(earlier.name == parameter.name && earlier.location == parameter.location));
                parameters.push(parameter);
            }
        }
        Ok(parameters)
    }

    fn parameter(&self, raw: &Value, pointer: &str) -> Result<Option<Parameter>, Problem> {
        let (parameter, pointer) = self.resolver.follow(raw, pointer)?;
        let name = parameter
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Problem::new(&pointer, "a parameter needs a name"))?;
        let location = parameter
            .get("in")
            .and_then(Value::as_str)
            .ok_or_else(|| Problem::new(&pointer, "a parameter needs `in`"))?;
        if !matches!(location, "path" | "query" | "header" | "cookie" | "body" | "formData") {
            return Err(Problem::new(
                push_pointer(&pointer, "in"),
                format!("`in: {location}` is not a parameter location"),
            ));
        }
        // OpenAPI: these header parameters "SHALL be ignored"; the edge sets them itself.
        if location == "header"
            && ["accept", "content-type", "authorization"].contains(&name.to_ascii_lowercase().as_str())
        {
            return Ok(None);
        }
        // Framing, routing and hop-by-hop headers are the edge's: a caller who set them
        // could smuggle a second request or reroute this one.
        if location == "header" && RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            self.resolver
                .warn(&pointer, format!("header parameter {name:?} is reserved to the edge and is not an argument"));
            return Ok(None);
        }
        if location == "header" && http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(Problem::new(push_pointer(&pointer, "name"), format!("{name:?} is not a header name")));
        }
        let schema = match (self.version, location) {
            (Version::Swagger2, "body") => {
                let schema = parameter.get("schema").cloned().unwrap_or_else(|| json!({}));
                self.resolver.schema(&schema, &push_pointer(&pointer, "schema"))?
            }
            (Version::Swagger2, _) => self.resolver.schema(&swagger2_schema(parameter), &pointer)?,
            _ => match parameter.get("schema") {
                Some(schema) => self.resolver.schema(schema, &push_pointer(&pointer, "schema"))?,
                None => {
                    match parameter.get("content").and_then(Value::as_object).and_then(|content| content.iter().next())
                    {
                        Some((media, content)) => {
                            let at = push_pointer(&push_pointer(&pointer, "content"), media);
                            self.resolver
                                .schema(content.get("schema").unwrap_or(&json!({})), &push_pointer(&at, "schema"))?
                        }
                        None => json!({}),
                    }
                }
            },
        };
        let schema = with_description(schema, parameter.get("description"));
        let required = parameter.get("required").and_then(Value::as_bool).unwrap_or(false);
        Ok(Some(Parameter {
            name: name.to_string(),
            location: location.to_string(),
            required,
            style: query_style(self.version, parameter),
            schema,
            pointer,
        }))
    }

    /// A 3.x `requestBody`.
    fn request_body(&self, request: &OperationRef<'_>) -> Result<Body, Problem> {
        let Some(raw) = request.operation.get("requestBody") else { return Ok(Body::None) };
        let (body, pointer) = self.resolver.follow(raw, &push_pointer(&request.pointer, "requestBody"))?;
        let required = body.get("required").and_then(Value::as_bool).unwrap_or(false);
        let Some(content) = body.get("content").and_then(Value::as_object) else { return Ok(Body::None) };
        let content_pointer = push_pointer(&pointer, "content");
        let pick = |wanted: fn(&str) -> bool| content.iter().find(|(media, _)| wanted(&media.to_ascii_lowercase()));
        let chosen = pick(|media| media == "application/json")
            .map(|found| (found, BodyFormat::Json))
            .or_else(|| pick(is_json).map(|found| (found, BodyFormat::Json)))
            .or_else(|| {
                pick(|media| media == "application/x-www-form-urlencoded").map(|found| (found, BodyFormat::Form))
            })
            .or_else(|| {
                pick(is_binary)
                    .map(|(media, value)| ((media, value), BodyFormat::Binary { content_type: media.clone() }))
            });
        let Some(((media, value), format)) = chosen else {
            let media: Vec<&str> = content.keys().map(String::as_str).collect();
            return Ok(Body::Unsupported(Problem::new(
                &pointer,
                format!("request bodies of {} are not supported; the operation is not imported", media.join(", ")),
            )));
        };
        let media_pointer = push_pointer(&content_pointer, media);
        let schema = match value.get("schema") {
            Some(schema) => self.resolver.schema(schema, &push_pointer(&media_pointer, "schema"))?,
            None => json!({}),
        };
        let schema = with_description(schema, body.get("description"));
        Ok(Body::Some { format, schema, required, pointer: media_pointer })
    }

    /// A Swagger 2.0 `in: body` parameter or `formData` parameters.
    fn swagger2_body(
        &self,
        request: &OperationRef<'_>,
        body: Option<&Parameter>,
        form_fields: &[&Parameter],
    ) -> Result<Body, Problem> {
        let consumes: Vec<String> = [request.operation, self.document]
            .into_iter()
            .find_map(|holder| holder.get("consumes").and_then(Value::as_array))
            .map(|list| list.iter().filter_map(Value::as_str).map(str::to_ascii_lowercase).collect())
            .unwrap_or_default();
        if let Some(body) = body {
            if !consumes.is_empty() && !consumes.iter().any(|media| is_json(media)) {
                return Ok(Body::Unsupported(Problem::new(
                    &body.pointer,
                    format!(
                        "request bodies of {} are not supported; the operation is not imported",
                        consumes.join(", ")
                    ),
                )));
            }
            return Ok(Body::Some {
                format: BodyFormat::Json,
                schema: body.schema.clone(),
                required: body.required,
                pointer: body.pointer.clone(),
            });
        }
        if form_fields.is_empty() {
            return Ok(Body::None);
        }
        let multipart = consumes.iter().any(|media| media == "multipart/form-data")
            || form_fields.iter().any(|field| field.schema.get("format").and_then(Value::as_str) == Some("binary"));
        if multipart {
            return Ok(Body::Unsupported(Problem::new(
                &request.pointer,
                "multipart/form-data bodies (file uploads) are not supported; the operation is not imported",
            )));
        }
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in form_fields {
            properties.insert(field.name.clone(), field.schema.clone());
            if field.required {
                required.push(json!(field.name));
            }
        }
        let any_required = !required.is_empty();
        Ok(Body::Some {
            format: BodyFormat::Form,
            schema: json!({"type": "object", "properties": properties, "required": required}),
            required: any_required,
            pointer: request.pointer.clone(),
        })
    }

    /// The body's arguments: its properties for an object (through `allOf`), else `body`.
    fn add_body(
        &self,
        arguments: &mut Arguments,
        format: &BodyFormat,
        schema: Value,
        required: bool,
        pointer: &str,
    ) -> Result<(), Problem> {
        if let BodyFormat::Binary { content_type } = format {
            let schema = json!({
                "type": "string",
                "contentEncoding": "base64",
                "description": format!("The request body ({content_type}), base64-encoded"),
            });
            return arguments.add("body", "body", ArgumentPlace::Body, schema, required, pointer);
        }
        match object_properties(&schema) {
            Some((properties, object_required)) => {
                for (property, property_schema) in properties {
                    if property_schema.get("readOnly").and_then(Value::as_bool) == Some(true) {
                        continue;
                    }
                    let is_required = required && object_required.contains(&property);
                    arguments.add(
                        &property,
                        "body",
                        ArgumentPlace::BodyProperty,
                        property_schema,
                        is_required,
                        pointer,
                    )?;
                }
                Ok(())
            }
            None => arguments.add("body", "body", ArgumentPlace::Body, schema, required, pointer),
        }
    }

    /// The schema of the first 2xx JSON response: as it is when it describes an object,
    /// else as `result` of an object (DESIGN.md §6.4).
    fn output_schema(&self, request: &OperationRef<'_>) -> Result<Option<Value>, Problem> {
        let Some(responses) = request.operation.get("responses").and_then(Value::as_object) else { return Ok(None) };
        let responses_pointer = push_pointer(&request.pointer, "responses");
        let mut codes: Vec<&String> =
            responses.keys().filter(|code| code.starts_with('2') && code.len() == 3).collect();
        codes.sort_by_key(|code| code.replace(['X', 'x'], "9"));
        for code in codes {
            let (response, pointer) =
                self.resolver.follow(&responses[code.as_str()], &push_pointer(&responses_pointer, code))?;
            let schema = if self.version == Version::Swagger2 {
                let produces: Vec<&str> = [request.operation, self.document]
                    .into_iter()
                    .find_map(|holder| holder.get("produces").and_then(Value::as_array))
                    .map(|list| list.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if !produces.is_empty() && !produces.iter().any(|media| is_json(&media.to_ascii_lowercase())) {
                    continue;
                }
                response.get("schema").map(|schema| (schema, push_pointer(&pointer, "schema")))
            } else {
                response.get("content").and_then(Value::as_object).and_then(|content| {
                    let media = content
                        .keys()
                        .find(|media| media.eq_ignore_ascii_case("application/json"))
                        .or_else(|| content.keys().find(|media| is_json(&media.to_ascii_lowercase())))?;
                    let schema = content[media.as_str()].get("schema")?;
                    Some((schema, push_pointer(&push_pointer(&push_pointer(&pointer, "content"), media), "schema")))
                })
            };
            let Some((schema, schema_pointer)) = schema else { continue };
            let schema = self.resolver.schema(schema, &schema_pointer)?;
            let is_object = schema.get("type").and_then(Value::as_str) == Some("object")
                || (schema.get("type").is_none()
                    && (schema.get("properties").is_some() || schema.get("allOf").is_some()));
            return Ok(Some(if is_object {
                schema
            } else {
                json!({"type": "object", "properties": {"result": schema}, "required": ["result"]})
            }));
        }
        Ok(None)
    }
}

/// A parameter after `$ref`s.
struct Parameter {
    name: String,
    location: String,
    required: bool,
    style: QueryStyle,
    schema: Value,
    pointer: String,
}

enum Body {
    None,
    Some { format: BodyFormat, schema: Value, required: bool, pointer: String },
    Unsupported(Problem),
}

fn is_json(media: &str) -> bool {
    let media = media.split(';').next().unwrap_or_default().trim();
    media == "application/json" || media == "text/json" || media.ends_with("+json")
}

fn is_binary(media: &str) -> bool {
    let media = media.split(';').next().unwrap_or_default().trim();
    !(media.contains("xml") || media.starts_with("multipart/") || media.starts_with("text/") || is_json(media))
}

/// Summary and description, as one text.
fn description(operation: &Value) -> String {
    let summary = operation.get("summary").and_then(Value::as_str).unwrap_or_default().trim();
    let description = operation.get("description").and_then(Value::as_str).unwrap_or_default().trim();
    match (summary.is_empty(), description.is_empty()) {
        (false, false) if summary != description => format!("{summary}\n\n{description}"),
        (false, _) => summary.to_string(),
        (true, _) => description.to_string(),
    }
}

fn with_description(mut schema: Value, description: Option<&Value>) -> Value {
    if let (Some(description), Value::Object(map)) = (description.and_then(Value::as_str), &mut schema)
        && !description.trim().is_empty()
        && !map.contains_key("description")
    {
        map.insert("description".into(), json!(description.trim()));
    }
    schema
}

/// An object schema's properties (in order) and its required names.
type ObjectParts = (Vec<(String, Value)>, Vec<String>);

/// The properties and required list of an object schema, through `allOf`; `None` when the
/// schema is not an object with properties (an array, a scalar, a map, `oneOf`).
fn object_properties(schema: &Value) -> Option<ObjectParts> {
    let map = schema.as_object()?;
    let typed_object = map.get("type").and_then(Value::as_str) == Some("object");
    if map.get("type").is_some_and(|kind| !typed_object && kind != &json!(["object", "null"])) {
        return None;
    }
    if map.contains_key("oneOf") || map.contains_key("anyOf") {
        return None;
    }
    let mut properties: Vec<(String, Value)> = Vec::new();
    let mut required: Vec<String> = Vec::new();
    if let Some(own) = map.get("properties").and_then(Value::as_object) {
        properties.extend(own.iter().map(|(name, schema)| (name.clone(), schema.clone())));
    }
    for part in map.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        let (more, more_required) = object_properties(part)?;
        for (name, schema) in more {
            if !properties.iter().any(|(existing, _)| *existing == name) {
                properties.push((name, schema));
            }
        }
        required.extend(more_required);
    }
    required.extend(
        map.get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string),
    );
    if properties.is_empty() && !typed_object && !map.contains_key("allOf") {
        return None;
    }
    // A map (`additionalProperties` a schema, no properties) is one value, not arguments.
    if properties.is_empty() && map.get("additionalProperties").is_some_and(|extra| extra != &Value::Bool(false)) {
        return None;
    }
    Some((properties, required))
}

/// A Swagger 2.0 non-body parameter's schema, from the JSON Schema keywords it carries.
fn swagger2_schema(parameter: &Value) -> Value {
    const KEYWORDS: [&str; 17] = [
        "type",
        "format",
        "items",
        "enum",
        "default",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "uniqueItems",
        "multipleOf",
        "x-nullable",
    ];
    let mut schema = Map::new();
    for keyword in KEYWORDS {
        if let Some(value) = parameter.get(keyword) {
            schema.insert(keyword.to_string(), value.clone());
        }
    }
    Value::Object(schema)
}

/// How a query parameter's arrays are written: 3.x `style`/`explode` (default `form`,
/// exploded), 2.0 `collectionFormat` (`multi` repeated; absent also repeated, the §18
/// default and what ASP.NET binds, rather than 2.0's own `csv`).
fn query_style(version: Version, parameter: &Value) -> QueryStyle {
    if version == Version::Swagger2 {
        return match parameter.get("collectionFormat").and_then(Value::as_str) {
            Some("csv") => QueryStyle::Comma,
            Some("ssv") => QueryStyle::Space,
            Some("pipes") => QueryStyle::Pipe,
            _ => QueryStyle::Repeated,
        };
    }
    let style = parameter.get("style").and_then(Value::as_str).unwrap_or("form");
    let explode = parameter.get("explode").and_then(Value::as_bool).unwrap_or(style == "form");
    match style {
        "spaceDelimited" => QueryStyle::Space,
        "pipeDelimited" => QueryStyle::Pipe,
        "deepObject" => QueryStyle::DeepObject,
        _ if explode => QueryStyle::Repeated,
        _ => QueryStyle::Comma,
    }
}

#[cfg(test)]
mod tests {
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
}
