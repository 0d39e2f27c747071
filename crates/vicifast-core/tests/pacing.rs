//! The pacing rule holds whatever the registrar or the network does: REGISTERs and new
//! connections stay bounded by the backoff, and under the hard ceiling (10 REGISTERs at once then
//! one per 5 s; 5 connections at once then one per 12 s), for minutes of simulated time.
//! Each test prints the REGISTERs it saw per minute (`cargo test -- --nocapture`).

mod harness;
use harness::*;
use std::time::Duration;
use vicifast_core::{FlowErrorKind, ProblemCode, RegistrationState, Transport};

const MINUTE: Duration = Duration::from_secs(60);
/// What the ceiling lets through in any minute: the burst plus the steady rate.
const REGISTERS_PER_MINUTE_CEILING: usize = 10 + 12;
const CONNECTIONS_PER_MINUTE_CEILING: usize = 5 + 5;

fn report(name: &str, sim: &Sim) {
    println!(
        "{name}: {} REGISTERs and {} connections in {} s; per minute {:?}; peak {} REGISTERs and {} connections in a minute",
        sim.registers_sent().len(),
        sim.connection_attempts.len(),
        sim.elapsed().as_secs(),
        sim.registers_per_minute(),
        sim.peak_registers(MINUTE),
        sim.peak_connections(MINUTE),
    );
}

/// The gaps between successive connections, in seconds.
fn gaps(sim: &Sim) -> Vec<u64> {
    sim.connection_attempts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs())
        .collect()
}

fn closes_after_ok(kind: FlowErrorKind, name: &str) {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.break_after_ok = Some(kind);
    let mut sim = Sim::new(config_over(Transport::Tcp), "pw", registrar);
    sim.start();
    sim.run_for(30 * MINUTE);
    report(name, &sim);
    assert!(sim.peak_registers(MINUTE) <= REGISTERS_PER_MINUTE_CEILING);
    assert!(sim.peak_connections(MINUTE) <= CONNECTIONS_PER_MINUTE_CEILING);
    // Each 200 OK is followed by the flow dying at once: it never counts as a success, so after
    // the four quick retries the waits only grow (each drawn from [c/2, c], c doubling).
    let gaps = gaps(&sim);
    assert!(gaps.len() >= 6, "{gaps:?}");
    assert!(gaps[4..].windows(2).all(|w| w[1] >= w[0]), "{gaps:?}");
    assert!(gaps.last().is_some_and(|g| *g >= 240), "{gaps:?}");
    assert!(
        sim.registers_per_minute()[20..].iter().sum::<usize>() <= 2,
        "{:?}",
        sim.registers_per_minute()
    );
}

#[test]
fn a_registrar_that_closes_every_connection_after_its_200_ok_is_not_hammered() {
    closes_after_ok(FlowErrorKind::Closed, "close after 200 OK");
}

#[test]
fn unframeable_bytes_after_every_200_ok_are_paced_the_same() {
    // The driver closes a stream it cannot frame and reports it as a flow error.
    closes_after_ok(FlowErrorKind::Other, "junk after 200 OK");
}

#[test]
fn forty_route_changes_in_ten_seconds_to_a_refusing_server_give_one_extra_attempt() {
    let mut sim = Sim::new(config_over(Transport::Tcp), "pw", FakeRegistrar::new("pw"));
    sim.refuse.insert(addr(REGISTRAR), FlowErrorKind::Refused);
    sim.start();
    assert_eq!(sim.last_status().state, RegistrationState::Retrying);
    for _ in 0..40 {
        sim.run_for(Duration::from_millis(250));
        sim.move_to(Some(LOCAL_IP));
    }
    report("40 route changes in 10 s, server refusing", &sim);
    // The first attempt, then one pulled forward by the first change; the other 39 wait.
    assert_eq!(
        sim.connection_attempts.len(),
        2,
        "{:?}",
        sim.connection_attempts
    );
    assert_eq!(sim.last_status().state, RegistrationState::Retrying);
}

#[test]
fn route_changes_all_along_do_not_undo_the_backoff() {
    let mut sim = Sim::new(config_over(Transport::Tcp), "pw", FakeRegistrar::new("pw"));
    sim.refuse.insert(addr(REGISTRAR), FlowErrorKind::Refused);
    sim.start();
    for _ in 0..120 {
        sim.run_for(Duration::from_secs(15));
        sim.move_to(Some(LOCAL_IP));
    }
    report(
        "a route change every 15 s for 30 min, server refusing",
        &sim,
    );
    // Each wait lets one change pull an attempt forward, and that attempt's failure lengthens
    // the backoff: the attempts thin out instead of following the changes (120 of them).
    assert!(sim.connection_attempts.len() <= 14, "{:?}", gaps(&sim));
    let last_ten_minutes = sim
        .connection_attempts
        .iter()
        .filter(|at| **at >= 20 * MINUTE)
        .count();
    assert!(last_ten_minutes <= 3, "{:?}", sim.connection_attempts);
}

#[test]
fn an_address_flapping_every_250_ms_with_a_working_registrar_stays_under_the_ceiling() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    let before = (sim.registers_sent().len(), sim.connection_attempts.len());
    for i in 0..40 {
        sim.run_for(Duration::from_millis(250));
        sim.move_to(Some(if i % 2 == 0 {
            "198.18.2.2"
        } else {
            "198.18.3.3"
        }));
    }
    let during = (
        sim.registers_sent().len() - before.0,
        sim.connection_attempts.len() - before.1,
    );
    // Every change is real (a new address), so each is acted on at once until the ceiling:
    // the burst that is left, then the steady rate.
    assert!(during.1 <= 5, "{during:?}");
    assert!(during.0 <= 10, "{during:?}");
    // Once the address settles, the registration follows it.
    assert!(sim.run_until(sim.elapsed() + MINUTE, |s| {
        s.last_status().state == RegistrationState::Registered
            && s.last_status()
                .contact
                .is_some_and(|c| c.contains("198.18.3.3"))
    }));
    sim.run_for(10 * MINUTE);
    report("address flapping every 250 ms for 10 s", &sim);
    assert!(sim.peak_registers(MINUTE) <= REGISTERS_PER_MINUTE_CEILING);
    assert!(sim.peak_connections(MINUTE) <= CONNECTIONS_PER_MINUTE_CEILING);
    assert_eq!(
        sim.registrar().bindings.len(),
        1,
        "{:?}",
        sim.registrar().bindings
    );
}

#[test]
fn a_registrar_that_says_stale_nonce_forever_gets_the_backoff() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.stale_always = true;
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.start();
    sim.run_for(30 * MINUTE);
    report("stale nonce forever", &sim);
    assert!(sim.peak_registers(MINUTE) <= REGISTERS_PER_MINUTE_CEILING);
    assert_eq!(
        sim.last_status().problem.map(|p| p.code),
        Some(ProblemCode::ServerError)
    );
    // A handful per attempt (challenge, three stale answers), attempts on the backoff.
    assert!(
        sim.registers_per_minute()[20..].iter().sum::<usize>() <= 5,
        "{:?}",
        sim.registers_per_minute()
    );
}

#[test]
fn a_423_chain_ends_in_a_failure_that_needs_the_user() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.min_expires_chain = true;
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.start();
    sim.run_for(60 * MINUTE);
    report("423 with a higher Min-Expires every time", &sim);
    let status = sim.last_status();
    assert_eq!(status.state, RegistrationState::Failed);
    assert_eq!(status.problem.map(|p| p.code), Some(ProblemCode::Rejected));
    // The challenge, its answer, and three raised intervals.
    assert_eq!(sim.registers_sent().len(), 5);
}

#[test]
fn a_nat_that_remaps_the_port_on_every_answer_is_followed_a_bounded_number_of_times() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.rport_flapping = true;
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.start();
    sim.run_for(30 * MINUTE);
    report("rport flapping (UDP)", &sim);
    assert!(sim.peak_registers(MINUTE) <= REGISTERS_PER_MINUTE_CEILING);
    // Two corrections on the flow, then the refreshes alone (every 260 s).
    assert!(
        sim.registers_sent().len() <= 4 + 7,
        "{}",
        sim.registers_sent().len()
    );
}

#[test]
fn rport_flapping_and_a_registrar_closing_each_connection_stay_paced() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.rport_flapping = true;
    registrar.break_after_ok = Some(FlowErrorKind::Closed);
    let mut sim = Sim::new(config_over(Transport::Tcp), "pw", registrar);
    sim.start();
    sim.run_for(30 * MINUTE);
    report("rport flapping and close after 200 OK (TCP)", &sim);
    assert!(sim.peak_registers(MINUTE) <= REGISTERS_PER_MINUTE_CEILING);
    assert!(sim.peak_connections(MINUTE) <= CONNECTIONS_PER_MINUTE_CEILING);
    assert!(
        sim.registers_per_minute()[20..].iter().sum::<usize>() <= 2,
        "{:?}",
        sim.registers_per_minute()
    );
}

#[test]
fn the_ceiling_holds_even_for_a_user_who_keeps_pressing_retry() {
    let mut sim = Sim::new(config_over(Transport::Tcp), "pw", FakeRegistrar::new("pw"));
    sim.refuse.insert(addr(REGISTRAR), FlowErrorKind::Refused);
    sim.start();
    for _ in 0..100 {
        sim.run_for(Duration::from_millis(100));
        sim.reg.retry_now(sim.now);
        sim.drain();
    }
    report("retry pressed 100 times in 10 s, server refusing", &sim);
    // The user's command starts the backoff over, but not the ceiling: 5 at once, then one
    // per 12 s.
    assert!(
        sim.connection_attempts.len() <= 5 + 1,
        "{:?}",
        sim.connection_attempts
    );
}
