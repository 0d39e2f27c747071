//! Drives a `Registration` on simulated time against sans-IO fake registrars.
//!
//! Time only moves when the core has nothing left to do and asks to be woken: the harness then
//! jumps straight to that deadline. Delivery is instantaneous; loss is a registrar that drops.
#![allow(dead_code, clippy::unwrap_used)]

use md5::{Digest as _, Md5};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use vicifast_core::{
    AccountConfig, Event, FlowError, FlowErrorKind, FlowId, Output, Password, Purpose,
    Registration, ServerAddress, Status, Target, Transport,
};

pub const REGISTRAR: &str = "198.18.0.1:5060";
pub const LOCAL_IP: &str = "198.18.1.2";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

pub fn target(s: &str, transport: Transport) -> Target {
    Target {
        addr: addr(s),
        transport,
        server_name: addr(s).ip().to_string(),
    }
}

pub fn config() -> AccountConfig {
    let mut c = AccountConfig::new("test", ServerAddress::parse(REGISTRAR).unwrap(), "101");
    c.domain = Some("example.test".into());
    // Binding checks add REGISTERs between refreshes; the tests that count REGISTERs for other
    // reasons leave them out, and tests/extension_in_use.rs turns them on.
    c.binding_check_interval = None;
    c
}

/// [`config`] over another transport.
pub fn config_over(transport: Transport) -> AccountConfig {
    let mut c = config();
    c.transport = Some(transport);
    c
}

/// What a fake registrar does with a REGISTER.
#[derive(Debug, Clone)]
pub struct FakeRegistrar {
    pub password: String,
    pub realm: String,
    pub qop: Option<&'static str>,
    pub algorithm: &'static str,
    pub proxy_challenge: bool,
    nonce_seq: u32,
    nonce: String,
    /// The next correctly answered challenge is reported stale instead.
    pub stale_next: bool,
    pub min_expires: Option<u32>,
    pub max_grant: Option<u32>,
    /// Answer every request with this code (after auth), e.g. 503 or 403.
    pub answer_code: Option<u16>,
    pub retry_after: Option<u32>,
    /// Drop every request (a firewall, a dead server).
    pub silent: bool,
    /// Bindings held: contact URI → expires.
    pub bindings: Vec<(String, u32)>,
    /// Contacts of other devices listed in every 200 OK.
    pub other_contacts: Vec<String>,
    /// Every request received, as text.
    pub received: Vec<String>,
    /// Where the client appears to come from (a NAT's outside address): put in Via received/rport.
    pub nat: Option<SocketAddr>,
    /// Like Asterisk's max_contacts with remove_existing=no: 403 for a REGISTER that would exceed it.
    pub max_contacts: Option<usize>,
    /// Leave our binding out of 200 OK listings (a registrar that lost it).
    pub hide_bindings: bool,
    /// Every correctly answered challenge is reported stale, with a new nonce, forever.
    pub stale_always: bool,
    /// Each response puts another port in Via rport (a NAT that keeps remapping).
    pub rport_flapping: bool,
    /// After each 2xx on TCP/TLS the connection breaks this way (a registrar or load balancer
    /// that closes it, or sends bytes that cannot be framed).
    pub break_after_ok: Option<FlowErrorKind>,
    /// Every REGISTER that adds a binding gets 423 with a Min-Expires above what it asked.
    pub min_expires_chain: bool,
    /// Grant every binding exactly this lifetime, whatever was asked.
    pub force_grant: Option<u32>,
    /// No authentication at all.
    pub no_auth: bool,
    /// Wrong credentials get 403 instead of a new challenge (chan_sip's `alwaysauthreject`).
    pub forbid_bad_credentials: bool,
    /// A new binding replaces every other (chan_sip; res_pjsip `max_contacts=1` with
    /// `remove_existing=yes`).
    pub replace_existing: bool,
}

impl FakeRegistrar {
    pub fn new(password: &str) -> Self {
        Self {
            password: password.into(),
            realm: "example.test".into(),
            qop: Some("auth"),
            algorithm: "MD5",
            proxy_challenge: false,
            nonce_seq: 0,
            nonce: "nonce-0".into(),
            stale_next: false,
            min_expires: None,
            max_grant: None,
            answer_code: None,
            retry_after: None,
            silent: false,
            bindings: Vec::new(),
            other_contacts: Vec::new(),
            received: Vec::new(),
            nat: None,
            max_contacts: None,
            hide_bindings: false,
            stale_always: false,
            rport_flapping: false,
            break_after_ok: None,
            min_expires_chain: false,
            force_grant: None,
            no_auth: false,
            forbid_bad_credentials: false,
            replace_existing: false,
        }
    }

    /// Forgets the current nonce, as a restarted registrar would.
    pub fn nonce_rotate(&mut self) {
        self.nonce_seq += 100;
        self.nonce = format!("nonce-{}", self.nonce_seq);
    }

    /// The contacts it holds bindings for.
    pub fn held(&self) -> Vec<String> {
        self.bindings.iter().map(|(uri, _)| uri.clone()).collect()
    }

    pub fn registers(&self) -> Vec<&String> {
        self.received
            .iter()
            .filter(|r| r.starts_with("REGISTER "))
            .collect()
    }

    fn hash(&self, data: &str) -> String {
        if self.algorithm.starts_with("SHA-256") {
            format!("{:x}", Sha256::digest(data.as_bytes()))
        } else {
            format!("{:x}", Md5::digest(data.as_bytes()))
        }
    }

    fn credentials_ok(&self, req: &str) -> Result<(), bool> {
        let name = if self.proxy_challenge {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        let Some(value) = header(req, name) else {
            return Err(false);
        };
        let p = digest_params(&value);
        let get = |k: &str| p.get(k).cloned().unwrap_or_default();
        let ha1 = self.hash(&format!(
            "{}:{}:{}",
            get("username"),
            self.realm,
            self.password
        ));
        let ha2 = self.hash(&format!("REGISTER:{}", get("uri")));
        let expected = match p.get("qop") {
            Some(qop) => self.hash(&format!(
                "{ha1}:{}:{}:{}:{qop}:{ha2}",
                get("nonce"),
                get("nc"),
                get("cnonce")
            )),
            None => self.hash(&format!("{ha1}:{}:{ha2}", get("nonce"))),
        };
        if expected != get("response") {
            return Err(false);
        }
        if get("nonce") != self.nonce {
            return Err(true); // right password, old nonce
        }
        Ok(())
    }

    /// The response text to a request, or `None` to drop it.
    pub fn handle(&mut self, req: &str) -> Option<String> {
        self.received.push(req.to_owned());
        if self.silent {
            return None;
        }
        if !req.starts_with("REGISTER ") {
            return None;
        }
        let mut extra = Vec::new();
        let verdict = if self.no_auth {
            Ok(())
        } else {
            self.credentials_ok(req)
        };
        let sent_credentials =
            header(req, "Authorization").is_some() || header(req, "Proxy-Authorization").is_some();
        let code = match verdict {
            Err(false) if self.forbid_bad_credentials && sent_credentials => 403,
            Err(stale) => {
                self.nonce_seq += 1;
                self.nonce = format!("nonce-{}", self.nonce_seq);
                let mut challenge = format!(
                    "Digest realm=\"{}\", nonce=\"{}\", algorithm={}",
                    self.realm, self.nonce, self.algorithm
                );
                if let Some(qop) = self.qop {
                    challenge.push_str(&format!(", qop=\"{qop}\""));
                }
                if stale {
                    challenge.push_str(", stale=true");
                }
                let (code, name) = if self.proxy_challenge {
                    (407, "Proxy-Authenticate")
                } else {
                    (401, "WWW-Authenticate")
                };
                extra.push(format!("{name}: {challenge}"));
                code
            }
            Ok(()) if self.stale_next || self.stale_always => {
                self.stale_next = false;
                self.nonce_seq += 1;
                self.nonce = format!("nonce-{}", self.nonce_seq);
                let name = if self.proxy_challenge {
                    "Proxy-Authenticate"
                } else {
                    "WWW-Authenticate"
                };
                extra.push(format!("{name}: Digest realm=\"{}\", nonce=\"{}\", algorithm={}, qop=\"auth\", stale=true", self.realm, self.nonce, self.algorithm));
                if self.proxy_challenge {
                    407
                } else {
                    401
                }
            }
            Ok(()) => {
                if let Some(code) = self.answer_code {
                    if let Some(ra) = self.retry_after {
                        extra.push(format!("Retry-After: {ra}"));
                    }
                    code
                } else {
                    self.apply_contacts(req, &mut extra)
                }
            }
        };
        if code == 200 {
            if !self.hide_bindings {
                for (uri, expires) in &self.bindings {
                    extra.push(format!("Contact: <{uri}>;expires={expires}"));
                }
            }
            for other in &self.other_contacts {
                extra.push(format!("Contact: <{other}>;expires=100"));
            }
        }
        let mut text = response(req, code, &extra);
        if self.rport_flapping {
            let port = 20_000 + self.received.len() % 40_000;
            text = text.replacen(
                ";rport;",
                &format!(";rport={port};received=198.18.100.1;"),
                1,
            );
        }
        if let Some(nat) = self.nat {
            text = text.replacen(
                ";rport;",
                &format!(";rport={};received={};", nat.port(), nat.ip()),
                1,
            );
        }
        Some(text)
    }

    fn apply_contacts(&mut self, req: &str, extra: &mut Vec<String>) -> u16 {
        let header_expires: Option<u32> = header(req, "Expires").and_then(|v| v.parse().ok());
        let contacts: Vec<String> = req
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("contact:"))
            .map(|l| l[8..].trim().to_owned())
            .collect();
        if let Some(max) = self.max_contacts {
            let mut after: Vec<String> = self.bindings.iter().map(|(u, _)| u.clone()).collect();
            for contact in &contacts {
                let uri =
                    contact[contact.find('<').unwrap() + 1..contact.find('>').unwrap()].to_owned();
                after.retain(|u| *u != uri);
                if !contact.contains("expires=0") {
                    after.push(uri);
                }
            }
            if after.len() > max {
                return 403;
            }
        }
        if self.min_expires_chain {
            let asked = contacts
                .iter()
                .filter_map(|c| {
                    c.split(';')
                        .find_map(|p| p.trim().strip_prefix("expires="))
                        .and_then(|v| v.parse::<u32>().ok())
                })
                .max()
                .or(header_expires)
                .unwrap_or(0);
            if asked > 0 {
                extra.push(format!("Min-Expires: {}", asked + 60));
                return 423;
            }
        }
        for contact in contacts {
            let uri =
                contact[contact.find('<').unwrap() + 1..contact.find('>').unwrap()].to_owned();
            let expires = contact
                .split(';')
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("expires=")
                        .map(|v| v.parse::<u32>().unwrap())
                })
                .or(header_expires)
                .unwrap_or(3600);
            if expires != 0 {
                if let Some(min) = self.min_expires {
                    if expires < min {
                        extra.push(format!("Min-Expires: {min}"));
                        return 423;
                    }
                }
            }
            self.bindings.retain(|(u, _)| *u != uri);
            if expires > 0 && self.replace_existing {
                self.bindings.clear();
            }
            if expires > 0 {
                let granted = self
                    .force_grant
                    .unwrap_or_else(|| self.max_grant.map_or(expires, |m| expires.min(m)));
                self.bindings.push((uri, granted));
            }
        }
        200
    }
}

pub fn header(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

fn digest_params(value: &str) -> HashMap<String, String> {
    value
        .trim_start_matches("Digest ")
        .split(", ")
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

/// A response to `req` with the headers RFC 3261 §8.2.6.2 copies.
pub fn response(req: &str, code: u16, extra: &[String]) -> String {
    let mut text = format!("SIP/2.0 {code} Reason\r\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        if let Some(v) = header(req, name) {
            text.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    if let Some(to) = header(req, "To") {
        text.push_str(&format!("To: {to};tag=registrar\r\n"));
    }
    for line in extra {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    text
}

#[derive(Debug, Clone)]
pub struct Sent {
    pub at: Duration,
    pub flow: FlowId,
    pub destination: SocketAddr,
    pub text: String,
}

pub struct Sim {
    pub reg: Registration,
    pub start: Instant,
    pub now: Instant,
    pub registrars: HashMap<SocketAddr, FakeRegistrar>,
    pub resolve: Result<Vec<Target>, String>,
    /// Targets whose flows fail to open, and how.
    pub refuse: HashMap<SocketAddr, FlowErrorKind>,
    pub sent: Vec<Sent>,
    pub events: Vec<(Duration, Event)>,
    pub opened: Vec<(FlowId, Target)>,
    /// When each flow was asked for (opened or refused).
    pub connection_attempts: Vec<Duration>,
    pub closed: Vec<FlowId>,
    pub resolves: usize,
    /// The address new flows get, and the answer to route checks (`None`: no route).
    pub local_ip: IpAddr,
    pub route: Option<IpAddr>,
    pub route_checks: usize,
    pub next_port: u16,
}

impl Sim {
    pub fn new(config: AccountConfig, password: &str, registrar: FakeRegistrar) -> Self {
        Self::with_purpose(config, password, registrar, Purpose::Maintain)
    }

    /// Like [`Sim::new`] with another seed for the core's randomness (jitter, tags).
    pub fn with_seed(
        config: AccountConfig,
        password: &str,
        registrar: FakeRegistrar,
        seed: [u8; 32],
    ) -> Self {
        let mut sim = Self::new(config.clone(), password, registrar);
        sim.reg = Registration::new(config, Password::new(password), Purpose::Maintain, seed);
        sim
    }

    pub fn with_purpose(
        config: AccountConfig,
        password: &str,
        registrar: FakeRegistrar,
        purpose: Purpose,
    ) -> Self {
        let transport = config.effective_transport();
        let start = Instant::now();
        let mut registrars = HashMap::new();
        registrars.insert(addr(REGISTRAR), registrar);
        Self {
            reg: Registration::new(config, Password::new(password), purpose, [7; 32]),
            start,
            now: start,
            registrars,
            resolve: Ok(vec![target(REGISTRAR, transport)]),
            refuse: HashMap::new(),
            sent: Vec::new(),
            events: Vec::new(),
            opened: Vec::new(),
            connection_attempts: Vec::new(),
            closed: Vec::new(),
            resolves: 0,
            local_ip: LOCAL_IP.parse().unwrap(),
            route: Some(LOCAL_IP.parse().unwrap()),
            route_checks: 0,
            next_port: 40000,
        }
    }

    pub fn registrar(&mut self) -> &mut FakeRegistrar {
        self.registrars
            .get_mut(&addr(REGISTRAR))
            .expect("registrar")
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn current_flow(&self) -> FlowId {
        self.opened.last().expect("a flow").0
    }

    /// Handles every output the core has queued, answering on behalf of the network.
    pub fn drain(&mut self) {
        for _ in 0..10_000 {
            let Some(output) = self.reg.poll_output() else {
                return;
            };
            let now = self.now;
            match output {
                Output::Resolve { .. } => {
                    self.resolves += 1;
                    self.reg.handle_resolved(now, self.resolve.clone());
                }
                Output::OpenFlow { flow, target } => {
                    self.connection_attempts.push(self.elapsed());
                    if let Some(kind) = self.refuse.get(&target.addr) {
                        self.reg.handle_flow_error(
                            now,
                            flow,
                            FlowError {
                                kind: *kind,
                                detail: "refused by test".into(),
                            },
                        );
                    } else {
                        self.opened.push((flow, target));
                        self.next_port += 1;
                        let local = SocketAddr::new(self.local_ip, self.next_port);
                        self.reg.handle_flow_opened(now, flow, local);
                    }
                }
                Output::CloseFlow { flow } => self.closed.push(flow),
                Output::CheckNetwork => {
                    self.route_checks += 1;
                    self.reg.handle_network_changed(now, self.route);
                }
                Output::Transmit(t) => {
                    let text = String::from_utf8(t.payload.clone()).expect("utf-8");
                    self.sent.push(Sent {
                        at: self.elapsed(),
                        flow: t.flow,
                        destination: t.destination,
                        text: text.clone(),
                    });
                    if self.closed.contains(&t.flow) {
                        continue;
                    }
                    let reliable = self
                        .opened
                        .iter()
                        .any(|(f, target)| *f == t.flow && target.transport.is_reliable());
                    if let Some(registrar) = self.registrars.get_mut(&t.destination) {
                        let break_after_ok = registrar.break_after_ok.filter(|_| reliable);
                        if let Some(reply) = registrar.handle(&text) {
                            self.reg
                                .handle_receive(now, t.flow, t.destination, reply.as_bytes());
                            if let Some(kind) =
                                break_after_ok.filter(|_| reply.starts_with("SIP/2.0 2"))
                            {
                                self.closed.push(t.flow);
                                self.reg.handle_flow_error(
                                    now,
                                    t.flow,
                                    FlowError {
                                        kind,
                                        detail: "closed by the test registrar after its 200 OK"
                                            .into(),
                                    },
                                );
                            }
                        }
                    }
                }
                Output::Event(e) => self.events.push((self.elapsed(), e)),
                _ => {}
            }
        }
        panic!("the core produced outputs without end");
    }

    /// Runs until `deadline` (from the start) or until `done` holds, jumping between wake-ups.
    pub fn run_until(&mut self, deadline: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        for _ in 0..100_000 {
            self.drain();
            if done(self) {
                return true;
            }
            match self.reg.poll_timeout() {
                Some(at) if at <= self.start + deadline => {
                    self.now = self.now.max(at);
                    self.reg.handle_timeout(self.now);
                }
                _ => {
                    self.now = self.now.max(self.start + deadline);
                    return done(self);
                }
            }
        }
        panic!("no progress");
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.elapsed() + d;
        self.run_until(until, |_| false);
    }

    pub fn start(&mut self) {
        self.reg.start(self.now);
        self.drain();
    }

    /// Starts and runs until the first `registered` status.
    pub fn register(&mut self) {
        self.start();
        assert!(
            self.run_until(Duration::from_secs(5), |s| s.last_status().state
                == vicifast_core::RegistrationState::Registered),
            "did not register: {:?}",
            self.last_status()
        );
    }

    pub fn statuses(&self) -> Vec<(Duration, Status)> {
        self.events
            .iter()
            .filter_map(|(at, e)| match e {
                Event::Status(s) => Some((*at, s.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn last_status(&self) -> Status {
        self.statuses()
            .last()
            .map(|(_, s)| s.clone())
            .expect("a status")
    }

    /// The most REGISTERs sent within any `window`.
    pub fn peak_registers(&self, window: Duration) -> usize {
        let at: Vec<Duration> = self.registers_sent().iter().map(|r| r.at).collect();
        peak(&at, window)
    }

    /// The most flows asked for within any `window`.
    pub fn peak_connections(&self, window: Duration) -> usize {
        peak(&self.connection_attempts, window)
    }

    /// REGISTERs sent in each whole minute of the run so far.
    pub fn registers_per_minute(&self) -> Vec<usize> {
        let minutes = self.elapsed().as_secs().div_ceil(60) as usize;
        let mut counts = vec![0; minutes.max(1)];
        for r in self.registers_sent() {
            let minute = (r.at.as_secs() / 60) as usize;
            if let Some(c) = counts.get_mut(minute) {
                *c += 1;
            }
        }
        counts
    }

    pub fn registers_sent(&self) -> Vec<&Sent> {
        self.sent
            .iter()
            .filter(|s| s.text.starts_with("REGISTER "))
            .collect()
    }

    /// Delivers a message as if `from` had sent it on the current flow.
    pub fn inject(&mut self, from: &str, text: &str) {
        self.inject_bytes(from, text.as_bytes());
    }

    /// Like [`Sim::inject`], for bytes that need not be text.
    pub fn inject_bytes(&mut self, from: &str, bytes: &[u8]) {
        let flow = self.current_flow();
        self.reg.handle_receive(self.now, flow, addr(from), bytes);
        self.drain();
    }

    /// The current flow breaks as `kind` says (the registrar closed or reset it).
    pub fn break_flow(&mut self, kind: FlowErrorKind) {
        let flow = self.current_flow();
        self.closed.push(flow);
        self.reg.handle_flow_error(
            self.now,
            flow,
            FlowError {
                kind,
                detail: "broken by the test".into(),
            },
        );
        self.drain();
    }

    /// The machine now reaches the network from `ip` (`None`: not at all); the driver would see
    /// the route event and tell the core.
    pub fn move_to(&mut self, ip: Option<&str>) {
        let ip = ip.map(|i| i.parse::<IpAddr>().unwrap());
        if let Some(ip) = ip {
            self.local_ip = ip;
        }
        self.route = ip;
        self.reg.handle_network_changed(self.now, ip);
        self.drain();
    }

    pub fn finished(&self) -> bool {
        self.events
            .iter()
            .any(|(_, e)| matches!(e, Event::Finished))
    }
}

/// The most of the sorted instants `at` within any window of length `window`.
pub fn peak(at: &[Duration], window: Duration) -> usize {
    let mut best = 0;
    let mut first = 0;
    for (last, t) in at.iter().enumerate() {
        while *t >= at[first] + window {
            first += 1;
        }
        best = best.max(last + 1 - first);
    }
    best
}
