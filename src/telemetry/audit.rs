//! The audit log: one JSON object per line, ECS field names as flat dotted keys, written in
//! batches by a bounded writer thread (`audit_writer`) so an audit sink can never stall a
//! request.
//!
//! Every event is an [`AuditEvent`] built here; the request events come from the logging
//! phase (`edge::observe::finish_request`), the others from the few places outside a
//! request (breaker transitions, reloads, credential sessions). When the writer's buffer is
//! full a line is dropped and counted (`mcp_edge_audit_dropped_total`); the next line that
//! gets through carries `audit.dropped` with how many were lost since the last report. An
//! event over 8 KiB is shortened to fit, never dropped.

use std::borrow::Cow;
use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

mod json;

use super::audit_writer::BatchWriter;
use crate::config::{Audit, AuditSink, Rotation};

/// Longest string value kept in `tool.arguments`.
const MAX_STRING_CHARS: usize = 256;
/// Largest event written.
const MAX_EVENT_BYTES: usize = 8 * 1024;

/// Event names (`event.action`): a contract (OPERATIONS.md lists them, and dashboards match on them), plus `HTTP_REQUEST`, one per
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

/// One audit event. Field names are ECS (and OTel semantic conventions for MCP). Strings are
/// borrowed where the request still owns them, so building an event costs no copies.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditEvent<'a> {
    #[serde(rename = "@timestamp")]
    pub timestamp: Timestamp,
    #[serde(rename = "event.action")]
    pub action: &'static str,
    #[serde(rename = "event.outcome")]
    pub outcome: &'static str,
    #[serde(rename = "event.reason", skip_serializing_if = "Option::is_none")]
    pub reason: Option<Cow<'a, str>>,
    #[serde(rename = "event.duration", skip_serializing_if = "Option::is_none")]
    pub duration_ns: Option<u64>,
    #[serde(rename = "source.ip", skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    #[serde(rename = "http.request.id", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Cow<'a, str>>,
    #[serde(rename = "http.request.method", skip_serializing_if = "Option::is_none")]
    pub method: Option<Cow<'a, str>>,
    #[serde(rename = "url.path", skip_serializing_if = "Option::is_none")]
    pub path: Option<Cow<'a, str>>,
    #[serde(rename = "http.response.status_code", skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(rename = "user.id", skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Cow<'a, str>>,
    #[serde(rename = "auth.method", skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<&'static str>,
    /// The RFC 7638 thumbprint of a DPoP proof's key (never the proof).
    #[serde(rename = "dpop.jkt", skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<Cow<'a, str>>,
    #[serde(rename = "gen_ai.tool.name", skip_serializing_if = "Option::is_none")]
    pub tool: Option<Cow<'a, str>>,
    #[serde(rename = "mcp.method.name", skip_serializing_if = "Option::is_none")]
    pub mcp_method: Option<Cow<'a, str>>,
    #[serde(rename = "tool.arguments", skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Cow<'a, Value>>,
    #[serde(rename = "tool.is_error", skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[serde(rename = "upstream.status_code", skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    /// A credential session, as the first 8 hex digits of its id's SHA-256.
    #[serde(rename = "session.id", skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Cow<'a, str>>,
    #[serde(rename = "upstream.name", skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Cow<'a, str>>,
    #[serde(rename = "trace.id", skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<Cow<'a, str>>,
    #[serde(rename = "audit.dropped", skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
}

impl AuditEvent<'_> {
    pub fn new(action: &'static str, outcome: &'static str) -> Self {
        Self { timestamp: Timestamp::now(), action, outcome, ..Self::default() }
    }
}

/// A UTC time as RFC 3339 with milliseconds (`2026-11-21T20:21:03.123Z`), formatted without
/// allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Timestamp([u8; 24]);

impl Timestamp {
    pub fn now() -> Self {
        Self::at(SystemTime::now())
    }

    pub fn at(time: SystemTime) -> Self {
        let elapsed = time.duration_since(UNIX_EPOCH).unwrap_or_default();
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
        let mut text = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, value: u64| {
            let mut value = value;
            for position in (at..at + width).rev() {
                text[position] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year.clamp(0, 9999) as u64);
        put(5, 2, month as u64);
        put(8, 2, day as u64);
        put(11, 2, in_day / 3600);
        put(14, 2, in_day % 3600 / 60);
        put(17, 2, in_day % 60);
        put(20, 3, u64::from(elapsed.subsec_millis()));
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.0).unwrap_or("1970-01-01T00:00:00.000Z")
    }
}

impl Default for Timestamp {
    fn default() -> Self {
        Self(*b"1970-01-01T00:00:00.000Z")
    }
}

impl std::fmt::Debug for Timestamp {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

struct Auditor {
    writer: BatchWriter,
    redact_keys: Vec<String>,
}

static AUDITOR: OnceLock<Auditor> = OnceLock::new();

thread_local! {
    /// Each thread's serialisation buffer, so an event costs no allocation for its line.
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
}

/// Opens the audit sink. Call once at startup; later calls keep the first sink.
pub fn install(audit: &Audit) -> Result<(), String> {
    if AUDITOR.get().is_some() {
        return Ok(());
    }
    let sink: Box<dyn std::io::Write + Send> = match &audit.sink {
        AuditSink::Stdout => Box::new(std::io::stdout()),
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
            Box::new(appender)
        }
    };
    let writer = BatchWriter::start(sink, audit.buffer_lines, "audit-writer")
        .map_err(|error| format!("cannot start the audit writer: {error}"))?;
    let redact_keys = audit.redact_keys.iter().map(|key| redaction_form(key)).filter(|key| !key.is_empty()).collect();
    let _ = AUDITOR.set(Auditor { writer, redact_keys });
    Ok(())
}

/// Writes an event; never blocks. A no-op until [`install`] ran (unit tests, `validate`).
pub fn emit(mut event: AuditEvent) {
    let Some(auditor) = AUDITOR.get() else { return };
    let unreported = auditor.writer.unreported_drops();
    if unreported > 0 {
        event.dropped = Some(unreported);
    }
    LINE.with_borrow_mut(|line| {
        if serialize_bounded(&event, line) {
            line.push(b'\n');
            auditor.writer.push(line, unreported);
        } else {
            auditor.writer.count_lost_line();
        }
        // One huge event must not pin its buffer for the thread's life.
        line.shrink_to(MAX_EVENT_BYTES + 1);
    });
}

/// Lines lost because the sink could not keep up.
pub fn dropped_total() -> u64 {
    AUDITOR.get().map_or(0, |auditor| auditor.writer.dropped_total())
}

/// The configured `redact_keys` in [`redaction_form`] (empty until installed).
pub fn redact_keys() -> &'static [String] {
    AUDITOR.get().map_or(&[], |auditor| auditor.redact_keys.as_slice())
}

/// Writes what is buffered (waiting at most a second for the sink) and closes it.
pub fn flush() {
    if let Some(auditor) = AUDITOR.get() {
        auditor.writer.close(std::time::Duration::from_secs(1));
    }
}

/// Serialises `event` into `line`; an event over [`MAX_EVENT_BYTES`] is shortened rather
/// than lost: its arguments become `"[TRUNCATED]"`, then its longest string is cut (ending in
/// `…`) until it fits, whichever field that is (a 9 KB JSON-RPC method, a long JWT `sub`), so
/// the request id and status survive. False only if it cannot be serialised at all.
fn serialize_bounded(event: &AuditEvent, line: &mut Vec<u8>) -> bool {
    line.clear();
    if json::write_event(event, line).is_ok() && line.len() <= MAX_EVENT_BYTES {
        return true;
    }
    let mut smaller = event.clone();
    if smaller.arguments.is_some() {
        smaller.arguments = Some(Cow::Owned(Value::String("[TRUNCATED]".to_string())));
    }
    // Each round removes at least the excess from one string, so a round per field suffices.
    for _ in 0..=string_fields(&mut smaller).len() {
        line.clear();
        if json::write_event(&smaller, line).is_err() {
            return false;
        }
        if line.len() <= MAX_EVENT_BYTES {
            return true;
        }
        let excess = line.len() - MAX_EVENT_BYTES;
        let mut fields = string_fields(&mut smaller);
        let Some(longest) = fields
            .iter_mut()
            .filter_map(|field| field.as_mut())
            .max_by_key(|text| text.len())
            .filter(|text| text.len() > TRUNCATION_MARK.len())
        else {
            return false;
        };
        let keep = longest.chars().count().saturating_sub(excess + TRUNCATION_MARK.len());
        let cut: String = longest.chars().take(keep).chain(TRUNCATION_MARK.chars()).collect();
        *longest = Cow::Owned(cut);
    }
    false
}

/// Ends a string the audit log had to cut.
const TRUNCATION_MARK: &str = "…";

/// Every string field of an event, for shortening.
fn string_fields<'e, 'a>(event: &'e mut AuditEvent<'a>) -> [&'e mut Option<Cow<'a, str>>; 10] {
    [
        &mut event.reason,
        &mut event.request_id,
        &mut event.method,
        &mut event.path,
        &mut event.user_id,
        &mut event.tool,
        &mut event.mcp_method,
        &mut event.session_id,
        &mut event.upstream,
        &mut event.trace_id,
    ]
}

/// A key as redaction compares it: lower-case, without `_` and `-`, so `access_token`,
/// `accessToken` and `Access-Token` are one key.
pub fn redaction_form(key: &str) -> String {
    key.chars().filter(|c| *c != '_' && *c != '-').map(|c| c.to_ascii_lowercase()).collect()
}

/// Whether `key` holds a secret: its [`redaction_form`] contains any of `redact_keys`
/// (already in that form), so `token` covers `access_token`, `jwtToken` and `refresh-token`.
fn is_secret_key(key: &str, redact_keys: &[String]) -> bool {
    let key = redaction_form(key);
    redact_keys.iter().any(|entry| key.contains(entry.as_str()))
}

/// A copy of `value` where every object key that [`is_secret_key`] (any depth) holds
/// `"[REDACTED]"` and every string is cut at 256 characters.
pub fn redact(value: &Value, redact_keys: &[String]) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| {
                    if is_secret_key(key, redact_keys) {
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
    fn a_key_containing_an_entry_in_any_spelling_is_redacted() {
        let defaults = ["password", "secret", "token", "authorization", "jwt", "apiKey", "session", "cookie"];
        let keys: Vec<String> = defaults.iter().map(|key| redaction_form(key)).collect();
        let secret_keys = [
            "access_token",
            "refresh-token",
            "client_secret",
            "jwtToken",
            "x-api-key",
            "api_key",
            "API-KEY",
            "idToken",
            "sessionId",
            "Set-Cookie",
            "user_password",
            "Proxy-Authorization",
        ];
        for key in secret_keys {
            let redacted = redact(&json!({ key: "s3cr3t" }), &keys);
            assert_eq!(redacted[key], "[REDACTED]", "{key}");
        }
        for key in ["companyId", "from", "author", "keyword"] {
            assert_eq!(redact(&json!({ key: "plain" }), &keys)[key], "plain", "{key}");
        }
    }

    #[test]
    fn events_use_ecs_names_and_stay_under_8_kib() {
        let mut event = AuditEvent::new(action::TOOL_EXECUTE, "success");
        event.request_id = Some("abc".into());
        event.tool = Some("get_shifts".into());
        event.arguments = Some(Cow::Owned(json!({"blob": "y".repeat(200), "many": vec!["z".repeat(250); 100]})));
        let mut line = Vec::new();
        assert!(serialize_bounded(&event, &mut line), "serialised");
        assert!(line.len() <= MAX_EVENT_BYTES);
        let parsed: Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(parsed["event.action"], "TOOL_EXECUTE");
        assert_eq!(parsed["http.request.id"], "abc");
        assert_eq!(parsed["gen_ai.tool.name"], "get_shifts");
        assert_eq!(parsed["tool.arguments"], "[TRUNCATED]");
        assert!(parsed.get("user.id").is_none(), "absent fields are omitted");
    }

    #[test]
    fn an_event_with_huge_strings_is_shortened_longest_first_and_keeps_its_request_id() {
        let mut event = AuditEvent::new(action::HTTP_REQUEST, "success");
        event.request_id = Some("req-123".into());
        event.status = Some(200);
        event.mcp_method = Some("m".repeat(9000).into());
        event.user_id = Some("u".repeat(6000).into());
        event.path = Some("/mcp".into());
        let mut line = Vec::new();
        assert!(serialize_bounded(&event, &mut line), "shortened, not dropped");
        assert!(line.len() <= MAX_EVENT_BYTES, "{} bytes", line.len());
        let parsed: Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(parsed["http.request.id"], "req-123");
        assert_eq!(parsed["http.response.status_code"], 200);
        assert_eq!(parsed["url.path"], "/mcp");
        let method = parsed["mcp.method.name"].as_str().expect("method kept");
        let user = parsed["user.id"].as_str().expect("user kept");
        assert!(method.starts_with("mmm") && method.ends_with(TRUNCATION_MARK), "{method}");
        assert!(user.starts_with("uuu"), "{user}");

        // Escaped characters count as what they serialise to.
        event.mcp_method = Some("\u{1}".repeat(5000).into());
        event.user_id = None;
        assert!(serialize_bounded(&event, &mut line));
        assert!(line.len() <= MAX_EVENT_BYTES, "{} bytes", line.len());
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |seconds: u64, millis: u64| {
            Timestamp::at(UNIX_EPOCH + std::time::Duration::from_millis(seconds * 1000 + millis)).as_str().to_string()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.007Z");
        assert_eq!(at(1_795_292_463, 123), "2026-11-21T20:21:03.123Z");
        assert_eq!(at(4_102_444_799, 999), "2099-12-31T23:59:59.999Z");
        let now = Timestamp::now();
        assert!(now.as_str().starts_with("20"), "{now:?}");
    }
}
