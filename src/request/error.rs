//! Every way the edge refuses a request, and the one place ([`EdgeError::into_reply`]) where a
//! refusal becomes a status, a public body and headers. Edge steps, credential sessions and
//! the MCP endpoint all refuse with an [`EdgeError`]; what a refusal must tell the client
//! (a challenge, an `Allow`, a `Retry-After`) travels inside the value.

use std::borrow::Cow;

use http::header::{self, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::AuthFailure;
use super::reply::Reply;

/// JSON-RPC error codes MCP uses.
pub mod rpc_code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Session era: the `Mcp-Session-Id` is unknown or expired (the TypeScript SDK's code).
    pub const SESSION_NOT_FOUND: i64 = -32001;
    /// 2026-07-28: an `Mcp-*` header does not match the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28: the requested protocol version is not supported.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
}

/// A refusal. The public message is generic; detail goes to the log.
#[derive(Debug, Clone, PartialEq)]
pub enum EdgeError {
    BadRequest,
    /// A `Content-Length` that cannot be trusted: the message framing is unknown, so the
    /// connection must close (reusing it would invite request smuggling).
    InvalidContentLength,
    /// A `Transfer-Encoding` other than one `chunked`: a coding the edge does not implement
    /// (501, RFC 9112 §6.1). The connection closes for the same reason as above.
    UnsupportedTransferCoding,
    /// 401 with the policy's `WWW-Authenticate` challenges (two, `Bearer` and `DPoP`, under
    /// `auth.jwt.dpop: optional`).
    Unauthorized {
        failure: AuthFailure,
        challenges: Vec<HeaderValue>,
    },
    OriginNotAllowed,
    /// The principal lacks scopes the route or tool requires; the challenge names them.
    InsufficientScope {
        challenge: Option<HeaderValue>,
    },
    /// `/init`: the API URL or the credentials were not accepted.
    CredentialsRejected,
    /// `/init`: the API could not be asked (down, slow, or an error).
    SessionValidationFailed,
    /// `/init`: a client-chosen `session_id` breaks the id rule, which the message states.
    SessionIdRule(&'static str),
    /// `/init`: the id is live and belongs to another principal or subject.
    SessionExists,
    /// A tool call named a credential session that does not exist (or expired).
    UnknownSession,
    NotFound,
    MethodNotAllowed {
        allow: &'static str,
    },
    PayloadTooLarge,
    TooManyRequests {
        retry_after_seconds: u64,
    },
    HeadersTooLarge,
    Internal,
    BadGateway,
    /// The upstream's breaker is open: come back after the given seconds.
    ServiceUnavailable {
        retry_after_seconds: u64,
    },
    GatewayTimeout,
    /// The DPoP replay cache holds only `jti`s still inside the window: 503 until the oldest
    /// leaves it (accepting the proof unremembered would allow its replay).
    DpopReplayCacheFull {
        retry_after_seconds: u64,
    },
    /// The shared store (Redis) did not answer and `store.redis.on_error` is `deny`.
    StoreUnavailable {
        retry_after_seconds: u64,
    },
    /// A JSON-RPC error on the MCP path.
    Rpc(RpcError),
}

/// A JSON-RPC error answer: its kind decides the HTTP status and the code.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The request's id (`null` when it had none or it could not be read).
    pub id: Value,
    pub kind: RpcErrorKind,
    pub message: Cow<'static, str>,
    pub data: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcErrorKind {
    /// GET or another method on the MCP path: 405 (no server-initiated stream).
    MethodNotAllowed,
    /// `Accept` excludes JSON: 406.
    NotAcceptable,
    /// `Content-Type` is not JSON: 415.
    UnsupportedMediaType,
    /// The body is not JSON: 400.
    ParseError,
    /// The body is JSON but not one JSON-RPC message: 400.
    InvalidMessage,
    /// A session-era request (or DELETE) without `Mcp-Session-Id`: 400.
    MissingSessionId,
    /// The `Mcp-Session-Id` is unknown, expired, ended or another principal's: 404.
    SessionNotFound,
    /// A session-era `MCP-Protocol-Version` the edge does not speak: 400.
    UnsupportedSessionVersion,
    /// A stateless-era version the edge does not speak: 400.
    UnsupportedProtocolVersion,
    /// An `Mcp-*` header disagrees with the body: 400.
    HeaderMismatch,
    /// An unknown method: a JSON-RPC error in a 200 in the session era, 404 in the stateless
    /// era (2026-07-28 maps protocol errors onto HTTP statuses).
    MethodNotFound { stateless: bool },
    /// Bad `tools/call` parameters (unknown tool, arguments not an object): 200.
    InvalidParams,
    /// A 2026-07-28 request whose `_meta` is missing or lacks a field that era requires
    /// (`protocolVersion`, `clientCapabilities`): 400 with -32602.
    InvalidRequestMeta,
}

impl RpcError {
    pub fn new(id: Value, kind: RpcErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self { id, kind, message: message.into(), data: None }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

impl From<RpcError> for EdgeError {
    fn from(error: RpcError) -> Self {
        EdgeError::Rpc(error)
    }
}

/// The error body of every refusal but JSON-RPC ones.
#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    request_id: &'a str,
}

impl EdgeError {
    /// The response this refusal is: status, `{"error", "request_id"}` (or the JSON-RPC
    /// error object) and the headers the refusal carries.
    pub fn into_reply(self, request_id: &str) -> Reply {
        let retry_after = |seconds: u64| vec![(header::RETRY_AFTER, HeaderValue::from(seconds))];
        let (status, message, headers): (u16, &'static str, Vec<(HeaderName, HeaderValue)>) = match self {
            EdgeError::BadRequest => (400, "bad request", Vec::new()),
            EdgeError::InvalidContentLength => {
                return Reply::json(400, &ErrorBody { error: "bad request", request_id }).closing();
            }
            EdgeError::UnsupportedTransferCoding => {
                let body = ErrorBody { error: "unsupported transfer coding", request_id };
                return Reply::json(501, &body).closing();
            }
            EdgeError::Unauthorized { challenges, .. } => (
                401,
                "unauthorized",
                challenges.into_iter().map(|challenge| (header::WWW_AUTHENTICATE, challenge)).collect(),
            ),
            EdgeError::CredentialsRejected => (401, "unauthorized", Vec::new()),
            EdgeError::UnknownSession => (401, "unknown or expired session", Vec::new()),
            EdgeError::OriginNotAllowed => (403, "origin not allowed", Vec::new()),
            EdgeError::InsufficientScope { challenge } => (
                403,
                "insufficient scope",
                challenge.into_iter().map(|value| (header::WWW_AUTHENTICATE, value)).collect(),
            ),
            EdgeError::SessionIdRule(rule) => (400, rule, Vec::new()),
            EdgeError::SessionExists => (409, "session exists", Vec::new()),
            EdgeError::NotFound => (404, "not found", Vec::new()),
            EdgeError::MethodNotAllowed { allow } => {
                (405, "method not allowed", vec![(header::ALLOW, HeaderValue::from_static(allow))])
            }
            EdgeError::PayloadTooLarge => (413, "request body too large", Vec::new()),
            EdgeError::TooManyRequests { retry_after_seconds } => {
                (429, "too many requests", retry_after(retry_after_seconds))
            }
            EdgeError::HeadersTooLarge => (431, "request headers too large", Vec::new()),
            EdgeError::Internal => (500, "internal error", Vec::new()),
            EdgeError::SessionValidationFailed => (500, "could not validate the credentials", Vec::new()),
            EdgeError::BadGateway => (502, "bad gateway", Vec::new()),
            EdgeError::ServiceUnavailable { retry_after_seconds } => {
                (503, "upstream unavailable", retry_after(retry_after_seconds))
            }
            EdgeError::GatewayTimeout => (504, "gateway timeout", Vec::new()),
            EdgeError::StoreUnavailable { retry_after_seconds } => {
                (503, "try again later", retry_after(retry_after_seconds))
            }
            EdgeError::DpopReplayCacheFull { retry_after_seconds } => {
                (503, "try again later", retry_after(retry_after_seconds))
            }
            EdgeError::Rpc(error) => return error.into_reply(),
        };
        Reply::json(status, &ErrorBody { error: message, request_id }).with_headers(headers)
    }
}

impl RpcErrorKind {
    /// The HTTP status and JSON-RPC code of this kind.
    fn status_and_code(self) -> (u16, i64) {
        use rpc_code::*;
        match self {
            RpcErrorKind::MethodNotAllowed => (405, INVALID_REQUEST),
            RpcErrorKind::NotAcceptable => (406, INVALID_REQUEST),
            RpcErrorKind::UnsupportedMediaType => (415, INVALID_REQUEST),
            RpcErrorKind::ParseError => (400, PARSE_ERROR),
            RpcErrorKind::InvalidMessage | RpcErrorKind::MissingSessionId => (400, INVALID_REQUEST),
            RpcErrorKind::UnsupportedSessionVersion => (400, INVALID_REQUEST),
            RpcErrorKind::SessionNotFound => (404, SESSION_NOT_FOUND),
            RpcErrorKind::UnsupportedProtocolVersion => (400, UNSUPPORTED_PROTOCOL_VERSION),
            RpcErrorKind::HeaderMismatch => (400, HEADER_MISMATCH),
            RpcErrorKind::MethodNotFound { stateless: false } => (200, METHOD_NOT_FOUND),
            RpcErrorKind::MethodNotFound { stateless: true } => (404, METHOD_NOT_FOUND),
            RpcErrorKind::InvalidParams => (200, INVALID_PARAMS),
            RpcErrorKind::InvalidRequestMeta => (400, INVALID_PARAMS),
        }
    }

    /// The JSON-RPC code as text: MCP telemetry's `error.type`.
    pub fn code_label(self) -> &'static str {
        match self.status_and_code().1 {
            rpc_code::PARSE_ERROR => "-32700",
            rpc_code::INVALID_REQUEST => "-32600",
            rpc_code::METHOD_NOT_FOUND => "-32601",
            rpc_code::INVALID_PARAMS => "-32602",
            rpc_code::SESSION_NOT_FOUND => "-32001",
            rpc_code::HEADER_MISMATCH => "-32020",
            rpc_code::UNSUPPORTED_PROTOCOL_VERSION => "-32022",
            _ => "-32603",
        }
    }
}

impl RpcError {
    fn into_reply(self) -> Reply {
        let (status, code) = self.kind.status_and_code();
        let mut error = json!({"code": code, "message": self.message});
        if let Some(data) = self.data {
            error["data"] = data;
        }
        let reply = Reply::json(status, &json!({"jsonrpc": "2.0", "id": self.id, "error": error}));
        match self.kind {
            RpcErrorKind::MethodNotAllowed => {
                reply.with_header(header::ALLOW, HeaderValue::from_static("POST, DELETE"))
            }
            _ => reply,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::reply::{Connection, ReplyBody};

    fn body(reply: &Reply) -> Value {
        match &reply.body {
            ReplyBody::Json(bytes) => serde_json::from_slice(bytes).expect("json"),
            ReplyBody::Empty | ReplyBody::Stream(_) => Value::Null,
        }
    }

    #[test]
    fn a_refusal_names_the_request_and_nothing_else() {
        let reply = EdgeError::NotFound.into_reply("req-1");
        assert_eq!(reply.status, 404);
        assert_eq!(body(&reply), json!({"error": "not found", "request_id": "req-1"}));
        assert!(reply.headers.is_empty());
    }

    #[test]
    fn refusals_carry_their_headers() {
        let reply = EdgeError::TooManyRequests { retry_after_seconds: 7 }.into_reply("r");
        assert_eq!((reply.status, reply.headers[0].1.to_str().ok()), (429, Some("7")));
        let challenge = HeaderValue::from_static("Bearer realm=\"mcp-edge\"");
        let reply = EdgeError::Unauthorized { failure: AuthFailure::Expired, challenges: vec![challenge.clone()] }
            .into_reply("r");
        assert_eq!(reply.headers, vec![(header::WWW_AUTHENTICATE, challenge)]);
        let dpop = HeaderValue::from_static("DPoP error=\"invalid_dpop_proof\"");
        let challenges = vec![HeaderValue::from_static("Bearer realm=\"mcp-edge\""), dpop.clone()];
        let reply = EdgeError::Unauthorized { failure: AuthFailure::InvalidDpopProof, challenges }.into_reply("r");
        assert_eq!(reply.headers.len(), 2, "one WWW-Authenticate header per challenge");
        assert_eq!(reply.headers[1], (header::WWW_AUTHENTICATE, dpop));
        let reply = EdgeError::DpopReplayCacheFull { retry_after_seconds: 30 }.into_reply("r");
        assert_eq!((reply.status, reply.headers[0].1.to_str().ok()), (503, Some("30")));
        let reply = EdgeError::MethodNotAllowed { allow: "GET" }.into_reply("r");
        assert_eq!((reply.status, reply.headers[0].0.clone()), (405, header::ALLOW));
    }

    #[test]
    fn unknown_framing_closes_the_connection() {
        assert_eq!(EdgeError::InvalidContentLength.into_reply("r").connection, Connection::Close);
        assert_eq!(EdgeError::UnsupportedTransferCoding.into_reply("r").status, 501);
        assert_eq!(EdgeError::BadRequest.into_reply("r").connection, Connection::KeepAlive);
    }

    #[test]
    fn json_rpc_errors_map_their_kind_to_status_and_code() {
        let reply = EdgeError::from(RpcError::new(json!(7), RpcErrorKind::HeaderMismatch, "no")).into_reply("r");
        assert_eq!(reply.status, 400);
        assert_eq!(body(&reply), json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32020, "message": "no"}}));
        let stateless = RpcError::new(json!(1), RpcErrorKind::MethodNotFound { stateless: true }, "m");
        assert_eq!(stateless.into_reply().status, 404);
        let session = RpcError::new(json!(1), RpcErrorKind::MethodNotFound { stateless: false }, "m");
        assert_eq!(session.into_reply().status, 200);
    }
}
