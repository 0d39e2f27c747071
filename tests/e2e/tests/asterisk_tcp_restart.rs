//! The registrar restarts while the CLI is registered over TCP (Asterisk after `core restart`):
//! the connection drops at once and the registrar accepts connections again 2 s later. The CLI
//! retries quickly (random waits under 2, 4, 8, 16 s) rather than after the 30 s backoff base, so
//! it is registered again long before the old 31–40 s; the test asserts the state, and prints
//! the time it took.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::time::{Duration, Instant};
use vicifast_e2e::{register_args, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT};

/// How long the registrar stays down: the restart being reproduced, not a synchronisation.
const DOWN_FOR: Duration = Duration::from_secs(2);

fn restart_over(transport: Transport) {
    let (mut registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let args = register_args(&registrar, transport, &ext, &[]);
    let mut cli = Cli::spawn(&args, &password).unwrap();
    cli.wait_for_state("registered", WAIT).unwrap();

    registrar.stop();
    let lost = cli
        .wait_for(
            |s| s["event"] == "status" && s["state"] != "registered",
            WAIT,
        )
        .unwrap();
    assert_eq!(lost["cause"], "flow_failed", "{lost}");
    let down_until = Instant::now() + DOWN_FOR;
    while Instant::now() < down_until {
        std::thread::park_timeout(down_until - Instant::now());
    }
    registrar.start_again().unwrap();
    let back = Instant::now();
    let registered = cli.wait_for_state("registered", WAIT).unwrap();
    println!(
        "{transport}: registered again {:.1} s after the registrar came back",
        back.elapsed().as_secs_f64()
    );
    let contact = registered["contact"].as_str().unwrap();
    registrar.sole_binding(&ext, contact);
    // Still one CLI, never given up: no failure on the way.
    assert!(cli.statuses().iter().all(|s| s["state"] != "failed"));
    cli.interrupt().unwrap();
    assert!(cli.wait_exit(WAIT).unwrap().success());
}

#[test]
fn registered_again_soon_after_a_tcp_registrar_restart() {
    restart_over(Transport::Tcp);
}

#[test]
fn registered_again_soon_after_a_tls_registrar_restart() {
    restart_over(Transport::Tls);
}
