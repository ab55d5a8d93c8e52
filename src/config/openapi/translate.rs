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
use super::schema::{
    description, is_binary, is_json, object_properties, query_style, swagger2_schema, with_description,
};
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

#[cfg(test)]
mod tests;
