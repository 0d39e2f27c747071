//! Bad usage exits 2 without contacting anyone: unknown flag, unknown subcommand, bad transport,
//! missing required flag.
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
