//! Shared state (DESIGN.md §17): what lets any replica serve any client. `memory` keeps
//! everything in this process (the default; no Redis at run time); `redis` keeps rate-limit
//! buckets (`rate_limit.scope: global`), credential sessions (tokens sealed with
//! AES-256-GCM) and MCP session revocations in one Redis, under `store.redis.key_prefix`.
//!
//! `redis` is the connection (`RedisStore`: timeouts, health, reconnects); `gcra` the
//! rate arithmetic and the Lua script that runs it in Redis; `buckets` names buckets by
//! digest and decides in memory or in Redis with the `on_error` fallback; `sealed` encrypts
//! what is stored about a credential session. Redis keys never contain a raw token, session
//! id or principal: only SHA-256 digests.

pub mod buckets;
pub mod gcra;
pub mod redis;
pub mod sealed;

pub use buckets::{Bucket, Buckets, StoreUnavailable};
pub use gcra::{Rate, RateDecision};
pub use redis::{RedisStore, StoreError};

use std::sync::Arc;

use crate::config::{Store, StoreBackend};

/// The shared store of a policy: `None` for `backend: memory`.
pub fn start(config: &Store) -> Result<Option<Arc<RedisStore>>, String> {
    match &config.backend {
        StoreBackend::Memory => Ok(None),
        StoreBackend::Redis(redis) => RedisStore::start(redis).map(Some),
    }
}
