//! The REST view of the catalogue: `GET /api/tools` lists the same `Tool` objects as
//! `tools/list`; `POST /api/tools/{name}` takes the arguments as a JSON object and answers
//! the `CallToolResult` with the statuses of DESIGN.md §6.4.

use http::header::HeaderValue;
use pingora::Result;
use pingora::proxy::Session;
use serde_json::{Map, Value, json};

use super::translate;
use crate::edge::auth::scopes;
use crate::edge::body;
use crate::edge::context::RequestContext;
use crate::edge::observe::ToolRecord;
use crate::edge::respond::{self, EdgeError};

/// The path prefix of the REST tool routes.
pub const TOOLS_PATH: &str = "/api/tools";

pub async fn list(session: &mut Session, ctx: &mut RequestContext) -> Result<()> {
    if session.req_header().method != http::Method::GET {
        return respond::write_error(session, ctx, EdgeError::MethodNotAllowed { allow: "GET" }).await;
    }
    let tools = ctx.policy.catalogue.list(ctx.principal.as_ref());
    respond::write_json(session, ctx, 200, &json!({"tools": tools}), &[]).await
}

pub async fn call(session: &mut Session, ctx: &mut RequestContext, name: &str) -> Result<()> {
    if session.req_header().method != http::Method::POST {
        return respond::write_error(session, ctx, EdgeError::MethodNotAllowed { allow: "POST" }).await;
    }
    let policy = std::sync::Arc::clone(&ctx.policy);
    let Some(tool) = policy.catalogue.get(name) else {
        return respond::write_error(session, ctx, EdgeError::NotFound).await;
    };
    if !tool.allowed_for(ctx.principal.as_ref()) {
        ctx.tool_record = Some(ToolRecord::new(name, "denied", &Value::Null));
        ctx.scope_challenge = HeaderValue::try_from(scopes::insufficient_scope_challenge(&tool.tool.scopes)).ok();
        return respond::write_error(session, ctx, EdgeError::InsufficientScope).await;
    }
    let bytes = match body::read(session, policy.config.limits.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(error) => return respond::write_error(session, ctx, error).await,
    };
    let arguments = if bytes.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(arguments)) => arguments,
            _ => return respond::write_error(session, ctx, EdgeError::BadRequest).await,
        }
    };
    let session_id =
        session.req_header().headers.get("x-session-id").and_then(|value| value.to_str().ok()).map(str::to_string);
    let Some(outcome) = translate::invoke(ctx, tool, &arguments, session_id.as_deref()).await else {
        return respond::write_error(session, ctx, EdgeError::UnknownSession).await;
    };
    ctx.tool_record = Some(outcome.record(name, &Value::Object(arguments)));
    let headers: Vec<_> = outcome
        .retry_after_seconds
        .map(|seconds| (http::header::RETRY_AFTER, HeaderValue::from(seconds)))
        .into_iter()
        .collect();
    respond::write_json(session, ctx, outcome.rest_status, &outcome.result, &headers).await
}
