//! SIGINT (and SIGTERM) make a registered CLI unregister and exit 0: by the time it has exited,
//! Kamailio no longer holds its binding, and its last status says `unregistered`.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use nix::sys::signal::Signal;
use vicifast_e2e::{register_args, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT};

fn stops_on(signal: Signal, transport: Transport) {
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let mut cli = Cli::spawn(&register_args(&registrar, transport, &ext, &[]), &password).unwrap();
    cli.wait_for_state("registered", WAIT).unwrap();
    assert_eq!(registrar.bindings(&ext).unwrap().len(), 1);

    cli.signal(signal).unwrap();
    cli.wait_for_state("unregistered", WAIT).unwrap();
    let status = cli.wait_exit(WAIT).unwrap();
    assert!(status.success(), "{status:?}\n{}", cli.stderr());

    let left = registrar.bindings(&ext).unwrap();
    assert!(left.is_empty(), "binding left behind: {left:?}");
    let attempts = registrar.register_attempts(&ext);
    assert!(
        attempts.last().is_some_and(|a| a.is_removal()),
        "{attempts:?}"
    );
}

#[test]
fn sigint_unregisters_over_udp() {
    stops_on(Signal::SIGINT, Transport::Udp);
}

#[test]
fn sigint_unregisters_over_tcp() {
    stops_on(Signal::SIGINT, Transport::Tcp);
}

#[test]
fn sigint_unregisters_over_tls() {
    stops_on(Signal::SIGINT, Transport::Tls);
}

#[test]
fn sigterm_unregisters_over_udp() {
    stops_on(Signal::SIGTERM, Transport::Udp);
}
