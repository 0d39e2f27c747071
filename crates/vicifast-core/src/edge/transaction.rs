//! Proxy transactions (RFC 3261 §16, §17): each request the edge proxy relays or answers pairs a
//! server transaction toward the side it came from with, when relayed, a client transaction
//! toward the other side.
//!
//! - Upstream, the latest response sent is kept and sent again when the request is retransmitted;
//!   a non-2xx final response to an INVITE is retransmitted on UDP (Timer G) until the ACK, which
//!   is absorbed here.
//! - Downstream, the relayed request is retransmitted on UDP (Timer A/E) until a response comes;
//!   an INVITE with no response at all is given up after 64·T1 (Timer B: 408 upstream), one that
//!   rings is given up after the INVITE timeout counted from its first provisional response
//!   (Timer C, not restarted by later ones so that ringing stays bounded: CANCEL downstream,
//!   408 upstream); a
//!   non-INVITE is given up silently after 64·T1 (Timer F; RFC 4320: no 408 upstream). A non-2xx
//!   final response to an INVITE is acknowledged here, hop by hop.
//! - Every entry is forgotten a bounded time after its final response (Timers H, J, K folded
//!   into one: 64·T1 for INVITE and unreliable upstreams, T4 otherwise), and the table is capped.

use super::editable::EditableMessage;
use super::routing::Leg;
use crate::config::TransactionTimers;
use crate::status::IncomingCall;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The table's cap: beyond it, new requests are answered 503 without state.
pub(crate) const MAX_TRANSACTIONS: usize = 256;

/// Where a message of a transaction goes: the PBX over the registration's flow (whichever flow is
/// current when it is sent), or the softphone at a loopback peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    Pbx,
    Softphone(super::LocalPeer),
}

/// The side a request came from, where to answer it, and whether that transport is reliable.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Upstream {
    pub leg: Leg,
    pub peer: Peer,
    pub reliable: bool,
}

/// Transactions are told apart by our branch toward the downstream side and by whether they are
/// INVITE transactions (an ACK or CANCEL names the INVITE's).
pub(crate) type Key = (String, bool);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientState {
    /// No response yet: retransmitting on UDP.
    Calling,
    /// A provisional response came.
    Proceeding,
    /// A final response came.
    Completed,
}

/// Our CANCEL of a relayed INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cancel {
    None,
    /// Asked for before any provisional response: sent when one arrives (RFC 3261 §9.1).
    Wanted,
    Sent {
        bytes: Vec<u8>,
        retransmit: Option<(Instant, Duration)>,
        until: Instant,
    },
    Done,
}

/// The client side toward the other leg.
#[derive(Debug)]
pub(crate) struct Downstream {
    pub peer: Peer,
    /// The request as relayed, for the ACK and CANCEL built from it.
    pub forwarded: EditableMessage,
    pub bytes: Vec<u8>,
    pub reliable: bool,
    pub state: ClientState,
    /// Timer A (INVITE) or E (non-INVITE).
    pub retransmit: Option<(Instant, Duration)>,
    /// Timer B/F until a provisional response, Timer C after one (INVITE).
    pub give_up: Option<Instant>,
    pub cancel: Cancel,
    /// Our ACK to its non-2xx final response, sent again on each retransmission of it.
    pub ack: Option<Vec<u8>>,
}

impl Downstream {
    /// A request just relayed to `peer`: retransmitted on UDP from T1, given up after 64·T1.
    pub fn new(
        now: Instant,
        peer: Peer,
        forwarded: EditableMessage,
        bytes: Vec<u8>,
        reliable: bool,
        timers: TransactionTimers,
    ) -> Self {
        Self {
            peer,
            forwarded,
            bytes,
            reliable,
            state: ClientState::Calling,
            retransmit: (!reliable).then(|| (now + timers.t1, timers.t1)),
            give_up: Some(now + timers.t1 * 64),
            cancel: Cancel::None,
            ack: None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct RelayTransaction {
    pub invite: bool,
    /// The leg the request came from.
    pub from: Leg,
    pub upstream: Peer,
    pub upstream_reliable: bool,
    /// The request as it came (with `received`/`rport` noted), to build our own responses.
    pub request: EditableMessage,
    pub downstream: Option<Downstream>,
    /// The latest response sent upstream.
    pub last_response: Option<Vec<u8>>,
    pub final_code: Option<u16>,
    /// The final response upstream was ours (timeout, softphone gone), not relayed.
    pub final_ours: bool,
    /// Timer G.
    pub final_retransmit: Option<(Instant, Duration)>,
    pub forget_at: Option<Instant>,
    /// An incoming call relayed to the softphone: refused at once if the softphone stops
    /// answering before it does.
    pub call: Option<IncomingCall>,
}

/// What a transaction's timers ask for at `now`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    RetransmitRequest,
    RetransmitCancel,
    RetransmitFinal,
    /// Timer B/F: nothing came back at all.
    NoResponse,
    /// Timer C: it rang for too long.
    RangTooLong,
    Forget,
}

impl RelayTransaction {
    /// A request relayed `downstream` (or to be answered here, with none), no response yet.
    pub fn new(
        invite: bool,
        upstream: Upstream,
        request: EditableMessage,
        downstream: Option<Downstream>,
        call: Option<IncomingCall>,
    ) -> Self {
        Self {
            invite,
            from: upstream.leg,
            upstream: upstream.peer,
            upstream_reliable: upstream.reliable,
            request,
            downstream,
            last_response: None,
            final_code: None,
            final_ours: false,
            final_retransmit: None,
            forget_at: None,
            call,
        }
    }

    /// A request answered here with a final response (`response` on the wire).
    pub fn answered(
        now: Instant,
        invite: bool,
        upstream: Upstream,
        request: EditableMessage,
        code: u16,
        response: Vec<u8>,
        timers: TransactionTimers,
    ) -> Self {
        let mut tx = Self::new(invite, upstream, request, None, None);
        tx.complete(now, code, response, true, timers);
        tx
    }

    /// Records the final response sent upstream: kept for retransmitted requests, repeated by
    /// Timer G when it is a non-2xx to an INVITE on UDP, forgotten after the linger time.
    pub fn complete(
        &mut self,
        now: Instant,
        code: u16,
        response: Vec<u8>,
        ours: bool,
        timers: TransactionTimers,
    ) {
        self.final_code = Some(code);
        self.final_ours = ours;
        self.last_response = Some(response);
        self.final_retransmit = (self.invite && code >= 300 && !self.upstream_reliable)
            .then(|| (now + timers.t1, timers.t1));
        self.forget_at = Some(now + self.linger(timers));
        self.call = None;
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let mut deadlines = vec![self.final_retransmit.map(|(at, _)| at), self.forget_at];
        if let Some(down) = &self.downstream {
            deadlines.push(down.retransmit.map(|(at, _)| at));
            deadlines.push(down.give_up);
            if let Cancel::Sent {
                retransmit, until, ..
            } = &down.cancel
            {
                deadlines.push(retransmit.map(|(at, _)| at));
                deadlines.push(Some(*until));
            }
        }
        deadlines.into_iter().flatten().min()
    }

    /// The timers due at `now`, re-armed or disarmed; the caller acts on each.
    pub fn on_timeout(&mut self, now: Instant, timers: TransactionTimers) -> Vec<Due> {
        let mut due = Vec::new();
        if self.forget_at.is_some_and(|at| at <= now) {
            return vec![Due::Forget];
        }
        if let Some((at, interval)) = self.final_retransmit {
            if at <= now {
                let next = (interval * 2).min(timers.t2);
                self.final_retransmit = Some((now + next, next));
                due.push(Due::RetransmitFinal);
            }
        }
        let invite = self.invite;
        if let Some(down) = self.downstream.as_mut() {
            if let Some((at, interval)) = down.retransmit {
                if at <= now {
                    // Timer A doubles without bound (Timer B ends it); Timer E is capped at T2.
                    let next = if invite {
                        interval * 2
                    } else {
                        (interval * 2).min(timers.t2)
                    };
                    down.retransmit = Some((now + next, next));
                    due.push(Due::RetransmitRequest);
                }
            }
            if let Cancel::Sent {
                retransmit, until, ..
            } = &mut down.cancel
            {
                if *until <= now {
                    down.cancel = Cancel::Done;
                } else if let Some((at, interval)) = *retransmit {
                    if at <= now {
                        let next = (interval * 2).min(timers.t2);
                        *retransmit = Some((now + next, next));
                        due.push(Due::RetransmitCancel);
                    }
                }
            }
            if down.give_up.is_some_and(|at| at <= now) {
                down.give_up = None;
                down.retransmit = None;
                due.push(if down.state == ClientState::Proceeding {
                    Due::RangTooLong
                } else {
                    Due::NoResponse
                });
            }
        }
        due
    }

    /// How long to keep the entry after its final response.
    pub fn linger(&self, timers: TransactionTimers) -> Duration {
        if self.invite || !self.upstream_reliable {
            timers.t1 * 64
        } else {
            timers.t4
        }
    }
}

/// The table of transactions in progress, capped at [`MAX_TRANSACTIONS`].
#[derive(Debug, Default)]
pub(crate) struct RelayTransactions {
    pub entries: HashMap<Key, RelayTransaction>,
}

impl RelayTransactions {
    pub fn is_full(&self) -> bool {
        self.entries.len() >= MAX_TRANSACTIONS
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(RelayTransaction::next_deadline)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transaction(invite: bool, reliable_down: bool, now: Instant) -> RelayTransaction {
        let request = EditableMessage::request(if invite { "INVITE" } else { "BYE" }, "sip:x@y");
        let upstream = Upstream {
            leg: Leg::Pbx,
            peer: Peer::Pbx,
            reliable: false,
        };
        let down = Downstream::new(
            now,
            Peer::Pbx,
            request.clone(),
            Vec::new(),
            reliable_down,
            TransactionTimers::default(),
        );
        RelayTransaction::new(invite, upstream, request, Some(down), None)
    }

    fn run(mut tx: RelayTransaction, start: Instant) -> Vec<(u128, Due)> {
        let timers = TransactionTimers::default();
        let mut seen = Vec::new();
        for _ in 0..100 {
            let Some(at) = tx.next_deadline() else {
                return seen;
            };
            for due in tx.on_timeout(at, timers) {
                seen.push(((at - start).as_millis(), due));
            }
        }
        panic!("timers never ran out")
    }

    #[test]
    fn invite_over_udp_doubles_timer_a_until_timer_b() {
        let start = Instant::now();
        let seen = run(transaction(true, false, start), start);
        let retransmits: Vec<u128> = seen
            .iter()
            .filter(|(_, d)| *d == Due::RetransmitRequest)
            .map(|(at, _)| *at)
            .collect();
        assert_eq!(retransmits, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(seen.last(), Some(&(32_000, Due::NoResponse)));
    }

    #[test]
    fn non_invite_over_tcp_only_times_out() {
        let start = Instant::now();
        let seen = run(transaction(false, true, start), start);
        assert_eq!(seen, vec![(32_000, Due::NoResponse)]);
    }

    #[test]
    fn ringing_too_long_is_timer_c() {
        let start = Instant::now();
        let mut tx = transaction(true, true, start);
        if let Some(down) = tx.downstream.as_mut() {
            down.state = ClientState::Proceeding;
            down.give_up = Some(start + Duration::from_secs(180));
        }
        assert_eq!(run(tx, start), vec![(180_000, Due::RangTooLong)]);
    }
}
