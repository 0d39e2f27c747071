//! The registration's own timers, and when to refresh a binding. (How long to wait after a
//! failure is the pacing rule's business: `registration::pacing`.)

use std::time::{Duration, Instant};

/// Registration-level timers: those that outlive a phase. A phase's own deadline (connecting,
/// backing off) lives in the phase, and transaction timers live with their transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Send the refresh REGISTER.
    Refresh,
    /// The registrar drops our binding now unless refreshed.
    Expiry,
    /// Stop waiting for the answer to the un-REGISTER on shutdown.
    StopDeadline,
    /// Send a keep-alive on the flow (and have the driver re-check the route).
    KeepAlive,
    /// A keep-alive ping on a stream flow went unanswered (RFC 5626 §4.4.1: 10 s).
    PongTimeout,
    /// While offline, have the driver look at the routes again.
    RouteCheck,
    /// Log the summary of the input dropped without a line of its own this interval.
    DropSummary,
    /// Ask the registrar which bindings the extension has (another device may have taken it).
    BindingCheck,
    /// The registrar's qualify OPTIONS, which came at a steady pace, have stopped.
    QualifySilent,
}

const TIMERS: [Timer; 9] = [
    Timer::Refresh,
    Timer::Expiry,
    Timer::StopDeadline,
    Timer::KeepAlive,
    Timer::PongTimeout,
    Timer::RouteCheck,
    Timer::DropSummary,
    Timer::BindingCheck,
    Timer::QualifySilent,
];

#[derive(Debug, Default, Clone)]
pub(crate) struct TimerTable([Option<Instant>; TIMERS.len()]);

impl TimerTable {
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer as usize] = Some(at);
    }

    pub fn stop(&mut self, timer: Timer) {
        self.0[timer as usize] = None;
    }

    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.0[timer as usize]
    }

    /// The earliest armed timer and its deadline.
    pub fn next(&self) -> Option<(Timer, Instant)> {
        TIMERS
            .iter()
            .filter_map(|&t| self.get(t).map(|at| (t, at)))
            .min_by_key(|&(_, at)| at)
    }

    /// Disarms and returns the timers due at `now`, earliest first.
    pub fn expired(&mut self, now: Instant) -> Vec<Timer> {
        let mut due: Vec<(Timer, Instant)> = TIMERS
            .iter()
            .filter_map(|&t| self.get(t).filter(|&at| at <= now).map(|at| (t, at)))
            .collect();
        due.sort_by_key(|&(_, at)| at);
        for &(t, _) in &due {
            self.stop(t);
        }
        due.into_iter().map(|(t, _)| t).collect()
    }
}

/// When to refresh a binding granted for `granted`: at the earlier of 90% of it and 40 s before
/// it lapses (so a refresh that times out after Timer F's 32 s can still be retried in time), but
/// never before half of it has passed.
pub(crate) fn refresh_delay(granted: Duration) -> Duration {
    let ninety = granted.mul_f64(0.9);
    let margin = granted.saturating_sub(Duration::from_secs(40));
    ninety.min(margin).max(granted / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_leaves_room_for_a_timed_out_retry() {
        let secs = |s| refresh_delay(Duration::from_secs(s)).as_secs_f64();
        assert_eq!(secs(3600), 3240.0); // 90%
        assert_eq!(secs(300), 260.0); // 40 s margin is earlier than 90%
        assert_eq!(secs(120), 80.0);
        assert_eq!(secs(60), 30.0); // never before half
        assert_eq!(secs(10), 5.0);
        assert_eq!(secs(0), 0.0);
    }

    #[test]
    fn timer_table_reports_earliest_and_disarms_expired() {
        let now = Instant::now();
        let mut t = TimerTable::default();
        t.set(Timer::Expiry, now + Duration::from_secs(10));
        t.set(Timer::Refresh, now + Duration::from_secs(5));
        assert_eq!(
            t.next(),
            Some((Timer::Refresh, now + Duration::from_secs(5)))
        );
        assert_eq!(
            t.expired(now + Duration::from_secs(10)),
            vec![Timer::Refresh, Timer::Expiry]
        );
        assert_eq!(t.next(), None);
    }
}
