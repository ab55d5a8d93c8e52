//! The operational log: structured lines on stderr, JSON or text, filtered by `RUST_LOG`
//! when set, else by `telemetry.log_level` (which `LOG_LEVEL` overrides). The audit log is a
//! separate sink and never goes through here.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Telemetry};

/// Installs the global subscriber once; later calls are ignored (tests, demo restarts).
pub fn init(telemetry: &Telemetry) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directive| EnvFilter::builder().parse(directive).ok())
        .unwrap_or_else(|| EnvFilter::builder().parse_lossy(&telemetry.log_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match telemetry.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}
