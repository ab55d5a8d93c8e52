//! Prometheus metrics (DESIGN.md §11), served as OpenMetrics text on the admin `/metrics`.
//!
//! All metric names live here. Labels are bounded: routes are `Route` names, tools come from
//! the catalogue, reasons are `AuthFailure` codes, upstreams are configured base URLs.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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
pub struct BuildLabels {
    pub version: &'static str,
    pub commit: &'static str,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RouteCode, Counter>,
    pub request_duration: Family<RouteLabel, Histogram, fn() -> Histogram>,
    pub rate_limited: Counter,
    pub auth_failures: Family<ReasonLabel, Counter>,
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
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("mcp_edge");
        let requests = Family::<RouteCode, Counter>::default();
        registry.register("requests", "Requests answered, by route and status code", requests.clone());
        let request_duration =
            Family::<RouteLabel, Histogram, fn() -> Histogram>::new_with_constructor(histogram as fn() -> Histogram);
        for route in crate::edge::route::Route::ALL {
            let _ = request_duration.get_or_create(&RouteLabel { route: route.name() });
        }
        registry.register_with_unit(
            "request_duration",
            "Time from request to response, by route",
            prometheus_client::registry::Unit::Seconds,
            request_duration.clone(),
        );
        let rate_limited = Counter::default();
        registry.register("rate_limited", "Requests refused by the per-client rate limit", rate_limited.clone());
        let auth_failures = Family::<ReasonLabel, Counter>::default();
        for reason in crate::edge::auth::AuthFailure::ALL {
            let _ = auth_failures.get_or_create(&ReasonLabel { reason: reason.reason() });
        }
        registry.register("auth_failures", "Failed authentications, by reason", auth_failures.clone());
        let cors_rejected = Counter::default();
        registry.register("cors_rejected", "Requests refused for a disallowed Origin", cors_rejected.clone());
        let tool_calls = Family::<ToolOutcomeLabels, Counter>::default();
        registry.register("tool_calls", "Tool calls, by tool and outcome", tool_calls.clone());
        let upstream_duration =
            Family::<ToolLabel, Histogram, fn() -> Histogram>::new_with_constructor(histogram as fn() -> Histogram);
        registry.register_with_unit(
            "upstream_request_duration",
            "Time spent on the upstream API per tool call, retries included",
            prometheus_client::registry::Unit::Seconds,
            upstream_duration.clone(),
        );
        let upstream_retries = Counter::default();
        registry.register("upstream_retries", "Upstream tries beyond the first", upstream_retries.clone());
        let circuit_state = Family::<UpstreamLabel, Gauge>::default();
        registry.register(
            "circuit_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open",
            circuit_state.clone(),
        );
        let audit_dropped = Counter::default();
        registry.register(
            "audit_dropped",
            "Audit lines lost because the sink could not keep up",
            audit_dropped.clone(),
        );
        let config_reloads = Family::<OutcomeLabel, Counter>::default();
        for outcome in ["success", "failure"] {
            config_reloads.get_or_create(&OutcomeLabel { outcome }).get();
        }
        registry.register("config_reloads", "Policy reloads, by outcome", config_reloads.clone());
        let cert_expiry = Gauge::default();
        registry.register_with_unit(
            "tls_cert_expiry_timestamp",
            "When the served certificate expires (Unix time)",
            prometheus_client::registry::Unit::Seconds,
            cert_expiry.clone(),
        );
        let credential_sessions = Gauge::default();
        registry.register("credential_sessions", "Live credential sessions (POST /init)", credential_sessions.clone());
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION"), commit: env!("MCP_EDGE_GIT_COMMIT") })
            .set(1);
        registry.register("build_info", "Build information", build_info.clone());
        Self {
            registry,
            requests,
            request_duration,
            rate_limited,
            auth_failures,
            cors_rejected,
            tool_calls,
            upstream_duration,
            upstream_retries,
            circuit_state,
            audit_dropped,
            audit_dropped_seen: AtomicU64::new(0),
            config_reloads,
            cert_expiry,
            credential_sessions,
            build_info,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let dropped = super::audit::dropped_total();
        let seen = self.audit_dropped_seen.swap(dropped, Ordering::Relaxed);
        if dropped > seen {
            self.audit_dropped.inc_by(dropped - seen);
        }
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }

    pub fn set_circuit_state(&self, upstream: &str, code: u8) {
        self.circuit_state.get_or_create(&UpstreamLabel { upstream: upstream.to_string() }).set(i64::from(code));
    }
}
