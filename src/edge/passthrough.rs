//! The passthrough route: reverse-proxy to `passthrough.url`, streaming both ways.
//!
//! The peer address was resolved when the config was loaded, so nothing here does DNS.
//! `Host` becomes the upstream's authority (as nginx's default `proxy_set_header Host
//! $proxy_host` does), which keeps local MCP servers with DNS-rebinding protection happy;
//! the original host travels in `X-Forwarded-Host`.

use std::time::Duration;

use pingora::Result;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;

use super::context::RequestContext;
use crate::config::Passthrough;

/// How long an idle pooled upstream connection is kept.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub fn peer(passthrough: &Passthrough, connect_timeout: Duration) -> Box<HttpPeer> {
    let sni = passthrough.url.host_str().unwrap_or_default().to_string();
    let mut peer = HttpPeer::new(passthrough.address, passthrough.tls, sni);
    peer.options.connection_timeout = Some(connect_timeout);
    peer.options.idle_timeout = Some(UPSTREAM_IDLE_TIMEOUT);
    // No read timeout: MCP SSE streams may stay quiet for a long time.
    peer.options.read_timeout = None;
    // pingora's proxy holds about nine body chunks per response between the upstream read
    // and a downstream write that waits for the client's HTTP/2 window; a chunk is what one
    // read returns. A small receive buffer keeps chunks small, so a stream whose client
    // never opens its window holds about 120 KiB in all instead of 530 KiB (DESIGN §15,
    // tests/e2e/h2_floods.rs). Linux doubles it: 16 KiB of TCP window, plenty on loopback.
    peer.options.tcp_recv_buf = Some(8 * 1024);
    Box::new(peer)
}

/// Adds the forwarding headers to the request sent upstream.
pub fn prepare_request(request: &mut RequestHeader, passthrough: &Passthrough, ctx: &RequestContext) -> Result<()> {
    let original_host = request
        .headers
        .get(http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri.authority().map(|authority| authority.as_str()))
        .map(str::to_string);
    if let Some(host) = original_host {
        request.insert_header("x-forwarded-host", host)?;
    }
    request.insert_header(http::header::HOST, passthrough.authority.as_str())?;
    // Like nginx's $proxy_add_x_forwarded_for: what arrived, plus the socket peer.
    if let Some(client_ip) = ctx.peer_ip {
        let forwarded_for = match request.headers.get("x-forwarded-for").and_then(|value| value.to_str().ok()) {
            Some(existing) if !existing.trim().is_empty() => format!("{existing}, {client_ip}"),
            _ => client_ip.to_string(),
        };
        request.insert_header("x-forwarded-for", forwarded_for)?;
    }
    request.insert_header("x-forwarded-proto", if ctx.downstream_tls { "https" } else { "http" })?;
    request.insert_header("x-request-id", ctx.request_id.as_str())?;
    let traceparent = crate::telemetry::trace_context::traceparent_of(&ctx.span)
        .or_else(|| ctx.trace.as_ref().map(crate::telemetry::trace_context::TraceContext::child_traceparent));
    if let Some(traceparent) = traceparent {
        request.insert_header("traceparent", traceparent)?;
    }
    Ok(())
}
