//! Network changes seen by the core: a new local address re-registers at once from a new flow,
//! removing the old contact in the same REGISTER (never a separate un-REGISTER that a registrar
//! could apply after the new binding); no route means `offline` and silence until a route
//! returns; NAT is learned from Via received/rport; keep-alives detect dead flows; waking from
//! sleep re-registers; a 200 OK that does not list our binding is corrected.

mod harness;
use harness::*;
use std::time::Duration;
use vicifast_core::{Cause, ProblemCode, RegistrationState, Transport};

fn contacts(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("Contact:"))
        .map(|l| l[8..].trim().to_owned())
        .collect()
}

fn with_instance() -> vicifast_core::AccountConfig {
    let mut c = config();
    c.instance_id = Some("urn:uuid:00000000-0000-4000-8000-000000000001".into());
    c
}

#[test]
fn address_change_registers_the_new_contact_and_removes_the_old_in_one_request() {
    let mut sim = Sim::new(with_instance(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    let old_contact = sim.last_status().contact.unwrap();
    sim.run_for(Duration::from_secs(20));
    let sent_before = sim.registers_sent().len();
    sim.move_to(Some("198.18.2.2"));
    let status = sim.last_status();
    assert_eq!(status.state, RegistrationState::Registered);
    let new_contact = status.contact.unwrap();
    assert!(
        new_contact.starts_with("sip:101@198.18.2.2:"),
        "{new_contact}"
    );
    assert_eq!(
        sim.registers_sent().last().unwrap().at,
        Duration::from_secs(20),
        "at once"
    );
    assert!(sim
        .statuses()
        .iter()
        .any(|(_, s)| s.cause == Cause::AddressChanged));
    // Every REGISTER after the change carries the new contact; the old one only as a removal,
    // listed first and without +sip.instance so instance matching cannot hit the new binding.
    for sent in &sim.registers_sent()[sent_before..] {
        let c = contacts(&sent.text);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0], format!("<{old_contact}>;expires=0"));
        assert!(c[1].starts_with(&format!("<{new_contact}>;expires=300;+sip.instance=")));
        assert!(sent.flow != sim.opened[0].0, "sent on the new flow");
    }
    let held: Vec<_> = sim.registrar().held();
    assert_eq!(held, vec![new_contact.clone()]);
    assert!(sim.closed.contains(&sim.opened[0].0), "old flow closed");
    // The next refresh no longer mentions the old contact.
    sim.run_for(Duration::from_secs(300));
    assert_eq!(
        contacts(&sim.registers_sent().last().unwrap().text).len(),
        1
    );
}

#[test]
fn a_registrar_allowing_one_contact_accepts_the_switch() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.max_contacts = Some(1);
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.register();
    sim.move_to(Some("198.18.2.2"));
    assert_eq!(sim.last_status().state, RegistrationState::Registered);
    assert!(
        sim.statuses().iter().all(|(_, s)| s.problem.is_none()),
        "no 403 on the way"
    );
    assert_eq!(sim.registrar().bindings.len(), 1);
}

#[test]
fn the_same_address_after_a_route_event_changes_nothing() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    let before = sim.registers_sent().len();
    sim.move_to(Some(LOCAL_IP));
    assert_eq!(sim.registers_sent().len(), before);
}

#[test]
fn no_route_goes_offline_quietly_then_registers_when_it_returns() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    let old_contact = sim.last_status().contact.unwrap();
    sim.move_to(None);
    let status = sim.last_status();
    assert_eq!(status.state, RegistrationState::Offline);
    assert_eq!(status.problem.unwrap().code, ProblemCode::NetworkDown);
    let sent = sim.sent.len();
    sim.run_for(Duration::from_secs(3600));
    assert_eq!(sim.sent.len(), sent, "nothing sent without a route");
    assert!(
        sim.route_checks >= 100,
        "but the route is re-checked now and then"
    );
    // The route returns on a new address (the route check finds it).
    sim.local_ip = "198.18.2.2".parse().unwrap();
    sim.route = Some(sim.local_ip);
    assert!(sim.run_until(sim.elapsed() + Duration::from_secs(31), |s| s
        .last_status()
        .state
        == RegistrationState::Registered));
    let last = sim.registers_sent().last().unwrap().text.clone();
    assert_eq!(contacts(&last)[0], format!("<{old_contact}>;expires=0"));
    assert_eq!(sim.registrar().bindings.len(), 1);
}

#[test]
fn behind_nat_registers_the_public_address_and_follows_a_rebinding() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.nat = Some(addr("198.18.100.1:61000"));
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.register();
    let status = sim.last_status();
    assert_eq!(
        status.contact.as_deref(),
        Some("sip:101@198.18.100.1:61000;transport=udp")
    );
    let held: Vec<_> = sim.registrar().held();
    assert_eq!(
        held,
        vec!["sip:101@198.18.100.1:61000;transport=udp".to_string()],
        "private contact removed"
    );
    // The NAT forgets us and maps the flow to a new port: seen at the next refresh.
    sim.registrar().nat = Some(addr("198.18.100.1:62000"));
    sim.run_for(Duration::from_secs(261));
    assert!(sim
        .statuses()
        .iter()
        .any(|(_, s)| s.cause == Cause::NatRebinding));
    let status = sim.last_status();
    assert_eq!(status.state, RegistrationState::Registered);
    assert_eq!(
        status.contact.as_deref(),
        Some("sip:101@198.18.100.1:62000;transport=udp")
    );
    assert_eq!(sim.registrar().bindings.len(), 1);
}

#[test]
fn udp_keepalives_are_sent_while_registered_and_recheck_the_route() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    sim.run_for(Duration::from_secs(100));
    let keepalives: Vec<_> = sim
        .sent
        .iter()
        .filter(|s| s.text == "\r\n\r\n")
        .map(|s| s.at.as_secs())
        .collect();
    assert_eq!(keepalives, vec![25, 50, 75, 100]);
    assert_eq!(sim.route_checks, 4);
    // The safety net: the route check finds a new address without any route event.
    sim.route = Some("198.18.2.2".parse().unwrap());
    sim.local_ip = "198.18.2.2".parse().unwrap();
    sim.run_for(Duration::from_secs(25));
    assert!(sim
        .last_status()
        .contact
        .unwrap()
        .starts_with("sip:101@198.18.2.2:"));
}

#[test]
fn a_missing_pong_on_tcp_means_the_flow_failed() {
    let mut sim = Sim::new(config_over(Transport::Tcp), "pw", FakeRegistrar::new("pw"));
    sim.register();
    // First ping at 90 s; the server answers: pongs are now expected.
    sim.run_for(Duration::from_secs(90));
    let flow = sim.current_flow();
    sim.reg.handle_pong(sim.now, flow);
    sim.drain();
    // The second ping (180 s) goes unanswered: 10 s later the flow is declared failed and
    // replaced (after a random moment under 2 s, the first quick retry).
    sim.run_for(Duration::from_secs(101));
    assert!(sim
        .statuses()
        .iter()
        .any(|(_, s)| s.cause == Cause::FlowFailed));
    assert!(
        sim.run_until(Duration::from_secs(192), |s| s.last_status().state
            == RegistrationState::Registered)
    );
    assert_ne!(sim.current_flow(), flow);
    let at = sim.registers_sent().last().unwrap().at;
    assert!(
        at >= Duration::from_secs(190) && at < Duration::from_secs(192),
        "{at:?}"
    );
}

#[test]
fn tcp_keepalives_come_well_inside_a_120_second_idle_timeout() {
    let mut sim = Sim::new(config_over(Transport::Tcp), "pw", FakeRegistrar::new("pw"));
    sim.register();
    sim.run_for(Duration::from_secs(3600));
    let flow = sim.current_flow();
    let sent: Vec<Duration> = sim
        .sent
        .iter()
        .filter(|s| s.flow == flow)
        .map(|s| s.at)
        .collect();
    let longest_silence = sent
        .windows(2)
        .map(|w| w[1] - w[0])
        .chain(std::iter::once(sim.elapsed() - sent[sent.len() - 1]))
        .max()
        .unwrap();
    // Kamailio and OpenSIPS close a TCP connection idle for 120 s.
    assert!(
        longest_silence <= Duration::from_secs(90),
        "{longest_silence:?}"
    );
    assert_eq!(sim.opened.len(), 1, "the one connection lasted the hour");
}

#[test]
fn waking_from_sleep_registers_again_at_once() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    sim.run_for(Duration::from_secs(50));
    let before = sim.registers_sent().len();
    sim.reg.handle_resumed(sim.now);
    sim.drain();
    assert!(sim
        .statuses()
        .iter()
        .any(|(_, s)| s.cause == Cause::Resumed));
    assert_eq!(sim.last_status().state, RegistrationState::Registered);
    assert!(sim.registers_sent().len() > before);
    assert_eq!(
        sim.registrar().bindings.len(),
        1,
        "old flow's contact removed"
    );
}

#[test]
fn a_200_without_our_binding_is_corrected_once() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.hide_bindings = true;
    registrar.other_contacts = vec!["sip:101@198.18.5.5:5060".into()];
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.start();
    sim.run_for(Duration::from_secs(1));
    assert!(sim
        .statuses()
        .iter()
        .any(|(_, s)| s.cause == Cause::BindingLost));
    // Bounded: it does not loop against a registrar that never lists us.
    assert!(
        sim.registers_sent().len() <= 5,
        "{}",
        sim.registers_sent().len()
    );
    assert_eq!(sim.last_status().state, RegistrationState::Registered);
}

#[test]
fn stop_after_a_switch_removes_old_and_new_contacts() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    sim.registrar().silent = true; // the switch's REGISTER gets lost...
    sim.move_to(Some("198.18.2.2"));
    sim.registrar().silent = false;
    sim.reg.stop(sim.now);
    sim.drain();
    let last = sim.registers_sent().last().unwrap().text.clone();
    let c = contacts(&last);
    assert_eq!(c.len(), 2);
    assert!(c.iter().all(|c| c.contains("expires=0")));
    assert!(sim.registrar().bindings.is_empty());
}
