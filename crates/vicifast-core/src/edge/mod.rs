//! The softphone edge proxy: the agent's own softphone takes the extension's calls through
//! VICIfast, which stays the one client registered at the PBX.
//!
//! An [`EdgeProxy`] serves one account. It sits between one softphone on this computer, reached
//! over loopback UDP or TCP at the listener ([`EdgeConfig::listen`], `127.0.0.1:5070` by
//! default), and the PBX, reached only over the registration's current flow ([`PbxFlow`]). It is
//! the edge-proxy role of RFC 5626 together with a transaction-stateful RFC 3261 proxy, and it is
//! sans-IO like [`crate::Registration`]: the driver feeds it inputs (`handle_*`, each with `now`)
//! and then drains [`EdgeProxy::poll_output`] until `None` and re-arms its timer at
//! [`EdgeProxy::poll_timeout`].
//!
//! # The rules
//!
//! **Who takes what from the PBX.** The driver hands every message arriving on the
//! registration's flow to [`EdgeProxy::handle_pbx_receive`] first (through [`receive_on_flow`],
//! with [`follow_flow`] after every input to the registration); what it answers
//! [`FromPbx::ForRegistration`] goes to the [`crate::Registration`] as before. The registration
//! keeps: responses whose branch is not the edge proxy's, REGISTER, and the registrar's qualify
//! OPTIONS, which VICIfast keeps answering itself so the PBX goes on seeing its binding alive. A
//! qualify is an out-of-dialog OPTIONS whose To names the Request-URI (the contact being
//! checked, as Asterisk, Kamailio and FreeSWITCH send it) or an address of this computer. An
//! OPTIONS addressed to the extension (To is the address of record) or inside a dialog, and every
//! other request, belongs to the softphone and is relayed.
//!
//! **Local registrar.** A softphone's REGISTER is never forwarded. It is challenged (digest, the
//! account's realm and password, MD5 by default, SHA-256 on request, nonces that expire and take
//! each nonce count once) and its contact, path, User-Agent and expiry are recorded. A softphone
//! set up for another extension, or with a wrong password, gets 403 and the agent is told what to
//! change; after [`EdgeConfig::max_wrong_passwords`] wrong passwords all REGISTERs get 403 until
//! the window has passed. A softphone with registration switched off is reached at
//! [`EdgeConfig::fixed_contact`]. Only loopback sources are listened to at all, and out-of-dialog
//! requests are taken only from the registered softphone's path (any loopback source when a fixed
//! contact is configured, since nothing then tells the softphone apart).
//!
//! **Calls in and out.** Requests from the PBX go to the softphone's path, out-of-dialog ones with
//! the Request-URI set to its Contact; requests from the softphone go to the PBX over the current
//! flow whatever their Request-URI says: nothing from the listener goes anywhere but the PBX. On
//! the way, RFC 3261 §16: Max-Forwards is decremented (483 at zero), Route entries naming us are
//! removed (a strict router's Request-URI restored), our Via is pushed with a branch derived from
//! the incoming transaction (see `routing::derive_branch`), and a request that creates a dialog
//! (INVITE, SUBSCRIBE, REFER) gets our Record-Route so that every in-dialog request and response
//! passes VICIfast both ways. The Record-Route is always double (RFC 5658), since the two sides
//! never share an address: the entry nearer the next hop is the address that side reaches us at
//! (the listener toward the softphone; the flow's public address, else its local one, toward the
//! PBX), each with its transport and the `vicifast` mark by which Route entries are recognised
//! later, even after a network change has altered the address. Responses are relayed by popping
//! our Via. INVITEs get 100 Trying upstream at once; a CANCEL is answered here and a CANCEL is
//! sent downstream (once a provisional response allows it); 401/407 go back to the softphone,
//! which answers them itself; a 503 from downstream goes up as 500 (RFC 3261 §16.7).
//!
//! **Media addresses.** In every SDP body from the softphone (offer or answer, request or
//! response) the addresses the PBX cannot reach are replaced by the address our flow uses now,
//! its public one when the registrar saw one (see `sdp`): loopback, this computer's addresses
//! before a network change, and the flow's local address when the registrar sees a public one.
//!
//! **The softphone's health.** See `health`: checks every [`EdgeConfig::check_interval`] and on
//! each incoming call; while the softphone does not answer (or has not registered), an incoming
//! INVITE is answered 480 with a Reason at once, and an INVITE already relayed is ended (480
//! upstream, CANCEL downstream) as soon as a check goes unanswered. Timer C bounds ringing.
//!
//! **Calls across a network change.** See `calls`: the calls up through the edge proxy are
//! tracked (from the 2xx to their INVITE until a BYE), and when the registration's flow moves to
//! another address while one is up, [`EdgeEvent::CallMoved`] says once what the agent can do:
//! the PBX keeps sending the call's audio to the old address until the softphone renegotiates.
//!
//! **Bounds.** Transactions, nonces and past addresses live in capped tables whose entries
//! expire; malformed input is dropped (or answered, when a response can be built) and never
//! panics. The fuzzing entry points are [`EdgeProxy::handle_softphone_receive`],
//! [`EdgeProxy::handle_pbx_receive`] and [`EdgeProxy::handle_timeout`].

mod calls;
mod challenge;
mod config;
mod conflict;
mod demux;
mod editable;
mod health;
mod registrar;
mod relay;
mod routing;
mod sdp;
mod transaction;

pub use calls::{CallDirection, CallInProgress, CallMoved, CALL_IDLE_LIMIT, MAX_CALLS};
pub use config::{DigestAlgorithm, EdgeConfig, EdgeConfigError, FixedContact, DEFAULT_LISTEN};
pub use conflict::DirectRegistration;
pub use demux::{follow_flow, receive_on_flow};
pub use health::{SoftphoneProblem, SoftphoneProblemCode, SoftphoneState, SoftphoneStatus};

use crate::config::{AccountConfig, Password};
use crate::status::{BindingInfo, IncomingCall, TraceEntry, Transport};
use crate::{FlowId, Transmit};
use calls::Calls;
use health::Checks;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use registrar::{Identity, LocalRegistrar};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use transaction::RelayTransactions;

/// This computer's earlier flow addresses kept for media rewriting and conflict detection.
const MAX_PAST_ADDRESSES: usize = 8;

/// A TCP connection the driver accepted on the listener (or opened to the softphone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// Where a message from the softphone came from, or where one to it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalPeer {
    /// UDP or TCP.
    pub transport: Transport,
    pub addr: SocketAddr,
    /// The TCP connection, when there is one; on TCP without one, the driver connects to `addr`.
    pub connection: Option<ConnectionId>,
}

/// The registration's current flow to the PBX: the only way anything reaches the PBX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PbxFlow {
    pub flow: FlowId,
    pub transport: Transport,
    /// The PBX (registrar or outbound proxy) address the flow goes to.
    pub remote: SocketAddr,
    /// Our end of the flow.
    pub local: SocketAddr,
    /// Our address as the registrar sees it (Via `received`/`rport`), when it differs.
    pub public: Option<SocketAddr>,
}

impl PbxFlow {
    /// The address the PBX reaches us at.
    pub fn reachable_at(&self) -> SocketAddr {
        self.public.unwrap_or(self.local)
    }
}

/// Bytes for the softphone, over the listener's UDP socket or a TCP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTransmit {
    pub peer: LocalPeer,
    pub payload: Vec<u8>,
}

/// What the driver must do for the edge proxy, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EdgeOutput {
    /// Send on the registration's flow.
    ToPbx(Transmit),
    ToSoftphone(LocalTransmit),
    Event(EdgeEvent),
}

/// Things worth telling the agent or the embedding application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EdgeEvent {
    /// The softphone's state, user agent, contact or problem changed.
    Softphone(SoftphoneStatus),
    /// A call from the PBX was relayed to the softphone.
    IncomingCall(IncomingCall),
    /// A call from the PBX was answered at once because the softphone cannot take it.
    CallRefused { call: IncomingCall, reason: String },
    /// A message relayed or answered, credentials redacted.
    Trace(TraceEntry),
    /// The registration's flow moved to another address while calls were up (once per move).
    CallMoved(CallMoved),
}

/// Whether a message from the PBX's flow was the edge proxy's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum FromPbx {
    Handled,
    /// Give it to the [`crate::Registration`].
    ForRegistration,
}

/// The edge proxy of one account. See the module documentation for its rules.
#[derive(Debug)]
pub struct EdgeProxy {
    account: String,
    user: String,
    identity: Identity,
    config: EdgeConfig,
    rng: ChaCha20Rng,
    /// Keys the derived branches.
    secret: String,
    flow: Option<PbxFlow>,
    past_addresses: VecDeque<IpAddr>,
    registrar: LocalRegistrar,
    checks: Checks,
    state: SoftphoneState,
    user_agent: Option<String>,
    problem: Option<SoftphoneProblem>,
    /// What the last published status said, to publish changes only.
    published: Option<SoftphoneStatus>,
    transactions: RelayTransactions,
    calls: Calls,
    outputs: VecDeque<EdgeOutput>,
}

impl EdgeProxy {
    /// The edge proxy of `account`, challenging the softphone with `password` (the account's).
    /// `seed` feeds the CSPRNG behind nonces, tags, Call-IDs and the branch secret.
    pub fn new(
        account: &AccountConfig,
        password: Password,
        config: EdgeConfig,
        seed: [u8; 32],
    ) -> Result<Self, EdgeConfigError> {
        config.validate()?;
        let mut rng = ChaCha20Rng::from_seed(seed);
        let secret = random_hex(&mut rng);
        let checks = Checks::new(random_hex(&mut rng), random_hex(&mut rng));
        let realm = account.domain();
        let state = if config.fixed_contact.is_some() {
            SoftphoneState::Checking
        } else {
            SoftphoneState::NotRegistered
        };
        Ok(Self {
            account: account.name.clone(),
            user: account.user.clone(),
            identity: Identity {
                user: account.user.clone(),
                auth_user: account.auth_user().to_owned(),
                realm,
                password,
            },
            registrar: LocalRegistrar::new(&config),
            config,
            rng,
            secret,
            flow: None,
            past_addresses: VecDeque::new(),
            checks,
            state,
            user_agent: None,
            problem: None,
            published: None,
            transactions: RelayTransactions::default(),
            calls: Calls::default(),
            outputs: VecDeque::new(),
        })
    }

    // ---- getters ----

    pub fn config(&self) -> &EdgeConfig {
        &self.config
    }

    pub fn pbx_flow(&self) -> Option<&PbxFlow> {
        self.flow.as_ref()
    }

    /// The softphone as of `now`.
    pub fn softphone_status(&self, now: Instant) -> SoftphoneStatus {
        let binding = self.registrar.binding.as_ref();
        let fixed = self.config.fixed_contact.as_ref();
        SoftphoneStatus {
            account: self.account.clone(),
            state: self.state,
            user_agent: self.user_agent.clone(),
            contact: binding
                .map(|b| b.contact.clone())
                .or_else(|| self.softphone_path().map(|(_, uri)| uri)),
            transport: binding
                .map(|b| b.peer.transport)
                .or(fixed.map(|f| f.transport)),
            expires_in: binding.map(|b| {
                u32::try_from(b.expires_at.saturating_duration_since(now).as_secs())
                    .unwrap_or(u32::MAX)
            }),
            problem: self.problem.clone(),
        }
    }

    /// The bindings the registrar listed that are this computer's softphone (or another SIP
    /// program here) registering directly with the PBX: what the registration needs to say "the
    /// softphone also registers directly" instead of fighting it for the binding.
    pub fn direct_registrations(&self, bindings: &[BindingInfo]) -> Vec<DirectRegistration> {
        let softphone = self.registrar.binding.as_ref().map(|b| b.contact.as_str());
        conflict::direct_registrations(bindings, &self.this_computer(), softphone)
    }

    /// The number of transactions in progress (for benchmarks and tests of the bounds).
    pub fn transactions_in_progress(&self) -> usize {
        self.transactions.entries.len()
    }

    /// The calls up through the edge proxy at `now`.
    pub fn calls_in_progress(&self, now: Instant) -> Vec<CallInProgress> {
        self.calls.in_progress(now)
    }

    // ---- commands ----

    /// Publishes the first status and, with a fixed contact, starts checking the softphone.
    pub fn start(&mut self, now: Instant) {
        if self.config.fixed_contact.is_some() {
            self.checks.next_check = Some(now);
        }
        self.publish(now);
    }

    /// The account's password changed: the softphone must use the new one from its next REGISTER.
    pub fn set_password(&mut self, password: Password) {
        self.identity.password = password;
    }

    // ---- inputs ----

    /// The registration's flow changed (a new flow, a new public address), or there is none.
    /// When it moved to another address while calls are up, says so ([`EdgeEvent::CallMoved`]).
    pub fn handle_pbx_flow(&mut self, now: Instant, flow: Option<PbxFlow>) {
        if let Some(old) = self.flow {
            for ip in [Some(old.local.ip()), old.public.map(|p| p.ip())]
                .into_iter()
                .flatten()
            {
                if !self.past_addresses.contains(&ip) {
                    if self.past_addresses.len() == MAX_PAST_ADDRESSES {
                        self.past_addresses.pop_front();
                    }
                    self.past_addresses.push_back(ip);
                }
            }
        }
        self.flow = flow;
        if let Some(moved) = self.calls.flow_changed(now, flow.as_ref()) {
            tracing::warn!(
                account = %self.account,
                calls = moved.calls.len(),
                old = %moved.old_address,
                new = %moved.new_address,
                "the network changed during a call: the PBX sends its audio to the old address until the softphone renegotiates"
            );
            let event = CallMoved::new(
                self.account.clone(),
                moved.calls,
                moved.old_address,
                moved.new_address,
            );
            self.outputs
                .push_back(EdgeOutput::Event(EdgeEvent::CallMoved(event)));
        }
    }

    // `handle_pbx_receive`, `handle_softphone_receive` and `handle_timeout` are in `relay`.

    /// The bindings the registrar listed in its last answer to our REGISTER. A binding there
    /// that is this computer's but not ours means the softphone (or another SIP program here)
    /// also registers directly with the PBX: the agent is told so and what to change, and
    /// VICIfast keeps its own binding as it is instead of fighting for it. The problem clears
    /// once the registrar lists no such binding.
    pub fn handle_bindings(&mut self, now: Instant, bindings: &[BindingInfo]) {
        let direct = self.direct_registrations(bindings);
        let flagged = self
            .problem
            .as_ref()
            .is_some_and(|p| p.code == SoftphoneProblemCode::AlsoRegisteredDirectly);
        if direct.is_empty() {
            if flagged {
                self.problem = None;
                self.publish(now);
            }
            return;
        }
        if self.problem.is_some() && !flagged {
            // A problem with the softphone's own sign-in comes first; this one is still listed
            // by the registrar next time.
            return;
        }
        let contacts: Vec<&str> = direct.iter().map(|d| d.contact.as_str()).collect();
        let detail = format!(
            "the phone server also lists {} for this extension",
            contacts.join(", ")
        );
        tracing::warn!(account = %self.account, %detail, "the softphone also registers directly with the PBX");
        self.problem = Some(SoftphoneProblem::new(
            SoftphoneProblemCode::AlsoRegisteredDirectly,
            detail,
        ));
        self.publish(now);
    }

    /// Sending to the softphone failed at once (ICMP port unreachable, connection refused): it is
    /// not running.
    pub fn handle_softphone_unreachable(&mut self, now: Instant, peer: LocalPeer) {
        if self
            .softphone_path()
            .is_some_and(|(p, _)| p.addr == peer.addr)
        {
            self.checks.probe = None;
            self.checks.next_check = Some(now + self.config.check_interval);
            self.set_state(now, SoftphoneState::NotAnswering);
        }
    }

    /// A TCP connection of the listener closed. A softphone registered over it is reached at its
    /// Contact address from now on (or re-registers).
    pub fn handle_connection_closed(&mut self, _now: Instant, connection: ConnectionId) {
        if let Some(binding) = self.registrar.binding.as_mut() {
            if binding.peer.connection == Some(connection) {
                binding.peer.connection = None;
                if let Some(addr) = binding.contact_addr {
                    binding.peer.addr = addr;
                }
            }
        }
    }

    // ---- outputs ----

    pub fn poll_output(&mut self) -> Option<EdgeOutput> {
        self.outputs.pop_front()
    }

    /// When to call [`EdgeProxy::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.transactions.next_deadline(),
            self.checks.next_deadline(),
            self.registrar.binding.as_ref().map(|b| b.expires_at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- shared helpers ----

    /// Where the softphone is reached now, and the URI to address it by.
    fn softphone_path(&self) -> Option<(LocalPeer, String)> {
        if let Some(binding) = &self.registrar.binding {
            return Some((binding.peer, binding.contact.clone()));
        }
        let fixed = self.config.fixed_contact.as_ref()?;
        let transport = match fixed.transport {
            Transport::Udp => "",
            _ => ";transport=tcp",
        };
        Some((
            LocalPeer {
                transport: fixed.transport,
                addr: fixed.addr,
                connection: None,
            },
            format!("sip:{}@{}{transport}", self.user, fixed.addr),
        ))
    }

    /// Every address of this computer the PBX has seen us at, now or before.
    fn this_computer(&self) -> Vec<IpAddr> {
        let mut addresses: Vec<IpAddr> = self.past_addresses.iter().copied().collect();
        if let Some(flow) = &self.flow {
            addresses.push(flow.local.ip());
            addresses.extend(flow.public.map(|p| p.ip()));
        }
        addresses
    }

    fn set_state(&mut self, now: Instant, state: SoftphoneState) {
        let was = self.state;
        self.state = state;
        if was.takes_calls() && !state.takes_calls() {
            self.refuse_pending_calls(now, state);
        }
        self.publish(now);
    }

    /// Emits the status when anything but its countdown changed.
    fn publish(&mut self, now: Instant) {
        let status = self.softphone_status(now);
        let unchanged = self.published.as_ref().is_some_and(|p| {
            SoftphoneStatus {
                expires_in: status.expires_in,
                ..p.clone()
            } == status
        });
        if unchanged {
            return;
        }
        tracing::info!(account = %self.account, state = %status.state, user_agent = ?status.user_agent, "softphone");
        self.published = Some(status.clone());
        self.outputs
            .push_back(EdgeOutput::Event(EdgeEvent::Softphone(status)));
    }

    fn token(&mut self) -> String {
        random_hex(&mut self.rng)
    }
}

fn random_hex(rng: &mut ChaCha20Rng) -> String {
    format!("{:016x}", rng.gen::<u64>())
}
