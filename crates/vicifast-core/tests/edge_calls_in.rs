//! A call from the PBX reaches the softphone through VICIfast (RFC 3261 §16): 100 Trying upstream
//! at once, the Request-URI set to the softphone's contact, our Via pushed, a double
//! Record-Route, Max-Forwards decremented; responses come back with our Via popped and the
//! softphone's SDP pointed at the flow's address; ACK and BYE pass both ways along the route set;
//! CANCEL is answered and carried downstream; the registrar's qualify stays the registration's.

mod edge_harness;
use edge_harness::*;
use std::time::Duration;
use vicifast_core::edge::{EdgeEvent, FromPbx};

const SOFTPHONE_CONTACT: &str = "sip:101-0x5621a4d0@127.0.0.1:5062;transport=udp";
const OUR_RR_SOFTPHONE: &str = "<sip:127.0.0.1:5070;transport=udp;lr;vicifast>";
const OUR_RR_PBX: &str = "<sip:198.18.1.2:40000;transport=udp;lr;vicifast>";

/// An INVITE from another phone, as Kamailio (the registrar) forwards it to our contact.
fn kamailio_invite(branch: &str) -> String {
    let sdp = pbx_sdp();
    format!(
        "INVITE sip:101@198.18.1.2:40000;transport=udp;ob SIP/2.0\r\n\
Record-Route: <sip:198.18.0.1;lr>\r\n\
Via: SIP/2.0/UDP 198.18.0.1:5060;branch={branch}\r\n\
Via: SIP/2.0/UDP 198.18.0.7:5060;rport=5060;branch=z9hG4bKcaller1\r\n\
Max-Forwards: 69\r\n\
From: <sip:200@example.test>;tag=caller\r\n\
To: <sip:101@example.test>\r\n\
Call-ID: call-in-1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:200@198.18.0.7:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// Registered softphone, INVITE relayed; returns the INVITE as the softphone got it.
fn ringing_call(sim: &mut EdgeSim) -> String {
    sim.register_baresip();
    assert_eq!(sim.pbx(&kamailio_invite("z9hG4bKk1")), FromPbx::Handled);
    let to_softphone = sim.take_softphone();
    assert_eq!(to_softphone.len(), 2, "the INVITE and a health check");
    assert!(first_line(&to_softphone[1]).starts_with("OPTIONS "));
    to_softphone[0].clone()
}

#[test]
fn invite_is_relayed_with_our_via_double_record_route_and_the_softphones_uri() {
    let mut sim = EdgeSim::new();
    let invite = ringing_call(&mut sim);
    assert_eq!(
        first_line(&invite),
        format!("INVITE {SOFTPHONE_CONTACT} SIP/2.0")
    );
    let vias = headers(&invite, "Via");
    assert_eq!(vias.len(), 3);
    assert!(vias[0].starts_with("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKvfs"));
    assert!(vias[1].starts_with("SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKk1"));
    assert_eq!(
        headers(&invite, "Record-Route"),
        vec![OUR_RR_SOFTPHONE, OUR_RR_PBX, "<sip:198.18.0.1;lr>"]
    );
    assert_eq!(header(&invite, "Max-Forwards").as_deref(), Some("68"));
    assert_eq!(body(&invite), pbx_sdp(), "the PBX's SDP is left alone");
    assert_eq!(
        header(&invite, "Content-Length").unwrap(),
        pbx_sdp().len().to_string()
    );

    let upstream = sim.take_pbx();
    assert_eq!(upstream.len(), 1);
    assert!(upstream[0].starts_with("SIP/2.0 100 Trying\r\n"));
    assert_eq!(headers(&upstream[0], "Via").len(), 2);
    assert!(!header(&upstream[0], "To").unwrap().contains("tag="));
    assert!(sim
        .events
        .iter()
        .any(|e| matches!(e, EdgeEvent::IncomingCall(c) if c.from == "sip:200@example.test" && c.call_id == "call-in-1")));
}

#[test]
fn ringing_and_answer_come_back_with_our_via_popped_and_sdp_fixed() {
    let mut sim = EdgeSim::new();
    let invite = ringing_call(&mut sim);
    sim.take_pbx();
    sim.softphone(&respond(&invite, 100, "Trying", &[], ""));
    assert!(sim.take_pbx().is_empty(), "100 is hop by hop");
    let contact = format!("Contact: <{SOFTPHONE_CONTACT}>");
    sim.softphone(&respond(&invite, 180, "Ringing", &[&contact], ""));
    let ringing = sim.take_pbx();
    assert_eq!(ringing.len(), 1);
    assert!(ringing[0].starts_with("SIP/2.0 180 Ringing\r\n"));
    let vias = headers(&ringing[0], "Via");
    assert_eq!(vias.len(), 2);
    assert!(vias[0].contains("branch=z9hG4bKk1"));

    let sdp = loopback_sdp();
    sim.softphone(&respond(
        &invite,
        200,
        "OK",
        &[&contact, "Content-Type: application/sdp"],
        &sdp,
    ));
    let ok = sim.take_pbx();
    assert_eq!(ok.len(), 1);
    let ok = &ok[0];
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"));
    assert_eq!(
        headers(ok, "Record-Route"),
        vec![OUR_RR_SOFTPHONE, OUR_RR_PBX, "<sip:198.18.0.1;lr>"]
    );
    let answer = body(ok);
    assert!(answer.contains("\r\nc=IN IP4 198.18.1.2\r\n"), "{answer}");
    assert!(answer.contains("\r\no=- 1983213337 3019513436 IN IP4 198.18.1.2\r\n"));
    assert!(!answer.contains("127.0.0.1"));
    assert_eq!(
        header(ok, "Content-Length").unwrap(),
        answer.len().to_string()
    );
    assert_eq!(sim.to_pbx.len(), 0);
}

#[test]
fn ack_and_bye_pass_both_ways_along_the_route_set() {
    let mut sim = EdgeSim::new();
    let invite = ringing_call(&mut sim);
    let contact = format!("Contact: <{SOFTPHONE_CONTACT}>");
    let ok = respond(&invite, 200, "OK", &[&contact], "");
    sim.softphone(&ok);
    sim.take_pbx();

    // The caller's ACK, routed by Kamailio to our PBX-facing entry.
    let ack = format!(
        "ACK {SOFTPHONE_CONTACT} SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKk1ack\r\nVia: SIP/2.0/UDP 198.18.0.7:5060;branch=z9hG4bKcallerack\r\nRoute: {OUR_RR_PBX}, {OUR_RR_SOFTPHONE}\r\nMax-Forwards: 69\r\nFrom: <sip:200@example.test>;tag=caller\r\nTo: <sip:101@example.test>;tag=uas200\r\nCall-ID: call-in-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(sim.pbx(&ack), FromPbx::Handled);
    let relayed = sim.take_softphone();
    assert_eq!(relayed.len(), 1);
    assert_eq!(
        first_line(&relayed[0]),
        format!("ACK {SOFTPHONE_CONTACT} SIP/2.0")
    );
    assert!(headers(&relayed[0], "Route").is_empty());
    assert!(top_branch(&relayed[0]).starts_with("z9hG4bKvfs"));
    assert!(sim.take_pbx().is_empty(), "no response to an ACK");

    // The agent hangs up: the softphone's BYE follows its route set (RR in order).
    let bye = format!(
        "BYE sip:200@198.18.0.7:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKbye1;rport\r\nRoute: {OUR_RR_SOFTPHONE}\r\nRoute: {OUR_RR_PBX}\r\nRoute: <sip:198.18.0.1;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:101@example.test>;tag=uas200\r\nTo: <sip:200@example.test>;tag=caller\r\nCall-ID: call-in-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    sim.softphone(&bye);
    let (flow, destination, relayed) = sim.to_pbx.pop().unwrap();
    assert_eq!((flow, destination), (sim.flow.flow, addr(PBX)));
    assert_eq!(first_line(&relayed), "BYE sip:200@198.18.0.7:5060 SIP/2.0");
    assert_eq!(headers(&relayed, "Route"), vec!["<sip:198.18.0.1;lr>"]);
    assert!(
        headers(&relayed, "Via")[0].starts_with("SIP/2.0/UDP 198.18.1.2:40000;branch=z9hG4bKvfp")
    );
    assert!(headers(&relayed, "Via")[1].ends_with(";received=127.0.0.1;rport=5062"));
    assert_eq!(header(&relayed, "Max-Forwards").as_deref(), Some("69"));
    assert_eq!(
        sim.pbx(&respond(&relayed, 200, "OK", &[], "")),
        FromPbx::Handled
    );
    let ok = sim.take_softphone();
    assert_eq!(ok.len(), 1);
    assert!(ok[0].starts_with("SIP/2.0 200 OK\r\n"));
    assert_eq!(headers(&ok[0], "Via").len(), 1);
    assert!(ok[0].contains("branch=z9hG4bKbye1"));
}

#[test]
fn bye_from_the_pbx_reaches_the_softphone_and_its_200_goes_back() {
    let mut sim = EdgeSim::new();
    let invite = ringing_call(&mut sim);
    sim.softphone(&respond(&invite, 200, "OK", &[], ""));
    sim.take_pbx();
    let bye = format!(
        "BYE {SOFTPHONE_CONTACT} SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKpbye\r\nRoute: {OUR_RR_PBX}, {OUR_RR_SOFTPHONE}\r\nMax-Forwards: 70\r\nFrom: <sip:200@example.test>;tag=caller\r\nTo: <sip:101@example.test>;tag=uas200\r\nCall-ID: call-in-1\r\nCSeq: 2 BYE\r\nReason: Q.850;cause=16\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(sim.pbx(&bye), FromPbx::Handled);
    let relayed = sim.take_softphone().pop().unwrap();
    assert!(relayed.starts_with(&format!("BYE {SOFTPHONE_CONTACT} SIP/2.0\r\n")));
    assert_eq!(
        header(&relayed, "Reason").as_deref(),
        Some("Q.850;cause=16")
    );
    sim.softphone(&respond(&relayed, 200, "OK", &[], ""));
    let ok = sim.take_pbx().pop().unwrap();
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"));
    assert_eq!(top_branch(&ok), "z9hG4bKpbye");
    // A retransmitted BYE gets the 200 again without bothering the softphone.
    assert_eq!(sim.pbx(&bye), FromPbx::Handled);
    assert_eq!(sim.take_pbx(), vec![ok]);
    assert!(sim.take_softphone().is_empty());
}

#[test]
fn cancel_is_answered_and_carried_to_the_softphone() {
    let mut sim = EdgeSim::new();
    let invite = ringing_call(&mut sim);
    sim.take_pbx();
    sim.softphone(&respond(&invite, 180, "Ringing", &[], ""));
    sim.take_pbx();
    let cancel = kamailio_invite("z9hG4bKk1")
        .split("Content-Type")
        .next()
        .unwrap()
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL")
        .replace("Record-Route: <sip:198.18.0.1;lr>\r\n", "")
        .replace("Contact: <sip:200@198.18.0.7:5060>\r\n", "")
        + "Content-Length: 0\r\n\r\n";
    assert_eq!(sim.pbx(&cancel), FromPbx::Handled);
    let up = sim.take_pbx();
    assert_eq!(up.len(), 1);
    assert!(up[0].starts_with("SIP/2.0 200 OK\r\n"));
    assert_eq!(header(&up[0], "CSeq").as_deref(), Some("1 CANCEL"));
    let down = sim.take_softphone();
    assert_eq!(down.len(), 1);
    assert_eq!(
        first_line(&down[0]),
        format!("CANCEL {SOFTPHONE_CONTACT} SIP/2.0")
    );
    assert_eq!(
        top_branch(&down[0]),
        top_branch(&invite),
        "the INVITE's branch"
    );
    assert_eq!(header(&down[0], "CSeq").as_deref(), Some("1 CANCEL"));

    sim.softphone(&respond(&down[0], 200, "OK", &[], ""));
    assert!(
        sim.take_pbx().is_empty(),
        "the 200 to our CANCEL stays here"
    );
    sim.softphone(&respond(&invite, 487, "Request Terminated", &[], ""));
    let ack = sim.take_softphone();
    assert_eq!(ack.len(), 1, "we acknowledge the 487 ourselves");
    assert!(ack[0].starts_with(&format!("ACK {SOFTPHONE_CONTACT} SIP/2.0\r\n")));
    assert_eq!(
        header(&ack[0], "To").as_deref(),
        Some("<sip:101@example.test>;tag=uas487")
    );
    assert_eq!(top_branch(&ack[0]), top_branch(&invite));
    let up = sim.take_pbx();
    assert_eq!(up.len(), 1);
    assert!(up[0].starts_with("SIP/2.0 487 Request Terminated\r\n"));

    // The PBX's ACK for the 487 is absorbed; the 487 is retransmitted until it comes.
    sim.advance(Duration::from_millis(600));
    assert_eq!(sim.take_pbx().len(), 1, "Timer G");
    let pbx_ack = cancel
        .replace("CANCEL sip:", "ACK sip:")
        .replace("CSeq: 1 CANCEL", "CSeq: 1 ACK")
        .replace(
            "To: <sip:101@example.test>",
            "To: <sip:101@example.test>;tag=uas487",
        );
    assert_eq!(sim.pbx(&pbx_ack), FromPbx::Handled);
    assert!(
        sim.take_softphone()
            .iter()
            .all(|m| first_line(m).starts_with("OPTIONS ")),
        "the ACK is not relayed (only health checks go to the softphone)"
    );
    sim.advance(Duration::from_secs(40));
    assert!(sim.take_pbx().is_empty());
    assert_eq!(sim.proxy.transactions_in_progress(), 0, "all forgotten");
}

#[test]
fn a_retransmitted_invite_gets_the_latest_response_again() {
    let mut sim = EdgeSim::new();
    let invite = ringing_call(&mut sim);
    sim.take_pbx();
    assert_eq!(sim.pbx(&kamailio_invite("z9hG4bKk1")), FromPbx::Handled);
    let again = sim.take_pbx();
    assert_eq!(again.len(), 1);
    assert!(again[0].starts_with("SIP/2.0 100 Trying"));
    assert!(sim.take_softphone().is_empty());
    sim.softphone(&respond(&invite, 180, "Ringing", &[], ""));
    sim.take_pbx();
    assert_eq!(sim.pbx(&kamailio_invite("z9hG4bKk1")), FromPbx::Handled);
    assert!(sim.take_pbx()[0].starts_with("SIP/2.0 180 Ringing"));
}

#[test]
fn qualify_options_stay_with_the_registration_and_options_for_the_extension_are_relayed() {
    let mut sim = EdgeSim::registered();
    // Asterisk's qualify: To names the contact itself.
    let qualify = "OPTIONS sip:101@198.18.1.2:40000;transport=udp;ob SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;rport;branch=z9hG4bKPjq1\r\nFrom: <sip:101@198.18.0.1>;tag=q1\r\nTo: <sip:101@198.18.1.2:40000;ob>\r\nContact: <sip:101@198.18.0.1:5060>\r\nCall-ID: q-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nUser-Agent: Asterisk PBX 20.5.0\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(sim.pbx(qualify), FromPbx::ForRegistration);
    // Kamailio's NAT ping names the contact in To too, with the Request-URI's exact form.
    let ping = "OPTIONS sip:101@198.18.1.2:40000 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKping\r\nFrom: <sip:pinger@kamailio.org>;tag=p1\r\nTo: <sip:101@198.18.1.2:40000>\r\nCall-ID: p-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(sim.pbx(ping), FromPbx::ForRegistration);
    assert!(sim.take_softphone().is_empty());
    assert!(sim.take_pbx().is_empty());

    // Another phone asks the extension what it supports: that is the softphone's to answer.
    let for_extension = "OPTIONS sip:101@198.18.1.2:40000;transport=udp;ob SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKfwd\r\nVia: SIP/2.0/UDP 198.18.0.7:5060;branch=z9hG4bKo2\r\nFrom: <sip:200@example.test>;tag=o2\r\nTo: <sip:101@example.test>\r\nCall-ID: o-2\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 69\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(sim.pbx(for_extension), FromPbx::Handled);
    let relayed = sim.take_softphone();
    assert_eq!(relayed.len(), 1);
    assert_eq!(
        first_line(&relayed[0]),
        format!("OPTIONS {SOFTPHONE_CONTACT} SIP/2.0")
    );
    // Responses to the registration's REGISTERs are not the edge proxy's either.
    let register_ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 198.18.1.2:40000;rport=40000;branch=z9hG4bKregistration\r\nFrom: <sip:101@example.test>;tag=a\r\nTo: <sip:101@example.test>;tag=b\r\nCall-ID: r\r\nCSeq: 2 REGISTER\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(sim.pbx(register_ok), FromPbx::ForRegistration);
    let register = "REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1;branch=z9hG4bKr\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: r\r\nCSeq: 1 REGISTER\r\n\r\n";
    assert_eq!(sim.pbx(register), FromPbx::ForRegistration);
}

#[test]
fn in_dialog_methods_are_relayed_to_the_softphone() {
    let mut sim = EdgeSim::new();
    let invite = ringing_call(&mut sim);
    sim.softphone(&respond(&invite, 200, "OK", &[], ""));
    sim.take_pbx();
    for (i, method) in [
        "INVITE", "UPDATE", "INFO", "NOTIFY", "MESSAGE", "REFER", "OPTIONS",
    ]
    .iter()
    .enumerate()
    {
        let request = format!(
            "{method} {SOFTPHONE_CONTACT} SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKind{i}\r\nRoute: {OUR_RR_PBX}, {OUR_RR_SOFTPHONE}\r\nMax-Forwards: 70\r\nFrom: <sip:200@example.test>;tag=caller\r\nTo: <sip:101@example.test>;tag=uas200\r\nCall-ID: call-in-1\r\nCSeq: {} {method}\r\nContent-Length: 0\r\n\r\n",
            i + 2
        );
        assert_eq!(sim.pbx(&request), FromPbx::Handled, "{method}");
        let relayed = sim.take_softphone();
        assert_eq!(relayed.len(), 1, "{method}");
        assert_eq!(
            first_line(&relayed[0]),
            format!("{method} {SOFTPHONE_CONTACT} SIP/2.0")
        );
        assert!(
            headers(&relayed[0], "Record-Route").is_empty(),
            "{method}: no RR in dialog"
        );
        sim.softphone(&respond(&relayed[0], 200, "OK", &[], ""));
        let up = sim.take_pbx();
        assert!(
            up.iter().any(|r| r.starts_with("SIP/2.0 200 OK")),
            "{method}"
        );
    }
}

#[test]
fn unsolicited_notify_and_message_for_the_extension_reach_the_softphone() {
    let mut sim = EdgeSim::registered();
    let mwi = "NOTIFY sip:101@198.18.1.2:40000;transport=udp;ob SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;rport;branch=z9hG4bKPjmwi\r\nFrom: <sip:101@example.test>;tag=m1\r\nTo: <sip:101@example.test>\r\nCall-ID: mwi-1\r\nCSeq: 1 NOTIFY\r\nEvent: message-summary\r\nSubscription-State: active\r\nContent-Type: application/simple-message-summary\r\nContent-Length: 23\r\n\r\nMessages-Waiting: yes\r\n";
    assert_eq!(sim.pbx(mwi), FromPbx::Handled);
    let relayed = sim.take_softphone().pop().unwrap();
    assert!(relayed.starts_with(&format!("NOTIFY {SOFTPHONE_CONTACT} SIP/2.0\r\n")));
    assert!(relayed.ends_with("Messages-Waiting: yes\r\n"));
}

#[test]
fn max_forwards_zero_gets_483_and_nothing_is_relayed() {
    let mut sim = EdgeSim::registered();
    let exhausted = kamailio_invite("z9hG4bKmf").replace("Max-Forwards: 69", "Max-Forwards: 0");
    assert_eq!(sim.pbx(&exhausted), FromPbx::Handled);
    let up = sim.take_pbx();
    assert_eq!(up.len(), 1);
    assert!(up[0].starts_with("SIP/2.0 483 Too Many Hops"));
    assert!(sim
        .take_softphone()
        .iter()
        .all(|m| first_line(m).starts_with("OPTIONS ")));
}

#[test]
fn a_cancel_with_no_context_still_finds_the_invite_downstream() {
    // One proxy relays the INVITE; an identical one (same seed) never saw it, as after a
    // restart, and relays the CANCEL statelessly (RFC 3261 §16.10) with the same derived branch.
    let mut with_invite = EdgeSim::new();
    let invite = ringing_call(&mut with_invite);
    let mut without = EdgeSim::new();
    without.register_baresip();
    let cancel = "CANCEL sip:101@198.18.1.2:40000;transport=udp;ob SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKk1\r\nVia: SIP/2.0/UDP 198.18.0.7:5060;rport=5060;branch=z9hG4bKcaller1\r\nMax-Forwards: 69\r\nFrom: <sip:200@example.test>;tag=caller\r\nTo: <sip:101@example.test>\r\nCall-ID: call-in-1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(without.pbx(cancel), FromPbx::Handled);
    let relayed = without.take_softphone().pop().unwrap();
    assert_eq!(
        first_line(&relayed),
        format!("CANCEL {SOFTPHONE_CONTACT} SIP/2.0")
    );
    assert_eq!(top_branch(&relayed), top_branch(&invite));
    assert!(without.take_pbx().is_empty(), "the softphone answers it");
}

#[test]
fn relayed_messages_are_traced_with_credentials_redacted_unless_tracing_is_off() {
    let mut sim = EdgeSim::new();
    let traces = |sim: &EdgeSim| {
        sim.events
            .iter()
            .filter_map(|e| match e {
                EdgeEvent::Trace(t) => Some(t.text.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    ringing_call(&mut sim);
    assert!(traces(&sim)
        .iter()
        .any(|t| t.contains("Authorization: <redacted>")));
    assert!(traces(&sim).iter().all(|t| !t.contains(&sim.password)));
    assert!(!traces(&sim).iter().any(|t| t.contains("response=")));
    assert!(traces(&sim)
        .iter()
        .any(|t| t.starts_with("INVITE sip:101-0x5621a4d0@")));

    let mut quiet = EdgeSim::with_config(vicifast_core::edge::EdgeConfig {
        trace: false,
        ..Default::default()
    });
    ringing_call(&mut quiet);
    assert!(traces(&quiet).is_empty());
}
