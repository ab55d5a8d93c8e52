//! Authentication: a raw Authorization value, or a JWT header and claims the target signs.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_edge_fuzz::auth(data));
