//! An audit event as one line of JSON, written by hand: the keys are constants written as
//! they are, and a string is escaped only when it holds a byte JSON must escape. The bytes
//! are exactly what `serde_json` writes for the derived `Serialize` (a test compares the two),
//! at about half the instructions: `serde_json` escapes every key and value byte by byte,
//! which was a tenth of a refused request's cost.

use std::borrow::Cow;

use super::AuditEvent;

/// Writes `event` as compact JSON, keys in field order, absent fields left out.
pub(super) fn write_event(event: &AuditEvent<'_>, line: &mut Vec<u8>) -> serde_json::Result<()> {
    // Named one by one, without `..`: a field added to the event fails here until it is written.
    let AuditEvent {
        timestamp,
        action,
        outcome,
        reason,
        duration_ns,
        source_ip,
        request_id,
        method,
        path,
        status,
        user_id,
        auth_method,
        dpop_jkt,
        tool,
        mcp_method,
        arguments,
        is_error,
        upstream_status,
        session_id,
        upstream,
        trace_id,
        dropped,
    } = event;
    line.extend_from_slice(b"{\"@timestamp\":\"");
    line.extend_from_slice(timestamp.as_str().as_bytes());
    line.push(b'"');
    string(line, "event.action", action);
    string(line, "event.outcome", outcome);
    optional_string(line, "event.reason", reason);
    if let Some(duration) = duration_ns {
        number(line, "event.duration", *duration);
    }
    if let Some(ip) = source_ip {
        key(line, "source.ip");
        // An address never holds a byte JSON escapes.
        line.push(b'"');
        super::super::text::push_ip(line, ip);
        line.push(b'"');
    }
    optional_string(line, "http.request.id", request_id);
    optional_string(line, "http.request.method", method);
    optional_string(line, "url.path", path);
    if let Some(status) = status {
        number(line, "http.response.status_code", u64::from(*status));
    }
    optional_string(line, "user.id", user_id);
    if let Some(auth_method) = auth_method {
        string(line, "auth.method", auth_method);
    }
    optional_string(line, "dpop.jkt", dpop_jkt);
    optional_string(line, "gen_ai.tool.name", tool);
    optional_string(line, "mcp.method.name", mcp_method);
    if let Some(arguments) = arguments {
        key(line, "tool.arguments");
        serde_json::to_writer(&mut *line, arguments.as_ref())?;
    }
    if let Some(is_error) = is_error {
        key(line, "tool.is_error");
        line.extend_from_slice(if *is_error { b"true" } else { b"false" });
    }
    if let Some(status) = upstream_status {
        number(line, "upstream.status_code", u64::from(*status));
    }
    optional_string(line, "session.id", session_id);
    optional_string(line, "upstream.name", upstream);
    optional_string(line, "trace.id", trace_id);
    if let Some(dropped) = dropped {
        number(line, "audit.dropped", *dropped);
    }
    line.push(b'}');
    Ok(())
}

/// `,"name":` (never the first key: that is always `@timestamp`).
fn key(line: &mut Vec<u8>, name: &str) {
    line.extend_from_slice(b",\"");
    line.extend_from_slice(name.as_bytes());
    line.extend_from_slice(b"\":");
}

fn number(line: &mut Vec<u8>, name: &str, value: u64) {
    key(line, name);
    line.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

fn optional_string(line: &mut Vec<u8>, name: &str, value: &Option<Cow<'_, str>>) {
    if let Some(value) = value {
        string(line, name, value);
    }
}

fn string(line: &mut Vec<u8>, name: &str, value: &str) {
    key(line, name);
    if value.bytes().any(|byte| byte < 0x20 || byte == b'"' || byte == b'\\') {
        // serde_json's own escaping, so the rare string that needs it reads as it always did.
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *line, value);
    } else {
        line.push(b'"');
        line.extend_from_slice(value.as_bytes());
        line.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::audit::{Timestamp, action};
    use serde_json::json;

    fn hand_written(event: &AuditEvent<'_>) -> String {
        let mut line = Vec::new();
        write_event(event, &mut line).expect("written");
        String::from_utf8(line).expect("utf-8")
    }

    #[test]
    fn every_field_reads_as_serde_json_writes_it() {
        let arguments = json!({"q": "a \"quoted\"\nline", "n": [1, 2.5, null, true]});
        let event = AuditEvent {
            timestamp: Timestamp::at(std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_000_123)),
            action: action::TOOL_EXECUTE,
            outcome: "failure",
            reason: Some(Cow::Borrowed("upstream said \"no\"\t\u{1}\\")),
            duration_ns: Some(u64::MAX),
            source_ip: Some("2001:db8::1".parse().expect("ip")),
            request_id: Some(Cow::Borrowed("0123abcd")),
            method: Some(Cow::Borrowed("POST")),
            path: Some(Cow::Borrowed("/mcp/ünïcode/\u{7f}/😀")),
            status: Some(200),
            user_id: Some(Cow::Owned("user@example.com".to_string())),
            auth_method: Some("jwt"),
            dpop_jkt: Some(Cow::Borrowed("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")),
            tool: Some(Cow::Borrowed("get_item")),
            mcp_method: Some(Cow::Borrowed("tools/call")),
            arguments: Some(Cow::Borrowed(&arguments)),
            is_error: Some(false),
            upstream_status: Some(503),
            session_id: Some(Cow::Borrowed("deadbeef")),
            upstream: Some(Cow::Borrowed("api")),
            trace_id: Some(Cow::Borrowed("4bf92f3577b34da6a3ce929d0e0e4736")),
            dropped: Some(7),
        };
        assert_eq!(hand_written(&event), serde_json::to_string(&event).expect("serde_json"));
        let reordered: serde_json::Value = serde_json::from_str(&hand_written(&event)).expect("valid JSON");
        assert_eq!(reordered["event.reason"], "upstream said \"no\"\t\u{1}\\");
    }

    #[test]
    fn an_event_with_only_its_required_fields_reads_the_same_too() {
        for event in [
            AuditEvent::new(action::CONFIG_RELOAD, "success"),
            AuditEvent { source_ip: Some("203.0.113.9".parse().expect("ip")), ..AuditEvent::new("X", "unknown") },
            AuditEvent { is_error: Some(true), status: Some(0), ..AuditEvent::new(action::HTTP_REQUEST, "") },
            AuditEvent { source_ip: Some("0.0.0.0".parse().expect("ip")), ..AuditEvent::new("X", "") },
            AuditEvent { source_ip: Some("255.10.1.100".parse().expect("ip")), ..AuditEvent::new("X", "") },
            AuditEvent { source_ip: Some("::ffff:192.0.2.1".parse().expect("ip")), ..AuditEvent::new("X", "") },
        ] {
            assert_eq!(hand_written(&event), serde_json::to_string(&event).expect("serde_json"));
        }
    }
}
