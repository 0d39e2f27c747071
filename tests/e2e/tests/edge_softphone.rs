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

use serde_json::Value;
use std::time::{Duration, Instant};
use vicifast_e2e::softphone::{analyse_wav, baresip_available, Softphone, SoftphoneOptions};
use vicifast_e2e::{register_args, Cli, Registrar, RegistrarOptions, Transport, WAIT};

/// The softphone's tone and the other party's: far apart, so each recording says who was heard.
const SOFTPHONE_TONE: f64 = 1000.0;
const PEER_TONE: f64 = 440.0;

fn skip_without_baresip(test: &str) -> bool {
    if baresip_available() {
        return false;
    }
    vicifast_e2e::skip::skipped(test, "needs baresip-core with the aufile, sndfile, g711, menu, aubridge and ctrl_tcp modules (make test-e2e installs it)");
    true
}

/// Kamailio proxying calls, with two users: the agent's extension and another one.
struct Office {
    registrar: Registrar,
    ext: String,
    password: String,
    peer_ext: String,
    peer_password: String,
}

fn office() -> Office {
    let registrar = Registrar::start(RegistrarOptions {
        calls: true,
        ..RegistrarOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let ext = vicifast_e2e::random_extension();
    let mut peer_ext = vicifast_e2e::random_extension();
    while peer_ext == ext {
        peer_ext = vicifast_e2e::random_extension();
    }
    let password = registrar.add_user(&ext).unwrap();
    let peer_password = registrar.add_user(&peer_ext).unwrap();
    Office {
        registrar,
        ext,
        password,
        peer_ext,
        peer_password,
    }
}

/// `vicifast-cli register … --softphone-listen 127.0.0.1:0`, registered; returns the listener.
fn start_vicifast(office: &Office, extra: &[&str]) -> (Cli, String) {
    let mut args = vec!["--softphone-listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut cli = Cli::spawn(
        &register_args(&office.registrar, Transport::Udp, &office.ext, &args),
        &office.password,
    )
    .unwrap();
    let listen = cli
        .wait_for(|s| s["event"] == "softphone_listener", WAIT)
        .unwrap()["listen"]
        .as_str()
        .unwrap()
        .to_owned();
    cli.wait_for_state("registered", WAIT).unwrap();
    (cli, listen)
}

fn softphone(office: &Office, listen: &str, password: &str) -> Softphone {
    softphone_over(office, listen, password, false)
}

fn softphone_over(office: &Office, listen: &str, password: &str, tcp: bool) -> Softphone {
    Softphone::start(
        &SoftphoneOptions {
            user: office.ext.clone(),
            password: password.to_owned(),
            domain: "127.0.0.1".into(),
            outbound: format!("sip:{listen}"),
            regint: 60,
            tone: SOFTPHONE_TONE,
            auto_answer: true,
            tcp,
        },
        &[],
    )
    .unwrap()
}

/// The other extension, registered directly with Kamailio.
fn peer(office: &Office) -> Softphone {
    let peer = Softphone::start(
        &SoftphoneOptions {
            user: office.peer_ext.clone(),
            password: office.peer_password.clone(),
            domain: "127.0.0.1".into(),
            outbound: format!("sip:127.0.0.1:{}", office.registrar.udp_port()),
            regint: 60,
            tone: PEER_TONE,
            auto_answer: true,
            tcp: false,
        },
        &[],
    )
    .unwrap();
    let deadline = Instant::now() + WAIT;
    while office
        .registrar
        .bindings(&office.peer_ext)
        .unwrap()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the peer did not register: {}",
            peer.output_tail()
        );
        std::thread::park_timeout(Duration::from_millis(50));
    }
    peer
}

#[track_caller]
fn softphone_state(cli: &mut Cli, phone: &Softphone, state: &str, timeout: Duration) -> Value {
    match cli.wait_for(
        |s| s["event"] == "softphone" && s["state"] == state,
        timeout,
    ) {
        Ok(status) => status,
        Err(err) => panic!("{err}\n--- baresip ---\n{}", phone.output_tail()),
    }
}

/// Asserts a recording is `expected` Hz (±5 %) and loud, and returns the frequency measured.
#[track_caller]
fn assert_tone(file: &std::path::Path, expected: f64, who: &str) -> f64 {
    let heard = analyse_wav(file).unwrap();
    assert!(heard.rms > 1000.0, "{who} heard near silence: {heard:?}");
    assert!(
        (heard.frequency - expected).abs() < expected * 0.05,
        "{who} heard {heard:?}, expected {expected} Hz"
    );
    eprintln!(
        "{who} heard {:.1} Hz (rms {:.0}) over {:.1} s",
        heard.frequency, heard.rms, heard.seconds
    );
    heard.frequency
}

#[test]
fn the_softphone_registers_with_vicifast_only_and_a_wrong_password_stays_local() {
    if skip_without_baresip(
        "the_softphone_registers_with_vicifast_only_and_a_wrong_password_stays_local",
    ) {
        return;
    }
    let office = office();
    let (mut cli, listen) = start_vicifast(&office, &[]);
    let vicifast_contact = cli
        .statuses()
        .iter()
        .rev()
        .filter(|s| s["event"] == "status")
        .find_map(|s| s["contact"].as_str().map(str::to_owned))
        .unwrap();

    let phone = softphone(&office, &listen, &office.password);
    let status = softphone_state(&mut cli, &phone, "answering", WAIT);
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
        .sole_binding(&office.ext, &vicifast_contact);

    // A second softphone with a wrong password: refused here, never forwarded.
    let attempts_before = office.registrar.register_attempts(&office.ext).len();
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
        .register_attempts(&office.ext)
        .into_iter()
        .filter(|a| a.contact.contains(&wrong.sip_addr()) || a.contact.contains(&phone.sip_addr()))
        .collect();
    assert!(sent_by_softphones.is_empty(), "{sent_by_softphones:?}");
    assert!(office.registrar.register_attempts(&office.ext).len() >= attempts_before);
    office
        .registrar
        .sole_binding(&office.ext, &vicifast_contact);
    drop(wrong);
    drop(phone);
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
}

#[test]
fn calls_in_and_out_reach_the_softphone_through_vicifast_with_audio_both_ways() {
    if skip_without_baresip(
        "calls_in_and_out_reach_the_softphone_through_vicifast_with_audio_both_ways",
    ) {
        return;
    }
    let office = office();
    let (mut cli, listen) = start_vicifast(&office, &[]);
    let phone = softphone(&office, &listen, &office.password);
    softphone_state(&mut cli, &phone, "answering", WAIT);
    let peer = peer(&office);

    // In: the other extension calls the agent's.
    let answer = peer
        .command("dial", &format!("sip:{}@127.0.0.1", office.ext))
        .unwrap();
    eprintln!("dial: {answer}");
    cli.wait_for(|s| s["event"] == "incoming_call", WAIT)
        .unwrap();
    let heard_by_softphone = phone.wait_heard(2.0, WAIT).unwrap();
    let heard_by_peer = peer.wait_heard(2.0, WAIT).unwrap();
    assert_tone(&heard_by_softphone, PEER_TONE, "softphone (call in)");
    assert_tone(&heard_by_peer, SOFTPHONE_TONE, "caller (call in)");
    // The caller hangs up: its BYE reaches the softphone through Kamailio and VICIfast.
    peer.command("hangup", "").unwrap();
    phone.wait_for_output("terminated", WAIT).unwrap();

    // Out: the softphone calls the other extension; Kamailio challenges it (407).
    let challenges_before = office
        .registrar
        .log_text()
        .matches("VFPROXYAUTH INVITE")
        .count();
    phone
        .command("dial", &format!("sip:{}@127.0.0.1", office.peer_ext))
        .unwrap();
    let first_peer_call = heard_by_peer.clone();
    let deadline = Instant::now() + WAIT;
    let heard_out = loop {
        match peer.heard_file() {
            Some(f) if f != first_peer_call => break f,
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "no second call at the peer: {}",
                    peer.output_tail()
                );
                std::thread::park_timeout(Duration::from_millis(50));
            }
        }
    };
    peer.wait_heard(2.0, WAIT).unwrap();
    phone.wait_heard(2.0, WAIT).unwrap();
    assert_tone(&heard_out, SOFTPHONE_TONE, "callee (call out)");
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
    let deadline = Instant::now() + WAIT;
    while peer.count_output("terminated") < 2 {
        assert!(
            Instant::now() < deadline,
            "the softphone's BYE did not end the call: {}",
            peer.output_tail()
        );
        std::thread::park_timeout(Duration::from_millis(50));
    }
    drop(phone);
    drop(peer);
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
}

#[test]
fn a_softphone_over_tcp_registers_and_takes_a_call() {
    if skip_without_baresip("a_softphone_over_tcp_registers_and_takes_a_call") {
        return;
    }
    let office = office();
    let (mut cli, listen) = start_vicifast(&office, &[]);
    let phone = softphone_over(&office, &listen, &office.password, true);
    let status = softphone_state(&mut cli, &phone, "answering", WAIT);
    assert_eq!(status["transport"], "tcp", "{status}");
    let peer = peer(&office);
    peer.command("dial", &format!("sip:{}@127.0.0.1", office.ext))
        .unwrap();
    let heard = phone.wait_heard(2.0, WAIT).unwrap();
    assert_tone(&heard, PEER_TONE, "softphone over TCP (call in)");
    let heard = peer.wait_heard(2.0, WAIT).unwrap();
    assert_tone(&heard, SOFTPHONE_TONE, "caller of the TCP softphone");
    peer.command("hangup", "").unwrap();
    phone.wait_for_output("terminated", WAIT).unwrap();
    drop(phone);
    drop(peer);
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
}

#[test]
fn a_softphone_that_stops_is_reported_and_calls_get_an_answer_at_once() {
    if skip_without_baresip("a_softphone_that_stops_is_reported_and_calls_get_an_answer_at_once") {
        return;
    }
    let office = office();
    let (mut cli, listen) = start_vicifast(&office, &["--softphone-check-interval", "2"]);
    let mut phone = softphone(&office, &listen, &office.password);
    softphone_state(&mut cli, &phone, "answering", WAIT);
    let peer = peer(&office);

    // A crash: no un-REGISTER, the softphone just stops answering.
    phone.kill();
    let stopped = Instant::now();
    softphone_state(&mut cli, &phone, "not_answering", WAIT);
    eprintln!(
        "reported not answering {:?} after the kill (check interval 2 s)",
        stopped.elapsed()
    );

    let dialled = Instant::now();
    peer.command("dial", &format!("sip:{}@127.0.0.1", office.ext))
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
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
}

#[test]
fn the_listener_refuses_addresses_off_this_computer() {
    let office = office();
    let finished = Cli::run(
        &register_args(
            &office.registrar,
            Transport::Udp,
            &office.ext,
            &["--softphone-listen", "198.18.0.1:5070"],
        ),
        &office.password,
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
        office.registrar.register_count(&office.ext),
        0,
        "nothing sent"
    );
}
