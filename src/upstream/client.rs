//! The pooled HTTP client for the upstream REST API. Tool calls go through [`UpstreamClient::send`];
//! retries, budgets and the circuit breaker wrap this same interface.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode};

use crate::config::Upstream;

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

/// A pooled client for one upstream base URL.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    client: reqwest::Client,
    pub base_url: url::Url,
}

impl UpstreamClient {
    pub fn new(upstream: &Upstream) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(upstream.connect_timeout)
            .timeout(upstream.try_timeout.min(upstream.timeout))
            .pool_max_idle_per_host(upstream.max_idle_connections as usize)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| format!("cannot build the upstream client: {error}"))?;
        Ok(Self { client, base_url: upstream.base_url.clone() })
    }

    /// The URL for `path` under the base URL (`http://api/api` + `/employees`).
    pub fn url_for(&self, path: &str) -> Result<url::Url, String> {
        let base = self.base_url.as_str().trim_end_matches('/');
        url::Url::parse(&format!("{base}{path}")).map_err(|error| format!("cannot build the upstream URL: {error}"))
    }

    pub async fn send(&self, request: UpstreamRequest) -> Result<UpstreamReply, UpstreamError> {
        let mut builder = self.client.request(request.method, request.url).headers(request.headers);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let mut response = builder.send().await.map_err(|error| classify(&error))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| classify(&error))? {
            if body.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(UpstreamError::ReplyTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(UpstreamReply { status, content_type, body: body.freeze() })
    }
}

fn classify(error: &reqwest::Error) -> UpstreamError {
    if error.is_timeout() {
        UpstreamError::Timeout
    } else if error.is_connect() {
        UpstreamError::Connect(error.to_string())
    } else {
        UpstreamError::Protocol(error.to_string())
    }
}
