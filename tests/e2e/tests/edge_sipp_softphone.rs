//! A second softphone implementation behind VICIfast: SIPp (`sip-tester`) acting as the agent's
//! softphone, with the scenarios in `tests/e2e/sipp/` (`softphone-register.xml` registers with
//! VICIfast's listener and answers its digest challenge; `softphone-answer.xml`, SIPp's
//! out-of-call scenario, answers VICIfast's OPTIONS checks and one call with 200 and SDP, then
//! the BYE). Kamailio is the registrar and proxy; the caller is Debian's baresip registered with
//! it directly.
//!
//! - SIPp registers with VICIfast only (Kamailio holds VICIfast's binding alone) and VICIfast
//!   reports it answering.
//! - A call from baresip through Kamailio reaches SIPp through VICIfast and is answered; SIPp
//!   echoes the audio, so the caller hears its own tone back over the path VICIfast set up.
//! - The caller's BYE passes Kamailio and VICIfast and SIPp answers it 200.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vicifast_e2e::softphone::{
    analyse_wav, baresip_available, free_port_pair, free_udp_port, Softphone, SoftphoneOptions,
};
use vicifast_e2e::{register_args, Cli, Registrar, RegistrarOptions, Transport, WAIT};

const REGISTER_SCENARIO: &str = include_str!("../sipp/softphone-register.xml");
const ANSWER_SCENARIO: &str = include_str!("../sipp/softphone-answer.xml");
const CALLER_TONE: f64 = 440.0;

fn sipp_program() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("sipp"))
            .find(|p| p.is_file())
    })
}

/// SIPp running the softphone scenarios against VICIfast's listener. Dropping it kills it.
struct SippSoftphone {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl SippSoftphone {
    fn start(sipp: &Path, listen: &str, ext: &str, domain: &str, password: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vicifast-sipp-softphone-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("register.xml"), REGISTER_SCENARIO).unwrap();
        std::fs::write(dir.path().join("answer.xml"), ANSWER_SCENARIO).unwrap();
        // The password reaches SIPp in a file only its owner reads, never on its command line.
        let users = dir.path().join("users.csv");
        std::fs::write(&users, format!("SEQUENTIAL\n{ext};{domain};{password};\n")).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let port = free_port_pair();
        let media_port = free_udp_port();
        let child = Command::new(sipp)
            .arg(listen)
            .arg("-sf")
            .arg(dir.path().join("register.xml"))
            .arg("-oocsf")
            .arg(dir.path().join("answer.xml"))
            .arg("-inf")
            .arg(&users)
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", &port.to_string(), "-mp", &media_port.to_string()])
            .args(["-t", "u1", "-m", "1", "-rtp_echo"])
            // Bounded whatever happens: the test ends it long before.
            .args([
                "-timeout",
                "300s",
                "-nostdin",
                "-trace_msg",
                "-message_file",
            ])
            .arg(dir.path().join("messages.log"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("stderr.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        SippSoftphone { child, dir, port }
    }

    /// Every SIP message SIPp sent and received so far, with `\n` line ends.
    fn messages(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("messages.log"))
            .unwrap_or_default()
            .replace("\r\n", "\n")
    }

    /// Waits until SIPp's message log satisfies `pred`.
    #[track_caller]
    fn wait_messages(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.messages();
            if pred(&log) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "SIPp: no {what} within {WAIT:?}; stderr: {}\nmessages:\n{}",
                std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default(),
                tail(&log, 60)
            );
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }
}

impl Drop for SippSoftphone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Message blocks in SIPp's log whose first line starts with `start`.
fn count_starting(log: &str, start: &str) -> usize {
    log.lines()
        .filter(|l| l.trim_start().starts_with(start))
        .count()
}

/// Whether SIPp sent a response `status` (e.g. `200 OK`) to a `method` request. Its log is one
/// block per message, each after a line of dashes and a "message sent"/"received" line.
fn sent_response(log: &str, status: &str, method: &str) -> bool {
    log.split("-----------------------------------------------")
        .filter(|block| block.contains("message sent"))
        .any(|block| {
            let mut lines = block.lines().map(str::trim).filter(|l| !l.is_empty());
            let start = lines.find(|l| l.starts_with("SIP/2.0 "));
            start.is_some_and(|s| s == format!("SIP/2.0 {status}"))
                && block.lines().any(|l| {
                    let l = l.trim();
                    l.starts_with("CSeq:") && l.ends_with(&format!(" {method}"))
                })
        })
}

#[test]
fn sipp_as_the_softphone_registers_with_vicifast_and_takes_a_call() {
    let test = "sipp_as_the_softphone_registers_with_vicifast_and_takes_a_call";
    let Some(sipp) = sipp_program() else {
        vicifast_e2e::skip::skipped(test, "needs SIPp (sip-tester; make test-e2e installs it)");
        return;
    };
    if !baresip_available() {
        vicifast_e2e::skip::skipped(test, "needs baresip-core with the aufile, sndfile, g711, menu, aubridge and ctrl_tcp modules (make test-e2e installs it)");
        return;
    }
    let registrar = Registrar::start(RegistrarOptions {
        calls: true,
        ..RegistrarOptions::default()
    })
    .unwrap();
    let ext = vicifast_e2e::random_extension();
    let mut caller_ext = vicifast_e2e::random_extension();
    while caller_ext == ext {
        caller_ext = vicifast_e2e::random_extension();
    }
    let password = registrar.add_user(&ext).unwrap();
    let caller_password = registrar.add_user(&caller_ext).unwrap();

    let mut cli = Cli::spawn(
        &register_args(
            &registrar,
            Transport::Udp,
            &ext,
            &["--softphone-listen", "127.0.0.1:0"],
        ),
        &password,
    )
    .unwrap();
    let listen = cli
        .wait_for(|s| s["event"] == "softphone_listener", WAIT)
        .unwrap()["listen"]
        .as_str()
        .unwrap()
        .to_owned();
    cli.wait_for_state("registered", WAIT).unwrap();
    let vicifast_contact = cli
        .statuses()
        .iter()
        .rev()
        .filter(|s| s["event"] == "status")
        .find_map(|s| s["contact"].as_str().map(str::to_owned))
        .unwrap();

    let phone = SippSoftphone::start(&sipp, &listen, &ext, "127.0.0.1", &password);
    let answering = cli
        .wait_for(
            |s| s["event"] == "softphone" && s["state"] == "answering",
            WAIT,
        )
        .unwrap_or_else(|e| panic!("{e}\n--- SIPp ---\n{}", tail(&phone.messages(), 60)));
    eprintln!("VICIfast reports: {answering}");
    let contact = answering["contact"].as_str().unwrap_or_default();
    assert!(
        contact.contains(&format!("127.0.0.1:{}", phone.port)),
        "{answering}"
    );
    assert!(
        answering["user_agent"]
            .as_str()
            .unwrap_or_default()
            .contains("SIPp"),
        "{answering}"
    );
    // SIPp's REGISTERs stayed with VICIfast: Kamailio holds VICIfast's binding only.
    registrar.sole_binding(&ext, &vicifast_contact);
    assert!(
        registrar
            .register_attempts(&ext)
            .iter()
            .all(|a| !a.contact.contains(&format!(":{}", phone.port))),
        "a REGISTER of SIPp reached Kamailio"
    );

    let caller = Softphone::start(
        &SoftphoneOptions {
            user: caller_ext.clone(),
            password: caller_password,
            domain: "127.0.0.1".into(),
            outbound: format!("sip:127.0.0.1:{}", registrar.udp_port()),
            regint: 60,
            tone: CALLER_TONE,
            auto_answer: true,
            tcp: false,
        },
        &[],
    )
    .unwrap();
    let deadline = Instant::now() + WAIT;
    while registrar.bindings(&caller_ext).unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the caller did not register: {}",
            caller.output_tail()
        );
        std::thread::park_timeout(Duration::from_millis(50));
    }

    caller
        .command("dial", &format!("sip:{ext}@127.0.0.1"))
        .unwrap();
    cli.wait_for(|s| s["event"] == "incoming_call", WAIT)
        .unwrap();
    phone.wait_messages("INVITE answered 200", |log| {
        count_starting(log, "INVITE sip:") > 0 && sent_response(log, "200 OK", "INVITE")
    });
    phone.wait_messages("ACK", |log| count_starting(log, "ACK sip:") > 0);
    // SIPp echoes what it receives: the caller hears its own tone, back through the media path
    // VICIfast's SDP set up.
    let heard = caller.wait_heard(2.0, WAIT).unwrap();
    let echo = analyse_wav(&heard).unwrap();
    eprintln!(
        "the caller heard its tone echoed by SIPp: {:.1} Hz (rms {:.0})",
        echo.frequency, echo.rms
    );
    assert!(echo.rms > 1000.0, "the caller heard near silence: {echo:?}");
    assert!(
        (echo.frequency - CALLER_TONE).abs() < CALLER_TONE * 0.05,
        "{echo:?}"
    );

    // The caller hangs up: its BYE passes Kamailio and VICIfast, and SIPp answers it.
    caller.command("hangup", "").unwrap();
    phone.wait_messages("BYE answered 200", |log| {
        count_starting(log, "BYE sip:") > 0 && sent_response(log, "200 OK", "BYE")
    });
    caller.wait_for_output("terminated", WAIT).unwrap();

    drop(caller);
    drop(phone);
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
}
