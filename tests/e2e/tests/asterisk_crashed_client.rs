//! The CLI is killed (SIGKILL: no un-REGISTER) and started again with the same instance id, from
//! another port, against a registrar that keeps one contact per extension and refuses a second
//! binding. It must be registered again, and the binding left by the killed one must be gone, not
//! hold the extension until it expires.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use vicifast_e2e::{register_args, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT};

const INSTANCE: &str = "urn:uuid:00000000-0000-4000-8000-0000000c0a54";

fn crash_and_restart(transport: Transport) {
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions {
        max_contacts: Some(1),
        ..RegistrarOptions::default()
    });
    let args = register_args(
        &registrar,
        transport,
        &ext,
        &["--instance-id", INSTANCE, "--expires", "3600"],
    );
    let mut crashed = Cli::spawn(&args, &password).unwrap();
    let before = crashed.wait_for_state("registered", WAIT).unwrap();
    let old = before["contact"].as_str().unwrap().to_owned();
    crashed.kill_hard().unwrap();
    registrar.sole_binding(&ext, &old);

    let mut restarted = Cli::spawn(&args, &password).unwrap();
    let after = restarted.wait_for_state("registered", WAIT).unwrap();
    let new = after["contact"].as_str().unwrap().to_owned();
    assert_ne!(new, old, "the restarted CLI registers from another port");
    registrar.sole_binding(&ext, &new);
    assert!(
        restarted.statuses().iter().all(|s| s["problem"].is_null()),
        "{:?}",
        restarted.statuses()
    );
    // `bindings` lists the one binding as ours.
    let mut list_args = vicifast_e2e::command_args("bindings", &registrar, transport, &ext, &[]);
    list_args.extend(["--instance-id".to_owned(), INSTANCE.to_owned()]);
    let listed = Cli::run(&list_args, &password, WAIT).unwrap();
    let bindings: serde_json::Value = serde_json::from_str(&listed.stdout[0]).unwrap();
    let bindings = bindings["bindings"].as_array().unwrap();
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    assert_eq!(bindings[0]["ours"], true);
    restarted.interrupt().unwrap();
    assert!(restarted.wait_exit(WAIT).unwrap().success());
    assert!(registrar.bindings(&ext).unwrap().is_empty());
}

#[test]
fn a_crashed_client_registers_again_over_udp() {
    crash_and_restart(Transport::Udp);
}

#[test]
fn a_crashed_client_registers_again_over_tcp() {
    crash_and_restart(Transport::Tcp);
}
