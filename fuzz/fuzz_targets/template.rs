//! Tool path templates: a template and the arguments rendered into it.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_edge_fuzz::template(data));
