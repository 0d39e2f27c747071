//! Logging what is dropped from the network without letting the network write the log.
//!
//! A flood of junk (malformed datagrams, messages from strangers, forged responses) must not
//! become a flood of log lines, and bytes an attacker chose must not reach a log or a terminal
//! raw. [`DropLog`] lets the first few drops of each interval be logged one by one and turns the
//! rest into one summary per interval, with counts per reason; [`escape`] makes remote text safe
//! to log. Both are sans-IO (the caller passes `now`), so the driver uses them for its own drop
//! counts too.

use std::fmt;
use std::time::{Duration, Instant};

/// Drops logged one by one per interval, by default.
pub const DROPS_LOGGED_PER_INTERVAL: u32 = 5;
/// The interval of the summaries, by default.
pub const DROP_SUMMARY_INTERVAL: Duration = Duration::from_secs(60);
/// Remote text longer than this is cut in logs.
const MAX_LOGGED_CHARS: usize = 200;

/// Why the core dropped something that came from the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a SIP message we can parse.
    Malformed,
    /// From an address other than the registrar's (UDP).
    ForeignSource,
    /// On a flow we no longer use.
    ClosedFlow,
    /// A response that matches no request in flight.
    StrayResponse,
    /// A response whose branch matches but whose Call-ID, CSeq or From tag does not.
    ForgedResponse,
    /// A retransmission of a response already handled.
    Retransmission,
    /// A request without the headers needed to answer it.
    MalformedRequest,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed message",
            Self::ForeignSource => "message from an address other than the registrar",
            Self::ClosedFlow => "message on a closed flow",
            Self::StrayResponse => "stray response",
            Self::ForgedResponse => "forged or mismatched response",
            Self::Retransmission => "retransmitted response",
            Self::MalformedRequest => "request with missing or malformed headers",
        })
    }
}

/// Counts drops by reason and decides which ones get a log line of their own.
#[derive(Debug, Clone)]
pub struct DropLog<R = DropReason> {
    interval: Duration,
    logged_per_interval: u32,
    window: Option<Window<R>>,
}

#[derive(Debug, Clone)]
struct Window<R> {
    started: Instant,
    logged: u32,
    suppressed: Vec<(R, u64)>,
}

/// What to do about one drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropVerdict<R> {
    /// Log this drop on its own line.
    pub log: bool,
    /// The summary of the interval this drop ended, to log first.
    pub summary: Option<DropSummary<R>>,
}

/// The drops of one interval that were not logged one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropSummary<R> {
    pub interval: Duration,
    /// Count per reason, in the order the reasons first occurred.
    pub counts: Vec<(R, u64)>,
}

impl<R> DropSummary<R> {
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }
}

impl<R: fmt::Display> fmt::Display for DropSummary<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} more dropped in {} s without a line each:",
            self.total(),
            self.interval.as_secs()
        )?;
        for (i, (reason, count)) in self.counts.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{reason} {count}")?;
        }
        Ok(())
    }
}

impl<R> Default for DropLog<R> {
    fn default() -> Self {
        Self::new(DROP_SUMMARY_INTERVAL, DROPS_LOGGED_PER_INTERVAL)
    }
}

impl<R> DropLog<R> {
    /// Logs `logged_per_interval` drops one by one per `interval`, then summarises.
    pub fn new(interval: Duration, logged_per_interval: u32) -> Self {
        Self {
            interval,
            logged_per_interval,
            window: None,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// When the current interval's summary is due (drops were held back), if ever: call
    /// [`DropLog::flush`] then.
    pub fn summary_due(&self) -> Option<Instant> {
        self.window
            .as_ref()
            .filter(|w| !w.suppressed.is_empty())
            .map(|w| w.started + self.interval)
    }

    /// The summary of an interval that has ended, if it held drops back.
    pub fn flush(&mut self, now: Instant) -> Option<DropSummary<R>> {
        let ended = self
            .window
            .as_ref()
            .is_some_and(|w| now >= w.started + self.interval);
        if !ended {
            return None;
        }
        let window = self.window.take()?;
        (!window.suppressed.is_empty()).then(|| DropSummary {
            interval: self.interval,
            counts: window.suppressed,
        })
    }
}

impl<R: Copy + Eq> DropLog<R> {
    /// Counts one drop at `now`.
    pub fn record(&mut self, now: Instant, reason: R) -> DropVerdict<R> {
        let summary = self.flush(now);
        let window = self.window.get_or_insert_with(|| Window {
            started: now,
            logged: 0,
            suppressed: Vec::new(),
        });
        let log = window.logged < self.logged_per_interval;
        if log {
            window.logged += 1;
        } else if let Some((_, n)) = window.suppressed.iter_mut().find(|(r, _)| *r == reason) {
            *n = n.saturating_add(1);
        } else {
            window.suppressed.push((reason, 1));
        }
        DropVerdict { log, summary }
    }
}

/// Remote text made safe for a log line: control characters (NUL, CR, LF, ESC, …) and
/// invisible direction overrides written as escapes, cut after 200 characters.
pub fn escape(text: &str) -> String {
    escape_chars(text, MAX_LOGGED_CHARS, false)
}

/// [`escape`] without the cut: for remote values a user needs whole (a contact URI printed by
/// the CLI), still on one line and unable to steer a terminal.
pub fn escape_uncut(text: &str) -> String {
    escape_chars(text, usize::MAX, false)
}

/// [`escape`] for bytes that may not be UTF-8.
pub fn escape_bytes(bytes: &[u8]) -> String {
    escape(&String::from_utf8_lossy(bytes))
}

/// Remote text that is multi-line by nature (a SIP message for the trace): like [`escape`], but
/// CR, LF and TAB stay, and nothing is cut.
pub fn escape_multiline(text: &str) -> String {
    escape_chars(text, usize::MAX, true)
}

fn escape_chars(text: &str, max: usize, keep_lines: bool) -> String {
    let mut out = String::with_capacity(text.len().min(max.saturating_add(8)));
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        let line_break = matches!(c, '\r' | '\n' | '\t');
        if (c.is_control() && !(keep_lines && line_break)) || is_invisible_override(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that reorder or hide what a terminal shows (bidirectional overrides, zero-width).
fn is_invisible_override(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_few_are_logged_then_one_summary_per_interval() {
        let t0 = Instant::now();
        let mut log = DropLog::new(Duration::from_secs(60), 3);
        let verdicts: Vec<bool> = (0..10)
            .map(|i| {
                let reason = if i % 2 == 0 {
                    DropReason::Malformed
                } else {
                    DropReason::ForeignSource
                };
                log.record(t0, reason).log
            })
            .collect();
        assert_eq!(verdicts.iter().filter(|l| **l).count(), 3);
        assert_eq!(log.summary_due(), Some(t0 + Duration::from_secs(60)));
        assert_eq!(log.flush(t0 + Duration::from_secs(59)), None);
        let summary = log.flush(t0 + Duration::from_secs(60)).expect("a summary");
        assert_eq!(
            summary.counts,
            vec![(DropReason::ForeignSource, 4), (DropReason::Malformed, 3)]
        );
        assert_eq!(
            summary.to_string(),
            "7 more dropped in 60 s without a line each: message from an address other than \
             the registrar 4, malformed message 3"
        );
        assert_eq!(log.summary_due(), None);
        // A new interval logs again.
        assert!(
            log.record(t0 + Duration::from_secs(61), DropReason::Malformed)
                .log
        );
    }

    #[test]
    fn a_drop_after_the_interval_brings_the_summary_along() {
        let t0 = Instant::now();
        let mut log = DropLog::new(Duration::from_secs(10), 1);
        log.record(t0, DropReason::StrayResponse);
        log.record(t0, DropReason::StrayResponse);
        let verdict = log.record(t0 + Duration::from_secs(10), DropReason::Malformed);
        assert!(verdict.log);
        assert_eq!(verdict.summary.map(|s| s.total()), Some(1));
    }

    #[test]
    fn nothing_held_back_means_no_summary() {
        let t0 = Instant::now();
        let mut log: DropLog = DropLog::default();
        log.record(t0, DropReason::Malformed);
        assert_eq!(log.summary_due(), None);
        assert_eq!(log.flush(t0 + Duration::from_secs(3600)), None);
    }

    #[test]
    fn remote_text_cannot_break_or_colour_a_log_line() {
        let nasty = "INVITE\0 sip:x\r\nFake: line\x1b[31mred\u{202e}gnp.exe";
        let safe = escape(nasty);
        assert_eq!(
            safe,
            "INVITE\\u{0} sip:x\\r\\nFake: line\\u{1b}[31mred\\u{202e}gnp.exe"
        );
        assert!(!safe.chars().any(|c| c.is_control()));
        assert_eq!(escape(&"a".repeat(500)).chars().count(), 201);
        assert_eq!(escape_bytes(b"\xff\x00"), "\u{fffd}\\u{0}");
        assert_eq!(
            escape_multiline("SIP/2.0 200 OK\r\nX: \x1b\r\n"),
            "SIP/2.0 200 OK\r\nX: \\u{1b}\r\n"
        );
    }
}
