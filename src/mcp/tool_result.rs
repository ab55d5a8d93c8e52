//! A tool call's result, for both MCP and REST: the `CallToolResult` and the status
//! `POST /api/tools/{name}` answers with ([`ToolResult`]), and how an upstream reply (or its
//! absence) maps onto it ([`map_reply`]). Upstream error text is reduced to one sanitised
//! line of at most 1 KiB; transport details stay in the log.
//!
//! | upstream | MCP result | REST status |
//! |---|---|---|
//! | 2xx JSON object | `structuredContent` = body, plus one `text` content with the JSON | 200 |
//! | 2xx JSON non-object | `structuredContent` = `{"result": body}`, plus the text | 200 |
//! | 2xx text (`text/*`, XML, YAML, …) | one `text` content | 200 |
//! | 2xx `image/*`, `audio/*` | one `image` / `audio` content (base64 `data`, `mimeType`) | 200 |
//! | 2xx other types | one embedded `resource` with a base64 `blob` | 200 |
//! | 2xx `multipart/mixed` | one item per part, by its type (`mcp::content`) | 200 |
//! | 2xx larger than 4 MiB, or a broken multipart body | `isError`, saying so | 502 |
//! | 4xx | `isError`, the text names the status and the API's message | the same 4xx |
//! | 5xx, timeout, connect failure (after retries) | `isError`, generic text | 502 / 504 |
//! | breaker open | `isError`, "upstream unavailable, retry in N s" | 503 + `Retry-After` |
//! | arguments refused by the schema | `isError`, naming the fields | 400 |
//!
//! An unknown tool is not a result: JSON-RPC `-32602` on MCP, 404 on REST.

use serde_json::{Map, Value, json};

use super::content::{self, Kind};
use super::jsonrpc;
use crate::request::{ToolOutcome, ToolRecord};
use crate::upstream::client::MAX_REPLY_BYTES;
use crate::upstream::{UpstreamError, UpstreamReply};

/// Longest upstream error text passed on to the client.
const MAX_ERROR_TEXT: usize = 1024;

/// The result of a tool call, for both MCP and REST.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
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
    /// Set when `structuredContent` serialises to bytes the text content already holds, so
    /// that the reply's writer copies them ([`write_result`]).
    pub structured: Option<StructuredText>,
}

/// How a JSON reply's `structuredContent` relates to its text content, which is the same
/// JSON serialised by the same serialiser: an object's text is exactly what the object
/// serialises to; a non-object's is the value `{"result": …}` wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructuredText {
    /// `structuredContent` serialises to the text.
    Same,
    /// `structuredContent` serialises to `{"result":` + the text + `}`.
    Wrapped,
}

impl ToolResult {
    /// The call cannot carry the credential its `upstream.auth` mode needs.
    pub fn unavailable_credential() -> Self {
        Self::error("the upstream credential for this call is not available", 502)
    }

    /// The audit and metrics record of this call.
    pub fn record(&self, tool: &str, arguments: &Value) -> ToolRecord {
        let mut record = ToolRecord::new(tool, ToolOutcome::of(self.rest_status, self.is_error()), arguments);
        record.upstream_status = self.upstream_status;
        record.upstream_duration = self.upstream_duration;
        record
    }

    pub fn error(text: impl Into<String>, rest_status: u16) -> Self {
        Self {
            result: json!({"content": [{"type": "text", "text": text.into()}], "isError": true}),
            rest_status,
            retry_after_seconds: None,
            upstream_status: None,
            upstream_duration: None,
            structured: None,
        }
    }

    /// The result as JSON, byte for byte what `serde_json::to_vec(&self.result)` gives.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(256);
        write_result(&mut out, &self.result, self.structured)?;
        Ok(out)
    }

    pub fn is_error(&self) -> bool {
        self.result.get("isError").and_then(Value::as_bool).unwrap_or(false)
    }
}

/// Maps the upstream's answer to a call of `tool` (or its absence) onto a `CallToolResult`
/// (the table above).
pub fn map_reply(outcome: Result<UpstreamReply, UpstreamError>, tool: &str) -> ToolResult {
    let reply = match outcome {
        Ok(reply) => reply,
        Err(UpstreamError::Timeout) => return ToolResult::error("the upstream API did not answer in time", 504),
        Err(UpstreamError::Unavailable { retry_after_seconds }) => {
            let mut outcome = ToolResult::error(format!("upstream unavailable, retry in {retry_after_seconds} s"), 503);
            outcome.retry_after_seconds = Some(retry_after_seconds);
            return outcome;
        }
        Err(UpstreamError::ReplyTooLarge) => {
            let text = format!(
                "the upstream reply is larger than {} MiB, the most one tool result may carry",
                MAX_REPLY_BYTES >> 20
            );
            return ToolResult::error(text, 502);
        }
        Err(UpstreamError::Connect(_) | UpstreamError::Protocol(_)) => {
            return ToolResult::error("the upstream API failed", 502);
        }
    };
    let status = reply.status.as_u16();
    let mut outcome = if reply.status.is_success() {
        success(&reply, tool)
    } else if reply.status.is_client_error() {
        let reason = reply.status.canonical_reason().unwrap_or("error");
        let detail = error_text(&reply);
        let text = if detail.is_empty() {
            format!("upstream returned {status} {reason}")
        } else {
            format!("upstream returned {status} {reason}: {detail}")
        };
        ToolResult::error(text, status)
    } else {
        ToolResult::error("the upstream API failed", 502)
    };
    outcome.upstream_status = Some(status);
    outcome
}

fn success(reply: &UpstreamReply, tool: &str) -> ToolResult {
    let content_type = reply.content_type.as_deref();
    let kind = content::kind_of(content_type, &reply.body);
    let uri = format!("mcp-edge://tools/{tool}/result");
    let json = (kind == Kind::Json).then(|| serde_json::from_slice::<Value>(&reply.body).ok()).flatten();
    // Built by hand: `json!` copies every value it interpolates, and `structured` can be a
    // whole upstream reply.
    let (content, structured) = match (json, kind) {
        // (Serialising a `Value` cannot fail; if it did, the writer would walk the tree.)
        (Some(Value::Object(object)), _) => {
            let text = serde_json::to_string(&object);
            let shape = text.is_ok().then_some(StructuredText::Same);
            (vec![content::text(text.unwrap_or_default())], Some((object, shape)))
        }
        (Some(other), _) => {
            let text = serde_json::to_string(&other);
            let shape = text.is_ok().then_some(StructuredText::Wrapped);
            let wrapped = Map::from_iter([("result".to_string(), other)]);
            (vec![content::text(text.unwrap_or_default())], Some((wrapped, shape)))
        }
        (None, Kind::Multipart) => match content::multipart(content_type.unwrap_or_default(), &reply.body, &uri) {
            Ok(items) => (items, None),
            Err(problem) => return ToolResult::error(problem, 502),
        },
        (None, kind) => (vec![content::single(kind, content_type, &reply.body, &uri)], None),
    };
    let mut result = Map::with_capacity(3);
    result.insert("content".to_string(), Value::Array(content));
    let shape = structured.and_then(|(structured, shape)| {
        result.insert("structuredContent".to_string(), Value::Object(structured));
        shape
    });
    result.insert("isError".to_string(), Value::Bool(false));
    let result = Value::Object(result);
    ToolResult {
        result,
        rest_status: 200,
        retry_after_seconds: None,
        upstream_status: None,
        upstream_duration: None,
        structured: shape,
    }
}

/// Writes `result` (a `CallToolResult`, or any value) exactly as `serde_json::to_writer`
/// would. With `structured`, its `structuredContent` is copied from the first content's
/// text instead of walked a second time: for a 1 KB reply that is a fifth of a call's JSON
/// work (bench/README.md, "What a tools/call costs").
pub fn write_result(out: &mut Vec<u8>, result: &Value, structured: Option<StructuredText>) -> serde_json::Result<()> {
    let text = result.get("content").and_then(|content| content.get(0)).and_then(|first| first.get("text"));
    let (Some(shape), Some(Value::String(text)), Value::Object(members)) = (structured, text, result) else {
        return serde_json::to_writer(out, result);
    };
    jsonrpc::write_object(out, members, |out, key| {
        if key != "structuredContent" {
            return Ok(false);
        }
        match shape {
            StructuredText::Same => out.extend_from_slice(text.as_bytes()),
            StructuredText::Wrapped => {
                out.extend_from_slice(br#"{"result":"#);
                out.extend_from_slice(text.as_bytes());
                out.push(b'}');
            }
        }
        Ok(true)
    })
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| content::kind_of(Some(value), &[]) == Kind::Json)
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
    use bytes::Bytes;

    use super::*;

    fn reply(status: u16, content_type: &str, body: &str) -> Result<UpstreamReply, UpstreamError> {
        Ok(UpstreamReply {
            status: http::StatusCode::from_u16(status).expect("status"),
            content_type: Some(content_type.to_string()),
            retry_after: None,
            body: Bytes::from(body.to_string()),
        })
    }

    fn map_reply_t(outcome: Result<UpstreamReply, UpstreamError>) -> ToolResult {
        map_reply(outcome, "t")
    }

    #[test]
    fn successful_replies_become_structured_content() {
        let outcome = map_reply_t(reply(200, "application/json; charset=utf-8", r#"{"a":1}"#));
        assert_eq!(outcome.rest_status, 200);
        assert_eq!(outcome.result["structuredContent"], json!({"a": 1}));
        assert_eq!(outcome.result["content"][0]["text"], r#"{"a":1}"#);
        assert_eq!(outcome.result["isError"], false);
        let outcome = map_reply_t(reply(200, "application/json", "[1,2]"));
        assert_eq!(outcome.result["structuredContent"], json!({"result": [1, 2]}));
        let outcome = map_reply_t(reply(200, "text/plain", "hello"));
        assert_eq!(outcome.result["content"][0]["text"], "hello");
        assert!(outcome.result.get("structuredContent").is_none());
    }

    #[test]
    fn the_result_writer_gives_serde_jsons_bytes() {
        let bodies = [
            r#"{"b":[1,2.5,-3e10,"q\"b\\s\u0001 é\ud83d\ude00"],"a":{"nested":null,"t":true},"":{}}"#,
            r#"[1,{"k":"v"}]"#,
            r#""just a string""#,
            "42",
            "{}",
            "  {\n  \"pretty\" : [ 1 , 2 ]\n}  ",
        ];
        for body in bodies {
            let mut outcome = map_reply_t(reply(200, "application/json", body));
            assert!(outcome.structured.is_some(), "{body}");
            // The stateless era adds `resultType` after the call.
            outcome.result["resultType"] = json!("complete");
            let expected = String::from_utf8(serde_json::to_vec(&outcome.result).expect("json")).expect("utf-8");
            let written = String::from_utf8(outcome.to_json().expect("json")).expect("utf-8");
            assert_eq!(written, expected, "{body}");
            let message =
                jsonrpc::result_json(json!("id-7"), |out| write_result(out, &outcome.result, outcome.structured));
            let envelope = serde_json::to_vec(&jsonrpc::result(json!("id-7"), outcome.result.clone())).expect("json");
            assert_eq!(message.expect("json"), envelope, "{body}");
        }
        for (content_type, body) in [("text/plain", "hello"), ("application/json", "{not json")] {
            let outcome = map_reply_t(reply(200, content_type, body));
            assert_eq!(outcome.structured, None, "{body}: no structuredContent, nothing to copy");
            assert_eq!(outcome.to_json().expect("json"), serde_json::to_vec(&outcome.result).expect("json"));
        }
        let refused = ToolResult::error("nope", 400);
        assert_eq!(refused.to_json().expect("json"), serde_json::to_vec(&refused.result).expect("json"));
    }

    #[test]
    fn client_errors_pass_status_and_sanitised_text() {
        let outcome =
            map_reply_t(reply(404, "application/problem+json", r#"{"title":"Not Found","detail":"no company\n42"}"#));
        assert_eq!(outcome.rest_status, 404);
        assert!(outcome.is_error());
        assert_eq!(outcome.result["content"][0]["text"], "upstream returned 404 Not Found: no company 42: Not Found");
        let long = "x".repeat(5000);
        let outcome = map_reply_t(reply(422, "text/plain", &long));
        let text = outcome.result["content"][0]["text"].as_str().expect("text");
        assert!(text.len() <= MAX_ERROR_TEXT + 64);
    }

    #[test]
    fn server_errors_and_transport_failures_are_generic() {
        let outcome = map_reply_t(reply(500, "text/plain", "NullReferenceException at Foo.Bar()"));
        assert_eq!(outcome.rest_status, 502);
        assert_eq!(outcome.result["content"][0]["text"], "the upstream API failed");
        assert_eq!(map_reply_t(Err(UpstreamError::Timeout)).rest_status, 504);
        assert_eq!(map_reply_t(Err(UpstreamError::Connect("refused".into()))).rest_status, 502);
        let unavailable = map_reply_t(Err(UpstreamError::Unavailable { retry_after_seconds: 7 }));
        assert_eq!(unavailable.rest_status, 503);
        assert_eq!(unavailable.retry_after_seconds, Some(7));
        assert_eq!(unavailable.result["content"][0]["text"], "upstream unavailable, retry in 7 s");
    }
}
