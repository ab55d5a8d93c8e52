//! The one place that wires pingora: listeners, services, and the shutdown sequence.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::server::configuration::ServerConf;
use pingora::server::{ExecutionPhase, RunArgs, Server};
use pingora::services::ServiceWithDependents;

use crate::admin::AdminApp;
use crate::background::{JwksRefresher, Sweeper, TokensFileWatcher};
use crate::config::Config;
use crate::edge::Policy;
use crate::edge::app::EdgeApp;
use crate::edge::forward::Forwarder;
use crate::edge::policy::PolicyHandle;
use crate::lifecycle::{DrainingSignalWatch, Lifecycle};
use crate::listener::EdgeListener;
use crate::reload::Reloader;
use crate::tls::{self, CertResolver};

/// The read buffer pingora puts in front of every downstream socket. Its default, 64 KiB,
/// is allocated at accept and held for the connection's life: 1000 plaintext connections
/// holding unfinished 12 KiB heads cost 58 MiB with it and 13-33 MiB with 16 KiB. Under TLS
/// rustls buffers a record itself (reading 4 KiB at a time), so a second buffer only saves
/// system calls on large bodies; 1000 such TLS connections cost 66 MiB with 16 KiB and
/// 43 MiB without.
const PLAIN_READ_BUFFER: usize = 16 * 1024;
const TLS_READ_BUFFER: usize = 0;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {address} ({name}): {source}")]
    Bind { name: &'static str, address: SocketAddr, source: std::io::Error },
    #[error("{0}")]
    Setup(String),
}

/// Extra services that run next to the edge (the demo API).
pub type ExtraService = Box<dyn ServiceWithDependents>;

/// Serves `config` until SIGTERM or SIGINT, then drains and returns.
///
/// The caller has installed the crypto providers (`crypto::install_providers`), as
/// `main` does first thing.
pub fn run(config: Config, extra_services: Vec<ExtraService>) -> Result<(), StartupError> {
    check_listen_addresses(&config)?;

    let config = Arc::new(config);
    let lifecycle = Lifecycle::new();
    let policy: PolicyHandle =
        Arc::new(arc_swap::ArcSwap::from_pointee(Policy::new(Arc::clone(&config)).map_err(StartupError::Setup)?));
    let shutdown = config.shutdown;

    let mut server = Server::new_with_opt_and_conf(None, server_conf(&config));
    server.bootstrap();

    add_background_services(&mut server, &policy);
    let (public, certificates) = public_service(&server, &config, &policy, &lifecycle)?;
    server.add_service(public);
    server.add_service(pingora::services::background::background_service(
        "reloader",
        Reloader { policy: Arc::clone(&policy), certificates },
    ));

    let mut admin = pingora::services::listening::Service::new(
        "admin".to_string(),
        AdminApp { lifecycle: Arc::clone(&lifecycle), policy: Arc::clone(&policy) },
    );
    admin.add_tcp(&config.listen.admin.to_string());
    admin.threads = Some(1);
    server.add_service(admin);
    for service in extra_services {
        server.add_boxed_service(service);
    }

    spawn_drain_monitor(server.watch_execution_phase(), Arc::clone(&lifecycle), shutdown.drain_timeout);
    tracing::info!(
        https = ?config.listen.https,
        http = ?config.listen.http,
        admin = %config.listen.admin,
        auth = config.auth.mode.as_str(),
        "mcp-edge is serving"
    );
    let watch = DrainingSignalWatch { lifecycle, drain_delay: shutdown.drain_delay };
    server.run(RunArgs { shutdown_signal: Box::new(watch) });
    tracing::info!("mcp-edge stopped");
    crate::telemetry::flush();
    Ok(())
}

/// The public listening service: our connection layer around the edge's application.
type PublicService = pingora::services::listening::Service<EdgeListener<EdgeApp>>;

/// The periodic loops (`background`), each reading the current policy.
fn add_background_services(server: &mut Server, policy: &PolicyHandle) {
    use pingora::services::background::background_service;
    server.add_service(background_service("rate-limit-sweeper", Sweeper { policy: Arc::clone(policy) }));
    server.add_service(background_service("tokens-file-watcher", TokensFileWatcher { policy: Arc::clone(policy) }));
    server.add_service(background_service("jwks-refresher", JwksRefresher { policy: Arc::clone(policy) }));
}

/// The public listeners: the edge's application behind our connection layer, and the
/// certificate resolver a reload swaps certificates into.
fn public_service(
    server: &Server,
    config: &Config,
    policy: &PolicyHandle,
    lifecycle: &Arc<Lifecycle>,
) -> Result<(PublicService, Option<Arc<CertResolver>>), StartupError> {
    // Our connection layer (`listener`) does TLS and reads HTTP/1 heads itself (pingora sees
    // the public listeners as plain TCP); the edge's application answers what it can and
    // forwards the passthrough itself. The upstream hop connects with pingora's connector
    // (the server configuration's CA file) and pools as many connections as pingora would.
    let forwarder = Forwarder::new(
        pingora::connectors::TransportConnector::new(Some(pingora::connectors::ConnectorOptions::from_server_conf(
            &server.configuration,
        ))),
        server.configuration.upstream_keepalive_pool_size,
    );
    if let Some(expiry) = config.tls.as_ref().and_then(|material| material.not_after()) {
        crate::telemetry::metrics::METRICS.cert_expiry.set(expiry);
    }
    let mut certificates = None;
    let mut tls_listener = None;
    if let (Some(address), Some(material)) = (config.listen.https, &config.tls) {
        let resolver = Arc::new(CertResolver::new(Arc::clone(&material.certified_key)));
        certificates = Some(Arc::clone(&resolver));
        let settings =
            tls::listener_settings(material, resolver).map_err(|error| StartupError::Setup(error.to_string()))?;
        tls_listener = Some((address, settings.build()));
    }
    let mut public = pingora::services::listening::Service::new(
        "mcp-edge".to_string(),
        EdgeListener::new(
            EdgeApp::new(forwarder, Arc::clone(policy), Arc::clone(lifecycle)),
            Arc::clone(policy),
            tls_listener,
        ),
    );
    let listeners = [(config.listen.https, TLS_READ_BUFFER), (config.listen.http, PLAIN_READ_BUFFER)];
    for (address, read_buffer) in listeners.into_iter().filter_map(|(address, size)| Some((address?, size))) {
        public.add_listener(
            pingora::listeners::ListenerConfig::tcp(address.to_string())
                .l4_buffer(pingora::listeners::L4BufferSettings::default().read(read_buffer)),
        );
    }
    Ok((public, certificates))
}

fn server_conf(config: &Config) -> ServerConf {
    let drain_seconds = config.shutdown.drain_timeout.as_secs_f64().ceil() as u64;
    ServerConf {
        threads: config.listen.threads,
        // pingora sleeps this long after closing the listeners; our drain monitor exits
        // earlier once nothing is in flight. One extra second keeps the monitor in charge.
        grace_period_seconds: Some(drain_seconds + 1),
        graceful_shutdown_timeout_seconds: Some(1),
        upstream_keepalive_pool_size: 128,
        // pingora's own timer ("fast timeout") keeps every thread's timers in a tree that one
        // clock thread walks every 10 ms under a write lock. After a burst of connections that
        // thread took 0.7 s of CPU in the next 6.5 s, on the worker's core, in runs of up to
        // 10 ms (perf sched). Timeouts of a second or more go to tokio's timer wheel instead;
        // throughput is unchanged.
        fast_timeout_to_tokio_threshold_seconds: Some(0),
        ..ServerConf::default()
    }
}

/// Binds and releases every listen address so an address in use is a clear startup error:
/// pingora would otherwise fail inside its service thread and leave a process without
/// listeners.
fn check_listen_addresses(config: &Config) -> Result<(), StartupError> {
    let listen = &config.listen;
    let addresses =
        [("listen.https", listen.https), ("listen.http", listen.http), ("listen.admin", Some(listen.admin))];
    for (name, address) in addresses {
        if let Some(address) = address {
            TcpListener::bind(address).map_err(|source| StartupError::Bind { name, address, source })?;
        }
    }
    Ok(())
}

/// After the listeners close, exits as soon as no request is in flight (or when
/// `drain_timeout` runs out), instead of sleeping pingora's whole grace period.
fn spawn_drain_monitor(
    mut phases: tokio::sync::broadcast::Receiver<ExecutionPhase>,
    lifecycle: Arc<Lifecycle>,
    drain_timeout: Duration,
) {
    const POLL: Duration = Duration::from_millis(50);
    // A request may be between accept and its first phase; wait for a quiet stretch.
    const QUIET: Duration = Duration::from_millis(300);
    let spawned = std::thread::Builder::new().name("drain-monitor".to_string()).spawn(move || {
        loop {
            match phases.blocking_recv() {
                Ok(ExecutionPhase::GracefulTerminate) => break,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
        let deadline = Instant::now() + drain_timeout;
        let mut quiet_since: Option<Instant> = None;
        while Instant::now() < deadline {
            if lifecycle.in_flight() == 0 {
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= QUIET {
                    break;
                }
            } else {
                quiet_since = None;
            }
            std::thread::sleep(POLL);
        }
        tracing::info!(in_flight = lifecycle.in_flight(), "Drained: exiting");
        crate::telemetry::flush();
        std::process::exit(0);
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, "Cannot start the drain monitor; shutdown waits the full grace period");
    }
}
