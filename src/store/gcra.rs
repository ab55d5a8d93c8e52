//! GCRA (the generic cell rate algorithm) as plain arithmetic, shared by the in-memory
//! buckets and the Redis script, which does exactly the same sums on Redis' clock.
//!
//! A bucket is one number, its theoretical arrival time (TAT), in microseconds. A request at
//! `now` is admitted when `max(tat, now) + interval - now <= interval * capacity`, and then
//! the TAT moves to that sum. With `capacity = burst + 1` a fresh client gets `burst + 1`
//! at once, then one per `interval`: nginx's `limit_req rate=<n>r/m burst=<b> nodelay`, the
//! same admissions as the local limiter (`edge::rate_limit`, governor). A TAT at or before
//! `now` is a full bucket, so a stored TAT can expire at `tat` (key TTL): nothing is lost.

use std::time::Duration;

use crate::config::Quota;
use crate::request::reply::ceil_seconds;

/// A quota in the units the arithmetic uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Microseconds between two admissions at the steady rate.
    pub interval_micros: u64,
    /// Requests admitted at once by a fresh bucket (`burst + 1`).
    pub capacity: u32,
}

impl Rate {
    pub fn of(quota: Quota) -> Self {
        let interval_micros = (60_000_000 / u64::from(quota.requests_per_minute.get())).max(1);
        Self { interval_micros, capacity: quota.burst.saturating_add(1) }
    }

    fn limit(self) -> u64 {
        self.interval_micros.saturating_mul(u64::from(self.capacity))
    }
}

/// The outcome for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Admitted; `remaining` more requests would be admitted right now, and the full burst is
    /// available again in `reset_seconds`.
    Admitted { remaining: u32, reset_seconds: u64 },
    /// Refused; try again in `retry_after_seconds` (whole seconds, rounded up, at least 1).
    Limited { retry_after_seconds: u64 },
}

impl RateDecision {
    pub fn is_limited(self) -> bool {
        matches!(self, RateDecision::Limited { .. })
    }
}

/// The answer of one GCRA step: the decision and, when admitted, the new TAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub decision: RateDecision,
    /// The TAT to store (admitted only).
    pub new_tat: Option<u64>,
}

/// One GCRA step for a bucket whose stored TAT is `tat` (`None`: never seen or expired).
pub fn step(rate: Rate, tat: Option<u64>, now: u64) -> Step {
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat.saturating_add(rate.interval_micros);
    let ahead = new_tat - now;
    if ahead > rate.limit() {
        Step { decision: limited(ahead - rate.limit()), new_tat: None }
    } else {
        Step { decision: admitted(rate, rate.limit() - ahead, ahead), new_tat: Some(new_tat) }
    }
}

/// The decision for a slack of `slack_micros` (how far the TAT is below the limit) and a
/// full refill in `reset_micros`: what the Redis script answers, too.
pub fn admitted(rate: Rate, slack_micros: u64, reset_micros: u64) -> RateDecision {
    let remaining = (slack_micros / rate.interval_micros).min(u64::from(u32::MAX)) as u32;
    RateDecision::Admitted { remaining, reset_seconds: ceil_seconds(Duration::from_micros(reset_micros)) }
}

/// The decision for a request that would fit in `wait_micros`.
pub fn limited(wait_micros: u64) -> RateDecision {
    RateDecision::Limited {
        retry_after_seconds: crate::request::reply::retry_after_seconds(Duration::from_micros(wait_micros)),
    }
}

/// The script the Redis backend runs: the same step, atomically, on Redis' own clock (`TIME`),
/// so the replicas' clocks do not matter. `KEYS[1]` is the bucket, `ARGV` the interval (µs),
/// the capacity and `1` to charge or `0` only to look. The answer is
/// `{admitted, slack or wait (µs), reset (µs)}`. The key expires when the bucket is full
/// again, so idle clients cost Redis nothing.
pub const SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local limit = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local ahead = new_tat - now
if ahead > limit then
  return {0, ahead - limit, tat - now}
end
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(ahead / 1000))
end
return {1, limit - ahead, ahead}
";

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn rate(requests_per_minute: u32, burst: u32) -> Rate {
        Rate::of(Quota { requests_per_minute: NonZeroU32::new(requests_per_minute).expect("nonzero"), burst })
    }

    /// Runs requests at the given microsecond instants, charging each admitted one.
    fn run(rate: Rate, instants: impl IntoIterator<Item = u64>) -> Vec<RateDecision> {
        let mut tat = None;
        instants
            .into_iter()
            .map(|now| {
                let step = step(rate, tat, now);
                if step.new_tat.is_some() {
                    tat = step.new_tat;
                }
                step.decision
            })
            .collect()
    }

    #[test]
    fn the_defaults_admit_21_at_once_then_one_per_600_ms() {
        let rate = rate(100, 20);
        assert_eq!(rate, Rate { interval_micros: 600_000, capacity: 21 });
        let start = 1_700_000_000_000_000;
        let decisions = run(rate, std::iter::repeat_n(start, 25));
        assert_eq!(decisions.iter().filter(|decision| !decision.is_limited()).count(), 21);
        assert_eq!(decisions[0], RateDecision::Admitted { remaining: 20, reset_seconds: 1 });
        assert_eq!(decisions[20], RateDecision::Admitted { remaining: 0, reset_seconds: 13 });
        assert_eq!(decisions[21], RateDecision::Limited { retry_after_seconds: 1 });

        // After the burst: one more each 600 ms, never two.
        let mut tat = Some(start + 21 * 600_000);
        for n in 1..=5 {
            let now = start + n * 600_000;
            let first = step(rate, tat, now);
            assert!(!first.decision.is_limited(), "one at {n} × 600 ms");
            tat = first.new_tat;
            assert!(step(rate, tat, now).decision.is_limited(), "not two at {n} × 600 ms");
        }
    }

    #[test]
    fn a_refusal_names_the_wait_rounded_up_and_changes_nothing() {
        let rate = rate(1, 0);
        let first = step(rate, None, 0);
        assert_eq!(first.decision, RateDecision::Admitted { remaining: 0, reset_seconds: 60 });
        let refused = step(rate, first.new_tat, 1_500_000);
        assert_eq!(refused, Step { decision: RateDecision::Limited { retry_after_seconds: 59 }, new_tat: None });
        assert!(!step(rate, first.new_tat, 60_000_000).decision.is_limited(), "a minute later");
    }

    #[test]
    fn an_old_tat_is_a_full_bucket() {
        let rate = rate(100, 20);
        let fresh = step(rate, None, 10_000_000);
        let stale = step(rate, Some(1), 10_000_000);
        assert_eq!(fresh, stale);
    }

    #[test]
    fn extreme_quotas_do_not_overflow() {
        let rate = rate(6_000_000, 1_000_000);
        assert_eq!(rate.interval_micros, 10);
        assert!(step(rate, Some(u64::MAX), 0).decision.is_limited(), "saturates instead of wrapping");
        assert!(!step(rate, None, u64::MAX - 10).decision.is_limited());
    }
}
