//! The pacing rule (stated in the crate docs): how soon the next attempt may start, and the hard
//! ceiling on REGISTERs and new connections to the registrar.
//!
//! Sending a REGISTER needs a [`RegisterPermit`] and opening a flow a [`ConnectionPermit`]
//! (the functions that emit them take one by value), and only [`Pacer::admit_register`] and
//! [`Pacer::admit_connection`] make them, so no path can skip the ceiling. Every failure's wait comes from
//! [`Pacer::on_failure`], every network change asks [`Pacer::network_changed`], so no path
//! can skip the backoff either.
//!
//! - **Backoff** (RFC 5626 §4.5): after the n-th failure in a row, wait a uniformly random time
//!   between half and all of `min(cap, base * 2^n)` (30 s base, 30 min cap by default).
//! - **A success counts once it has held** [`SUCCESS_HOLDS_AFTER`]: a 2xx followed at once by the
//!   flow dying (a registrar or load balancer that closes every connection after its 200 OK)
//!   does not reset the failure count.
//! - **Quick retries**: when a flow that carried a binding that held is lost (the registrar
//!   restarted, or closed an idle connection), the next attempts come after a random wait in
//!   [0, 2 s), [0, 4 s), [0, 8 s), [0, 16 s) ("full jitter": a registrar's thousands of agents
//!   come back spread out, not in one spike), then the backoff takes over.
//! - **Network changes**: a new address or route re-registers at once; while failing, a change
//!   may pull the next attempt forward once, and the backoff applies again after that attempt.
//! - **Ceiling**: at most [`REGISTER_CEILING`] REGISTERs and [`CONNECTION_CEILING`] new
//!   connections (a burst, then a steady rate), whatever asks; anything over it waits.

use std::time::{Duration, Instant};

/// How long a binding must hold (its flow survive) before the success resets the failure count.
pub(super) const SUCCESS_HOLDS_AFTER: Duration = Duration::from_secs(30);
/// The upper ends of the random waits before the quick retries after a working flow is lost.
const QUICK_RETRIES: [Duration; 4] = [
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// A burst allowance and the steady rate that refills it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ceiling {
    pub burst: u32,
    /// One more is allowed per this interval.
    pub every: Duration,
}

/// REGISTERs to the registrar: 10 at once, then one per 5 s (12 a minute). A registration needs
/// 2 (challenge and answer) per refresh, a few more after a network change or a 423.
pub const REGISTER_CEILING: Ceiling = Ceiling {
    burst: 10,
    every: Duration::from_secs(5),
};

/// New flows (connections, sockets) to the registrar: 5 at once, then one per 12 s.
pub const CONNECTION_CEILING: Ceiling = Ceiling {
    burst: 5,
    every: Duration::from_secs(12),
};

/// Leave to send one REGISTER (a new transaction; its retransmissions need none).
#[derive(Debug)]
#[must_use]
pub(super) struct RegisterPermit(());

/// Leave to open one flow to the registrar.
#[derive(Debug)]
#[must_use]
pub(super) struct ConnectionPermit(());

/// What kind of failure ends an attempt, for choosing the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FailureKind {
    /// The flow that carried our binding broke (closed, reset, stopped answering pings).
    FlowLost,
    /// Anything else: refused, timed out, a server error.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Nothing decided yet, or the user started over.
    Fresh,
    /// Our binding was granted at `since` and nothing failed after it.
    Succeeding { since: Instant },
    /// The last attempt failed; the next may start at `retry_at`.
    Failing { retry_at: Instant },
}

/// The pacing state of one registration (one registrar).
#[derive(Debug)]
pub(super) struct Pacer {
    /// Failures in a row since the last success that held (the backoff exponent).
    failures: u32,
    outcome: Outcome,
    /// Quick retries not used since the last success that held.
    quick_left: usize,
    /// The last wait was a quick retry: a refused reconnect continues the quick retries.
    in_quick_retries: bool,
    /// While failing, a network change may pull the next attempt forward once.
    network_retry: bool,
    registers: TokenBucket,
    connections: TokenBucket,
}

impl Pacer {
    pub fn new() -> Self {
        Self {
            failures: 0,
            outcome: Outcome::Fresh,
            quick_left: QUICK_RETRIES.len(),
            in_quick_retries: false,
            network_retry: true,
            registers: TokenBucket::new(REGISTER_CEILING),
            connections: TokenBucket::new(CONNECTION_CEILING),
        }
    }

    /// The gate for REGISTERs: leave to send one now, or the earliest time the ceiling allows.
    pub fn admit_register(&mut self, now: Instant) -> Result<RegisterPermit, Instant> {
        self.registers.take(now).map(|()| RegisterPermit(()))
    }

    /// The gate for new flows: leave to open one now, or the earliest time the ceiling allows.
    pub fn admit_connection(&mut self, now: Instant) -> Result<ConnectionPermit, Instant> {
        self.connections.take(now).map(|()| ConnectionPermit(()))
    }

    /// The registrar granted (or refreshed) our binding.
    pub fn on_success(&mut self, now: Instant) {
        if !matches!(self.outcome, Outcome::Succeeding { .. }) {
            self.outcome = Outcome::Succeeding { since: now };
        }
    }

    /// A success that has held counts: the failure count and the quick retries start over.
    fn settle(&mut self, now: Instant) {
        if let Outcome::Succeeding { since } = self.outcome {
            if now >= since + SUCCESS_HOLDS_AFTER {
                self.failures = 0;
                self.quick_left = QUICK_RETRIES.len();
                self.in_quick_retries = false;
                self.network_retry = true;
            }
        }
    }

    /// An attempt failed: when the next may start. `unit` is a random number in [0, 1).
    pub fn on_failure(
        &mut self,
        now: Instant,
        kind: FailureKind,
        unit: f64,
        schedule: Backoff,
        retry_after: Option<Duration>,
    ) -> Instant {
        self.settle(now);
        let quick = kind == FailureKind::FlowLost || self.in_quick_retries;
        let delay = if quick && self.quick_left > 0 {
            let ceiling = QUICK_RETRIES[QUICK_RETRIES.len() - self.quick_left];
            self.quick_left -= 1;
            self.in_quick_retries = true;
            ceiling.mul_f64(unit.clamp(0.0, 1.0))
        } else {
            self.in_quick_retries = false;
            self.failures = self.failures.saturating_add(1);
            schedule.delay(self.failures, unit)
        };
        let delay = retry_after.map_or(delay, |asked| delay.max(asked.min(schedule.cap)));
        let retry_at = now + delay;
        self.outcome = Outcome::Failing { retry_at };
        retry_at
    }

    /// The network changed: `None` to act on it at once, else when the next attempt may start.
    pub fn network_changed(&mut self, now: Instant) -> Option<Instant> {
        self.settle(now);
        match self.outcome {
            Outcome::Failing { retry_at } if retry_at > now => {
                if self.network_retry {
                    self.network_retry = false;
                    None
                } else {
                    Some(retry_at)
                }
            }
            _ => None,
        }
    }

    /// A wait is over and its attempt starts: a network change may pull the next one forward.
    pub fn wait_over(&mut self) {
        self.network_retry = true;
    }

    /// The user asked to try again (or changed the password): the backoff starts over. The
    /// ceiling does not.
    pub fn user_retry(&mut self) {
        self.failures = 0;
        self.outcome = Outcome::Fresh;
        self.in_quick_retries = false;
        self.network_retry = true;
    }
}

/// RFC 5626 §4.5's backoff parameters.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// `min(cap, base * 2^failures)`, then a uniformly random delay between half of that and all
    /// of it. `unit` is a random number in [0, 1).
    pub fn delay(self, failures: u32, unit: f64) -> Duration {
        let factor = 2u32.saturating_pow(failures.min(20));
        let ceiling = self.base.saturating_mul(factor).min(self.cap);
        ceiling.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }
}

/// A token bucket kept as the time its level empties (GCRA): exact on any clock, no counters.
#[derive(Debug, Clone)]
struct TokenBucket {
    ceiling: Ceiling,
    /// When the bucket would be full again if nothing more were taken.
    full_at: Option<Instant>,
}

impl TokenBucket {
    fn new(ceiling: Ceiling) -> Self {
        Self {
            ceiling,
            full_at: None,
        }
    }

    fn take(&mut self, now: Instant) -> Result<(), Instant> {
        let level = self.full_at.map_or(now, |at| at.max(now));
        let tolerance = self.ceiling.every * self.ceiling.burst.saturating_sub(1);
        if level > now + tolerance {
            return Err(level - tolerance);
        }
        self.full_at = Some(level + self.ceiling.every);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE: Backoff = Backoff {
        base: Duration::from_secs(30),
        cap: Duration::from_secs(1800),
    };

    #[test]
    fn backoff_follows_rfc5626() {
        let at = |failures, unit| SCHEDULE.delay(failures, unit).as_secs();
        assert_eq!((at(1, 0.0), at(1, 0.999_999)), (30, 59));
        assert_eq!((at(3, 0.0), at(3, 1.0)), (120, 240)); // RFC 5626's own example
        assert_eq!((at(10, 0.0), at(10, 1.0)), (900, 1800));
        assert_eq!(at(u32::MAX, 1.0), 1800);
    }

    #[test]
    fn the_bucket_allows_a_burst_then_a_steady_rate() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(REGISTER_CEILING);
        for _ in 0..10 {
            assert_eq!(bucket.take(now), Ok(()));
        }
        assert_eq!(bucket.take(now), Err(now + Duration::from_secs(5)));
        assert_eq!(bucket.take(now + Duration::from_secs(5)), Ok(()));
        assert!(bucket.take(now + Duration::from_secs(5)).is_err());
        // Idle long enough, the whole burst is back.
        let later = now + Duration::from_secs(3600);
        for _ in 0..10 {
            assert_eq!(bucket.take(later), Ok(()));
        }
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn a_success_that_did_not_hold_does_not_reset_the_failures() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new();
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..8 {
            pacer.on_success(now);
            let at = pacer.on_failure(now, FailureKind::FlowLost, 0.999, SCHEDULE, None);
            waits.push((at - now).as_secs());
            now = at;
        }
        // Four quick retries, then the backoff grows: 59, 119, 239, 479 s.
        assert_eq!(waits, vec![1, 3, 7, 15, 59, 119, 239, 479]);
    }

    #[test]
    fn a_lost_flow_after_a_binding_that_held_gets_quick_retries_again() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new();
        for _ in 0..6 {
            pacer.on_failure(t0, FailureKind::Other, 0.5, SCHEDULE, None);
        }
        pacer.on_success(t0);
        let later = t0 + SUCCESS_HOLDS_AFTER;
        let at = pacer.on_failure(later, FailureKind::FlowLost, 0.5, SCHEDULE, None);
        assert_eq!(at - later, Duration::from_secs(1));
        // A refused reconnect continues the quick retries.
        let again = pacer.on_failure(at, FailureKind::Other, 0.5, SCHEDULE, None);
        assert_eq!(again - at, Duration::from_secs(2));
        // Another kind of failure after a binding that held starts the backoff from scratch.
        let mut pacer = Pacer::new();
        pacer.on_success(t0);
        let at = pacer.on_failure(later, FailureKind::Other, 0.0, SCHEDULE, None);
        assert_eq!(at - later, Duration::from_secs(30));
    }

    #[test]
    fn a_network_change_pulls_one_attempt_forward_per_wait() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new();
        let retry_at = pacer.on_failure(t0, FailureKind::Other, 0.0, SCHEDULE, None);
        assert_eq!(
            pacer.network_changed(t0),
            None,
            "the first change acts at once"
        );
        let retry_at2 = pacer.on_failure(t0, FailureKind::Other, 0.0, SCHEDULE, None);
        assert!(retry_at2 > retry_at);
        assert_eq!(
            pacer.network_changed(t0),
            Some(retry_at2),
            "then the backoff"
        );
        pacer.wait_over();
        assert_eq!(pacer.network_changed(t0), None, "one again after the wait");
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new();
        let asked = Some(Duration::from_secs(300));
        let at = pacer.on_failure(t0, FailureKind::Other, 0.0, SCHEDULE, asked);
        assert_eq!(at - t0, Duration::from_secs(300));
        let asked = Some(Duration::from_secs(99_999));
        let at = pacer.on_failure(t0, FailureKind::Other, 0.0, SCHEDULE, asked);
        assert_eq!(at - t0, Duration::from_secs(1800));
    }
}
