//! The service sections: MCP endpoint, audit, telemetry, shutdown.

use super::*;

impl Builder<'_> {
    pub(super) fn build_mcp(&mut self, raw: &RawMcp) -> Mcp {
        let path = match &raw.path {
            None => "/mcp".to_string(),
            Some(located) => {
                let path = located.value.clone();
                let reserved = ["/health", "/init", "/api/tools", "/sessions", "/.well-known"];
                if !path.starts_with('/') || path.contains(['?', '#', ' ']) || path.len() < 2 {
                    self.at(located, "mcp.path", format!("{path:?} is not a path; write one such as /mcp"));
                } else if reserved.iter().any(|r| path == *r || path.starts_with(&format!("{r}/"))) {
                    self.at(
                        located,
                        "mcp.path",
                        format!("{path:?} collides with a built-in route ({})", reserved.join(", ")),
                    );
                }
                path
            }
        };
        let server_name =
            raw.server_name.as_ref().map_or_else(|| "mcp-edge".to_string(), |located| located.value.clone());
        let session_ttl = self.bounded_duration(
            "mcp.session_ttl",
            &raw.session_ttl,
            Duration::from_secs(3600),
            (Duration::from_secs(1), Duration::from_secs(7 * 86_400)),
        );
        let session_key = raw.session_key.as_ref().and_then(|located| {
            if let Some(problem) = bare_reference_problem(&located.value) {
                self.at(located, "mcp.session_key", problem);
                return None;
            }
            if located.value.len() < 32 {
                self.at(
                    located,
                    "mcp.session_key",
                    "is shorter than 32 bytes; use a long random secret (e.g. openssl rand -hex 32)",
                );
                return None;
            }
            Some(Redacted(located.value.clone()))
        });
        let page_size = self.number("mcp.page_size", &raw.page_size, 100, (1, 10_000)) as usize;
        let coerce_arguments = raw.coerce_arguments.unwrap_or(true);
        Mcp { path, server_name, session_ttl, session_key, page_size, coerce_arguments }
    }
    pub(super) fn build_audit(&mut self, raw: &RawAudit) -> Audit {
        let rotation = match raw.rotation {
            None | Some(RotationName::Hourly) => Rotation::Hourly,
            Some(RotationName::Daily) => Rotation::Daily,
            Some(RotationName::Never) => Rotation::Never,
        };
        let sink = match raw.sink {
            None | Some(AuditSinkName::Stdout) => AuditSink::Stdout,
            Some(AuditSinkName::File) => {
                let path = raw
                    .file
                    .as_ref()
                    .map_or_else(|| PathBuf::from("/var/log/mcp-edge/audit.log"), |located| self.path(&located.value));
                if path.file_name().is_none() {
                    self.problem(Source::Document, "audit.file", format!("{} is not a file path", path.display()));
                }
                AuditSink::File { path, rotation }
            }
        };
        let redact_keys =
            raw.redact_keys.clone().unwrap_or_else(|| DEFAULT_REDACT_KEYS.iter().map(|key| key.to_string()).collect());
        let buffer_lines = self.number("audit.buffer_lines", &raw.buffer_lines, 16_384, (1, 1_000_000)) as usize;
        Audit { sink, redact_keys, buffer_lines }
    }
    pub(super) fn build_telemetry(&mut self, raw: &RawTelemetry) -> Telemetry {
        let (log_level, source) = match (self.environment.get("LOG_LEVEL").filter(|v| !v.is_empty()), &raw.log_level) {
            (Some(value), _) => (value.clone(), Source::Env("LOG_LEVEL")),
            (None, Some(located)) => (located.value.clone(), source_of(located)),
            (None, None) => ("info".to_string(), Source::Document),
        };
        let log_level = match tracing_subscriber::EnvFilter::builder().parse(&log_level) {
            Ok(_) => log_level,
            Err(error) => {
                self.problem(
                    source,
                    "telemetry.log_level",
                    format!("{log_level:?} is not a log filter ({error}); use error, warn, info, debug or trace"),
                );
                "info".to_string()
            }
        };
        let otlp_endpoint = raw
            .otlp_endpoint
            .as_ref()
            .and_then(|located| self.http_url("telemetry.otlp_endpoint", &located.value, source_of(located)));
        Telemetry {
            log_format: match raw.log_format {
                None | Some(LogFormatName::Json) => LogFormat::Json,
                Some(LogFormatName::Text) => LogFormat::Text,
            },
            log_level,
            otlp_endpoint,
        }
    }
    pub(super) fn build_shutdown(&mut self, raw: &RawShutdown) -> Shutdown {
        let limit = (Duration::ZERO, Duration::from_secs(3600));
        Shutdown {
            drain_delay: self.bounded_duration("shutdown.drain_delay", &raw.drain_delay, Duration::from_secs(5), limit),
            drain_timeout: self.bounded_duration(
                "shutdown.drain_timeout",
                &raw.drain_timeout,
                Duration::from_secs(15),
                limit,
            ),
        }
    }
}
