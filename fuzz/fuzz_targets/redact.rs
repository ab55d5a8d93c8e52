//! The audit redactor: redact keys and a JSON argument object.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_edge_fuzz::redact(data));
