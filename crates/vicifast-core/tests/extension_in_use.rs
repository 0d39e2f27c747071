//! Another device on the extension. A registrar that keeps one contact per extension (Asterisk)
//! gives the binding to whichever device registered last and lists only that device in every
//! 200 OK: binding checks between refreshes notice the other device, report `extension_in_use`
//! once per episode, never take the binding back sooner than the normal refresh, and leave the
//! choice to the user ("use this computer" or "stop here").
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

mod harness;
use harness::*;
use std::time::Duration;
use vicifast_core::{
    Cause, Event, ExtensionInUse, InUseDetection, ProblemCode, RegistrationState, Status,
};

const OTHER: &str = "sip:101@198.18.5.5:5062";
const CHECK: Duration = Duration::from_secs(120);

/// The product's default configuration, binding checks included.
fn checked_config() -> vicifast_core::AccountConfig {
    let mut c = config();
    c.binding_check_interval = vicifast_core::AccountConfig::new(
        "default",
        vicifast_core::ServerAddress::parse(REGISTRAR).unwrap(),
        "101",
    )
    .binding_check_interval;
    assert_eq!(c.binding_check_interval, Some(CHECK));
    c
}

fn one_contact_registrar() -> FakeRegistrar {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.replace_existing = true;
    registrar
}

/// The other device registers (or refreshes): the registrar now holds only it.
fn other_registers(sim: &mut Sim) {
    sim.registrar().bindings = vec![(OTHER.into(), 300)];
}

fn in_use_events(sim: &Sim) -> Vec<(Duration, ExtensionInUse)> {
    sim.events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::ExtensionInUse(info) => Some((*at, info.clone())),
            _ => None,
        })
        .collect()
}

/// REGISTERs that carry our Contact (registrations and refreshes, not queries), and when.
fn registrations(sim: &Sim) -> Vec<Duration> {
    sim.registers_sent()
        .into_iter()
        .filter(|r| header(&r.text, "Contact").is_some())
        .map(|r| r.at)
        .collect()
}

fn registered_on_one_contact_registrar() -> Sim {
    let mut sim = Sim::new(checked_config(), "pw", one_contact_registrar());
    sim.register();
    sim
}

#[test]
fn a_device_that_takes_the_extension_is_reported_within_the_check_interval() {
    let mut sim = registered_on_one_contact_registrar();
    sim.run_for(Duration::from_secs(10));
    let taken_at = sim.elapsed();
    other_registers(&mut sim);
    let found = sim.run_until(
        taken_at + CHECK.mul_f64(1.25) + Duration::from_secs(1),
        |s| !in_use_events(s).is_empty(),
    );
    assert!(found, "not reported: {:#?}", sim.last_status());
    let (at, info) = in_use_events(&sim).remove(0);
    println!(
        "extension_in_use {:.0} s after the other device registered",
        (at - taken_at).as_secs_f64()
    );
    assert_eq!(info.detected_by, InUseDetection::BindingCheck);
    assert_eq!(info.others.len(), 1);
    assert_eq!(info.others[0].contact, OTHER);
    assert_eq!(info.others[0].address.as_deref(), Some("198.18.5.5:5062"));
    assert!(info.message.contains("198.18.5.5:5062"), "{}", info.message);
    let status = sim.last_status();
    assert_eq!(status.cause, Cause::ExtensionInUse);
    assert_eq!(
        status.problem.map(|p| p.code),
        Some(ProblemCode::ExtensionInUse)
    );
    assert_eq!(status.extension_in_use.as_deref(), Some(&info));
    // The check was one REGISTER without Contact, answered with the nonce we already had.
    let check = sim.registers_sent().last().unwrap().text.clone();
    assert!(header(&check, "Contact").is_none());
    assert!(header(&check, "Authorization").is_some());
}

#[test]
fn two_devices_swapping_the_extension_stay_at_the_refresh_rate_and_report_once() {
    let mut sim = registered_on_one_contact_registrar();
    let before = sim.registers_sent().len();
    // The other device registers, then refreshes every 260 s for an hour, as we do.
    let mut next_other = Duration::from_secs(30);
    let end = Duration::from_secs(3600);
    while sim.elapsed() < end {
        sim.run_until(next_other, |_| false);
        other_registers(&mut sim);
        next_other += Duration::from_secs(260);
    }
    sim.run_until(end, |_| false);
    assert_eq!(in_use_events(&sim).len(), 1, "one report per episode");
    assert!(sim
        .statuses()
        .iter()
        .skip_while(|(_, s)| s.cause != Cause::ExtensionInUse)
        .all(|(_, s)| s.problem.as_ref().map(|p| p.code) == Some(ProblemCode::ExtensionInUse)));
    // Our own registrations keep the refresh schedule: never pulled forward by what checks see.
    // (The first registration is two REGISTERs: challenged, then answered.)
    let ours = registrations(&sim);
    for pair in ours[1..].windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_secs(259),
            "took the binding back early: {ours:?}"
        );
    }
    // Refreshes (one REGISTER each, the nonce is reused) plus checks (one per 90–150 s).
    let per_minute = sim.registers_per_minute();
    let total = sim.registers_sent().len() - before;
    println!("REGISTERs per minute during the swap: {per_minute:?} (total {total} in 60 min)");
    assert!(
        total <= 60 / 4 + 60 * 60 / 90,
        "{total} REGISTERs in an hour"
    );
    assert!(per_minute.iter().all(|&n| n <= 2), "{per_minute:?}");
}

#[test]
fn use_this_computer_registers_at_once_and_ends_the_episode() {
    let mut sim = registered_on_one_contact_registrar();
    other_registers(&mut sim);
    assert!(sim.run_until(Duration::from_secs(300), |s| !in_use_events(s).is_empty()));
    let registers = registrations(&sim).len();
    sim.reg.take_over(sim.now);
    sim.drain();
    assert_eq!(
        registrations(&sim).len(),
        registers + 1,
        "one REGISTER, now"
    );
    let held = sim.registrar().held();
    assert_eq!(held.len(), 1);
    assert_ne!(held[0], OTHER, "this computer holds the extension");
    let status = sim.last_status();
    assert_eq!(status.state, RegistrationState::Registered);
    assert!(status.problem.is_none() && status.extension_in_use.is_none());
    assert!(sim
        .statuses()
        .iter()
        .any(|(_, s)| s.cause == Cause::TakeOver));
    // Outside an episode it does nothing.
    sim.reg.take_over(sim.now);
    sim.drain();
    assert_eq!(registrations(&sim).len(), registers + 1);
    // The other device takes it back: a new episode, reported again.
    other_registers(&mut sim);
    let now = sim.elapsed();
    assert!(
        sim.run_until(now + Duration::from_secs(300), |s| in_use_events(s).len()
            == 2)
    );
}

#[test]
fn use_this_computer_while_a_check_is_in_flight_registers_once_it_is_answered() {
    let mut sim = registered_on_one_contact_registrar();
    other_registers(&mut sim);
    assert!(sim.run_until(Duration::from_secs(300), |s| !in_use_events(s).is_empty()));
    // The next check goes out but its answer is lost for now.
    sim.registrar().silent = true;
    let checks = sim.registers_sent().len();
    let now = sim.elapsed();
    assert!(
        sim.run_until(now + Duration::from_secs(200), |s| s.registers_sent().len()
            > checks)
    );
    sim.reg.take_over(sim.now);
    sim.drain();
    sim.registrar().silent = false;
    let registrations_before = registrations(&sim).len();
    let now = sim.elapsed();
    // The check is retransmitted (Timer E) and answered; the REGISTER follows at once, not at
    // the refresh (at the soonest 5 s after a check).
    sim.run_until(now + Duration::from_secs(2), |s| {
        registrations(s).len() > registrations_before
    });
    assert_eq!(registrations(&sim).len(), registrations_before + 1);
    assert_ne!(sim.registrar().held(), vec![OTHER.to_string()]);
}

#[test]
fn stop_here_removes_only_our_binding() {
    let mut sim = registered_on_one_contact_registrar();
    other_registers(&mut sim);
    assert!(sim.run_until(Duration::from_secs(300), |s| !in_use_events(s).is_empty()));
    sim.reg.stop(sim.now);
    sim.drain();
    assert!(sim.finished());
    assert_eq!(sim.registrar().held(), vec![OTHER.to_string()]);
    let last = sim.registers_sent().last().unwrap().text.clone();
    assert!(header(&last, "Contact").unwrap().contains("expires=0"));
    assert!(!last.contains(OTHER));
}

#[test]
fn qualify_requests_that_stop_bring_the_check_forward() {
    let mut c = checked_config();
    c.binding_check_interval = Some(Duration::from_secs(1200));
    let mut sim = Sim::new(c, "pw", one_contact_registrar());
    sim.register();
    // The registrar qualifies us every 30 s...
    for n in 0..4 {
        let at = Duration::from_secs(30 * (n + 1));
        sim.run_until(at, |_| false);
        sim.inject(REGISTRAR, &options(&format!("z9hG4bKq{n}")));
    }
    // ...then qualifies the other device instead.
    let taken_at = sim.elapsed();
    other_registers(&mut sim);
    assert!(
        sim.run_until(taken_at + Duration::from_secs(90), |s| !in_use_events(s)
            .is_empty())
    );
    let (at, info) = in_use_events(&sim).remove(0);
    assert_eq!(info.detected_by, InUseDetection::QualifyStopped);
    assert!(at - taken_at <= Duration::from_secs(76), "{at:?}");
}

#[test]
fn the_episode_ends_when_the_other_device_is_gone_for_two_lifetimes() {
    let mut sim = registered_on_one_contact_registrar();
    other_registers(&mut sim);
    assert!(sim.run_until(Duration::from_secs(300), |s| !in_use_events(s).is_empty()));
    // Our next refresh takes it back and the other device is signed out for good.
    let last: Status = {
        sim.run_for(Duration::from_secs(1500));
        sim.last_status()
    };
    assert_eq!(last.state, RegistrationState::Registered);
    assert!(last.problem.is_none(), "{last:#?}");
    assert!(last.extension_in_use.is_none());
    assert!(sim
        .statuses()
        .iter()
        .any(|(_, s)| s.cause == Cause::ExtensionFree));
    assert_eq!(in_use_events(&sim).len(), 1);
}

#[test]
fn a_registrar_that_refuses_queries_is_not_asked_again() {
    let mut sim = registered_on_one_contact_registrar();
    // Queries (no Contact) are answered 403 from now on; REGISTERs still work.
    sim.registrar().forbid_bad_credentials = false;
    let queries = |s: &Sim| {
        s.registers_sent()
            .iter()
            .filter(|r| header(&r.text, "Contact").is_none())
            .count()
    };
    sim.registrar().answer_code = Some(403);
    sim.run_until(Duration::from_secs(200), |s| queries(s) == 1);
    sim.registrar().answer_code = None;
    sim.run_for(Duration::from_secs(3600));
    assert_eq!(queries(&sim), 1);
    assert_eq!(sim.last_status().state, RegistrationState::Registered);
    assert!(sim.last_status().problem.is_none());
}

#[test]
fn a_registrar_keeping_several_contacts_lists_other_devices_without_alarm() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.other_contacts = vec![OTHER.into()];
    let mut sim = Sim::new(checked_config(), "pw", registrar);
    sim.register();
    sim.run_for(Duration::from_secs(3600));
    assert!(in_use_events(&sim).is_empty());
    assert!(sim.last_status().problem.is_none());
}

/// A device that appears beside ours (on a registrar keeping several contacts) is published
/// with the next binding check, not only with the next refresh: the edge proxy reads the
/// listing to tell a softphone that also registers directly. An unchanged listing is not
/// published again.
#[test]
fn a_check_that_lists_a_new_device_publishes_the_bindings_once() {
    let mut sim = Sim::new(checked_config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    sim.run_for(Duration::from_secs(10));
    let appeared_at = sim.elapsed();
    let first_refresh = registrations(&sim)[0] + Duration::from_secs(260);
    sim.registrar().other_contacts = vec![OTHER.into()];
    let lists_other = |s: &Status| s.bindings.iter().any(|b| b.contact.contains("198.18.5.5"));
    let found = sim.run_until(
        appeared_at + CHECK.mul_f64(1.25) + Duration::from_secs(1),
        |s| s.statuses().iter().any(|(_, st)| lists_other(st)),
    );
    assert!(
        found,
        "the listing was not published: {:#?}",
        sim.last_status()
    );
    let (at, status) = sim
        .statuses()
        .into_iter()
        .find(|(_, st)| lists_other(st))
        .unwrap();
    assert!(
        at < first_refresh,
        "published only with the refresh, at {at:?}"
    );
    assert_eq!(status.cause, Cause::BindingsChanged);
    assert_eq!(status.state, RegistrationState::Registered);
    assert!(status.problem.is_none());
    sim.run_for(Duration::from_secs(3600));
    let changes = sim
        .statuses()
        .iter()
        .filter(|(_, st)| st.cause == Cause::BindingsChanged)
        .count();
    assert_eq!(changes, 1, "an unchanged listing was published again");
}

fn options(branch: &str) -> String {
    format!(
        "OPTIONS sip:101@198.18.1.2:40001 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch={branch}\r\nFrom: <sip:qualify@example.test>;tag=q1\r\nTo: <sip:101@example.test>\r\nCall-ID: q-{branch}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Two VICIfast registrations on one extension, sharing a registrar that keeps one contact: the
/// second registers 30 s after the first. Runs an hour in 1 s steps and returns, per device, when
/// it first reported `extension_in_use` (after the second registered) and its REGISTERs per
/// minute.
fn two_devices(check: Option<Duration>) -> [(Option<Duration>, f64); 2] {
    let mut configs = [checked_config(), checked_config()];
    for c in &mut configs {
        c.binding_check_interval = check;
    }
    let [a, b] = configs;
    let mut sims = [
        Sim::with_seed(a, "pw", one_contact_registrar(), [1; 32]),
        Sim::with_seed(b, "pw", one_contact_registrar(), [2; 32]),
    ];
    sims[1].next_port = 45000;
    let second_at = Duration::from_secs(30);
    let end = Duration::from_secs(3600);
    sims[0].start();
    let mut shared = sims[0].registrar().bindings.clone();
    let mut step = Duration::ZERO;
    while step < end {
        step += Duration::from_secs(1);
        for (n, sim) in sims.iter_mut().enumerate() {
            sim.registrar().bindings = shared.clone();
            if n == 1 && step == second_at {
                sim.run_until(second_at, |_| false);
                sim.start();
            }
            sim.run_until(step, |_| false);
            shared = sim.registrar().bindings.clone();
        }
    }
    sims.map(|sim| {
        let found = in_use_events(&sim)
            .first()
            .map(|(at, _)| at.saturating_sub(second_at));
        let per_minute = sim.registers_sent().len() as f64 / 60.0;
        (found, per_minute)
    })
}

#[test]
fn two_vicifast_devices_on_one_extension_both_find_out_at_the_refresh_rate() {
    let before = two_devices(None);
    let after = two_devices(Some(CHECK));
    for (n, name) in ["first", "second"].iter().enumerate() {
        println!(
            "{name} device: extension_in_use {:?} after the second registered; REGISTERs/min {:.2} without binding checks, {:.2} with",
            after[n].0.map(|d| d.as_secs()),
            before[n].1,
            after[n].1
        );
        assert_eq!(before[n].0, None, "without checks nobody is told");
        // The first within a check interval; the second by its own refresh (290 s), after the
        // first took the binding back at its refresh (260 s).
        let within = Duration::from_secs(260);
        assert!(after[n].0.is_some_and(|d| d <= within), "{name}: {after:?}");
        // One refresh per 260 s plus one check per 90–150 s: never a ping-pong.
        assert!(
            after[n].1 <= 60.0 / 260.0 + 60.0 / 90.0 + 0.1,
            "{name}: {after:?}"
        );
    }
}
