//! The admin listener (plain HTTP, meant for the pod network only): `/healthz` says the
//! process is alive, `/readyz` whether it should get traffic (503 while starting, until the
//! signal handlers are installed, and once draining).

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::edge::policy::PolicyHandle;
use crate::lifecycle::Lifecycle;
use crate::telemetry::metrics::METRICS;

pub struct AdminApp {
    pub lifecycle: Arc<Lifecycle>,
    /// The current policy: its breakers are reported by `/readyz` (an open breaker does not
    /// make the edge unready) and exported by `/metrics`.
    pub policy: PolicyHandle,
}

fn json(status: u16, body: &serde_json::Value) -> Response<Vec<u8>> {
    let body = body.to_string().into_bytes();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .header("cache-control", "no-store")
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let request = session.req_header();
        if request.method != http::Method::GET && request.method != http::Method::HEAD {
            return json(405, &serde_json::json!({"error": "method not allowed"}));
        }
        match request.uri.path() {
            "/healthz" => json(200, &serde_json::json!({"status": "ok"})),
            "/metrics" => {
                let policy = self.policy.load();
                let sessions = policy.credential_sessions.as_ref().map_or(0, |service| service.store.len());
                METRICS.credential_sessions.set(sessions as i64);
                for breaker in policy.breakers() {
                    METRICS.set_circuit_state(&breaker.name, breaker.state().code());
                }
                let body = METRICS.encode().into_bytes();
                Response::builder()
                    .status(200)
                    .header("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
                    .header("content-length", body.len())
                    .body(body)
                    .unwrap_or_else(|_| Response::new(Vec::new()))
            }
            "/readyz" => {
                let policy = self.policy.load();
                // The store's state is reported, never a reason to be unready: pulling every
                // replica out of the Service because Redis blinked would turn a blip into an
                // outage (DESIGN.md §17).
                let store = if policy.store.as_ref().is_none_or(|store| store.is_up()) { "up" } else { "down" };
                let upstreams: Vec<serde_json::Value> = policy
                    .breakers()
                    .iter()
                    .map(|breaker| serde_json::json!({"upstream": breaker.name, "circuit": breaker.state().as_str()}))
                    .collect();
                if self.lifecycle.is_draining() {
                    json(503, &serde_json::json!({"status": "draining", "store": store, "upstreams": upstreams}))
                } else if !self.lifecycle.signals_armed() {
                    // Starting: a SIGTERM now would kill the process without a drain.
                    json(503, &serde_json::json!({"status": "starting", "store": store, "upstreams": upstreams}))
                } else {
                    json(200, &serde_json::json!({"status": "ready", "store": store, "upstreams": upstreams}))
                }
            }
            _ => json(404, &serde_json::json!({"error": "not found"})),
        }
    }
}
