//! Drives an `EdgeProxy` on simulated time between a scripted softphone and a scripted PBX.
//!
//! The tests write the softphone's and the PBX's messages by hand, in the shapes real ones send
//! (baresip, MicroSIP, Zoiper; Asterisk and Kamailio), and read what the proxy sends each side.
//! Time only moves when a test says so: the harness then runs every timer due on the way, in
//! order.
#![allow(dead_code, clippy::unwrap_used)]

use md5::{Digest as _, Md5};
use sha2::Sha256;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use vicifast_core::edge::{
    EdgeConfig, EdgeEvent, EdgeOutput, EdgeProxy, FromPbx, LocalPeer, PbxFlow, SoftphoneState,
    SoftphoneStatus,
};
use vicifast_core::{AccountConfig, FlowId, Password, ServerAddress, Transport};

pub const PBX: &str = "198.18.0.1:5060";
/// Our end of the registration's flow.
pub const LOCAL: &str = "198.18.1.2:40000";
/// The softphone's SIP socket on loopback.
pub const SOFTPHONE: &str = "127.0.0.1:5062";
pub const DOMAIN: &str = "example.test";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn udp(peer: &str) -> LocalPeer {
    LocalPeer {
        transport: Transport::Udp,
        addr: addr(peer),
        connection: None,
    }
}

/// A password made up for this run (never one written in the source).
pub fn made_up_password() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("pw-{nanos:x}")
}

pub fn account() -> AccountConfig {
    let mut c = AccountConfig::new("agent", ServerAddress::parse(PBX).unwrap(), "101");
    c.domain = Some(DOMAIN.into());
    c
}

pub fn flow(id: u64, local: &str, public: Option<&str>) -> PbxFlow {
    PbxFlow {
        flow: FlowId(id),
        transport: Transport::Udp,
        remote: addr(PBX),
        local: addr(local),
        public: public.map(addr),
    }
}

pub struct EdgeSim {
    pub proxy: EdgeProxy,
    pub start: Instant,
    pub now: Instant,
    pub password: String,
    pub flow: PbxFlow,
    /// Everything sent to the PBX: (flow, destination, text).
    pub to_pbx: Vec<(FlowId, SocketAddr, String)>,
    pub to_softphone: Vec<(LocalPeer, String)>,
    pub events: Vec<EdgeEvent>,
}

impl EdgeSim {
    pub fn new() -> Self {
        Self::with_config(EdgeConfig::default())
    }

    pub fn with_config(config: EdgeConfig) -> Self {
        let password = made_up_password();
        let start = Instant::now();
        let proxy =
            EdgeProxy::new(&account(), Password::new(password.clone()), config, [9; 32]).unwrap();
        let mut sim = Self {
            proxy,
            start,
            now: start,
            password,
            flow: flow(1, LOCAL, None),
            to_pbx: Vec::new(),
            to_softphone: Vec::new(),
            events: Vec::new(),
        };
        sim.proxy.start(start);
        let f = sim.flow;
        sim.proxy.handle_pbx_flow(start, Some(f));
        sim.drain();
        sim
    }

    /// A proxy with baresip registered.
    pub fn registered() -> Self {
        let mut sim = Self::new();
        sim.register_baresip();
        sim
    }

    pub fn set_flow(&mut self, flow: Option<PbxFlow>) {
        if let Some(f) = flow {
            self.flow = f;
        }
        self.proxy.handle_pbx_flow(self.now, flow);
        self.drain();
    }

    pub fn drain(&mut self) {
        while let Some(output) = self.proxy.poll_output() {
            match output {
                EdgeOutput::ToPbx(t) => {
                    self.to_pbx.push((
                        t.flow,
                        t.destination,
                        String::from_utf8(t.payload).unwrap(),
                    ));
                }
                EdgeOutput::ToSoftphone(t) => {
                    assert!(t.peer.addr.ip().is_loopback(), "only loopback");
                    self.to_softphone
                        .push((t.peer, String::from_utf8(t.payload).unwrap()));
                }
                EdgeOutput::Event(e) => self.events.push(e),
                _ => panic!("unexpected output"),
            }
        }
    }

    /// The softphone sends `text` from its usual UDP socket.
    pub fn softphone(&mut self, text: &str) {
        self.softphone_from(udp(SOFTPHONE), text);
    }

    pub fn softphone_from(&mut self, peer: LocalPeer, text: &str) {
        self.proxy
            .handle_softphone_receive(self.now, peer, text.as_bytes());
        self.drain();
    }

    /// The PBX sends `text` on the current flow.
    pub fn pbx(&mut self, text: &str) -> FromPbx {
        let taken = self.proxy.handle_pbx_receive(
            self.now,
            self.flow.flow,
            self.flow.remote,
            text.as_bytes(),
        );
        self.drain();
        taken
    }

    /// Moves time forward by `by`, running every timer due on the way.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        for _ in 0..100_000 {
            match self.proxy.poll_timeout() {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.proxy.handle_timeout(self.now);
                    self.drain();
                }
                _ => break,
            }
        }
        self.now = until;
    }

    pub fn take_pbx(&mut self) -> Vec<String> {
        self.to_pbx.drain(..).map(|(_, _, t)| t).collect()
    }

    pub fn take_softphone(&mut self) -> Vec<String> {
        self.to_softphone.drain(..).map(|(_, t)| t).collect()
    }

    pub fn status(&self) -> SoftphoneStatus {
        self.proxy.softphone_status(self.now)
    }

    pub fn state(&self) -> SoftphoneState {
        self.status().state
    }

    /// The softphone statuses published, in order.
    pub fn statuses(&self) -> Vec<SoftphoneStatus> {
        self.events
            .iter()
            .filter_map(|e| match e {
                EdgeEvent::Softphone(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    /// REGISTERs the way baresip does: unauthenticated first, then the challenge answered.
    /// Returns the final response.
    pub fn register(&mut self, register: &str, password: &str) -> String {
        self.softphone(register);
        let challenge = self.take_softphone().pop().expect("an answer");
        if !challenge.starts_with("SIP/2.0 401 ") {
            return challenge;
        }
        let www = header(&challenge, "WWW-Authenticate").unwrap();
        let authorization = authorize(
            &www,
            "REGISTER",
            &format!("sip:{DOMAIN}"),
            "101",
            password,
            1,
        );
        let again = with_header(&bump_cseq(register), "Authorization", &authorization);
        self.softphone(&again);
        self.take_softphone().pop().expect("an answer")
    }

    /// Registers baresip with the right password and checks it was accepted.
    pub fn register_baresip(&mut self) {
        let password = self.password.clone();
        let answer = self.register(&baresip_register("z9hG4bKreg1"), &password);
        assert!(answer.starts_with("SIP/2.0 200 "), "{answer}");
        self.to_softphone.clear();
    }
}

/// baresip 1.0's REGISTER through its outbound proxy.
pub fn baresip_register(branch: &str) -> String {
    format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5062;branch={branch};rport\r\n\
Contact: <sip:101-0x5621a4d0@127.0.0.1:5062;transport=udp>;expires=600\r\n\
Max-Forwards: 70\r\n\
Route: <sip:127.0.0.1:5070;lr>\r\n\
To: <sip:101@{DOMAIN}>\r\n\
From: <sip:101@{DOMAIN}>;tag=bd2a5f0c\r\n\
Call-ID: 3f1e0c7d9a2b4e6f\r\n\
CSeq: 21380 REGISTER\r\n\
User-Agent: baresip v1.0.0 (x86_64/linux)\r\n\
Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE\r\n\
Supported: replaces,norefersub\r\n\
Content-Length: 0\r\n\r\n"
    )
}

/// The `Authorization` value a softphone computes for a challenge (qop=auth).
pub fn authorize(
    challenge: &str,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
    nc: u32,
) -> String {
    let realm = digest_param(challenge, "realm").unwrap();
    let nonce = digest_param(challenge, "nonce").unwrap();
    let algorithm = digest_param(challenge, "algorithm").unwrap_or_else(|| "MD5".into());
    let hash = |s: String| -> String {
        if algorithm.eq_ignore_ascii_case("SHA-256") {
            format!("{:x}", Sha256::digest(s.as_bytes()))
        } else {
            format!("{:x}", Md5::digest(s.as_bytes()))
        }
    };
    let ha1 = hash(format!("{user}:{realm}:{password}"));
    let ha2 = hash(format!("{method}:{uri}"));
    let cnonce = "5f2e8d1c";
    let response = hash(format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={algorithm}, cnonce=\"{cnonce}\", qop=auth, nc={nc:08x}"
    )
}

fn digest_param(challenge: &str, name: &str) -> Option<String> {
    challenge
        .trim_start_matches("Digest ")
        .split(", ")
        .find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"').to_owned())
        })
}

/// The first value of a header (long name, case-insensitive).
pub fn header(text: &str, name: &str) -> Option<String> {
    headers(text, name).into_iter().next()
}

/// Every field line of a header, in order.
pub fn headers(text: &str, name: &str) -> Vec<String> {
    text.split("\r\n\r\n")
        .next()
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
        .collect()
}

pub fn first_line(text: &str) -> &str {
    text.lines().next().unwrap()
}

pub fn body(text: &str) -> &str {
    text.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The top Via's branch.
pub fn top_branch(text: &str) -> String {
    let via = header(text, "Via").unwrap();
    let first = via.split(',').next().unwrap();
    first
        .split(';')
        .find_map(|p| p.trim().strip_prefix("branch=").map(str::to_owned))
        .unwrap()
}

/// `text` with one more header line after the start line.
pub fn with_header(text: &str, name: &str, value: &str) -> String {
    let (start, rest) = text.split_once("\r\n").unwrap();
    format!("{start}\r\n{name}: {value}\r\n{rest}")
}

fn bump_cseq(text: &str) -> String {
    let cseq = header(text, "CSeq").unwrap();
    let (n, m) = cseq.split_once(' ').unwrap();
    let n: u32 = n.parse().unwrap();
    text.replace(&format!("CSeq: {cseq}"), &format!("CSeq: {} {m}", n + 1))
        .replace("branch=z9hG4bK", "branch=z9hG4bK2")
}

/// The response a UA sends to `request`: every Via, Record-Route (for a 2xx), From, To (tagged),
/// Call-ID and CSeq copied; `extra` header lines and `body` added.
pub fn respond(request: &str, code: u16, reason: &str, extra: &[&str], body: &str) -> String {
    let mut text = format!("SIP/2.0 {code} {reason}\r\n");
    for via in headers(request, "Via") {
        text.push_str(&format!("Via: {via}\r\n"));
    }
    if (200..300).contains(&code) {
        for rr in headers(request, "Record-Route") {
            text.push_str(&format!("Record-Route: {rr}\r\n"));
        }
    }
    text.push_str(&format!("From: {}\r\n", header(request, "From").unwrap()));
    let to = header(request, "To").unwrap();
    if to.contains(";tag=") || code == 100 {
        text.push_str(&format!("To: {to}\r\n"));
    } else {
        text.push_str(&format!("To: {to};tag=uas{code}\r\n"));
    }
    text.push_str(&format!(
        "Call-ID: {}\r\n",
        header(request, "Call-ID").unwrap()
    ));
    text.push_str(&format!("CSeq: {}\r\n", header(request, "CSeq").unwrap()));
    for line in extra {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    text
}

/// An SDP body as baresip offers it when its only route is loopback.
pub fn loopback_sdp() -> String {
    "v=0\r\no=- 1983213337 3019513436 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 10400 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n".into()
}

/// Asterisk's offer.
pub fn pbx_sdp() -> String {
    "v=0\r\no=- 1717 1717 IN IP4 198.18.0.1\r\ns=Asterisk\r\nc=IN IP4 198.18.0.1\r\nt=0 0\r\nm=audio 14000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n".into()
}
