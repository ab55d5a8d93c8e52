//! The periodic loops, each a pingora background service that reads the current policy from
//! the [`PolicyHandle`] on every turn (a reload may have replaced the part it works on) and
//! calls a plain method of that part: the steps themselves know nothing of the handle.
//!
//! - [`TokensFileWatcher`]: re-reads `auth.bearer.tokens_file` when it changes.
//! - [`JwksRefresher`]: keeps a remote JWKS fresh, by the TTL its response allows.
//! - [`Sweeper`]: forgets idle rate-limit clients and expired credential sessions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::edge::auth::jwks::KeyStore;
use crate::edge::policy::PolicyHandle;

/// How often `tokens_file` is checked for changes.
pub const TOKENS_FILE_POLL: Duration = Duration::from_secs(2);
/// How often the JWKS refresher looks at the clock and at the current policy.
const JWKS_TICK: Duration = Duration::from_secs(5);
/// How soon to retry after a failed background JWKS fetch.
const JWKS_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);
/// How often idle rate-limit clients and expired sessions are swept.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Re-reads the current policy's `tokens_file`.
pub struct TokensFileWatcher {
    pub policy: PolicyHandle,
}

#[async_trait::async_trait]
impl BackgroundService for TokensFileWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut interval = tokio::time::interval(TOKENS_FILE_POLL);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => return,
            }
            let tokens = Arc::clone(&self.policy.load().auth.bearer);
            if !tokens.has_file() {
                continue;
            }
            let reloaded = Arc::clone(&tokens);
            // File I/O stays off the async workers.
            match tokio::task::spawn_blocking(move || reloaded.reload_file()).await {
                Ok(Ok(true)) => {
                    tracing::info!(tokens = tokens.len(), "Bearer tokens file reloaded");
                }
                Ok(Ok(false)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, "Bearer tokens file refused; keeping the tokens already loaded");
                }
                Err(error) => tracing::warn!(%error, "Bearer tokens file reload failed"),
            }
        }
    }
}

/// Keeps the current policy's remote key set fresh.
pub struct JwksRefresher {
    pub policy: PolicyHandle,
}

#[async_trait::async_trait]
impl BackgroundService for JwksRefresher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut refreshed: Option<(Arc<KeyStore>, Instant)> = None;
        loop {
            let store =
                self.policy.load().auth.jwt.as_ref().and_then(|jwt| jwt.key_store()).filter(|store| store.is_remote());
            if let Some(store) = store {
                // A new store (a reload changed auth) or a due one is fetched now.
                let due = match &refreshed {
                    Some((known, next)) => !Arc::ptr_eq(known, &store) || Instant::now() >= *next,
                    None => true,
                };
                if due {
                    let wait = match store.refresh().await {
                        Ok(ttl) => ttl,
                        Err(error) => {
                            tracing::warn!(%error, "JWKS refresh failed; keeping the last good keys");
                            JWKS_RETRY_AFTER_FAILURE
                        }
                    };
                    refreshed = Some((store, Instant::now() + wait));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(JWKS_TICK) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Sweeps the current policy's rate limiter and credential sessions until shutdown.
pub struct Sweeper {
    pub policy: PolicyHandle,
}

#[async_trait::async_trait]
impl BackgroundService for Sweeper {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut interval = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    let policy = self.policy.load();
                    if let Some(limiter) = &policy.rate_limiter {
                        limiter.sweep();
                    }
                    // Expired credential sessions go too (each audited as SESSION_END).
                    if let Some(sessions) = &policy.credential_sessions {
                        sessions.store.sweep();
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
