//! Full-jitter exponential backoff: the delay before retry `n` is uniform in
//! `[0, min(max, base · 2^(n-1))]` (Brooker, "Exponential Backoff And Jitter").

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// Refuses a zero base or a cap below the base.
    pub fn new(base: Duration, max: Duration) -> Result<Self, String> {
        if base.is_zero() {
            return Err("backoff must be longer than 0".to_string());
        }
        if max < base {
            return Err("max_backoff must not be shorter than backoff".to_string());
        }
        Ok(Self { base, max })
    }

    /// The upper bound of the delay before retry `retry` (1 for the first retry).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base.checked_mul(factor).map_or(self.max, |delay| delay.min(self.max))
    }

    /// A random delay in `[0, ceiling(retry)]`.
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(retry);
        Duration::from_nanos(rng.random_range(0..=ceiling.as_nanos().min(u64::MAX as u128) as u64))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn constructor_refuses_nonsense() {
        assert!(Backoff::new(Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(Backoff::new(Duration::from_secs(2), Duration::from_secs(1)).is_err());
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(5)).expect("backoff");
        let ceilings: Vec<u128> = (1..=6).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(backoff.ceiling(200), Duration::from_secs(5));
    }

    proptest! {
        #[test]
        fn delay_always_within_zero_and_the_ceiling(base_ms in 1u64..10_000, extra_ms in 0u64..100_000, retry in 1u32..64, seed in any::<u64>()) {
            let backoff = Backoff::new(Duration::from_millis(base_ms), Duration::from_millis(base_ms + extra_ms)).expect("backoff");
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let delay = backoff.delay(retry, &mut rng);
            prop_assert!(delay <= backoff.ceiling(retry));
            prop_assert!(delay <= Duration::from_millis(base_ms + extra_ms));
        }
    }
}
