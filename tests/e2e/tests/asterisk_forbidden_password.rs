//! Asterisk's chan_sip with `alwaysauthreject` answers a wrong password with 403, not with a new
//! challenge. A 403 to the REGISTER that answered the challenge is reported as `wrong_password`
//! (something the agent can act on), exit 1, and the CLI stops: 2 REGISTERs, or 3 with an
//! instance id (one query to rule out an old binding of ours holding the extension).
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use vicifast_e2e::{
    random_password, register_args, registrar_with_user, AsteriskHabits, Cli, RegistrarOptions,
    Transport, WAIT,
};

const INSTANCE: &str = "urn:uuid:00000000-0000-4000-8000-00000000a403";

fn refused(extra: &[&str], most_registers: usize) {
    let (registrar, ext, right) = registrar_with_user(RegistrarOptions {
        asterisk: AsteriskHabits {
            forbid_bad_credentials: true,
            ..AsteriskHabits::default()
        },
        ..RegistrarOptions::default()
    });
    let args = register_args(&registrar, Transport::Udp, &ext, extra);
    let mut cli = Cli::spawn(&args, &random_password()).unwrap();
    let failed = cli.wait_for_state("failed", WAIT).unwrap();
    assert_eq!(failed["problem"]["code"], "wrong_password", "{failed}");
    assert!(
        failed["problem"]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("403")),
        "{failed}"
    );
    assert_eq!(cli.wait_exit(WAIT).unwrap().code(), Some(1));
    let attempts = registrar.register_attempts(&ext);
    assert_eq!(attempts.len(), most_registers, "{attempts:?}");
    assert!(registrar.bindings(&ext).unwrap().is_empty());

    // The right password registers against the same registrar: the 403 was the password.
    let mut cli = Cli::spawn(&args, &right).unwrap();
    cli.wait_for_state("registered", WAIT).unwrap();
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
}

#[test]
fn a_403_to_credentials_is_a_wrong_password() {
    refused(&[], 2);
}

#[test]
fn a_403_to_credentials_is_a_wrong_password_with_an_instance_id_too() {
    refused(&["--instance-id", INSTANCE], 3);
}
