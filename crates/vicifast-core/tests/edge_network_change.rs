//! Across a network change the registration moves to a new flow, and the edge proxy follows: the
//! softphone's SDP naming this computer's old address is pointed at the new one, Route entries
//! naming our old address are still known as ours, answers to transactions begun on the old
//! flow leave on the new one, and bindings of this computer at the PBX that are not VICIfast's
//! are named as the softphone registering directly.

mod edge_harness;
use edge_harness::*;
use vicifast_core::edge::{DirectRegistration, FromPbx};
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
