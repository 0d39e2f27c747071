//! Over TLS, a registrar whose certificate the client cannot verify (no `--ca-file` for the
//! test CA) is reported as problem `tls_certificate`, and no REGISTER reaches Kamailio.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use vicifast_e2e::{account_args, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT};

#[test]
fn untrusted_certificate_is_reported() {
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let mut args = vec!["register".to_owned(), "--json".to_owned()];
    // Everything account_args gives but the --ca-file pair.
    let account = account_args(&registrar, Transport::Tls, &ext);
    let ca = account
        .iter()
        .position(|a| a == "--ca-file")
        .expect("--ca-file");
    args.extend(account[..ca].iter().cloned());
    let mut cli = Cli::spawn(&args, &password).unwrap();

    let status = cli
        .wait_for(|s| s["problem"]["code"] == "tls_certificate", WAIT)
        .unwrap();
    assert_ne!(status["state"], "registered", "{status}");
    assert_eq!(registrar.register_count(&ext), 0);
    assert!(registrar.bindings(&ext).unwrap().is_empty());
}
