//! A tool call end to end: arguments → upstream REST request → `CallToolResult`, with the
//! HTTP status the REST route answers (DESIGN.md §6.4).
//!
//! Path variables fill the template; the other arguments go to the query string for
//! GET/DELETE/HEAD and to a JSON body for POST/PUT/PATCH, unless the tool lists `query` and
//! `body` explicitly. Upstream error text is reduced to one sanitised line of at most 1 KiB;
//! transport details stay in the log.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Map, Value, json};

use super::catalogue::CatalogueTool;
use std::sync::Arc;

use crate::config::{Tool, UpstreamAuth};
use crate::edge::Policy;
use crate::edge::auth::Principal;
use crate::edge::context::RequestContext;
use crate::telemetry::trace_context::TraceContext;
use crate::upstream::{UpstreamClient, UpstreamError, UpstreamReply, UpstreamRequest, credentials};

/// Longest upstream error text passed on to the client.
const MAX_ERROR_TEXT: usize = 1024;

/// The result of a tool call, for both MCP and REST.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    /// The `CallToolResult` object.
    pub result: Value,
    /// The status `POST /api/tools/{name}` answers with.
    pub rest_status: u16,
    /// `Retry-After` seconds when the upstream is unavailable.
    pub retry_after_seconds: Option<u64>,
    /// The upstream's status, when it answered (for logs and audit).
    pub upstream_status: Option<u16>,
    /// Time spent on the upstream, retries included, when it was called.
    pub upstream_duration: Option<std::time::Duration>,
}

impl ToolOutcome {
    /// The call cannot carry the credential its `upstream.auth` mode needs.
    fn unavailable_credential() -> Self {
        Self::error("the upstream credential for this call is not available", 502)
    }

    /// The audit and metrics record of this call.
    pub fn record(&self, tool: &str, arguments: &Value) -> crate::edge::observe::ToolRecord {
        let outcome = crate::edge::observe::ToolRecord::outcome_for(self.rest_status, self.is_error());
        let mut record = crate::edge::observe::ToolRecord::new(tool, outcome, arguments);
        record.upstream_status = self.upstream_status;
        record.upstream_duration = self.upstream_duration;
        record
    }

    fn error(text: impl Into<String>, rest_status: u16) -> Self {
        Self {
            result: json!({"content": [{"type": "text", "text": text.into()}], "isError": true}),
            rest_status,
            retry_after_seconds: None,
            upstream_status: None,
            upstream_duration: None,
        }
    }

    pub fn is_error(&self) -> bool {
        self.result.get("isError").and_then(Value::as_bool).unwrap_or(false)
    }
}

/// Where a tool call goes and with which credential.
struct CallTarget {
    client: Arc<UpstreamClient>,
    authorization: Option<HeaderValue>,
}

/// Why a call has no target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetError {
    /// `upstream.auth.mode: session` and no live credential session for `X-Session-Id` (401).
    UnknownSession,
    /// No credential for the configured mode (a tool error).
    Credential(credentials::CredentialError),
}

/// The upstream and credential for a call: the session's API and token with
/// `upstream.auth.mode: session`, else `upstream.base_url` with `upstream.auth`. Another
/// principal's session is as unknown as a missing one (and is not marked used).
fn resolve_target(
    policy: &Policy,
    principal: Option<&Principal>,
    session_id: Option<&str>,
) -> Result<CallTarget, TargetError> {
    if policy.config.upstream.auth != UpstreamAuth::Session {
        let authorization =
            credentials::authorization(&policy.config.upstream.auth, principal).map_err(TargetError::Credential)?;
        return Ok(CallTarget { client: Arc::clone(&policy.upstream), authorization });
    }
    let service = policy.sessions_service.as_ref().ok_or(TargetError::UnknownSession)?;
    let caller = crate::sessions::owner_of(principal);
    let session = service
        .store
        .use_session(session_id.ok_or(TargetError::UnknownSession)?, caller.as_deref())
        .ok_or(TargetError::UnknownSession)?;
    let client = policy.session_upstreams.client_for(&session.api_url).ok_or(TargetError::UnknownSession)?;
    let mut authorization = HeaderValue::try_from(format!("Bearer {}", session.token.0))
        .map_err(|_| TargetError::Credential(credentials::CredentialError::InvalidHeader))?;
    authorization.set_sensitive(true);
    Ok(CallTarget { client, authorization: Some(authorization) })
}

/// Calls `tool` for this request: to the upstream [`resolve_target`] picks, or, without the
/// credential its `upstream.auth` mode needs, a tool error (logged). `None` when
/// `X-Session-Id` (`session_id`) names no live credential session of the caller: a 401.
pub async fn invoke(
    ctx: &RequestContext,
    tool: &CatalogueTool,
    arguments: &Map<String, Value>,
    session_id: Option<&str>,
) -> Option<ToolOutcome> {
    match resolve_target(&ctx.policy, ctx.principal.as_ref(), session_id) {
        Ok(target) => {
            let traceparent = ctx.trace.as_ref().map(TraceContext::child_traceparent);
            Some(call_tool(&target, tool, arguments, &ctx.request_id, traceparent).await)
        }
        Err(TargetError::UnknownSession) => None,
        Err(TargetError::Credential(error)) => {
            let request_id = &ctx.request_id;
            tracing::warn!(request_id, tool = %tool.tool.name, %error, "No upstream credential for a tool call");
            Some(ToolOutcome::unavailable_credential())
        }
    }
}

/// Validates, calls the upstream and maps the reply.
async fn call_tool(
    target: &CallTarget,
    tool: &CatalogueTool,
    arguments: &Map<String, Value>,
    request_id: &str,
    traceparent: Option<String>,
) -> ToolOutcome {
    if let Err(message) = tool.validate(&Value::Object(arguments.clone())) {
        return ToolOutcome::error(message, 400);
    }
    let upstream = target.client.as_ref();
    let mut request = match build_request(upstream, &tool.tool, arguments) {
        Ok(request) => request,
        Err(message) => return ToolOutcome::error(message, 400),
    };
    if let Some(value) = &target.authorization {
        request.headers.insert(http::header::AUTHORIZATION, value.clone());
    }
    if let Ok(value) = HeaderValue::from_str(request_id) {
        request.headers.insert("x-request-id", value);
    }
    if let Some(value) = traceparent.and_then(|traceparent| HeaderValue::try_from(traceparent).ok()) {
        request.headers.insert("traceparent", value);
    }
    let started = std::time::Instant::now();
    let outcome = upstream.send(request).await;
    let upstream_duration = started.elapsed();
    if let Err(error) = &outcome {
        tracing::warn!(request_id, tool = %tool.tool.name, url.path = %tool.tool.path, %error, "Upstream call failed");
    }
    let mut outcome = map_reply(outcome);
    outcome.upstream_duration = Some(upstream_duration);
    if let Some(structured) = outcome.result.get("structuredContent")
        && !tool.output_conforms(structured)
    {
        tracing::warn!(request_id, tool = %tool.tool.name, "Upstream reply does not match the tool's output_schema");
        let mut mismatch = ToolOutcome::error("the upstream reply does not match the tool's output schema", 502);
        mismatch.upstream_status = outcome.upstream_status;
        mismatch.upstream_duration = outcome.upstream_duration;
        return mismatch;
    }
    outcome
}

/// Builds the REST request a tool call becomes.
pub fn build_request(
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

/// Maps the upstream's answer (or its absence) onto a `CallToolResult` (DESIGN.md §6.4).
pub fn map_reply(outcome: Result<UpstreamReply, UpstreamError>) -> ToolOutcome {
    let reply = match outcome {
        Ok(reply) => reply,
        Err(UpstreamError::Timeout) => return ToolOutcome::error("the upstream API did not answer in time", 504),
        Err(UpstreamError::Unavailable { retry_after_seconds }) => {
            let mut outcome =
                ToolOutcome::error(format!("upstream unavailable, retry in {retry_after_seconds} s"), 503);
            outcome.retry_after_seconds = Some(retry_after_seconds);
            return outcome;
        }
        Err(UpstreamError::Connect(_) | UpstreamError::Protocol(_) | UpstreamError::ReplyTooLarge) => {
            return ToolOutcome::error("the upstream API failed", 502);
        }
    };
    let status = reply.status.as_u16();
    let mut outcome = if reply.status.is_success() {
        success(&reply)
    } else if reply.status.is_client_error() {
        let reason = reply.status.canonical_reason().unwrap_or("error");
        let detail = error_text(&reply);
        let text = if detail.is_empty() {
            format!("upstream returned {status} {reason}")
        } else {
            format!("upstream returned {status} {reason}: {detail}")
        };
        ToolOutcome::error(text, status)
    } else {
        ToolOutcome::error("the upstream API failed", 502)
    };
    outcome.upstream_status = Some(status);
    outcome
}

fn success(reply: &UpstreamReply) -> ToolOutcome {
    let json =
        is_json(reply.content_type.as_deref()).then(|| serde_json::from_slice::<Value>(&reply.body).ok()).flatten();
    // Built by hand: `json!` copies every value it interpolates, and `structured` can be a
    // whole upstream reply.
    let (text, structured) = match json {
        Some(Value::Object(object)) => (serde_json::to_string(&object).unwrap_or_default(), Some(object)),
        Some(other) => {
            (serde_json::to_string(&other).unwrap_or_default(), Some(Map::from_iter([("result".to_string(), other)])))
        }
        None => (String::from_utf8_lossy(&reply.body).into_owned(), None),
    };
    let mut result = Map::with_capacity(3);
    let content =
        Map::from_iter([("type".to_string(), Value::from("text")), ("text".to_string(), Value::String(text))]);
    result.insert("content".to_string(), Value::Array(vec![Value::Object(content)]));
    if let Some(structured) = structured {
        result.insert("structuredContent".to_string(), Value::Object(structured));
    }
    result.insert("isError".to_string(), Value::Bool(false));
    let result = Value::Object(result);
    ToolOutcome { result, rest_status: 200, retry_after_seconds: None, upstream_status: None, upstream_duration: None }
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| {
        let media = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        media == "application/json" || media.ends_with("+json")
    })
}

/// The upstream's own message, sanitised: ASP.NET problem details (`title`, `detail`),
/// `message` or `error` fields, or plain text; one line, printable, at most 1 KiB.
fn error_text(reply: &UpstreamReply) -> String {
    let raw = match serde_json::from_slice::<Value>(&reply.body) {
        Ok(Value::Object(object)) => ["detail", "title", "message", "error"]
            .iter()
            .filter_map(|key| object.get(*key).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(": "),
        Ok(_) => String::new(),
        Err(_) if is_json(reply.content_type.as_deref()) => String::new(),
        Err(_) => String::from_utf8_lossy(&reply.body).into_owned(),
    };
    let mut text: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if text.len() > MAX_ERROR_TEXT {
        let mut cut = MAX_ERROR_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, content_type: &str, body: &str) -> Result<UpstreamReply, UpstreamError> {
        Ok(UpstreamReply {
            status: http::StatusCode::from_u16(status).expect("status"),
            content_type: Some(content_type.to_string()),
            retry_after: None,
            body: Bytes::from(body.to_string()),
        })
    }

    #[test]
    fn successful_replies_become_structured_content() {
        let outcome = map_reply(reply(200, "application/json; charset=utf-8", r#"{"a":1}"#));
        assert_eq!(outcome.rest_status, 200);
        assert_eq!(outcome.result["structuredContent"], json!({"a": 1}));
        assert_eq!(outcome.result["content"][0]["text"], r#"{"a":1}"#);
        assert_eq!(outcome.result["isError"], false);
        let outcome = map_reply(reply(200, "application/json", "[1,2]"));
        assert_eq!(outcome.result["structuredContent"], json!({"result": [1, 2]}));
        let outcome = map_reply(reply(200, "text/plain", "hello"));
        assert_eq!(outcome.result["content"][0]["text"], "hello");
        assert!(outcome.result.get("structuredContent").is_none());
    }

    #[test]
    fn client_errors_pass_status_and_sanitised_text() {
        let outcome =
            map_reply(reply(404, "application/problem+json", r#"{"title":"Not Found","detail":"no company\n42"}"#));
        assert_eq!(outcome.rest_status, 404);
        assert!(outcome.is_error());
        assert_eq!(outcome.result["content"][0]["text"], "upstream returned 404 Not Found: no company 42: Not Found");
        let long = "x".repeat(5000);
        let outcome = map_reply(reply(422, "text/plain", &long));
        let text = outcome.result["content"][0]["text"].as_str().expect("text");
        assert!(text.len() <= MAX_ERROR_TEXT + 64);
    }

    #[test]
    fn server_errors_and_transport_failures_are_generic() {
        let outcome = map_reply(reply(500, "text/plain", "NullReferenceException at Foo.Bar()"));
        assert_eq!(outcome.rest_status, 502);
        assert_eq!(outcome.result["content"][0]["text"], "the upstream API failed");
        assert_eq!(map_reply(Err(UpstreamError::Timeout)).rest_status, 504);
        assert_eq!(map_reply(Err(UpstreamError::Connect("refused".into()))).rest_status, 502);
        let unavailable = map_reply(Err(UpstreamError::Unavailable { retry_after_seconds: 7 }));
        assert_eq!(unavailable.rest_status, 503);
        assert_eq!(unavailable.retry_after_seconds, Some(7));
        assert_eq!(unavailable.result["content"][0]["text"], "upstream unavailable, retry in 7 s");
    }
}
