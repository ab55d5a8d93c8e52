//! Per-client rate limiting: GCRA (`governor`) keyed by client IP, IPv6 by /64, with the
//! admissions of nginx `limit_req rate=<n>r/m burst=<b> nodelay`: a fresh client may send
//! `b + 1` requests at once, then one per `60/n` seconds.
//!
//! Memory is bounded two ways. A sweeper forgets clients whose bucket has refilled (their
//! state is indistinguishable from a fresh one), and the table never holds more than
//! `max_tracked_clients` keys (plus, briefly, one per worker thread racing an eviction).
//! When a client it does not know arrives at a full table, the least recently seen eighth of
//! the table is evicted in one pass, so the cost is amortised over many newcomers. No two
//! clients ever share a bucket: an earlier design sent newcomers to one shared overflow
//! bucket, which let an attacker with many addresses (an IPv6 /48) fill the table and put
//! every new legitimate client behind one 429 wall. Eviction only ever resets a client to a
//! fresh bucket, and the clients hammering right now are the most recently seen.
//!
//! An entry is a 16-byte key, an 8-byte GCRA state and an 8-byte recency stamp in a hash
//! table (about 44 bytes a client with the table's slack; before the stamp, 36 bytes were
//! measured at 200 000 clients), so the default 100 000 clients cost about 4.5 MiB.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::{NoOpMiddleware, StateInformationMiddleware};
use governor::nanos::Nanos;
use governor::state::keyed::{KeyedStateStore, ShrinkableKeyedStateStore};
use governor::state::{InMemoryState, NotKeyed, StateStore};
use governor::{Quota, RateLimiter};

use std::sync::Arc;

use crate::config::{RateLimit, RateLimitKey, RateLimitScope};
use crate::request::reply::{ceil_seconds, retry_after_seconds};
use crate::store::{Bucket, Buckets, Rate, StoreUnavailable};

/// A client as the limiter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    V4(u32),
    /// The /64 prefix: one household or host usually owns a whole /64.
    V6Prefix(u64),
}

impl ClientKey {
    pub fn of(address: IpAddr) -> Self {
        match super::client_ip::canonical(address) {
            IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => ClientKey::V6Prefix((u128::from(v6) >> 64) as u64),
        }
    }
}

/// The outcome for one request (shared with the store's buckets).
pub use crate::store::RateDecision;

/// One client's bucket and when it was last seen.
#[derive(Debug, Default)]
struct Tracked {
    state: InMemoryState,
    /// A tick of the store's own counter, not a time: strictly ordered, so "least recently
    /// seen" never ties, and cheaper than reading a clock on every request.
    last_seen: AtomicU64,
}

/// The keyed state store: a `DashMap` that evicts its least recently seen entries when full.
#[derive(Debug)]
pub struct BoundedStore {
    map: DashMap<ClientKey, Tracked>,
    capacity: usize,
    ticks: AtomicU64,
    /// Held by the one thread that evicts; others insert meanwhile instead of waiting.
    evicting: Mutex<()>,
}

impl BoundedStore {
    fn new(capacity: usize) -> Self {
        Self { map: DashMap::new(), capacity: capacity.max(1), ticks: AtomicU64::new(0), evicting: Mutex::new(()) }
    }

    fn tick(&self) -> u64 {
        self.ticks.fetch_add(1, Ordering::Relaxed)
    }

    /// Forgets the least recently seen eighth of the table (at least one entry).
    fn evict_least_recent(&self) {
        let Ok(_evicting) = self.evicting.try_lock() else { return };
        if self.map.len() < self.capacity {
            return;
        }
        let mut seen: Vec<u64> = self.map.iter().map(|entry| entry.last_seen.load(Ordering::Relaxed)).collect();
        let index = (seen.len() / 8).max(1) - 1;
        let (_, cutoff, _) = seen.select_nth_unstable(index);
        let cutoff = *cutoff;
        self.map.retain(|_, tracked| tracked.last_seen.load(Ordering::Relaxed) > cutoff);
    }
}

impl StateStore for BoundedStore {
    type Key = ClientKey;

    fn measure_and_replace<T, F, E>(&self, key: &ClientKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        if let Some(tracked) = self.map.get(key) {
            tracked.last_seen.store(self.tick(), Ordering::Relaxed);
            return tracked.state.measure_and_replace(&NotKeyed::NonKey, f);
        }
        // A client we do not know: the table's length is only counted on this slower path.
        if self.map.len() >= self.capacity {
            self.evict_least_recent();
        }
        let tracked = self.map.entry(*key).or_default();
        tracked.last_seen.store(self.tick(), Ordering::Relaxed);
        tracked.state.measure_and_replace(&NotKeyed::NonKey, f)
    }
}

impl ShrinkableKeyedStateStore<ClientKey> for BoundedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        self.map.retain(|_, tracked| {
            // Read the theoretical arrival time without changing it.
            let peek: Result<(), Option<Nanos>> = tracked.state.measure_and_replace(&NotKeyed::NonKey, Err);
            matches!(peek, Err(Some(tat)) if tat > drop_below)
        });
    }

    fn shrink_to_fit(&self) {
        self.map.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

const _: fn() = || {
    fn keyed<S: KeyedStateStore<ClientKey>>() {}
    keyed::<BoundedStore>();
};

/// The per-client limiter, generic over its clock so tests can drive time.
pub struct ClientRateLimiter<C: Clock = DefaultClock> {
    limiter: RateLimiter<ClientKey, BoundedStore, C, StateInformationMiddleware>,
    clock: C,
    period: Duration,
    capacity: u32,
}

impl<C: Clock> std::fmt::Debug for ClientRateLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRateLimiter").field("period", &self.period).field("capacity", &self.capacity).finish()
    }
}

impl ClientRateLimiter<DefaultClock> {
    pub fn new(config: &RateLimit) -> Self {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> ClientRateLimiter<C> {
    pub fn with_clock(config: &RateLimit, clock: C) -> Self {
        let period = Duration::from_secs(60) / config.requests_per_minute.get();
        let capacity = config.burst.saturating_add(1);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(NonZeroU32::new(capacity).unwrap_or(NonZeroU32::MIN));
        let store = BoundedStore::new(config.max_tracked_clients);
        let limiter =
            RateLimiter::<ClientKey, BoundedStore, C, NoOpMiddleware<C::Instant>>::new(quota, store, clock.clone())
                .with_middleware::<StateInformationMiddleware>();
        Self { limiter, clock, period, capacity }
    }

    pub fn check(&self, client: IpAddr) -> RateDecision {
        match self.limiter.check_key(&ClientKey::of(client)) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                // Cells used of the burst; each refills in one period.
                let missing = self.capacity.saturating_sub(remaining);
                RateDecision::Admitted { remaining, reset_seconds: ceil_seconds(self.period * missing) }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                RateDecision::Limited { retry_after_seconds: retry_after_seconds(wait) }
            }
        }
    }

    /// Forgets clients whose bucket has refilled; run on a timer.
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    pub fn tracked_clients(&self) -> usize {
        self.limiter.len()
    }
}

impl ClientKey {
    /// The key as bytes, for a store bucket.
    fn bytes(self) -> [u8; 9] {
        let mut bytes = [0; 9];
        match self {
            ClientKey::V4(v4) => {
                bytes[0] = 4;
                bytes[1..5].copy_from_slice(&v4.to_be_bytes());
            }
            ClientKey::V6Prefix(prefix) => {
                bytes[0] = 6;
                bytes[1..].copy_from_slice(&prefix.to_be_bytes());
            }
        }
        bytes
    }
}

/// The edge-wide limit of a policy (DESIGN.md §7 and §17): by client IP in this process
/// (governor, the fast path), or in named [`Buckets`] when the scope is global or the key
/// is the principal.
///
/// With `key: principal` (or `principal_and_tool`) a request is first *looked at* by client
/// IP without being charged, before authentication; requests that end without a principal
/// (failed authentication, public routes, CORS answers) are then charged to the IP, and
/// authenticated ones to their principal. So a flood of bad tokens from one address is
/// refused before it reaches token verification, and two users behind one address each get
/// the whole quota.
#[derive(Debug)]
pub struct EdgeRateLimiter {
    key: RateLimitKey,
    rate: Rate,
    /// Client IPs in this process: `scope: local` with `key: client_ip`.
    local: Option<ClientRateLimiter>,
    /// Everything else: in Redis with `scope: global`, in memory otherwise.
    buckets: Arc<Buckets>,
}

impl EdgeRateLimiter {
    /// `buckets` are the policy's (shared with the per-tool quotas).
    pub fn new(config: &RateLimit, buckets: Arc<Buckets>) -> Self {
        let local = (config.key == RateLimitKey::ClientIp && config.scope == RateLimitScope::Local)
            .then(|| ClientRateLimiter::new(config));
        let quota = crate::config::Quota { requests_per_minute: config.requests_per_minute, burst: config.burst };
        Self { key: config.key, rate: Rate::of(quota), local, buckets }
    }

    fn ip_bucket(client: IpAddr) -> Bucket {
        Bucket::new("ip", &[&ClientKey::of(client).bytes()])
    }

    /// Before authentication: charges the client IP (`key: client_ip`), or only looks at it.
    pub async fn before_auth(&self, client: IpAddr) -> Result<RateDecision, StoreUnavailable> {
        if let Some(local) = &self.local {
            return Ok(local.check(client));
        }
        let charge = self.key == RateLimitKey::ClientIp;
        self.buckets.check(&Self::ip_bucket(client), self.rate, charge).await
    }

    /// After authentication (or an answer without it): with `key: client_ip` nothing more
    /// (`None`); else the principal (and the tool, with `principal_and_tool`) is charged, or
    /// the client IP when there is no principal.
    pub async fn after_auth(
        &self,
        client: IpAddr,
        principal: Option<&str>,
        tool: Option<&str>,
    ) -> Result<Option<RateDecision>, StoreUnavailable> {
        let bucket = match (self.key, principal, tool) {
            (RateLimitKey::ClientIp, _, _) => return Ok(None),
            (_, None, _) => Self::ip_bucket(client),
            (RateLimitKey::PrincipalAndTool, Some(principal), Some(tool)) => {
                Bucket::new("principal_tool", &[principal.as_bytes(), tool.as_bytes()])
            }
            (_, Some(principal), _) => Bucket::new("principal", &[principal.as_bytes()]),
        };
        self.buckets.check(&bucket, self.rate, true).await.map(Some)
    }

    /// The per-IP limiter of this process, when it decides (`scope: local`, `key: client_ip`).
    pub fn local(&self) -> Option<&ClientRateLimiter> {
        self.local.as_ref()
    }

    /// Whether a decision after authentication is needed at all.
    pub fn keys_by_principal(&self) -> bool {
        self.key != RateLimitKey::ClientIp
    }

    /// Forgets refilled clients; run on a timer.
    pub fn sweep(&self) {
        if let Some(local) = &self.local {
            local.sweep();
        }
        self.buckets.sweep();
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limiter(
        requests_per_minute: u32,
        burst: u32,
        max_tracked_clients: usize,
    ) -> (ClientRateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let config = RateLimit {
            enabled: true,
            requests_per_minute: NonZeroU32::new(requests_per_minute).expect("nonzero"),
            burst,
            key: crate::config::RateLimitKey::ClientIp,
            max_tracked_clients,
            scope: crate::config::RateLimitScope::Local,
        };
        (ClientRateLimiter::with_clock(&config, clock.clone()), clock)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn admitted(decision: RateDecision) -> bool {
        matches!(decision, RateDecision::Admitted { .. })
    }

    #[test]
    fn a_fresh_client_gets_burst_plus_one_then_one_per_period_like_nginx() {
        let (limiter, clock) = limiter(100, 20, 1000);
        let client = ip("192.0.2.1");
        for n in 0..21 {
            assert!(admitted(limiter.check(client)), "request {n} of the burst");
        }
        assert_eq!(limiter.check(client), RateDecision::Limited { retry_after_seconds: 1 });
        clock.advance(Duration::from_millis(599));
        assert!(!admitted(limiter.check(client)), "not yet: 600 ms per request");
        clock.advance(Duration::from_millis(1));
        assert!(admitted(limiter.check(client)));
        assert!(!admitted(limiter.check(client)));
        clock.advance(Duration::from_millis(1200));
        assert!(admitted(limiter.check(client)));
        assert!(admitted(limiter.check(client)));
        assert!(!admitted(limiter.check(client)));
    }

    #[test]
    fn remaining_and_reset_count_down_through_the_burst() {
        let (limiter, _clock) = limiter(100, 20, 1000);
        let client = ip("192.0.2.1");
        assert_eq!(limiter.check(client), RateDecision::Admitted { remaining: 20, reset_seconds: 1 });
        for _ in 0..19 {
            limiter.check(client);
        }
        // 21 used: the burst refills in 21 × 600 ms = 12.6 s.
        assert_eq!(limiter.check(client), RateDecision::Admitted { remaining: 0, reset_seconds: 13 });
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let (limiter, clock) = limiter(1, 0, 1000);
        let client = ip("192.0.2.1");
        assert!(admitted(limiter.check(client)));
        assert_eq!(limiter.check(client), RateDecision::Limited { retry_after_seconds: 60 });
        clock.advance(Duration::from_millis(500));
        assert_eq!(limiter.check(client), RateDecision::Limited { retry_after_seconds: 60 });
        clock.advance(Duration::from_millis(59_000));
        assert_eq!(limiter.check(client), RateDecision::Limited { retry_after_seconds: 1 });
    }

    #[test]
    fn clients_are_independent_and_ipv6_is_keyed_by_64() {
        let (limiter, _clock) = limiter(1, 0, 1000);
        assert!(admitted(limiter.check(ip("192.0.2.1"))));
        assert!(!admitted(limiter.check(ip("192.0.2.1"))));
        assert!(admitted(limiter.check(ip("192.0.2.2"))));
        assert!(admitted(limiter.check(ip("2001:db8:1:2::1"))));
        assert!(!admitted(limiter.check(ip("2001:db8:1:2:ffff::9"))), "same /64");
        assert!(admitted(limiter.check(ip("2001:db8:1:3::1"))), "another /64");
        assert!(!admitted(limiter.check(ip("::ffff:192.0.2.1"))), "mapped IPv4 is the IPv4 client");
    }

    #[test]
    fn sweeping_forgets_refilled_clients_only() {
        let (limiter, clock) = limiter(60, 0, 1000);
        limiter.check(ip("192.0.2.1"));
        // governor keeps a key for one period after it refilled: forgotten after 2 s.
        clock.advance(Duration::from_millis(2500));
        limiter.check(ip("192.0.2.2"));
        limiter.sweep();
        assert_eq!(limiter.tracked_clients(), 1, "192.0.2.1 refilled and is forgotten");
        assert!(!admitted(limiter.check(ip("192.0.2.2"))), "192.0.2.2 is still limited");
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_seen_and_never_shares_a_bucket() {
        let (limiter, _clock) = limiter(1, 0, 8);
        for n in 1..=8 {
            assert!(admitted(limiter.check(ip(&format!("192.0.2.{n}")))));
        }
        // 192.0.2.1 is seen again (limited): it is now the most recent.
        assert!(!admitted(limiter.check(ip("192.0.2.1"))));
        assert_eq!(limiter.tracked_clients(), 8);
        // Newcomers each get a bucket of their own, however many arrive.
        for n in 1..=20 {
            let newcomer = ip(&format!("198.51.100.{n}"));
            assert!(admitted(limiter.check(newcomer)), "newcomer {n} has its own fresh bucket");
            assert!(!admitted(limiter.check(newcomer)), "and it is its own: used up");
            assert!(limiter.tracked_clients() <= 8, "bounded by the capacity");
        }
        // The recent newcomers are still tracked (and limited).
        assert!(!admitted(limiter.check(ip("198.51.100.20"))));
    }

    #[test]
    fn eviction_keeps_the_clients_seen_most_recently() {
        let (limiter, _clock) = limiter(1, 0, 16);
        for n in 1..=16 {
            limiter.check(ip(&format!("192.0.2.{n}")));
        }
        // 192.0.2.1-2 are old; everyone else is seen again, so they are evicted first.
        for n in 3..=16 {
            limiter.check(ip(&format!("192.0.2.{n}")));
        }
        limiter.check(ip("198.51.100.1"));
        for n in 3..=16 {
            assert!(!admitted(limiter.check(ip(&format!("192.0.2.{n}")))), "192.0.2.{n} kept its state");
        }
        assert!(admitted(limiter.check(ip("192.0.2.1"))), "the least recently seen was forgotten");
    }

    fn keyed(key: RateLimitKey) -> EdgeRateLimiter {
        let config = RateLimit {
            enabled: true,
            requests_per_minute: NonZeroU32::new(100).expect("nonzero"),
            burst: 20,
            key,
            max_tracked_clients: 1000,
            scope: RateLimitScope::Local,
        };
        EdgeRateLimiter::new(&config, Arc::new(Buckets::new(1000, None)))
    }

    /// Admissions in `n` requests after authentication.
    async fn admitted_after_auth(
        limiter: &EdgeRateLimiter,
        n: usize,
        principal: Option<&str>,
        tool: Option<&str>,
    ) -> usize {
        let mut admitted = 0;
        for _ in 0..n {
            let decision = limiter.after_auth(ip("192.0.2.1"), principal, tool).await.expect("memory");
            admitted += usize::from(matches!(decision, Some(RateDecision::Admitted { .. })));
        }
        admitted
    }

    #[tokio::test]
    async fn principal_keys_give_each_principal_and_tool_its_own_bucket() {
        let by_principal = keyed(RateLimitKey::Principal);
        assert_eq!(admitted_after_auth(&by_principal, 25, Some("bearer:alice"), Some("a")).await, 21);
        assert_eq!(
            admitted_after_auth(&by_principal, 5, Some("bearer:alice"), Some("b")).await,
            0,
            "one bucket for every tool"
        );
        assert_eq!(admitted_after_auth(&by_principal, 25, Some("bearer:bob"), None).await, 21, "another principal");

        let by_tool = keyed(RateLimitKey::PrincipalAndTool);
        assert_eq!(admitted_after_auth(&by_tool, 25, Some("bearer:alice"), Some("a")).await, 21);
        assert_eq!(admitted_after_auth(&by_tool, 25, Some("bearer:alice"), Some("b")).await, 21, "another tool");
        assert_eq!(admitted_after_auth(&by_tool, 25, Some("bearer:alice"), None).await, 21, "no tool");

        // Without a principal the address is charged, and the look before authentication
        // sees it; with `client_ip` nothing happens after authentication.
        let limiter = keyed(RateLimitKey::Principal);
        assert!(matches!(limiter.before_auth(ip("192.0.2.1")).await, Ok(RateDecision::Admitted { .. })));
        assert_eq!(admitted_after_auth(&limiter, 25, None, None).await, 21);
        assert!(matches!(limiter.before_auth(ip("192.0.2.1")).await, Ok(RateDecision::Limited { .. })));
        assert_eq!(keyed(RateLimitKey::ClientIp).after_auth(ip("192.0.2.1"), Some("x"), None).await, Ok(None));
    }
}
