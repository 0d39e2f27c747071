//! Registration over IPv6 loopback ([::1], UDP): `registered`, and Kamailio holds the reported
//! contact, an IPv6 one. Skipped (passes with a note) where [::1] cannot be bound.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::net::UdpSocket;
use vicifast_e2e::{account_args_via, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT};

#[test]
fn registers_over_ipv6_udp() {
    if UdpSocket::bind("[::1]:0").is_err() {
        vicifast_e2e::skip::skipped(
            "registers_over_ipv6_udp",
            "no IPv6 loopback on this machine",
        );
        return;
    }
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions {
        ipv6: true,
        ..RegistrarOptions::default()
    });
    let mut args = vec![
        "register".to_owned(),
        "--json".to_owned(),
        "--trace".to_owned(),
    ];
    args.extend(account_args_via(&registrar, "[::1]", Transport::Udp, &ext));
    let mut cli = Cli::spawn(&args, &password).unwrap();

    let status = cli.wait_for_state("registered", WAIT).unwrap();
    let contact = status["contact"].as_str().expect("contact").to_owned();
    assert!(contact.contains("[::1]"), "{status}");
    let binding = registrar.sole_binding(&ext, &contact);
    assert!(
        binding.socket.as_deref().is_some_and(|s| s.contains("::1")),
        "{binding:?}"
    );

    let code = registrar.send_request("OPTIONS", &contact).unwrap();
    assert_eq!(
        code,
        200,
        "bindings {:?}\nCLI stderr:\n{}",
        registrar.bindings(&ext),
        cli.stderr()
    );
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
    assert!(registrar.bindings(&ext).unwrap().is_empty());
}
