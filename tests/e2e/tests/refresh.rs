//! With a short registration (8 s asked, Kamailio's minimum 5 s), the CLI refreshes before the
//! binding lapses: a status with cause `refreshed` arrives, Kamailio received a further
//! authorised REGISTER, and the binding is still there with time left.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use vicifast_e2e::{register_args, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT};

fn refreshes(transport: Transport) {
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions {
        min_expires: 5,
        ..RegistrarOptions::default()
    });
    let args = register_args(&registrar, transport, &ext, &["--expires", "8"]);
    let mut cli = Cli::spawn(&args, &password).unwrap();
    let registered = cli.wait_for_state("registered", WAIT).unwrap();
    let contact = registered["contact"].as_str().expect("contact").to_owned();
    let registers_before = registrar.register_count(&ext);

    let refreshed = cli.wait_for(|s| s["cause"] == "refreshed", WAIT).unwrap();
    assert_eq!(refreshed["state"], "registered", "{refreshed}");
    assert!(registrar.register_count(&ext) > registers_before);
    assert!(registrar.register_attempts(&ext).last().unwrap().authorized);

    let binding = registrar.sole_binding(&ext, refreshed["contact"].as_str().unwrap_or(&contact));
    assert!(binding.expires.is_some_and(|e| e > 0), "{binding:?}");

    // A second refresh too: the timer is re-armed, not a one-off.
    cli.wait_for(|s| s["cause"] == "refreshed", WAIT).unwrap();
    assert_eq!(registrar.bindings(&ext).unwrap().len(), 1);

    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
}

#[test]
fn refreshes_over_udp() {
    refreshes(Transport::Udp);
}

#[test]
fn refreshes_over_tcp() {
    refreshes(Transport::Tcp);
}

#[test]
fn refreshes_over_tls() {
    refreshes(Transport::Tls);
}
