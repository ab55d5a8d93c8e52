//! The REST request a tool call becomes: path variables fill the template; the other
//! arguments go to the query string for GET/DELETE/HEAD and to a JSON body for
//! POST/PUT/PATCH, unless the tool lists `query` and `body` explicitly; `{name}` header
//! templates take an argument.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Map, Value};

use crate::config::Tool;
use crate::upstream::{UpstreamClient, UpstreamRequest};

/// The REST request `tool` called with `arguments` becomes, for `upstream`.
pub fn build(
    upstream: &UpstreamClient,
    tool: &Tool,
    arguments: &Map<String, Value>,
) -> Result<UpstreamRequest, String> {
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
