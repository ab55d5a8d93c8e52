//! The client for the upstream REST API that tool calls use, with the resilience OPERATIONS.md describes:
//! a pooled reqwest client, at most `max_connections` calls at once (a call that cannot get a
//! slot before its deadline fails as unavailable), per-try and overall timeouts, retries with
//! full-jitter backoff inside a budget, and a circuit breaker.
//!
//! Which failures are retried: a connect failure always (nothing was sent); 502, 503, 504, a
//! per-try timeout or a broken reply only for idempotent calls (the upstream may have acted on
//! the first one). Retry wraps the breaker: every try asks the breaker, so an open breaker
//! stops the retries at once. An upstream `Retry-After` stretches the delay, within the
//! deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode};
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::backoff::Backoff;
use super::breaker::{CallOutcome, CircuitBreaker};
use super::budget::RetryBudget;
use crate::config::Upstream;
use crate::request::reply::retry_after_seconds;

/// The largest upstream reply body the edge reads.
pub const MAX_REPLY_BYTES: usize = 4 << 20;

/// One call to the upstream API.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub method: Method,
    pub url: url::Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// Whether repeating the call is harmless (decides retries).
    pub idempotent: bool,
}

/// What the upstream answered.
#[derive(Debug, Clone)]
pub struct UpstreamReply {
    pub status: StatusCode,
    pub content_type: Option<String>,
    /// The upstream's `Retry-After`, in seconds, when it sent one.
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

/// Why no reply came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to the upstream: {0}")]
    Connect(String),
    #[error("the upstream did not answer in time")]
    Timeout,
    #[error("the upstream reply could not be read: {0}")]
    Protocol(String),
    #[error("the upstream reply is larger than {MAX_REPLY_BYTES} bytes")]
    ReplyTooLarge,
    #[error("the upstream is unavailable; retry in {retry_after_seconds} s")]
    Unavailable { retry_after_seconds: u64 },
}

/// What a call is doing, for a caller that reports progress (`send_observed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEvent {
    /// Try `attempt` of at most `of` is being sent.
    Attempt { attempt: u32, of: u32 },
    /// Try `attempt` failed in a way worth retrying; the next starts after `delay`.
    RetryWait { attempt: u32, of: u32, delay: Duration },
}

/// A resilient client for one upstream base URL.
#[derive(Debug)]
pub struct UpstreamClient {
    client: reqwest::Client,
    pub base_url: url::Url,
    slots: Semaphore,
    pub breaker: Arc<CircuitBreaker>,
    budget: RetryBudget,
    backoff: Backoff,
    attempts: u32,
    try_timeout: Duration,
    timeout: Duration,
    retries: AtomicU64,
}

impl UpstreamClient {
    pub fn new(upstream: &Upstream) -> Result<Self, String> {
        // No reqwest `timeout`: `send_observed` bounds each try, reading the body included,
        // with its own timer, and a second one per call cost a boxed sleep and a wrapped body.
        let client = reqwest::Client::builder()
            .connect_timeout(upstream.connect_timeout)
            .pool_max_idle_per_host(upstream.max_idle_connections as usize)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| format!("cannot build the upstream client: {error}"))?;
        Ok(Self {
            client,
            base_url: upstream.base_url.clone(),
            slots: Semaphore::new(upstream.max_connections as usize),
            breaker: CircuitBreaker::new(upstream.base_url.as_str(), &upstream.circuit_breaker),
            budget: RetryBudget::new(upstream.retry.budget_percent),
            backoff: Backoff::new(upstream.retry.backoff, upstream.retry.max_backoff)?,
            attempts: upstream.retry.attempts.max(1),
            try_timeout: upstream.try_timeout,
            timeout: upstream.timeout,
            retries: AtomicU64::new(0),
        })
    }

    /// Retries made so far (`mcp_edge_upstream_retries_total`).
    pub fn retries_total(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The URL for `path` under the base URL (`http://api/api` + `/employees`).
    pub fn url_for(&self, path: &str) -> Result<url::Url, String> {
        let base = self.base_url.as_str().trim_end_matches('/');
        url::Url::parse(&format!("{base}{path}")).map_err(|error| format!("cannot build the upstream URL: {error}"))
    }

    /// Sends `request` with retries, the breaker and the overall deadline.
    pub async fn send(&self, request: UpstreamRequest) -> Result<UpstreamReply, UpstreamError> {
        self.send_observed(request, &|_| {}).await
    }

    /// `send`, telling `observe` about each try and each wait before a retry.
    pub async fn send_observed(
        &self,
        request: UpstreamRequest,
        observe: &(dyn Fn(CallEvent) + Send + Sync),
    ) -> Result<UpstreamReply, UpstreamError> {
        let deadline = Instant::now() + self.timeout;
        self.budget.deposit();
        let Ok(Ok(_slot)) = tokio::time::timeout_at(deadline.into(), self.slots.acquire()).await else {
            tracing::warn!(upstream = %self.base_url, "No upstream connection slot before the deadline");
            return Err(UpstreamError::Unavailable { retry_after_seconds: 1 });
        };
        let mut attempt = 1;
        loop {
            let permit = match self.breaker.try_acquire() {
                Ok(permit) => permit,
                Err(rejected) => {
                    return Err(UpstreamError::Unavailable {
                        retry_after_seconds: retry_after_seconds(rejected.retry_after),
                    });
                }
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(UpstreamError::Timeout);
            }
            observe(CallEvent::Attempt { attempt, of: self.attempts });
            let span = tracing::info_span!("upstream.try", attempt, http.request.method = %request.method, url.path = request.url.path());
            let try_once = self.try_once(&request).instrument(span);
            let outcome = match tokio::time::timeout(self.try_timeout.min(remaining), try_once).await {
                Ok(outcome) => outcome,
                Err(_) => Err(UpstreamError::Timeout),
            };
            let (health, retryable) = classify(&outcome, request.idempotent, &self.breaker);
            permit.record(health);
            if !retryable || attempt >= self.attempts {
                return outcome;
            }
            let mut delay = self.backoff.delay(attempt, &mut rand::rng());
            if let Ok(UpstreamReply { retry_after: Some(retry_after), .. }) = &outcome {
                delay = delay.max(*retry_after);
            }
            if Instant::now() + delay >= deadline || !self.budget.try_withdraw() {
                return outcome;
            }
            observe(CallEvent::RetryWait { attempt, of: self.attempts, delay });
            attempt += 1;
            self.retries.fetch_add(1, Ordering::Relaxed);
            crate::telemetry::metrics::METRICS.upstream_retries.inc();
            tracing::info!(upstream = %self.base_url, attempt, delay_ms = delay.as_millis() as u64, "Retrying an upstream call");
            tokio::time::sleep(delay).await;
        }
    }

    async fn try_once(&self, request: &UpstreamRequest) -> Result<UpstreamReply, UpstreamError> {
        let mut builder =
            self.client.request(request.method.clone(), request.url.clone()).headers(request.headers.clone());
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let mut response = builder.send().await.map_err(transport_error)?;
        let status = response.status();
        let header = |name| response.headers().get(name).and_then(|value: &http::HeaderValue| value.to_str().ok());
        let content_type = header(http::header::CONTENT_TYPE).map(str::to_string);
        let retry_after =
            header(http::header::RETRY_AFTER).and_then(|value| value.trim().parse().ok()).map(Duration::from_secs);
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            if body.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(UpstreamError::ReplyTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(UpstreamReply { status, content_type, retry_after, body: body.freeze() })
    }
}

/// What a try says about the upstream's health (as `breaker` counts statuses), and whether to
/// try again.
fn classify(
    outcome: &Result<UpstreamReply, UpstreamError>,
    idempotent: bool,
    breaker: &CircuitBreaker,
) -> (CallOutcome, bool) {
    match outcome {
        Ok(reply) => {
            let transient = matches!(reply.status.as_u16(), 502..=504);
            (breaker.outcome_for_status(reply.status.as_u16()), transient && idempotent)
        }
        Err(UpstreamError::ReplyTooLarge) => (CallOutcome::Success, false),
        // Nothing was sent: safe to retry whatever the method.
        Err(UpstreamError::Connect(_)) => (CallOutcome::Failure, true),
        Err(UpstreamError::Timeout | UpstreamError::Protocol(_)) => (CallOutcome::Failure, idempotent),
        Err(UpstreamError::Unavailable { .. }) => (CallOutcome::Failure, false),
    }
}

/// The error without its URL: reqwest's `Display` appends the full URL, whose query holds
/// tool arguments (tokens, passwords). The text is reqwest's description and its causes,
/// and the caller's log line names the tool and the URL path.
fn transport_error(error: reqwest::Error) -> UpstreamError {
    if error.is_timeout() {
        return UpstreamError::Timeout;
    }
    let connect = error.is_connect();
    let text = error_text(&error.without_url());
    if connect { UpstreamError::Connect(text) } else { UpstreamError::Protocol(text) }
}

/// `error` and its causes, `: `-separated (hyper's "connection reset" is a cause, not the
/// top-level text).
fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let part = inner.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16) -> Result<UpstreamReply, UpstreamError> {
        Ok(UpstreamReply {
            status: StatusCode::from_u16(status).expect("status"),
            content_type: None,
            retry_after: None,
            body: Bytes::new(),
        })
    }

    #[tokio::test]
    async fn a_call_that_cannot_get_a_connection_slot_before_its_deadline_is_unavailable() {
        crate::crypto::install_providers();
        let upstream = crate::config::Upstream {
            base_url: url::Url::parse("http://127.0.0.1:1/api").expect("url"),
            auth: crate::config::UpstreamAuth::None,
            connect_timeout: Duration::from_millis(100),
            timeout: Duration::from_millis(200),
            try_timeout: Duration::from_millis(200),
            max_connections: 1,
            max_idle_connections: 1,
            retry: crate::config::Retry {
                attempts: 1,
                backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(10),
                budget_percent: 20,
            },
            circuit_breaker: crate::config::CircuitBreaker {
                failure_threshold: 5,
                open_for: Duration::from_secs(1),
                half_open_probes: 1,
                failure_statuses: vec![502, 503, 504],
            },
        };
        let client = UpstreamClient::new(&upstream).expect("client");
        let _busy = client.slots.acquire().await.expect("the only slot");
        let request = UpstreamRequest {
            method: Method::GET,
            url: client.url_for("/x").expect("url"),
            headers: HeaderMap::new(),
            body: None,
            idempotent: true,
        };
        assert_eq!(client.send(request).await.map(|_| ()), Err(UpstreamError::Unavailable { retry_after_seconds: 1 }));
    }

    #[tokio::test]
    async fn a_transport_error_carries_no_url_and_keeps_its_cause() {
        crate::crypto::install_providers();
        let client = reqwest::Client::builder().build().expect("client");
        let error = client.get("http://127.0.0.1:1/accounts/42?access_token=secret-in-query").send().await;
        let error = transport_error(error.expect_err("nothing listens on port 1"));
        let UpstreamError::Connect(text) = &error else { panic!("a connect error: {error:?}") };
        assert!(!text.contains("secret-in-query") && !text.contains("/accounts"), "{text}");
        assert!(text.len() > "error sending request".len(), "the cause is kept: {text}");
    }

    #[test]
    fn classification_follows_idempotency_and_the_failure_statuses() {
        let config = crate::config::CircuitBreaker {
            failure_threshold: 5,
            open_for: Duration::from_secs(1),
            half_open_probes: 1,
            failure_statuses: vec![502, 503, 504],
        };
        let breaker = CircuitBreaker::new("api", &config);
        let cases = [
            (reply(200), true, (CallOutcome::Success, false)),
            (reply(404), true, (CallOutcome::Success, false)),
            (reply(503), true, (CallOutcome::Failure, true)),
            (reply(503), false, (CallOutcome::Failure, false)),
            (reply(500), true, (CallOutcome::Success, false)),
            (reply(502), false, (CallOutcome::Failure, false)),
            (reply(504), true, (CallOutcome::Failure, true)),
            (Err(UpstreamError::Connect("refused".into())), false, (CallOutcome::Failure, true)),
            (Err(UpstreamError::Timeout), false, (CallOutcome::Failure, false)),
            (Err(UpstreamError::Timeout), true, (CallOutcome::Failure, true)),
        ];
        for (outcome, idempotent, expected) in cases {
            assert_eq!(classify(&outcome, idempotent, &breaker), expected, "{outcome:?} idempotent={idempotent}");
        }
    }
}
