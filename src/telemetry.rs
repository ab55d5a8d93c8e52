//! What the proxy tells operators and security teams: the operational log (stderr), the
//! audit log (its own sink), metrics and traces. The admin listener that serves them is
//! wiring (`crate::admin`), since it reads the current policy.

pub mod audit;
mod audit_writer;
pub mod logging;
pub mod metrics;
pub mod text;
pub mod trace_context;

/// Flushes the audit log and exports pending spans; call before the process exits.
pub fn flush() {
    audit::flush();
    logging::shutdown_tracing();
}
