//! Stopping removes our binding (Expires 0) and gives up after 2 s without an answer; the one-shot
//! purposes list the bindings, or remove only this machine's.

mod harness;
use harness::*;
use std::time::Duration;
use vicifast_core::{Event, Purpose, RegistrationState};

#[test]
fn stop_unregisters_our_contact() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    sim.reg.stop(sim.now);
    sim.drain();
    let last = sim.registers_sent().last().unwrap().text.clone();
    assert!(header(&last, "Contact").unwrap().ends_with(";expires=0"));
    assert_eq!(header(&last, "Expires").as_deref(), Some("0"));
    assert!(header(&last, "Authorization").is_some(), "pre-authorised");
    assert!(sim.registrar().bindings.is_empty());
    assert_eq!(sim.last_status().state, RegistrationState::Unregistered);
    assert!(sim.finished());
}

#[test]
fn stop_gives_up_after_two_seconds_without_answer() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    sim.registrar().silent = true;
    sim.reg.stop(sim.now);
    let stopped_at = sim.elapsed();
    assert!(sim.run_until(Duration::from_secs(60), |s| s.finished()));
    assert_eq!(sim.elapsed() - stopped_at, Duration::from_secs(2));
}

#[test]
fn stop_during_the_first_register_still_unregisters_within_two_seconds() {
    // The unanswered REGISTER may have reached the registrar: remove what it may have bound.
    let mut registrar = FakeRegistrar::new("pw");
    registrar.silent = true;
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.start();
    sim.reg.stop(sim.now);
    assert!(sim.run_until(Duration::from_secs(60), |s| s.finished()));
    assert_eq!(sim.elapsed(), Duration::from_secs(2));
    let last = sim.registers_sent().last().unwrap().text.clone();
    assert_eq!(header(&last, "Expires").as_deref(), Some("0"));
    assert_eq!(sim.reg.poll_timeout(), None);
}

#[test]
fn stop_without_a_flow_finishes_at_once() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.resolve = Err("no such name".into());
    sim.start();
    sim.reg.stop(sim.now);
    sim.drain();
    assert!(sim.finished());
    assert!(sim.registers_sent().is_empty());
}

#[test]
fn list_bindings_sends_no_contact() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.bindings = vec![("sip:101@198.18.5.5:5060".into(), 120)];
    let mut sim = Sim::with_purpose(config(), "pw", registrar, Purpose::ListBindings);
    sim.start();
    sim.run_for(Duration::from_secs(1));
    assert!(sim
        .registers_sent()
        .iter()
        .all(|r| header(&r.text, "Contact").is_none()));
    let listed = sim.events.iter().find_map(|(_, e)| match e {
        Event::Bindings(b) => Some(b.clone()),
        _ => None,
    });
    assert_eq!(listed.unwrap()[0].contact, "sip:101@198.18.5.5:5060");
    assert!(sim.finished());
    assert_eq!(sim.registrar().bindings.len(), 1, "nothing changed");
}

#[test]
fn remove_local_removes_only_this_machines_bindings() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.bindings = vec![
        ("sip:101@198.18.1.2:39999;transport=udp".into(), 120),
        ("sip:101@198.18.5.5:5060".into(), 120),
    ];
    let mut sim = Sim::with_purpose(config(), "pw", registrar, Purpose::RemoveLocal);
    sim.start();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(
        sim.registrar().bindings,
        vec![("sip:101@198.18.5.5:5060".to_string(), 120)]
    );
    let removed = sim.events.iter().find_map(|(_, e)| match e {
        Event::Removed(r) => Some(r.clone()),
        _ => None,
    });
    assert_eq!(
        removed.unwrap(),
        vec!["sip:101@198.18.1.2:39999;transport=udp".to_string()]
    );
    assert!(sim.finished());
}
