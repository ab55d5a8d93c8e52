//! A mock upstream on a free loopback port (axum), standing in for the MCP server or the
//! REST API behind the edge. Each route records what it saw so tests can assert on it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use tokio::sync::Notify;

/// Shared with the handlers: lets a test hold the SSE stream open until it has read the first
/// event.
#[derive(Default)]
pub struct Controls {
    /// Hits per `/flaky/{key}/...` key.
    pub flaky_hits: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    pub release_stream: Notify,
    /// Requests that reached the mock (any route).
    pub requests: std::sync::atomic::AtomicUsize,
}

pub struct MockApi {
    pub address: SocketAddr,
    pub controls: Arc<Controls>,
    _task: tokio::task::JoinHandle<()>,
}

impl MockApi {
    /// Routes: `/echo` (any method: returns method, path, query, headers, body),
    /// `/sse` (one event at once, the second after `release_stream`), `/slow?ms=N`.
    pub async fn start() -> Self {
        let controls = Arc::new(Controls::default());
        let app = Router::new()
            .route("/sse", get(sse))
            .route("/slow", get(slow))
            .route("/status/{code}", any(status))
            .route("/flaky/{key}/{failures}/{code}", any(flaky))
            .route("/api/{behaviour}/settings/validate", any(validate))
            .fallback(any(echo))
            .with_state(Arc::clone(&controls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind mock api");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { address, controls, _task: task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// How many times `/flaky/{key}/...` was hit.
    pub fn flaky_hits(&self, key: &str) -> usize {
        self.controls.flaky_hits.lock().expect("lock").get(key).copied().unwrap_or(0)
    }

    pub fn request_count(&self) -> usize {
        self.controls.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Answers with the status in the path and an ASP.NET-style problem body.
async fn status(
    State(controls): State<Arc<Controls>>,
    axum::extract::Path(code): axum::extract::Path<u16>,
) -> Response {
    controls.requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let status = axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::IM_A_TEAPOT);
    let body = serde_json::json!({"title": status.canonical_reason().unwrap_or("error"), "detail": format!("mock said {code}"), "status": code});
    (status, [("content-type", "application/problem+json")], body.to_string()).into_response()
}

/// Answers `code` to the first `failures` hits on `key`, then 200 with the hit number.
async fn flaky(
    State(controls): State<Arc<Controls>>,
    axum::extract::Path((key, failures, code)): axum::extract::Path<(String, usize, u16)>,
) -> Response {
    controls.requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let hit = {
        let mut hits = controls.flaky_hits.lock().expect("lock");
        let count = hits.entry(key).or_insert(0);
        *count += 1;
        *count
    };
    if hit <= failures {
        let status = axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE);
        return (status, [("content-type", "application/json")], r#"{"title":"flaky"}"#).into_response();
    }
    Json(serde_json::json!({"hit": hit})).into_response()
}

/// A credential-validation endpoint: `ok` 200, `forbidden` 403, `error` 500, `slow` 200 after
/// 3 s. Hits are counted under `validate-{behaviour}`.
async fn validate(
    State(controls): State<Arc<Controls>>,
    axum::extract::Path(behaviour): axum::extract::Path<String>,
) -> Response {
    controls.requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    *controls.flaky_hits.lock().expect("lock").entry(format!("validate-{behaviour}")).or_insert(0) += 1;
    match behaviour.as_str() {
        "ok" => Json(serde_json::json!({"valid": true})).into_response(),
        "forbidden" => {
            (axum::http::StatusCode::FORBIDDEN, r#"{"title":"Forbidden: token for the wrong tenant"}"#).into_response()
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Json(serde_json::json!({"valid": true})).into_response()
        }
        _ => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "stack trace with secrets").into_response(),
    }
}

async fn echo(
    State(controls): State<Arc<Controls>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Json<serde_json::Value> {
    controls.requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), serde_json::json!(value.to_str().unwrap_or_default())))
        .collect();
    Json(serde_json::json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
}

async fn sse(State(controls): State<Arc<Controls>>) -> Response {
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let controls = Arc::clone(&controls);
        async move {
            match step {
                0 => Some((Ok::<_, Infallible>(Bytes::from("event: message\ndata: first\n\n")), 1)),
                1 => {
                    controls.release_stream.notified().await;
                    Some((Ok(Bytes::from("event: message\ndata: second\n\n")), 2))
                }
                _ => None,
            }
        }
    });
    ([("content-type", "text/event-stream"), ("cache-control", "no-cache")], Body::from_stream(stream)).into_response()
}

#[derive(serde::Deserialize)]
struct SlowQuery {
    ms: u64,
}

async fn slow(Query(query): Query<SlowQuery>) -> Json<serde_json::Value> {
    tokio::time::sleep(Duration::from_millis(query.ms)).await;
    Json(serde_json::json!({"slept_ms": query.ms}))
}
