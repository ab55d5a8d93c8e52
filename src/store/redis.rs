//! The Redis backend: one multiplexed connection (the `redis` crate's `ConnectionManager`,
//! which reconnects by itself), every command bounded by `store.redis.timeout`, and the
//! store's health (up or down) with one log line per change.
//!
//! Commands run on a small runtime of their own (one thread, `mcp-edge-store`), never on a
//! pingora worker: the connection's driver and its reconnects live there, and a request only
//! awaits the answer, for at most the timeout. While the store is down, commands fail at once
//! (counted) instead of each waiting for the timeout; a health check every half second
//! (`PING`) notices when it is back. A restarted Redis forgets the loaded GCRA script; the
//! first `EVALSHA` then answers `NOSCRIPT` and the script is loaded again
//! (`Script::invoke_async`).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::{OnStoreError, RedisStore as RedisConfig};
use crate::telemetry::metrics::METRICS;

/// How often the health check runs while the store is down, and while it is up.
const PROBE_DOWN: Duration = Duration::from_millis(500);
const PROBE_UP: Duration = Duration::from_secs(2);

/// Why a store command gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the store did not answer within its timeout")]
    Timeout,
    #[error("the store is down")]
    Down,
    #[error("the store answered an error: {0}")]
    Failed(String),
}

/// The runtime store commands run on: made once, kept for the life of the process.
fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("mcp-edge-store")
                .enable_all()
                .build()
                .map_err(|error| format!("cannot start the store runtime: {error}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A connection to one Redis, shared by every part of the policy that keeps state there.
pub struct RedisStore {
    manager: ConnectionManager,
    prefix: String,
    timeout: Duration,
    pub on_error: OnStoreError,
    up: AtomicBool,
    runtime: &'static tokio::runtime::Runtime,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may carry a password.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects lazily (the edge starts while Redis is down) and starts the health check.
    pub fn start(config: &RedisConfig) -> Result<Arc<Self>, String> {
        let runtime = runtime()?;
        let client = ::redis::Client::open(config.url.0.as_str())
            .map_err(|error| format!("store.redis.url cannot be used: {}", error.kind_str()))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.timeout))
            .set_connection_timeout(Some(config.timeout.max(Duration::from_secs(1))))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(200));
        let manager = {
            let _entered = runtime.enter();
            ConnectionManager::new_lazy_with_config(client, manager_config)
                .map_err(|error| format!("cannot set up the store connection: {}", error.kind_str()))?
        };
        let store = Arc::new(Self {
            manager,
            prefix: config.key_prefix.clone(),
            timeout: config.timeout,
            on_error: config.on_error,
            up: AtomicBool::new(true),
            runtime,
        });
        runtime.spawn(health_check(Arc::downgrade(&store)));
        Ok(store)
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// `<prefix><name>`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Runs `command` on the store runtime, bounded by the timeout. Counts and reports
    /// failures under `op`; while the store is down, fails at once.
    pub async fn run<T, F, Fut>(&self, op: &'static str, command: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = ::redis::RedisResult<T>> + Send + 'static,
    {
        if !self.is_up() {
            METRICS.store_error(op);
            return Err(StoreError::Down);
        }
        self.attempt(op, command).await
    }

    async fn attempt<T, F, Fut>(&self, op: &'static str, command: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = ::redis::RedisResult<T>> + Send + 'static,
    {
        let task = self.runtime.spawn(command(self.manager.clone()));
        let outcome = match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(error))) if error.is_timeout() => Err((StoreError::Timeout, "timeout".to_string())),
            Ok(Ok(Err(error))) => {
                let detail = describe(&error);
                Err((StoreError::Failed(detail.clone()), detail))
            }
            Ok(Err(join_error)) => Err((StoreError::Failed("task failed".into()), join_error.to_string())),
            Err(_elapsed) => Err((StoreError::Timeout, "timeout".to_string())),
        };
        match outcome {
            Ok(value) => {
                self.mark_up();
                Ok(value)
            }
            Err((error, detail)) => {
                METRICS.store_error(op);
                self.mark_down(op, &detail);
                Err(error)
            }
        }
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            tracing::info!(store.prefix = %self.prefix, "Store reachable again");
        }
    }

    fn mark_down(&self, op: &'static str, detail: &str) {
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(store.op = op, error = detail, on_error = ?self.on_error, "Store unreachable; applying store.redis.on_error until it answers again");
        }
    }
}

/// A Lua script run by `EVALSHA`, loaded again when Redis answers `NOSCRIPT` (after a
/// restart or `SCRIPT FLUSH`).
#[derive(Debug)]
pub struct StoreScript {
    code: &'static str,
    hash: String,
}

impl StoreScript {
    pub fn new(code: &'static str) -> Self {
        Self { code, hash: ::redis::Script::new(code).get_hash().to_string() }
    }
}

impl RedisStore {
    /// Runs `script` with `keys` (names below the prefix) and `args`: one round trip, two
    /// when the script must be loaded first.
    pub async fn eval<T>(
        &self,
        op: &'static str,
        script: &'static StoreScript,
        keys: &[String],
        args: Vec<Vec<u8>>,
    ) -> Result<T, StoreError>
    where
        T: ::redis::FromRedisValue + Send + 'static,
    {
        let mut evalsha = ::redis::cmd("EVALSHA");
        evalsha.arg(&script.hash).arg(keys.len());
        for key in keys {
            evalsha.arg(self.key(key));
        }
        for arg in args {
            evalsha.arg(arg);
        }
        self.run(op, move |mut connection| async move {
            match evalsha.query_async::<T>(&mut connection).await {
                Err(error) if error.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoScript) => {
                    ::redis::cmd("SCRIPT").arg("LOAD").arg(script.code).query_async::<String>(&mut connection).await?;
                    evalsha.query_async(&mut connection).await
                }
                answer => answer,
            }
        })
        .await
    }
}

/// What a Redis error says, without anything from the URL.
fn describe(error: &::redis::RedisError) -> String {
    match error.code() {
        Some(code) => format!("{code}: {}", error.detail().unwrap_or_default()),
        None => error.kind_str(),
    }
}

trait KindStr {
    fn kind_str(&self) -> String;
}

impl KindStr for ::redis::RedisError {
    fn kind_str(&self) -> String {
        if self.is_connection_refusal() {
            "connection refused".to_string()
        } else if self.is_io_error() {
            "connection error".to_string()
        } else {
            format!("{:?}", self.kind())
        }
    }
}

/// Pings the store while it exists: quickly while down (to notice a restart without
/// waiting for traffic), slowly while up (so `/readyz` shows a dead Redis on an idle edge).
async fn health_check(store: Weak<RedisStore>) {
    loop {
        let Some(store) = store.upgrade() else { return };
        let pause = if store.is_up() { PROBE_UP } else { PROBE_DOWN };
        let _ = store
            .attempt("ping", |mut connection| async move {
                ::redis::cmd("PING").query_async::<String>(&mut connection).await
            })
            .await;
        drop(store);
        tokio::time::sleep(pause).await;
    }
}
