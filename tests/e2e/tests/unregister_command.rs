//! `vicifast-cli unregister` removes a binding left behind by a registration that died without
//! unregistering (SIGKILL), and exits 0.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use vicifast_e2e::{
    command_args, register_args, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT,
};

fn removes_binding(transport: Transport) {
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let mut crashed =
        Cli::spawn(&register_args(&registrar, transport, &ext, &[]), &password).unwrap();
    let status = crashed.wait_for_state("registered", WAIT).unwrap();
    crashed.kill_hard().unwrap();
    let left = registrar.bindings(&ext).unwrap();
    assert_eq!(
        left.len(),
        1,
        "a killed CLI cannot have unregistered: {left:?}"
    );
    assert_eq!(left[0].uri, status["contact"].as_str().expect("contact"));

    let output = Cli::run(
        &command_args("unregister", &registrar, transport, &ext, &[]),
        &password,
        WAIT,
    )
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let left = registrar.bindings(&ext).unwrap();
    assert!(
        left.is_empty(),
        "still bound after unregister: {left:?}\n{output:?}"
    );
    assert!(registrar
        .register_attempts(&ext)
        .last()
        .is_some_and(|a| a.is_removal()));
}

#[test]
fn unregister_over_udp() {
    removes_binding(Transport::Udp);
}

#[test]
fn unregister_over_tcp() {
    removes_binding(Transport::Tcp);
}

#[test]
fn unregister_over_tls() {
    removes_binding(Transport::Tls);
}
