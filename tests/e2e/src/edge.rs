//! Set-up and checks shared by the edge-proxy tests (VICIfast between the agent's softphone and
//! the PBX): Kamailio with the agent's extension and another one, `vicifast-cli register
//! --softphone-listen`, baresip softphones registered through VICIfast or directly, and the
//! checks on what each side heard.
#![allow(clippy::unwrap_used)] // test harness: a panic is the failure report

use crate::softphone::{analyse_wav, baresip_available, Softphone, SoftphoneOptions};
use crate::{register_args, Cli, Registrar, Transport, WAIT};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Skips `test` (with the message the run's summary counts) when baresip or one of the modules
/// the edge tests need is missing; true when skipped.
pub fn skip_without_baresip(test: &str) -> bool {
    if baresip_available() {
        return false;
    }
    crate::skip::skipped(
        test,
        "needs baresip-core with the aufile, sndfile, g711, menu, aubridge and ctrl_tcp modules (make test-e2e installs it)",
    );
    true
}

/// A user of the registrar: an extension and its password.
#[derive(Debug, Clone)]
pub struct User {
    pub ext: String,
    pub password: String,
}

/// Adds two distinct fresh users to `registrar`: the agent's extension and another one (the
/// other party of calls).
pub fn two_users(registrar: &Registrar) -> (User, User) {
    let ext = crate::random_extension();
    let mut other = crate::random_extension();
    while other == ext {
        other = crate::random_extension();
    }
    let user = |ext: String| User {
        password: registrar.add_user(&ext).unwrap(),
        ext,
    };
    (user(ext), user(other))
}

/// `vicifast-cli register … --softphone-listen 127.0.0.1:0 <extra>` over UDP, once registered;
/// returns it with its softphone listener's address.
pub fn start_vicifast(
    registrar: &Registrar,
    ext: &str,
    password: &str,
    extra: &[&str],
) -> (Cli, String) {
    let mut args = vec!["--softphone-listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut cli = Cli::spawn(
        &register_args(registrar, Transport::Udp, ext, &args),
        password,
    )
    .unwrap();
    let listen = wait_listener(&mut cli);
    cli.wait_for_state("registered", WAIT).unwrap();
    (cli, listen)
}

/// Waits for VICIfast's `softphone_listener` event and returns the address it listens on.
#[track_caller]
pub fn wait_listener(cli: &mut Cli) -> String {
    cli.wait_for(|s| s["event"] == "softphone_listener", WAIT)
        .unwrap()["listen"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The Contact of VICIfast's latest status.
#[track_caller]
pub fn vicifast_contact(cli: &Cli) -> String {
    cli.statuses()
        .iter()
        .rev()
        .filter(|s| s["event"] == "status")
        .find_map(|s| s["contact"].as_str().map(str::to_owned))
        .unwrap()
}

/// Waits until VICIfast reports its softphone in `state` (`answering`, `not_answering`…); on
/// failure the panic shows `softphone_output()`, what the softphone said.
#[track_caller]
pub fn wait_softphone_state(
    cli: &mut Cli,
    state: &str,
    softphone_output: impl FnOnce() -> String,
) -> Value {
    match cli.wait_for(|s| s["event"] == "softphone" && s["state"] == state, WAIT) {
        Ok(status) => status,
        Err(err) => panic!("{err}\n--- softphone ---\n{}", softphone_output()),
    }
}

/// A baresip answering calls at once and playing `tone`, registering every 60 s over UDP as
/// `user` through `outbound` (`sip:host:port`).
pub fn answering_softphone(
    user: &str,
    password: &str,
    domain: &str,
    outbound: String,
    tone: f64,
) -> SoftphoneOptions {
    SoftphoneOptions {
        user: user.to_owned(),
        password: password.to_owned(),
        domain: domain.to_owned(),
        outbound,
        regint: 60,
        tone,
        auto_answer: true,
        tcp: false,
    }
}

/// Waits until `registrar` holds at least `count` bindings for `ext`, which `phone` registers.
#[track_caller]
pub fn wait_bindings(registrar: &Registrar, ext: &str, count: usize, phone: &Softphone) {
    let deadline = Instant::now() + WAIT;
    loop {
        let bindings = registrar.bindings(ext).unwrap();
        if bindings.len() >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{ext} has {} of the {count} bindings expected: {bindings:?}\n--- baresip ---\n{}",
            bindings.len(),
            phone.output_tail()
        );
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// Waits until `phone` has a recording other than `before` (a new call's) and returns it.
#[track_caller]
pub fn new_recording(phone: &Softphone, before: Option<&Path>, who: &str) -> PathBuf {
    let deadline = Instant::now() + WAIT;
    loop {
        match phone.heard_file() {
            Some(file) if Some(file.as_path()) != before => return file,
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "no new call at {who}: {}",
                    phone.output_tail()
                );
                std::thread::park_timeout(Duration::from_millis(50));
            }
        }
    }
}

/// Waits until `phone` has printed `needle` more than `before` times; false if not within
/// `limit`.
pub fn wait_count(phone: &Softphone, needle: &str, before: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while phone.count_output(needle) <= before {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
    true
}

/// Asserts a recording carries `expected` Hz (±5 %) loudly, prints what was measured and
/// returns the frequency. `who` names the listener, e.g. "the caller".
#[track_caller]
pub fn assert_tone(file: &Path, expected: f64, who: &str) -> f64 {
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

/// Interrupts VICIfast as the user would (Ctrl-C) and asserts it exits cleanly.
#[track_caller]
pub fn stop_vicifast(mut cli: Cli) {
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
}
