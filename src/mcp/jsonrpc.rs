//! JSON-RPC 2.0 messages as MCP uses them: one message per POST (no batches).

use serde_json::{Map, Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Session-era: the `Mcp-Session-Id` is unknown or expired (the TypeScript SDK's code).
pub const SESSION_NOT_FOUND: i64 = -32001;
/// 2026-07-28: an `Mcp-*` header does not match the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// 2026-07-28: the requested protocol version is not supported.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// One incoming message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request {
        id: Value,
        method: String,
        params: Map<String, Value>,
    },
    Notification {
        method: String,
    },
    /// A response from the client (to a server request we never send): accepted and ignored.
    Response,
}

/// Why a body is not a usable message: the JSON-RPC error to answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub id: Value,
    pub code: i64,
    pub message: &'static str,
}

impl Message {
    pub fn parse(body: &[u8]) -> Result<Self, Rejection> {
        let reject = |id: Value, code, message| Rejection { id, code, message };
        let value: Value = serde_json::from_slice(body).map_err(|_| reject(Value::Null, PARSE_ERROR, "parse error"))?;
        let Value::Object(mut object) = value else {
            let message =
                if value.is_array() { "batches are not supported" } else { "a message must be a JSON object" };
            return Err(reject(Value::Null, INVALID_REQUEST, message));
        };
        let id = object.remove("id");
        let id_for_errors = id.clone().filter(valid_id).unwrap_or(Value::Null);
        if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(reject(id_for_errors, INVALID_REQUEST, "jsonrpc must be \"2.0\""));
        }
        if let Some(id) = &id
            && !valid_id(id)
        {
            return Err(reject(Value::Null, INVALID_REQUEST, "id must be a string or an integer"));
        }
        match object.remove("method") {
            Some(Value::String(method)) => {
                let params = match object.remove("params") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(params)) => params,
                    Some(_) => return Err(reject(id_for_errors, INVALID_REQUEST, "params must be an object")),
                };
                Ok(match id {
                    Some(id) => Message::Request { id, method, params },
                    None => Message::Notification { method },
                })
            }
            Some(_) => Err(reject(id_for_errors, INVALID_REQUEST, "method must be a string")),
            None if id.is_some() && (object.contains_key("result") || object.contains_key("error")) => {
                Ok(Message::Response)
            }
            None => Err(reject(id_for_errors, INVALID_REQUEST, "not a request, notification or response")),
        }
    }
}

fn valid_id(id: &Value) -> bool {
    id.is_string() || id.as_i64().is_some() || id.as_u64().is_some()
}

/// Wraps `result`, moved rather than copied (`json!` would copy it, and a tool result can
/// hold a whole upstream reply).
pub fn result(id: Value, result: Value) -> Value {
    let mut envelope = Map::with_capacity(3);
    envelope.insert("jsonrpc".to_string(), Value::from("2.0"));
    envelope.insert("id".to_string(), id);
    envelope.insert("result".to_string(), result);
    Value::Object(envelope)
}

pub fn error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> i64 {
        Message::parse(body.as_bytes()).expect_err("rejected").code
    }

    #[test]
    fn requests_notifications_and_responses() {
        let message = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).expect("ok");
        assert_eq!(message, Message::Request { id: json!(1), method: "ping".into(), params: Map::new() });
        let message = Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).expect("ok");
        assert_eq!(message, Message::Notification { method: "notifications/initialized".into() });
        assert_eq!(Message::parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).expect("ok"), Message::Response);
    }

    #[test]
    fn every_malformed_shape_has_its_code() {
        assert_eq!(code("{not json"), PARSE_ERROR);
        assert_eq!(code(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":7}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#), INVALID_REQUEST);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#), INVALID_REQUEST);
        assert_eq!(code(r#""just a string""#), INVALID_REQUEST);
    }
}
