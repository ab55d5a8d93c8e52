//! Prometheus metrics, served as OpenMetrics text on the admin `/metrics`.
//!
//! All metric names live here, and the label values that are known in advance: route names
//! ([`ROUTE_LABELS`]) and authentication failure reasons ([`AUTH_FAILURE_REASONS`]), whose
//! series exist from the start (the edge's tests check both lists against `Route` and
//! `AuthFailure`). Labels are bounded: tools come from the catalogue, upstreams are
//! configured base URLs.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Every `route` label (`edge::route::Route::name`).
pub const ROUTE_LABELS: [&str; 9] = [
    "health",
    "mcp",
    "init",
    "session_end",
    "tools_list",
    "tools_call",
    "resource_metadata",
    "passthrough",
    "not_found",
];

/// Every `reason` of `mcp_edge_auth_failures` (`request::AuthFailure::reason`).
pub const AUTH_FAILURE_REASONS: [&str; 12] = [
    "missing_token",
    "invalid_token",
    "expired",
    "not_yet_valid",
    "bad_signature",
    "wrong_audience",
    "wrong_issuer",
    "unknown_kid",
    "missing_claim",
    "invalid_dpop_proof",
    "dpop_replay",
    "dpop_binding_mismatch",
];

/// Latency buckets (seconds) from 5 ms up to a minute, for slow tool calls.
const BUCKETS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteCode {
    pub route: &'static str,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolOutcomeLabels {
    pub tool: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabel {
    pub tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabel {
    pub upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: &'static str,
}

/// The store operations `mcp_edge_store_errors_total` counts, created at zero.
pub const STORE_OPS: [&str; 7] =
    ["ping", "rate_limit", "session_get", "session_put", "session_delete", "revocation", "dpop_replay"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    pub commit: &'static str,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The labels of `mcp_server_operation_duration_seconds` (OpenTelemetry MCP semantic
/// conventions, dots as underscores). Bounded: methods are the ones the edge answers (others
/// are `other`), tools come from the catalogue, `error_type` is a fixed set (empty: none).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct McpOperationLabels {
    pub mcp_method_name: &'static str,
    pub gen_ai_tool_name: String,
    pub error_type: &'static str,
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    /// Metrics whose names a convention outside mcp-edge fixes (no `mcp_edge_` prefix).
    convention_registry: Registry,
    /// `mcp.server.operation.duration`: one MCP request, from its body read to its result
    /// (the last event of a streamed call).
    pub mcp_operation_duration: Family<McpOperationLabels, Histogram, fn() -> Histogram>,
    pub requests: Family<RouteCode, Counter>,
    pub request_duration: Family<RouteLabel, Histogram, fn() -> Histogram>,
    pub rate_limited: Counter,
    pub auth_failures: Family<ReasonLabel, Counter>,
    /// DPoP proofs refused with 503 because every remembered `jti` was inside the window.
    pub dpop_replay_cache_full: Counter,
    pub cors_rejected: Counter,
    pub tool_calls: Family<ToolOutcomeLabels, Counter>,
    pub upstream_duration: Family<ToolLabel, Histogram, fn() -> Histogram>,
    pub upstream_retries: Counter,
    pub circuit_state: Family<UpstreamLabel, Gauge>,
    pub audit_dropped: Counter,
    audit_dropped_seen: AtomicU64,
    pub config_reloads: Family<OutcomeLabel, Counter>,
    pub cert_expiry: Gauge,
    pub credential_sessions: Gauge,
    pub build_info: Family<BuildLabels, Gauge>,
    /// Store commands that failed, timed out or were not sent because the store was down.
    pub store_errors: Family<OpLabel, Counter>,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// A metric registered under `name` (prefixed `mcp_edge_`), with its help text.
fn registered<M: prometheus_client::registry::Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    metric: M,
) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// A histogram family in seconds.
fn seconds<L>(registry: &mut Registry, name: &str, help: &str) -> Family<L, Histogram, fn() -> Histogram>
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
{
    let family = Family::<L, Histogram, fn() -> Histogram>::new_with_constructor(histogram as fn() -> Histogram);
    registry.register_with_unit(name, help, prometheus_client::registry::Unit::Seconds, family.clone());
    family
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("mcp_edge");
        let mut convention_registry = Registry::default();
        let mcp_operation_duration = seconds(
            &mut convention_registry,
            "mcp_server_operation_duration",
            "MCP requests served, by method, tool and error type (OpenTelemetry mcp.server.operation.duration)",
        );
        let r = &mut registry;
        let requests = registered(r, "requests", "Requests answered, by route and status code", Family::default());
        let request_duration: Family<RouteLabel, _, _> =
            seconds(r, "request_duration", "Time from request to response, by route");
        for route in ROUTE_LABELS {
            let _ = request_duration.get_or_create(&RouteLabel { route });
        }
        let rate_limited =
            registered(r, "rate_limited", "Requests refused by the per-client rate limit", Counter::default());
        let auth_failures: Family<ReasonLabel, Counter> =
            registered(r, "auth_failures", "Failed authentications, by reason", Family::default());
        for reason in AUTH_FAILURE_REASONS {
            let _ = auth_failures.get_or_create(&ReasonLabel { reason });
        }
        let config_reloads: Family<OutcomeLabel, Counter> =
            registered(r, "config_reloads", "Policy reloads, by outcome", Family::default());
        for outcome in ["success", "failure"] {
            config_reloads.get_or_create(&OutcomeLabel { outcome }).get();
        }
        let cert_expiry = Gauge::default();
        r.register_with_unit(
            "tls_cert_expiry_timestamp",
            "When the served certificate expires (Unix time)",
            prometheus_client::registry::Unit::Seconds,
            cert_expiry.clone(),
        );
        let store_errors: Family<OpLabel, Counter> =
            registered(r, "store_errors", "Shared-store commands that failed, by operation", Family::default());
        for op in STORE_OPS {
            let _ = store_errors.get_or_create(&OpLabel { op });
        }
        let build_info: Family<BuildLabels, Gauge> =
            registered(r, "build_info", "Build information", Family::default());
        build_info
            .get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION"), commit: env!("MCP_EDGE_GIT_COMMIT") })
            .set(1);
        Self {
            requests,
            request_duration,
            rate_limited,
            auth_failures,
            dpop_replay_cache_full: registered(
                r,
                "dpop_replay_cache_full",
                "DPoP proofs refused (503) because the replay cache was full of unexpired jtis",
                Counter::default(),
            ),
            cors_rejected: registered(
                r,
                "cors_rejected",
                "Requests refused for a disallowed Origin",
                Counter::default(),
            ),
            tool_calls: registered(r, "tool_calls", "Tool calls, by tool and outcome", Family::default()),
            upstream_duration: seconds(
                r,
                "upstream_request_duration",
                "Time spent on the upstream API per tool call, retries included",
            ),
            upstream_retries: registered(r, "upstream_retries", "Upstream tries beyond the first", Counter::default()),
            circuit_state: registered(
                r,
                "circuit_state",
                "Circuit breaker state: 0 closed, 1 half-open, 2 open",
                Family::default(),
            ),
            audit_dropped: registered(
                r,
                "audit_dropped",
                "Audit lines lost because the sink could not keep up",
                Counter::default(),
            ),
            audit_dropped_seen: AtomicU64::new(0),
            config_reloads,
            cert_expiry,
            credential_sessions: registered(
                r,
                "credential_sessions",
                "Live credential sessions (POST /init)",
                Gauge::default(),
            ),
            build_info,
            store_errors,
            registry,
            convention_registry,
            mcp_operation_duration,
        }
    }

    /// Counts a failed store command.
    pub fn store_error(&self, op: &'static str) {
        self.store_errors.get_or_create(&OpLabel { op }).inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let dropped = super::audit::dropped_total();
        let seen = self.audit_dropped_seen.swap(dropped, Ordering::Relaxed);
        if dropped > seen {
            self.audit_dropped.inc_by(dropped - seen);
        }
        let mut text = String::new();
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        if encode_registry(&mut text, &self.registry)
            .and_then(|()| encode_registry(&mut text, &self.convention_registry))
            .and_then(|()| encode_eof(&mut text))
            .is_err()
        {
            text.clear();
        }
        text
    }

    pub fn set_circuit_state(&self, upstream: &str, code: u8) {
        self.circuit_state.get_or_create(&UpstreamLabel { upstream: upstream.to_string() }).set(i64::from(code));
    }
}
