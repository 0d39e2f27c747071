//! What the engine itself drops (input the core could not take in time, pings it will not
//! answer, writes or trace entries over their queue), logged through the core's
//! [`DropLog`]: a few lines per interval, then one summary line with counts.

use std::fmt;
use std::net::SocketAddr;
use tokio::time::Instant;
use vicifast_core::drop_log::DropLog;

/// Why the engine dropped something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EngineDrop {
    /// A datagram arrived while the core had a full queue of input to work through.
    InputQueueFull,
    /// A UDP keep-alive ping from someone other than the server, or faster than one a second.
    UnansweredPing,
    /// The core asked to send while the flow still had a full queue of writes.
    WriteQueueFull,
    /// Trace entries beyond what the embedder is shown per second.
    TraceOverflow,
    /// Incoming-call notices beyond what the embedder is shown per second (the calls
    /// themselves are still answered).
    CallNoticeOverflow,
}

impl fmt::Display for EngineDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InputQueueFull => "datagram while the input queue was full",
            Self::UnansweredPing => "keep-alive ping not answered",
            Self::WriteQueueFull => "write while the flow's queue was full",
            Self::TraceOverflow => "trace entry over the trace budget",
            Self::CallNoticeOverflow => "incoming-call notice over its budget",
        })
    }
}

/// Drops of one flow (or of the driver), rate-limited in the log.
#[derive(Debug)]
pub(crate) struct JunkLog {
    whose: String,
    log: DropLog<EngineDrop>,
}

impl JunkLog {
    pub fn new(whose: impl fmt::Display) -> Self {
        Self {
            whose: whose.to_string(),
            log: DropLog::default(),
        }
    }

    /// Counts one drop; logs it on its own line only for the first few of an interval.
    pub fn dropped(&mut self, reason: EngineDrop, remote: Option<SocketAddr>) {
        let verdict = self.log.record(std_now(), reason);
        if let Some(summary) = verdict.summary {
            tracing::warn!(whose = %self.whose, "{summary}");
        }
        if verdict.log {
            match remote {
                Some(remote) => tracing::warn!(whose = %self.whose, %remote, "dropped: {reason}"),
                None => tracing::warn!(whose = %self.whose, "dropped: {reason}"),
            }
        }
    }

    /// Resolves when the current interval's summary is due (never, if nothing was held back).
    pub async fn summary_due(&self) {
        match self.log.summary_due() {
            Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
            None => std::future::pending().await,
        }
    }

    /// Logs the summary of an interval that has ended.
    pub fn flush(&mut self) {
        if let Some(summary) = self.log.flush(std_now()) {
            tracing::warn!(whose = %self.whose, "{summary}");
        }
    }
}

impl Drop for JunkLog {
    /// Whatever was held back is summarised when the flow ends, however early.
    fn drop(&mut self) {
        if let Some(summary) = self.log.flush(std_now() + self.log.interval()) {
            tracing::warn!(whose = %self.whose, "{summary}");
        }
    }
}

fn std_now() -> std::time::Instant {
    Instant::now().into_std()
}
