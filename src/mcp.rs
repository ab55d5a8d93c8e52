//! The MCP gateway: JSON-RPC over Streamable HTTP on `mcp.path`, for both protocol
//! generations, and the REST view of the same tools on `/api/tools`. Handlers take a
//! [`Downstream`](crate::request::Downstream) and return a [`Reply`](crate::request::Reply) or
//! an [`EdgeError`](crate::request::EdgeError); they never see the connection.
//!
//! `jsonrpc` parses and builds messages; `endpoint` is the MCP endpoint (both eras);
//! `session_keys` signs self-contained MCP session ids; `observe` is its telemetry (the MCP
//! span and `mcp.server.operation.duration`); `catalogue` holds the tools with
//! their compiled schemas (and, from `param_headers`, the `Mcp-Param-*` headers they call for); `call` runs a tool call (its
//! arguments first made lenient by `coerce`): `target` picks the upstream and
//! credential, `upstream_request` builds the REST request, `tool_result` maps the reply to a
//! `CallToolResult`, with `content` turning a body of a media type (or a multipart body)
//! into content items; `rest` serves `/api/tools`. Path templates live in `config::template`.

pub mod call;
pub mod catalogue;
pub mod coerce;
pub mod content;
pub mod endpoint;
pub mod jsonrpc;
pub mod observe;
pub mod param_headers;
pub mod progress;
pub mod rest;
pub mod session_keys;
pub mod target;
pub mod tool_result;
pub mod upstream_request;

use std::sync::Arc;

use catalogue::Catalogue;
use session_keys::SessionKeys;
use target::CallTargets;

/// What the MCP endpoint and the REST tool routes of one policy work with.
#[derive(Debug)]
pub struct Gateway {
    pub catalogue: Catalogue,
    /// Signs and checks `Mcp-Session-Id`s (session era).
    pub session_keys: Arc<SessionKeys>,
    pub targets: CallTargets,
    /// `mcp.server_name`, in `serverInfo`.
    pub server_name: String,
    /// `limits.max_body_bytes`: the largest request body a handler reads.
    pub max_body_bytes: u64,
    /// `mcp.page_size`: tools per `tools/list` and `GET /api/tools` page.
    pub page_size: usize,
    /// `mcp.coerce_arguments`: lossless scalar coercion before validation (`coerce`).
    pub coerce_arguments: bool,
}
