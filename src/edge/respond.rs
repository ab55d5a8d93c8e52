//! The one place where an edge decision becomes an HTTP response.
//!
//! Every response the edge writes itself is a [`Reply`] and goes through [`write`], which adds the
//! headers every response carries ([`add_common_headers`]: `x-request-id`, security headers,
//! `Vary: Origin`, CORS and rate-limit headers when they apply) and keeps the connection
//! alive: pingora's `respond_error*` would turn keep-alive off, costing the client a new TCP
//! and TLS handshake for every 401 or 429.

use bytes::Bytes;
use http::HeaderMap;
use http::Method;
use http::header::{HeaderName, HeaderValue};
use pingora::ErrorType::InternalError;
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::{OrErr, Result};

use super::context::RequestContext;
use super::cors::{self, CorsDecision};
use super::rate_limit::RateDecision;
use crate::request::Reply;
use crate::request::reply::{Connection, ReplyBody};

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Where the common headers go: a self-made reply's plain header map, or a proxied response's
/// pingora header (which keeps the upstream's name case beside each value).
pub trait ResponseHeaders {
    fn insert(&mut self, name: HeaderName, value: HeaderValue) -> Result<()>;
    fn append(&mut self, name: HeaderName, value: HeaderValue) -> Result<()>;
    fn map(&self) -> &HeaderMap;
}

/// Inserted straight into the map: pingora's `insert_header` turns a `HeaderName` into its
/// title-case bytes and parses it back, a cost every self-made reply paid nine times.
impl ResponseHeaders for HeaderMap {
    fn insert(&mut self, name: HeaderName, value: HeaderValue) -> Result<()> {
        self.try_insert(name, value).map(drop).or_err(InternalError, "too many response headers")
    }

    fn append(&mut self, name: HeaderName, value: HeaderValue) -> Result<()> {
        self.try_append(name, value).map(drop).or_err(InternalError, "too many response headers")
    }

    fn map(&self) -> &HeaderMap {
        self
    }
}

impl ResponseHeaders for ResponseHeader {
    fn insert(&mut self, name: HeaderName, value: HeaderValue) -> Result<()> {
        self.insert_header(name, value)
    }

    fn append(&mut self, name: HeaderName, value: HeaderValue) -> Result<()> {
        self.append_header(name, value).map(drop)
    }

    fn map(&self) -> &HeaderMap {
        &self.headers
    }
}

/// Headers every response carries, proxied or self-written.
pub fn add_common_headers(response: &mut impl ResponseHeaders, ctx: &RequestContext) -> Result<()> {
    let request_id = HeaderValue::from_str(&ctx.request_id).or_err(InternalError, "request id")?;
    response.insert(X_REQUEST_ID, request_id)?;
    response.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"))?;
    add_vary_origin(response)?;
    if let CorsDecision::Allowed(allowed) = &ctx.cors {
        response.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed.allow_origin.clone())?;
        if allowed.credentials {
            response.insert(http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"))?;
        }
        response.insert(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(cors::EXPOSE_HEADERS))?;
    }
    if let Some(decision) = ctx.rate_limit {
        let (remaining, reset_seconds) = match decision {
            RateDecision::Admitted { remaining, reset_seconds } => (remaining, reset_seconds),
            RateDecision::Limited { retry_after_seconds } => (0, retry_after_seconds),
        };
        response.insert(RATELIMIT_POLICY, ctx.policy.rate_limit_policy.clone())?;
        let mut digits = itoa::Buffer::new();
        let mut ratelimit = Vec::with_capacity(32);
        ratelimit.extend_from_slice(b"\"default\";r=");
        ratelimit.extend_from_slice(digits.format(remaining).as_bytes());
        ratelimit.extend_from_slice(b";t=");
        ratelimit.extend_from_slice(digits.format(reset_seconds).as_bytes());
        let ratelimit =
            HeaderValue::from_maybe_shared(Bytes::from(ratelimit)).or_err(InternalError, "ratelimit header")?;
        response.insert(RATELIMIT, ratelimit)?;
    }
    Ok(())
}

/// The edge owns CORS: upstream CORS headers would contradict ours.
pub fn remove_upstream_cors(response: &mut ResponseHeader) {
    let names: Vec<HeaderName> =
        response.headers.keys().filter(|name| name.as_str().starts_with("access-control-")).cloned().collect();
    for name in names {
        response.remove_header(&name);
    }
}

fn add_vary_origin(response: &mut impl ResponseHeaders) -> Result<()> {
    let mentions_origin = response
        .map()
        .get_all(http::header::VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| {
            let token = token.trim();
            token.eq_ignore_ascii_case("origin") || token == "*"
        });
    if !mentions_origin {
        response.append(http::header::VARY, HeaderValue::from_static("Origin"))?;
    }
    Ok(())
}

/// How long the edge keeps reading an unread request body after answering early (a 401 or
/// 429 to a POST), so the connection can serve the next request. A client still sending
/// after this loses the connection.
const BODY_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Writes `reply` on the connection: its own headers, the ones every response carries, and
/// its body unless the request was HEAD.
pub async fn write(downstream: &mut ServerSession, ctx: &mut RequestContext, reply: Reply) -> Result<()> {
    let body = match reply.body {
        ReplyBody::Json(body) => Some(body),
        ReplyBody::Empty => None,
        ReplyBody::Stream(stream) => return write_stream(downstream, ctx, reply.status, reply.headers, stream).await,
    };
    let mut headers = HeaderMap::with_capacity(12 + reply.headers.len());
    if body.is_some() {
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.as_ref().map_or(0, Bytes::len)));
    // Appended: a reply may carry a header twice (two `WWW-Authenticate` challenges).
    for (name, value) in reply.headers {
        headers.append(name, value);
    }
    add_common_headers(&mut headers, ctx)?;
    let response = response_header(reply.status, headers)?;
    if reply.connection == Connection::Close {
        downstream.set_keepalive(None);
    }
    // pingora closes a connection answered before its request body was read; drain the
    // body instead (bounded in time), as nginx does for 401 and 429.
    downstream.set_close_on_response_before_downstream_finish(false);
    downstream.set_total_drain_timeout(Some(BODY_DRAIN_TIMEOUT));
    let body = body.filter(|_| downstream.req_header().method != Method::HEAD);
    match body {
        Some(body) => {
            downstream.write_response_header(Box::new(response)).await?;
            downstream.write_response_body(body, true).await
        }
        None => downstream.write_response_header(Box::new(response)).await,
    }
}

/// A response head without a case map: a self-made reply's header names are all standard or
/// lower case, which is how pingora writes names it has no case for.
fn response_header(status: u16, headers: HeaderMap) -> Result<ResponseHeader> {
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = http::StatusCode::from_u16(status).or_err(InternalError, "reply status")?;
    parts.headers = headers;
    Ok(ResponseHeader::from(parts))
}

/// Writes a server-sent event stream: the head at once (no `Content-Length`; chunked on
/// HTTP/1.1, which pingora drops for HTTP/2), then each chunk as the producer sends it,
/// until the producer ends the stream or the client goes away (a failed write, or the
/// connection or HTTP/2 stream closing while the edge waits for the next event). Returning
/// drops the receiver, which tells the producer to stop (and abort its upstream call).
async fn write_stream(
    downstream: &mut ServerSession,
    ctx: &mut RequestContext,
    status: u16,
    headers: Vec<(HeaderName, HeaderValue)>,
    stream: crate::request::reply::EventStream,
) -> Result<()> {
    use crate::request::reply::StreamItem;
    let Some(mut events) = stream.take() else {
        return Err(pingora::Error::explain(pingora::ErrorType::InternalError, "event stream written twice"));
    };
    let mut map = HeaderMap::with_capacity(12 + headers.len());
    map.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    map.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    map.insert(http::header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    for (name, value) in headers {
        map.append(name, value);
    }
    add_common_headers(&mut map, ctx)?;
    let response = response_header(status, map)?;
    downstream.set_close_on_response_before_downstream_finish(false);
    downstream.set_total_drain_timeout(Some(BODY_DRAIN_TIMEOUT));
    downstream.write_response_header(Box::new(response)).await?;
    loop {
        // The request body is read by now: the client has nothing more to send, so anything
        // the connection says while we wait is that it is gone.
        let next = tokio::select! {
            item = events.recv() => Some(item),
            _ = downstream.read_body_or_idle(true) => None,
        };
        match next {
            Some(Some(StreamItem::Chunk(chunk))) => downstream.write_response_body(chunk, false).await?,
            Some(Some(StreamItem::Record(record))) => ctx.records.tool = Some(record),
            Some(None) => return downstream.finish_body().await,
            None => {
                // Not an error of the edge: the client left (the audit's status says so), and
                // the connection closes.
                downstream.set_keepalive(None);
                return Ok(());
            }
        }
    }
}
