//! The policy loader: any bytes as a policy file.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_edge_fuzz::policy(data));
