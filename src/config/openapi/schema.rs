//! What one part of an OpenAPI document says, read the same way for every operation: a
//! media type's kind, an operation's description, an object schema's properties (through
//! `allOf`), a Swagger 2.0 parameter's schema and a query parameter's array style. The
//! translation (`translate`) decides what becomes of them.

use serde_json::{Map, Value, json};

use super::document::Version;
use crate::config::runtime::QueryStyle;

pub(super) fn is_json(media: &str) -> bool {
    let media = media.split(';').next().unwrap_or_default().trim();
    media == "application/json" || media == "text/json" || media.ends_with("+json")
}

pub(super) fn is_binary(media: &str) -> bool {
    let media = media.split(';').next().unwrap_or_default().trim();
    !(media.contains("xml") || media.starts_with("multipart/") || media.starts_with("text/") || is_json(media))
}

/// Summary and description, as one text.
pub(super) fn description(operation: &Value) -> String {
    let summary = operation.get("summary").and_then(Value::as_str).unwrap_or_default().trim();
    let description = operation.get("description").and_then(Value::as_str).unwrap_or_default().trim();
    match (summary.is_empty(), description.is_empty()) {
        (false, false) if summary != description => format!("{summary}\n\n{description}"),
        (false, _) => summary.to_string(),
        (true, _) => description.to_string(),
    }
}

pub(super) fn with_description(mut schema: Value, description: Option<&Value>) -> Value {
    if let (Some(description), Value::Object(map)) = (description.and_then(Value::as_str), &mut schema)
        && !description.trim().is_empty()
        && !map.contains_key("description")
    {
        map.insert("description".into(), json!(description.trim()));
    }
    schema
}

/// An object schema's properties (in order) and its required names.
pub(super) type ObjectParts = (Vec<(String, Value)>, Vec<String>);

/// The properties and required list of an object schema, through `allOf`; `None` when the
/// schema is not an object with properties (an array, a scalar, a map, `oneOf`).
pub(super) fn object_properties(schema: &Value) -> Option<ObjectParts> {
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
pub(super) fn swagger2_schema(parameter: &Value) -> Value {
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
pub(super) fn query_style(version: Version, parameter: &Value) -> QueryStyle {
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
