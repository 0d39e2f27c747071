//! `vicifast-cli bindings --json` prints what Kamailio holds for the extension: the same
//! contacts, nothing more, nothing less; and an empty list for an extension with no binding.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::collections::BTreeSet;
use vicifast_e2e::{
    command_args, register_args, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT,
};

fn listed_contacts(output: &vicifast_e2e::Finished) -> BTreeSet<String> {
    let json = output.json();
    let doc = json
        .iter()
        .find(|v| v.get("bindings").is_some())
        .unwrap_or_else(|| panic!("no {{\"bindings\":..}} line in {output:?}"));
    doc["bindings"]
        .as_array()
        .expect("bindings array")
        .iter()
        .map(|b| b["contact"].as_str().expect("contact").to_owned())
        .collect()
}

fn lists_bindings(transport: Transport) {
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());

    let empty = Cli::run(
        &command_args("bindings", &registrar, transport, &ext, &[]),
        &password,
        WAIT,
    )
    .unwrap();
    assert!(empty.status.success(), "{empty:?}");
    assert!(listed_contacts(&empty).is_empty(), "{empty:?}");

    let mut running =
        Cli::spawn(&register_args(&registrar, transport, &ext, &[]), &password).unwrap();
    let status = running.wait_for_state("registered", WAIT).unwrap();

    let output = Cli::run(
        &command_args("bindings", &registrar, transport, &ext, &[]),
        &password,
        WAIT,
    )
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    let at_kamailio: BTreeSet<String> = registrar
        .bindings(&ext)
        .unwrap()
        .into_iter()
        .map(|b| b.uri)
        .collect();
    assert_eq!(listed_contacts(&output), at_kamailio);
    assert!(at_kamailio.contains(status["contact"].as_str().expect("contact")));

    // Listing is read-only: the running registration's binding is untouched.
    assert_eq!(registrar.bindings(&ext).unwrap().len(), 1);
    running.interrupt().unwrap();
    assert!(running.wait_exit(WAIT).unwrap().success());
}

#[test]
fn bindings_over_udp() {
    lists_bindings(Transport::Udp);
}

#[test]
fn bindings_over_tcp() {
    lists_bindings(Transport::Tcp);
}

#[test]
fn bindings_over_tls() {
    lists_bindings(Transport::Tls);
}
