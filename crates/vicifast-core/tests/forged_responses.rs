//! Responses are matched strictly: branch, Call-ID, CSeq and From tag must all be ours, and over
//! UDP they must come from the server we sent to. Anything else is ignored and logged.

mod harness;
use harness::*;
use std::time::Duration;
use vicifast_core::RegistrationState;

#[test]
fn forged_and_stray_responses_do_not_change_the_state() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.silent = true;
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.start();
    let req = sim.registers_sent()[0].text.clone();
    // A 200 OK listing the binding the request asked for.
    let ok = |req: &str| {
        let contact = header(req, "Contact").unwrap();
        response(req, 200, &[format!("Contact: {contact}")])
    };
    let forged = [
        ok(&req).replace("branch=z9hG4bK", "branch=z9hG4bKx"),
        ok(&req).replace(&header(&req, "Call-ID").unwrap(), "other-call"),
        ok(&req).replace("CSeq: 1 REGISTER", "CSeq: 2 REGISTER"),
        ok(&req).replace(";tag=", ";tag=x"),
    ];
    for f in &forged {
        sim.inject(REGISTRAR, f);
    }
    // A perfect response, but from another address.
    sim.inject("198.18.66.6:5060", &ok(&req));
    assert_eq!(sim.last_status().state, RegistrationState::Registering);
    // The genuine one is still accepted.
    sim.inject(REGISTRAR, &ok(&req));
    assert_eq!(
        sim.last_status().state,
        RegistrationState::Registered,
        "{:#?}",
        sim.statuses()
    );
    // Its retransmission is absorbed quietly.
    let count = sim.statuses().len();
    sim.inject(REGISTRAR, &ok(&req));
    assert_eq!(sim.statuses().len(), count);
    sim.run_for(Duration::from_secs(1));
}
