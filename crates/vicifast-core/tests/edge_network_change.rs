//! Across a network change the registration moves to a new flow, and the edge proxy follows: the
//! softphone's SDP naming this computer's old address is pointed at the new one, Route entries
//! naming our old address are still known as ours, answers to transactions begun on the old
//! flow leave on the new one, and bindings of this computer at the PBX that are not VICIfast's
//! are named as the softphone registering directly. A move to another address while a call is up
//! is told once, since the PBX keeps sending that call's audio to the old address.

mod edge_harness;
use edge_harness::*;
use std::time::Duration;
use vicifast_core::edge::{
    CallDirection, CallMoved, DirectRegistration, EdgeEvent, FromPbx, CALL_IDLE_LIMIT, MAX_CALLS,
};
use vicifast_core::{BindingInfo, FlowId};

const NEW_LOCAL: &str = "198.18.2.5:41000";
const OLD_RR_PBX: &str = "<sip:198.18.1.2:40000;transport=udp;lr;vicifast>";
const RR_SOFTPHONE: &str = "<sip:127.0.0.1:5070;transport=udp;lr;vicifast>";

fn reinvite_from_softphone(sdp_address: &str) -> String {
    let sdp = loopback_sdp().replace("127.0.0.1", sdp_address);
    format!(
        "INVITE sip:8600051@198.18.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bKre1\r\nRoute: {RR_SOFTPHONE}, {OLD_RR_PBX}\r\nMax-Forwards: 70\r\nFrom: <sip:101@example.test>;tag=a\r\nTo: <sip:8600051@example.test>;tag=b\r\nCall-ID: moving\r\nCSeq: 3 INVITE\r\nContact: <sip:101@127.0.0.1:5062>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

#[test]
fn sdp_with_the_old_address_is_pointed_at_the_new_flow() {
    let mut sim = EdgeSim::registered();
    sim.set_flow(Some(flow(2, NEW_LOCAL, None)));
    sim.softphone(&reinvite_from_softphone("198.18.1.2"));
    let (flow, _, invite) = sim.to_pbx.pop().unwrap();
    assert_eq!(flow, FlowId(2));
    let offer = body(&invite);
    assert!(offer.contains("\r\nc=IN IP4 198.18.2.5\r\n"), "{offer}");
    assert!(!offer.contains("198.18.1.2"));
    assert!(headers(&invite, "Via")[0].starts_with("SIP/2.0/UDP 198.18.2.5:41000;"));
    assert!(
        headers(&invite, "Route").is_empty(),
        "the old entry is still ours"
    );
    assert!(
        headers(&invite, "Record-Route").is_empty(),
        "re-INVITE: no new route set"
    );
}

#[test]
fn an_in_dialog_request_routed_to_our_old_address_is_still_relayed() {
    let mut sim = EdgeSim::registered();
    sim.set_flow(Some(flow(2, NEW_LOCAL, None)));
    let bye = format!(
        "BYE sip:101-0x5621a4d0@127.0.0.1:5062;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKold\r\nRoute: {OLD_RR_PBX}, {RR_SOFTPHONE}\r\nFrom: <sip:200@example.test>;tag=c\r\nTo: <sip:101@example.test>;tag=d\r\nCall-ID: moving\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(sim.pbx(&bye), FromPbx::Handled);
    let relayed = sim.take_softphone().pop().unwrap();
    assert!(relayed.starts_with("BYE sip:101-0x5621a4d0@127.0.0.1:5062;transport=udp SIP/2.0\r\n"));
    assert!(headers(&relayed, "Route").is_empty());
}

#[test]
fn a_response_to_a_request_from_the_old_flow_leaves_on_the_new_one() {
    let mut sim = EdgeSim::registered();
    let invite = "INVITE sip:101@198.18.1.2:40000 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKmv\r\nFrom: <sip:200@example.test>;tag=c\r\nTo: <sip:101@example.test>\r\nCall-ID: mv\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(sim.pbx(invite), FromPbx::Handled);
    let relayed = sim.take_softphone().remove(0);
    sim.to_pbx.clear();
    sim.set_flow(Some(flow(2, NEW_LOCAL, None)));
    sim.softphone(&respond(&relayed, 200, "OK", &[], ""));
    let (flow, destination, ok) = sim.to_pbx.pop().unwrap();
    assert_eq!((flow, destination), (FlowId(2), addr(PBX)));
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"));
}

#[test]
fn bindings_of_this_computer_that_are_not_ours_are_direct_registrations() {
    let mut sim = EdgeSim::registered();
    sim.set_flow(Some(flow(2, NEW_LOCAL, Some("203.0.113.7:61000"))));
    let bindings = [
        BindingInfo {
            contact: "sip:101@203.0.113.7:61000;transport=udp;ob".into(),
            expires_in: Some(300),
            ours: true,
            stale: false,
        },
        BindingInfo {
            contact: "sip:101-0x5621a4d0@198.18.1.2:5062;transport=udp".into(),
            expires_in: Some(60),
            ours: false,
            stale: false,
        },
        BindingInfo {
            contact: "sip:101@198.18.77.7:5060".into(),
            expires_in: Some(60),
            ours: false,
            stale: false,
        },
    ];
    assert_eq!(
        sim.proxy.direct_registrations(&bindings),
        vec![DirectRegistration {
            contact: "sip:101-0x5621a4d0@198.18.1.2:5062;transport=udp".into(),
            matches_softphone: true,
        }],
        "the softphone at this computer's earlier address; the desk phone elsewhere is not ours to judge"
    );
}

// ---- calls across a network change ----

/// The PBX calls the extension (`call_id` names the call) and the softphone answers; returns
/// the softphone's 200 OK as it sent it.
fn answered_call_in(sim: &mut EdgeSim, call_id: &str) -> String {
    let sdp = pbx_sdp();
    let invite = format!(
        "INVITE sip:101@198.18.1.2:40000 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bK{call_id}\r\nMax-Forwards: 70\r\nFrom: <sip:200@example.test>;tag=c{call_id}\r\nTo: <sip:101@example.test>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:200@198.18.0.1:5060>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    assert_eq!(sim.pbx(&invite), FromPbx::Handled);
    let relayed = sim
        .take_softphone()
        .into_iter()
        .find(|m| m.starts_with("INVITE "))
        .expect("the INVITE relayed to the softphone");
    let ok = respond(
        &relayed,
        200,
        "OK",
        &[
            "Contact: <sip:101-0x5621a4d0@127.0.0.1:5062>",
            "Content-Type: application/sdp",
        ],
        &loopback_sdp(),
    );
    sim.softphone(&ok);
    let sent = sim.take_pbx();
    assert!(
        sent.iter().any(|m| m.starts_with("SIP/2.0 200 OK\r\n")),
        "{sent:?}"
    );
    ok
}

/// A request from the softphone inside the call `call_id` answered by it (`answered_call_in`).
fn softphone_in_dialog(method: &str, call_id: &str, cseq: u32, sdp: Option<&str>) -> String {
    let (content_type, body) = match sdp {
        Some(sdp) => ("Content-Type: application/sdp\r\n", sdp.to_owned()),
        None => ("", String::new()),
    };
    format!(
        "{method} sip:200@198.18.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bK{method}{cseq}\r\nRoute: {RR_SOFTPHONE}, {OLD_RR_PBX}\r\nMax-Forwards: 70\r\nFrom: <sip:101@example.test>;tag=uas200\r\nTo: <sip:200@example.test>;tag=c{call_id}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:101-0x5621a4d0@127.0.0.1:5062>\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A request from the PBX inside the call `call_id`.
fn pbx_in_dialog(method: &str, call_id: &str, cseq: u32) -> String {
    format!(
        "{method} sip:101-0x5621a4d0@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bK{method}{cseq}{call_id}\r\nRoute: {OLD_RR_PBX}, {RR_SOFTPHONE}\r\nMax-Forwards: 70\r\nFrom: <sip:200@example.test>;tag=c{call_id}\r\nTo: <sip:101@example.test>;tag=uas200\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

fn calls_moved(sim: &EdgeSim) -> Vec<CallMoved> {
    sim.events
        .iter()
        .filter_map(|e| match e {
            EdgeEvent::CallMoved(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_move_to_another_address_during_a_call_is_told_once() {
    let mut sim = EdgeSim::registered();
    answered_call_in(&mut sim, "up1");
    assert_eq!(sim.proxy.calls_in_progress(sim.now).len(), 1);
    assert!(calls_moved(&sim).is_empty(), "no change yet");

    sim.set_flow(Some(flow(2, NEW_LOCAL, None)));
    let moved = calls_moved(&sim);
    assert_eq!(moved.len(), 1, "{moved:?}");
    let moved = &moved[0];
    assert_eq!(moved.account, "agent");
    assert_eq!(moved.old_address, addr(LOCAL).ip());
    assert_eq!(moved.new_address, addr(NEW_LOCAL).ip());
    assert_eq!(moved.calls.len(), 1);
    assert_eq!(moved.calls[0].call_id, "up1");
    assert_eq!(moved.calls[0].direction, CallDirection::Incoming);
    assert_eq!(moved.calls[0].other_party, "sip:200@example.test");
    assert!(
        moved
            .message
            .contains("put the call on hold and take it off hold"),
        "{}",
        moved.message
    );

    // The same flow again, a new flow on the same address, and the registrar's view of the new
    // address arriving: all the same move.
    sim.set_flow(Some(flow(2, NEW_LOCAL, None)));
    sim.set_flow(Some(flow(3, "198.18.2.5:41002", None)));
    sim.set_flow(Some(flow(3, "198.18.2.5:41002", Some("203.0.113.9:62000"))));
    assert_eq!(calls_moved(&sim).len(), 1, "told once per move");
}

#[test]
fn a_move_without_a_call_is_not_told() {
    let mut sim = EdgeSim::registered();
    sim.set_flow(Some(flow(2, NEW_LOCAL, None)));
    assert!(calls_moved(&sim).is_empty());
}

#[test]
fn a_call_ended_before_the_move_is_not_told() {
    for who in ["softphone", "pbx"] {
        let mut sim = EdgeSim::registered();
        answered_call_in(&mut sim, "gone");
        match who {
            "softphone" => sim.softphone(&softphone_in_dialog("BYE", "gone", 2, None)),
            _ => assert_eq!(sim.pbx(&pbx_in_dialog("BYE", "gone", 2)), FromPbx::Handled),
        }
        assert!(
            sim.proxy.calls_in_progress(sim.now).is_empty(),
            "{who}'s BYE"
        );
        sim.set_flow(Some(flow(2, NEW_LOCAL, None)));
        assert!(calls_moved(&sim).is_empty(), "{who}'s BYE");
    }
}

#[test]
fn a_new_flow_on_the_same_addresses_is_not_a_move() {
    let mut sim = EdgeSim::registered();
    sim.set_flow(Some(flow(1, LOCAL, Some("203.0.113.7:61000"))));
    answered_call_in(&mut sim, "stay");
    // A new socket (another port) with the same local and public addresses.
    sim.set_flow(Some(flow(2, "198.18.1.2:40002", Some("203.0.113.7:61004"))));
    // The flow lost and back on the same address, its public one not reported yet.
    sim.set_flow(None);
    sim.set_flow(Some(flow(3, "198.18.1.2:40004", None)));
    assert!(calls_moved(&sim).is_empty(), "{:?}", calls_moved(&sim));
    assert_eq!(sim.proxy.calls_in_progress(sim.now).len(), 1);
}

#[test]
fn a_new_public_address_on_the_same_local_one_is_a_move() {
    let mut sim = EdgeSim::registered();
    sim.set_flow(Some(flow(1, LOCAL, Some("203.0.113.7:61000"))));
    answered_call_in(&mut sim, "nat");
    sim.set_flow(Some(flow(1, LOCAL, Some("203.0.113.99:61000"))));
    let moved = calls_moved(&sim);
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].old_address.to_string(), "203.0.113.7");
    assert_eq!(moved[0].new_address.to_string(), "203.0.113.99");
}

#[test]
fn a_move_across_an_outage_is_told() {
    let mut sim = EdgeSim::registered();
    answered_call_in(&mut sim, "outage");
    sim.set_flow(None);
    assert!(calls_moved(&sim).is_empty(), "no new address yet");
    sim.set_flow(Some(flow(2, NEW_LOCAL, None)));
    let moved = calls_moved(&sim);
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].old_address, addr(LOCAL).ip());
}

#[test]
fn after_the_softphone_renegotiates_the_call_is_at_the_new_address() {
    let mut sim = EdgeSim::registered();
    answered_call_in(&mut sim, "reneg");
    sim.set_flow(Some(flow(2, NEW_LOCAL, None)));
    assert_eq!(calls_moved(&sim).len(), 1);

    // Taken off hold: the softphone's re-INVITE, its SDP pointed at the new address.
    sim.softphone(&softphone_in_dialog(
        "INVITE",
        "reneg",
        3,
        Some(&loopback_sdp()),
    ));
    let reinvite = sim.take_pbx().pop().unwrap();
    assert!(body(&reinvite).contains("c=IN IP4 198.18.2.5\r\n"));
    let _ = sim.pbx(&respond(&reinvite, 200, "OK", &[], ""));

    // Back on the first address: the call's audio now goes to the second one.
    sim.set_flow(Some(flow(3, LOCAL, None)));
    let moved = calls_moved(&sim);
    assert_eq!(moved.len(), 2, "{moved:?}");
    assert_eq!(moved[1].old_address, addr(NEW_LOCAL).ip());
    assert_eq!(moved[1].new_address, addr(LOCAL).ip());
}

#[test]
fn back_on_the_address_the_call_was_set_up_for_is_not_a_move() {
    let mut sim = EdgeSim::registered();
    answered_call_in(&mut sim, "flap");
    sim.set_flow(Some(flow(2, NEW_LOCAL, None)));
    sim.set_flow(Some(flow(3, LOCAL, None)));
    assert_eq!(
        calls_moved(&sim).len(),
        1,
        "the PBX's audio reaches the first address again"
    );
}

#[test]
fn an_outgoing_call_is_tracked_too() {
    let mut sim = EdgeSim::registered();
    let sdp = loopback_sdp();
    let invite = format!(
        "INVITE sip:8600051@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bKout1\r\nRoute: <sip:127.0.0.1:5070;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:101@example.test>;tag=out\r\nTo: <sip:8600051@example.test>\r\nCall-ID: out1\r\nCSeq: 1 INVITE\r\nContact: <sip:101-0x5621a4d0@127.0.0.1:5062>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    sim.softphone(&invite);
    let relayed = sim.take_pbx().pop().unwrap();
    assert!(relayed.starts_with("INVITE "), "{relayed}");
    let _ = sim.pbx(&respond(
        &relayed,
        200,
        "OK",
        &["Content-Type: application/sdp"],
        &pbx_sdp(),
    ));
    let calls = sim.proxy.calls_in_progress(sim.now);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].direction, CallDirection::Outgoing);
    assert_eq!(calls[0].other_party, "sip:8600051@example.test");
    sim.set_flow(Some(flow(2, NEW_LOCAL, None)));
    assert_eq!(calls_moved(&sim).len(), 1);
}

#[test]
fn a_call_the_pbx_no_longer_knows_is_forgotten() {
    let mut sim = EdgeSim::registered();
    answered_call_in(&mut sim, "lost");
    sim.softphone(&softphone_in_dialog(
        "INVITE",
        "lost",
        3,
        Some(&loopback_sdp()),
    ));
    let reinvite = sim.take_pbx().pop().unwrap();
    let _ = sim.pbx(&respond(
        &reinvite,
        481,
        "Call/Transaction Does Not Exist",
        &[],
        "",
    ));
    assert!(sim.proxy.calls_in_progress(sim.now).is_empty());
    sim.set_flow(Some(flow(2, NEW_LOCAL, None)));
    assert!(calls_moved(&sim).is_empty());
}

#[test]
fn calls_tracked_are_bounded_and_forgotten_when_idle() {
    let mut sim = EdgeSim::registered();
    for n in 0..MAX_CALLS + 4 {
        answered_call_in(&mut sim, &format!("many{n}"));
    }
    let calls = sim.proxy.calls_in_progress(sim.now);
    assert_eq!(calls.len(), MAX_CALLS);
    assert!(
        calls
            .iter()
            .any(|c| c.call_id == format!("many{}", MAX_CALLS + 3)),
        "the newest is kept"
    );

    // A request inside one keeps it; the others go quiet past the limit.
    sim.advance(CALL_IDLE_LIMIT / 2);
    let _ = sim.pbx(&pbx_in_dialog("INFO", "many19", 2));
    sim.advance(CALL_IDLE_LIMIT / 2 + Duration::from_secs(1));
    let calls = sim.proxy.calls_in_progress(sim.now);
    assert_eq!(calls.len(), 1, "{calls:?}");
    sim.set_flow(Some(flow(2, NEW_LOCAL, None)));
    let moved = calls_moved(&sim);
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].calls.len(), 1);
    assert_eq!(moved[0].calls[0].call_id, "many19");
}
