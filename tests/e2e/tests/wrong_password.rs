//! A wrong password is a permanent failure: state `failed` with problem `wrong_password`, exit
//! code 1, no binding, and the registrar saw at most 2 REGISTERs (one to be challenged, one with
//! credentials) — the CLI does not hammer it.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use vicifast_e2e::{
    random_password, register_args, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT,
};

fn fails_cleanly(transport: Transport) {
    let (registrar, ext, _right) = registrar_with_user(RegistrarOptions::default());
    let args = register_args(&registrar, transport, &ext, &[]);
    let mut cli = Cli::spawn(&args, &random_password()).unwrap();

    let failed = cli.wait_for_state("failed", WAIT).unwrap();
    assert_eq!(failed["problem"]["code"], "wrong_password", "{failed}");
    assert!(
        failed["problem"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{failed}"
    );
    let status = cli.wait_exit(WAIT).unwrap();
    assert_eq!(status.code(), Some(1), "{:?}", cli.statuses());

    assert!(cli.statuses().iter().all(|s| s["state"] != "registered"));
    assert!(registrar.bindings(&ext).unwrap().is_empty());
    let attempts = registrar.register_attempts(&ext);
    assert!(
        (1..=2).contains(&attempts.len()),
        "expected 1 or 2 REGISTERs, Kamailio saw {attempts:?}"
    );
}

#[test]
fn wrong_password_over_udp() {
    fails_cleanly(Transport::Udp);
}

#[test]
fn wrong_password_over_tcp() {
    fails_cleanly(Transport::Tcp);
}

#[test]
fn wrong_password_over_tls() {
    fails_cleanly(Transport::Tls);
}
