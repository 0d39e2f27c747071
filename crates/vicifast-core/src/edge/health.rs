//! The softphone's health: whether it runs and answers, which is whether the agent can be
//! reached at all.
//!
//! VICIfast sends the softphone an OPTIONS request every [`EdgeConfig::check_interval`] and on
//! each incoming call. Any response, whatever its code, means the softphone is running; none
//! within [`EdgeConfig::answer_wait`] (retransmitted on UDP at T1, 2·T1, …) means it is not, and
//! incoming calls are then answered at once instead of being relayed into silence.
//!
//! [`EdgeConfig::check_interval`]: super::EdgeConfig::check_interval
//! [`EdgeConfig::answer_wait`]: super::EdgeConfig::answer_wait

use super::editable::EditableMessage;
use super::routing::{own_branch, via_value, Leg};
use super::LocalPeer;
use crate::config::TransactionTimers;
use crate::status::Transport;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Whether the softphone can take the agent's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SoftphoneState {
    /// No softphone has registered with VICIfast (and none is configured to be reached without
    /// registering), or its registration lapsed.
    NotRegistered,
    /// A softphone is configured; the first check has not been answered yet.
    Checking,
    /// The softphone answers: calls are relayed to it.
    Answering,
    /// The softphone did not answer the last check: incoming calls are refused at once.
    NotAnswering,
}

impl SoftphoneState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotRegistered => "not_registered",
            Self::Checking => "checking",
            Self::Answering => "answering",
            Self::NotAnswering => "not_answering",
        }
    }

    /// Whether an incoming call should be relayed to the softphone.
    pub fn takes_calls(self) -> bool {
        matches!(self, Self::Checking | Self::Answering)
    }
}

impl fmt::Display for SoftphoneState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stable codes for what the agent must change in the softphone. Never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SoftphoneProblemCode {
    /// The softphone registered with a password that is not the extension's.
    WrongPassword,
    /// The softphone is set up for another extension or user name.
    WrongExtension,
    /// Too many wrong passwords: registrations are refused for a while.
    TooManyAttempts,
    /// The softphone also registers directly with the phone server.
    AlsoRegisteredDirectly,
}

impl SoftphoneProblemCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WrongPassword => "wrong_password",
            Self::WrongExtension => "wrong_extension",
            Self::TooManyAttempts => "too_many_attempts",
            Self::AlsoRegisteredDirectly => "also_registered_directly",
        }
    }
}

/// A problem with the softphone's settings, in words for the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SoftphoneProblem {
    pub code: SoftphoneProblemCode,
    pub message: String,
    pub action: String,
    /// Technical detail for support staff.
    pub detail: String,
}

impl SoftphoneProblem {
    pub fn new(code: SoftphoneProblemCode, detail: impl Into<String>) -> Self {
        let (message, action) = match code {
            SoftphoneProblemCode::WrongPassword => (
                "Your softphone tried to sign in to VICIfast with a wrong password.",
                "In the softphone's account settings, enter the same password as for this extension in VICIfast.",
            ),
            SoftphoneProblemCode::WrongExtension => (
                "Your softphone is set up for another extension than this account.",
                "In the softphone's account settings, use this account's extension and user name.",
            ),
            SoftphoneProblemCode::TooManyAttempts => (
                "Your softphone tried too many wrong passwords; VICIfast refuses it for a few minutes.",
                "Correct the password in the softphone's account settings; it can sign in again shortly.",
            ),
            SoftphoneProblemCode::AlsoRegisteredDirectly => (
                "Your softphone also registers directly with the phone server, so it and VICIfast take calls away from each other.",
                "In the softphone, keep one account for this extension, with VICIfast's address (for example 127.0.0.1:5070) as its outbound proxy: remove any second account that signs in to the phone server directly.",
            ),
        };
        Self {
            code,
            message: message.to_owned(),
            action: action.to_owned(),
            detail: detail.into(),
        }
    }
}

/// A snapshot of the softphone, for the tray, the window and the CLI's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SoftphoneStatus {
    pub account: String,
    pub state: SoftphoneState,
    /// Its User-Agent (or Server) as it last introduced itself.
    pub user_agent: Option<String>,
    /// Its Contact as registered, or the configured address.
    pub contact: Option<String>,
    pub transport: Option<Transport>,
    /// Seconds until its registration with VICIfast lapses.
    pub expires_in: Option<u32>,
    pub problem: Option<SoftphoneProblem>,
}

/// A check in flight.
#[derive(Debug)]
pub(crate) struct Probe {
    pub branch: String,
    pub peer: LocalPeer,
    pub bytes: Vec<u8>,
    retransmit: Option<(Instant, Duration)>,
    give_up: Instant,
}

/// What a due check timer asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ProbeDue {
    Retransmit(LocalPeer, Vec<u8>),
    Unanswered,
}

/// The OPTIONS checks of one softphone: one in flight at most, and when the next is due.
#[derive(Debug)]
pub(crate) struct Checks {
    pub probe: Option<Probe>,
    pub next_check: Option<Instant>,
    call_id: String,
    from_tag: String,
    cseq: u32,
}

impl Checks {
    pub fn new(call_id: String, from_tag: String) -> Self {
        Self {
            probe: None,
            next_check: None,
            call_id,
            from_tag,
            cseq: 0,
        }
    }

    /// The OPTIONS to send now, or `None` when a check is already in flight.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        now: Instant,
        peer: LocalPeer,
        target: &str,
        listen: SocketAddr,
        token: &str,
        answer_wait: Duration,
        timers: TransactionTimers,
    ) -> Option<Vec<u8>> {
        if self.probe.is_some() {
            return None;
        }
        self.cseq += 1;
        let branch = own_branch(Leg::Softphone, token);
        let mut options = EditableMessage::request("OPTIONS", target);
        options.append("via", via_value(peer.transport, listen, &branch));
        options.append("max-forwards", "70");
        options.append(
            "from",
            format!("<sip:vicifast@{listen}>;tag={}", self.from_tag),
        );
        options.append("to", format!("<{target}>"));
        options.append("call-id", self.call_id.clone());
        options.append("cseq", format!("{} OPTIONS", self.cseq));
        options.append("accept", "application/sdp");
        let bytes = options.to_bytes();
        self.probe = Some(Probe {
            branch,
            peer,
            bytes: bytes.clone(),
            retransmit: (!peer.transport.is_reliable()).then(|| (now + timers.t1, timers.t1)),
            give_up: now + answer_wait,
        });
        Some(bytes)
    }

    /// A response to the check in flight: it is over.
    pub fn answered(&mut self, branch: &str) -> bool {
        if self.probe.as_ref().is_some_and(|p| p.branch == branch) {
            self.probe = None;
            return true;
        }
        false
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let probe = self
            .probe
            .as_ref()
            .map(|p| p.retransmit.map_or(p.give_up, |(at, _)| at.min(p.give_up)));
        [probe, self.next_check].into_iter().flatten().min()
    }

    /// The in-flight check's timers at `now`.
    pub fn on_timeout(&mut self, now: Instant, timers: TransactionTimers) -> Option<ProbeDue> {
        let probe = self.probe.as_mut()?;
        if now >= probe.give_up {
            self.probe = None;
            return Some(ProbeDue::Unanswered);
        }
        match probe.retransmit {
            Some((at, interval)) if at <= now => {
                let next = (interval * 2).min(timers.t2);
                probe.retransmit = Some((now + next, next));
                Some(ProbeDue::Retransmit(probe.peer, probe.bytes.clone()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> LocalPeer {
        LocalPeer {
            transport: Transport::Udp,
            addr: "127.0.0.1:5062".parse().unwrap(),
            connection: None,
        }
    }

    #[test]
    fn one_check_at_a_time_retransmitted_until_the_answer_wait() {
        let start = Instant::now();
        let timers = TransactionTimers::default();
        let mut checks = Checks::new("cid".into(), "tag".into());
        let listen = "127.0.0.1:5070".parse().unwrap();
        let wait = Duration::from_secs(2);
        let first = checks
            .start(
                start,
                peer(),
                "sip:101@127.0.0.1:5062",
                listen,
                "t1",
                wait,
                timers,
            )
            .unwrap();
        let text = String::from_utf8(first).unwrap();
        assert!(text.starts_with("OPTIONS sip:101@127.0.0.1:5062 SIP/2.0\r\n"));
        assert!(text.contains("branch=z9hG4bKvfst1;rport"));
        assert!(checks
            .start(start, peer(), "sip:x@127.0.0.1", listen, "t2", wait, timers)
            .is_none());
        let mut at = Vec::new();
        while let Some(deadline) = checks.next_deadline() {
            match checks.on_timeout(deadline, timers) {
                Some(ProbeDue::Retransmit(..)) => at.push((deadline - start).as_millis()),
                Some(ProbeDue::Unanswered) => {
                    at.push((deadline - start).as_millis());
                    break;
                }
                None => panic!("deadline without work"),
            }
        }
        assert_eq!(at, vec![500, 1500, 2000]);
        assert!(checks.probe.is_none());
    }

    #[test]
    fn an_answer_ends_the_check() {
        let start = Instant::now();
        let mut checks = Checks::new("cid".into(), "tag".into());
        checks.start(
            start,
            peer(),
            "sip:101@127.0.0.1:5062",
            "127.0.0.1:5070".parse().unwrap(),
            "t1",
            Duration::from_secs(2),
            TransactionTimers::default(),
        );
        assert!(!checks.answered("z9hG4bKvfsother"));
        assert!(checks.answered("z9hG4bKvfst1"));
        assert_eq!(checks.next_deadline(), None);
    }
}
