//! The agent's softphone takes the extension's calls through VICIfast, proven with real parts:
//! Kamailio as registrar and proxy (calls between its users, 407 for its own users' INVITEs),
//! `vicifast-cli register --softphone-listen` as the edge proxy, and Debian's baresip as the
//! softphone and as the other party, each playing a different tone and recording what it hears.
//!
//! - The softphone registers with VICIfast only; Kamailio holds VICIfast's binding alone; a
//!   softphone with a wrong password is refused locally and nothing of it reaches Kamailio.
//! - A call from another extension reaches the softphone through VICIfast and is answered; each
//!   side hears the other's tone (frequency measured from the recording); the caller's BYE ends
//!   it. A call from the softphone out is challenged 407 by Kamailio, answered by the softphone
//!   itself, and carries audio; the softphone's BYE ends it.
//! - A softphone that stops is reported within the check interval, and a call then gets a final
//!   response at once instead of ringing into silence.
//! - The same over TCP between the softphone and VICIfast.
//! - The listener refuses addresses off this computer.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::path::PathBuf;
use std::time::Instant;
use vicifast_e2e::edge::{
    answering_softphone, assert_tone, new_recording, skip_without_baresip, start_vicifast,
    stop_vicifast, two_users, vicifast_contact, wait_bindings, wait_count, wait_softphone_state,
    User,
};
use vicifast_e2e::softphone::{Softphone, SoftphoneOptions};
use vicifast_e2e::{register_args, Cli, Registrar, RegistrarOptions, Transport, WAIT};

/// The softphone's tone and the other party's: far apart, so each recording says who was heard.
const SOFTPHONE_TONE: f64 = 1000.0;
const PEER_TONE: f64 = 440.0;

/// Kamailio proxying calls, with two users: the agent's extension and another one.
struct Office {
    registrar: Registrar,
    agent: User,
    peer: User,
}

fn office() -> Office {
    let registrar = Registrar::start(RegistrarOptions {
        calls: true,
        ..RegistrarOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let (agent, peer) = two_users(&registrar);
    Office {
        registrar,
        agent,
        peer,
    }
}

/// VICIfast registered for the agent's extension, with its softphone listener's address.
fn vicifast(office: &Office, extra: &[&str]) -> (Cli, String) {
    start_vicifast(
        &office.registrar,
        &office.agent.ext,
        &office.agent.password,
        extra,
    )
}

fn softphone(office: &Office, listen: &str, password: &str) -> Softphone {
    softphone_over(office, listen, password, false)
}

fn softphone_over(office: &Office, listen: &str, password: &str, tcp: bool) -> Softphone {
    Softphone::start(
        &SoftphoneOptions {
            tcp,
            ..answering_softphone(
                &office.agent.ext,
                password,
                "127.0.0.1",
                format!("sip:{listen}"),
                SOFTPHONE_TONE,
            )
        },
        &[],
    )
    .unwrap()
}

/// The other extension, registered directly with Kamailio.
fn peer(office: &Office) -> Softphone {
    let peer = Softphone::start(
        &answering_softphone(
            &office.peer.ext,
            &office.peer.password,
            "127.0.0.1",
            format!("sip:127.0.0.1:{}", office.registrar.udp_port()),
            PEER_TONE,
        ),
        &[],
    )
    .unwrap();
    wait_bindings(&office.registrar, &office.peer.ext, 1, &peer);
    peer
}

#[track_caller]
fn softphone_state(cli: &mut Cli, phone: &Softphone, state: &str) -> serde_json::Value {
    wait_softphone_state(cli, state, || phone.output_tail())
}

/// The other extension calls the agent's: VICIfast reports the call, the softphone answers, each
/// side hears the other's tone, and the caller's BYE (through Kamailio and VICIfast) ends it.
/// Returns the caller's recording.
#[track_caller]
fn call_in(
    office: &Office,
    cli: &mut Cli,
    phone: &Softphone,
    peer: &Softphone,
    how: &str,
) -> PathBuf {
    let answer = peer
        .command("dial", &format!("sip:{}@127.0.0.1", office.agent.ext))
        .unwrap();
    eprintln!("dial: {answer}");
    cli.wait_for(|s| s["event"] == "incoming_call", WAIT)
        .unwrap();
    let heard_by_softphone = phone.wait_heard(2.0, WAIT).unwrap();
    let heard_by_peer = peer.wait_heard(2.0, WAIT).unwrap();
    assert_tone(
        &heard_by_softphone,
        PEER_TONE,
        &format!("the softphone ({how})"),
    );
    assert_tone(
        &heard_by_peer,
        SOFTPHONE_TONE,
        &format!("the caller ({how})"),
    );
    peer.command("hangup", "").unwrap();
    phone.wait_for_output("terminated", WAIT).unwrap();
    heard_by_peer
}

#[test]
fn the_softphone_registers_with_vicifast_only_and_a_wrong_password_stays_local() {
    if skip_without_baresip(
        "the_softphone_registers_with_vicifast_only_and_a_wrong_password_stays_local",
    ) {
        return;
    }
    let office = office();
    let (mut cli, listen) = vicifast(&office, &[]);
    let vicifast_contact = vicifast_contact(&cli);

    let phone = softphone(&office, &listen, &office.agent.password);
    let status = softphone_state(&mut cli, &phone, "answering");
    assert!(
        status["user_agent"]
            .as_str()
            .unwrap_or_default()
            .contains("baresip"),
        "{status}"
    );
    let contact = status["contact"].as_str().unwrap();
    assert!(contact.contains(&phone.sip_addr()), "{contact}");
    // Kamailio holds VICIfast's binding and nothing else.
    office
        .registrar
        .sole_binding(&office.agent.ext, &vicifast_contact);

    // A second softphone with a wrong password: refused here, never forwarded.
    let attempts_before = office.registrar.register_attempts(&office.agent.ext).len();
    let wrong = softphone(&office, &listen, "not-the-password");
    let problem = cli
        .wait_for(
            |s| s["event"] == "softphone" && s["problem"]["code"] == "wrong_password",
            WAIT,
        )
        .unwrap();
    eprintln!("reported: {}", problem["problem"]["message"]);
    let sent_by_softphones: Vec<_> = office
        .registrar
        .register_attempts(&office.agent.ext)
        .into_iter()
        .filter(|a| a.contact.contains(&wrong.sip_addr()) || a.contact.contains(&phone.sip_addr()))
        .collect();
    assert!(sent_by_softphones.is_empty(), "{sent_by_softphones:?}");
    assert!(office.registrar.register_attempts(&office.agent.ext).len() >= attempts_before);
    office
        .registrar
        .sole_binding(&office.agent.ext, &vicifast_contact);
    drop(wrong);
    drop(phone);
    stop_vicifast(cli);
}

#[test]
fn calls_in_and_out_reach_the_softphone_through_vicifast_with_audio_both_ways() {
    if skip_without_baresip(
        "calls_in_and_out_reach_the_softphone_through_vicifast_with_audio_both_ways",
    ) {
        return;
    }
    let office = office();
    let (mut cli, listen) = vicifast(&office, &[]);
    let phone = softphone(&office, &listen, &office.agent.password);
    softphone_state(&mut cli, &phone, "answering");
    let peer = peer(&office);

    let heard_by_peer = call_in(&office, &mut cli, &phone, &peer, "call in");

    // Out: the softphone calls the other extension; Kamailio challenges it (407).
    let challenges_before = office
        .registrar
        .log_text()
        .matches("VFPROXYAUTH INVITE")
        .count();
    phone
        .command("dial", &format!("sip:{}@127.0.0.1", office.peer.ext))
        .unwrap();
    let heard_out = new_recording(&peer, Some(&heard_by_peer), "the peer");
    peer.wait_heard(2.0, WAIT).unwrap();
    phone.wait_heard(2.0, WAIT).unwrap();
    assert_tone(&heard_out, SOFTPHONE_TONE, "the callee (call out)");
    let challenges = office
        .registrar
        .log_text()
        .matches("VFPROXYAUTH INVITE")
        .count();
    assert!(
        challenges > challenges_before,
        "Kamailio did not challenge the softphone's INVITE:\n{}",
        office.registrar.log_tail()
    );
    phone.command("hangup", "").unwrap();
    assert!(
        wait_count(&peer, "terminated", 1, WAIT),
        "the softphone's BYE did not end the call: {}",
        peer.output_tail()
    );
    drop(phone);
    drop(peer);
    stop_vicifast(cli);
}

#[test]
fn a_softphone_over_tcp_registers_and_takes_a_call() {
    if skip_without_baresip("a_softphone_over_tcp_registers_and_takes_a_call") {
        return;
    }
    let office = office();
    let (mut cli, listen) = vicifast(&office, &[]);
    let phone = softphone_over(&office, &listen, &office.agent.password, true);
    let status = softphone_state(&mut cli, &phone, "answering");
    assert_eq!(status["transport"], "tcp", "{status}");
    let peer = peer(&office);
    call_in(&office, &mut cli, &phone, &peer, "softphone over TCP");
    drop(phone);
    drop(peer);
    stop_vicifast(cli);
}

#[test]
fn a_softphone_that_stops_is_reported_and_calls_get_an_answer_at_once() {
    if skip_without_baresip("a_softphone_that_stops_is_reported_and_calls_get_an_answer_at_once") {
        return;
    }
    let office = office();
    let (mut cli, listen) = vicifast(&office, &["--softphone-check-interval", "2"]);
    let mut phone = softphone(&office, &listen, &office.agent.password);
    softphone_state(&mut cli, &phone, "answering");
    let peer = peer(&office);

    // A crash: no un-REGISTER, the softphone just stops answering.
    phone.kill();
    let stopped = Instant::now();
    softphone_state(&mut cli, &phone, "not_answering");
    eprintln!(
        "reported not answering {:?} after the kill (check interval 2 s)",
        stopped.elapsed()
    );

    let dialled = Instant::now();
    peer.command("dial", &format!("sip:{}@127.0.0.1", office.agent.ext))
        .unwrap();
    let refused = cli
        .wait_for(|s| s["event"] == "call_refused", WAIT)
        .unwrap();
    eprintln!(
        "refused {:?} after dialling: {}",
        dialled.elapsed(),
        refused["reason"]
    );
    peer.wait_for_output("480", WAIT).unwrap();
    drop(peer);
    stop_vicifast(cli);
}

#[test]
fn the_listener_refuses_addresses_off_this_computer() {
    let office = office();
    let finished = Cli::run(
        &register_args(
            &office.registrar,
            Transport::Udp,
            &office.agent.ext,
            &["--softphone-listen", "198.18.0.1:5070"],
        ),
        &office.agent.password,
        WAIT,
    )
    .unwrap();
    assert_eq!(finished.status.code(), Some(2), "{}", finished.stderr);
    assert!(
        finished.stderr.contains("this computer only"),
        "{}",
        finished.stderr
    );
    assert_eq!(
        office.registrar.register_count(&office.agent.ext),
        0,
        "nothing sent"
    );
}
