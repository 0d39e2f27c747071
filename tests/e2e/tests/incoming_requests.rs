//! The registrar can reach a registered CLI over the flow it registered on: an OPTIONS from
//! Kamailio's listening socket gets 200, an INVITE gets 480 (this app takes no calls), and the
//! CLI reports the incoming call on stderr.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use vicifast_e2e::{register_args, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT};

fn answers(transport: Transport) {
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let mut cli = Cli::spawn(&register_args(&registrar, transport, &ext, &[]), &password).unwrap();
    let status = cli.wait_for_state("registered", WAIT).unwrap();
    let contact = status["contact"].as_str().expect("contact").to_owned();

    let options = registrar.send_request("OPTIONS", &contact);
    assert_eq!(options.unwrap(), 200, "{}", registrar.log_tail());
    let invite = registrar.send_request("INVITE", &contact);
    assert_eq!(invite.unwrap(), 480, "{}", registrar.log_tail());
    cli.wait_for_stderr("incoming call", WAIT).unwrap();

    // Answering requests does not disturb the registration.
    assert_eq!(registrar.bindings(&ext).unwrap().len(), 1);
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
}

#[test]
fn answers_over_udp() {
    answers(Transport::Udp);
}

#[test]
fn answers_over_tcp() {
    answers(Transport::Tcp);
}

#[test]
fn answers_over_tls() {
    answers(Transport::Tls);
}
