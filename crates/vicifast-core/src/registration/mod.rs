//! The registration state machine (RFC 3261 §10, RFC 5626).
//!
//! One [`Registration`] keeps one address of record bound to this device through one flow at a
//! time. It can also run once to list the bindings of the address of record, or to remove this
//! machine's bindings (for the CLI's `bindings` and `unregister`).
//!
//! The type is one object, as the driver sees it; its behaviour is split along the protocol's
//! own pieces, one file each:
//!
//! - `attempt`: one attempt, from resolving the next hop to a flow and a first request; failover
//!   to the next resolved target; giving up for now (backoff) or for good (needs the user).
//! - `request`: the REGISTER itself (Call-ID, CSeq, Contact, credentials), built and sent in one
//!   place.
//! - `response`: what the registrar answered, matched to the REGISTER in flight: the binding it
//!   granted, a challenge, a longer interval, a refusal.
//! - `outbound`: the flow (RFC 5626): opening it, losing it, keep-alive pings and pongs.
//! - `nat`: what Via `received`/`rport` tell about our public address.
//! - `audit`: what the registrar's list of bindings says about ours (missing, or an old one of
//!   ours to remove), and what a 403 means.
//! - `mobility`: network changes, waking from sleep, having no route at all.
//! - `inbound`: requests the registrar sends us (qualify OPTIONS, NOTIFY, INVITE), answered in
//!   one place.
//! - `in_use`: another device on the extension: binding checks between refreshes, the qualify
//!   hint, the `extension_in_use` episode and the user's choice.
//! - `pacing`: the pacing rule (crate docs): the one gate every REGISTER and every new flow
//!   passes, and the wait after every failure.
//!
//! State is kept so that invalid combinations cannot be written: [`Phase`] says what the
//! registration is doing and carries exactly that step's data (the target being connected to
//! and until when, the request in flight, the end of a wait and what follows it); an open
//! [`outbound::Flow`] always has a local address and carries what is learned per flow. What the
//! registrar holds for us ([`Binding`]) is not a phase: it outlives a refresh in flight and a
//! backoff after a failed refresh, until its Expiry timer. Deadlines that outlive a phase are one
//! table of named timers ([`Timer`]); a phase's own deadline lives in the phase, so it cannot
//! fire in another one.

mod attempt;
mod audit;
mod in_use;
mod inbound;
mod mobility;
mod nat;
mod outbound;
mod pacing;
mod request;
mod response;

use crate::binding::OurContact;
use crate::config::{AccountConfig, Password};
use crate::drop_log::{escape, escape_multiline, DropLog, DropReason};
use crate::edge::PbxFlow;
use crate::message::{self, SipMessage};
use crate::status::{
    BindingInfo, Cause, Direction, ExpiryAdjustment, InUseDetection, Problem, RegistrationState,
    Status, TraceEntry, Transport,
};
use crate::timer::{Timer, TimerTable};
use crate::transaction::{ClientTimeout, CompletedTransaction, ServerTransactions};
use crate::{Event, FlowId, Output, Target, Transmit};
use attempt::Targets;
use in_use::{Checks, InUse};
use outbound::Flow;
use pacing::Pacer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use request::{Auth, Dialog, Pending, RequestKind};
use response::Retries;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What a [`Registration`] is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// Register and keep the binding refreshed until stopped.
    Maintain,
    /// Send one REGISTER without Contact and report the bindings the registrar holds.
    ListBindings,
    /// Remove the bindings that point at this machine (same host address, or our instance).
    RemoveLocal,
}

/// How long shutdown waits for the registrar to confirm the un-REGISTER.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// What the registration is trying to achieve now: its [`Purpose`], until `stop` turns it into
/// removing our binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    Maintain,
    ListBindings,
    RemoveLocal,
    /// Stopping: remove our binding (Expires 0), then finish.
    Unregister,
}

impl Goal {
    fn is_one_shot(self) -> bool {
        matches!(self, Goal::ListBindings | Goal::RemoveLocal)
    }
}

/// What the registration is doing, with the data that step needs.
#[derive(Debug)]
enum Phase {
    /// Not started.
    Idle,
    /// Waiting for the driver to resolve the next hop.
    Resolving,
    /// Waiting for the driver to open a flow to `target`, until `deadline`.
    Connecting {
        flow: FlowId,
        target: Target,
        deadline: Instant,
    },
    /// A request is in flight.
    Transacting(Pending),
    /// Our binding is in place; waiting for the refresh timer.
    Registered,
    /// Waiting until `until`, then doing `then`.
    BackingOff {
        until: Instant,
        cause: WaitCause,
        then: Resume,
    },
    /// No route to the server: waiting for the network to come back.
    Offline,
    /// Stopped for a reason that needs the user; `set_password` or `retry_now` start again.
    Failed,
    /// Nothing more will happen.
    Finished,
}

/// Why the registration waits in [`Phase::BackingOff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitCause {
    /// An attempt failed: the backoff (or a quick retry) applies.
    Failure,
    /// The REGISTER or connection ceiling was reached.
    Ceiling,
}

/// What to do when a wait is over.
#[derive(Debug)]
enum Resume {
    /// Start a new attempt (resolve, flow, first request).
    Attempt,
    /// Send this request on the open flow (a new attempt if it is gone).
    Send {
        kind: RequestKind,
        answers_challenge: bool,
    },
}

/// Our binding as the registrar granted it.
#[derive(Debug, Clone)]
struct Binding {
    /// The lifetime we refresh by: what the registrar granted, floored and capped.
    granted: u32,
    expires_at: Instant,
    /// The Contact this binding is for: a refresh keeps it, a new flow changes it.
    contact: String,
    /// A refresh failed while this binding still held and was retried at once (once per binding).
    retried: bool,
    /// Set when `granted` is not what the registrar granted.
    adjusted: Option<ExpiryAdjustment>,
}

/// The sans-IO registration state machine. See the crate docs for the calling convention.
#[derive(Debug)]
pub struct Registration {
    config: AccountConfig,
    password: Password,
    goal: Goal,
    rng: ChaCha20Rng,
    dialog: Dialog,
    auth: Auth,
    retries: Retries,
    phase: Phase,
    /// The state as the user sees it (registered while a refresh is in flight, for example).
    state: RegistrationState,
    problem: Option<Problem>,
    targets: Targets,
    flow: Option<Flow>,
    next_flow_id: u64,
    contact: Option<OurContact>,
    /// Contacts we registered from addresses we no longer have, to remove with the next
    /// REGISTER (in the same request that adds the new one, so nothing can reorder the two).
    stale_contacts: Vec<String>,
    binding: Option<Binding>,
    pacer: Pacer,
    checks: Checks,
    /// Another device holds the extension instead of us (one episode).
    in_use: Option<InUse>,
    /// All bindings of the address of record in the last 2xx.
    listed: Vec<BindingInfo>,
    completed: Vec<CompletedTransaction>,
    server_transactions: ServerTransactions,
    /// What was dropped from the network, logged a few lines per interval then summarised.
    drops: DropLog,
    timers: TimerTable,
    outputs: VecDeque<Output>,
}

impl Registration {
    /// A registration that does nothing until [`Registration::start`]. `seed` feeds the CSPRNG
    /// behind Call-IDs, tags, branches, cnonces and backoff jitter.
    pub fn new(
        config: AccountConfig,
        password: Password,
        purpose: Purpose,
        seed: [u8; 32],
    ) -> Self {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let dialog = Dialog::new(&mut rng, &config);
        let goal = match purpose {
            Purpose::Maintain => Goal::Maintain,
            Purpose::ListBindings => Goal::ListBindings,
            Purpose::RemoveLocal => Goal::RemoveLocal,
        };
        Self {
            config,
            password,
            goal,
            rng,
            dialog,
            auth: Auth::default(),
            retries: Retries::default(),
            phase: Phase::Idle,
            state: RegistrationState::Idle,
            problem: None,
            targets: Targets::default(),
            flow: None,
            next_flow_id: 0,
            contact: None,
            stale_contacts: Vec::new(),
            binding: None,
            pacer: Pacer::new(),
            checks: Checks::default(),
            in_use: None,
            listed: Vec::new(),
            completed: Vec::new(),
            server_transactions: ServerTransactions::default(),
            drops: DropLog::default(),
            timers: TimerTable::default(),
            outputs: VecDeque::new(),
        }
    }

    // ---- getters ----

    pub fn state(&self) -> RegistrationState {
        self.state
    }

    pub fn config(&self) -> &AccountConfig {
        &self.config
    }

    /// Whether the registration has nothing left to do (stopped, or a one-shot purpose done).
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Finished)
    }

    /// The flow requests to the PBX go over now, as the edge proxy needs it: open (connected,
    /// with a local address) whether or not the binding on it is granted yet, with our address
    /// as the registrar reported it. `None` while no flow is open.
    pub fn pbx_flow(&self) -> Option<PbxFlow> {
        self.flow.as_ref().map(|f| PbxFlow {
            flow: f.id,
            transport: f.target.transport,
            remote: f.target.addr,
            local: f.local,
            public: f.public,
        })
    }

    /// The Contact we register (or are about to register) on the current flow.
    pub fn contact(&self) -> Option<&str> {
        self.contact.as_ref().map(|c| c.uri.as_str())
    }

    // ---- commands ----

    /// Starts registering (or the one-shot purpose).
    pub fn start(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Idle) {
            return;
        }
        self.state = RegistrationState::Registering;
        self.publish(now, Cause::Started);
        self.begin_attempt(now);
    }

    /// Unregisters our binding (waiting at most 2 s for the answer), then finishes.
    pub fn stop(&mut self, now: Instant) {
        if self.stopping() || self.is_finished() {
            return;
        }
        // Failed: nothing is bound and the failure stays the last word.
        if matches!(self.phase, Phase::Failed) {
            self.goal = Goal::Unregister;
            self.phase = Phase::Finished;
            self.timers = TimerTable::default();
            if let Some(summary) = self.drops.flush(now + self.drops.interval()) {
                tracing::warn!(account = %self.config.name, "{summary}");
            }
            if let Some(flow) = self.flow.take() {
                self.outputs.push_back(Output::CloseFlow { flow: flow.id });
            }
            self.outputs.push_back(Output::Event(Event::Finished));
            return;
        }
        // Anything we may have bound (a binding, a REGISTER in flight, old contacts not yet
        // removed) is worth an un-REGISTER.
        let may_be_bound = self.binding.is_some()
            || !self.stale_contacts.is_empty()
            || matches!(&self.phase, Phase::Transacting(p) if p.kind == RequestKind::Register);
        let worth_unregistering =
            may_be_bound && self.flow.is_some() && self.goal == Goal::Maintain;
        self.goal = Goal::Unregister;
        self.clear_timers();
        if worth_unregistering {
            self.timers.set(Timer::StopDeadline, now + STOP_WAIT);
            self.send_request(now, RequestKind::Unregister, false);
        } else {
            self.finish(now, RegistrationState::Unregistered, Cause::UserRequest);
        }
    }

    /// New credentials: forget old challenges and, if we had given up, try again now.
    pub fn set_password(&mut self, now: Instant, password: Password) {
        self.password = password;
        self.auth.forget_challenges();
        if matches!(self.phase, Phase::Failed | Phase::BackingOff { .. }) && !self.stopping() {
            self.restart(now, Cause::CredentialsChanged);
        }
    }

    /// The user asks to try again now (after a failure or during backoff).
    pub fn retry_now(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Failed | Phase::BackingOff { .. }) && !self.stopping() {
            self.restart(now, Cause::UserRequest);
        }
    }

    // ---- inputs ----

    /// A SIP message (a UDP datagram, or one framed from a stream) arrived on a flow.
    pub fn handle_receive(&mut self, now: Instant, flow: FlowId, remote: SocketAddr, data: &[u8]) {
        let Some(current) = self.flow.as_ref().filter(|f| f.id == flow) else {
            self.dropped(now, DropReason::ClosedFlow, remote, "");
            return;
        };
        let transport = current.target.transport;
        let from_next_hop = transport.is_reliable() || remote == current.target.addr;
        if !from_next_hop && !self.config.accept_requests_from_anyone {
            self.dropped(now, DropReason::ForeignSource, remote, "");
            return;
        }
        let message = match SipMessage::parse(data) {
            Ok(m) => m,
            Err(err) => {
                self.dropped(now, DropReason::Malformed, remote, &err.to_string());
                return;
            }
        };
        self.trace(Direction::Received, remote, transport, data);
        match message {
            SipMessage::Response(resp) => self.on_response(now, remote, resp),
            SipMessage::Request(req) => self.on_request(now, flow, remote, transport, req),
        }
    }

    /// Timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.completed.retain(|c| c.until > now);
        for resend in self.server_transactions.on_timeout(now, self.config.timers) {
            self.push_transmit(resend.flow, resend.destination, resend.payload);
        }
        // Several retransmissions may be due at once when the driver woke late; Timer F bounds it.
        while let Phase::Transacting(pending) = &mut self.phase {
            let (flow, destination) = (pending.tx.flow, pending.tx.destination);
            match pending.tx.on_timeout(now) {
                None => break,
                Some(ClientTimeout::Retransmit(bytes)) => {
                    self.push_transmit(flow, destination, bytes);
                }
                Some(ClientTimeout::TimedOut) => {
                    self.on_transaction_timeout(now);
                    break;
                }
            }
        }
        for timer in self.timers.expired(now) {
            self.on_timer(now, timer);
        }
        match self.phase {
            Phase::Connecting { deadline, .. } if deadline <= now => self.on_connect_timeout(now),
            Phase::BackingOff { until, .. } if until <= now => self.wait_over(now),
            _ => {}
        }
    }

    // ---- outputs ----

    /// The next thing for the driver to do; `None` when there is nothing until new input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call [`Registration::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase_deadline = match &self.phase {
            Phase::Transacting(p) => Some(p.tx.next_deadline()),
            Phase::Connecting { deadline, .. } => Some(*deadline),
            Phase::BackingOff { until, .. } => Some(*until),
            _ => None,
        };
        [
            self.timers.next().map(|(_, at)| at),
            phase_deadline,
            self.server_transactions.next_deadline(),
            self.completed.iter().map(|c| c.until).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- timers ----

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Refresh => {
                if matches!(self.phase, Phase::Registered) {
                    self.send_request(now, RequestKind::Register, false);
                }
            }
            Timer::Expiry => self.on_binding_expired(now),
            Timer::KeepAlive => self.send_keepalive(now),
            Timer::PongTimeout => self.on_pong_timeout(now),
            Timer::RouteCheck => self.check_route(now),
            Timer::StopDeadline => {
                self.finish(now, RegistrationState::Unregistered, Cause::Unregistered);
            }
            Timer::DropSummary => {
                if let Some(summary) = self.drops.flush(now) {
                    tracing::warn!(account = %self.config.name, "{summary}");
                }
            }
            Timer::BindingCheck => self.on_check_due(now, InUseDetection::BindingCheck),
            Timer::QualifySilent => self.on_qualify_silent(now),
        }
    }

    /// The registrar drops our binding now: it was not refreshed in time.
    fn on_binding_expired(&mut self, now: Instant) {
        self.lose_binding();
        self.timers.stop(Timer::Refresh);
        self.state = if matches!(self.phase, Phase::BackingOff { .. }) {
            RegistrationState::Retrying
        } else {
            RegistrationState::Registering
        };
        if matches!(self.phase, Phase::Registered) {
            self.send_request(now, RequestKind::Register, false);
        }
        self.publish(now, Cause::RefreshFailed);
    }

    // ---- helpers ----

    fn stopping(&self) -> bool {
        self.goal == Goal::Unregister
    }

    /// Disarms every timer but the summary of dropped input, which is due whatever happens.
    fn clear_timers(&mut self) {
        self.timers = TimerTable::default();
        if let Some(at) = self.drops.summary_due() {
            self.timers.set(Timer::DropSummary, at);
        }
    }

    /// The registrar no longer holds the binding we keep (it lapsed, or its flow is gone).
    fn lose_binding(&mut self) {
        self.binding = None;
        self.listed.retain(|b| !b.ours || b.stale);
    }

    /// Input from the network dropped: logged on a line of its own only for the first few of
    /// an interval, the rest counted into one summary (remote text escaped either way).
    fn dropped(&mut self, now: Instant, reason: DropReason, remote: SocketAddr, detail: &str) {
        let verdict = self.drops.record(now, reason);
        if let Some(summary) = verdict.summary {
            tracing::warn!(account = %self.config.name, "{summary}");
        }
        if verdict.log {
            let detail = escape(detail);
            match reason {
                // Expected now and then: late answers on a flow we left, retransmissions.
                DropReason::ClosedFlow | DropReason::Retransmission => {
                    tracing::debug!(account = %self.config.name, %remote, %detail, "dropped: {reason}");
                }
                _ => {
                    tracing::warn!(account = %self.config.name, %remote, %detail, "dropped: {reason}")
                }
            }
        }
        match self.drops.summary_due() {
            Some(at) => self.timers.set(Timer::DropSummary, at),
            None => self.timers.stop(Timer::DropSummary),
        }
    }

    fn push_transmit(&mut self, flow: FlowId, destination: SocketAddr, payload: Vec<u8>) {
        let transport = self
            .flow
            .as_ref()
            .map_or(Transport::Udp, |f| f.target.transport);
        self.trace(Direction::Sent, destination, transport, &payload);
        self.outputs.push_back(Output::Transmit(Transmit {
            flow,
            destination,
            payload,
        }));
    }

    fn trace(
        &mut self,
        direction: Direction,
        remote: SocketAddr,
        transport: Transport,
        bytes: &[u8],
    ) {
        self.outputs
            .push_back(Output::Event(Event::Trace(TraceEntry {
                account: self.config.name.clone(),
                direction,
                remote: remote.to_string(),
                transport,
                text: escape_multiline(&message::redact(&String::from_utf8_lossy(bytes))),
            })));
    }

    fn publish(&mut self, now: Instant, cause: Cause) {
        let secs_until = |at: Option<Instant>| {
            at.map(|at| {
                u32::try_from(at.saturating_duration_since(now).as_secs()).unwrap_or(u32::MAX)
            })
        };
        let flow = self.flow.as_ref();
        let status = Status {
            account: self.config.name.clone(),
            state: self.state,
            cause,
            contact: self.contact.as_ref().map(|c| c.uri.clone()),
            server: flow.map(|f| f.target.addr.to_string()),
            transport: flow
                .map_or_else(|| self.config.effective_transport(), |f| f.target.transport),
            local_address: flow.map(|f| f.local.to_string()),
            expires_in: self
                .binding
                .as_ref()
                .and_then(|b| secs_until(Some(b.expires_at)))
                .or_else(|| self.binding.as_ref().map(|b| b.granted)),
            next_refresh_in: secs_until(self.timers.get(Timer::Refresh)),
            next_attempt_in: secs_until(match self.phase {
                Phase::BackingOff { until, .. } => Some(until),
                _ => None,
            }),
            problem: self.problem.clone(),
            bindings: self.listed.clone(),
            expiry_adjusted: self
                .binding
                .as_ref()
                .and_then(|b| b.adjusted.clone().map(Box::new)),
            extension_in_use: self.in_use.as_ref().map(|e| Box::new(e.info.clone())),
        };
        self.outputs.push_back(Output::Event(Event::Status(status)));
    }
}

fn sent_by(local: SocketAddr) -> String {
    match local {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

/// Random lowercase alphanumerics: `len` characters of about 5.2 bits each.
fn random_token(rng: &mut ChaCha20Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The host of a contact URI as an address, when it is one.
fn uri_ip(uri: &str) -> Option<IpAddr> {
    message::UriParts::parse(uri).and_then(|u| {
        u.host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .ok()
    })
}
