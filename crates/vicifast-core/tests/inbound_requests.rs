//! Requests the registrar sends to our flow are answered: OPTIONS (qualify) with 200 and our
//! capabilities, NOTIFY with 200, INVITE with 480 plus an incoming-call event (retransmitted until
//! the ACK), anything else with 405. Requests from other addresses and malformed input are
//! dropped without an answer.

mod harness;
use harness::*;
use std::time::Duration;
use vicifast_core::Event;

fn request(method: &str, branch: &str) -> String {
    format!(
        "{method} sip:101@198.18.1.2:40001 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch={branch}\r\nVia: SIP/2.0/UDP 198.18.0.7:5060;branch=z9hG4bKup\r\nFrom: <sip:ping@example.test>;tag=r1\r\nTo: <sip:101@example.test>\r\nCall-ID: q-{branch}\r\nCSeq: 5 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

fn registered() -> Sim {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    sim
}

fn replies(sim: &Sim) -> Vec<Sent> {
    sim.sent
        .iter()
        .filter(|s| s.text.starts_with("SIP/2.0 "))
        .cloned()
        .collect()
}

#[test]
fn options_from_the_registrar_gets_200_with_allow() {
    let mut sim = registered();
    sim.inject(REGISTRAR, &request("OPTIONS", "z9hG4bKo1"));
    let r = replies(&sim);
    assert_eq!(r.len(), 1);
    let text = &r[0].text;
    assert!(text.starts_with("SIP/2.0 200 OK\r\n"));
    assert!(header(text, "Allow").unwrap().contains("INVITE"));
    assert!(header(text, "Accept").is_some());
    assert!(header(text, "To").unwrap().contains(";tag="));
    assert_eq!(header(text, "CSeq").as_deref(), Some("5 OPTIONS"));
    assert_eq!(text.matches("Via: ").count(), 2, "all Vias copied in order");
    assert_eq!(r[0].destination, addr(REGISTRAR));
}

#[test]
fn notify_gets_200_and_unknown_methods_405() {
    let mut sim = registered();
    sim.inject(REGISTRAR, &request("NOTIFY", "z9hG4bKn1"));
    sim.inject(REGISTRAR, &request("SUBSCRIBE", "z9hG4bKs1"));
    let r = replies(&sim);
    assert!(r[0].text.starts_with("SIP/2.0 200 "));
    assert!(r[1].text.starts_with("SIP/2.0 405 "));
    assert!(header(&r[1].text, "Allow").is_some());
}

#[test]
fn invite_gets_480_raises_an_event_and_is_retransmitted_until_ack() {
    let mut sim = registered();
    sim.inject(REGISTRAR, &request("INVITE", "z9hG4bKi1"));
    assert!(sim
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::IncomingCall(c) if c.from == "sip:ping@example.test")));
    sim.run_for(Duration::from_millis(1600));
    let r = replies(&sim);
    assert_eq!(r.len(), 3, "480 at 0, 0.5 s and 1.5 s");
    assert!(r.iter().all(|x| x.text.starts_with("SIP/2.0 480 ")));
    // A retransmitted INVITE gets the same answer and no second event.
    sim.inject(REGISTRAR, &request("INVITE", "z9hG4bKi1"));
    assert_eq!(replies(&sim).len(), 4);
    assert_eq!(
        sim.events
            .iter()
            .filter(|(_, e)| matches!(e, Event::IncomingCall(_)))
            .count(),
        1
    );
    sim.inject(REGISTRAR, &request("ACK", "z9hG4bKi1"));
    sim.run_for(Duration::from_secs(10));
    assert_eq!(replies(&sim).len(), 4, "no retransmission after the ACK");
}

#[test]
fn requests_from_other_addresses_are_dropped() {
    let mut sim = registered();
    sim.inject("198.18.9.9:5060", &request("OPTIONS", "z9hG4bKscan"));
    sim.inject("198.18.9.9:5060", &request("INVITE", "z9hG4bKscan2"));
    assert!(replies(&sim).is_empty());
    assert!(!sim
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::IncomingCall(_))));
}

#[test]
fn anyone_may_reach_us_when_configured() {
    let mut c = config();
    c.accept_requests_from_anyone = true;
    let mut sim = Sim::new(c, "pw", FakeRegistrar::new("pw"));
    sim.register();
    sim.inject("198.18.9.9:5060", &request("OPTIONS", "z9hG4bKx"));
    assert_eq!(replies(&sim)[0].destination, addr("198.18.9.9:5060"));
}

#[test]
fn malformed_input_is_dropped_and_changes_nothing() {
    let mut sim = registered();
    let before = sim.last_status();
    let junk: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\r\n\r\n".to_vec(),
        b"OPTIONS sip:x SIP/2.0\r\n\r\n".to_vec(),
        b"OPTIONS sip:x SIP/2.0\r\nVia: nonsense\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: x\r\n\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKnope\r\n\r\n".to_vec(),
        vec![0xff; 2000],
        "INVITE sip:☎ SIP/2.0\r\nVia: SIP/2.0/UDP ☎;branch=☎\r\n\r\n".as_bytes().to_vec(),
    ];
    for bytes in junk {
        let flow = sim.current_flow();
        sim.reg
            .handle_receive(sim.now, flow, addr(REGISTRAR), &bytes);
        sim.drain();
    }
    assert!(replies(&sim).is_empty());
    assert_eq!(sim.last_status(), before);
}
