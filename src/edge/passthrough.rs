//! The passthrough route: reverse-proxy to `passthrough.url`, streaming both ways.
//!
//! The peer address was resolved when the config was loaded, so nothing here does DNS.
//! `Host` becomes the upstream's authority (as nginx's default `proxy_set_header Host
//! $proxy_host` does), which keeps local MCP servers with DNS-rebinding protection happy;
//! the original host travels in `X-Forwarded-Host`. WebSocket upgrades are forwarded only
//! with `passthrough.websocket: true`.

use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::upstreams::peer::{HttpPeer, HttpUpstreamRequestPolicy, Peer};
use pingora::{Error, ErrorType, OrErr, Result};

use super::context::RequestContext;
use crate::config::Passthrough;
use crate::request::reply::retry_after_seconds;
use crate::request::{EdgeError, Reply};
use crate::telemetry::text;
use crate::upstream::breaker::CallOutcome;

/// How long an idle pooled upstream connection is kept.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The passthrough's upstream peer and its connection-pool key, built once per policy (a
/// reload builds a new one) rather than for every proxied request.
#[derive(Debug)]
pub struct UpstreamPeer {
    pub peer: HttpPeer,
    pub pool_key: u64,
}

impl UpstreamPeer {
    pub fn new(passthrough: &Passthrough, connect_timeout: Duration) -> Self {
        let peer = peer(passthrough, connect_timeout);
        let pool_key = peer.reuse_hash();
        Self { peer, pool_key }
    }
}

fn peer(passthrough: &Passthrough, connect_timeout: Duration) -> HttpPeer {
    let sni = passthrough.url.host_str().unwrap_or_default().to_string();
    let mut peer = HttpPeer::new(passthrough.address, passthrough.tls, sni);
    peer.options.connection_timeout = Some(connect_timeout);
    peer.options.idle_timeout = Some(UPSTREAM_IDLE_TIMEOUT);
    // No read timeout: MCP SSE streams may stay quiet for a long time.
    peer.options.read_timeout = None;
    // An upgrade is forwarded only when asked for (`passthrough.websocket`); otherwise its
    // headers are stripped, as nginx does unless told to pass `Upgrade`, so the server
    // answers plain HTTP and the request stays under the edge's policy.
    if !passthrough.websocket {
        peer.options.http_upstream_request_policy = HttpUpstreamRequestPolicy::deny_upgrades();
    }
    // The forwarder holds one body chunk per response between the upstream read and a
    // downstream write that waits for the client's HTTP/2 window (pingora's proxy held about
    // nine); a chunk is what one read returns. A small receive buffer keeps chunks small and
    // what the kernel holds for a stalled stream at 16 KiB of TCP window (Linux doubles it):
    // plenty on loopback (tests/e2e/h2_floods.rs bounds a stalled stream's memory).
    peer.options.tcp_recv_buf = Some(8 * 1024);
    peer
}

/// Fields a client sends that the edge removes before forwarding, so the server never mistakes
/// them for the edge's: `X-Real-IP` (the edge writes it) and `DPoP` (a proof is for this edge,
/// its `htu`, and single-use: the upstream has no use for it, and a copy there could be
/// replayed against another resource of the same client).
pub const EDGE_WRITTEN: [&str; 2] = ["x-real-ip", "dpop"];

/// Passed on only from a trusted proxy: each names the client or rewrites the URL.
pub const UNTRUSTED_CLIENT_HEADERS: [&str; 5] =
    ["forwarded", "x-original-url", "x-rewrite-url", "x-forwarded-prefix", "x-forwarded-port"];

const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Whether the request's socket peer is a trusted proxy, whose client-naming headers are kept.
pub fn peer_trusted(ctx: &RequestContext) -> bool {
    ctx.peer_ip.is_some_and(|peer| super::client_ip::is_trusted(peer, &ctx.policy.config.trusted_proxies))
}

/// Adds the forwarding headers to the request sent upstream (the fields they replace are
/// removed by `forward::head` beforehand).
pub fn prepare_request(request: &mut RequestHeader, passthrough: &Passthrough, ctx: &RequestContext) -> Result<()> {
    let original_host = request
        .headers
        .get(http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri.authority().map(|authority| authority.as_str()))
        .map(str::to_string);
    if let Some(host) = original_host {
        request.insert_header(X_FORWARDED_HOST, host)?;
    }
    request.insert_header(http::header::HOST, passthrough.authority.as_str())?;
    // Like nginx's $proxy_add_x_forwarded_for: what arrived (every line, in order), plus the
    // socket peer, as one line.
    if let Some(client_ip) = ctx.peer_ip {
        let mut forwarded_for = Vec::with_capacity(64);
        for line in request.headers.get_all(&X_FORWARDED_FOR) {
            let Ok(text) = line.to_str() else { continue };
            if !text.trim().is_empty() {
                forwarded_for.extend_from_slice(text.trim().as_bytes());
                forwarded_for.extend_from_slice(b", ");
            }
        }
        text::push_ip(&mut forwarded_for, &client_ip);
        request.insert_header(X_FORWARDED_FOR, header_value(forwarded_for)?)?;
    }
    if let Some(client_ip) = ctx.client_ip {
        let mut real_ip = Vec::with_capacity(39);
        text::push_ip(&mut real_ip, &client_ip);
        request.insert_header(X_REAL_IP, header_value(real_ip)?)?;
    }
    request.insert_header(X_FORWARDED_PROTO, if ctx.downstream_tls { "https" } else { "http" })?;
    request.insert_header(X_REQUEST_ID, ctx.request_id.as_str())?;
    let traceparent = crate::telemetry::trace_context::traceparent_of(&ctx.span)
        .or_else(|| ctx.trace.as_ref().map(crate::telemetry::trace_context::TraceContext::child_traceparent));
    if let Some(traceparent) = traceparent {
        request.insert_header(TRACEPARENT, traceparent)?;
    }
    Ok(())
}

/// A header value from bytes the edge put together (pingora checks them as it would a `String`).
fn header_value(bytes: Vec<u8>) -> Result<HeaderValue> {
    HeaderValue::from_maybe_shared(bytes::Bytes::from(bytes)).or_err(ErrorType::InternalError, "forwarding header")
}

/// Takes the passthrough breaker's permission for this request's call into `ctx`; an open
/// breaker is a 503 error (with the breaker's `Retry-After` in `ctx`).
pub fn acquire_breaker(ctx: &mut RequestContext) -> Result<()> {
    let Some(breaker) = &ctx.policy.passthrough_breaker else { return Ok(()) };
    match breaker.try_acquire() {
        Ok(permit) => {
            ctx.breaker_permit = Some(permit);
            Ok(())
        }
        Err(rejected) => {
            ctx.unavailable_retry_after = Some(retry_after_seconds(rejected.retry_after));
            Error::e_explain(ErrorType::HTTPStatus(503), "passthrough circuit open")
        }
    }
}

/// Tells the breaker how the call went. A client that went away says nothing about the
/// upstream: the permit is dropped. An answer counts by the breaker's `failure_statuses`
/// (not the edge's own 500).
pub fn settle_breaker(ctx: &mut RequestContext, error: Option<&Error>) {
    let Some(permit) = ctx.breaker_permit.take() else { return };
    let upstream_failed = error.is_some_and(|error| matches!(error.esource(), pingora::ErrorSource::Upstream));
    if upstream_failed {
        permit.record(CallOutcome::Failure);
    } else if let Some(status) = ctx.upstream_status {
        let outcome = permit.outcome_for_status(status);
        permit.record(outcome);
    } else if error.is_none() {
        permit.record(CallOutcome::Success);
    }
}

/// The answer to a passthrough that failed with `error`, if one can still be written
/// (`response_written`: the head went out already, so the stream can only be cut). Every
/// answer closes the connection: the request's framing, or the upstream's, is lost.
pub fn failure_reply(error: &Error, ctx: &RequestContext, response_written: bool) -> Option<Reply> {
    if client_went_away(error) {
        // Nobody is left to answer, and a client hanging up is not the proxy failing: no
        // response and no warning (a load balancer's or a load test's every disconnect
        // would otherwise log one).
        tracing::debug!(request_id = %ctx.request_id, error = %error, "Client went away during the passthrough");
        return None;
    }
    if client_sent_bad_framing(error) {
        // A malformed chunked body is the client's error, not the upstream's: 400 (pingora
        // would make it a 502).
        tracing::debug!(request_id = %ctx.request_id, error = %error, "Malformed request body");
        return (!response_written).then(|| EdgeError::BadRequest.into_reply(&ctx.request_id).closing());
    }
    let edge_error = match error.etype() {
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => EdgeError::GatewayTimeout,
        ErrorType::HTTPStatus(413) => EdgeError::PayloadTooLarge,
        ErrorType::HTTPStatus(400) => EdgeError::BadRequest,
        ErrorType::HTTPStatus(503) => match ctx.unavailable_retry_after {
            Some(retry_after_seconds) => EdgeError::ServiceUnavailable { retry_after_seconds },
            None => EdgeError::Internal,
        },
        ErrorType::HTTPStatus(_) | ErrorType::InternalError => EdgeError::Internal,
        _ => EdgeError::BadGateway,
    };
    tracing::warn!(request_id = %ctx.request_id, error = %error, "Passthrough failed");
    (!response_written).then(|| edge_error.into_reply(&ctx.request_id).closing())
}

/// The request body from downstream could not be parsed (a bad chunk-size line, chunk data
/// not followed by CRLF): pingora's body reader says `InvalidChunk` (its constant is private).
pub fn client_sent_bad_framing(error: &Error) -> bool {
    matches!(error.esource(), pingora::ErrorSource::Downstream)
        && matches!(error.etype(), ErrorType::Custom("InvalidChunk") | ErrorType::InvalidHTTPHeader)
}

/// The downstream connection broke (reset, closed, or its h2 stream cancelled) while the
/// request was being proxied.
pub fn client_went_away(error: &Error) -> bool {
    matches!(error.esource(), pingora::ErrorSource::Downstream)
        && matches!(
            error.etype(),
            ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed | ErrorType::H2Error
        )
}
