//! What the proxy tells operators: the operational log (stderr) and the admin listener.

pub mod admin;
pub mod logging;
pub mod trace_context;
