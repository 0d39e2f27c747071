//! The softphone registers with VICIfast, never with the PBX: it is challenged with the account's
//! password (MD5, or SHA-256 when configured), a wrong password or extension is refused with 403
//! and told to the agent, too many wrong passwords lock it out for a while, retransmitted
//! REGISTERs get the same answer, expiry and removal end the binding, and only loopback sources
//! are heard. Nothing of it ever reaches the PBX.

mod edge_harness;
use edge_harness::*;
use std::time::Duration;
use vicifast_core::edge::{
    DigestAlgorithm, EdgeConfig, LocalPeer, SoftphoneProblemCode, SoftphoneState,
};
use vicifast_core::Transport;

#[test]
fn challenge_then_accept_records_the_softphone() {
    let mut sim = EdgeSim::new();
    assert_eq!(sim.state(), SoftphoneState::NotRegistered);
    sim.softphone(&baresip_register("z9hG4bKa1"));
    let challenge = sim.take_softphone().pop().unwrap();
    assert!(
        challenge.starts_with("SIP/2.0 401 Unauthorized\r\n"),
        "{challenge}"
    );
    let www = header(&challenge, "WWW-Authenticate").unwrap();
    assert!(www.contains("realm=\"example.test\""));
    assert!(www.contains("algorithm=MD5"));
    assert!(www.contains("qop=\"auth\""));
    assert!(header(&challenge, "Via").unwrap().contains("rport=5062"));

    let password = sim.password.clone();
    let ok = sim.register(&baresip_register("z9hG4bKa2"), &password);
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert_eq!(
        header(&ok, "Contact").as_deref(),
        Some("<sip:101-0x5621a4d0@127.0.0.1:5062;transport=udp>;expires=600")
    );
    let status = sim.status();
    assert_eq!(status.state, SoftphoneState::Answering);
    assert_eq!(
        status.user_agent.as_deref(),
        Some("baresip v1.0.0 (x86_64/linux)")
    );
    assert_eq!(
        status.contact.as_deref(),
        Some("sip:101-0x5621a4d0@127.0.0.1:5062;transport=udp")
    );
    assert_eq!(status.expires_in, Some(600));
    assert!(sim.to_pbx.is_empty(), "nothing goes to the PBX");
}

#[test]
fn wrong_password_is_refused_locally_and_told_to_the_agent() {
    let mut sim = EdgeSim::new();
    let answer = sim.register(&baresip_register("z9hG4bKw1"), "not-the-password");
    assert!(
        answer.starts_with("SIP/2.0 403 Wrong Password\r\n"),
        "{answer}"
    );
    let status = sim.status();
    assert_eq!(status.state, SoftphoneState::NotRegistered);
    let problem = status.problem.unwrap();
    assert_eq!(problem.code, SoftphoneProblemCode::WrongPassword);
    assert!(problem.action.contains("password"));
    assert!(sim.to_pbx.is_empty(), "nothing goes to the PBX");
    // The right password afterwards clears the problem.
    sim.register_baresip();
    assert_eq!(sim.status().problem, None);
    assert_eq!(sim.state(), SoftphoneState::Answering);
}

#[test]
fn a_softphone_set_up_for_another_extension_is_refused() {
    let mut sim = EdgeSim::new();
    let other = baresip_register("z9hG4bKx1").replace("To: <sip:101@", "To: <sip:102@");
    sim.softphone(&other);
    let answer = sim.take_softphone().pop().unwrap();
    assert!(
        answer.starts_with("SIP/2.0 403 Not This Extension\r\n"),
        "{answer}"
    );
    assert_eq!(
        sim.status().problem.unwrap().code,
        SoftphoneProblemCode::WrongExtension
    );
    // Right extension, wrong user name in the credentials.
    let password = sim.password.clone();
    sim.softphone(&baresip_register("z9hG4bKx2"));
    let challenge = sim.take_softphone().pop().unwrap();
    let www = header(&challenge, "WWW-Authenticate").unwrap();
    let credentials = authorize(&www, "REGISTER", "sip:example.test", "102", &password, 1);
    sim.softphone(&with_header(
        &baresip_register("z9hG4bKx3"),
        "Authorization",
        &credentials,
    ));
    let answer = sim.take_softphone().pop().unwrap();
    assert!(answer.starts_with("SIP/2.0 403 "), "{answer}");
    assert!(sim.to_pbx.is_empty());
}

#[test]
fn too_many_wrong_passwords_lock_registration_out_for_the_window() {
    let mut sim = EdgeSim::new();
    for attempt in 0..5 {
        let answer = sim.register(&baresip_register(&format!("z9hG4bKl{attempt}")), "guess");
        assert!(answer.starts_with("SIP/2.0 403 Wrong Password"), "{answer}");
    }
    // Even the right password is refused now, without a challenge being computed.
    sim.softphone(&baresip_register("z9hG4bKl9"));
    let answer = sim.take_softphone().pop().unwrap();
    assert!(
        answer.starts_with("SIP/2.0 403 Too Many Wrong Passwords"),
        "{answer}"
    );
    assert_eq!(
        sim.status().problem.unwrap().code,
        SoftphoneProblemCode::TooManyAttempts
    );
    sim.advance(Duration::from_secs(301));
    sim.register_baresip();
    assert_eq!(sim.state(), SoftphoneState::Answering);
}

#[test]
fn sha256_challenge_when_configured() {
    let config = EdgeConfig {
        digest_algorithms: vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
        ..EdgeConfig::default()
    };
    let mut sim = EdgeSim::with_config(config);
    sim.softphone(&baresip_register("z9hG4bKs1"));
    let challenge = sim.take_softphone().pop().unwrap();
    let offered = headers(&challenge, "WWW-Authenticate");
    assert_eq!(offered.len(), 2);
    assert!(offered[0].contains("algorithm=SHA-256"));
    assert!(offered[1].contains("algorithm=MD5"));
    let password = sim.password.clone();
    let credentials = authorize(
        &offered[0],
        "REGISTER",
        "sip:example.test",
        "101",
        &password,
        1,
    );
    sim.softphone(&with_header(
        &baresip_register("z9hG4bKs2"),
        "Authorization",
        &credentials,
    ));
    let answer = sim.take_softphone().pop().unwrap();
    assert!(answer.starts_with("SIP/2.0 200 "), "{answer}");
}

#[test]
fn a_retransmitted_register_gets_the_same_answer_not_a_replay_refusal() {
    let mut sim = EdgeSim::new();
    sim.softphone(&baresip_register("z9hG4bKr1"));
    let challenge = sim.take_softphone().pop().unwrap();
    let www = header(&challenge, "WWW-Authenticate").unwrap();
    let password = sim.password.clone();
    let credentials = authorize(&www, "REGISTER", "sip:example.test", "101", &password, 1);
    let signed = with_header(
        &baresip_register("z9hG4bKr2"),
        "Authorization",
        &credentials,
    );
    sim.softphone(&signed);
    sim.softphone(&signed);
    let answers = sim.take_softphone();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].starts_with("SIP/2.0 200 "));
    // The same credentials in a new transaction are a replay: challenged afresh, marked stale.
    sim.softphone(&with_header(
        &baresip_register("z9hG4bKr3"),
        "Authorization",
        &credentials,
    ));
    let replay = sim.take_softphone().pop().unwrap();
    assert!(replay.starts_with("SIP/2.0 401 "), "{replay}");
    assert!(header(&replay, "WWW-Authenticate")
        .unwrap()
        .contains("stale=true"));
}

#[test]
fn expiry_and_removal_end_the_binding() {
    let mut sim = EdgeSim::registered();
    sim.advance(Duration::from_secs(599));
    assert_eq!(sim.status().expires_in, Some(1));
    sim.advance(Duration::from_secs(2));
    assert_eq!(sim.state(), SoftphoneState::NotRegistered);
    assert_eq!(sim.status().contact, None);

    sim.register_baresip();
    let password = sim.password.clone();
    let remove = baresip_register("z9hG4bKrm1")
        .replace(
            "Contact: <sip:101-0x5621a4d0@127.0.0.1:5062;transport=udp>;expires=600",
            "Contact: *",
        )
        .replace("Max-Forwards", "Expires: 0\r\nMax-Forwards");
    let answer = sim.register(&remove, &password);
    assert!(answer.starts_with("SIP/2.0 200 "), "{answer}");
    assert_eq!(header(&answer, "Contact"), None);
    assert_eq!(sim.state(), SoftphoneState::NotRegistered);
    assert!(sim.to_pbx.is_empty());
}

#[test]
fn too_brief_an_interval_gets_423_and_long_ones_are_capped() {
    let mut sim = EdgeSim::new();
    let password = sim.password.clone();
    let brief = baresip_register("z9hG4bKb1").replace("expires=600", "expires=20");
    let answer = sim.register(&brief, &password);
    assert!(answer.starts_with("SIP/2.0 423 "), "{answer}");
    assert_eq!(header(&answer, "Min-Expires").as_deref(), Some("60"));
    let long = baresip_register("z9hG4bKb2").replace("expires=600", "expires=86400");
    let answer = sim.register(&long, &password);
    assert!(
        header(&answer, "Contact")
            .unwrap()
            .ends_with(";expires=3600"),
        "{answer}"
    );
}

#[test]
fn microsip_and_zoiper_shapes_register_too() {
    // MicroSIP (pjsip): Expires header, `;ob` contact, Route to the outbound proxy.
    let microsip = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bKPj6f1d2c\r\nRoute: <sip:127.0.0.1:5070;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:101@{DOMAIN}>;tag=5e9b1f\r\nTo: <sip:101@{DOMAIN}>\r\nCall-ID: a8d3f0e1c2b4\r\nCSeq: 27014 REGISTER\r\nUser-Agent: MicroSIP/3.21.3\r\nContact: <sip:101@127.0.0.1:5062;ob>\r\nExpires: 300\r\nAllow: PRACK, INVITE, ACK, BYE, CANCEL, UPDATE, INFO, SUBSCRIBE, NOTIFY, REFER, MESSAGE, OPTIONS\r\nContent-Length:  0\r\n\r\n"
    );
    let mut sim = EdgeSim::new();
    let password = sim.password.clone();
    let answer = sim.register(&microsip, &password);
    assert!(answer.starts_with("SIP/2.0 200 "), "{answer}");
    assert_eq!(sim.status().user_agent.as_deref(), Some("MicroSIP/3.21.3"));
    assert_eq!(sim.status().expires_in, Some(300));

    // Zoiper over TCP, from an ephemeral port on its connection.
    let zoiper = format!(
        "REGISTER sip:{DOMAIN};transport=TCP SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:50312;branch=z9hG4bK-524287-1---8f0a2c;rport\r\nMax-Forwards: 70\r\nContact: <sip:101@127.0.0.1:50312;rinstance=8e4f1c2a9b0d;transport=TCP>\r\nTo: <sip:101@{DOMAIN};transport=TCP>\r\nFrom: <sip:101@{DOMAIN};transport=TCP>;tag=5b1e2c3d\r\nCall-ID: ZmQ4YjE2\r\nCSeq: 1 REGISTER\r\nExpires: 60\r\nSupported: replaces, norefersub, extended-refer, timer, outbound, path, X-cisco-serviceuri\r\nUser-Agent: Zoiper v2.10.19.6\r\nContent-Length: 0\r\n\r\n"
    );
    let tcp = LocalPeer {
        transport: Transport::Tcp,
        addr: addr("127.0.0.1:50312"),
        connection: Some(vicifast_core::edge::ConnectionId(7)),
    };
    let mut sim = EdgeSim::new();
    sim.softphone_from(tcp, &zoiper);
    let (to, challenge) = sim.to_softphone.pop().unwrap();
    assert_eq!(to, tcp, "answered on the connection it came on");
    let www = header(&challenge, "WWW-Authenticate").unwrap();
    let password = sim.password.clone();
    let uri = format!("sip:{DOMAIN};transport=TCP");
    let credentials = authorize(&www, "REGISTER", &uri, "101", &password, 1);
    let signed = with_header(
        &zoiper
            .replace("CSeq: 1 ", "CSeq: 2 ")
            .replace("---8f0a2c", "---9e1b3d"),
        "Authorization",
        &credentials,
    );
    sim.softphone_from(tcp, &signed);
    let (_, answer) = sim.to_softphone.pop().unwrap();
    assert!(answer.starts_with("SIP/2.0 200 "), "{answer}");
    assert_eq!(sim.status().transport, Some(Transport::Tcp));
}

#[test]
fn only_loopback_sources_are_heard() {
    let mut sim = EdgeSim::new();
    let lan = LocalPeer {
        transport: Transport::Udp,
        addr: addr("198.18.3.3:5062"),
        connection: None,
    };
    sim.softphone_from(lan, &baresip_register("z9hG4bKn1"));
    assert!(sim.to_softphone.is_empty());
    assert!(sim.to_pbx.is_empty());
    assert!(sim
        .events
        .iter()
        .all(|e| !matches!(e, vicifast_core::edge::EdgeEvent::Trace(_))));
}
