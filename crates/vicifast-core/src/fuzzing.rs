//! Entry points for the fuzz targets (`fuzz/` at the repository root) and for the regression
//! tests that replay what they found (`tests/fuzz_regressions.rs`).
//!
//! Each entry point takes arbitrary bytes and must return without panicking, looping or growing
//! without bound; it panics itself when an invariant of the core does not hold, so the fuzzer
//! reports it like a crash:
//!
//! - [`message`]: the SIP parser and every header reader behind it;
//! - [`challenge`]: a `WWW-Authenticate`/`Proxy-Authenticate` value, parsed and answered;
//! - [`registration`]: the whole [`Registration`] on simulated time, fed a sequence of
//!   [`Step`]s (messages from the registrar, from strangers, on old flows, answers built from the
//!   request in flight, flow errors, network changes, timers, user commands). It checks the
//!   pacing rule's ceiling with a token bucket of its own, that time moves on, that every batch
//!   of outputs ends, and that no control character reaches the wire;
//! - [`edge`]: the [`EdgeProxy`] fed messages from the softphone and from the PBX, timers and
//!   flow changes.
//!
//! The engine's stream framer, which cuts TCP and TLS bytes into the messages these see, has a
//! target of its own (`vicifast_engine::fuzzing::stream`).
//!
//! The step encoding is public ([`Step::encode`]) so that seed inputs can be built from real
//! captures (`examples/fuzz_seeds.rs`).

use crate::config::{AccountConfig, Password, ServerAddress, MAX_EXPIRES};
use crate::digest::DigestSession;
use crate::edge::{ConnectionId, EdgeConfig, EdgeOutput, EdgeProxy, LocalPeer, PbxFlow};
use crate::message::{self, NameAddr, SipMessage, UriParts, Via};
use crate::status::Transport;
use crate::{Event, FlowError, FlowErrorKind, FlowId, Output, Purpose, Registration, Target};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The most outputs one input may produce before the core is deemed to loop.
const MAX_OUTPUTS_PER_INPUT: usize = 10_000;
/// The most timer wake-ups at one instant before the core is deemed to spin.
const MAX_WAKEUPS_AT_ONE_INSTANT: usize = 1_000;
/// A bound on the core's own state (its `Debug` text), far above anything a sane run needs.
const MAX_STATE_TEXT: usize = 4 << 20;

const REGISTRAR: &str = "198.18.0.1:5060";
const STRANGER: &str = "198.18.9.9:5060";
const LOCAL_IPS: [&str; 3] = ["198.18.1.2", "198.18.2.2", "2001:db8::2"];
/// The ceiling of the crate docs' pacing rule, restated here so that the harness checks the
/// documented numbers rather than whatever the pacer holds: (burst, one more per interval).
const REGISTER_CEILING: (u32, Duration) = (10, Duration::from_secs(5));
const CONNECTION_CEILING: (u32, Duration) = (5, Duration::from_secs(12));

/// Reads the fuzz input front to back; past its end every read gives zeros or nothing.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.data.split_first() else {
            return 0;
        };
        self.data = rest;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A length-prefixed (u16, little-endian) chunk, cut short at the end of the input.
    fn chunk(&mut self) -> &'a [u8] {
        let len = usize::from(self.u16()).min(self.data.len());
        let (chunk, rest) = self.data.split_at(len);
        self.data = rest;
        chunk
    }
}

fn chunk_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&bytes[..usize::from(len)]);
}

// ---------------------------------------------------------------------------------------------
// Parsers

/// The SIP parser and the header readers the core uses on what it parsed.
pub fn message(data: &[u8]) {
    let _ = message::redact(&String::from_utf8_lossy(data));
    let Ok(parsed) = SipMessage::parse(data) else {
        return;
    };
    let headers = match &parsed {
        SipMessage::Request(r) => &r.headers,
        SipMessage::Response(r) => &r.headers,
    };
    for (name, value) in &headers.0 {
        assert!(
            !value.contains(['\r', '\n']),
            "header {name} kept a line break"
        );
        for item in message::split_list(value) {
            if let Some(addr) = NameAddr::parse(&item) {
                let _ = addr.tag();
                let _ = UriParts::parse(&addr.uri).map(|u| u.same_contact(&u));
            }
            let _ = Via::parse(&item).map(|v| v.branch().map(str::len));
        }
        let _ = message::parse_cseq(value);
        let _ = message::parse_params(value);
    }
}

/// A challenge header value; when it is usable, it is answered twice (nonce count 1 and 2).
/// The first input byte says whether it came in a 407 (`Proxy-Authenticate`).
pub fn challenge(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let values: Vec<&str> = text.split('\n').collect();
    let Ok(mut session) = DigestSession::from_challenges(values, flags & 1 == 1) else {
        return;
    };
    let _ = (session.realm(), session.is_stale(), session.header_name());
    let password = Password::new("fuzz-password");
    for cnonce in ["0a4f113b", "1b5e224c"] {
        let answer = session.authorize(
            "REGISTER",
            "sip:example.test",
            "101",
            &password,
            b"",
            cnonce,
        );
        assert!(
            !answer.contains(['\r', '\n']),
            "a challenge put a line break in the credentials: {answer:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The registration

/// One thing that happens to a [`Registration`] in a [`registration`] run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A message from the registrar on the current flow.
    FromRegistrar(Vec<u8>),
    /// A datagram from another address on the current flow.
    FromStranger(Vec<u8>),
    /// A message on a flow that is no longer current.
    OnOldFlow(Vec<u8>),
    /// A response to the last request sent: its Via, From, To, Call-ID and CSeq, this status
    /// code, our Contact with `expires` (when given), and `extra` header lines.
    Answer {
        code: u16,
        contact_expires: Option<u32>,
        extra: Vec<u8>,
    },
    /// The driver woke at the core's next deadline.
    NextTimer,
    /// Time passes (milliseconds, in steps of 50 ms up to 55 min), with every deadline on the
    /// way handled in order.
    Wait(u32),
    /// The current flow broke.
    FlowBroke(FlowErrorKind),
    /// The route to the registrar changed: a local address (index), or none.
    NetworkChanged(Option<u8>),
    /// The machine woke from sleep.
    Resumed,
    /// A pong on the current flow.
    Pong,
    RetryNow,
    SetPassword,
    Stop,
    /// From now on, new flows fail to open with this kind (`None`: they open).
    RefuseFlows(Option<FlowErrorKind>),
    /// From now on, resolving fails (or succeeds again).
    ResolveFails(bool),
}

const FLOW_ERRORS: [FlowErrorKind; 5] = [
    FlowErrorKind::Refused,
    FlowErrorKind::TlsCertificate,
    FlowErrorKind::NetworkUnreachable,
    FlowErrorKind::Closed,
    FlowErrorKind::Other,
];

fn flow_error_index(kind: FlowErrorKind) -> u8 {
    FLOW_ERRORS
        .iter()
        .position(|k| *k == kind)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(0)
}

impl Step {
    fn decode(input: &mut Reader<'_>) -> Self {
        match input.byte() % 15 {
            0 => Step::FromRegistrar(input.chunk().to_vec()),
            1 => Step::FromStranger(input.chunk().to_vec()),
            2 => Step::OnOldFlow(input.chunk().to_vec()),
            3 => {
                let code = 100 + input.u16() % 600;
                let contact_expires = match input.byte() {
                    0 => None,
                    _ => Some(input.u32()),
                };
                Step::Answer {
                    code,
                    contact_expires,
                    extra: input.chunk().to_vec(),
                }
            }
            4 => Step::NextTimer,
            5 => Step::Wait(u32::from(input.u16()) * 50),
            6 => Step::FlowBroke(FLOW_ERRORS[usize::from(input.byte()) % FLOW_ERRORS.len()]),
            7 => Step::NetworkChanged(match input.byte() {
                0 => None,
                n => Some(n - 1),
            }),
            8 => Step::Resumed,
            9 => Step::Pong,
            10 => Step::RetryNow,
            11 => Step::SetPassword,
            12 => Step::Stop,
            13 => Step::RefuseFlows(match input.byte() {
                0 => None,
                n => Some(FLOW_ERRORS[usize::from(n - 1) % FLOW_ERRORS.len()]),
            }),
            _ => Step::ResolveFails(input.byte() & 1 == 1),
        }
    }

    /// The bytes [`registration`] decodes as this step.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Step::FromRegistrar(bytes) => {
                out.push(0);
                chunk_bytes(out, bytes);
            }
            Step::FromStranger(bytes) => {
                out.push(1);
                chunk_bytes(out, bytes);
            }
            Step::OnOldFlow(bytes) => {
                out.push(2);
                chunk_bytes(out, bytes);
            }
            Step::Answer {
                code,
                contact_expires,
                extra,
            } => {
                out.push(3);
                out.extend_from_slice(&(code.saturating_sub(100) % 600).to_le_bytes());
                match contact_expires {
                    None => out.push(0),
                    Some(e) => {
                        out.push(1);
                        out.extend_from_slice(&e.to_le_bytes());
                    }
                }
                chunk_bytes(out, extra);
            }
            Step::NextTimer => out.push(4),
            Step::Wait(ms) => {
                out.push(5);
                let steps = u16::try_from(ms / 50).unwrap_or(u16::MAX);
                out.extend_from_slice(&steps.to_le_bytes());
            }
            Step::FlowBroke(kind) => out.extend_from_slice(&[6, flow_error_index(*kind)]),
            Step::NetworkChanged(ip) => out.extend_from_slice(&[7, ip.map_or(0, |i| i + 1)]),
            Step::Resumed => out.push(8),
            Step::Pong => out.push(9),
            Step::RetryNow => out.push(10),
            Step::SetPassword => out.push(11),
            Step::Stop => out.push(12),
            Step::RefuseFlows(kind) => {
                out.extend_from_slice(&[13, kind.map_or(0, |k| flow_error_index(k) + 1)])
            }
            Step::ResolveFails(fails) => out.extend_from_slice(&[14, u8::from(*fails)]),
        }
    }
}

/// How a [`registration`] run is set up: its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    pub transport: Transport,
    pub purpose: u8,
    pub accept_requests_from_anyone: bool,
    pub outbound_proxy: bool,
}

impl Setup {
    fn decode(b: u8) -> Self {
        Self {
            transport: [Transport::Udp, Transport::Tcp, Transport::Tls][usize::from(b & 3) % 3],
            purpose: (b >> 2) & 3,
            accept_requests_from_anyone: b & 0x10 != 0,
            outbound_proxy: b & 0x20 != 0,
        }
    }

    pub fn encode(&self) -> u8 {
        let transport = match self.transport {
            Transport::Udp => 0,
            Transport::Tcp => 1,
            Transport::Tls => 2,
        };
        transport
            | (self.purpose & 3) << 2
            | u8::from(self.accept_requests_from_anyone) << 4
            | u8::from(self.outbound_proxy) << 5
    }
}

/// A token bucket like the pacer's, kept by the harness: what the ceiling allows.
struct Allowance {
    burst: f64,
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl Allowance {
    fn new(burst: u32, every: Duration, now: Instant) -> Self {
        Self {
            burst: f64::from(burst),
            per_second: 1.0 / every.as_secs_f64(),
            tokens: f64::from(burst),
            at: now,
        }
    }

    /// Spends one; false when the ceiling did not allow it.
    fn spend(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.at = now;
        // A little slack for the pacer's integer arithmetic.
        if self.tokens < 1.0 - 1e-6 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// The simulated driver and network around one [`Registration`].
struct RegistrationSim {
    reg: Registration,
    now: Instant,
    transport: Transport,
    resolve_fails: bool,
    refuse: Option<FlowErrorKind>,
    local_ip: IpAddr,
    route: Option<IpAddr>,
    next_port: u16,
    current: Option<FlowId>,
    old_flows: Vec<FlowId>,
    last_request: Option<String>,
    /// (Call-ID, CSeq) of every REGISTER transaction sent: retransmissions are not new ones.
    registers_seen: HashSet<(String, String)>,
    registers: Allowance,
    connections: Allowance,
    wakeups_at_now: usize,
}

fn header_line<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split("\r\n").take_while(|l| !l.is_empty()).find(|l| {
        l.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
    })
}

/// Every byte of a message's head is printable or the CRLF that ends a line.
fn assert_clean_head(payload: &[u8]) {
    let head_end = message::find_subslice(payload, b"\r\n\r\n").unwrap_or(payload.len());
    let head = &payload[..head_end];
    for (i, &b) in head.iter().enumerate() {
        let ok = match b {
            b'\r' => head.get(i + 1) == Some(&b'\n'),
            b'\n' => i > 0 && head[i - 1] == b'\r',
            b'\t' => true,
            0x00..=0x1f | 0x7f => false,
            _ => true,
        };
        assert!(
            ok,
            "control byte {b:#04x} at {i} in a message sent: {:?}",
            String::from_utf8_lossy(payload)
        );
    }
}

impl RegistrationSim {
    fn new(setup: Setup, seed: [u8; 32]) -> Self {
        let registrar = ServerAddress::parse(REGISTRAR).unwrap_or_else(|_| unreachable!());
        let mut config = AccountConfig::new("fuzz", registrar.clone(), "101");
        config.domain = Some("example.test".into());
        config.transport = Some(setup.transport);
        config.accept_requests_from_anyone = setup.accept_requests_from_anyone;
        if setup.outbound_proxy {
            config.outbound_proxy = Some(registrar);
        }
        let purpose = match setup.purpose {
            1 => Purpose::ListBindings,
            2 => Purpose::RemoveLocal,
            _ => Purpose::Maintain,
        };
        let now = Instant::now();
        let local_ip = parse_ip(LOCAL_IPS[0]);
        Self {
            reg: Registration::new(config, Password::new("fuzz-password"), purpose, seed),
            now,
            transport: setup.transport,
            resolve_fails: false,
            refuse: None,
            local_ip,
            route: Some(local_ip),
            next_port: 40000,
            current: None,
            old_flows: Vec::new(),
            last_request: None,
            registers_seen: HashSet::new(),
            registers: Allowance::new(REGISTER_CEILING.0, REGISTER_CEILING.1, now),
            connections: Allowance::new(CONNECTION_CEILING.0, CONNECTION_CEILING.1, now),
            wakeups_at_now: 0,
        }
    }

    fn registrar(&self) -> SocketAddr {
        parse_addr(REGISTRAR)
    }

    fn drain(&mut self) {
        for _ in 0..MAX_OUTPUTS_PER_INPUT {
            let Some(output) = self.reg.poll_output() else {
                return;
            };
            let now = self.now;
            match output {
                Output::Resolve { .. } => {
                    let result = if self.resolve_fails {
                        Err("no such host (fuzz)".to_owned())
                    } else {
                        Ok(vec![Target {
                            addr: self.registrar(),
                            transport: self.transport,
                            server_name: "198.18.0.1".into(),
                        }])
                    };
                    self.reg.handle_resolved(now, result);
                }
                Output::OpenFlow { flow, .. } => {
                    assert!(
                        self.connections.spend(now),
                        "a new flow over the connection ceiling"
                    );
                    if let Some(kind) = self.refuse {
                        self.reg.handle_flow_error(
                            now,
                            flow,
                            FlowError {
                                kind,
                                detail: "refused (fuzz)".into(),
                            },
                        );
                    } else {
                        if let Some(old) = self.current.replace(flow) {
                            self.old_flows.push(old);
                        }
                        self.next_port = self.next_port.wrapping_add(1).max(1024);
                        let local = SocketAddr::new(self.local_ip, self.next_port);
                        self.reg.handle_flow_opened(now, flow, local);
                    }
                }
                Output::CloseFlow { flow } => {
                    if self.current == Some(flow) {
                        self.current = None;
                        self.old_flows.push(flow);
                    }
                }
                Output::CheckNetwork => self.reg.handle_network_changed(now, self.route),
                Output::Transmit(t) => self.on_transmit(&t.payload),
                Output::Event(Event::Status(status)) => {
                    // A granted expiry is capped: no binding is trusted, or left unrefreshed,
                    // for longer than the core's maximum, whatever the registrar said.
                    for (what, secs) in [
                        ("expires_in", status.expires_in),
                        ("next_refresh_in", status.next_refresh_in),
                    ] {
                        assert!(
                            secs.is_none_or(|s| s <= MAX_EXPIRES),
                            "status {what} {secs:?} beyond the cap of {MAX_EXPIRES} s"
                        );
                    }
                }
                Output::Event(_) => {}
            }
        }
        panic!("the core produced {MAX_OUTPUTS_PER_INPUT} outputs for one input");
    }

    fn on_transmit(&mut self, payload: &[u8]) {
        assert_clean_head(payload);
        let Ok(text) = std::str::from_utf8(payload) else {
            panic!("a message sent is not UTF-8");
        };
        if !text.starts_with("REGISTER ") {
            if !text.trim().is_empty() && !text.starts_with("SIP/2.0 ") {
                self.last_request = Some(text.to_owned());
            }
            return;
        }
        let key = (
            header_line(text, "Call-ID").unwrap_or_default().to_owned(),
            header_line(text, "CSeq").unwrap_or_default().to_owned(),
        );
        if self.registers_seen.insert(key) {
            assert!(
                self.registers.spend(self.now),
                "a REGISTER over the ceiling at {:?}",
                self.now
            );
        }
        self.last_request = Some(text.to_owned());
    }

    /// A response to the last request, as a registrar would build it.
    fn answer(&self, code: u16, contact_expires: Option<u32>, extra: &[u8]) -> Option<Vec<u8>> {
        let request = self.last_request.as_deref()?;
        let mut out = format!("SIP/2.0 {code} Fuzz\r\n").into_bytes();
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if let Some(line) = header_line(request, name) {
                out.extend_from_slice(line.as_bytes());
                if name == "To" && !line.contains("tag=") {
                    out.extend_from_slice(b";tag=fuzz");
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        if let (Some(expires), Some(contact)) = (contact_expires, header_line(request, "Contact")) {
            let contact = contact.split_once(':').map_or("", |(_, v)| v).trim();
            let contact = contact.split(";expires=").next().unwrap_or(contact);
            out.extend_from_slice(format!("Contact: {contact};expires={expires}\r\n").as_bytes());
        }
        out.extend_from_slice(extra);
        if !extra.is_empty() && !extra.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        Some(out)
    }

    /// Runs every deadline up to `until`, in order.
    fn run_until(&mut self, until: Instant) {
        for _ in 0..100_000 {
            match self.reg.poll_timeout() {
                Some(at) if at <= until => self.wake(at),
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    fn wake(&mut self, at: Instant) {
        if at <= self.now {
            self.wakeups_at_now += 1;
            assert!(
                self.wakeups_at_now < MAX_WAKEUPS_AT_ONE_INSTANT,
                "the core asks to be woken at {at:?} again and again, now {:?}",
                self.now
            );
        } else {
            self.wakeups_at_now = 0;
            self.now = at;
        }
        self.reg.handle_timeout(self.now);
        self.drain();
    }

    fn step(&mut self, step: Step) {
        let now = self.now;
        let registrar = self.registrar();
        match step {
            Step::FromRegistrar(bytes) => {
                if let Some(flow) = self.current {
                    self.reg.handle_receive(now, flow, registrar, &bytes);
                }
            }
            Step::FromStranger(bytes) => {
                if let Some(flow) = self.current {
                    self.reg
                        .handle_receive(now, flow, parse_addr(STRANGER), &bytes);
                }
            }
            Step::OnOldFlow(bytes) => {
                let flow = self.old_flows.last().copied().unwrap_or(FlowId(u64::MAX));
                self.reg.handle_receive(now, flow, registrar, &bytes);
            }
            Step::Answer {
                code,
                contact_expires,
                extra,
            } => {
                if let (Some(flow), Some(bytes)) =
                    (self.current, self.answer(code, contact_expires, &extra))
                {
                    self.reg.handle_receive(now, flow, registrar, &bytes);
                }
            }
            Step::NextTimer => {
                if let Some(at) = self.reg.poll_timeout() {
                    self.wake(at);
                }
            }
            Step::Wait(ms) => {
                let until = now + Duration::from_millis(u64::from(ms));
                self.run_until(until);
            }
            Step::FlowBroke(kind) => {
                if let Some(flow) = self.current.take() {
                    self.old_flows.push(flow);
                    self.reg.handle_flow_error(
                        now,
                        flow,
                        FlowError {
                            kind,
                            detail: "broken (fuzz)".into(),
                        },
                    );
                }
            }
            Step::NetworkChanged(ip) => {
                let ip = ip.map(|i| parse_ip(LOCAL_IPS[usize::from(i) % LOCAL_IPS.len()]));
                if let Some(ip) = ip {
                    self.local_ip = ip;
                }
                self.route = ip;
                self.reg.handle_network_changed(now, ip);
            }
            Step::Resumed => self.reg.handle_resumed(now),
            Step::Pong => {
                if let Some(flow) = self.current {
                    self.reg.handle_pong(now, flow);
                }
            }
            Step::RetryNow => self.reg.retry_now(now),
            Step::SetPassword => self
                .reg
                .set_password(now, Password::new("another-fuzz-password")),
            Step::Stop => self.reg.stop(now),
            Step::RefuseFlows(kind) => self.refuse = kind,
            Step::ResolveFails(fails) => self.resolve_fails = fails,
        }
        self.drain();
    }
}

fn parse_ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|_| unreachable!("a literal address"))
}

fn parse_addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| unreachable!("a literal address"))
}

/// The whole registration state machine: a [`Setup`] byte, then [`Step`]s to the end of `data`.
pub fn registration(data: &[u8]) {
    let mut input = Reader { data };
    let setup = Setup::decode(input.byte());
    let mut seed = [0u8; 32];
    seed[0] = input.byte();
    let mut sim = RegistrationSim::new(setup, seed);
    sim.reg.start(sim.now);
    sim.drain();
    while !input.is_empty() {
        let step = Step::decode(&mut input);
        sim.step(step);
    }
    // Whatever happened, five minutes later (past Timer F, a wait, a refresh) the core is
    // still sane and stops cleanly.
    let later = sim.now + Duration::from_secs(300);
    sim.run_until(later);
    let state = format!("{:?}", sim.reg);
    assert!(
        state.len() < MAX_STATE_TEXT,
        "the core's state grew to {} bytes",
        state.len()
    );
    sim.reg.stop(sim.now);
    sim.drain();
    sim.run_until(sim.now + Duration::from_secs(10));
    assert!(sim.reg.is_finished(), "not finished 10 s after stop");
}

// ---------------------------------------------------------------------------------------------
// The edge proxy

const SOFTPHONE: &str = "127.0.0.1:5062";
const EDGE_LOCAL: &str = "198.18.1.2:40000";
/// Transactions, nonces and addresses live in capped tables: this is far above their caps.
const MAX_EDGE_TRANSACTIONS: usize = 10_000;

/// The edge proxy between a softphone and the PBX: steps are messages from either side (over
/// UDP or TCP, from loopback or not), time passing, flow changes and closed connections.
pub fn edge(data: &[u8]) {
    let mut input = Reader { data };
    let mut account = AccountConfig::new(
        "fuzz",
        ServerAddress::parse(REGISTRAR).unwrap_or_else(|_| unreachable!()),
        "101",
    );
    account.domain = Some("example.test".into());
    let mut seed = [0u8; 32];
    seed[0] = input.byte();
    let Ok(mut proxy) = EdgeProxy::new(
        &account,
        Password::new("fuzz-password"),
        EdgeConfig::default(),
        seed,
    ) else {
        panic!("the default edge configuration is valid");
    };
    let mut now = Instant::now();
    let flow = |id: u64, transport: Transport, public: bool| PbxFlow {
        flow: FlowId(id),
        transport,
        remote: parse_addr(REGISTRAR),
        local: parse_addr(EDGE_LOCAL),
        public: public.then(|| parse_addr("203.0.113.7:5060")),
    };
    let mut current = flow(1, Transport::Udp, false);
    proxy.handle_pbx_flow(now, Some(current));
    proxy.start(now);
    let mut last_to_pbx: Option<Vec<u8>> = None;
    let mut last_to_softphone: Option<Vec<u8>> = None;
    while !input.is_empty() {
        let op = input.byte();
        match op % 9 {
            0 | 1 => {
                let peer = LocalPeer {
                    transport: if op & 0x10 == 0 {
                        Transport::Udp
                    } else {
                        Transport::Tcp
                    },
                    addr: if op & 0x20 == 0 {
                        parse_addr(SOFTPHONE)
                    } else {
                        parse_addr(STRANGER)
                    },
                    connection: (op & 0x10 != 0).then_some(ConnectionId(u64::from(op >> 6))),
                };
                let bytes = input.chunk();
                proxy.handle_softphone_receive(now, peer, bytes);
            }
            2 | 3 => {
                let bytes = input.chunk();
                let remote = if op & 0x20 == 0 {
                    current.remote
                } else {
                    parse_addr(STRANGER)
                };
                let _ = proxy.handle_pbx_receive(now, current.flow, remote, bytes);
            }
            4 => {
                // Echo what was last sent to one side back from it, with bytes patched in:
                // answers that match a transaction.
                let to_pbx = input.byte() & 1 == 0;
                let patch = input.chunk();
                let base = if to_pbx {
                    last_to_pbx.clone()
                } else {
                    last_to_softphone.clone()
                };
                if let Some(mut bytes) = base {
                    reshape_as_response(&mut bytes, patch);
                    if to_pbx {
                        let _ = proxy.handle_pbx_receive(now, current.flow, current.remote, &bytes);
                    } else {
                        proxy.handle_softphone_receive(now, parse_local_udp(), &bytes);
                    }
                }
            }
            5 => {
                if let Some(at) = proxy.poll_timeout() {
                    now = now.max(at);
                    proxy.handle_timeout(now);
                }
            }
            6 => {
                let until = now + Duration::from_millis(u64::from(input.u32()));
                for _ in 0..100_000 {
                    match proxy.poll_timeout() {
                        Some(at) if at <= until => {
                            now = now.max(at);
                            proxy.handle_timeout(now);
                            drain_edge(&mut proxy, &mut last_to_pbx, &mut last_to_softphone);
                        }
                        _ => break,
                    }
                }
                now = now.max(until);
            }
            7 => {
                let b = input.byte();
                let next = flow(
                    current.flow.0 + 1,
                    if b & 1 == 0 {
                        Transport::Udp
                    } else {
                        Transport::Tcp
                    },
                    b & 2 != 0,
                );
                if b & 4 == 0 {
                    current = next;
                    proxy.handle_pbx_flow(now, Some(current));
                } else {
                    proxy.handle_pbx_flow(now, None);
                }
            }
            _ => {
                let b = input.byte();
                if b & 1 == 0 {
                    proxy.handle_connection_closed(now, ConnectionId(u64::from(b >> 1)));
                } else {
                    proxy.handle_softphone_unreachable(now, parse_local_udp());
                }
            }
        }
        drain_edge(&mut proxy, &mut last_to_pbx, &mut last_to_softphone);
        assert!(
            proxy.transactions_in_progress() < MAX_EDGE_TRANSACTIONS,
            "edge transactions grew to {}",
            proxy.transactions_in_progress()
        );
    }
    let _ = proxy.softphone_status(now);
}

fn parse_local_udp() -> LocalPeer {
    LocalPeer {
        transport: Transport::Udp,
        addr: parse_addr(SOFTPHONE),
        connection: None,
    }
}

/// Turns a request's start line into a status line (`SIP/2.0 <patch>`), keeping its headers:
/// a response that matches the transaction the request began.
fn reshape_as_response(bytes: &mut Vec<u8>, patch: &[u8]) {
    if bytes.starts_with(b"SIP/2.0 ") {
        return;
    }
    let line_end = message::find_subslice(bytes, b"\r\n").unwrap_or(bytes.len());
    let mut status = b"SIP/2.0 ".to_vec();
    if patch.is_empty() {
        status.extend_from_slice(b"200 OK");
    } else {
        status.extend_from_slice(patch);
    }
    bytes.splice(..line_end, status);
}

fn drain_edge(
    proxy: &mut EdgeProxy,
    last_to_pbx: &mut Option<Vec<u8>>,
    last_to_softphone: &mut Option<Vec<u8>>,
) {
    for _ in 0..MAX_OUTPUTS_PER_INPUT {
        match proxy.poll_output() {
            None => return,
            Some(EdgeOutput::ToPbx(t)) => {
                assert_clean_head(&t.payload);
                *last_to_pbx = Some(t.payload);
            }
            Some(EdgeOutput::ToSoftphone(t)) => {
                assert_clean_head(&t.payload);
                *last_to_softphone = Some(t.payload);
            }
            Some(_) => {}
        }
    }
    panic!("the edge proxy produced {MAX_OUTPUTS_PER_INPUT} outputs for one input");
}
