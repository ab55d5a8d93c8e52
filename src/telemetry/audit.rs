//! The audit log: one JSON object per line, ECS field names as flat dotted keys, written by a
//! bounded non-blocking writer so an audit sink can never stall a request.
//!
//! Every event is an [`AuditEvent`] built here; the request events come from the logging
//! phase (`edge::audit_request`), the others from the few places outside a request (breaker
//! transitions, reloads, credential sessions). When the writer's buffer is full a line is
//! dropped and counted (`mcp_edge_audit_dropped_total`); the next line that gets through
//! carries `audit.dropped` with how many were lost since the last report.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};

use crate::config::{Audit, AuditSink, Rotation};

/// Longest string value kept in `tool.arguments`.
const MAX_STRING_CHARS: usize = 256;
/// Largest event written.
const MAX_EVENT_BYTES: usize = 8 * 1024;

/// Event names (`event.action`): the contract of DESIGN.md §10, plus `HTTP_REQUEST`, one per
/// request, which joins a request's other events.
pub mod action {
    pub const HTTP_REQUEST: &str = "HTTP_REQUEST";
    pub const AUTH_SUCCESS: &str = "AUTH_SUCCESS";
    pub const AUTH_FAILED: &str = "AUTH_FAILED";
    pub const TOOL_EXECUTE: &str = "TOOL_EXECUTE";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const CORS_REJECTED: &str = "CORS_REJECTED";
    pub const SESSION_INIT: &str = "SESSION_INIT";
    pub const SESSION_REJECTED: &str = "SESSION_REJECTED";
    pub const SESSION_END: &str = "SESSION_END";
    pub const CIRCUIT_OPEN: &str = "CIRCUIT_OPEN";
    pub const CIRCUIT_CLOSED: &str = "CIRCUIT_CLOSED";
    pub const CONFIG_RELOAD: &str = "CONFIG_RELOAD";
    pub const CERT_RELOAD: &str = "CERT_RELOAD";
}

/// One audit event. Field names are ECS (and OTel semantic conventions for MCP).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditEvent {
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    #[serde(rename = "event.action")]
    pub action: &'static str,
    #[serde(rename = "event.outcome")]
    pub outcome: &'static str,
    #[serde(rename = "event.reason", skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(rename = "event.duration", skip_serializing_if = "Option::is_none")]
    pub duration_ns: Option<u64>,
    #[serde(rename = "source.ip", skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(rename = "http.request.id", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(rename = "http.request.method", skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(rename = "url.path", skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(rename = "http.response.status_code", skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(rename = "user.id", skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(rename = "auth.method", skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<&'static str>,
    #[serde(rename = "gen_ai.tool.name", skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(rename = "mcp.method.name", skip_serializing_if = "Option::is_none")]
    pub mcp_method: Option<String>,
    #[serde(rename = "tool.arguments", skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
    #[serde(rename = "tool.is_error", skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[serde(rename = "upstream.status_code", skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    /// A credential session, as the first 8 hex digits of its id's SHA-256.
    #[serde(rename = "session.id", skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(rename = "upstream.name", skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(rename = "trace.id", skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(rename = "audit.dropped", skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
}

impl AuditEvent {
    pub fn new(action: &'static str, outcome: &'static str) -> Self {
        Self { timestamp: rfc3339_now(), action, outcome, ..Self::default() }
    }
}

struct Auditor {
    writer: NonBlocking,
    errors: ErrorCounter,
    reported_drops: AtomicUsize,
    guard: Mutex<Option<WorkerGuard>>,
    redact_keys: Vec<String>,
}

static AUDITOR: OnceLock<Auditor> = OnceLock::new();

/// Opens the audit sink. Call once at startup; later calls keep the first sink.
pub fn install(audit: &Audit) -> Result<(), String> {
    let builder =
        NonBlockingBuilder::default().buffered_lines_limit(audit.buffer_lines).lossy(true).thread_name("audit-writer");
    let (writer, guard) = match &audit.sink {
        AuditSink::Stdout => builder.finish(std::io::stdout()),
        AuditSink::File { path, rotation } => {
            let directory =
                path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            let file_name = path.file_name().and_then(|name| name.to_str()).unwrap_or("audit.log");
            let rolling = tracing_appender::rolling::Builder::new().filename_prefix(file_name);
            // Rotated files are pruned (two days of hourly files); a never-rotated file is the
            // path itself and nothing is pruned.
            let rolling = match rotation {
                Rotation::Hourly => rolling.rotation(tracing_appender::rolling::Rotation::HOURLY).max_log_files(48),
                Rotation::Daily => rolling.rotation(tracing_appender::rolling::Rotation::DAILY).max_log_files(14),
                Rotation::Never => rolling.rotation(tracing_appender::rolling::Rotation::NEVER),
            };
            let appender = rolling
                .build(directory)
                .map_err(|error| format!("cannot open the audit log {}: {error}", path.display()))?;
            builder.finish(appender)
        }
    };
    let errors = writer.error_counter();
    let auditor = Auditor {
        writer,
        errors,
        reported_drops: AtomicUsize::new(0),
        guard: Mutex::new(Some(guard)),
        redact_keys: audit.redact_keys.iter().map(|key| key.to_ascii_lowercase()).collect(),
    };
    let _ = AUDITOR.set(auditor);
    Ok(())
}

/// Writes an event; never blocks. A no-op until [`install`] ran (unit tests, `validate`).
pub fn emit(mut event: AuditEvent) {
    let Some(auditor) = AUDITOR.get() else { return };
    let dropped = auditor.errors.dropped_lines();
    let reported = auditor.reported_drops.load(Ordering::Relaxed);
    if dropped > reported {
        event.dropped = Some((dropped - reported) as u64);
    }
    let Some(mut line) = serialize_bounded(&event) else { return };
    line.push(b'\n');
    let mut writer = auditor.writer.clone();
    let _ = std::io::Write::write_all(&mut writer, &line);
    if dropped > reported && auditor.errors.dropped_lines() == dropped {
        // This line got through and carried the count.
        auditor.reported_drops.store(dropped, Ordering::Relaxed);
    }
}

/// Lines lost because the sink could not keep up.
pub fn dropped_total() -> u64 {
    AUDITOR.get().map_or(0, |auditor| auditor.errors.dropped_lines() as u64)
}

/// The configured `redact_keys`, lower-cased (empty until installed).
pub fn redact_keys() -> &'static [String] {
    AUDITOR.get().map_or(&[], |auditor| auditor.redact_keys.as_slice())
}

/// Flushes what is buffered (at most about a second) and closes the sink.
pub fn flush() {
    if let Some(auditor) = AUDITOR.get()
        && let Ok(mut guard) = auditor.guard.lock()
    {
        drop(guard.take());
    }
}

fn serialize_bounded(event: &AuditEvent) -> Option<Vec<u8>> {
    let line = serde_json::to_vec(event).ok()?;
    if line.len() <= MAX_EVENT_BYTES {
        return Some(line);
    }
    let mut smaller = event.clone();
    smaller.arguments = Some(Value::String("[TRUNCATED]".to_string()));
    smaller.path = smaller.path.map(|path| path.chars().take(MAX_STRING_CHARS).collect());
    let line = serde_json::to_vec(&smaller).ok()?;
    (line.len() <= MAX_EVENT_BYTES).then_some(line)
}

/// A copy of `value` where every object key in `redact_keys` (any depth, case-insensitive)
/// holds `"[REDACTED]"` and every string is cut at 256 characters.
pub fn redact(value: &Value, redact_keys: &[String]) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| {
                    let lower = key.to_ascii_lowercase();
                    if redact_keys.contains(&lower) {
                        (key.clone(), Value::String("[REDACTED]".to_string()))
                    } else {
                        (key.clone(), redact(value, redact_keys))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|item| redact(item, redact_keys)).collect()),
        Value::String(text) if text.chars().count() > MAX_STRING_CHARS => {
            Value::String(text.chars().take(MAX_STRING_CHARS).collect())
        }
        other => other.clone(),
    }
}

/// Now as RFC 3339 in UTC with milliseconds (`2026-11-21T20:21:03.123Z`).
pub fn rfc3339_now() -> String {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = elapsed.as_secs();
    let (days, in_day) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
        elapsed.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn redaction_is_deep_and_case_insensitive_and_strings_are_cut() {
        let keys: Vec<String> = ["password", "apikey", "token"].iter().map(|k| k.to_string()).collect();
        let arguments = json!({
            "companyId": "42",
            "Password": "hunter2",
            "nested": {"apiKey": "k-123", "list": [{"TOKEN": "t"}, "plain"]},
            "long": "x".repeat(300),
        });
        let redacted = redact(&arguments, &keys);
        assert_eq!(redacted["companyId"], "42");
        assert_eq!(redacted["Password"], "[REDACTED]");
        assert_eq!(redacted["nested"]["apiKey"], "[REDACTED]");
        assert_eq!(redacted["nested"]["list"][0]["TOKEN"], "[REDACTED]");
        assert_eq!(redacted["nested"]["list"][1], "plain");
        assert_eq!(redacted["long"].as_str().map(str::len), Some(256));
    }

    #[test]
    fn events_use_ecs_names_and_stay_under_8_kib() {
        let mut event = AuditEvent::new(action::TOOL_EXECUTE, "success");
        event.request_id = Some("abc".into());
        event.tool = Some("get_shifts".into());
        event.arguments = Some(json!({"blob": "y".repeat(200), "many": vec!["z".repeat(250); 100]}));
        let line = serialize_bounded(&event).expect("serialised");
        assert!(line.len() <= MAX_EVENT_BYTES);
        let parsed: Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(parsed["event.action"], "TOOL_EXECUTE");
        assert_eq!(parsed["http.request.id"], "abc");
        assert_eq!(parsed["gen_ai.tool.name"], "get_shifts");
        assert_eq!(parsed["tool.arguments"], "[TRUNCATED]");
        assert!(parsed.get("user.id").is_none(), "absent fields are omitted");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let now = rfc3339_now();
        assert_eq!(now.len(), 24);
        assert!(now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
        assert!(now.starts_with("20"));
    }
}
