//! A binding this installation left at the registrar (the app crashed, or the laptop changed
//! address) is recognised as ours even when the registrar lists bindings by URI only, as
//! Asterisk does; it is removed in the same REGISTER that adds the new one, also when a
//! registrar keeping one contact per extension answered our REGISTER with 403 because of it.

mod harness;
use harness::*;
use std::time::Duration;
use vicifast_core::{Event, ProblemCode, Purpose, RegistrationState};

const INSTANCE: &str = "urn:uuid:00000000-0000-4000-8000-000000000001";

fn with_instance() -> vicifast_core::AccountConfig {
    let mut c = config();
    c.instance_id = Some(INSTANCE.into());
    c
}

/// The registrar after a client with our instance registered and was killed (no un-REGISTER).
fn left_behind(registrar: FakeRegistrar) -> (FakeRegistrar, String) {
    let mut crashed = Sim::new(with_instance(), "pw", registrar);
    crashed.register();
    let contact = crashed.last_status().contact.expect("a contact");
    (crashed.registrar().clone(), contact)
}

#[test]
fn a_one_contact_registrar_holding_our_old_binding_gets_it_replaced() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.max_contacts = Some(1);
    let (mut registrar, old) = left_behind(registrar);
    registrar.received.clear();
    let mut sim = Sim::new(with_instance(), "pw", registrar);
    sim.next_port = 41000; // the restarted client gets another port
    sim.start();
    sim.run_for(Duration::from_secs(5));
    let status = sim.last_status();
    assert_eq!(status.state, RegistrationState::Registered, "{status:#?}");
    let new = status.contact.expect("a contact");
    assert_ne!(new, old);
    assert_eq!(sim.registrar().held(), vec![new], "the old binding is gone");
    // On the way it was listed as ours and stale, and no problem was reported.
    assert!(sim.statuses().iter().any(|(_, s)| s
        .bindings
        .iter()
        .any(|b| b.contact == old && b.ours && b.stale)));
    assert!(sim.statuses().iter().all(|(_, s)| s.problem.is_none()));
    // 401, answer (403), query (200), REGISTER removing the old and adding the new (200).
    assert_eq!(sim.registrar().registers().len(), 4);
}

#[test]
fn a_registrar_keeping_several_contacts_loses_our_old_one_at_once() {
    let (mut registrar, old) = left_behind(FakeRegistrar::new("pw"));
    registrar.received.clear();
    let mut sim = Sim::new(with_instance(), "pw", registrar);
    sim.next_port = 41000;
    sim.register();
    sim.run_for(Duration::from_secs(1));
    let held = sim.registrar().held();
    assert!(!held.contains(&old), "{held:?}");
    assert_eq!(held.len(), 1);
    assert_eq!(sim.last_status().state, RegistrationState::Registered);
}

#[test]
fn bindings_lists_our_old_binding_as_ours_and_stale() {
    let (mut registrar, old) = left_behind(FakeRegistrar::new("pw"));
    registrar
        .bindings
        .push(("sip:101@198.18.5.5:5060".into(), 100));
    let mut sim = Sim::with_purpose(with_instance(), "pw", registrar, Purpose::ListBindings);
    sim.next_port = 41000;
    sim.start();
    sim.run_for(Duration::from_secs(1));
    let listed = sim
        .events
        .iter()
        .find_map(|(_, e)| match e {
            Event::Bindings(b) => Some(b.clone()),
            _ => None,
        })
        .expect("a listing");
    let marks: Vec<(String, bool, bool)> = listed
        .into_iter()
        .map(|b| (b.contact, b.ours, b.stale))
        .collect();
    assert_eq!(
        marks,
        vec![
            (old, true, true),
            ("sip:101@198.18.5.5:5060".to_string(), false, false)
        ]
    );
}

#[test]
fn a_one_contact_registrar_held_by_another_device_is_a_refusal_not_a_password_problem() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.max_contacts = Some(1);
    registrar.bindings = vec![("sip:101@198.18.5.5:5060".into(), 3600)];
    let mut sim = Sim::new(with_instance(), "pw", registrar);
    sim.start();
    sim.run_for(Duration::from_secs(3600));
    let status = sim.last_status();
    assert_eq!(status.state, RegistrationState::Failed);
    let problem = status.problem.expect("a problem");
    assert_eq!(problem.code, ProblemCode::Forbidden);
    assert!(
        problem.detail.contains("1 other binding"),
        "{}",
        problem.detail
    );
    assert_eq!(
        sim.registrar().bindings.len(),
        1,
        "the other device keeps its binding"
    );
    assert_eq!(sim.registrar().registers().len(), 3);
}
