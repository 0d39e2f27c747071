//! What the edge proxy's core costs per call: the time `EdgeProxy` takes to relay an INVITE from
//! the PBX to the softphone and the softphone's 200 OK (with SDP) back, with no sockets, as p50,
//! p95 and p99 over 19,000 calls. The whole path, driver and sockets included and beside
//! Kamailio, is measured by `make bench`; this isolates the sans-IO rules.
//!
//! `cargo run --release -p vicifast-core --example edge_relay_cost` (`TRACE=1` keeps the support
//! trace on, as the product ships).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use vicifast_core::edge::{EdgeConfig, EdgeOutput, EdgeProxy, FixedContact, LocalPeer, PbxFlow};
use vicifast_core::{AccountConfig, FlowId, Password, ServerAddress, Transport};

const CALLS: u32 = 20_000;
const WARM_UP: u32 = 1_000;
const PBX_SDP: &str = "v=0\r\no=- 1 1 IN IP4 198.18.0.1\r\ns=-\r\nc=IN IP4 198.18.0.1\r\nt=0 0\r\nm=audio 14000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n";

fn main() {
    let pbx: SocketAddr = "198.18.0.1:5060".parse().unwrap();
    let softphone = LocalPeer {
        transport: Transport::Udp,
        addr: "127.0.0.1:5062".parse().unwrap(),
        connection: None,
    };
    let mut account =
        AccountConfig::new("bench", ServerAddress::parse("198.18.0.1").unwrap(), "101");
    account.domain = Some("example.test".into());
    let config = EdgeConfig {
        fixed_contact: Some(FixedContact::parse("127.0.0.1:5062").unwrap()),
        trace: std::env::var_os("TRACE").is_some(),
        ..EdgeConfig::default()
    };
    let mut proxy = EdgeProxy::new(&account, Password::new("unused"), config, [1; 32]).unwrap();
    let mut now = Instant::now();
    proxy.start(now);
    proxy.handle_pbx_flow(
        now,
        Some(PbxFlow {
            flow: FlowId(1),
            transport: Transport::Udp,
            remote: pbx,
            local: "198.18.1.2:40000".parse().unwrap(),
            public: None,
        }),
    );
    let mut micros = Vec::new();
    for call in 0..CALLS {
        // Five calls a second keep the transaction table (calls linger 32 s) well within its cap.
        now += Duration::from_millis(200);
        // Time passes (transactions expire, checks fall due); the softphone answers its checks.
        proxy.handle_timeout(now);
        let checks = drain(&mut proxy);
        answer_checks(&mut proxy, now, softphone, checks);

        let invite = invite(call);
        let started = Instant::now();
        let _ = proxy.handle_pbx_receive(now, FlowId(1), pbx, invite.as_bytes());
        let sent = drain(&mut proxy);
        let relay_in = started.elapsed();
        let (relayed, checks): (Vec<_>, Vec<_>) =
            sent.into_iter().partition(|m| m.starts_with("INVITE "));
        let relayed = relayed.first().expect("the INVITE was relayed");
        let ok = answer(relayed);
        let started = Instant::now();
        proxy.handle_softphone_receive(now, softphone, ok.as_bytes());
        drain(&mut proxy);
        let relay_out = started.elapsed();
        answer_checks(&mut proxy, now, softphone, checks);
        if call >= WARM_UP {
            micros.push((relay_in + relay_out).as_secs_f64() * 1e6);
        }
    }
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q) as usize];
    println!(
        "edge proxy core, INVITE in + 200 OK back, {} calls, trace {}: p50 {:.1} us, p95 {:.1} us, p99 {:.1} us",
        micros.len(),
        if std::env::var_os("TRACE").is_some() { "on" } else { "off" },
        at(0.5),
        at(0.95),
        at(0.99)
    );
}

/// What the proxy sent the softphone, as text; everything else is dropped.
fn drain(proxy: &mut EdgeProxy) -> Vec<String> {
    let mut to_softphone = Vec::new();
    while let Some(output) = proxy.poll_output() {
        if let EdgeOutput::ToSoftphone(t) = output {
            to_softphone.push(String::from_utf8(t.payload).unwrap());
        }
    }
    to_softphone
}

fn answer_checks(proxy: &mut EdgeProxy, now: Instant, softphone: LocalPeer, sent: Vec<String>) {
    for check in sent.iter().filter(|m| m.starts_with("OPTIONS ")) {
        proxy.handle_softphone_receive(now, softphone, response(check, "", "").as_bytes());
        drain(proxy);
    }
}

fn invite(call: u32) -> String {
    format!(
        "INVITE sip:101@198.18.1.2:40000 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;rport;branch=z9hG4bKb{call}\r\nRecord-Route: <sip:198.18.0.1;lr>\r\nFrom: <sip:200@example.test>;tag=f{call}\r\nTo: <sip:101@example.test>\r\nCall-ID: c{call}\r\nCSeq: 1 INVITE\r\nContact: <sip:200@198.18.0.7>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{PBX_SDP}",
        PBX_SDP.len()
    )
}

/// The softphone's 200 OK with its loopback SDP.
fn answer(invite: &str) -> String {
    let sdp = PBX_SDP.replace("198.18.0.1", "127.0.0.1");
    let extra = "Contact: <sip:101@127.0.0.1:5062>\r\nContent-Type: application/sdp\r\n";
    response(invite, extra, &sdp)
}

/// A 200 OK copying what RFC 3261 §8.2.6.2 (and §12.1.1 for Record-Route) says.
fn response(request: &str, extra: &str, body: &str) -> String {
    let mut text = String::from("SIP/2.0 200 OK\r\n");
    let head = request.split("\r\n\r\n").next().unwrap();
    for line in head.lines().skip(1) {
        let name = line.split(':').next().unwrap();
        if ["Via", "Record-Route", "From", "Call-ID", "CSeq"].contains(&name) {
            text.push_str(line);
            text.push_str("\r\n");
        } else if name == "To" {
            text.push_str(line);
            text.push_str(";tag=uas\r\n");
        }
    }
    text.push_str(extra);
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    text
}
