//! A registration answers the digest challenge, honours the granted expiry, refreshes ahead of it
//! with the same Call-ID and a rising CSeq, and reports every binding the registrar lists.

mod harness;
use harness::*;
use std::time::Duration;
use vicifast_core::{Cause, RegistrationState};

#[test]
fn registers_after_a_challenge_and_reports_our_binding() {
    let mut sim = Sim::new(config(), "s3cret", FakeRegistrar::new("s3cret"));
    sim.register();
    let registers = sim.registers_sent();
    assert_eq!(
        registers.len(),
        2,
        "one unauthenticated, one with credentials"
    );
    assert!(header(&registers[0].text, "Authorization").is_none());
    let auth = header(&registers[1].text, "Authorization").expect("credentials");
    assert!(auth.contains("nc=00000001") && auth.contains("qop=auth"));
    let status = sim.last_status();
    assert_eq!(status.cause, Cause::Registered);
    assert_eq!(status.expires_in, Some(300));
    assert_eq!(status.next_refresh_in, Some(260));
    assert_eq!(status.server.as_deref(), Some(REGISTRAR));
    let contact = status.contact.clone().expect("contact");
    assert!(contact.starts_with("sip:101@198.18.1.2:"), "{contact}");
    assert_eq!(status.bindings.len(), 1);
    assert!(status.bindings[0].ours);
    // The request is well-formed for a registrar: rport, AOR in From/To, Contact with expires.
    let first = &registers[0].text;
    assert!(first.starts_with("REGISTER sip:example.test SIP/2.0\r\n"));
    assert!(header(first, "Via")
        .unwrap()
        .contains(";rport;branch=z9hG4bK"));
    assert!(header(first, "From")
        .unwrap()
        .starts_with("<sip:101@example.test>;tag="));
    assert_eq!(
        header(first, "To").as_deref(),
        Some("<sip:101@example.test>")
    );
    assert!(header(first, "Contact").unwrap().ends_with(";expires=300"));
    assert_eq!(header(first, "Content-Length").as_deref(), Some("0"));
}

#[test]
fn refreshes_at_the_computed_time_keeping_call_id_and_raising_cseq() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    sim.run_for(Duration::from_secs(600));
    let registers = sim.registers_sent();
    let call_ids: Vec<_> = registers
        .iter()
        .map(|r| header(&r.text, "Call-ID").unwrap())
        .collect();
    assert!(
        call_ids.windows(2).all(|w| w[0] == w[1]),
        "one Call-ID: {call_ids:?}"
    );
    let cseqs: Vec<u32> = registers
        .iter()
        .map(|r| {
            header(&r.text, "CSeq")
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(cseqs.windows(2).all(|w| w[1] == w[0] + 1), "{cseqs:?}");
    let branches: Vec<_> = registers
        .iter()
        .map(|r| header(&r.text, "Via").unwrap())
        .collect();
    assert!(
        branches.windows(2).all(|w| w[0] != w[1]),
        "a new branch per request"
    );
    // Refreshes at 260 s and 520 s, pre-authorised with the next nonce count: no new challenge.
    let at: Vec<u64> = registers.iter().map(|r| r.at.as_secs()).collect();
    assert_eq!(at, vec![0, 0, 260, 520]);
    assert!(header(&registers[2].text, "Authorization")
        .unwrap()
        .contains("nc=00000002"));
    assert_eq!(sim.registrar().registers().len(), 4);
    let causes: Vec<_> = sim.statuses().iter().map(|(_, s)| s.cause).collect();
    assert_eq!(
        causes,
        vec![
            Cause::Started,
            Cause::Registered,
            Cause::Refreshed,
            Cause::Refreshed
        ]
    );
}

#[test]
fn honours_a_shorter_granted_expiry() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.max_grant = Some(60);
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.register();
    let status = sim.last_status();
    assert_eq!(
        (status.expires_in, status.next_refresh_in),
        (Some(60), Some(30))
    );
    sim.run_for(Duration::from_secs(31));
    assert_eq!(sim.registers_sent().len(), 3);
    assert_eq!(sim.registers_sent()[2].at, Duration::from_secs(30));
}

#[test]
fn raises_the_interval_on_423_to_min_expires() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.min_expires = Some(1800);
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.register();
    let last = sim.registers_sent().last().unwrap().text.clone();
    assert!(header(&last, "Contact").unwrap().ends_with(";expires=1800"));
    assert_eq!(header(&last, "Expires").as_deref(), Some("1800"));
    assert_eq!(sim.last_status().expires_in, Some(1800));
}

#[test]
fn lists_every_binding_of_the_extension_and_marks_ours() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.other_contacts = vec![
        "sip:101@198.18.5.5:5060".into(),
        "sip:101@198.18.5.6:5062;transport=tcp".into(),
    ];
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.register();
    let bindings = sim.last_status().bindings;
    assert_eq!(bindings.len(), 3);
    assert_eq!(bindings.iter().filter(|b| b.ours).count(), 1);
    assert!(
        bindings
            .iter()
            .any(|b| b.contact == "sip:101@198.18.5.6:5062;transport=tcp"
                && b.expires_in == Some(100))
    );
}

#[test]
fn state_serialises_with_the_keys_scripts_rely_on() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    let json = serde_json::to_value(sim.last_status()).unwrap();
    for key in [
        "state",
        "contact",
        "expires_in",
        "problem",
        "bindings",
        "next_refresh_in",
        "server",
        "transport",
    ] {
        assert!(json.get(key).is_some(), "missing {key}: {json}");
    }
    assert_eq!(json["state"], "registered");
    assert_eq!(json["problem"], serde_json::Value::Null);
    assert_eq!(sim.last_status().state, RegistrationState::Registered);
}
