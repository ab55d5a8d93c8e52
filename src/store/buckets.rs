//! Rate-limit buckets by name: [`Bucket`] (a digest of what is limited, never a raw token or
//! principal), [`MemoryBuckets`] (this process, bounded) and [`Buckets`], which keeps them in
//! Redis when the scope is global and falls back to memory or refuses by `on_error`.
//!
//! One decision is one round trip: the GCRA script reads, decides and writes atomically.

use std::sync::Arc;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use dashmap::DashMap;
use sha2::{Digest, Sha256};

use super::gcra::{self, Rate, RateDecision};
use super::redis::{RedisStore, StoreScript};
use crate::config::OnStoreError;

/// What one bucket counts: its kind and a digest of who (and which tool).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bucket {
    kind: &'static str,
    digest: [u8; 16],
}

impl Bucket {
    /// A bucket of `kind` (`ip`, `principal`, `principal_tool`, `tool_quota`) for the
    /// parts named; parts are separated so `("ab", "c")` and `("a", "bc")` differ.
    pub fn new(kind: &'static str, parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(kind.as_bytes());
        for part in parts {
            hasher.update([0]);
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        let mut digest = [0; 16];
        digest.copy_from_slice(&hasher.finalize()[..16]);
        Self { kind, digest }
    }

    /// The Redis key name, below the prefix: `rl:<kind>:<hex digest>`.
    pub fn key_name(&self) -> String {
        let hex: String = self.digest.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("rl:{}:{hex}", self.kind)
    }
}

/// The store was needed and did not answer, and `on_error: deny`: 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreUnavailable;

/// Buckets in this process: at most `capacity`; a full table first forgets refilled buckets,
/// then the eighth whose TAT is lowest (the closest to full, so the least loss), so no two
/// clients ever share a bucket.
#[derive(Debug)]
pub struct MemoryBuckets {
    map: DashMap<Bucket, u64>,
    capacity: usize,
    started: Instant,
    evicting: Mutex<()>,
}

impl MemoryBuckets {
    pub fn new(capacity: usize) -> Self {
        Self { map: DashMap::new(), capacity: capacity.max(1), started: Instant::now(), evicting: Mutex::new(()) }
    }

    /// Microseconds on this process's monotonic clock (offset so that 0 is never "now").
    fn now(&self) -> u64 {
        self.started.elapsed().as_micros() as u64 + 1_000_000
    }

    /// One GCRA step; `charge: false` only looks.
    pub fn check(&self, bucket: &Bucket, rate: Rate, charge: bool) -> RateDecision {
        let now = self.now();
        if let Some(mut tat) = self.map.get_mut(bucket) {
            let step = gcra::step(rate, Some(*tat), now);
            if charge && let Some(new_tat) = step.new_tat {
                *tat = new_tat;
            }
            return step.decision;
        }
        let step = gcra::step(rate, None, now);
        if charge && let Some(new_tat) = step.new_tat {
            if self.map.len() >= self.capacity {
                self.make_room(now);
            }
            self.map.insert(*bucket, new_tat);
        }
        step.decision
    }

    fn make_room(&self, now: u64) {
        let Ok(_evicting) = self.evicting.try_lock() else { return };
        self.map.retain(|_, tat| *tat > now);
        if self.map.len() < self.capacity {
            return;
        }
        let mut tats: Vec<u64> = self.map.iter().map(|entry| *entry.value()).collect();
        let index = (tats.len() / 8).max(1) - 1;
        let (_, cutoff, _) = tats.select_nth_unstable(index);
        let cutoff = *cutoff;
        self.map.retain(|_, tat| *tat > cutoff);
    }

    /// Forgets refilled buckets (run on a timer).
    pub fn sweep(&self) {
        let now = self.now();
        self.map.retain(|_, tat| *tat > now);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Buckets in Redis (scope global) with a local fallback, or in memory only.
#[derive(Debug)]
pub struct Buckets {
    memory: MemoryBuckets,
    redis: Option<Arc<RedisStore>>,
}

/// The GCRA script, named by its SHA-1.
static GCRA: LazyLock<StoreScript> = LazyLock::new(|| StoreScript::new(gcra::SCRIPT));

impl Buckets {
    /// `redis: None` keeps every bucket in this process.
    pub fn new(capacity: usize, redis: Option<Arc<RedisStore>>) -> Self {
        Self { memory: MemoryBuckets::new(capacity), redis }
    }

    pub fn is_global(&self) -> bool {
        self.redis.is_some()
    }

    /// One decision for `bucket` at `rate`; `charge: false` only looks. With Redis
    /// unreachable, `on_error: allow` decides from this process's buckets and `deny` refuses.
    pub async fn check(&self, bucket: &Bucket, rate: Rate, charge: bool) -> Result<RateDecision, StoreUnavailable> {
        let Some(redis) = &self.redis else {
            return Ok(self.memory.check(bucket, rate, charge));
        };
        let args = vec![
            rate.interval_micros.to_string().into_bytes(),
            rate.capacity.to_string().into_bytes(),
            if charge { b"1".to_vec() } else { b"0".to_vec() },
        ];
        let answer = redis.eval::<(u8, u64, u64)>("rate_limit", &GCRA, &[bucket.key_name()], args).await;
        match answer {
            Ok((1, slack, reset)) => Ok(gcra::admitted(rate, slack, reset)),
            Ok((_, wait, _)) => Ok(gcra::limited(wait)),
            Err(_) if redis.on_error == OnStoreError::Allow => Ok(self.memory.check(bucket, rate, charge)),
            Err(_) => Err(StoreUnavailable),
        }
    }

    /// Forgets refilled local buckets (run on a timer).
    pub fn sweep(&self) {
        self.memory.sweep();
    }

    pub fn tracked_locally(&self) -> usize {
        self.memory.len()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::config::Quota;

    fn rate(requests_per_minute: u32, burst: u32) -> Rate {
        Rate::of(Quota { requests_per_minute: NonZeroU32::new(requests_per_minute).expect("nonzero"), burst })
    }

    #[test]
    fn buckets_are_digests_and_their_parts_do_not_run_together() {
        let token = b"secret-token-value";
        let bucket = Bucket::new("principal", &[token]);
        assert!(!bucket.key_name().contains("secret"));
        assert!(bucket.key_name().starts_with("rl:principal:"));
        assert_ne!(Bucket::new("tool_quota", &[b"ab", b"c"]), Bucket::new("tool_quota", &[b"a", b"bc"]));
        assert_ne!(Bucket::new("principal", &[b"a"]), Bucket::new("ip", &[b"a"]));
    }

    #[test]
    fn memory_buckets_admit_the_burst_and_looking_charges_nothing() {
        let buckets = MemoryBuckets::new(100);
        let rate = rate(100, 20);
        let one = Bucket::new("ip", &[b"192.0.2.1"]);
        for _ in 0..50 {
            assert!(!buckets.check(&one, rate, false).is_limited(), "a look is free");
        }
        let admitted = (0..25).filter(|_| !buckets.check(&one, rate, true).is_limited()).count();
        assert_eq!(admitted, 21);
        assert!(buckets.check(&one, rate, false).is_limited(), "a look sees the empty bucket");
        let other = Bucket::new("ip", &[b"192.0.2.2"]);
        assert!(!buckets.check(&other, rate, true).is_limited(), "another client is unaffected");
    }

    #[test]
    fn a_full_table_stays_bounded_and_keeps_the_busiest_bucket() {
        let buckets = MemoryBuckets::new(64);
        let rate = rate(1, 5);
        let busy = Bucket::new("ip", &[b"busy"]);
        for _ in 0..6 {
            buckets.check(&busy, rate, true);
        }
        for n in 0u32..1000 {
            buckets.check(&Bucket::new("ip", &[&n.to_be_bytes()]), rate, true);
        }
        assert!(buckets.len() <= 64);
        assert!(buckets.check(&busy, rate, true).is_limited(), "the busiest bucket was not reset");
    }
}
