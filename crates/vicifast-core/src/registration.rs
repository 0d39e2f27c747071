//! The registration state machine (RFC 3261 §10, RFC 5626 §4.5 backoff).
//!
//! One [`Registration`] keeps one address of record bound to this device through one flow at a
//! time. Each REGISTER is a client transaction; credentials are answered per [`DigestSession`];
//! the binding is refreshed ahead of its expiry; failures fall back to the next resolved target,
//! then to an exponential backoff. A `Registration` can also run once to list the bindings of the
//! address of record, or to remove this machine's bindings (for the CLI's `bindings` and
//! `unregister`).

use crate::binding::{listed_bindings, OurContact};
use crate::config::{AccountConfig, Password};
use crate::digest::{ChallengeError, DigestSession};
use crate::message::{self, param, MessageBuilder, NameAddr, Request, Response, SipMessage, Via};
use crate::status::{
    BindingInfo, Cause, Direction, IncomingCall, Problem, ProblemCode, RegistrationState, Status,
    TraceEntry, Transport,
};
use crate::timer::{backoff_delay, refresh_delay, Timer, TimerTable};
use crate::transaction::{
    ClientTimeout, ClientTransaction, CompletedTransaction, ServerTransactions,
};
use crate::{Event, FlowError, FlowErrorKind, FlowId, Output, Target, Transmit};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
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
/// Bounds on re-sending the same REGISTER after answers that ask for it.
const MAX_STALE_RETRIES: u8 = 3;
const MAX_INTERVAL_RETRIES: u8 = 3;
/// Refuse Min-Expires values that would keep a binding alive for more than a day.
const MAX_EXPIRES: u32 = 86_400;
/// How many old contacts we remember for removal.
const MAX_STALE_CONTACTS: usize = 4;
/// Consecutive re-registrations for NAT or audit reasons on one flow.
const MAX_CORRECTIVE_REGISTERS: u8 = 2;
/// RFC 5626 §4.4.1: a pong must arrive within 10 s.
const PONG_WAIT: Duration = Duration::from_secs(10);
/// While offline, how often to ask the driver to look at the routes again.
const OFFLINE_PROBE: Duration = Duration::from_secs(30);
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    /// Adds or refreshes our binding.
    Register,
    /// Removes our binding (Expires 0), on stop.
    Unregister,
    /// No Contact: asks for the current bindings.
    Query,
    /// Removes the listed contacts.
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Resolving,
    Connecting,
    Transacting,
    /// Registered, waiting for the refresh timer.
    Waiting,
    BackingOff,
    /// No route to the server: wait for the network to come back.
    Offline,
    Failed,
    Finished,
}

#[derive(Debug, Clone)]
struct Flow {
    id: FlowId,
    target: Target,
    local: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
struct ActiveBinding {
    granted: u32,
    expires_at: Instant,
    /// The Contact this binding is for: a refresh keeps it, a new flow changes it.
    contact: String,
}

/// The in-flight REGISTER and what it carried.
#[derive(Debug)]
struct PendingRequest {
    tx: ClientTransaction,
    kind: RequestKind,
    /// Credentials in this request answered a challenge that came in reply to the request just
    /// before it; a new challenge now means the credentials are wrong.
    fresh_credentials: bool,
    /// Old contacts this request removes (expires=0).
    removing: Vec<String>,
}

/// The sans-IO registration state machine. See the crate docs for the calling convention.
#[derive(Debug)]
pub struct Registration {
    config: AccountConfig,
    password: Password,
    purpose: Purpose,
    rng: ChaCha20Rng,
    // RFC 3261 §10.2: one Call-ID and From tag for all REGISTERs of this registration.
    call_id: String,
    from_tag: String,
    cseq: u32,
    requested_expires: u32,
    phase: Phase,
    state: RegistrationState,
    problem: Option<Problem>,
    targets: Vec<Target>,
    target_index: usize,
    flow: Option<Flow>,
    next_flow_id: u64,
    contact: Option<OurContact>,
    pending: Option<PendingRequest>,
    completed: Vec<CompletedTransaction>,
    server_transactions: ServerTransactions,
    www_auth: Option<DigestSession>,
    proxy_auth: Option<DigestSession>,
    stale_retries: u8,
    interval_retries: u8,
    binding: Option<ActiveBinding>,
    bindings: Vec<BindingInfo>,
    consecutive_failures: u32,
    /// A refresh failed while the binding was still valid and was retried at once.
    refresh_retried: bool,
    /// Contacts to remove with the next `Remove` request.
    to_remove: Vec<String>,
    retry_after: Option<Duration>,
    timers: TimerTable,
    outputs: VecDeque<Output>,
    stopping: bool,
    /// Contacts we registered from addresses we no longer have, to remove with the next
    /// REGISTER (in the same request that adds the new one, so nothing can reorder the two).
    stale_contacts: Vec<String>,
    /// Our address as the registrar sees it (Via received/rport), when it differs from ours.
    nat_public: Option<SocketAddr>,
    /// Re-registrations for a NAT address or a missing binding in this flow; bounds loops.
    corrective_registers: u8,
    /// The server answers keep-alive pings on this flow, so a missing pong means it failed.
    pong_expected: bool,
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
        let call_id = random_token(&mut rng, 24);
        let from_tag = random_token(&mut rng, 12);
        let requested_expires = u32::try_from(config.expires.as_secs()).unwrap_or(u32::MAX);
        Self {
            config,
            password,
            purpose,
            rng,
            call_id,
            from_tag,
            cseq: 0,
            requested_expires,
            phase: Phase::Idle,
            state: RegistrationState::Idle,
            problem: None,
            targets: Vec::new(),
            target_index: 0,
            flow: None,
            next_flow_id: 0,
            contact: None,
            pending: None,
            completed: Vec::new(),
            server_transactions: ServerTransactions::default(),
            www_auth: None,
            proxy_auth: None,
            stale_retries: 0,
            interval_retries: 0,
            binding: None,
            bindings: Vec::new(),
            consecutive_failures: 0,
            refresh_retried: false,
            to_remove: Vec::new(),
            retry_after: None,
            timers: TimerTable::default(),
            outputs: VecDeque::new(),
            stopping: false,
            stale_contacts: Vec::new(),
            nat_public: None,
            corrective_registers: 0,
            pong_expected: false,
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
        self.phase == Phase::Finished
    }

    // ---- commands ----

    /// Starts registering (or the one-shot purpose).
    pub fn start(&mut self, now: Instant) {
        if self.phase != Phase::Idle {
            return;
        }
        self.state = RegistrationState::Registering;
        self.publish(now, Cause::Started);
        self.begin_attempt(now);
    }

    /// Unregisters our binding (waiting at most 2 s for the answer), then finishes.
    pub fn stop(&mut self, now: Instant) {
        if self.stopping || self.phase == Phase::Finished {
            return;
        }
        self.stopping = true;
        // Failed: nothing is bound and the failure stays the last word.
        if self.phase == Phase::Failed {
            self.phase = Phase::Finished;
            self.timers = TimerTable::default();
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
            || self
                .pending
                .as_ref()
                .is_some_and(|p| p.kind == RequestKind::Register);
        let registered = may_be_bound && self.flow.as_ref().is_some_and(|f| f.local.is_some());
        self.timers = TimerTable::default();
        if registered && self.purpose == Purpose::Maintain {
            self.pending = None;
            self.timers.set(Timer::StopDeadline, now + STOP_WAIT);
            self.send_request(now, RequestKind::Unregister, false);
        } else {
            self.finish(now, RegistrationState::Unregistered, Cause::UserRequest);
        }
    }

    /// New credentials: forget old challenges and, if we had given up, try again now.
    pub fn set_password(&mut self, now: Instant, password: Password) {
        self.password = password;
        self.www_auth = None;
        self.proxy_auth = None;
        if matches!(self.phase, Phase::Failed | Phase::BackingOff) && !self.stopping {
            self.restart(now, Cause::CredentialsChanged);
        }
    }

    /// The user asks to try again now (after a failure or during backoff).
    pub fn retry_now(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Failed | Phase::BackingOff) && !self.stopping {
            self.restart(now, Cause::UserRequest);
        }
    }

    fn restart(&mut self, now: Instant, cause: Cause) {
        self.consecutive_failures = 0;
        self.problem = None;
        self.timers.stop(Timer::Backoff);
        self.state = if self.binding.is_some() {
            RegistrationState::Registered
        } else {
            RegistrationState::Registering
        };
        self.publish(now, cause);
        self.begin_attempt(now);
    }

    // ---- inputs ----

    /// The driver's answer to [`Output::Resolve`].
    pub fn handle_resolved(&mut self, now: Instant, result: Result<Vec<Target>, String>) {
        if self.phase != Phase::Resolving {
            return;
        }
        match result {
            Ok(targets) if !targets.is_empty() => {
                self.targets = targets;
                self.target_index = 0;
                self.use_target(now);
            }
            Ok(_) => self.attempt_failed(
                now,
                Problem::new(ProblemCode::DnsFailure, "no address records"),
                false,
            ),
            Err(detail) => {
                self.attempt_failed(now, Problem::new(ProblemCode::DnsFailure, detail), false)
            }
        }
    }

    /// The driver opened the flow asked for by [`Output::OpenFlow`].
    pub fn handle_flow_opened(&mut self, now: Instant, flow: FlowId, local: SocketAddr) {
        let Some(current) = self.flow.as_mut().filter(|f| f.id == flow) else {
            return;
        };
        current.local = Some(local);
        let transport = current.target.transport;
        self.timers.stop(Timer::Connect);
        self.nat_public = None;
        self.corrective_registers = 0;
        self.pong_expected = false;
        let contact = OurContact::new(
            &self.config.user,
            local,
            transport,
            self.config.instance_id.as_deref(),
        );
        self.replace_contact(contact);
        if self.phase == Phase::Connecting {
            let kind = self.first_request_kind();
            self.send_request(now, kind, false);
        }
    }

    /// A flow could not be opened, or broke.
    pub fn handle_flow_error(&mut self, now: Instant, flow: FlowId, error: FlowError) {
        if self.flow.as_ref().map(|f| f.id) != Some(flow) {
            return;
        }
        tracing::debug!(account = %self.config.name, ?error, "flow failed");
        self.flow = None;
        self.server_transactions.forget_flow(flow);
        self.timers.stop(Timer::Connect);
        let problem = Problem::new(error.kind.problem_code(), error.detail);
        if error.kind == FlowErrorKind::NetworkUnreachable && !self.stopping {
            self.go_offline(now, Cause::NetworkChanged);
            self.outputs.push_back(Output::CheckNetwork);
            return;
        }
        match self.phase {
            Phase::Connecting | Phase::Transacting => {
                self.pending = None;
                if self.stopping {
                    self.finish(now, RegistrationState::Unregistered, Cause::Unregistered);
                } else {
                    self.attempt_failed(now, problem, true);
                }
            }
            // A connection that drops while we wait to refresh leaves the registrar unable to
            // reach us over it: register again over a new one at once.
            Phase::Waiting => {
                self.problem = Some(problem);
                self.binding = None;
                self.bindings.retain(|b| !b.ours);
                self.timers.stop(Timer::PongTimeout);
                self.state = RegistrationState::Registering;
                self.publish(now, Cause::FlowFailed);
                self.begin_attempt(now);
            }
            _ => {}
        }
    }

    /// A SIP message (a UDP datagram, or one framed from a stream) arrived on a flow.
    pub fn handle_receive(&mut self, now: Instant, flow: FlowId, remote: SocketAddr, data: &[u8]) {
        let Some(current) = self.flow.as_ref().filter(|f| f.id == flow) else {
            tracing::debug!(account = %self.config.name, %remote, "message on a closed flow ignored");
            return;
        };
        let transport = current.target.transport;
        let from_next_hop = transport.is_reliable() || remote == current.target.addr;
        let message = match SipMessage::parse(data) {
            Ok(m) => m,
            Err(err) => {
                tracing::warn!(account = %self.config.name, %remote, %err, "malformed message dropped");
                return;
            }
        };
        if !from_next_hop && !self.config.accept_requests_from_anyone {
            tracing::warn!(account = %self.config.name, %remote, "message from an address other than the registrar dropped");
            return;
        }
        self.trace(Direction::Received, remote, transport, data);
        match message {
            SipMessage::Response(resp) => self.on_response(now, resp),
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
        while let Some(timeout) = self.pending.as_mut().and_then(|p| p.tx.on_timeout(now)) {
            match timeout {
                ClientTimeout::Retransmit(bytes) => {
                    if let Some(p) = &self.pending {
                        let (flow, destination) = (p.tx.flow, p.tx.destination);
                        self.push_transmit(flow, destination, bytes);
                    }
                }
                ClientTimeout::TimedOut => {
                    self.on_transaction_timeout(now);
                    break;
                }
            }
        }
        for timer in self.timers.expired(now) {
            self.on_timer(now, timer);
        }
    }

    // ---- outputs ----

    /// The next thing for the driver to do; `None` when there is nothing until new input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call [`Registration::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.timers.next().map(|(_, at)| at);
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                next = Some(next.map_or(at, |n: Instant| n.min(at)));
            }
        };
        consider(self.pending.as_ref().map(|p| p.tx.next_deadline()));
        consider(self.server_transactions.next_deadline());
        consider(self.completed.iter().map(|c| c.until).min());
        next
    }

    // ---- attempts ----

    fn first_request_kind(&self) -> RequestKind {
        if self.stopping {
            return RequestKind::Unregister;
        }
        match self.purpose {
            Purpose::Maintain => RequestKind::Register,
            Purpose::ListBindings | Purpose::RemoveLocal => RequestKind::Query,
        }
    }

    /// Resolves the next hop afresh and starts over from its first target.
    fn begin_attempt(&mut self, now: Instant) {
        self.pending = None;
        self.phase = Phase::Resolving;
        self.outputs.push_back(Output::Resolve {
            server: self.config.next_hop().clone(),
            transport: self.config.transport,
        });
        let _ = now;
    }

    /// Talks to `targets[target_index]`, reusing the current flow when it already goes there.
    fn use_target(&mut self, now: Instant) {
        let Some(target) = self.targets.get(self.target_index).cloned() else {
            return;
        };
        if let Some(flow) = &self.flow {
            if flow.target == target && flow.local.is_some() {
                let kind = self.first_request_kind();
                self.send_request(now, kind, false);
                return;
            }
            let old = flow.id;
            self.server_transactions.forget_flow(old);
            self.outputs.push_back(Output::CloseFlow { flow: old });
        }
        self.next_flow_id += 1;
        let id = FlowId(self.next_flow_id);
        self.flow = Some(Flow {
            id,
            target: target.clone(),
            local: None,
        });
        self.phase = Phase::Connecting;
        self.timers
            .set(Timer::Connect, now + self.config.timers.t1 * 64);
        self.outputs
            .push_back(Output::OpenFlow { flow: id, target });
    }

    fn send_request(&mut self, now: Instant, kind: RequestKind, fresh_credentials: bool) {
        let Some(flow) = self.flow.clone() else {
            self.begin_attempt(now);
            return;
        };
        let Some(local) = flow.local else {
            return;
        };
        self.cseq += 1;
        let branch = format!("z9hG4bK{}", random_token(&mut self.rng, 22));
        let transport = flow.target.transport;
        let request_uri = self.request_uri();
        let aor = format!("<sip:{}@{}>", self.config.user, self.config.domain());
        let mut builder = MessageBuilder::request("REGISTER", &request_uri)
            .header(
                "Via",
                format!(
                    "SIP/2.0/{} {};rport;branch={branch}",
                    transport.via_token(),
                    sent_by(local)
                ),
            )
            .header("Max-Forwards", 70)
            .header("From", format!("{aor};tag={}", self.from_tag))
            .header("To", &aor)
            .header("Call-ID", &self.call_id)
            .header("CSeq", format!("{} REGISTER", self.cseq));
        if let Some(proxy) = &self.config.outbound_proxy {
            builder = builder.header("Route", format!("<{};lr>", proxy));
        }
        let contact = self.contact.clone();
        let removing = match kind {
            RequestKind::Register | RequestKind::Unregister => self.stale_contacts.clone(),
            _ => Vec::new(),
        };
        match kind {
            // Old contacts first and without +sip.instance: a registrar that matches bindings by
            // instance must not apply their expires=0 to the new binding.
            RequestKind::Register => {
                for uri in &removing {
                    builder = builder.header("Contact", format!("<{uri}>;expires=0"));
                }
                if let Some(contact) = &contact {
                    builder = builder
                        .header("Contact", contact.header_value(self.requested_expires))
                        .header("Expires", self.requested_expires);
                }
            }
            RequestKind::Unregister => {
                for uri in &removing {
                    builder = builder.header("Contact", format!("<{uri}>;expires=0"));
                }
                if let Some(contact) = &contact {
                    builder = builder
                        .header("Contact", contact.header_value(0))
                        .header("Expires", 0);
                }
            }
            RequestKind::Remove => {
                for uri in &self.to_remove {
                    builder = builder.header("Contact", format!("<{uri}>;expires=0"));
                }
                builder = builder.header("Expires", 0);
            }
            RequestKind::Query => {}
        }
        builder = builder
            .header("Allow", ALLOW)
            .header("Supported", "outbound, path")
            .header("User-Agent", &self.config.user_agent);
        let auth_user = self.config.auth_user().to_owned();
        for session in [self.proxy_auth.as_mut(), self.www_auth.as_mut()]
            .into_iter()
            .flatten()
        {
            let cnonce = random_token(&mut self.rng, 8);
            let value = session.authorize(
                "REGISTER",
                &request_uri,
                &auth_user,
                &self.password,
                b"",
                &cnonce,
            );
            builder = builder.header(session.header_name(), value);
        }
        let payload = builder.finish();
        let tx = ClientTransaction::new(
            now,
            branch,
            self.cseq,
            flow.id,
            flow.target.addr,
            payload.clone(),
            transport.is_reliable(),
            self.config.timers,
        );
        self.pending = Some(PendingRequest {
            tx,
            kind,
            fresh_credentials,
            removing,
        });
        self.phase = Phase::Transacting;
        self.push_transmit(flow.id, flow.target.addr, payload);
    }

    fn request_uri(&self) -> String {
        match &self.config.domain {
            Some(domain) => format!("sip:{domain}"),
            None => {
                let registrar = &self.config.registrar;
                match registrar.port {
                    Some(port) => format!("sip:{}:{port}", registrar.uri_host()),
                    None => format!("sip:{}", registrar.uri_host()),
                }
            }
        }
    }

    // ---- responses ----

    fn on_response(&mut self, now: Instant, resp: Response) {
        let Some(via) = resp
            .headers
            .get("via")
            .and_then(|v| message::split_list(v).into_iter().next())
            .and_then(|v| Via::parse(&v))
        else {
            tracing::warn!(account = %self.config.name, "response without a usable Via dropped");
            return;
        };
        let branch = via.branch().unwrap_or_default().to_owned();
        let Some(pending) = self.pending.as_ref().filter(|p| p.tx.branch == branch) else {
            if self.completed.iter().any(|c| c.branch == branch) {
                tracing::trace!(account = %self.config.name, "retransmitted response absorbed");
            } else {
                tracing::warn!(account = %self.config.name, code = resp.code, "stray response ignored (no matching transaction)");
            }
            return;
        };
        // Beyond the branch, the response must belong to our dialog-less exchange.
        let cseq_ok = resp
            .headers
            .get("cseq")
            .and_then(message::parse_cseq)
            .is_some_and(|(n, m)| n == pending.tx.cseq && m.eq_ignore_ascii_case("REGISTER"));
        let call_id_ok = resp.headers.get("call-id") == Some(self.call_id.as_str());
        let from_tag_ok = resp
            .headers
            .get("from")
            .and_then(NameAddr::parse)
            .is_some_and(|f| f.tag() == Some(self.from_tag.as_str()));
        if !(cseq_ok && call_id_ok && from_tag_ok) {
            tracing::warn!(account = %self.config.name, code = resp.code, "forged or mismatched response ignored");
            return;
        }
        if resp.code < 200 {
            if let Some(p) = self.pending.as_mut() {
                p.tx.on_provisional(now);
            }
            return;
        }
        let Some(pending) = self.pending.take() else {
            return;
        };
        let (kind, fresh_credentials) = (pending.kind, pending.fresh_credentials);
        let removing = pending.removing;
        self.completed.push(pending.tx.complete(now));
        self.retry_after = resp
            .headers
            .get("retry-after")
            .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs);
        let detail = format!("{} {}", resp.code, resp.reason);
        match resp.code {
            200..=299 => self.on_success(now, kind, removing, &resp),
            401 | 407 => self.on_challenge(now, kind, fresh_credentials, &resp),
            423 => self.on_interval_too_brief(now, kind, &resp),
            403 => self.fail(now, Problem::new(ProblemCode::Forbidden, detail)),
            404 => self.fail(now, Problem::new(ProblemCode::UnknownExtension, detail)),
            408 | 480 => {
                self.attempt_failed(now, Problem::new(ProblemCode::Timeout, detail), false)
            }
            503 => self.attempt_failed(now, Problem::new(ProblemCode::ServerError, detail), true),
            500..=599 => {
                self.attempt_failed(now, Problem::new(ProblemCode::ServerError, detail), false)
            }
            _ => self.fail(now, Problem::new(ProblemCode::Rejected, detail)),
        }
    }

    fn on_success(
        &mut self,
        now: Instant,
        kind: RequestKind,
        removed: Vec<String>,
        resp: &Response,
    ) {
        self.stale_retries = 0;
        self.interval_retries = 0;
        self.stale_contacts.retain(|c| !removed.contains(c));
        let listed = listed_bindings(&resp.headers, self.contact.as_ref());
        self.bindings = listed.iter().map(|(_, b)| b.clone()).collect();
        match kind {
            RequestKind::Register => {
                let header_expires = resp
                    .headers
                    .get("expires")
                    .and_then(|v| v.trim().parse::<u32>().ok());
                let granted = listed
                    .iter()
                    .find(|(_, b)| b.ours)
                    .and_then(|(_, b)| b.expires_in)
                    .or(header_expires)
                    .unwrap_or(self.requested_expires);
                if self.correct_contact(now, resp, &listed) {
                    return;
                }
                if granted == 0 {
                    self.attempt_failed(
                        now,
                        Problem::new(
                            ProblemCode::InvalidResponse,
                            "the registrar granted our binding 0 seconds",
                        ),
                        false,
                    );
                    return;
                }
                let contact = self
                    .contact
                    .as_ref()
                    .map(|c| c.uri.clone())
                    .unwrap_or_default();
                let was_registered = self.state == RegistrationState::Registered
                    && self.binding.as_ref().is_some_and(|b| b.contact == contact);
                let granted_for = Duration::from_secs(u64::from(granted));
                self.binding = Some(ActiveBinding {
                    granted,
                    expires_at: now + granted_for,
                    contact,
                });
                self.timers
                    .set(Timer::Refresh, now + refresh_delay(granted_for));
                self.timers.set(Timer::Expiry, now + granted_for);
                self.timers.stop(Timer::Backoff);
                self.consecutive_failures = 0;
                self.refresh_retried = false;
                self.problem = None;
                self.phase = Phase::Waiting;
                self.state = RegistrationState::Registered;
                if let Some(flow) = &self.flow {
                    let interval = self.config.keepalive_interval(flow.target.transport);
                    if self.timers.get(Timer::KeepAlive).is_none() {
                        self.timers.set(Timer::KeepAlive, now + interval);
                    }
                }
                if resp
                    .headers
                    .get_all("require")
                    .chain(resp.headers.get_all("supported"))
                    .any(|v| v.to_ascii_lowercase().contains("outbound"))
                {
                    self.pong_expected = true;
                }
                self.publish(
                    now,
                    if was_registered {
                        Cause::Refreshed
                    } else {
                        Cause::Registered
                    },
                );
            }
            RequestKind::Unregister => {
                self.binding = None;
                self.finish(now, RegistrationState::Unregistered, Cause::Unregistered);
            }
            RequestKind::Query => {
                self.outputs
                    .push_back(Output::Event(Event::Bindings(self.bindings.clone())));
                if self.purpose == Purpose::RemoveLocal {
                    let local_ip = self.flow.as_ref().and_then(|f| f.local).map(|l| l.ip());
                    self.to_remove = listed
                        .iter()
                        .filter(|(contact, _)| self.is_local_binding(contact, local_ip))
                        .map(|(contact, _)| contact.uri.clone())
                        .collect();
                    if !self.to_remove.is_empty() {
                        self.send_request(now, RequestKind::Remove, false);
                        return;
                    }
                    self.outputs
                        .push_back(Output::Event(Event::Removed(Vec::new())));
                }
                self.finish(now, self.state, Cause::UserRequest);
            }
            RequestKind::Remove => {
                let removed = std::mem::take(&mut self.to_remove);
                self.outputs
                    .push_back(Output::Event(Event::Removed(removed)));
                self.finish(now, RegistrationState::Unregistered, Cause::Unregistered);
            }
        }
    }

    fn is_local_binding(&self, contact: &NameAddr, local_ip: Option<IpAddr>) -> bool {
        if let (Some(ours), Some(theirs)) = (
            &self.config.instance_id,
            param(&contact.params, "+sip.instance"),
        ) {
            if theirs
                .trim_matches(|c| c == '<' || c == '>')
                .eq_ignore_ascii_case(ours)
            {
                return true;
            }
        }
        let Some(local_ip) = local_ip else {
            return false;
        };
        message::UriParts::parse(&contact.uri)
            .and_then(|u| {
                u.host
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<IpAddr>()
                    .ok()
            })
            .is_some_and(|ip| ip == local_ip)
    }

    fn on_challenge(
        &mut self,
        now: Instant,
        kind: RequestKind,
        fresh_credentials: bool,
        resp: &Response,
    ) {
        let proxy = resp.code == 407;
        let header = if proxy {
            "proxy-authenticate"
        } else {
            "www-authenticate"
        };
        let session = match DigestSession::from_challenges(resp.headers.get_all(header), proxy) {
            Ok(s) => s,
            Err(err @ (ChallengeError::Missing | ChallengeError::Unsupported(_))) => {
                self.fail(now, Problem::new(ProblemCode::Rejected, err.to_string()));
                return;
            }
        };
        let detail = format!(
            "{} {} (realm \"{}\")",
            resp.code,
            resp.reason,
            session.realm()
        );
        if session.is_stale() {
            self.stale_retries += 1;
            if self.stale_retries > MAX_STALE_RETRIES {
                self.attempt_failed(
                    now,
                    Problem::new(
                        ProblemCode::ServerError,
                        format!("{detail}: nonce stale again and again"),
                    ),
                    false,
                );
                return;
            }
        } else if fresh_credentials {
            self.fail(
                now,
                Problem::new(
                    ProblemCode::WrongPassword,
                    format!("{detail} after credentials were sent"),
                ),
            );
            return;
        }
        let slot = if proxy {
            &mut self.proxy_auth
        } else {
            &mut self.www_auth
        };
        *slot = Some(session);
        self.send_request(now, kind, true);
    }

    fn on_interval_too_brief(&mut self, now: Instant, kind: RequestKind, resp: &Response) {
        let min = resp
            .headers
            .get("min-expires")
            .and_then(|v| v.trim().parse::<u32>().ok());
        self.interval_retries += 1;
        match min {
            Some(min)
                if min > self.requested_expires
                    && min <= MAX_EXPIRES
                    && self.interval_retries <= MAX_INTERVAL_RETRIES =>
            {
                self.requested_expires = min;
                self.send_request(now, kind, false);
            }
            _ => self.fail(
                now,
                Problem::new(
                    ProblemCode::Rejected,
                    format!("423 Interval Too Brief with Min-Expires {min:?}"),
                ),
            ),
        }
    }

    fn on_transaction_timeout(&mut self, now: Instant) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        self.completed.push(pending.tx.complete(now));
        if pending.kind == RequestKind::Unregister {
            self.finish(now, RegistrationState::Unregistered, Cause::Unregistered);
            return;
        }
        let server = self
            .flow
            .as_ref()
            .map(|f| f.target.addr.to_string())
            .unwrap_or_default();
        self.attempt_failed(
            now,
            Problem::new(
                ProblemCode::Timeout,
                format!("no answer from {server} within 32 s"),
            ),
            true,
        );
    }

    /// A retryable failure: the next target if allowed, else an immediate retry while the
    /// binding still holds, else backoff.
    fn attempt_failed(&mut self, now: Instant, problem: Problem, next_target: bool) {
        if self.stopping {
            self.finish(now, RegistrationState::Unregistered, Cause::Unregistered);
            return;
        }
        self.pending = None;
        if next_target && self.target_index + 1 < self.targets.len() {
            tracing::info!(account = %self.config.name, %problem, "trying the next server address");
            self.target_index += 1;
            self.use_target(now);
            return;
        }
        if self.purpose != Purpose::Maintain {
            self.fail(now, problem);
            return;
        }
        let binding_valid = self.binding.as_ref().is_some_and(|b| b.expires_at > now);
        self.problem = Some(problem);
        if binding_valid && !self.refresh_retried {
            self.refresh_retried = true;
            self.publish(now, Cause::RefreshFailed);
            self.begin_attempt(now);
            return;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let unit: f64 = self.rng.gen();
        let mut delay = backoff_delay(
            self.config.backoff_base,
            self.config.backoff_cap,
            self.consecutive_failures,
            unit,
        );
        if let Some(retry_after) = self.retry_after.take() {
            delay = delay.max(retry_after.min(self.config.backoff_cap));
        }
        self.timers.set(Timer::Backoff, now + delay);
        self.phase = Phase::BackingOff;
        if !binding_valid {
            self.state = RegistrationState::Retrying;
        }
        self.publish(now, Cause::RetryScheduled);
    }

    /// A failure only the user can fix: stop trying.
    fn fail(&mut self, now: Instant, problem: Problem) {
        if self.stopping {
            self.finish(now, RegistrationState::Unregistered, Cause::Unregistered);
            return;
        }
        tracing::warn!(account = %self.config.name, %problem, "registration failed");
        self.pending = None;
        self.problem = Some(problem);
        self.timers = TimerTable::default();
        self.binding = None;
        self.phase = Phase::Failed;
        self.state = RegistrationState::Failed;
        self.publish(now, Cause::Failed);
        if self.purpose != Purpose::Maintain {
            self.phase = Phase::Finished;
            self.outputs.push_back(Output::Event(Event::Finished));
        }
    }

    fn finish(&mut self, now: Instant, state: RegistrationState, cause: Cause) {
        self.pending = None;
        self.timers = TimerTable::default();
        self.phase = Phase::Finished;
        self.state = state;
        if state == RegistrationState::Unregistered {
            self.binding = None;
        }
        self.publish(now, cause);
        if let Some(flow) = self.flow.take() {
            self.outputs.push_back(Output::CloseFlow { flow: flow.id });
        }
        self.outputs.push_back(Output::Event(Event::Finished));
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Refresh => {
                if self.phase == Phase::Waiting {
                    self.send_request(now, RequestKind::Register, false);
                }
            }
            Timer::Expiry => {
                self.binding = None;
                self.bindings.retain(|b| !b.ours);
                self.timers.stop(Timer::Refresh);
                self.state = if self.phase == Phase::BackingOff {
                    RegistrationState::Retrying
                } else {
                    RegistrationState::Registering
                };
                if self.phase == Phase::Waiting {
                    self.send_request(now, RequestKind::Register, false);
                }
                self.publish(now, Cause::RefreshFailed);
            }
            Timer::Backoff => {
                if self.phase == Phase::BackingOff {
                    self.begin_attempt(now);
                }
            }
            Timer::Connect => {
                if self.phase == Phase::Connecting {
                    if let Some(flow) = self.flow.take() {
                        self.outputs.push_back(Output::CloseFlow { flow: flow.id });
                    }
                    self.attempt_failed(
                        now,
                        Problem::new(ProblemCode::Timeout, "connecting to the server timed out"),
                        true,
                    );
                }
            }
            Timer::KeepAlive => self.send_keepalive(now),
            Timer::PongTimeout => {
                if let Some(flow) = self.flow.as_ref().map(|f| f.id) {
                    self.outputs.push_back(Output::CloseFlow { flow });
                    self.handle_flow_error(
                        now,
                        flow,
                        FlowError {
                            kind: FlowErrorKind::Closed,
                            detail: "no answer to the keep-alive ping within 10 s".into(),
                        },
                    );
                }
            }
            Timer::StopDeadline => {
                self.finish(now, RegistrationState::Unregistered, Cause::Unregistered);
            }
        }
    }

    // ---- network changes (RFC 5626 flows, NAT, sleep) ----

    /// The network changed: `local_ip` is the address the OS would now use to reach the server
    /// (`None`: no route). The driver calls this on every interface, address or route event and
    /// after each [`Output::CheckNetwork`]; nothing happens unless our flow's address is affected.
    pub fn handle_network_changed(&mut self, now: Instant, local_ip: Option<IpAddr>) {
        if self.stopping || matches!(self.phase, Phase::Idle | Phase::Finished | Phase::Failed) {
            return;
        }
        let Some(ip) = local_ip else {
            if self.phase != Phase::Offline {
                self.go_offline(now, Cause::NetworkChanged);
            }
            return;
        };
        if self.phase == Phase::Offline {
            self.problem = None;
            self.state = RegistrationState::Registering;
            self.publish(now, Cause::NetworkChanged);
            self.begin_attempt(now);
            return;
        }
        match self.flow.as_ref().and_then(|f| f.local).map(|l| l.ip()) {
            Some(current) if current == ip => {}
            Some(_) => self.reopen(now, Cause::AddressChanged),
            // A new network may cure what made us back off: try now rather than later.
            None if self.phase == Phase::BackingOff => self.restart(now, Cause::NetworkChanged),
            None => {}
        }
    }

    /// The machine woke from sleep: the binding may have lapsed and the NAT forgotten us, so
    /// register again at once over a new flow.
    pub fn handle_resumed(&mut self, now: Instant) {
        if self.stopping {
            return;
        }
        match self.phase {
            Phase::Waiting
            | Phase::BackingOff
            | Phase::Transacting
            | Phase::Connecting
            | Phase::Resolving => self.reopen(now, Cause::Resumed),
            Phase::Offline => self.outputs.push_back(Output::CheckNetwork),
            _ => {}
        }
    }

    /// A keep-alive pong (CRLF) arrived on a flow.
    pub fn handle_pong(&mut self, _now: Instant, flow: FlowId) {
        if self.flow.as_ref().is_some_and(|f| f.id == flow) {
            self.timers.stop(Timer::PongTimeout);
            self.pong_expected = true;
        }
    }

    fn go_offline(&mut self, now: Instant, cause: Cause) {
        self.drop_flow();
        self.timers = TimerTable::default();
        // Safety net for platforms whose route events we miss: ask for a re-check now and then.
        self.timers.set(Timer::KeepAlive, now + OFFLINE_PROBE);
        self.binding = None;
        self.bindings.retain(|b| !b.ours);
        self.phase = Phase::Offline;
        self.state = RegistrationState::Offline;
        self.problem = Some(Problem::new(
            ProblemCode::NetworkDown,
            "no route to the server from any local address",
        ));
        self.publish(now, cause);
    }

    /// Our flow's address is gone: register from scratch over a new flow. The old contact goes
    /// into the new REGISTER with expires=0 (see `stale_contacts`).
    fn reopen(&mut self, now: Instant, cause: Cause) {
        self.drop_flow();
        for timer in [
            Timer::Refresh,
            Timer::Expiry,
            Timer::Backoff,
            Timer::Connect,
            Timer::KeepAlive,
            Timer::PongTimeout,
        ] {
            self.timers.stop(timer);
        }
        self.binding = None;
        self.bindings.retain(|b| !b.ours);
        self.problem = None;
        self.consecutive_failures = 0;
        self.state = RegistrationState::Registering;
        self.publish(now, cause);
        self.begin_attempt(now);
    }

    fn drop_flow(&mut self) {
        self.pending = None;
        if let Some(flow) = self.flow.take() {
            self.server_transactions.forget_flow(flow.id);
            self.outputs.push_back(Output::CloseFlow { flow: flow.id });
        }
    }

    /// Installs a new Contact; the one it replaces is removed with the next REGISTER.
    fn replace_contact(&mut self, contact: OurContact) {
        if let Some(old) = self.contact.replace(contact) {
            let is_new = self.contact.as_ref().is_some_and(|c| c.uri != old.uri);
            if is_new && !self.stale_contacts.contains(&old.uri) {
                self.stale_contacts.push(old.uri);
                if self.stale_contacts.len() > MAX_STALE_CONTACTS {
                    self.stale_contacts.remove(0);
                }
            }
        }
    }

    /// After a 2xx to REGISTER: if the registrar sees us at another address (NAT), or did not
    /// list our binding, register again at once. Returns whether it did.
    fn correct_contact(
        &mut self,
        now: Instant,
        resp: &Response,
        listed: &[(NameAddr, BindingInfo)],
    ) -> bool {
        if self.corrective_registers >= MAX_CORRECTIVE_REGISTERS {
            return false;
        }
        let (Some(contact), Some(flow)) = (self.contact.clone(), self.flow.clone()) else {
            return false;
        };
        if let Some(public) = public_address(resp) {
            if public != contact.addr {
                let rebinding = self.nat_public.is_some();
                tracing::info!(account = %self.config.name, %public, private = %contact.addr, "registrar sees us at another address: registering that");
                self.nat_public = Some(public);
                self.corrective_registers += 1;
                self.replace_contact(OurContact::new(
                    &self.config.user,
                    public,
                    flow.target.transport,
                    self.config.instance_id.as_deref(),
                ));
                if rebinding {
                    self.state = RegistrationState::Registering;
                    self.publish(now, Cause::NatRebinding);
                }
                self.send_request(now, RequestKind::Register, false);
                return true;
            }
        }
        if !listed.is_empty() && !listed.iter().any(|(_, b)| b.ours) {
            tracing::warn!(account = %self.config.name, "registrar did not list our binding: registering again");
            self.corrective_registers += 1;
            self.publish(now, Cause::BindingLost);
            self.send_request(now, RequestKind::Register, false);
            return true;
        }
        self.corrective_registers = 0;
        false
    }

    fn send_keepalive(&mut self, now: Instant) {
        if self.phase == Phase::Offline {
            self.outputs.push_back(Output::CheckNetwork);
            self.timers.set(Timer::KeepAlive, now + OFFLINE_PROBE);
            return;
        }
        let Some(flow) = self.flow.clone().filter(|f| f.local.is_some()) else {
            return;
        };
        let transport = flow.target.transport;
        if self.phase == Phase::Waiting {
            // RFC 5626 §4.4.1: CRLFCRLF; on streams the server answers CRLF.
            self.outputs.push_back(Output::Transmit(Transmit {
                flow: flow.id,
                destination: flow.target.addr,
                payload: b"\r\n\r\n".to_vec(),
            }));
            if transport.is_reliable() && self.pong_expected {
                self.timers.set(Timer::PongTimeout, now + PONG_WAIT);
            }
            self.outputs.push_back(Output::CheckNetwork);
        }
        self.timers.set(
            Timer::KeepAlive,
            now + self.config.keepalive_interval(transport),
        );
    }

    // ---- requests from the registrar ----

    fn on_request(
        &mut self,
        now: Instant,
        flow: FlowId,
        remote: SocketAddr,
        transport: Transport,
        req: Request,
    ) {
        let vias: Vec<String> = req.headers.get_all("via").map(str::to_owned).collect();
        let top_via = vias
            .first()
            .and_then(|v| message::split_list(v).into_iter().next())
            .and_then(|v| Via::parse(&v));
        let (Some(top_via), Some(from), Some(to), Some(call_id), Some(cseq)) = (
            top_via,
            req.headers.get("from"),
            req.headers.get("to"),
            req.headers.get("call-id"),
            req.headers
                .get("cseq")
                .filter(|c| message::parse_cseq(c).is_some()),
        ) else {
            tracing::warn!(account = %self.config.name, method = %req.method, "request with missing or malformed headers dropped");
            return;
        };
        let branch = top_via.branch().unwrap_or_default().to_owned();
        let method = req.method.to_ascii_uppercase();
        if method == "ACK" {
            self.server_transactions.acknowledge(&branch);
            return;
        }
        if let Some(resend) = self.server_transactions.retransmission(&branch, &method) {
            self.push_transmit(resend.flow, resend.destination, resend.payload);
            return;
        }
        let (code, reason) = match method.as_str() {
            "OPTIONS" | "NOTIFY" | "CANCEL" => (200, "OK"),
            "INVITE" => (480, "Temporarily Unavailable"),
            "BYE" => (481, "Call/Transaction Does Not Exist"),
            _ => (405, "Method Not Allowed"),
        };
        let to_value = if NameAddr::parse(to).is_some_and(|t| t.tag().is_some()) {
            to.to_owned()
        } else {
            format!("{to};tag={}", random_token(&mut self.rng, 12))
        };
        let mut builder = MessageBuilder::response(code, reason);
        for via in &vias {
            builder = builder.header("Via", via);
        }
        builder = builder
            .header("From", from)
            .header("To", to_value)
            .header("Call-ID", call_id)
            .header("CSeq", cseq);
        if method == "OPTIONS" || code == 405 {
            builder = builder.header("Allow", ALLOW);
        }
        if method == "OPTIONS" {
            builder = builder
                .header("Accept", "application/sdp")
                .header("Supported", "path");
        }
        let payload = builder
            .header("User-Agent", &self.config.user_agent)
            .finish();
        self.server_transactions.record(
            now,
            branch,
            method == "INVITE",
            flow,
            remote,
            payload.clone(),
            transport.is_reliable(),
            self.config.timers,
        );
        self.push_transmit(flow, remote, payload);
        if method == "INVITE" {
            let from_uri = NameAddr::parse(from).map_or_else(|| from.to_owned(), |n| n.uri);
            tracing::info!(account = %self.config.name, from = %from_uri, "incoming call reached this device");
            self.outputs
                .push_back(Output::Event(Event::IncomingCall(IncomingCall {
                    account: self.config.name.clone(),
                    from: from_uri,
                    call_id: call_id.to_owned(),
                })));
        }
    }

    // ---- helpers ----

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
                text: message::redact(&String::from_utf8_lossy(bytes)),
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
            local_address: flow.and_then(|f| f.local).map(|l| l.to_string()),
            expires_in: self
                .binding
                .as_ref()
                .and_then(|b| secs_until(Some(b.expires_at)))
                .or_else(|| self.binding.as_ref().map(|b| b.granted)),
            next_refresh_in: secs_until(self.timers.get(Timer::Refresh)),
            next_attempt_in: secs_until(self.timers.get(Timer::Backoff)),
            problem: self.problem.clone(),
            bindings: self.bindings.clone(),
        };
        self.outputs.push_back(Output::Event(Event::Status(status)));
    }
}

/// Our address as the server saw it: the top Via's `received` and `rport` (RFC 3581).
fn public_address(resp: &Response) -> Option<SocketAddr> {
    let via = resp
        .headers
        .get("via")
        .and_then(|v| message::split_list(v).into_iter().next())
        .and_then(|v| Via::parse(&v))?;
    let received = param(&via.params, "received");
    let rport = param(&via.params, "rport");
    if received.is_none() && rport.is_none() {
        return None;
    }
    let sent_by: SocketAddr = via.sent_by.parse().ok().or_else(|| {
        via.sent_by
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 5060))
    })?;
    let ip = match received {
        Some(r) => r.trim_matches(|c| c == '[' || c == ']').parse().ok()?,
        None => sent_by.ip(),
    };
    let port = match rport {
        Some(p) => p.parse().ok()?,
        None => sent_by.port(),
    };
    Some(SocketAddr::new(ip, port))
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

impl FlowErrorKind {
    fn problem_code(self) -> ProblemCode {
        match self {
            FlowErrorKind::Refused => ProblemCode::ConnectionRefused,
            FlowErrorKind::TlsCertificate => ProblemCode::TlsCertificate,
            FlowErrorKind::NetworkUnreachable => ProblemCode::NetworkDown,
            FlowErrorKind::Closed | FlowErrorKind::Other => ProblemCode::TransportError,
        }
    }
}
