//! A tool call end to end: the arguments made lenient ([`super::coerce`], when
//! `mcp.coerce_arguments` is on) and validated against the tool's schema, the target
//! resolved ([`super::target`]), the REST request built ([`super::upstream_request`]) and sent,
//! the reply mapped ([`super::tool_result`]) and checked against the output schema.

use http::HeaderValue;
use serde_json::{Map, Value};

use super::catalogue::CatalogueTool;
use super::target::{CallTarget, CallTargets, TargetError};
use super::tool_result::{self, ToolResult};
use super::upstream_request;
use super::{Gateway, coerce};
use crate::request::Caller;
use crate::store::{Bucket, Rate, RateDecision, StoreUnavailable};
use crate::telemetry::trace_context::TraceContext;
use crate::upstream::CallEvent;

/// Calls `tool` for `caller`: to the upstream the targets resolve, or, without the credential
/// its `upstream.auth` mode needs, a tool error (logged). `None` when `X-Session-Id`
/// (`session_id`) names no live credential session of the caller: a 401.
pub async fn invoke(
    gateway: &Gateway,
    caller: &Caller<'_>,
    tool: &CatalogueTool,
    arguments: &Map<String, Value>,
    session_id: Option<&str>,
) -> Option<ToolResult> {
    match prepare(gateway, caller, tool, arguments, session_id).await {
        Prepared::Ready(call) => Some(call.run(tool, &|_| {}).await),
        Prepared::Finished(result) => Some(result),
        Prepared::UnknownSession => None,
    }
}

/// A call with its target resolved and its arguments made lenient, owning all it needs, so
/// that it can run on a task of its own (a streamed reply outlives the handler).
pub struct PreparedCall {
    target: CallTarget,
    arguments: Map<String, Value>,
    request_id: String,
    traceparent: Option<String>,
}

/// What `prepare` found.
pub enum Prepared {
    Ready(PreparedCall),
    /// The call ends here: over the tool's quota, the store down under `on_error: deny`, or
    /// no credential for its `upstream.auth` mode.
    Finished(ToolResult),
    /// `X-Session-Id` names no live credential session of the caller (401).
    UnknownSession,
}

/// Charges the tool's quota, resolves the target of a call of `tool` and coerces its
/// arguments (`mcp.coerce_arguments`).
pub async fn prepare(
    gateway: &Gateway,
    caller: &Caller<'_>,
    tool: &CatalogueTool,
    arguments: &Map<String, Value>,
    session_id: Option<&str>,
) -> Prepared {
    if let Some(refused) = over_quota(&gateway.targets, caller, tool).await {
        return Prepared::Finished(refused);
    }
    match gateway.targets.resolve(caller.principal, session_id).await {
        Ok(target) => {
            let mut arguments = arguments.clone();
            if gateway.coerce_arguments {
                coerce::arguments(&tool.config.input_schema, &mut arguments);
            }
            Prepared::Ready(PreparedCall {
                target,
                arguments,
                request_id: caller.request_id.to_string(),
                traceparent: caller.trace.map(TraceContext::child_traceparent),
            })
        }
        Err(TargetError::UnknownSession) => Prepared::UnknownSession,
        Err(TargetError::StoreUnavailable) => {
            let mut refused = ToolResult::error("try again later", 503);
            refused.retry_after_seconds = Some(STORE_RETRY_AFTER_SECONDS);
            Prepared::Finished(refused)
        }
        Err(TargetError::Credential(error)) => {
            let request_id = caller.request_id;
            tracing::warn!(request_id, tool = %tool.config.name, %error, "No upstream credential for a tool call");
            Prepared::Finished(ToolResult::unavailable_credential())
        }
    }
}

/// How long a caller waits when the store is down and `on_error: deny` refuses.
const STORE_RETRY_AFTER_SECONDS: u64 = 1;

/// The tool's own quota (`tools[].rate_limit`), per principal: `Some` refusal when it is used
/// up (a tool result `isError` "rate limited, retry in N s"; REST 429 with `Retry-After`).
/// Without a principal (`auth.mode: none`) every caller shares the tool's quota.
async fn over_quota(targets: &CallTargets, caller: &Caller<'_>, tool: &CatalogueTool) -> Option<ToolResult> {
    let quota = tool.config.rate_limit?;
    let owner = caller.principal.map_or_else(|| "anonymous".to_string(), crate::request::Principal::owner_key);
    let bucket = Bucket::new("tool_quota", &[owner.as_bytes(), tool.config.name.as_bytes()]);
    match targets.quotas.check(&bucket, Rate::of(quota), true).await {
        Ok(RateDecision::Admitted { .. }) => None,
        Ok(RateDecision::Limited { retry_after_seconds }) => {
            let mut refused = ToolResult::error(format!("rate limited, retry in {retry_after_seconds} s"), 429);
            refused.retry_after_seconds = Some(retry_after_seconds);
            Some(refused)
        }
        Err(StoreUnavailable) => {
            let mut refused = ToolResult::error("try again later", 503);
            refused.retry_after_seconds = Some(STORE_RETRY_AFTER_SECONDS);
            Some(refused)
        }
    }
}

impl PreparedCall {
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Runs the call of `tool` (the one it was prepared for), telling `observe` about each
    /// upstream try.
    pub async fn run(&self, tool: &CatalogueTool, observe: &(dyn Fn(CallEvent) + Send + Sync)) -> ToolResult {
        call_tool(&self.target, tool, &self.arguments, &self.request_id, self.traceparent.clone(), observe).await
    }
}

/// Validates, calls the upstream and maps the reply.
async fn call_tool(
    target: &CallTarget,
    tool: &CatalogueTool,
    arguments: &Map<String, Value>,
    request_id: &str,
    traceparent: Option<String>,
    observe: &(dyn Fn(CallEvent) + Send + Sync),
) -> ToolResult {
    if let Err(message) = tool.validate(&Value::Object(arguments.clone())) {
        return ToolResult::error(message, 400);
    }
    let arguments = match with_policy_values(&tool.config, arguments) {
        Ok(arguments) => arguments,
        Err(message) => return ToolResult::error(message, 400),
    };
    let upstream = target.client.as_ref();
    let mut request = match upstream_request::build(upstream, &tool.config, &arguments) {
        Ok(request) => request,
        Err(message) => return ToolResult::error(message, 400),
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
    let outcome = upstream.send_observed(request, observe).await;
    let upstream_duration = started.elapsed();
    if let Err(error) = &outcome {
        tracing::warn!(request_id, tool = %tool.config.name, url.path = %tool.config.path, %error, "Upstream call failed");
    }
    let mut outcome = tool_result::map_reply(outcome, &tool.config.name);
    outcome.upstream_duration = Some(upstream_duration);
    if let Some(structured) = outcome.result.get("structuredContent")
        && !tool.output_conforms(structured)
    {
        tracing::warn!(request_id, tool = %tool.config.name, "Upstream reply does not match the tool's output_schema");
        let mut mismatch = ToolResult::error("the upstream reply does not match the tool's output schema", 502);
        mismatch.upstream_status = outcome.upstream_status;
        mismatch.upstream_duration = outcome.upstream_duration;
        return mismatch;
    }
    outcome
}

/// The caller's arguments with the policy's own: `tool_overrides` defaults for what the
/// caller left out, then the fixed values. A fixed argument is not in the published schema,
/// but a schema that allows undeclared arguments would let one through: it is refused here
/// by name whatever the schema says (§15, §18).
fn with_policy_values<'a>(
    tool: &crate::config::Tool,
    arguments: &'a Map<String, Value>,
) -> Result<std::borrow::Cow<'a, Map<String, Value>>, String> {
    if tool.fixed.is_empty() && tool.defaults.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(arguments));
    }
    if let Some(name) = arguments.keys().find(|name| tool.fixed.contains_key(*name)) {
        return Err(format!("invalid arguments: arguments: not declared by the tool: {name:?}"));
    }
    let mut merged = arguments.clone();
    for (name, value) in &tool.defaults {
        merged.entry(name.clone()).or_insert_with(|| value.clone());
    }
    merged.extend(tool.fixed.iter().map(|(name, value)| (name.clone(), value.clone())));
    Ok(std::borrow::Cow::Owned(merged))
}
