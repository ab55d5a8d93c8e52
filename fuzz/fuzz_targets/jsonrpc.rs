//! The JSON-RPC envelope parser: any bytes as a POST body.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_edge_fuzz::jsonrpc(data));
