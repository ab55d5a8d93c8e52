//! The REST view of the catalogue: `GET /api/tools` lists the same `Tool` objects as
//! `tools/list`; `POST /api/tools/{name}` takes the arguments as a JSON object and answers
//! the `CallToolResult` with the REST status of its outcome (the table in `mcp::tool_result`).

use http::header::HeaderValue;
use serde_json::{Map, Value, json};

use super::{Gateway, call};
use crate::request::{Caller, Downstream, EdgeError, Records, Reply, ToolOutcome, ToolRecord};

/// The path of the tool list; tool calls are below it.
pub const TOOLS_PATH: &str = "/api/tools";

/// `GET /api/tools`.
pub fn list(gateway: &Gateway, downstream: &dyn Downstream, caller: &Caller<'_>) -> Result<Reply, EdgeError> {
    if downstream.head().method != http::Method::GET {
        return Err(EdgeError::MethodNotAllowed { allow: "GET" });
    }
    // `?cursor=` pages the list as `tools/list` does; a cursor the catalogue did not issue
    // is a 400 like any malformed request.
    let cursor = downstream.head().uri.query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "cursor")
            .map(|(_, value)| value.into_owned())
    });
    let page = gateway
        .catalogue
        .page(caller.principal, cursor.as_deref(), gateway.page_size)
        .map_err(|_| EdgeError::BadRequest)?;
    let mut body = json!({"tools": page.tools});
    if let Some(next) = page.next_cursor {
        body["nextCursor"] = json!(next);
    }
    Ok(Reply::json(200, &body))
}

/// `POST /api/tools/{name}`.
pub async fn call(
    gateway: &Gateway,
    downstream: &mut dyn Downstream,
    caller: &Caller<'_>,
    records: &mut Records,
) -> Result<Reply, EdgeError> {
    if downstream.head().method != http::Method::POST {
        return Err(EdgeError::MethodNotAllowed { allow: "POST" });
    }
    let path = downstream.head().uri.path();
    let name = path.strip_prefix(TOOLS_PATH).and_then(|rest| rest.strip_prefix('/')).unwrap_or_default();
    let Some(tool) = gateway.catalogue.get(name) else {
        return Err(EdgeError::NotFound);
    };
    if let Err(refusal) = crate::request::scopes::require(caller.principal, &tool.config.scopes) {
        records.tool = Some(ToolRecord::new(&tool.config.name, ToolOutcome::Denied, &Value::Null));
        return Err(refusal);
    }
    let bytes = downstream.read_body(gateway.max_body_bytes).await?;
    let arguments = if bytes.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(arguments)) => arguments,
            _ => return Err(EdgeError::BadRequest),
        }
    };
    let session_id = downstream.header("x-session-id");
    let result = call::invoke(gateway, caller, tool, &arguments, session_id).await.ok_or(EdgeError::UnknownSession)?;
    records.tool = Some(result.record(&tool.config.name, &Value::Object(arguments)));
    let retry_after = result.retry_after_seconds.map(|seconds| (http::header::RETRY_AFTER, HeaderValue::from(seconds)));
    Ok(Reply::serialized(result.rest_status, result.to_json()).with_headers(retry_after))
}
