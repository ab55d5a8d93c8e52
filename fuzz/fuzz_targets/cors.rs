//! The CORS decision: allowed origins, a method and an Origin value.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_edge_fuzz::cors(data));
