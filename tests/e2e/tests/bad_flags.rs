//! Bad usage exits 2 without contacting anyone: unknown flag, unknown subcommand, bad transport,
//! missing required flag, a line break in a value that reaches the wire, a malformed host or
//! lifetime.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use vicifast_e2e::{random_password, Cli, WAIT};

fn exit_code(args: &[&str]) -> Option<i32> {
    let output = Cli::run(args, &random_password(), WAIT).unwrap();
    assert!(
        !output.stderr.is_empty(),
        "no explanation on stderr for {args:?}"
    );
    output.status.code()
}

#[test]
fn unknown_flag_is_usage_error() {
    let code = exit_code(&[
        "register",
        "--registrar",
        "127.0.0.1:9",
        "--user",
        "1",
        "--frobnicate",
    ]);
    assert_eq!(code, Some(2));
}

#[test]
fn unknown_subcommand_is_usage_error() {
    assert_eq!(exit_code(&["frobnicate"]), Some(2));
}

#[test]
fn bad_transport_is_usage_error() {
    let code = exit_code(&[
        "register",
        "--registrar",
        "127.0.0.1:9",
        "--user",
        "1",
        "--transport",
        "pigeon",
    ]);
    assert_eq!(code, Some(2));
}

#[test]
fn missing_user_is_usage_error() {
    assert_eq!(
        exit_code(&["register", "--registrar", "127.0.0.1:9"]),
        Some(2)
    );
}

/// A CR/LF in any flag that reaches the wire is refused with a message naming the flag, and
/// nothing reaches the registrar: each run exits before sending, so whatever it had sent would
/// already be waiting on the loopback sockets when it is gone.
#[test]
fn line_breaks_in_flags_are_refused_and_nothing_is_sent() {
    use std::net::{TcpListener, UdpSocket};
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let udp_registrar = format!("sip:{};transport=udp", udp.local_addr().unwrap());
    let tcp_registrar = format!("sip:{};transport=tcp", tcp.local_addr().unwrap());
    let injected = "\r\nX-Injected: 1";
    for registrar in [&udp_registrar, &tcp_registrar] {
        for (flag, value) in [
            ("--user", format!("101{injected}")),
            ("--auth-user", format!("agent{injected}")),
            ("--domain", format!("example.com{injected}")),
            ("--outbound-proxy", format!("{registrar}{injected}")),
        ] {
            let mut args = vec!["register", "--registrar", registrar.as_str()];
            if flag != "--user" {
                args.extend(["--user", "101"]);
            }
            args.extend([flag, value.as_str()]);
            let output = Cli::run(&args, &random_password(), WAIT).unwrap();
            assert_eq!(output.status.code(), Some(2), "{flag}: {}", output.stderr);
            assert!(
                output.stderr.contains(flag) && output.stderr.contains("control characters"),
                "{flag}: unclear refusal: {}",
                output.stderr
            );
        }
    }
    let output = Cli::run(
        &[
            "register",
            "--registrar",
            &format!("127.0.0.1{injected}"),
            "--user",
            "101",
        ],
        &random_password(),
        WAIT,
    )
    .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", output.stderr);
    assert!(output.stderr.contains("--registrar"), "{}", output.stderr);

    let mut buf = [0u8; 2048];
    let sent = udp.recv_from(&mut buf);
    assert!(
        matches!(&sent, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a refused run sent a datagram: {sent:?}"
    );
    let connected = tcp.accept();
    assert!(
        matches!(&connected, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a refused run connected: {connected:?}"
    );
}

#[test]
fn malformed_registrars_and_lifetimes_are_usage_errors() {
    let long = "a".repeat(10_000);
    for (args, words) in [
        (
            vec!["--registrar", long.as_str(), "--user", "1"],
            "at most 253",
        ),
        (vec!["--registrar", "a:b:5060", "--user", "1"], "brackets"),
        (
            vec![
                "--registrar",
                "127.0.0.1:9",
                "--user",
                "1",
                "--expires",
                "-1",
            ],
            "from 1 to 86400",
        ),
    ] {
        let mut argv = vec!["register"];
        argv.extend(args);
        let output = Cli::run(&argv, &random_password(), WAIT).unwrap();
        assert_eq!(output.status.code(), Some(2), "{argv:?}");
        assert!(output.stderr.contains(words), "{argv:?}: {}", output.stderr);
        assert!(
            output.stderr.len() < 2_000,
            "the refusal echoes the whole value: {} bytes",
            output.stderr.len()
        );
    }
}
