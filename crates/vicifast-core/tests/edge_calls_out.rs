//! Requests from the softphone go to the PBX over the registration's current flow, whatever their
//! Request-URI names (no open relay): calls with a 407 challenge the softphone answers itself,
//! in-dialog DTMF, transfers, subscriptions and messages. Media addresses are pointed at the
//! flow's address (the public one behind NAT). Requests from other local programs, with no flow,
//! or that nobody answers get a clear final response.

mod edge_harness;
use edge_harness::*;
use std::time::Duration;
use vicifast_core::edge::{ConnectionId, FromPbx, LocalPeer};
use vicifast_core::Transport;

const OUR_RR_SOFTPHONE: &str = "<sip:127.0.0.1:5070;transport=udp;lr;vicifast>";
const OUR_RR_PBX: &str = "<sip:198.18.1.2:40000;transport=udp;lr;vicifast>";

/// MicroSIP calling VICIdial's conference extension, on a host that is not the PBX's.
fn microsip_invite(branch: &str, cseq: u32, extra: &str) -> String {
    let sdp = loopback_sdp();
    format!(
        "INVITE sip:8600051@pbx.elsewhere.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5062;rport;branch={branch}\r\n\
Route: <sip:127.0.0.1:5070;lr>\r\n\
Max-Forwards: 70\r\n\
From: \"Agent\" <sip:101@example.test>;tag=mf1\r\n\
To: <sip:8600051@pbx.elsewhere.test>\r\n\
Contact: <sip:101@127.0.0.1:5062;ob>\r\n\
Call-ID: out-1\r\n\
CSeq: {cseq} INVITE\r\n\
{extra}\
Allow: PRACK, INVITE, ACK, BYE, CANCEL, UPDATE, INFO, SUBSCRIBE, NOTIFY, REFER, MESSAGE, OPTIONS\r\n\
Supported: replaces, 100rel, timer, norefersub\r\n\
User-Agent: MicroSIP/3.21.3\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

#[test]
fn an_invite_to_a_foreign_host_goes_to_the_pbx_flow_only() {
    let mut sim = EdgeSim::registered();
    sim.softphone(&microsip_invite("z9hG4bKPjo1", 9520, ""));
    let trying = sim.take_softphone();
    assert_eq!(trying.len(), 1);
    assert!(trying[0].starts_with("SIP/2.0 100 Trying\r\n"));
    assert_eq!(sim.to_pbx.len(), 1);
    let (flow, destination, invite) = sim.to_pbx.pop().unwrap();
    assert_eq!(flow, sim.flow.flow);
    assert_eq!(destination, addr(PBX), "the PBX, not pbx.elsewhere.test");
    assert_eq!(
        first_line(&invite),
        "INVITE sip:8600051@pbx.elsewhere.test SIP/2.0"
    );
    assert!(
        headers(&invite, "Route").is_empty(),
        "our own Route removed"
    );
    let vias = headers(&invite, "Via");
    assert!(vias[0].starts_with("SIP/2.0/UDP 198.18.1.2:40000;branch=z9hG4bKvfp"));
    assert!(vias[0].ends_with(";rport"));
    assert_eq!(
        headers(&invite, "Record-Route"),
        vec![OUR_RR_PBX, OUR_RR_SOFTPHONE],
        "the PBX side on top"
    );
    let offer = body(&invite);
    assert!(offer.contains("\r\nc=IN IP4 198.18.1.2\r\n"), "{offer}");
    assert!(!offer.contains("127.0.0.1"));
}

#[test]
fn a_407_goes_back_to_the_softphone_which_answers_it_itself() {
    let mut sim = EdgeSim::registered();
    sim.softphone(&microsip_invite("z9hG4bKPjo1", 9520, ""));
    sim.take_softphone();
    let invite = sim.take_pbx().pop().unwrap();
    let challenge = r#"Proxy-Authenticate: Digest realm="example.test", nonce="pbx-nonce-1", qop="auth", algorithm=MD5"#;
    assert_eq!(
        sim.pbx(&respond(
            &invite,
            407,
            "Proxy Authentication Required",
            &[challenge],
            ""
        )),
        FromPbx::Handled
    );
    let ack = sim.take_pbx();
    assert_eq!(ack.len(), 1, "the ACK to the 407 is ours to send");
    assert!(ack[0].starts_with("ACK sip:8600051@pbx.elsewhere.test SIP/2.0\r\n"));
    assert_eq!(top_branch(&ack[0]), top_branch(&invite));
    assert_eq!(header(&ack[0], "CSeq").as_deref(), Some("9520 ACK"));
    let relayed = sim.take_softphone();
    assert_eq!(relayed.len(), 1);
    assert!(relayed[0].starts_with("SIP/2.0 407 Proxy Authentication Required\r\n"));
    assert_eq!(headers(&relayed[0], "Via").len(), 1);
    assert_eq!(top_branch(&relayed[0]), "z9hG4bKPjo1");
    assert_eq!(
        header(&relayed[0], "Proxy-Authenticate").as_deref(),
        Some(&challenge[20..])
    );

    // The softphone's ACK to the 407 stops here; its new INVITE carries its own credentials.
    let softphone_ack = "ACK sip:8600051@pbx.elsewhere.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bKPjo1\r\nMax-Forwards: 70\r\nFrom: \"Agent\" <sip:101@example.test>;tag=mf1\r\nTo: <sip:8600051@pbx.elsewhere.test>;tag=uas407\r\nCall-ID: out-1\r\nCSeq: 9520 ACK\r\nContent-Length: 0\r\n\r\n";
    sim.softphone(softphone_ack);
    assert!(sim.take_pbx().is_empty());
    let credentials = "Proxy-Authorization: Digest username=\"101\", realm=\"example.test\", nonce=\"pbx-nonce-1\", uri=\"sip:8600051@pbx.elsewhere.test\", response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5, cnonce=\"c\", qop=auth, nc=00000001\r\n";
    sim.softphone(&microsip_invite("z9hG4bKPjo2", 9521, credentials));
    let second = sim.take_pbx().pop().unwrap();
    assert!(
        second.contains(credentials),
        "credentials passed on untouched"
    );
    let contact = "Contact: <sip:8600051@198.18.0.1:5060>";
    assert_eq!(
        sim.pbx(&respond(
            &second,
            200,
            "OK",
            &[contact, "Content-Type: application/sdp"],
            &pbx_sdp()
        )),
        FromPbx::Handled
    );
    let ok = sim.take_softphone().pop().unwrap();
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"));
    assert_eq!(
        headers(&ok, "Record-Route"),
        vec![OUR_RR_PBX, OUR_RR_SOFTPHONE]
    );
    assert_eq!(body(&ok), pbx_sdp());

    // The softphone's ACK for the 200 follows its route set (RR reversed) to the PBX.
    let ack_200 = format!(
        "ACK sip:8600051@198.18.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bKPjack\r\nRoute: {OUR_RR_SOFTPHONE}, {OUR_RR_PBX}\r\nMax-Forwards: 70\r\nFrom: \"Agent\" <sip:101@example.test>;tag=mf1\r\nTo: <sip:8600051@pbx.elsewhere.test>;tag=uas200\r\nCall-ID: out-1\r\nCSeq: 9521 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    sim.softphone(&ack_200);
    let relayed = sim.take_pbx();
    assert_eq!(relayed.len(), 1);
    assert!(relayed[0].starts_with("ACK sip:8600051@198.18.0.1:5060 SIP/2.0\r\n"));
    assert!(headers(&relayed[0], "Route").is_empty());
}

#[test]
fn dtmf_info_transfer_subscribe_and_message_reach_the_pbx() {
    let mut sim = EdgeSim::registered();
    let in_dialog = |method: &str, branch: &str, cseq: u32, extra: &str, body: &str| {
        format!(
            "{method} sip:8600051@198.18.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;rport;branch={branch}\r\nRoute: {OUR_RR_SOFTPHONE}, {OUR_RR_PBX}\r\nMax-Forwards: 70\r\nFrom: <sip:101@example.test>;tag=mf1\r\nTo: <sip:8600051@example.test>;tag=uas200\r\nCall-ID: out-1\r\nCSeq: {cseq} {method}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let dtmf = in_dialog(
        "INFO",
        "z9hG4bKPjd1",
        9522,
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=5\r\nDuration=160\r\n",
    );
    let refer = in_dialog(
        "REFER",
        "z9hG4bKPjr1",
        9523,
        "Refer-To: <sip:8600052@example.test>\r\nReferred-By: <sip:101@example.test>\r\n",
        "",
    );
    for request in [dtmf, refer] {
        sim.softphone(&request);
        let relayed = sim.take_pbx();
        assert_eq!(relayed.len(), 1);
        assert_eq!(first_line(&relayed[0]), first_line(&request));
        assert_eq!(body(&relayed[0]), body(&request));
        assert_eq!(
            sim.pbx(&respond(&relayed[0], 200, "OK", &[], "")),
            FromPbx::Handled
        );
        assert!(sim.take_softphone()[0].starts_with("SIP/2.0 200 OK"));
    }
    let subscribe = "SUBSCRIBE sip:102@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bKPjs1\r\nMax-Forwards: 70\r\nFrom: <sip:101@example.test>;tag=s1\r\nTo: <sip:102@example.test>\r\nCall-ID: blf-1\r\nCSeq: 1 SUBSCRIBE\r\nEvent: dialog\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n";
    sim.softphone(subscribe);
    let relayed = sim.take_pbx().pop().unwrap();
    assert_eq!(
        headers(&relayed, "Record-Route").len(),
        2,
        "SUBSCRIBE creates a dialog"
    );
    let message = "MESSAGE sip:supervisor@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bKPjm1\r\nMax-Forwards: 70\r\nFrom: <sip:101@example.test>;tag=m1\r\nTo: <sip:supervisor@example.test>\r\nCall-ID: im-1\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
    sim.softphone(message);
    let relayed = sim.take_pbx().pop().unwrap();
    assert!(headers(&relayed, "Record-Route").is_empty());
    assert!(relayed.ends_with("\r\n\r\nhello"));
}

#[test]
fn behind_nat_the_sdp_names_the_public_address() {
    let mut sim = EdgeSim::registered();
    sim.set_flow(Some(flow(1, LOCAL, Some("203.0.113.7:61000"))));
    let with_lan_address =
        microsip_invite("z9hG4bKPjn1", 1, "").replace("c=IN IP4 127.0.0.1", "c=IN IP4 198.18.1.2");
    sim.softphone(&with_lan_address);
    let invite = sim.take_pbx().pop().unwrap();
    let offer = body(&invite);
    assert!(offer.contains("\r\nc=IN IP4 203.0.113.7\r\n"), "{offer}");
    assert!(offer.contains("IN IP4 203.0.113.7\r\ns="), "o= too");
    assert_eq!(
        headers(&invite, "Record-Route")[0],
        "<sip:203.0.113.7:61000;transport=udp;lr;vicifast>",
        "the PBX reaches us at the public address"
    );
}

#[test]
fn keepalive_options_to_the_listener_are_answered_locally() {
    let mut sim = EdgeSim::registered();
    let ping = "OPTIONS sip:127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bKka\r\nMax-Forwards: 70\r\nFrom: <sip:101@example.test>;tag=k\r\nTo: <sip:127.0.0.1:5070>\r\nCall-ID: ka-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    sim.softphone(ping);
    let answer = sim.take_softphone().pop().unwrap();
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n"));
    assert!(header(&answer, "Allow").unwrap().contains("INVITE"));
    assert!(sim.to_pbx.is_empty());
    // On a TCP connection, a CRLFCRLF ping gets a CRLF pong.
    let tcp = LocalPeer {
        transport: Transport::Tcp,
        addr: addr("127.0.0.1:50000"),
        connection: Some(ConnectionId(1)),
    };
    sim.softphone_from(tcp, "\r\n\r\n");
    assert_eq!(sim.to_softphone.pop(), Some((tcp, "\r\n".to_owned())));
}

#[test]
fn other_local_programs_cannot_place_calls_through_the_listener() {
    let mut sim = EdgeSim::registered();
    let stranger = udp("127.0.0.1:6000");
    sim.softphone_from(stranger, &microsip_invite("z9hG4bKst1", 1, ""));
    let (to, answer) = sim.to_softphone.pop().unwrap();
    assert_eq!(to, stranger);
    assert!(
        answer.starts_with("SIP/2.0 403 Register With VICIfast First\r\n"),
        "{answer}"
    );
    assert!(sim.to_pbx.is_empty());
    // Before any softphone registers, nobody can.
    let mut sim = EdgeSim::new();
    sim.softphone(&microsip_invite("z9hG4bKst2", 1, ""));
    assert!(sim.take_softphone()[0].starts_with("SIP/2.0 403 "));
    assert!(sim.to_pbx.is_empty());
}

#[test]
fn without_a_flow_the_softphone_gets_503_at_once() {
    let mut sim = EdgeSim::registered();
    sim.set_flow(None);
    sim.softphone(&microsip_invite("z9hG4bKnf1", 1, ""));
    let answer = sim.take_softphone().pop().unwrap();
    assert!(
        answer.starts_with("SIP/2.0 503 No Connection To Phone Server\r\n"),
        "{answer}"
    );
    assert!(sim.to_pbx.is_empty());
}

#[test]
fn an_unanswered_invite_is_retransmitted_over_udp_then_given_up_with_408() {
    let mut sim = EdgeSim::registered();
    sim.softphone(&microsip_invite("z9hG4bKPjt1", 1, ""));
    sim.take_softphone();
    assert_eq!(sim.take_pbx().len(), 1);
    sim.advance(Duration::from_millis(1600));
    let retransmitted = sim.take_pbx();
    assert_eq!(retransmitted.len(), 2, "Timer A: 0.5 s and 1.5 s");
    sim.advance(Duration::from_secs(31));
    let up = sim.take_pbx();
    assert_eq!(up.len(), 4, "2 s less than 32 s: 3.5, 7.5, 15.5, 31.5");
    let to_softphone: Vec<String> = sim
        .take_softphone()
        .into_iter()
        .filter(|m| m.starts_with("SIP/2.0"))
        .collect();
    assert_eq!(
        to_softphone.len(),
        2,
        "at 32 s, and again by Timer G at 32.5 s"
    );
    assert!(to_softphone[0].starts_with("SIP/2.0 408 Request Timeout\r\n"));
    assert_eq!(to_softphone[0], to_softphone[1]);
    let to_tag = header(&to_softphone[0], "To").unwrap();
    let ack = format!(
        "ACK sip:8600051@pbx.elsewhere.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bKPjt1\r\nMax-Forwards: 70\r\nFrom: \"Agent\" <sip:101@example.test>;tag=mf1\r\nTo: {to_tag}\r\nCall-ID: out-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    sim.softphone(&ack);
    assert!(sim.take_pbx().is_empty(), "our own 408's ACK stays here");
    sim.advance(Duration::from_secs(5));
    assert!(sim
        .take_softphone()
        .iter()
        .all(|m| !m.starts_with("SIP/2.0 408")));
}

#[test]
fn a_provisional_response_stops_invite_retransmissions() {
    let mut sim = EdgeSim::registered();
    sim.softphone(&microsip_invite("z9hG4bKPjp1", 1, ""));
    sim.take_softphone();
    let invite = sim.take_pbx().pop().unwrap();
    assert_eq!(
        sim.pbx(&respond(&invite, 100, "Trying", &[], "")),
        FromPbx::Handled
    );
    assert!(sim.take_softphone().is_empty(), "100 is not relayed");
    sim.advance(Duration::from_secs(10));
    assert!(sim.take_pbx().is_empty());
}

#[test]
fn a_bye_over_tcp_from_the_softphone_is_retransmitted_on_the_udp_flow() {
    let mut sim = EdgeSim::new();
    let tcp = LocalPeer {
        transport: Transport::Tcp,
        addr: addr("127.0.0.1:50312"),
        connection: Some(ConnectionId(3)),
    };
    let bye = format!(
        "BYE sip:8600051@198.18.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:50312;branch=z9hG4bK-tcpbye;rport\r\nRoute: <sip:127.0.0.1:5070;transport=tcp;lr;vicifast>, {OUR_RR_PBX}\r\nMax-Forwards: 70\r\nFrom: <sip:101@example.test>;tag=z1\r\nTo: <sip:8600051@example.test>;tag=p1\r\nCall-ID: tcp-call\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    sim.softphone_from(tcp, &bye);
    assert_eq!(sim.take_pbx().len(), 1);
    sim.advance(Duration::from_millis(600));
    assert_eq!(sim.take_pbx().len(), 1, "Timer E on the unreliable side");
}
