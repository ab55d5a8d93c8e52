//! A consecutive-failure circuit breaker with the standard meanings: closed = passing,
//! open = rejecting without touching the upstream, half-open = probing with at most
//! `half_open_probes` calls at once.
//!
//! Closed → open after `failure_threshold` consecutive failures: connect errors, timeouts,
//! broken connections and the configured `failure_statuses` (502, 503, 504 by default). Never
//! a 4xx, never the API's 500 unless configured (any caller can provoke one with a bad input,
//! and must not be able to open the breaker for everyone), never a call the client abandoned. Open → half-open once `open_for` has
//! passed. In half-open a successful probe closes the breaker and a failed one re-opens it.
//! Every call takes a [`Permit`] first and reports how it went; a permit dropped without a
//! report (the client went away) frees its probe slot and counts as nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::clock::{Clock, SystemClock};
use crate::config::CircuitBreaker as BreakerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { consecutive_failures: u32 },
    Open { until: Instant },
    HalfOpen { probes_in_flight: u32 },
}

/// The state as exported (`mcp_edge_circuit_state`: 0 closed, 1 half-open, 2 open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    HalfOpen,
    Open,
}

impl BreakerState {
    pub fn code(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Open => "open",
        }
    }
}

/// How a call went, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Success,
    Failure,
}

/// The breaker refused a call; try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    pub retry_after: Duration,
}

/// One upstream's breaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    /// The upstream it guards (for logs, metrics and `/readyz`).
    pub name: String,
    state: Mutex<State>,
    failure_threshold: u32,
    open_for: Duration,
    half_open_probes: u32,
    failure_statuses: Vec<u16>,
    clock: Arc<dyn Clock>,
}

/// Permission for one call. Report with [`Permit::record`]; dropping it unreported is a call
/// the client abandoned.
#[derive(Debug)]
pub struct Permit {
    breaker: Arc<CircuitBreaker>,
    probe: bool,
    recorded: bool,
}

impl CircuitBreaker {
    pub fn new(name: impl Into<String>, config: &BreakerConfig) -> Arc<Self> {
        Self::with_clock(name, config, Arc::new(SystemClock))
    }

    pub fn with_clock(name: impl Into<String>, config: &BreakerConfig, clock: Arc<dyn Clock>) -> Arc<Self> {
        let name = name.into();
        crate::telemetry::metrics::METRICS.set_circuit_state(&name, BreakerState::Closed.code());
        Arc::new(Self {
            name,
            state: Mutex::new(State::Closed { consecutive_failures: 0 }),
            failure_threshold: config.failure_threshold.max(1),
            open_for: config.open_for,
            half_open_probes: config.half_open_probes.max(1),
            failure_statuses: config.failure_statuses.clone(),
            clock,
        })
    }

    /// How an upstream answer with `status` counts: a failure only if it is one of the
    /// configured `failure_statuses`.
    pub fn outcome_for_status(&self, status: u16) -> CallOutcome {
        if self.failure_statuses.contains(&status) { CallOutcome::Failure } else { CallOutcome::Success }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few plain values: a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
            State::Open { until } if self.clock.now() >= until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
        }
    }

    /// Asks to make a call.
    pub fn try_acquire(self: &Arc<Self>) -> Result<Permit, Rejected> {
        let now = self.clock.now();
        let mut state = self.lock();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if now < until => return Err(Rejected { retry_after: until - now }),
            State::Open { .. } => {
                *state = State::HalfOpen { probes_in_flight: 1 };
                drop(state);
                tracing::info!(upstream = %self.name, "Circuit half-open: probing the upstream");
                return Ok(Permit { breaker: Arc::clone(self), probe: true, recorded: false });
            }
            State::HalfOpen { probes_in_flight } if probes_in_flight < self.half_open_probes => {
                *state = State::HalfOpen { probes_in_flight: probes_in_flight + 1 };
                true
            }
            // Probes are out: the answer is near, ask again in a second.
            State::HalfOpen { .. } => return Err(Rejected { retry_after: Duration::from_secs(1) }),
        };
        Ok(Permit { breaker: Arc::clone(self), probe, recorded: false })
    }

    fn record(&self, probe: bool, outcome: Option<CallOutcome>) {
        let now = self.clock.now();
        let mut state = self.lock();
        let before = *state;
        *state = match (before, outcome) {
            (State::Closed { .. }, Some(CallOutcome::Success)) => State::Closed { consecutive_failures: 0 },
            (State::Closed { consecutive_failures }, Some(CallOutcome::Failure)) => {
                let failures = consecutive_failures + 1;
                if failures >= self.failure_threshold {
                    State::Open { until: now + self.open_for }
                } else {
                    State::Closed { consecutive_failures: failures }
                }
            }
            (State::HalfOpen { .. }, Some(CallOutcome::Success)) if probe => State::Closed { consecutive_failures: 0 },
            (State::HalfOpen { .. }, Some(CallOutcome::Failure)) if probe => State::Open { until: now + self.open_for },
            (State::HalfOpen { probes_in_flight }, None) if probe => {
                State::HalfOpen { probes_in_flight: probes_in_flight.saturating_sub(1) }
            }
            // A call admitted before the state changed says nothing about the new state.
            (other, _) => other,
        };
        let after = *state;
        drop(state);
        match (before, after) {
            (State::Closed { .. } | State::HalfOpen { .. }, State::Open { .. }) => {
                tracing::warn!(upstream = %self.name, open_for_ms = self.open_for.as_millis() as u64, "Circuit open: failing fast");
                self.announce(BreakerState::Open);
            }
            (State::HalfOpen { .. }, State::Closed { .. }) => {
                tracing::info!(upstream = %self.name, "Circuit closed: the upstream recovered");
                self.announce(BreakerState::Closed);
            }
            _ => {}
        }
    }

    /// Audits and exports a transition.
    fn announce(&self, state: BreakerState) {
        crate::telemetry::metrics::METRICS.set_circuit_state(&self.name, state.code());
        let action = match state {
            BreakerState::Open => crate::telemetry::audit::action::CIRCUIT_OPEN,
            BreakerState::Closed => crate::telemetry::audit::action::CIRCUIT_CLOSED,
            BreakerState::HalfOpen => return,
        };
        let mut event = crate::telemetry::audit::AuditEvent::new(action, "success");
        event.upstream = Some(self.name.as_str().into());
        crate::telemetry::audit::emit(event);
    }
}

impl Permit {
    /// [`CircuitBreaker::outcome_for_status`] of the breaker this permit is for.
    pub fn outcome_for_status(&self, status: u16) -> CallOutcome {
        self.breaker.outcome_for_status(status)
    }

    pub fn record(mut self, outcome: CallOutcome) {
        self.recorded = true;
        self.breaker.record(self.probe, Some(outcome));
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.recorded {
            self.breaker.record(self.probe, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::clock::ManualClock;

    fn breaker(threshold: u32, probes: u32) -> (Arc<CircuitBreaker>, ManualClock) {
        let clock = ManualClock::default();
        let config = BreakerConfig {
            failure_threshold: threshold,
            open_for: Duration::from_secs(30),
            half_open_probes: probes,
            failure_statuses: vec![502, 503, 504],
        };
        (CircuitBreaker::with_clock("api", &config, Arc::new(clock.clone())), clock)
    }

    fn fail(breaker: &Arc<CircuitBreaker>) {
        breaker.try_acquire().expect("admitted").record(CallOutcome::Failure);
    }

    #[test]
    fn opens_at_exactly_the_threshold_and_rejects_until_open_for_passes() {
        let (breaker, clock) = breaker(5, 1);
        for _ in 0..4 {
            fail(&breaker);
        }
        assert_eq!(breaker.state(), BreakerState::Closed, "4 failures are not 5");
        fail(&breaker);
        assert_eq!(breaker.state(), BreakerState::Open);
        let rejected = breaker.try_acquire().expect_err("open");
        assert_eq!(rejected.retry_after, Duration::from_secs(30));
        clock.advance(Duration::from_secs(29));
        assert!(breaker.try_acquire().is_err(), "still open at 29 s");
        clock.advance(Duration::from_secs(1));
        assert!(breaker.try_acquire().is_ok(), "a probe at 30 s");
    }

    #[test]
    fn a_success_resets_the_consecutive_count() {
        let (breaker, _clock) = breaker(3, 1);
        fail(&breaker);
        fail(&breaker);
        breaker.try_acquire().expect("admitted").record(CallOutcome::Success);
        fail(&breaker);
        fail(&breaker);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn half_open_admits_at_most_k_probes_of_a_hundred_callers() {
        for probes in [1, 3] {
            let (breaker, clock) = breaker(1, probes);
            fail(&breaker);
            clock.advance(Duration::from_secs(30));
            let permits: Vec<Permit> = (0..100).filter_map(|_| breaker.try_acquire().ok()).collect();
            assert_eq!(permits.len(), probes as usize);
            assert_eq!(breaker.state(), BreakerState::HalfOpen);
            drop(permits);
        }
    }

    #[test]
    fn probes_decide_closed_or_open_and_abandoned_probes_free_their_slot() {
        let (breaker, clock) = breaker(1, 1);
        fail(&breaker);
        clock.advance(Duration::from_secs(30));
        let probe = breaker.try_acquire().expect("probe");
        assert!(breaker.try_acquire().is_err());
        drop(probe);
        let probe = breaker.try_acquire().expect("the slot is free again");
        probe.record(CallOutcome::Failure);
        assert_eq!(breaker.state(), BreakerState::Open, "a failed probe re-opens");
        clock.advance(Duration::from_secs(30));
        breaker.try_acquire().expect("probe").record(CallOutcome::Success);
        assert_eq!(breaker.state(), BreakerState::Closed, "a successful probe closes");
        assert!(breaker.try_acquire().is_ok());
    }

    #[test]
    fn concurrent_callers_never_exceed_the_probes() {
        let (breaker, clock) = breaker(1, 2);
        fail(&breaker);
        clock.advance(Duration::from_secs(30));
        let admitted = std::sync::atomic::AtomicU32::new(0);
        let held = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..100 {
                scope.spawn(|| {
                    if let Ok(permit) = breaker.try_acquire() {
                        admitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        held.lock().expect("lock").push(permit);
                    }
                });
            }
        });
        assert_eq!(admitted.into_inner(), 2);
    }
}
