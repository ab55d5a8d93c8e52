//! The operational log and traces. Log lines go to stderr, JSON or text, filtered by
//! `RUST_LOG` when set, else by `telemetry.log_level` (which `LOG_LEVEL` overrides); lines
//! written inside a request carry its `request_id` and `trace_id`. When an OTLP endpoint is
//! configured (`telemetry.otlp_endpoint` or `OTEL_EXPORTER_OTLP_ENDPOINT`), spans are
//! exported over OTLP/HTTP: one per request and one per upstream try. Without one, no
//! exporter exists and spans cost what a `tracing` span costs. The audit log is a separate
//! sink and never goes through here.

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, Telemetry};

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Library messages that describe normal traffic, not a problem: rustls warns on every
/// handshake from a client that connects by IP address (an IP in SNI is ignored, as RFC 6066
/// requires), which is what probes and sidecar neighbours do.
const QUIET_TARGETS: &str = "rustls::msgs::handshake=error";

/// pingora's debug lines dump raw request heads (`Authorization` included) and path+query;
/// they stay out of the log at any general level unless a directive names pingora itself
/// (`RUST_LOG=debug,pingora_core=debug`).
const PINGORA_AT_INFO: &str = "pingora_core=info,pingora_proxy=info";

/// `directive` with pingora capped at info, unless it already says what pingora should log.
fn with_pingora_capped(directive: &str) -> String {
    if directive.contains("pingora") { directive.to_string() } else { format!("{directive},{PINGORA_AT_INFO}") }
}

/// Installs the global subscriber once; later calls are ignored (tests, demo restarts).
pub fn init(telemetry: &Telemetry) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directive| EnvFilter::builder().parse(with_pingora_capped(&directive)).ok())
        .unwrap_or_else(|| {
            EnvFilter::builder().parse_lossy(with_pingora_capped(&format!("{},{QUIET_TARGETS}", telemetry.log_level)))
        });
    let fmt_layer = match telemetry.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Text => {
            tracing_subscriber::fmt::layer().with_ansi(false).with_writer(std::io::stderr).with_filter(filter).boxed()
        }
    };
    let otel_layer = traces_endpoint(telemetry).and_then(|endpoint| match tracer_provider(&endpoint) {
        Ok(provider) => {
            let tracer = provider.tracer("mcp-edge");
            let _ = PROVIDER.set(provider);
            super::trace_context::enable_otel();
            let spans = tracing_subscriber::filter::Targets::new().with_target("mcp_edge", tracing::Level::INFO);
            Some(tracing_opentelemetry::layer().with_tracer(tracer).with_filter(spans))
        }
        Err(error) => {
            eprintln!("mcp-edge: OTLP export disabled: {error}");
            None
        }
    });
    // Without OTLP there is no second layer at all: an absent `Option` layer claims interest
    // in every span, which would make each request build, enter and close a span that the
    // log filter then drops (about 5 % of a 401's instructions at `log_level: warn`).
    let _ = match otel_layer {
        Some(otel_layer) => tracing_subscriber::registry().with(fmt_layer).with(otel_layer).try_init(),
        None => tracing_subscriber::registry().with(fmt_layer).try_init(),
    };
}

/// The OTLP/HTTP traces URL: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is, else the configured
/// or `OTEL_EXPORTER_OTLP_ENDPOINT` base with `/v1/traces`.
fn traces_endpoint(telemetry: &Telemetry) -> Option<String> {
    if let Ok(url) = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        && !url.is_empty()
    {
        return Some(url);
    }
    let base = telemetry
        .otlp_endpoint
        .as_ref()
        .map(|url| url.to_string())
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|url| !url.is_empty()))?;
    Some(format!("{}/v1/traces", base.trim_end_matches('/')))
}

fn tracer_provider(endpoint: &str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .build()
        .map_err(|error| error.to_string())?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name("mcp-edge").build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// Exports the spans still buffered; call before the process exits.
pub fn shutdown_tracing() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.force_flush();
        let _ = provider.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pingora_is_capped_at_info_unless_named() {
        assert_eq!(with_pingora_capped("debug"), "debug,pingora_core=info,pingora_proxy=info");
        assert_eq!(with_pingora_capped("debug,pingora_proxy=debug"), "debug,pingora_proxy=debug");
    }
}
