//! Registering over UDP, TCP and TLS reaches `registered`, and Kamailio then holds exactly the
//! binding the CLI reported as its contact, learned from a REGISTER sent from the CLI's reported
//! local address.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use vicifast_e2e::{register_args, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT};

fn registers(transport: Transport) {
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let mut cli = Cli::spawn(&register_args(&registrar, transport, &ext, &[]), &password).unwrap();

    let status = cli.wait_for_state("registered", WAIT).unwrap();
    assert_eq!(status["transport"], transport.as_str(), "{status}");
    assert!(status["problem"].is_null(), "{status}");
    let contact = status["contact"]
        .as_str()
        .expect("contact in status")
        .to_owned();

    let binding = registrar.sole_binding(&ext, &contact);
    assert!(binding.expires.is_some_and(|e| e > 0), "{binding:?}");

    // The status lists the registrar's view of the bindings, ours marked.
    let listed = status["bindings"].as_array().expect("bindings in status");
    assert!(
        listed
            .iter()
            .any(|b| b["contact"] == contact.as_str() && b["ours"] == true),
        "{status}"
    );

    // The accepted REGISTER came from the address the CLI says it uses.
    let local = status["local_address"].as_str().expect("local_address");
    let attempts = registrar.register_attempts(&ext);
    let last = attempts.last().expect("a REGISTER");
    assert!(last.authorized, "{attempts:?}");
    assert_eq!(last.source, format!("{transport}:{local}"), "{attempts:?}");

    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
}

#[test]
fn registers_over_udp() {
    registers(Transport::Udp);
}

#[test]
fn registers_over_tcp() {
    registers(Transport::Tcp);
}

#[test]
fn registers_over_tls() {
    registers(Transport::Tls);
}
