//! The registration and the edge proxy share the flow as the edge module's rule says: the edge
//! proxy follows the registration's flow through registering and network changes, an INVITE on
//! the flow reaches the softphone (the registration does not answer it 480), and the registrar's
//! qualify OPTIONS is still answered by the registration.

#![allow(clippy::unwrap_used)]

mod harness;
use harness::*;
use std::time::Instant;
use vicifast_core::edge::SoftphoneProblemCode;
use vicifast_core::edge::{
    follow_flow, receive_on_flow, EdgeConfig, EdgeOutput, EdgeProxy, FixedContact,
};
use vicifast_core::{BindingInfo, Password};

fn edge(now: Instant) -> EdgeProxy {
    let edge_config = EdgeConfig {
        fixed_contact: Some(FixedContact::parse("sip:127.0.0.1:5062").unwrap()),
        ..EdgeConfig::default()
    };
    let mut proxy = EdgeProxy::new(&config(), Password::new("pw"), edge_config, [3; 32]).unwrap();
    proxy.start(now);
    proxy
}

fn invite(uri: &str, to: &str, branch: &str) -> String {
    format!(
        "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch={branch}\r\nFrom: <sip:200@example.test>;tag=a1\r\nTo: <{to}>\r\nCall-ID: c-{branch}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:200@198.18.0.1:5060>\r\nContent-Length: 0\r\n\r\n"
    )
}

fn options(uri: &str, to: &str, branch: &str) -> String {
    format!(
        "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch={branch}\r\nFrom: <sip:ping@example.test>;tag=q1\r\nTo: <{to}>\r\nCall-ID: q-{branch}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

fn drain_edge(proxy: &mut EdgeProxy) -> (Vec<String>, Vec<String>) {
    let (mut to_pbx, mut to_softphone) = (Vec::new(), Vec::new());
    while let Some(output) = proxy.poll_output() {
        match output {
            EdgeOutput::ToPbx(t) => to_pbx.push(String::from_utf8(t.payload).unwrap()),
            EdgeOutput::ToSoftphone(t) => to_softphone.push(String::from_utf8(t.payload).unwrap()),
            _ => {}
        }
    }
    (to_pbx, to_softphone)
}

#[test]
fn the_edge_proxy_follows_the_registrations_flow() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    let mut proxy = edge(sim.now);
    assert!(!follow_flow(&mut proxy, &sim.reg, sim.now), "no flow yet");
    sim.register();
    assert!(follow_flow(&mut proxy, &sim.reg, sim.now));
    let flow = *proxy.pbx_flow().unwrap();
    assert_eq!(flow, sim.reg.pbx_flow().unwrap());
    assert_eq!(flow.remote, addr(REGISTRAR));
    assert!(
        !follow_flow(&mut proxy, &sim.reg, sim.now),
        "nothing changed"
    );

    sim.local_ip = "198.18.5.9".parse().unwrap();
    sim.move_to(Some("198.18.5.9"));
    follow_flow(&mut proxy, &sim.reg, sim.now);
    let moved = *proxy.pbx_flow().unwrap();
    assert_ne!(moved.flow, flow.flow, "a network change opens a new flow");
    assert_eq!(moved.local.ip().to_string(), "198.18.5.9");
    assert!(sim.reg.contact().unwrap().contains("198.18.5.9"));
}

#[test]
fn an_invite_on_the_flow_goes_to_the_softphone_not_to_the_registration() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    let mut proxy = edge(sim.now);
    let flow = sim.current_flow();
    let contact = sim.reg.contact().unwrap().to_owned();
    let sent_before = sim.sent.len();
    let text = invite(&contact, "sip:101@example.test", "z9hG4bKi1");
    receive_on_flow(
        &mut sim.reg,
        Some(&mut proxy),
        sim.now,
        flow,
        addr(REGISTRAR),
        text.as_bytes(),
    );
    sim.drain();
    assert!(
        sim.sent[sent_before..]
            .iter()
            .all(|s| !s.text.starts_with("SIP/2.0 480")),
        "the registration must not refuse the call"
    );
    let (to_pbx, to_softphone) = drain_edge(&mut proxy);
    assert!(
        to_pbx.iter().any(|t| t.starts_with("SIP/2.0 100 ")),
        "{to_pbx:?}"
    );
    assert!(
        to_softphone
            .iter()
            .any(|t| t.starts_with("INVITE sip:101@127.0.0.1:5062")),
        "{to_softphone:?}"
    );
}

#[test]
fn the_registrars_qualify_is_still_answered_by_the_registration() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    let mut proxy = edge(sim.now);
    let flow = sim.current_flow();
    let contact = sim.reg.contact().unwrap().to_owned();
    let sent_before = sim.sent.len();
    let text = options(&contact, &contact, "z9hG4bKq1");
    receive_on_flow(
        &mut sim.reg,
        Some(&mut proxy),
        sim.now,
        flow,
        addr(REGISTRAR),
        text.as_bytes(),
    );
    sim.drain();
    assert!(sim.sent[sent_before..]
        .iter()
        .any(|s| s.text.starts_with("SIP/2.0 200 OK") && s.text.contains("q-z9hG4bKq1")));
    let (to_pbx, to_softphone) = drain_edge(&mut proxy);
    assert!(to_pbx.is_empty() && to_softphone.iter().all(|t| !t.contains("q-z9hG4bKq1")));
}

#[test]
fn without_an_edge_proxy_the_registration_answers_as_before() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    let flow = sim.current_flow();
    let contact = sim.reg.contact().unwrap().to_owned();
    let text = invite(&contact, "sip:101@example.test", "z9hG4bKi2");
    receive_on_flow(
        &mut sim.reg,
        None,
        sim.now,
        flow,
        addr(REGISTRAR),
        text.as_bytes(),
    );
    sim.drain();
    assert!(sim.sent.iter().any(|s| s.text.starts_with("SIP/2.0 480")));
}

#[test]
fn a_direct_registration_from_this_computer_is_named_and_clears_when_gone() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    let mut proxy = edge(sim.now);
    follow_flow(&mut proxy, &sim.reg, sim.now);
    let ours = sim.reg.contact().unwrap().to_owned();
    let binding = |contact: &str, ours: bool| BindingInfo {
        contact: contact.into(),
        expires_in: Some(60),
        ours,
        stale: false,
    };
    let direct = format!("sip:101@{LOCAL_IP}:5062");
    proxy.handle_bindings(
        sim.now,
        &[
            binding(&ours, true),
            binding(&direct, false),
            binding("sip:101@198.18.9.9:5060", false),
        ],
    );
    let problem = proxy.softphone_status(sim.now).problem.unwrap();
    assert_eq!(problem.code, SoftphoneProblemCode::AlsoRegisteredDirectly);
    assert!(problem.detail.contains(&direct) && !problem.detail.contains("198.18.9.9"));
    assert!(problem.action.contains("outbound proxy"));

    proxy.handle_bindings(sim.now, &[binding(&ours, true)]);
    assert_eq!(proxy.softphone_status(sim.now).problem, None);
}
