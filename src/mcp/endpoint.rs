//! The MCP endpoint on `mcp.path`: JSON-RPC over POST for both protocol generations.
//!
//! Session era (2025-03-26, 2025-06-18, 2025-11-25): `initialize` returns a signed
//! `Mcp-Session-Id`; later requests must carry it (missing → 400, unknown → 404) and a
//! supported `MCP-Protocol-Version`. Stateless era (2026-07-28): no handshake; every request
//! carries its version in `_meta` and the `Mcp-Method` (and for `tools/call` `Mcp-Name`)
//! headers, which must match the body (400, -32020); results carry `resultType`, lists
//! `ttlMs` and `cacheScope`. A request is stateless when it says so (`_meta` version, the
//! 2026-07-28 header, or `server/discover`); everything else is the session era. In the
//! stateless era `initialize` is a removed method like any other (404, -32601): a client that
//! speaks 2026-07-28 must not be handed a session.
//!
//! Every refusal is an [`EdgeError`] (JSON-RPC ones as [`RpcError`]s of a kind); the HTTP
//! status each kind gets is decided in `request::error`, not here.

use http::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use tracing::Instrument;

use super::Gateway;
use super::call;
use super::call::Prepared;
use super::jsonrpc::{self, Message};
use super::observe::{self, Operation};
use super::param_headers;
use super::progress::{self, Streamed};
use super::session_keys::SessionError;
use super::tool_result::{self, StructuredText};
use crate::request::reply::EventStream;
use crate::request::{Caller, Downstream, EdgeError, Records, Reply, RpcError, RpcErrorKind, ToolOutcome, ToolRecord};

/// Session-era versions, newest first (the first is offered when a client asks for another).
pub const SESSION_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
/// The stateless-era version.
pub const STATELESS_VERSION: &str = "2026-07-28";
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// How long clients may cache list and discover results.
const LIST_TTL_MS: u64 = 300_000;

/// A JSON-RPC error for a request with no readable id.
fn rpc_error(kind: RpcErrorKind, message: &'static str) -> EdgeError {
    EdgeError::Rpc(RpcError::new(Value::Null, kind, message))
}

/// Answers one request on the MCP path.
pub async fn handle(
    gateway: &Gateway,
    downstream: &mut dyn Downstream,
    caller: &Caller<'_>,
    records: &mut Records,
) -> Result<Reply, EdgeError> {
    let method = &downstream.head().method;
    if method == http::Method::POST {
        post(gateway, downstream, caller, records).await
    } else if method == http::Method::DELETE {
        delete(gateway, downstream, caller).await
    } else {
        // No server-initiated stream: GET (and anything else) is 405.
        Err(rpc_error(RpcErrorKind::MethodNotAllowed, "method not allowed: use POST"))
    }
}

async fn delete(gateway: &Gateway, downstream: &dyn Downstream, caller: &Caller<'_>) -> Result<Reply, EdgeError> {
    let Some(id) = downstream.header("mcp-session-id") else {
        return Err(rpc_error(RpcErrorKind::MissingSessionId, "missing Mcp-Session-Id"));
    };
    gateway.session_keys.end_shared(id, caller.principal).await.map_err(session_refusal)?;
    Ok(Reply::empty(204))
}

/// A session id that was not accepted: 404, or 503 when the shared store could not say.
fn session_refusal(error: SessionError) -> EdgeError {
    match error {
        SessionError::Unknown => rpc_error(RpcErrorKind::SessionNotFound, "session not found"),
        SessionError::StoreUnavailable => EdgeError::StoreUnavailable { retry_after_seconds: 1 },
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

/// The content negotiation a POST must pass before its body is read.
fn check_media_types(downstream: &dyn Downstream) -> Result<(), EdgeError> {
    if !accepts_json(downstream.header("accept")) {
        return Err(rpc_error(RpcErrorKind::NotAcceptable, "Accept must include application/json"));
    }
    if let Some(content_type) = downstream.header("content-type")
        && !content_type.trim().to_ascii_lowercase().starts_with("application/json")
    {
        return Err(rpc_error(RpcErrorKind::UnsupportedMediaType, "Content-Type must be application/json"));
    }
    Ok(())
}

async fn post(
    gateway: &Gateway,
    downstream: &mut dyn Downstream,
    caller: &Caller<'_>,
    records: &mut Records,
) -> Result<Reply, EdgeError> {
    check_media_types(downstream)?;
    let bytes = downstream.read_body(gateway.max_body_bytes).await?;
    let (id, method, params) = match Message::parse(&bytes)? {
        message @ (Message::Notification { .. } | Message::Response) => {
            if let Some(session_id) = downstream.header("mcp-session-id") {
                gateway.session_keys.verify_shared(session_id, caller.principal).await.map_err(session_refusal)?;
            }
            if let Message::Notification { method, params } = message
                && method == "notifications/cancelled"
                && let Some(request_id) = params.get("requestId")
            {
                progress::cancel(&cancel_key(downstream, caller, request_id));
            }
            return Ok(Reply::empty(202));
        }
        Message::Request { id, method, params } => (id, method, params),
    };
    records.mcp_method = Some(method.clone());
    let no_operation = std::sync::Mutex::new(None);
    let probe = McpRequest {
        gateway,
        id: &id,
        downstream: &*downstream,
        caller,
        method: &method,
        params: &params,
        operation: &no_operation,
    };
    let stateless = probe.is_stateless();
    // 2026-07-28: a `_meta` traceparent names the trace this request belongs to.
    let meta_trace = stateless.then(|| observe::meta_trace(&params, caller.request_id)).flatten();
    let traced_caller;
    let caller = match &meta_trace {
        Some(trace) => {
            traced_caller = Caller { trace: Some(trace), ..*caller };
            &traced_caller
        }
        None => caller,
    };
    let tool = (method == "tools/call")
        .then(|| params.get("name").and_then(Value::as_str))
        .flatten()
        .filter(|name| gateway.catalogue.get(name).is_some());
    let version = probe.meta_version().or_else(|| downstream.header("mcp-protocol-version"));
    let operation =
        Operation::start(&method, tool, &id, version, downstream.header("mcp-session-id"), meta_trace.as_ref());
    let span = operation.span.clone();
    let operation = std::sync::Mutex::new(Some(operation));
    let request = McpRequest {
        gateway,
        id: &id,
        downstream: &*downstream,
        caller,
        method: &method,
        params: &params,
        operation: &operation,
    };
    // The era first: `initialize` opens a session only for a session-era client.
    let answer = async {
        if stateless {
            request.stateless(records).await
        } else if method == "initialize" {
            Ok(initialize(gateway, caller, &params))
        } else {
            request.session_era(records).await
        }
    }
    .instrument(span)
    .await;
    // A streamed call took its operation along, to finish it with its result.
    if let Some(operation) = operation.lock().ok().and_then(|mut operation| operation.take()) {
        operation.finish(observe::error_type(&answer, records));
    }
    match answer {
        Ok(Answer { stream: Some(stream), headers, .. }) => Ok(Reply::stream(stream).with_headers(headers)),
        Ok(Answer { result, headers, structured, .. }) => {
            let body = jsonrpc::result_json(id, |out| tool_result::write_result(out, &result, structured));
            Ok(Reply::serialized(200, body).with_headers(headers))
        }
        Err(EdgeError::Rpc(error)) => Err(EdgeError::Rpc(RpcError { id, ..error })),
        Err(other) => Err(other),
    }
}

/// A JSON-RPC result and the headers it goes with, or the event stream that will carry it.
struct Answer {
    result: Value,
    /// How a tool result's `structuredContent` can be written (`tool_result::write_result`).
    structured: Option<StructuredText>,
    headers: Vec<(HeaderName, HeaderValue)>,
    stream: Option<EventStream>,
}

impl From<Value> for Answer {
    fn from(result: Value) -> Self {
        Self { result, structured: None, headers: Vec::new(), stream: None }
    }
}

/// What `tools/call` answers: its result now, or a stream with progress and then the result.
enum Called {
    Result(Value, Option<StructuredText>),
    Stream(EventStream),
}

impl From<Called> for Answer {
    fn from(called: Called) -> Self {
        match called {
            Called::Result(result, structured) => Self { structured, ..result.into() },
            Called::Stream(stream) => Self { stream: Some(stream), ..Value::Null.into() },
        }
    }
}

/// Who may cancel the request `id` of this caller (`notifications/cancelled`).
fn cancel_key(downstream: &dyn Downstream, caller: &Caller<'_>, id: &Value) -> String {
    let owner = caller.principal.map(crate::request::Principal::owner_key).unwrap_or_default();
    progress::key(&owner, downstream.header("mcp-session-id"), id)
}

/// `Accept` names `text/event-stream` (or a wildcard that covers it).
fn accepts_event_stream(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept.split(',').any(|range| {
            let media = range.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            matches!(media.as_str(), "text/event-stream" | "text/*" | "*/*")
        })
    })
}

fn server_info(gateway: &Gateway) -> Value {
    json!({"name": gateway.server_name, "version": env!("CARGO_PKG_VERSION")})
}

fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}})
}

fn initialize(gateway: &Gateway, caller: &Caller<'_>, params: &Map<String, Value>) -> Answer {
    let requested = params.get("protocolVersion").and_then(Value::as_str);
    let version = match requested {
        Some(version) if SESSION_VERSIONS.contains(&version) => version,
        _ => SESSION_VERSIONS[0],
    };
    let id = gateway.session_keys.issue(caller.principal, version);
    let headers = HeaderValue::from_str(&id).map(|value| (HeaderName::from_static("mcp-session-id"), value));
    Answer {
        result: json!({
            "protocolVersion": version,
            "capabilities": capabilities(),
            "serverInfo": server_info(gateway),
        }),
        headers: headers.into_iter().collect(),
        ..Answer::from(Value::Null)
    }
}

/// One JSON-RPC request on the MCP path, with what answering it needs.
struct McpRequest<'a> {
    gateway: &'a Gateway,
    /// The JSON-RPC id (a streamed result carries it).
    id: &'a Value,
    /// The request's telemetry, until a streamed call takes it (`observe`).
    operation: &'a std::sync::Mutex<Option<Operation>>,
    downstream: &'a dyn Downstream,
    caller: &'a Caller<'a>,
    method: &'a str,
    params: &'a Map<String, Value>,
}

impl McpRequest<'_> {
    fn meta_version(&self) -> Option<&str> {
        self.params.get("_meta").and_then(|meta| meta.get(META_PROTOCOL_VERSION)).and_then(Value::as_str)
    }

    fn is_stateless(&self) -> bool {
        self.method == "server/discover"
            || self.meta_version().is_some()
            || self.downstream.header("mcp-protocol-version") == Some(STATELESS_VERSION)
    }

    async fn session_era(&self, records: &mut Records) -> Result<Answer, EdgeError> {
        let Some(session_id) = self.downstream.header("mcp-session-id") else {
            return Err(rpc_error(RpcErrorKind::MissingSessionId, "missing Mcp-Session-Id: send initialize first"));
        };
        self.gateway.session_keys.verify_shared(session_id, self.caller.principal).await.map_err(session_refusal)?;
        if let Some(version) = self.downstream.header("mcp-protocol-version")
            && !SESSION_VERSIONS.contains(&version)
        {
            let error =
                RpcError::new(Value::Null, RpcErrorKind::UnsupportedSessionVersion, "unsupported MCP-Protocol-Version");
            return Err(error.with_data(json!({"supported": SESSION_VERSIONS})).into());
        }
        match self.method {
            "ping" => Ok(json!({}).into()),
            "tools/list" => self.tools_page().map(Answer::from),
            "tools/call" => self.tools_call(records, false).await.map(Answer::from),
            _ => Err(rpc_error(RpcErrorKind::MethodNotFound { stateless: false }, "method not found")),
        }
    }

    /// The 2026-07-28 checks, in the order the spec gives them: `_meta` carries the fields
    /// every request of the era must (-32602), the `MCP-Protocol-Version` header agrees with
    /// the `_meta` version (-32020), that version is one the edge speaks (-32022), and the
    /// `Mcp-Method` and `Mcp-Name` headers match the body (-32020). Agreement comes before
    /// support so that a client whose header and body disagree learns that, not a version
    /// list it already matches.
    fn check_stateless_headers(&self) -> Result<(), EdgeError> {
        let version = self.check_meta()?;
        if self.downstream.header("mcp-protocol-version").map(str::trim) != Some(version) {
            return Err(rpc_error(
                RpcErrorKind::HeaderMismatch,
                "MCP-Protocol-Version must match the _meta protocol version",
            ));
        }
        if version != STATELESS_VERSION {
            let error =
                RpcError::new(Value::Null, RpcErrorKind::UnsupportedProtocolVersion, "unsupported protocol version");
            return Err(error.with_data(json!({"requested": version, "supported": [STATELESS_VERSION]})).into());
        }
        if self.downstream.header("mcp-method") != Some(self.method) {
            return Err(rpc_error(RpcErrorKind::HeaderMismatch, "Mcp-Method must match the request method"));
        }
        if self.method == "tools/call" {
            let name = self.params.get("name").and_then(Value::as_str);
            if name.is_none() || self.downstream.header("mcp-name").map(decode_header_value).as_deref() != name {
                return Err(rpc_error(RpcErrorKind::HeaderMismatch, "Mcp-Name must match params.name"));
            }
        }
        Ok(())
    }

    /// `params._meta` with the protocol version (a string, returned) and the client
    /// capabilities (an object) that every 2026-07-28 request carries; `clientInfo` is only a
    /// SHOULD and not required.
    fn check_meta(&self) -> Result<&str, EdgeError> {
        let invalid = |message: &'static str| rpc_error(RpcErrorKind::InvalidRequestMeta, message);
        let Some(meta) = self.params.get("_meta").and_then(Value::as_object) else {
            return Err(invalid("params._meta is required in protocol version 2026-07-28"));
        };
        let Some(version) = meta.get(META_PROTOCOL_VERSION).and_then(Value::as_str) else {
            return Err(invalid("params._meta must carry io.modelcontextprotocol/protocolVersion (a string)"));
        };
        if !meta.get(META_CLIENT_CAPABILITIES).is_some_and(Value::is_object) {
            return Err(invalid("params._meta must carry io.modelcontextprotocol/clientCapabilities (an object)"));
        }
        Ok(version)
    }

    async fn stateless(&self, records: &mut Records) -> Result<Answer, EdgeError> {
        self.check_stateless_headers()?;
        let cache_scope = if self.caller.principal.is_some() { "private" } else { "public" };
        match self.method {
            "server/discover" => {
                let mut versions = vec![STATELESS_VERSION];
                versions.extend(SESSION_VERSIONS);
                Ok(json!({
                    "resultType": "complete",
                    "supportedVersions": versions,
                    "capabilities": capabilities(),
                    "ttlMs": LIST_TTL_MS,
                    "cacheScope": "public",
                    "_meta": {META_SERVER_INFO: server_info(self.gateway)},
                })
                .into())
            }
            "tools/list" => {
                let mut result = self.tools_page()?;
                result["resultType"] = json!("complete");
                result["ttlMs"] = json!(LIST_TTL_MS);
                result["cacheScope"] = json!(cache_scope);
                Ok(result.into())
            }
            "tools/call" => {
                self.check_param_headers()?;
                match self.tools_call(records, true).await? {
                    Called::Result(mut result, structured) => {
                        result["resultType"] = json!("complete");
                        Ok(Called::Result(result, structured).into())
                    }
                    stream => Ok(stream.into()),
                }
            }
            _ => Err(rpc_error(RpcErrorKind::MethodNotFound { stateless: true }, "method not found")),
        }
    }

    /// One page of `tools/list`: from `params.cursor`, with `nextCursor` when more follow.
    fn tools_page(&self) -> Result<Value, EdgeError> {
        let cursor = match self.params.get("cursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(cursor)) => Some(cursor.as_str()),
            Some(_) => return Err(rpc_error(RpcErrorKind::InvalidParams, "params.cursor must be a string")),
        };
        let page = self
            .gateway
            .catalogue
            .page(self.caller.principal, cursor, self.gateway.page_size)
            .map_err(|_| rpc_error(RpcErrorKind::InvalidParams, "invalid cursor"))?;
        let mut result = json!({"tools": page.tools});
        if let Some(next) = page.next_cursor {
            result["nextCursor"] = json!(next);
        }
        Ok(result)
    }

    /// The `Mcp-Param-*` headers a tool's `x-mcp-header` properties call for (2026-07-28,
    /// `mcp::param_headers`); an unknown tool or bad arguments are left to `tools_call`.
    fn check_param_headers(&self) -> Result<(), EdgeError> {
        let tool = self.params.get("name").and_then(Value::as_str).and_then(|name| self.gateway.catalogue.get(name));
        let (Some(tool), Some(Value::Object(arguments))) = (tool, self.params.get("arguments")) else {
            return Ok(());
        };
        param_headers::check(&tool.param_headers, arguments, |name| self.downstream.header(name))
            .map_err(|message| EdgeError::Rpc(RpcError::new(Value::Null, RpcErrorKind::HeaderMismatch, message)))
    }

    /// `params._meta.progressToken` (a string or an integer).
    fn progress_token(&self) -> Option<&Value> {
        let token = self.params.get("_meta")?.get("progressToken")?;
        (token.is_string() || token.is_i64() || token.is_u64()).then_some(token)
    }

    async fn tools_call(&self, records: &mut Records, stateless: bool) -> Result<Called, EdgeError> {
        let Some(name) = self.params.get("name").and_then(Value::as_str) else {
            return Err(rpc_error(RpcErrorKind::InvalidParams, "params.name must be a string"));
        };
        let Some(tool) = self.gateway.catalogue.get(name) else {
            return Err(rpc_error(RpcErrorKind::InvalidParams, "unknown tool"));
        };
        let arguments = match self.params.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(arguments)) => arguments.clone(),
            Some(_) => return Err(rpc_error(RpcErrorKind::InvalidParams, "params.arguments must be an object")),
        };
        if let Err(refusal) = crate::request::scopes::require(self.caller.principal, &tool.config.scopes) {
            records.tool = Some(ToolRecord::new(name, ToolOutcome::Denied, &Value::Object(arguments)));
            return Err(refusal);
        }
        let session_id = self.downstream.header("x-session-id");
        // A client that takes a stream gets one when it asks for progress, or when the call
        // turns out slow (`progress::STREAM_AFTER`).
        let streamable = accepts_event_stream(self.downstream.header("accept"));
        if let (true, Some(shared)) = (streamable, self.gateway.catalogue.shared(name)) {
            let result = match call::prepare(self.gateway, self.caller, tool, &arguments, session_id).await {
                Prepared::Ready(call) => {
                    let id = self.id.clone();
                    let key = cancel_key(self.downstream, self.caller, &id);
                    let operation = self.operation.lock().ok().and_then(|mut operation| operation.take());
                    let token = self.progress_token().cloned();
                    let with_token = token.is_some();
                    let recorded = Value::Object(arguments.clone());
                    let streamed = Streamed { tool: shared, id, token, key, stateless, arguments: recorded, operation };
                    if with_token {
                        return Ok(Called::Stream(progress::start(call, streamed, None)));
                    }
                    match progress::answer_within(call, streamed).await {
                        Ok(result) => result,
                        Err(stream) => return Ok(Called::Stream(stream)),
                    }
                }
                Prepared::Finished(result) => result,
                Prepared::UnknownSession => return Err(EdgeError::UnknownSession),
            };
            records.tool = Some(result.record(name, &Value::Object(arguments)));
            return Ok(Called::Result(result.result, result.structured));
        }
        let result = call::invoke(self.gateway, self.caller, tool, &arguments, session_id)
            .await
            .ok_or(EdgeError::UnknownSession)?;
        records.tool = Some(result.record(name, &Value::Object(arguments)));
        Ok(Called::Result(result.result, result.structured))
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
