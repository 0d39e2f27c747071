//! Proves the CLI runner with a stand-in script in the CLI's place: the password travels in the
//! environment variable named by `--password-env` and never as an argument, JSON statuses are matched in order,
//! non-JSON lines are kept, stderr can be waited on, a signal reaches the process, and a timeout or
//! an early exit fails with everything the process printed.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::time::Duration;
use vicifast_e2e::{random_password, Cli, PASSWORD_ENV};

const STAND_IN: &str = r#"#!/bin/sh
trap 'echo "{\"state\":\"unregistered\"}"; exit 0' INT TERM
echo "{\"state\":\"registering\",\"env\":\"$(printenv VICIFAST_E2E_PASSWORD)\",\"argv\":\"$*\"}"
echo "not json"
echo '{"state":"registered"}'
echo "incoming call from sip:x@127.0.0.1" >&2
[ "$1" = "exit-early" ] && exit 1
while :; do sleep 0.05; done
"#;

/// The stand-in written to `dir`, and the CLI's first argument `first`: what to run. `sh` reads
/// the script rather than the kernel executing it: a file just written cannot be executed while
/// another test's child, forked meanwhile, still holds it open for writing ("Text file busy").
fn stand_in(dir: &tempfile::TempDir, first: &str) -> [String; 2] {
    let path = dir.path().join("fake-cli");
    std::fs::write(&path, STAND_IN).unwrap();
    [path.to_str().unwrap().to_owned(), first.to_owned()]
}

const SHELL: &str = "/bin/sh";

#[test]
fn statuses_stderr_and_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let password = random_password();
    let mut cli = Cli::spawn_program(SHELL.into(), &stand_in(&dir, "register"), &password).unwrap();

    // The stand-in echoes its environment's password and its arguments.
    let first = cli
        .wait_for_state("registering", Duration::from_secs(10))
        .unwrap();
    assert_eq!(first["env"], password.as_str());
    let argv = first["argv"].as_str().unwrap();
    assert_eq!(argv, format!("register --password-env {PASSWORD_ENV}"));
    assert!(!argv.contains(&password));
    cli.wait_for_state("registered", Duration::from_secs(10))
        .unwrap();
    // Statuses already passed are not matched again.
    let again = cli.wait_for_state("registering", Duration::from_millis(300));
    assert!(again.is_err());
    cli.wait_for_stderr("INCOMING CALL", Duration::from_secs(10))
        .unwrap();
    assert!(cli.stdout_lines().contains(&"not json".to_owned()));

    // SIGTERM, not SIGINT: a shell cannot trap a signal it inherited as ignored, and a test run
    // started in the background (`cmd &` in a script) inherits SIGINT ignored. The real CLI
    // installs its own handlers, so tests/stop_signals.rs proves SIGINT on it.
    cli.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    cli.wait_for_state("unregistered", Duration::from_secs(10))
        .unwrap();
    assert!(cli.wait_exit(Duration::from_secs(10)).unwrap().success());
    assert_eq!(cli.statuses().len(), 3);
}

#[test]
fn timeout_reports_what_was_printed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cli = Cli::spawn_program(
        SHELL.into(),
        &stand_in(&dir, "register"),
        &random_password(),
    )
    .unwrap();
    let err = cli
        .wait_for_state("failed", Duration::from_millis(500))
        .unwrap_err();
    assert!(err.contains("no matching status"), "{err}");
    assert!(
        err.contains("not json") && err.contains("incoming call"),
        "{err}"
    );
}

#[test]
fn early_exit_fails_the_wait_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut cli = Cli::spawn_program(
        SHELL.into(),
        &stand_in(&dir, "exit-early"),
        &random_password(),
    )
    .unwrap();
    let err = cli
        .wait_for_state("failed", Duration::from_secs(60))
        .unwrap_err();
    assert!(err.contains("closed stdout"), "{err}");
    assert_eq!(
        cli.wait_exit(Duration::from_secs(10)).unwrap().code(),
        Some(1)
    );
}
