//! A mock upstream on a free loopback port (axum), standing in for the MCP server or the
//! REST API behind the edge. A test declares what it answers:
//!
//! ```ignore
//! let api = MockApi::new()
//!     .route(Method::GET, "/flaky", Reply::json(json!({"title": "flaky"})).status(503).times(2).then(Reply::hit_number()))
//!     .any("/api/ok/settings/validate", Reply::json(json!({"valid": true})))
//!     .start()
//!     .await;
//! ```
//!
//! A request no route matches (method and exact path, the query aside) is echoed back
//! (`Reply::echo`). The mock counts every request, in all and per path (`hits`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::any;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One answer of the mock: status, headers, body, and how long to wait before answering.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: ReplyBody,
    delay: Option<Duration>,
    /// `Some(n)`: this reply answers the first `n` hits of its route, `then` the rest.
    times: Option<usize>,
    then: Option<Box<Reply>>,
}

#[derive(Clone, Debug)]
enum ReplyBody {
    Fixed(String),
    /// Raw bytes (images, audio, multipart bodies).
    Bytes(Vec<u8>),
    Json(Value),
    /// The request's method, path, query, headers and body as JSON.
    Echo,
    /// `{"hit": n}`, `n` the number of this hit on the route (1 for the first).
    HitNumber,
    /// Sends the first chunk at once and each further one after `MockApi::release_stream`.
    Held(Vec<String>),
}

impl Reply {
    fn new(content_type: &str, body: ReplyBody) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".to_string(), content_type.to_string())],
            body,
            delay: None,
            times: None,
            then: None,
        }
    }

    /// 200 with the request as JSON: `method`, `path`, `query`, `headers`, `body`.
    pub fn echo() -> Self {
        Self::new("application/json", ReplyBody::Echo)
    }

    /// 200 with this JSON body.
    pub fn json(body: Value) -> Self {
        Self::new("application/json", ReplyBody::Json(body))
    }

    /// 200 with this plain-text body.
    pub fn text(body: &str) -> Self {
        Self::new("text/plain; charset=utf-8", ReplyBody::Fixed(body.to_string()))
    }

    /// 200 with these bytes as a body of `content_type`.
    pub fn bytes(content_type: &str, body: &[u8]) -> Self {
        Self::new(content_type, ReplyBody::Bytes(body.to_vec()))
    }

    /// `code` with an ASP.NET-style problem body (`title`, `detail: "mock said {code}"`, `status`).
    pub fn problem(code: u16) -> Self {
        let title = StatusCode::from_u16(code).ok().and_then(|status| status.canonical_reason()).unwrap_or("error");
        let body = json!({"title": title, "detail": format!("mock said {code}"), "status": code});
        Self::new("application/problem+json", ReplyBody::Fixed(body.to_string())).status(code)
    }

    /// 200 with `{"hit": n}`, the number of this request on the route.
    pub fn hit_number() -> Self {
        Self::new("application/json", ReplyBody::HitNumber)
    }

    /// A server-sent event stream: the first chunk at once, each next one when the test calls
    /// `MockApi::release_stream`.
    pub fn held_stream(chunks: &[&str]) -> Self {
        Self::new("text/event-stream", ReplyBody::Held(chunks.iter().map(ToString::to_string).collect()))
            .header("cache-control", "no-cache")
    }

    pub fn status(mut self, code: u16) -> Self {
        self.status = code;
        self
    }

    /// Adds a header (a second `content-type` replaces the first).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(existing, _)| !(name.eq_ignore_ascii_case("content-type") && existing == "content-type"));
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Waits this long before answering.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Answers only the first `hits` hits of the route this way (then `then`, or this again).
    pub fn times(mut self, hits: usize) -> Self {
        self.times = Some(hits);
        self
    }

    /// What answers once `times` is used up.
    pub fn then(mut self, next: Reply) -> Self {
        self.then = Some(Box::new(next));
        self
    }

    /// The reply for the `hit`-th request (1-based) of its route.
    fn for_hit(&self, hit: usize) -> &Reply {
        match (self.times, &self.then) {
            (Some(times), Some(next)) if hit > times => next.for_hit(hit - times),
            _ => self,
        }
    }
}

struct Route {
    /// `None`: any method.
    method: Option<Method>,
    path: String,
    reply: Reply,
}

/// Shared with the handler: the routes, the counters, and what releases a held stream.
struct Controls {
    routes: Vec<Route>,
    fallback: Reply,
    /// Hits per request path.
    hits: Mutex<HashMap<String, usize>>,
    release_stream: Notify,
    /// Requests that reached the mock (any path).
    requests: AtomicUsize,
    /// Every request as `Reply::echo` would describe it, in arrival order.
    seen: Mutex<Vec<Value>>,
    /// Requests whose client went away before the answer was sent (the handler was dropped).
    abandoned: AtomicUsize,
}

/// Counts a request as abandoned unless it was answered (`answered`).
struct AbandonWatch<'a> {
    abandoned: &'a AtomicUsize,
    answered: bool,
}

impl Drop for AbandonWatch<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.abandoned.fetch_add(1, Ordering::SeqCst);
        }
    }
}

pub struct MockApiBuilder {
    routes: Vec<Route>,
    fallback: Reply,
}

pub struct MockApi {
    pub address: SocketAddr,
    controls: Arc<Controls>,
    _task: tokio::task::JoinHandle<()>,
}

impl MockApi {
    #[allow(clippy::new_ret_no_self)] // reads as the builder it starts: MockApi::new()...start()
    pub fn new() -> MockApiBuilder {
        MockApiBuilder { routes: Vec::new(), fallback: Reply::echo() }
    }

    /// A mock that echoes every request (no routes).
    pub async fn start() -> Self {
        Self::new().start().await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// How many requests for `path` (the query aside) reached the mock.
    pub fn hits(&self, path: &str) -> usize {
        self.controls.hits.lock().expect("lock").get(path).copied().unwrap_or(0)
    }

    pub fn request_count(&self) -> usize {
        self.controls.requests.load(Ordering::SeqCst)
    }

    /// The last request that reached the mock, as `Reply::echo` describes it (`method`,
    /// `path`, `query`, `headers`, `body`), whatever the route answered.
    pub fn last_request(&self) -> Option<Value> {
        self.controls.seen.lock().expect("lock").last().cloned()
    }

    /// Requests whose connection closed while the mock was still preparing the answer (its
    /// `delay`): the caller gave up on them.
    pub fn abandoned_count(&self) -> usize {
        self.controls.abandoned.load(Ordering::SeqCst)
    }

    /// Lets a `held_stream` send its next chunk.
    pub fn release_stream(&self) {
        self.controls.release_stream.notify_one();
    }
}

impl MockApiBuilder {
    /// Answers `method` requests for exactly `path` with `reply`.
    pub fn route(mut self, method: Method, path: &str, reply: Reply) -> Self {
        self.routes.push(Route { method: Some(method), path: path.to_string(), reply });
        self
    }

    /// Answers requests of any method for exactly `path` with `reply`.
    pub fn any(mut self, path: &str, reply: Reply) -> Self {
        self.routes.push(Route { method: None, path: path.to_string(), reply });
        self
    }

    /// What answers a request no route matches (`Reply::echo` unless set).
    pub fn fallback(mut self, reply: Reply) -> Self {
        self.fallback = reply;
        self
    }

    pub async fn start(self) -> MockApi {
        let controls = Arc::new(Controls {
            routes: self.routes,
            fallback: self.fallback,
            hits: Mutex::new(HashMap::new()),
            release_stream: Notify::new(),
            requests: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            abandoned: AtomicUsize::new(0),
        });
        let app = Router::new().fallback(any(answer)).with_state(Arc::clone(&controls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind mock api");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockApi { address, controls, _task: task }
    }
}

async fn answer(
    State(controls): State<Arc<Controls>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    controls.requests.fetch_add(1, Ordering::SeqCst);
    controls.seen.lock().expect("lock").push(echo(&method, &uri, &headers, &body));
    let hit = {
        let mut hits = controls.hits.lock().expect("lock");
        let count = hits.entry(uri.path().to_string()).or_insert(0);
        *count += 1;
        *count
    };
    let route = controls
        .routes
        .iter()
        .find(|route| route.path == uri.path() && route.method.as_ref().is_none_or(|expected| *expected == method));
    let reply = route.map_or(&controls.fallback, |route| &route.reply).for_hit(hit).clone();
    if let Some(delay) = reply.delay {
        let mut watch = AbandonWatch { abandoned: &controls.abandoned, answered: false };
        tokio::time::sleep(delay).await;
        watch.answered = true;
    }
    let body = match reply.body {
        ReplyBody::Fixed(text) => Body::from(text),
        ReplyBody::Bytes(bytes) => Body::from(bytes),
        ReplyBody::Json(value) => Body::from(value.to_string()),
        ReplyBody::Echo => Body::from(echo(&method, &uri, &headers, &body).to_string()),
        ReplyBody::HitNumber => Body::from(json!({"hit": hit}).to_string()),
        ReplyBody::Held(chunks) => held(Arc::clone(&controls), chunks),
    };
    let mut response =
        Response::builder().status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::IM_A_TEAPOT));
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    response.body(body).expect("response")
}

fn echo(method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Value {
    let headers: serde_json::Map<String, Value> =
        headers.iter().map(|(name, value)| (name.to_string(), json!(value.to_str().unwrap_or_default()))).collect();
    json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(body),
    })
}

fn held(controls: Arc<Controls>, chunks: Vec<String>) -> Body {
    let stream = futures_util::stream::unfold(0usize, move |step| {
        let controls = Arc::clone(&controls);
        let chunk = chunks.get(step).cloned();
        async move {
            let chunk = chunk?;
            if step > 0 {
                controls.release_stream.notified().await;
            }
            Some((Ok::<_, Infallible>(Bytes::from(chunk)), step + 1))
        }
    });
    Body::from_stream(stream)
}
