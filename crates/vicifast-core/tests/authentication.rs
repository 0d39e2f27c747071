//! Digest authentication as registrars use it: wrong passwords stop at once without hammering,
//! stale nonces are answered without counting as failures, 407 and SHA-256 work, and new
//! credentials start over.

mod harness;
use harness::*;
use std::time::Duration;
use vicifast_core::{Password, ProblemCode, RegistrationState};

#[test]
fn wrong_password_fails_after_exactly_two_registers_and_stays_quiet() {
    let mut sim = Sim::new(config(), "wrong", FakeRegistrar::new("right"));
    sim.start();
    sim.run_for(Duration::from_secs(24 * 3600));
    assert_eq!(
        sim.registrar().registers().len(),
        2,
        "no retry with the same credentials"
    );
    let status = sim.last_status();
    assert_eq!(status.state, RegistrationState::Failed);
    let problem = status.problem.expect("problem");
    assert_eq!(problem.code, ProblemCode::WrongPassword);
    assert!(problem.message.contains("password"));
    assert!(problem.detail.contains("401"));
    assert_eq!(status.next_attempt_in, None);
    assert_eq!(sim.reg.poll_timeout(), None, "nothing scheduled");
}

#[test]
fn new_password_after_failure_registers() {
    let mut sim = Sim::new(config(), "wrong", FakeRegistrar::new("right"));
    sim.start();
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.last_status().state, RegistrationState::Failed);
    sim.reg.set_password(sim.now, Password::new("right"));
    assert!(
        sim.run_until(Duration::from_secs(20), |s| s.last_status().state
            == RegistrationState::Registered)
    );
    assert_eq!(sim.last_status().problem, None);
}

#[test]
fn stale_nonce_is_answered_without_failing() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    sim.registrar().stale_next = true;
    sim.run_for(Duration::from_secs(261));
    // Refresh with old credentials → 401 stale → answered → 200.
    assert_eq!(sim.registers_sent().len(), 4);
    assert_eq!(sim.last_status().state, RegistrationState::Registered);
    assert_eq!(sim.last_status().problem, None);
}

#[test]
fn a_changed_nonce_on_refresh_is_not_mistaken_for_a_wrong_password() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    // The registrar forgets its nonce (restart): our pre-emptive credentials get a fresh 401
    // without stale=true. That is one more challenge to answer, not a wrong password.
    sim.registrar().nonce_rotate();
    sim.run_for(Duration::from_secs(261));
    assert_eq!(sim.last_status().state, RegistrationState::Registered);
    assert_eq!(sim.registers_sent().len(), 4);
}

#[test]
fn proxy_authentication_with_sha256() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.proxy_challenge = true;
    registrar.algorithm = "SHA-256";
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.register();
    let last = sim.registers_sent().last().unwrap().text.clone();
    assert!(header(&last, "Proxy-Authorization")
        .unwrap()
        .contains("algorithm=SHA-256"));
}

#[test]
fn challenge_without_qop_is_answered_rfc2069_style() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.qop = None; // Asterisk chan_sip
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.register();
    assert!(!header(&sim.registers_sent()[1].text, "Authorization")
        .unwrap()
        .contains("qop"));
}

#[test]
fn auth_user_differs_from_extension() {
    let mut c = config();
    c.auth_user = Some("agent-7".into());
    let mut sim = Sim::new(c, "pw", FakeRegistrar::new("pw"));
    sim.register();
    let auth = header(&sim.registers_sent()[1].text, "Authorization").unwrap();
    assert!(auth.contains("username=\"agent-7\""));
    assert!(header(&sim.registers_sent()[1].text, "From")
        .unwrap()
        .contains("sip:101@"));
}

#[test]
fn a_403_to_a_register_without_credentials_is_forbidden() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.no_auth = true;
    registrar.answer_code = Some(403);
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.start();
    sim.run_for(Duration::from_secs(3600));
    let status = sim.last_status();
    assert_eq!(status.state, RegistrationState::Failed);
    assert_eq!(status.problem.unwrap().code, ProblemCode::Forbidden);
    assert_eq!(sim.registrar().registers().len(), 1);
}

#[test]
fn a_403_to_the_answer_to_a_challenge_is_a_password_problem() {
    // Asterisk's chan_sip with alwaysauthreject: a wrong password gets 403, not 401.
    let mut registrar = FakeRegistrar::new("right");
    registrar.forbid_bad_credentials = true;
    let mut sim = Sim::new(config(), "wrong", registrar);
    sim.start();
    sim.run_for(Duration::from_secs(3600));
    let status = sim.last_status();
    assert_eq!(status.state, RegistrationState::Failed);
    let problem = status.problem.unwrap();
    assert_eq!(problem.code, ProblemCode::WrongPassword);
    assert!(problem.message.contains("password"), "{}", problem.message);
    assert!(
        problem.message.contains("register from this computer"),
        "{}",
        problem.message
    );
    assert!(problem.detail.starts_with("403"), "{}", problem.detail);
    assert_eq!(
        sim.registrar().registers().len(),
        2,
        "no retry with the same password"
    );
}

#[test]
fn a_403_after_the_password_was_accepted_stays_forbidden() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    // The registrar forgets the nonce and then refuses the extension outright.
    sim.registrar().nonce_rotate();
    sim.registrar().answer_code = Some(403);
    sim.run_for(Duration::from_secs(300));
    let problem = sim.last_status().problem.unwrap();
    assert_eq!(problem.code, ProblemCode::Forbidden, "{problem:?}");
}

#[test]
fn with_an_instance_id_a_wrong_password_answered_with_403_is_still_a_password_problem() {
    let mut c = config();
    c.instance_id = Some("urn:uuid:00000000-0000-4000-8000-000000000001".into());
    let mut registrar = FakeRegistrar::new("right");
    registrar.forbid_bad_credentials = true;
    let mut sim = Sim::new(c, "wrong", registrar);
    sim.start();
    sim.run_for(Duration::from_secs(3600));
    let problem = sim.last_status().problem.unwrap();
    assert_eq!(problem.code, ProblemCode::WrongPassword);
    // The challenge, its answer, and one query for the bindings with the same credentials.
    assert_eq!(sim.registrar().registers().len(), 3);
}

#[test]
fn stopping_after_a_failure_keeps_the_failure_as_the_last_status() {
    let mut sim = Sim::new(config(), "wrong", FakeRegistrar::new("right"));
    sim.start();
    sim.run_for(Duration::from_secs(1));
    sim.reg.stop(sim.now);
    sim.drain();
    assert!(sim.finished());
    assert_eq!(sim.last_status().state, RegistrationState::Failed);
    assert_eq!(
        sim.registrar().registers().len(),
        2,
        "no un-REGISTER for a binding never made"
    );
}
