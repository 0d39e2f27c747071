//! Bad input from the user (issue 8, cases 2 and 8): a CR, LF or other control character in
//! `--user`, `--domain` or `--auth-user` never reaches the wire (the CLI refuses it as bad usage,
//! exit 2, before sending anything); absurd `--registrar` and `--expires` values get a clear
//! message; and a TLS certificate that cannot be verified is said once, as needing the user,
//! instead of being retried.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use vicifast_e2e::fake_registrar::{summary, FakeRegistrar, FakeTransport, Step};
use vicifast_e2e::{
    account_args, random_password, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT,
};

/// A usage error is found before any network work; this only bounds a broken build's wait.
const USAGE_DEADLINE: Duration = Duration::from_secs(10);

/// Runs `register` against a fake registrar with `flag value` added and expects exit 2, a
/// message on stderr, and no REGISTER on the wire (so no injected header either).
fn refused_before_the_wire(flag: &str, value: &str) {
    let fake = FakeRegistrar::start(vec![Step::ok(60)]).unwrap();
    let mut args = fake.register_args(FakeTransport::Udp, "2003", &[]);
    if flag == "--user" {
        let at = args.iter().position(|a| a == "--user").unwrap();
        args[at + 1] = value.to_owned();
    } else {
        args.push(flag.to_owned());
        args.push(value.to_owned());
    }
    // `run` waits for the exit and for everything the CLI wrote on stderr.
    let finished = Cli::run(&args, &random_password(), USAGE_DEADLINE);
    let registers = fake.registers();
    for register in &registers {
        assert!(
            !register
                .text
                .split("\r\n")
                .any(|line| line.to_ascii_lowercase().starts_with("x-injected")),
            "{flag} {value:?} injected a header line:\n{}",
            register.text
        );
    }
    let finished = finished.unwrap_or_else(|report| panic!("{flag} {value:?}: {}", cut(&report)));
    assert_eq!(
        finished.status.code(),
        Some(2),
        "{flag} {value:?}: {} REGISTERs sent: {}",
        registers.len(),
        summary(&registers)
    );
    assert!(
        registers.is_empty(),
        "{flag} {value:?}: {}",
        summary(&registers)
    );
    let stderr = &finished.stderr;
    assert!(
        stderr.contains(flag.trim_start_matches('-')),
        "{flag} {value:?}: the message does not name the flag:\n{stderr}"
    );
    assert!(
        !stderr.contains("X-Injected: yes\n"),
        "the value is echoed raw:\n{stderr}"
    );
}

#[test]
fn line_breaks_in_user_domain_or_auth_user_never_reach_the_wire() {
    for flag in ["--user", "--domain", "--auth-user"] {
        for value in [
            "2003\r\nX-Injected: yes",
            "2003\nX-Injected: yes",
            "2003\rX-Injected: yes",
        ] {
            refused_before_the_wire(flag, value);
        }
    }
}

#[test]
fn other_control_characters_in_user_domain_or_auth_user_are_refused() {
    for flag in ["--user", "--domain", "--auth-user"] {
        // (NUL cannot be passed in an argument at all.)
        for value in ["20\t03", "20\u{1b}[31m03", "20\u{7f}03"] {
            refused_before_the_wire(flag, value);
        }
    }
}

fn usage_error(args: &[&str]) -> String {
    let finished = Cli::run(args, &random_password(), USAGE_DEADLINE)
        .unwrap_or_else(|report| panic!("{}", cut(&report)));
    assert_eq!(
        finished.status.code(),
        Some(2),
        "stdout {}, stderr {}",
        cut(&finished.stdout.join("\n")),
        cut(&finished.stderr)
    );
    assert!(!finished.stderr.is_empty(), "{args:?}: no message");
    finished.stderr
}

#[test]
fn ten_kilobyte_registrar_host_is_refused() {
    let host = "a".repeat(10_000);
    let stderr = usage_error(&["register", "--registrar", &host, "--user", "2003"]);
    assert!(stderr.contains("registrar"), "{stderr}");
    // The message says what is wrong; it does not paste 10 KB back at the user.
    assert!(stderr.len() < 2_000, "{} bytes of message", stderr.len());
}

#[test]
fn registrar_with_two_colons_is_refused() {
    let stderr = usage_error(&["register", "--registrar", "a:b:5060", "--user", "2003"]);
    assert!(stderr.contains("registrar"), "{stderr}");
}

#[test]
fn negative_expires_gets_a_clear_message() {
    let stderr = usage_error(&[
        "register",
        "--registrar",
        "127.0.0.1:9",
        "--user",
        "2003",
        "--expires",
        "-1",
    ]);
    assert!(stderr.contains("expires"), "{stderr}");
    // clap's "unexpected argument '-1'" does not tell the user what --expires takes.
    assert!(!stderr.contains("unexpected argument"), "{stderr}");
}

/// At most 1,000 characters of `text` (the 10 KB host name would bury a failure's message).
fn cut(text: &str) -> String {
    let cut: String = text.chars().take(1_000).collect();
    if cut.len() < text.len() {
        format!("{cut}… ({} bytes in all)", text.len())
    } else {
        cut
    }
}

/// Counts TCP connections on their way to `upstream` and relays their bytes both ways; stops
/// when dropped.
struct CountingRelay {
    port: u16,
    accepted: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl CountingRelay {
    fn start(upstream: u16) -> CountingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (Arc::clone(&accepted), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                            continue;
                        };
                        pump(&client, &server, &halt);
                        pump(&server, &client, &halt);
                    }
                    Err(_) => std::thread::park_timeout(Duration::from_millis(10)),
                }
            }
        });
        CountingRelay {
            port,
            accepted,
            stop,
        }
    }
}

impl Drop for CountingRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn pump(from: &TcpStream, to: &TcpStream, halt: &Arc<AtomicBool>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    let halt = Arc::clone(halt);
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while !halt.load(Ordering::SeqCst) {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

#[test]
fn untrusted_certificate_is_said_once_and_not_retried() {
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let relay = CountingRelay::start(registrar.port(Transport::Tls));
    // The registrar's flags, minus --ca-file (so its certificate is not trusted), through the
    // relay.
    let mut args = vec!["register".to_owned(), "--json".to_owned()];
    let account = account_args(&registrar, Transport::Tls, &ext);
    let ca = account.iter().position(|a| a == "--ca-file").unwrap();
    args.extend(account[..ca].iter().cloned());
    let at = args.iter().position(|a| a == "--registrar").unwrap();
    args[at + 1] = format!("127.0.0.1:{}", relay.port);
    let mut cli = Cli::spawn(&args, &password).unwrap();

    let failed = cli.wait_for_state("failed", WAIT).unwrap();
    assert_eq!(failed["problem"]["code"], "tls_certificate", "{failed}");
    assert_eq!(cli.wait_exit(WAIT).unwrap().code(), Some(1));
    let tls_statuses = cli
        .statuses()
        .iter()
        .filter(|s| s["problem"]["code"] == "tls_certificate")
        .count();
    assert_eq!(tls_statuses, 1, "{:?}", cli.statuses());
    let connections = relay.accepted.load(Ordering::SeqCst);
    println!("hostile-figure case=8-tls-untrusted connections={connections}");
    assert_eq!(connections, 1, "one handshake, then it needs the user");
    assert_eq!(registrar.register_count(&ext), 0);
}
