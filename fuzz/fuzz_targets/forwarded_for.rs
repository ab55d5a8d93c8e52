//! The client-address resolver: a peer, trusted networks and an X-Forwarded-For value.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_edge_fuzz::forwarded_for(data));
