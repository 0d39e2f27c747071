//! A flood of junk from the network does not become a flood of log lines: the first few drops
//! of each minute get a line each, the rest one summary line with counts per reason; bytes the
//! sender chose (NUL, CR, LF, ESC) never reach the log raw.

mod harness;
use harness::*;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vicifast_core::RegistrationState;

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged_while(run: impl FnOnce()) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, run);
    let bytes = captured.0.lock().expect("log buffer").clone();
    String::from_utf8(bytes).expect("utf-8 log")
}

#[test]
fn ten_thousand_junk_datagrams_give_a_handful_of_lines_and_no_raw_control_bytes() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    let log = logged_while(|| {
        for i in 0..10_000 {
            let junk: &[u8] = match i % 3 {
                0 => b"HELLO\0\x1b[31m SIP/2.0\r\nInjected: yes\r\n\r\n",
                1 => b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 198.18.9.9;branch=z9hG4bKforged\r\n\r\n",
                _ => b"\x1b]0;pwned\x07\r\n\r\n",
            };
            let from = if i % 7 == 0 {
                "198.18.66.6:5060"
            } else {
                REGISTRAR
            };
            sim.inject_bytes(from, junk);
            if i % 1000 == 999 {
                sim.run_for(Duration::from_secs(20));
            }
        }
        sim.run_for(Duration::from_secs(120));
    });
    let lines: Vec<&str> = log.lines().collect();
    let one_by_one = lines.iter().filter(|l| l.contains("dropped: ")).count();
    let summaries: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("more dropped in 60 s"))
        .collect();
    println!(
        "{} log lines for 10,000 junk datagrams over 320 s:\n{log}",
        lines.len()
    );
    // 320 s of flood: 6 intervals at most, 5 lines and one summary each.
    assert!(one_by_one <= 6 * 5, "{one_by_one} lines");
    assert!(
        !summaries.is_empty() && summaries.len() <= 6,
        "{summaries:#?}"
    );
    assert!(lines.len() <= 6 * 6 + 10, "{} lines", lines.len());
    assert!(
        summaries.iter().any(|l| l.contains("malformed message")),
        "counts per reason: {summaries:#?}"
    );
    assert!(!log.contains('\0') && !log.contains('\x1b') && !log.contains('\r'));
    assert!(
        !log.contains("\nInjected"),
        "no line of the sender's making"
    );
    assert_eq!(sim.last_status().state, RegistrationState::Registered);
}

#[test]
fn the_summary_is_not_lost_when_the_registration_stops_or_fails() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    let log = logged_while(|| {
        for _ in 0..100 {
            sim.inject_bytes(REGISTRAR, b"junk\r\n\r\n");
        }
        sim.reg.stop(sim.now);
        sim.drain();
    });
    assert!(sim.finished());
    assert!(
        log.contains("95 more dropped in 60 s without a line each: malformed message 95"),
        "{log}"
    );
}
