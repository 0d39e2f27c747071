//! `--auth-user` authenticates as a different identity than the extension: the digest uses the
//! auth user's password, and the binding lands under the extension.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use vicifast_e2e::{
    random_extension, register_args, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT,
};

#[test]
fn registers_with_a_separate_auth_user() {
    let (registrar, ext, _unused) = registrar_with_user(RegistrarOptions::default());
    let auth_user = format!("agent{}", random_extension());
    let password = registrar.add_user(&auth_user).unwrap();
    let args = register_args(
        &registrar,
        Transport::Udp,
        &ext,
        &["--auth-user", &auth_user],
    );
    let mut cli = Cli::spawn(&args, &password).unwrap();

    let status = cli.wait_for_state("registered", WAIT).unwrap();
    registrar.sole_binding(&ext, status["contact"].as_str().expect("contact"));
    assert!(registrar.bindings(&auth_user).unwrap().is_empty());
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
}
