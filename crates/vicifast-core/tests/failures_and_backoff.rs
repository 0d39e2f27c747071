//! Failures that may pass are retried: UDP retransmits on Timer E, times out on Timer F, fails over
//! to the next resolved target on timeout, transport error or 503, then backs off as RFC 5626 §4.5
//! says; a refresh that fails while the binding still holds is retried at once.

mod harness;
use harness::*;
use std::time::Duration;
use vicifast_core::{Cause, FlowErrorKind, ProblemCode, RegistrationState, Transport};

#[test]
fn udp_retransmits_then_times_out_then_backs_off_exponentially() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.silent = true;
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.start();
    assert!(
        sim.run_until(Duration::from_secs(40), |s| s.last_status().state
            == RegistrationState::Retrying)
    );
    let at: Vec<u128> = sim
        .registers_sent()
        .iter()
        .map(|r| r.at.as_millis())
        .collect();
    assert_eq!(
        at,
        vec![0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    let texts: Vec<_> = sim
        .registers_sent()
        .iter()
        .map(|r| r.text.clone())
        .collect();
    assert!(
        texts.windows(2).all(|w| w[0] == w[1]),
        "retransmissions are identical"
    );
    let status = sim.last_status();
    assert_eq!(sim.elapsed(), Duration::from_secs(32));
    assert_eq!(status.problem.as_ref().unwrap().code, ProblemCode::Timeout);
    let first_wait = status.next_attempt_in.unwrap();
    assert!((30..=60).contains(&first_wait), "{first_wait}");
    // Each further failure at least doubles the ceiling; the waits stay within RFC 5626 bounds.
    let mut waits = vec![first_wait];
    for _ in 0..7 {
        let before = sim.statuses().len();
        sim.run_until(Duration::from_secs(100_000), |s| {
            s.statuses().len() > before && s.last_status().cause == Cause::RetryScheduled
        });
        waits.push(sim.last_status().next_attempt_in.unwrap());
    }
    for (i, w) in waits.iter().enumerate() {
        let ceiling = (30u32 << (i + 1)).min(1800);
        assert!(
            *w >= ceiling / 2 - 1 && *w <= ceiling,
            "wait {i}: {w} not in [{}, {ceiling}]",
            ceiling / 2
        );
    }
    assert_eq!(waits.last().map(|w| *w <= 1800), Some(true));
    assert!(sim.resolves >= 8, "each attempt resolves afresh");
}

#[test]
fn tcp_does_not_retransmit() {
    let mut c = config();
    c.transport = Some(Transport::Tcp);
    let mut registrar = FakeRegistrar::new("pw");
    registrar.silent = true;
    let mut sim = Sim::new(c, "pw", registrar);
    sim.start();
    sim.run_until(Duration::from_secs(40), |s| {
        s.last_status().state == RegistrationState::Retrying
    });
    assert_eq!(sim.registers_sent().len(), 1);
    assert!(header(&sim.registers_sent()[0].text, "Via")
        .unwrap()
        .starts_with("SIP/2.0/TCP "));
    assert!(header(&sim.registers_sent()[0].text, "Contact")
        .unwrap()
        .contains(";transport=tcp>"));
}

#[test]
fn fails_over_to_the_next_target_on_timeout_refusal_and_503() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    let mut dead = FakeRegistrar::new("pw");
    dead.silent = true;
    let mut busy = FakeRegistrar::new("pw");
    busy.answer_code = Some(503);
    sim.registrars.insert(addr("198.18.0.11:5060"), dead);
    sim.registrars.insert(addr("198.18.0.12:5060"), busy);
    sim.refuse
        .insert(addr("198.18.0.13:5060"), FlowErrorKind::Refused);
    sim.resolve = Ok(vec![
        target("198.18.0.11:5060", Transport::Udp),
        target("198.18.0.12:5060", Transport::Udp),
        target("198.18.0.13:5060", Transport::Udp),
        target(REGISTRAR, Transport::Udp),
    ]);
    sim.start();
    assert!(
        sim.run_until(Duration::from_secs(60), |s| s.last_status().state
            == RegistrationState::Registered)
    );
    assert_eq!(
        sim.elapsed(),
        Duration::from_secs(32),
        "only the dead server cost a timeout"
    );
    assert_eq!(sim.last_status().server.as_deref(), Some(REGISTRAR));
    assert_eq!(
        sim.registrars[&addr("198.18.0.12:5060")].registers().len(),
        2
    );
}

#[test]
fn server_error_backs_off_honouring_retry_after() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.answer_code = Some(500);
    registrar.retry_after = Some(300);
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.start();
    sim.run_for(Duration::from_secs(1));
    let status = sim.last_status();
    assert_eq!(status.state, RegistrationState::Retrying);
    assert_eq!(status.problem.unwrap().code, ProblemCode::ServerError);
    assert_eq!(status.next_attempt_in, Some(300));
}

#[test]
fn refresh_failure_is_retried_at_once_then_the_binding_lapses_into_retrying() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    sim.registrar().silent = true;
    // Refresh at 260 s times out at 292 s; the binding (300 s) still holds: retry at once.
    sim.run_until(Duration::from_secs(293), |s| {
        s.last_status().cause == Cause::RefreshFailed
    });
    assert_eq!(sim.elapsed(), Duration::from_secs(292));
    let status = sim.last_status();
    assert_eq!(
        status.state,
        RegistrationState::Registered,
        "still bound for 8 s"
    );
    assert_eq!(status.problem.unwrap().code, ProblemCode::Timeout);
    sim.drain();
    assert_eq!(
        sim.registers_sent().last().unwrap().at,
        Duration::from_secs(292)
    );
    // At 300 s the binding is gone: the state says so.
    sim.run_until(Duration::from_secs(301), |s| {
        s.last_status().state != RegistrationState::Registered
    });
    assert_eq!(sim.elapsed(), Duration::from_secs(300));
    assert_eq!(sim.last_status().state, RegistrationState::Registering);
    assert_eq!(sim.last_status().expires_in, None);
    // The server comes back: registered again after the backoff.
    sim.registrar().silent = false;
    assert!(
        sim.run_until(Duration::from_secs(2000), |s| s.last_status().state
            == RegistrationState::Registered)
    );
}

#[test]
fn dns_failure_is_reported_and_retried() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.resolve = Err("no such name pbx.example.test".into());
    sim.start();
    let status = sim.last_status();
    assert_eq!(status.state, RegistrationState::Retrying);
    assert_eq!(status.problem.unwrap().code, ProblemCode::DnsFailure);
    sim.resolve = Ok(vec![target(REGISTRAR, Transport::Udp)]);
    assert!(
        sim.run_until(Duration::from_secs(100), |s| s.last_status().state
            == RegistrationState::Registered)
    );
}

#[test]
fn tls_certificate_failure_stops_until_the_user_acts() {
    let mut sim = Sim::new(config_over(Transport::Tls), "pw", FakeRegistrar::new("pw"));
    sim.refuse
        .insert(addr(REGISTRAR), FlowErrorKind::TlsCertificate);
    sim.start();
    sim.run_for(Duration::from_secs(24 * 3600));
    let status = sim.last_status();
    assert_eq!(
        status.state,
        RegistrationState::Failed,
        "the tray shows it needs the user"
    );
    assert_eq!(status.problem.unwrap().code, ProblemCode::TlsCertificate);
    assert_eq!(sim.connection_attempts.len(), 1, "not retried for a day");
    assert_eq!(
        sim.statuses()
            .iter()
            .filter(|(_, s)| s.state == RegistrationState::Failed)
            .count(),
        1,
        "said once"
    );
    assert_eq!(sim.reg.poll_timeout(), None);
    // Trying again is the user's call.
    sim.refuse.clear();
    sim.reg.retry_now(sim.now);
    sim.drain();
    assert_eq!(sim.last_status().state, RegistrationState::Registered);
}

#[test]
fn a_bad_certificate_on_one_server_of_several_falls_over_to_the_next() {
    let mut sim = Sim::new(config_over(Transport::Tls), "pw", FakeRegistrar::new("pw"));
    sim.refuse
        .insert(addr("198.18.0.11:5061"), FlowErrorKind::TlsCertificate);
    sim.resolve = Ok(vec![
        target("198.18.0.11:5061", Transport::Tls),
        target(REGISTRAR, Transport::Tls),
    ]);
    sim.register();
    assert_eq!(sim.last_status().server.as_deref(), Some(REGISTRAR));
}

#[test]
fn a_dropped_tcp_connection_while_registered_re_registers_within_two_seconds() {
    let mut sim = Sim::new(config_over(Transport::Tcp), "pw", FakeRegistrar::new("pw"));
    sim.register();
    sim.run_for(Duration::from_secs(10));
    let flow = sim.current_flow();
    sim.break_flow(FlowErrorKind::Closed);
    assert!(sim
        .statuses()
        .iter()
        .any(|(_, s)| s.cause == Cause::FlowFailed));
    // The first reconnect waits a random moment under 2 s, so that a registrar's thousands of
    // agents do not all come back in the same instant.
    assert!(
        sim.run_until(Duration::from_secs(12), |s| s.last_status().state
            == RegistrationState::Registered)
    );
    assert_ne!(sim.current_flow(), flow, "a new connection");
    assert_eq!(
        sim.last_status().cause,
        vicifast_core::Cause::Registered,
        "a new contact is a new binding"
    );
    let at = sim.registers_sent().last().unwrap().at;
    assert!(
        at >= Duration::from_secs(10) && at < Duration::from_secs(12),
        "{at:?}"
    );
}
