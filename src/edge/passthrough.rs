//! The passthrough route: reverse-proxy to `passthrough.url`, streaming both ways.
//!
//! The peer address was resolved when the config was loaded, so nothing here does DNS.
//! `Host` becomes the upstream's authority (as nginx's default `proxy_set_header Host
//! $proxy_host` does), which keeps local MCP servers with DNS-rebinding protection happy;
//! the original host travels in `X-Forwarded-Host`. WebSocket upgrades are forwarded only
//! with `passthrough.websocket: true`.

use std::time::Duration;

use pingora::Result;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::{HttpPeer, HttpUpstreamRequestPolicy};

use super::context::RequestContext;
use crate::config::Passthrough;

/// Passed on only from a trusted proxy: each names the client or rewrites the URL.
const UNTRUSTED_CLIENT_HEADERS: [&str; 5] =
    ["forwarded", "x-original-url", "x-rewrite-url", "x-forwarded-prefix", "x-forwarded-port"];

/// How long an idle pooled upstream connection is kept.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub fn peer(passthrough: &Passthrough, connect_timeout: Duration) -> Box<HttpPeer> {
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
    // pingora's proxy holds about nine body chunks per response between the upstream read
    // and a downstream write that waits for the client's HTTP/2 window; a chunk is what one
    // read returns. A small receive buffer keeps chunks small, so a stream whose client
    // never opens its window holds about 120 KiB in all instead of 530 KiB
    // (tests/e2e/h2_floods.rs). Linux doubles it: 16 KiB of TCP window, plenty on loopback.
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
    // Like nginx's $proxy_add_x_forwarded_for: what arrived (every line, in order), plus the
    // socket peer, as one line.
    if let Some(client_ip) = ctx.peer_ip {
        let mut forwarded_for = String::new();
        for line in request.headers.get_all("x-forwarded-for") {
            let Ok(text) = line.to_str() else { continue };
            if !text.trim().is_empty() {
                forwarded_for.push_str(text.trim());
                forwarded_for.push_str(", ");
            }
        }
        forwarded_for.push_str(&client_ip.to_string());
        request.insert_header("x-forwarded-for", forwarded_for)?;
    }
    let peer_trusted =
        ctx.peer_ip.is_some_and(|peer| super::client_ip::is_trusted(peer, &ctx.policy.config.trusted_proxies));
    if !peer_trusted {
        for name in UNTRUSTED_CLIENT_HEADERS {
            request.remove_header(name);
        }
    }
    match ctx.client_ip {
        Some(client_ip) => request.insert_header("x-real-ip", client_ip.to_string())?,
        None => {
            request.remove_header("x-real-ip");
        }
    }
    // A DPoP proof is for this edge (its `htu`) and single-use: the upstream has no use for
    // it, and a copy there could be replayed against another resource of the same client.
    request.remove_header("dpop");
    request.insert_header("x-forwarded-proto", if ctx.downstream_tls { "https" } else { "http" })?;
    request.insert_header("x-request-id", ctx.request_id.as_str())?;
    let traceparent = crate::telemetry::trace_context::traceparent_of(&ctx.span)
        .or_else(|| ctx.trace.as_ref().map(crate::telemetry::trace_context::TraceContext::child_traceparent));
    if let Some(traceparent) = traceparent {
        request.insert_header("traceparent", traceparent)?;
    }
    Ok(())
}
