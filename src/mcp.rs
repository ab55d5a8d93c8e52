//! The MCP gateway: JSON-RPC over Streamable HTTP on `mcp.path`, for both protocol
//! generations, and the REST view of the same tools on `/api/tools`.
//!
//! `jsonrpc` parses and builds messages; `endpoint` is the MCP endpoint (both eras);
//! `session` signs self-contained session ids; `catalogue` holds the tools with their
//! compiled schemas; `translate` turns arguments into an upstream request and the reply into a
//! `CallToolResult`; `rest` serves `/api/tools`. Path templates live in `config::template`.

pub mod catalogue;
pub mod endpoint;
pub mod jsonrpc;
pub mod rest;
pub mod session;
pub mod translate;
