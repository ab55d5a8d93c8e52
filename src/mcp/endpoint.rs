//! The MCP endpoint on `mcp.path`: JSON-RPC over POST for both protocol generations.
//!
//! Session era (2025-03-26, 2025-06-18, 2025-11-25): `initialize` returns a signed
//! `Mcp-Session-Id`; later requests must carry it (missing → 400, unknown → 404) and a
//! supported `MCP-Protocol-Version`. Stateless era (2026-07-28): no handshake; every request
//! carries its version in `_meta` and the `Mcp-Method` (and for `tools/call` `Mcp-Name`)
//! headers, which must match the body (400, -32020); results carry `resultType`, lists
//! `ttlMs` and `cacheScope`. A request is stateless when it says so (`_meta` version, the
//! 2026-07-28 header, or `server/discover`); everything else is the session era.

use http::header::{HeaderName, HeaderValue};
use pingora::Result;
use pingora::proxy::Session;
use serde_json::{Map, Value, json};

use super::jsonrpc::{self, Message};
use super::translate;
use crate::edge::auth::scopes;
use crate::edge::body;
use crate::edge::context::RequestContext;
use crate::edge::observe::ToolRecord;
use crate::edge::respond::{self, EdgeError};

/// Session-era versions, newest first (the first is offered when a client asks for another).
pub const SESSION_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
/// The stateless-era version.
pub const STATELESS_VERSION: &str = "2026-07-28";
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// How long clients may cache list and discover results.
const LIST_TTL_MS: u64 = 300_000;

/// What a request turned into.
enum Answer {
    /// A JSON-RPC result.
    Result(Value),
    /// A JSON-RPC error with the HTTP status to send it with.
    Error { status: u16, code: i64, message: String, data: Option<Value> },
    /// 403: the principal lacks the tool's scopes; carries the challenge.
    InsufficientScope(Option<HeaderValue>),
    /// 401: `X-Session-Id` names no live credential session.
    UnknownSession,
}

fn rpc_error(status: u16, code: i64, message: impl Into<String>) -> Answer {
    Answer::Error { status, code, message: message.into(), data: None }
}

/// Answers one request on the MCP path.
pub async fn handle(session: &mut Session, ctx: &mut RequestContext) -> Result<()> {
    let method = session.req_header().method.clone();
    if method == http::Method::POST {
        post(session, ctx).await
    } else if method == http::Method::DELETE {
        delete(session, ctx).await
    } else {
        // No server-initiated stream: GET (and anything else) is 405.
        let allow = [(http::header::ALLOW, HeaderValue::from_static("POST, DELETE"))];
        let body = jsonrpc::error(&Value::Null, jsonrpc::INVALID_REQUEST, "method not allowed: use POST", None);
        respond::write_json(session, ctx, 405, &body, &allow).await
    }
}

fn header<'a>(session: &'a Session, name: &str) -> Option<&'a str> {
    session.req_header().headers.get(name).and_then(|value| value.to_str().ok())
}

async fn delete(session: &mut Session, ctx: &mut RequestContext) -> Result<()> {
    let Some(id) = header(session, "mcp-session-id").map(str::to_string) else {
        let body = jsonrpc::error(&Value::Null, jsonrpc::INVALID_REQUEST, "missing Mcp-Session-Id", None);
        return respond::write_json(session, ctx, 400, &body, &[]).await;
    };
    let policy = std::sync::Arc::clone(&ctx.policy);
    match policy.sessions.end(&id, ctx.principal.as_ref()) {
        Ok(()) => respond::write_empty(session, ctx, 204, &[]).await,
        Err(_) => {
            let body = jsonrpc::error(&Value::Null, jsonrpc::SESSION_NOT_FOUND, "session not found", None);
            respond::write_json(session, ctx, 404, &body, &[]).await
        }
    }
}

/// `Accept` absent, or naming JSON (or a wildcard that covers it).
fn accepts_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return true };
    accept.split(',').any(|range| {
        let media = range.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        matches!(media.as_str(), "application/json" | "application/*" | "*/*")
    })
}

async fn post(session: &mut Session, ctx: &mut RequestContext) -> Result<()> {
    if !accepts_json(header(session, "accept")) {
        let body = jsonrpc::error(&Value::Null, jsonrpc::INVALID_REQUEST, "Accept must include application/json", None);
        return respond::write_json(session, ctx, 406, &body, &[]).await;
    }
    if let Some(content_type) = header(session, "content-type")
        && !content_type.trim().to_ascii_lowercase().starts_with("application/json")
    {
        let body =
            jsonrpc::error(&Value::Null, jsonrpc::INVALID_REQUEST, "Content-Type must be application/json", None);
        return respond::write_json(session, ctx, 415, &body, &[]).await;
    }
    let limit = ctx.policy.config.limits.max_body_bytes;
    let bytes = match body::read(session, limit).await {
        Ok(bytes) => bytes,
        Err(error) => return respond::write_error(session, ctx, error).await,
    };
    let message = match Message::parse(&bytes) {
        Ok(message) => message,
        Err(rejection) => {
            let body = jsonrpc::error(&rejection.id, rejection.code, rejection.message, None);
            return respond::write_json(session, ctx, 400, &body, &[]).await;
        }
    };
    let (id, method, params) = match message {
        Message::Notification { .. } | Message::Response => {
            if let Some(session_id) = header(session, "mcp-session-id")
                && ctx.policy.sessions.verify(session_id, ctx.principal.as_ref()).is_err()
            {
                let body = jsonrpc::error(&Value::Null, jsonrpc::SESSION_NOT_FOUND, "session not found", None);
                return respond::write_json(session, ctx, 404, &body, &[]).await;
            }
            return respond::write_empty(session, ctx, 202, &[]).await;
        }
        Message::Request { id, method, params } => (id, method, params),
    };
    ctx.mcp_method = Some(method.clone());
    let mut extra_headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
    let answer = if method == "initialize" {
        initialize(ctx, &params, &mut extra_headers)
    } else if is_stateless(session, &method, &params) {
        stateless(session, ctx, &method, &params).await
    } else {
        session_era(session, ctx, &method, &params).await
    };
    match answer {
        Answer::Result(result) => {
            respond::write_json(session, ctx, 200, &jsonrpc::result(id, result), &extra_headers).await
        }
        Answer::Error { status, code, message, data } => {
            respond::write_json(session, ctx, status, &jsonrpc::error(&id, code, &message, data), &[]).await
        }
        Answer::UnknownSession => respond::write_error(session, ctx, EdgeError::UnknownSession).await,
        Answer::InsufficientScope(challenge) => {
            ctx.scope_challenge = challenge;
            respond::write_error(session, ctx, EdgeError::InsufficientScope).await
        }
    }
}

fn meta_version(params: &Map<String, Value>) -> Option<&str> {
    params.get("_meta").and_then(|meta| meta.get(META_PROTOCOL_VERSION)).and_then(Value::as_str)
}

fn is_stateless(session: &Session, method: &str, params: &Map<String, Value>) -> bool {
    method == "server/discover"
        || meta_version(params).is_some()
        || header(session, "mcp-protocol-version") == Some(STATELESS_VERSION)
}

fn server_info(ctx: &RequestContext) -> Value {
    json!({"name": ctx.policy.config.mcp.server_name, "version": env!("CARGO_PKG_VERSION")})
}

fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}})
}

fn initialize(
    ctx: &RequestContext,
    params: &Map<String, Value>,
    headers: &mut Vec<(HeaderName, HeaderValue)>,
) -> Answer {
    let requested = params.get("protocolVersion").and_then(Value::as_str);
    let version = match requested {
        Some(version) if SESSION_VERSIONS.contains(&version) => version,
        _ => SESSION_VERSIONS[0],
    };
    let id = ctx.policy.sessions.issue(ctx.principal.as_ref(), version);
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.push((HeaderName::from_static("mcp-session-id"), value));
    }
    Answer::Result(json!({
        "protocolVersion": version,
        "capabilities": capabilities(),
        "serverInfo": server_info(ctx),
    }))
}

async fn session_era(session: &Session, ctx: &mut RequestContext, method: &str, params: &Map<String, Value>) -> Answer {
    let Some(session_id) = header(session, "mcp-session-id") else {
        return rpc_error(400, jsonrpc::INVALID_REQUEST, "missing Mcp-Session-Id: send initialize first");
    };
    if ctx.policy.sessions.verify(session_id, ctx.principal.as_ref()).is_err() {
        return rpc_error(404, jsonrpc::SESSION_NOT_FOUND, "session not found");
    }
    if let Some(version) = header(session, "mcp-protocol-version")
        && !SESSION_VERSIONS.contains(&version)
    {
        return Answer::Error {
            status: 400,
            code: jsonrpc::INVALID_REQUEST,
            message: "unsupported MCP-Protocol-Version".to_string(),
            data: Some(json!({"supported": SESSION_VERSIONS})),
        };
    }
    match method {
        "ping" => Answer::Result(json!({})),
        "tools/list" => Answer::Result(json!({"tools": ctx.policy.catalogue.list(ctx.principal.as_ref())})),
        "tools/call" => tools_call(ctx, params, header(session, "x-session-id").map(str::to_string)).await,
        _ => rpc_error(200, jsonrpc::METHOD_NOT_FOUND, "method not found"),
    }
}

async fn stateless(session: &Session, ctx: &mut RequestContext, method: &str, params: &Map<String, Value>) -> Answer {
    let header_version = header(session, "mcp-protocol-version");
    let version = meta_version(params).or(header_version);
    if version != Some(STATELESS_VERSION) {
        return Answer::Error {
            status: 400,
            code: jsonrpc::UNSUPPORTED_PROTOCOL_VERSION,
            message: "unsupported protocol version".to_string(),
            data: Some(json!({"requested": version, "supported": [STATELESS_VERSION]})),
        };
    }
    if header_version != Some(STATELESS_VERSION) {
        return rpc_error(400, jsonrpc::HEADER_MISMATCH, "MCP-Protocol-Version must match the _meta protocol version");
    }
    if header(session, "mcp-method") != Some(method) {
        return rpc_error(400, jsonrpc::HEADER_MISMATCH, "Mcp-Method must match the request method");
    }
    if method == "tools/call" {
        let name = params.get("name").and_then(Value::as_str);
        if name.is_none() || header(session, "mcp-name").map(decode_header_value).as_deref() != name {
            return rpc_error(400, jsonrpc::HEADER_MISMATCH, "Mcp-Name must match params.name");
        }
    }
    let cache_scope = if ctx.principal.is_some() { "private" } else { "public" };
    match method {
        "server/discover" => {
            let mut versions = vec![STATELESS_VERSION];
            versions.extend(SESSION_VERSIONS);
            Answer::Result(json!({
                "resultType": "complete",
                "supportedVersions": versions,
                "capabilities": capabilities(),
                "ttlMs": LIST_TTL_MS,
                "cacheScope": "public",
                "_meta": {META_SERVER_INFO: server_info(ctx)},
            }))
        }
        "tools/list" => Answer::Result(json!({
            "resultType": "complete",
            "tools": ctx.policy.catalogue.list(ctx.principal.as_ref()),
            "ttlMs": LIST_TTL_MS,
            "cacheScope": cache_scope,
        })),
        "tools/call" => match tools_call(ctx, params, header(session, "x-session-id").map(str::to_string)).await {
            Answer::Result(mut result) => {
                result["resultType"] = json!("complete");
                Answer::Result(result)
            }
            other => other,
        },
        _ => rpc_error(404, jsonrpc::METHOD_NOT_FOUND, "method not found"),
    }
}

/// `=?base64?…?=` header values carry non-ASCII names (2026-07-28).
fn decode_header_value(value: &str) -> String {
    use base64::Engine;
    value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
        .and_then(|encoded| base64::engine::general_purpose::STANDARD.decode(encoded).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| value.to_string())
}

async fn tools_call(ctx: &mut RequestContext, params: &Map<String, Value>, session_id: Option<String>) -> Answer {
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return rpc_error(200, jsonrpc::INVALID_PARAMS, "params.name must be a string");
    };
    let policy = std::sync::Arc::clone(&ctx.policy);
    let Some(tool) = policy.catalogue.get(name) else {
        return rpc_error(200, jsonrpc::INVALID_PARAMS, "unknown tool");
    };
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(arguments)) => arguments.clone(),
        Some(_) => return rpc_error(200, jsonrpc::INVALID_PARAMS, "params.arguments must be an object"),
    };
    if !tool.allowed_for(ctx.principal.as_ref()) {
        ctx.tool_record = Some(ToolRecord::new(name, "denied", &Value::Object(arguments)));
        return Answer::InsufficientScope(
            HeaderValue::try_from(scopes::insufficient_scope_challenge(&tool.tool.scopes)).ok(),
        );
    }
    let Some(outcome) = translate::invoke(ctx, tool, &arguments, session_id.as_deref()).await else {
        return Answer::UnknownSession;
    };
    ctx.tool_record = Some(outcome.record(name, &Value::Object(arguments)));
    Answer::Result(outcome.result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert!(accepts_json(None));
        assert!(accepts_json(Some("application/json, text/event-stream")));
        assert!(accepts_json(Some("*/*")));
        assert!(accepts_json(Some("text/event-stream;q=1, application/*;q=0.5")));
        assert!(!accepts_json(Some("text/event-stream")));
        assert!(!accepts_json(Some("text/html")));
    }

    #[test]
    fn base64_header_values() {
        assert_eq!(decode_header_value("get_shifts"), "get_shifts");
        assert_eq!(decode_header_value("=?base64?w6lsw6h2ZQ==?="), "élève");
    }
}
