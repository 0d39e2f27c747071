//! Two devices on one extension, against a registrar that keeps one contact per extension as
//! Asterisk does (Kamailio's `save()` replacing every other binding). Each takes the binding
//! from the other at its refresh; each must report `extension_in_use` naming the other, and
//! neither may take the binding back sooner than its refresh: the REGISTERs that carry a Contact
//! stay at the refresh rate, the binding checks at theirs.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use serde_json::Value;
use std::time::Instant;
use vicifast_e2e::{
    register_args, registrar_with_user, AsteriskHabits, Cli, Registrar, RegistrarOptions,
    Transport, WAIT,
};

/// Short lifetimes so the swap happens within seconds: the first device refreshes every 10 s,
/// the second every 15 s (two devices started together and refreshing in step would each take
/// the binding back just before the other looks), both check every 3.75–6.25 s.
const EXPIRES: [&str; 2] = ["20", "30"];
const REFRESH_SECS: [f64; 2] = [10.0, 15.0];
const CHECK: &str = "5";

fn device(registrar: &Registrar, ext: &str, password: &str, expires: &str) -> (Cli, String) {
    let args = register_args(
        registrar,
        Transport::Udp,
        ext,
        &["--expires", expires, "--binding-check-interval", CHECK],
    );
    let mut cli = Cli::spawn(&args, password).unwrap();
    let status = cli.wait_for_state("registered", WAIT).unwrap();
    let local = status["local_address"].as_str().unwrap().to_owned();
    (cli, local)
}

fn in_use_event(cli: &mut Cli) -> Value {
    cli.wait_for(|e| e["event"] == "extension_in_use", WAIT)
        .unwrap()
}

/// REGISTERs Kamailio saw from `local` (ip:port), split into (with Contact, queries).
fn registers_from(registrar: &Registrar, ext: &str, local: &str) -> (usize, usize) {
    let source = format!("udp:{local}");
    let from: Vec<_> = registrar
        .register_attempts(ext)
        .into_iter()
        .filter(|a| a.source == source)
        .collect();
    let queries = from.iter().filter(|a| a.contact == "<null>").count();
    (from.len() - queries, queries)
}

#[test]
fn two_devices_on_one_extension_each_report_the_other() {
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions {
        asterisk: AsteriskHabits {
            replace_existing: true,
            ..AsteriskHabits::default()
        },
        ..RegistrarOptions::default()
    });
    let (mut first, first_local) = device(&registrar, &ext, &password, EXPIRES[0]);
    let (mut second, second_local) = device(&registrar, &ext, &password, EXPIRES[1]);
    let second_registered = Instant::now();
    // The second took the binding: the registrar holds only it.
    let held: Vec<String> = registrar
        .bindings(&ext)
        .unwrap()
        .into_iter()
        .map(|b| b.uri)
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");

    let seen_by_first = in_use_event(&mut first);
    let first_after = second_registered.elapsed();
    let seen_by_second = in_use_event(&mut second);
    let second_after = second_registered.elapsed();
    println!(
        "extension_in_use after the second device registered: first device {:.1} s, second {:.1} s",
        first_after.as_secs_f64(),
        second_after.as_secs_f64()
    );
    for (event, other) in [
        (&seen_by_first, &second_local),
        (&seen_by_second, &first_local),
    ] {
        let others = event["others"].as_array().unwrap();
        assert!(
            others.iter().any(|o| o["contact"]
                .as_str()
                .is_some_and(|c| c.contains(other.as_str()))),
            "{event} does not name {other}"
        );
        assert!(event["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Statuses carry the problem for as long as it lasts.
    for cli in [&mut first, &mut second] {
        let status = cli
            .wait_for(
                |e| e["event"] == "status" && !e["extension_in_use"].is_null(),
                WAIT,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status["problem"]["code"], "extension_in_use", "{status}");
    }

    // Watch three refreshes of the first device, then count what both sent meanwhile.
    let before = [
        registers_from(&registrar, &ext, &first_local),
        registers_from(&registrar, &ext, &second_local),
    ];
    let window = Instant::now();
    for _ in 0..3 {
        first
            .wait_for(
                |e| e["event"] == "status" && e["cause"] == "refreshed",
                WAIT,
            )
            .unwrap();
    }
    let minutes = window.elapsed().as_secs_f64() / 60.0;
    let after = [
        registers_from(&registrar, &ext, &first_local),
        registers_from(&registrar, &ext, &second_local),
    ];
    for (n, name) in ["first", "second"].iter().enumerate() {
        let (b, a) = (before[n], after[n]);
        let registrations = a.0 - b.0;
        let queries = a.1 - b.1;
        println!(
            "{name} device during the swap: {:.1} REGISTERs/min with Contact, {:.1} binding checks/min",
            registrations as f64 / minutes,
            queries as f64 / minutes
        );
        // At most one per refresh (plus one at the window's edge); a challenge would double it.
        let refreshes = minutes * 60.0 / REFRESH_SECS[n];
        assert!(
            (registrations as f64) <= 2.0 * (refreshes + 1.0),
            "{name}: {registrations} REGISTERs with Contact in {:.0} s",
            minutes * 60.0
        );
        let checks = minutes * 60.0 / 3.75;
        assert!(
            (queries as f64) <= 2.0 * (checks + 1.0),
            "{name}: {queries} checks in {:.0} s",
            minutes * 60.0
        );
    }
    // One report per episode each, however often the binding changed hands.
    for cli in [&first, &second] {
        let reports = cli
            .statuses()
            .iter()
            .filter(|e| e["event"] == "extension_in_use")
            .count();
        assert_eq!(reports, 1);
    }

    // "Use this computer" on the first (SIGUSR1): the episode ends and it registers at once.
    first.signal(nix::sys::signal::Signal::SIGUSR1).unwrap();
    let took = first
        .wait_for(
            |e| e["event"] == "status" && e["cause"] == "take_over",
            WAIT,
        )
        .unwrap();
    assert!(took["extension_in_use"].is_null(), "{took}");
    assert!(took["problem"].is_null(), "{took}");
    let registered = first.wait_for(|e| e["event"] == "status", WAIT).unwrap();
    assert_eq!(registered["state"], "registered", "{registered}");

    // "Stop here" on the second: it removes only its own binding; the first keeps registering.
    second.interrupt().unwrap();
    assert!(second.wait_exit(WAIT).unwrap().success());
    first
        .wait_for(
            |e| e["event"] == "status" && e["cause"] == "refreshed",
            WAIT,
        )
        .unwrap();
    let held: Vec<String> = registrar
        .bindings(&ext)
        .unwrap()
        .into_iter()
        .map(|b| b.uri)
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].contains(&first_local), "{held:?}");
    first.interrupt().unwrap();
    assert!(first.wait_exit(WAIT).unwrap().success());
}
