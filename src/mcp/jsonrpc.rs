//! JSON-RPC 2.0 messages as MCP uses them: one message per POST (no batches).

use serde_json::{Map, Value};

use crate::request::{RpcError, RpcErrorKind};

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
        params: Map<String, Value>,
    },
    /// A response from the client (to a server request we never send): accepted and ignored.
    Response,
}

impl Message {
    /// The message in `body`, or the JSON-RPC error to answer with (a parse error for
    /// anything that is not JSON, else an invalid request).
    pub fn parse(body: &[u8]) -> Result<Self, RpcError> {
        let reject = |id: Value, kind, message: &'static str| RpcError::new(id, kind, message);
        let value: Value =
            serde_json::from_slice(body).map_err(|_| reject(Value::Null, RpcErrorKind::ParseError, "parse error"))?;
        let Value::Object(mut object) = value else {
            let message =
                if value.is_array() { "batches are not supported" } else { "a message must be a JSON object" };
            return Err(reject(Value::Null, RpcErrorKind::InvalidMessage, message));
        };
        let id = object.remove("id");
        let id_for_errors = id.clone().filter(valid_id).unwrap_or(Value::Null);
        if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(reject(id_for_errors, RpcErrorKind::InvalidMessage, "jsonrpc must be \"2.0\""));
        }
        if let Some(id) = &id
            && !valid_id(id)
        {
            return Err(reject(Value::Null, RpcErrorKind::InvalidMessage, "id must be a string or an integer"));
        }
        match object.remove("method") {
            Some(Value::String(method)) => {
                let params = match object.remove("params") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(params)) => params,
                    Some(_) => {
                        return Err(reject(id_for_errors, RpcErrorKind::InvalidMessage, "params must be an object"));
                    }
                };
                Ok(match id {
                    Some(id) => Message::Request { id, method, params },
                    None => Message::Notification { method, params },
                })
            }
            Some(_) => Err(reject(id_for_errors, RpcErrorKind::InvalidMessage, "method must be a string")),
            None if id.is_some() && (object.contains_key("result") || object.contains_key("error")) => {
                Ok(Message::Response)
            }
            None => Err(reject(id_for_errors, RpcErrorKind::InvalidMessage, "not a request, notification or response")),
        }
    }
}

fn valid_id(id: &Value) -> bool {
    id.is_string() || id.as_i64().is_some() || id.as_u64().is_some()
}

/// Wraps `result`, moved rather than copied (`json!` would copy it, and a tool result can
/// hold a whole upstream reply).
pub fn result(id: Value, result: Value) -> Value {
    Value::Object(envelope(id, result))
}

fn envelope(id: Value, result: Value) -> Map<String, Value> {
    let mut envelope = Map::with_capacity(3);
    envelope.insert("jsonrpc".to_string(), Value::from("2.0"));
    envelope.insert("id".to_string(), id);
    envelope.insert("result".to_string(), result);
    envelope
}

/// The bytes `serde_json::to_vec(&result(id, …))` gives, with the result written by
/// `write_result` (which must write what serde_json would).
pub fn result_json(
    id: Value,
    write_result: impl Fn(&mut Vec<u8>) -> serde_json::Result<()>,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(512);
    write_object(&mut out, &envelope(id, Value::Null), |out, key| {
        if key != "result" {
            return Ok(false);
        }
        write_result(out).map(|()| true)
    })?;
    Ok(out)
}

/// Writes `members` as `serde_json::to_writer` writes an object (compact, in the map's
/// order), except the values `special` writes itself (it returns whether it did).
pub fn write_object(
    out: &mut Vec<u8>,
    members: &Map<String, Value>,
    mut special: impl FnMut(&mut Vec<u8>, &str) -> serde_json::Result<bool>,
) -> serde_json::Result<()> {
    out.push(b'{');
    for (index, (key, value)) in members.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, key)?;
        out.push(b':');
        if !special(out, key)? {
            serde_json::to_writer(&mut *out, value)?;
        }
    }
    out.push(b'}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    fn kind(body: &str) -> RpcErrorKind {
        Message::parse(body.as_bytes()).expect_err("rejected").kind
    }

    #[test]
    fn requests_notifications_and_responses() {
        let message = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).expect("ok");
        assert_eq!(message, Message::Request { id: json!(1), method: "ping".into(), params: Map::new() });
        let message = Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).expect("ok");
        assert_eq!(message, Message::Notification { method: "notifications/initialized".into(), params: Map::new() });
        assert_eq!(Message::parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).expect("ok"), Message::Response);
    }

    #[test]
    fn every_malformed_shape_has_its_code() {
        assert_eq!(kind("{not json"), RpcErrorKind::ParseError);
        assert_eq!(kind(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#), RpcErrorKind::InvalidMessage);
        assert_eq!(kind(r#"{"jsonrpc":"2.0","id":1,"method":7}"#), RpcErrorKind::InvalidMessage);
        assert_eq!(kind(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#), RpcErrorKind::InvalidMessage);
        assert_eq!(kind(r#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#), RpcErrorKind::InvalidMessage);
        assert_eq!(kind(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#), RpcErrorKind::InvalidMessage);
        assert_eq!(kind(r#""just a string""#), RpcErrorKind::InvalidMessage);
    }
}
