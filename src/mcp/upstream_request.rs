//! The REST request a tool call becomes: path variables fill the template; the other
//! arguments go to the query string for GET/DELETE/HEAD and to a JSON body for
//! POST/PUT/PATCH, unless the tool lists `query` and `body` explicitly; `{name}` header
//! templates take an argument. A tool imported from OpenAPI says per argument where it goes
//! (its [`Binding`]), and its path is the whole path from the upstream's origin.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Map, Value};

use crate::config::{ArgumentPlace, Binding, BodyFormat, QueryStyle, Tool};
use crate::upstream::{UpstreamClient, UpstreamRequest};

/// The REST request `tool` called with `arguments` becomes, for `upstream`.
pub fn build(
    upstream: &UpstreamClient,
    tool: &Tool,
    arguments: &Map<String, Value>,
) -> Result<UpstreamRequest, String> {
    if let Some(binding) = &tool.binding {
        return build_bound(upstream, tool, binding, arguments);
    }
    let path = tool.path.render(arguments)?;
    let mut url = upstream.url_for(&path)?;
    let path_variables: Vec<&str> = tool.path.variables().collect();
    let header_variables: Vec<String> = tool.headers.values().filter_map(|value| template_variable(value)).collect();
    let sends_body = matches!(tool.method, Method::POST | Method::PUT | Method::PATCH);
    let mut query = Vec::new();
    let mut body = Map::new();
    for (name, value) in arguments {
        if path_variables.contains(&name.as_str()) || header_variables.contains(name) {
            continue;
        }
        let listed_in = |list: &Option<Vec<String>>| list.as_ref().map(|list| list.contains(name));
        let to_query = match (listed_in(&tool.query), listed_in(&tool.body)) {
            (Some(true), _) => true,
            (_, Some(true)) => false,
            // Explicit lists exist and this argument is in neither: it is not sent.
            (Some(false), _) | (_, Some(false)) => continue,
            (None, None) => !sends_body,
        };
        if to_query {
            query_pairs(name, value, &mut query);
        } else {
            body.insert(name.clone(), value.clone());
        }
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    let mut headers = HeaderMap::new();
    headers.insert(http::header::ACCEPT, HeaderValue::from_static("application/json"));
    for (name, template) in &tool.headers {
        let value = match template_variable(template) {
            Some(variable) => match arguments.get(&variable) {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Number(number)) => number.to_string(),
                Some(Value::Bool(flag)) => flag.to_string(),
                _ => continue,
            },
            None => template.clone(),
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("header {name} is not valid"))?;
        let value = HeaderValue::from_str(&value)
            .map_err(|_| format!("argument for header {name} is not a valid header value"))?;
        headers.insert(name, value);
    }
    let body = if sends_body {
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Some(Bytes::from(Value::Object(body).to_string()))
    } else {
        None
    };
    Ok(UpstreamRequest { method: tool.method.clone(), url, headers, body, idempotent: tool.idempotent })
}

/// `{name}` as a whole header template names an argument.
fn template_variable(template: &str) -> Option<String> {
    template.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')).map(str::to_string)
}

fn query_pairs(name: &str, value: &Value, pairs: &mut Vec<(String, String)>) {
    match value {
        Value::Null => {}
        Value::String(text) => pairs.push((name.to_string(), text.clone())),
        Value::Number(_) | Value::Bool(_) => pairs.push((name.to_string(), value.to_string())),
        // ASP.NET binds repeated keys to arrays.
        Value::Array(items) => items.iter().for_each(|item| query_pairs(name, item, pairs)),
        Value::Object(_) => pairs.push((name.to_string(), value.to_string())),
    }
}

/// The request of a tool that says where each argument goes.
fn build_bound(
    upstream: &UpstreamClient,
    tool: &Tool,
    binding: &Binding,
    arguments: &Map<String, Value>,
) -> Result<UpstreamRequest, String> {
    let mut path_values = Map::new();
    let mut query = Vec::new();
    let mut headers = HeaderMap::new();
    headers.insert(http::header::ACCEPT, HeaderValue::from_static("application/json"));
    let mut properties = Map::new();
    let mut whole_body = None;
    for (name, value) in arguments {
        // Validation refused undeclared arguments unless the schema allows them; those
        // have no place and are not sent.
        let Some(argument) = binding.arguments.get(name) else { continue };
        let wire = argument.wire_name.as_str();
        match argument.place {
            ArgumentPlace::Path => {
                path_values.insert(wire.to_string(), value.clone());
            }
            ArgumentPlace::Query(style) => styled_query(wire, value, style, &mut query),
            ArgumentPlace::Header => {
                let Some(text) = header_text(value) else { continue };
                let name =
                    HeaderName::from_bytes(wire.as_bytes()).map_err(|_| format!("header {wire} is not valid"))?;
                let value =
                    HeaderValue::from_str(&text).map_err(|_| format!("argument {name} is not a valid header value"))?;
                headers.insert(name, value);
            }
            ArgumentPlace::BodyProperty => {
                properties.insert(wire.to_string(), value.clone());
            }
            ArgumentPlace::Body => whole_body = Some(value),
        }
    }
    let path = tool.path.render(&path_values)?;
    let mut url = match &binding.origin {
        Some(origin) => origin.clone(),
        None => upstream.base_url.clone(),
    };
    url.set_path(&path);
    url.set_query(None);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    let body = match &binding.body {
        None => None,
        Some(BodyFormat::Json) => {
            let body = match whole_body {
                Some(value) => Some(value.clone()),
                None if !properties.is_empty() || binding.body_required => Some(Value::Object(properties)),
                None => None,
            };
            body.map(|body| {
                headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Bytes::from(body.to_string())
            })
        }
        Some(BodyFormat::Form) => (!properties.is_empty() || binding.body_required).then(|| {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in &properties {
                let mut pairs = Vec::new();
                query_pairs(name, value, &mut pairs);
                for (key, text) in pairs {
                    form.append_pair(&key, &text);
                }
            }
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
            Bytes::from(form.finish())
        }),
        Some(BodyFormat::Binary { content_type }) => match whole_body {
            Some(Value::String(encoded)) => {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| "argument body must be base64".to_string())?;
                let content_type = HeaderValue::from_str(content_type)
                    .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
                headers.insert(http::header::CONTENT_TYPE, content_type);
                Some(Bytes::from(bytes))
            }
            Some(_) => return Err("argument body must be a base64 string".to_string()),
            None => None,
        },
    };
    Ok(UpstreamRequest { method: tool.method.clone(), url, headers, body, idempotent: tool.idempotent })
}

/// A scalar (or an array of scalars, comma-joined: OpenAPI's `simple` style) as header text.
fn header_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        Value::Array(items) => Some(items.iter().filter_map(header_text).collect::<Vec<_>>().join(",")),
        Value::Null | Value::Object(_) => None,
    }
}

/// A query argument as the document's `style`/`explode` writes it.
fn styled_query(name: &str, value: &Value, style: QueryStyle, pairs: &mut Vec<(String, String)>) {
    let scalar = |value: &Value| match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let delimiter = match style {
        QueryStyle::Comma => ",",
        QueryStyle::Space => " ",
        QueryStyle::Pipe => "|",
        QueryStyle::Repeated | QueryStyle::DeepObject => "",
    };
    match (value, style) {
        (Value::Null, _) => {}
        (Value::Array(items), QueryStyle::Comma | QueryStyle::Space | QueryStyle::Pipe) => {
            pairs.push((name.to_string(), items.iter().map(scalar).collect::<Vec<_>>().join(delimiter)));
        }
        (Value::Object(fields), QueryStyle::DeepObject) => {
            pairs.extend(fields.iter().map(|(key, value)| (format!("{name}[{key}]"), scalar(value))));
        }
        // Exploded form objects: each property its own key.
        (Value::Object(fields), QueryStyle::Repeated) => {
            pairs.extend(fields.iter().map(|(key, value)| (key.clone(), scalar(value))));
        }
        (Value::Object(fields), _) => {
            let flat: Vec<String> = fields.iter().flat_map(|(key, value)| [key.clone(), scalar(value)]).collect();
            pairs.push((name.to_string(), flat.join(delimiter)));
        }
        _ => query_pairs(name, value, pairs),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn styled(value: &Value, style: QueryStyle) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        styled_query("q", value, style, &mut pairs);
        pairs
    }

    fn pair(key: &str, value: &str) -> (String, String) {
        (key.to_string(), value.to_string())
    }

    #[test]
    fn query_arrays_and_objects_follow_their_style() {
        assert_eq!(styled(&json!(["a", 1]), QueryStyle::Repeated), [pair("q", "a"), pair("q", "1")]);
        assert_eq!(styled(&json!(["a", 1]), QueryStyle::Comma), [pair("q", "a,1")]);
        assert_eq!(styled(&json!(["a", "b"]), QueryStyle::Space), [pair("q", "a b")]);
        assert_eq!(styled(&json!(["a", "b"]), QueryStyle::Pipe), [pair("q", "a|b")]);
        assert_eq!(styled(&json!({"x": 1, "y": "z"}), QueryStyle::DeepObject), [pair("q[x]", "1"), pair("q[y]", "z")]);
        assert_eq!(styled(&json!({"x": 1}), QueryStyle::Repeated), [pair("x", "1")]);
        assert_eq!(styled(&json!({"x": 1, "y": 2}), QueryStyle::Comma), [pair("q", "x,1,y,2")]);
        assert_eq!(styled(&json!(true), QueryStyle::Comma), [pair("q", "true")]);
        assert!(styled(&Value::Null, QueryStyle::Repeated).is_empty());
    }

    #[test]
    fn header_values_are_scalars_or_simple_lists() {
        assert_eq!(header_text(&json!("v")), Some("v".to_string()));
        assert_eq!(header_text(&json!(3)), Some("3".to_string()));
        assert_eq!(header_text(&json!(["a", "b"])), Some("a,b".to_string()));
        assert_eq!(header_text(&json!({"a": 1})), None);
        assert_eq!(header_text(&Value::Null), None);
    }
}
