//! Process lifecycle shared by the listeners, the admin probes and shutdown: readiness,
//! draining, and the count of requests in flight.
//!
//! Shutdown on SIGTERM (OPERATIONS.md, "Shutdown"): `/readyz` fails at once so Kubernetes stops
//! sending new connections, the listeners keep accepting for `drain_delay` (endpoint removal
//! is asynchronous), then stop; requests in flight get up to `drain_timeout`. pingora's own
//! grace period is set from ours, and the process exits as soon as the last request is done.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{SignalKind, signal};

/// Readiness and in-flight accounting, shared by every service.
#[derive(Debug, Default)]
pub struct Lifecycle {
    /// The signal handlers are installed: until then a SIGTERM would kill the process at
    /// once (the default action) instead of draining it, so the process is not ready.
    signals_armed: AtomicBool,
    draining: AtomicBool,
    in_flight: AtomicUsize,
}

impl Lifecycle {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// True once shutdown has begun: `/readyz` answers 503.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// True once SIGTERM will drain the process rather than kill it.
    pub fn signals_armed(&self) -> bool {
        self.signals_armed.load(Ordering::Acquire)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Counts one request until the returned guard is dropped.
    pub fn track_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight { lifecycle: Arc::clone(self) }
    }
}

/// One request in flight; dropping it (when the request context goes away) ends it.
#[derive(Debug)]
pub struct InFlight {
    lifecycle: Arc<Lifecycle>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.lifecycle.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Turns SIGTERM into a drained shutdown and SIGINT into a fast one.
///
/// SIGQUIT (pingora's in-place upgrade) is treated like SIGTERM: pods are replaced, not
/// upgraded in place, and a half-done fd handover would only lose requests.
pub struct DrainingSignalWatch {
    pub lifecycle: Arc<Lifecycle>,
    pub drain_delay: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for DrainingSignalWatch {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut terminate), Ok(mut quit), Ok(mut interrupt)) =
            (signal(SignalKind::terminate()), signal(SignalKind::quit()), signal(SignalKind::interrupt()))
        else {
            tracing::error!("Cannot install signal handlers; shutting down");
            return ShutdownSignal::FastShutdown;
        };
        self.lifecycle.signals_armed.store(true, Ordering::Release);
        let graceful = tokio::select! {
            _ = terminate.recv() => true,
            _ = quit.recv() => true,
            _ = interrupt.recv() => false,
        };
        if !graceful {
            tracing::info!("SIGINT received, stopping now");
            self.lifecycle.start_draining();
            return ShutdownSignal::FastShutdown;
        }
        self.lifecycle.start_draining();
        tracing::info!(
            drain_delay_ms = self.drain_delay.as_millis() as u64,
            "SIGTERM received: readiness now fails, listeners stay open for the drain delay"
        );
        tokio::select! {
            _ = tokio::time::sleep(self.drain_delay) => {}
            _ = interrupt.recv() => return ShutdownSignal::FastShutdown,
        }
        tracing::info!(in_flight = self.lifecycle.in_flight(), "Drain delay over: closing listeners");
        ShutdownSignal::GracefulTerminate
    }
}
