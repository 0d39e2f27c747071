//! RFC 3261 §17 transactions: the client side of our REGISTERs (non-INVITE: Timers E, F, K) and
//! the server side of requests the registrar sends us (non-INVITE: Timer J; INVITE answered with a
//! final response: Timers G and H, absorbed by the ACK).

use crate::config::TransactionTimers;
use crate::FlowId;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Trying,
    Proceeding,
}

/// A non-INVITE client transaction in progress.
#[derive(Debug, Clone)]
pub(crate) struct ClientTransaction {
    pub branch: String,
    pub cseq: u32,
    pub flow: FlowId,
    pub destination: SocketAddr,
    request: Vec<u8>,
    state: ClientState,
    /// Timer E (unreliable transports only).
    retransmit_at: Option<Instant>,
    retransmit_interval: Duration,
    /// Timer F.
    timeout_at: Instant,
    timers: TransactionTimers,
}

/// What a transaction timer firing asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientTimeout {
    Retransmit(Vec<u8>),
    TimedOut,
}

impl ClientTransaction {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        now: Instant,
        branch: String,
        cseq: u32,
        flow: FlowId,
        destination: SocketAddr,
        request: Vec<u8>,
        reliable: bool,
        timers: TransactionTimers,
    ) -> Self {
        Self {
            branch,
            cseq,
            flow,
            destination,
            request,
            state: ClientState::Trying,
            retransmit_at: (!reliable).then(|| now + timers.t1),
            retransmit_interval: timers.t1,
            timeout_at: now + timers.t1 * 64,
            timers,
        }
    }

    pub fn next_deadline(&self) -> Instant {
        match self.retransmit_at {
            Some(at) => at.min(self.timeout_at),
            None => self.timeout_at,
        }
    }

    /// Handles the transaction's timers at `now`; call again until it returns `None`.
    pub fn on_timeout(&mut self, now: Instant) -> Option<ClientTimeout> {
        if now >= self.timeout_at {
            self.retransmit_at = None;
            return Some(ClientTimeout::TimedOut);
        }
        let at = self.retransmit_at?;
        if now < at {
            return None;
        }
        self.retransmit_interval = match self.state {
            ClientState::Trying => (self.retransmit_interval * 2).min(self.timers.t2),
            ClientState::Proceeding => self.timers.t2,
        };
        self.retransmit_at = Some(at + self.retransmit_interval);
        Some(ClientTimeout::Retransmit(self.request.clone()))
    }

    /// A provisional response moves Trying to Proceeding: retransmit at T2 from now on.
    pub fn on_provisional(&mut self, now: Instant) {
        if self.state == ClientState::Trying {
            self.state = ClientState::Proceeding;
            if self.retransmit_at.is_some() {
                self.retransmit_interval = self.timers.t2;
                self.retransmit_at = Some(now + self.timers.t2);
            }
        }
    }

    /// After a final response the transaction lingers (Timer K) so that retransmissions of that
    /// response are recognised and absorbed rather than reported as strays.
    pub fn complete(self, now: Instant) -> CompletedTransaction {
        let linger = if self.retransmit_at.is_some() || self.timeout_at > now {
            self.timers.t4
        } else {
            Duration::ZERO
        };
        CompletedTransaction {
            branch: self.branch,
            until: now + linger,
        }
    }
}

/// A finished client transaction kept for Timer K.
#[derive(Debug, Clone)]
pub(crate) struct CompletedTransaction {
    pub branch: String,
    pub until: Instant,
}

/// Answers already sent to requests from the registrar, so retransmitted requests get the same
/// answer (RFC 3261 §17.2) instead of being handled twice.
#[derive(Debug, Default)]
pub(crate) struct ServerTransactions {
    entries: Vec<ServerTransaction>,
}

#[derive(Debug)]
struct ServerTransaction {
    branch: String,
    is_invite: bool,
    flow: FlowId,
    destination: SocketAddr,
    response: Vec<u8>,
    /// Timer J (non-INVITE) or Timer H (INVITE): when the entry is forgotten.
    until: Instant,
    /// Timer G: INVITE final responses over UDP are retransmitted until the ACK.
    retransmit: Option<(Instant, Duration)>,
}

/// A response to (re)send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resend {
    pub flow: FlowId,
    pub destination: SocketAddr,
    pub payload: Vec<u8>,
}

/// Enough to stop a flood of requests from growing memory without bound.
const MAX_SERVER_TRANSACTIONS: usize = 64;

impl ServerTransactions {
    /// The response already sent for this request, if it is a retransmission.
    pub fn retransmission(&self, branch: &str, method: &str) -> Option<Resend> {
        let is_invite = method.eq_ignore_ascii_case("INVITE");
        self.entries
            .iter()
            .find(|e| e.branch == branch && e.is_invite == is_invite)
            .map(|e| Resend {
                flow: e.flow,
                destination: e.destination,
                payload: e.response.clone(),
            })
    }

    /// An ACK for a final response we sent to an INVITE: stop retransmitting it.
    pub fn acknowledge(&mut self, branch: &str) -> bool {
        match self
            .entries
            .iter_mut()
            .find(|e| e.is_invite && e.branch == branch)
        {
            Some(entry) => {
                entry.retransmit = None;
                true
            }
            None => false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        now: Instant,
        branch: String,
        is_invite: bool,
        flow: FlowId,
        destination: SocketAddr,
        response: Vec<u8>,
        reliable: bool,
        timers: TransactionTimers,
    ) {
        if self.entries.len() >= MAX_SERVER_TRANSACTIONS {
            self.entries.remove(0);
        }
        let wait = timers.t1 * 64;
        self.entries.push(ServerTransaction {
            branch,
            is_invite,
            flow,
            destination,
            response,
            until: now
                + if reliable && !is_invite {
                    Duration::ZERO
                } else {
                    wait
                },
            retransmit: (is_invite && !reliable).then(|| (now + timers.t1, timers.t1)),
        });
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .iter()
            .flat_map(|e| [Some(e.until), e.retransmit.map(|(at, _)| at)])
            .flatten()
            .min()
    }

    /// Retransmissions due at `now`; forgets expired entries.
    pub fn on_timeout(&mut self, now: Instant, timers: TransactionTimers) -> Vec<Resend> {
        self.entries.retain(|e| e.until > now);
        let mut due = Vec::new();
        for entry in &mut self.entries {
            if let Some((at, interval)) = entry.retransmit {
                if at <= now {
                    let next = (interval * 2).min(timers.t2);
                    entry.retransmit = Some((at + next, next));
                    due.push(Resend {
                        flow: entry.flow,
                        destination: entry.destination,
                        payload: entry.response.clone(),
                    });
                }
            }
        }
        due
    }

    /// Forgets everything sent over a flow that is gone.
    pub fn forget_flow(&mut self, flow: FlowId) {
        self.entries.retain(|e| e.flow != flow);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(now: Instant, reliable: bool) -> ClientTransaction {
        ClientTransaction::new(
            now,
            "z9hG4bKx".into(),
            1,
            FlowId(1),
            "198.18.0.1:5060".parse().unwrap(),
            b"REGISTER".to_vec(),
            reliable,
            TransactionTimers::default(),
        )
    }

    /// Runs the transaction's timers to the end; returns the offsets (ms) of retransmissions and
    /// of the timeout.
    fn schedule(mut t: ClientTransaction, start: Instant) -> (Vec<u128>, u128) {
        let mut retransmits = Vec::new();
        for _ in 0..100 {
            let at = t.next_deadline();
            match t.on_timeout(at) {
                Some(ClientTimeout::Retransmit(_)) => retransmits.push((at - start).as_millis()),
                Some(ClientTimeout::TimedOut) => return (retransmits, (at - start).as_millis()),
                None => panic!("deadline without work"),
            }
        }
        panic!("never timed out")
    }

    #[test]
    fn udp_retransmits_on_timer_e_doubling_to_t2_and_times_out_at_64_t1() {
        let start = Instant::now();
        let (retransmits, timeout) = schedule(tx(start, false), start);
        assert_eq!(
            retransmits,
            vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert_eq!(timeout, 32_000);
    }

    #[test]
    fn tcp_never_retransmits_but_times_out() {
        let start = Instant::now();
        let (retransmits, timeout) = schedule(tx(start, true), start);
        assert!(retransmits.is_empty());
        assert_eq!(timeout, 32_000);
    }

    #[test]
    fn provisional_response_slows_retransmission_to_t2() {
        let start = Instant::now();
        let mut t = tx(start, false);
        t.on_provisional(start + Duration::from_millis(100));
        assert_eq!(t.next_deadline() - start, Duration::from_millis(4100));
    }

    #[test]
    fn invite_final_response_is_retransmitted_until_ack() {
        let start = Instant::now();
        let timers = TransactionTimers::default();
        let mut st = ServerTransactions::default();
        let dest = "198.18.0.1:5060".parse().unwrap();
        st.record(
            start,
            "b1".into(),
            true,
            FlowId(1),
            dest,
            b"480".to_vec(),
            false,
            timers,
        );
        let first = st.next_deadline().unwrap();
        assert_eq!(st.on_timeout(first, timers).len(), 1);
        assert!(st.retransmission("b1", "INVITE").is_some());
        assert!(st.acknowledge("b1"));
        let next = st.next_deadline().unwrap();
        assert!(st.on_timeout(next, timers).is_empty());
        assert!(
            st.retransmission("b1", "INVITE").is_none(),
            "forgotten after Timer H"
        );
    }

    #[test]
    fn server_transactions_are_bounded() {
        let start = Instant::now();
        let timers = TransactionTimers::default();
        let mut st = ServerTransactions::default();
        let dest = "198.18.0.1:5060".parse().unwrap();
        for i in 0..1000 {
            st.record(
                start,
                format!("b{i}"),
                false,
                FlowId(1),
                dest,
                vec![],
                false,
                timers,
            );
        }
        assert_eq!(st.entries.len(), MAX_SERVER_TRANSACTIONS);
        assert!(st.retransmission("b999", "OPTIONS").is_some());
        assert!(st.retransmission("b0", "OPTIONS").is_none());
    }
}
