//! The retry budget: retries may not exceed `budget_percent` of the requests of the last
//! 10 s, with a floor of 3 retries per second, so a failing upstream never sees a retry storm.
//!
//! Counts live in ten one-second slots. The floor grows with the time the budget has existed
//! (at most 10 s), so a fresh process cannot spend a whole window of floor at once.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::clock::{Clock, SystemClock};

const SLOTS: usize = 10;
const FLOOR_PER_SECOND: u64 = 3;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    second: u64,
    requests: u64,
    retries: u64,
}

#[derive(Debug)]
pub struct RetryBudget {
    percent: u64,
    created: Instant,
    slots: Mutex<[Slot; SLOTS]>,
    clock: Arc<dyn Clock>,
}

impl RetryBudget {
    pub fn new(percent: u32) -> Self {
        Self::with_clock(percent, Arc::new(SystemClock))
    }

    pub fn with_clock(percent: u32, clock: Arc<dyn Clock>) -> Self {
        Self { percent: u64::from(percent), created: clock.now(), slots: Mutex::new([Slot::default(); SLOTS]), clock }
    }

    fn second(&self) -> u64 {
        self.clock.now().saturating_duration_since(self.created).as_secs()
    }

    /// The slot for `second`, cleared if it held an older second.
    fn slot(slots: &mut [Slot; SLOTS], second: u64) -> &mut Slot {
        let slot = &mut slots[(second % SLOTS as u64) as usize];
        if slot.second != second {
            *slot = Slot { second, requests: 0, retries: 0 };
        }
        slot
    }

    /// Counts a new client request.
    pub fn deposit(&self) {
        let second = self.second();
        let mut slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Self::slot(&mut slots, second).requests += 1;
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn try_withdraw(&self) -> bool {
        let second = self.second();
        let mut slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let recent = |slot: &&Slot| second.saturating_sub(slot.second) < SLOTS as u64;
        let requests: u64 = slots.iter().filter(recent).map(|slot| slot.requests).sum();
        let retries: u64 = slots.iter().filter(recent).map(|slot| slot.retries).sum();
        let floor = FLOOR_PER_SECOND * (second + 1).min(SLOTS as u64);
        let allowed = (requests * self.percent / 100).max(floor);
        if retries >= allowed {
            return false;
        }
        Self::slot(&mut slots, second).retries += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::upstream::clock::ManualClock;

    #[test]
    fn retries_are_capped_by_percent_with_a_floor_per_second() {
        let clock = ManualClock::default();
        let budget = RetryBudget::with_clock(20, Arc::new(clock.clone()));
        // In the first second the floor is 3.
        let granted = (0..10).filter(|_| budget.try_withdraw()).count();
        assert_eq!(granted, 3);
        // 100 requests allow 20 retries over the window.
        for _ in 0..100 {
            budget.deposit();
        }
        let granted = (0..50).filter(|_| budget.try_withdraw()).count();
        assert_eq!(granted, 17, "20 in all, 3 already taken");
        // After the window the old requests and retries are forgotten.
        clock.advance(Duration::from_secs(11));
        let granted = (0..100).filter(|_| budget.try_withdraw()).count();
        assert_eq!(granted, 30, "the floor: 3 a second over a 10 s window");
    }

    #[test]
    fn a_failing_upstream_sees_at_most_the_percent_plus_the_floor() {
        let clock = ManualClock::default();
        let budget = RetryBudget::with_clock(20, Arc::new(clock.clone()));
        let mut calls = 0u64;
        let mut retries = 0u64;
        for _second in 0..5 {
            for _ in 0..100 {
                budget.deposit();
                calls += 1;
                // Every call would like two retries.
                for _ in 0..2 {
                    if budget.try_withdraw() {
                        retries += 1;
                    }
                }
            }
            clock.advance(Duration::from_secs(1));
        }
        assert!(retries <= calls / 5 + 3 * 5, "{retries} retries for {calls} calls");
    }
}
