//! Hostile registrars over TCP (issue 8, cases 1, 3 and 7, and half-written messages): a
//! registrar or load balancer that closes the connection right after its 200 OK, or follows it
//! with bytes that cannot be framed, must get the backoff, not a reconnect per 200 OK; a flood of
//! tiny messages or keep-alive pings on the flow must not make the client grow or stop answering.
//!
//! The bounds come from the pacing rule in the core's docs: after a working flow is lost, four
//! quick retries (random waits under 2, 4, 8 and 16 s, 30 s in all at most), then the backoff
//! (at least `--backoff-base`); and never more than 10 REGISTERs at once or 5 new connections.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::time::Duration;
use vicifast_e2e::fake_registrar::{
    connection_ceiling, print_figure, register_ceiling, After, FakeRegistrar, FakeTransport,
    FloodKind, ProcessFigures, Step,
};
use vicifast_e2e::{random_password, Cli, WAIT};

/// How long each test watches the client. Shorter than the 30 s the quick retries can take in
/// all, so within it a client that keeps to the rule sends at most 1 + 4 REGISTERs per lost flow.
const WINDOW: Duration = Duration::from_secs(10);
/// First REGISTER, then one per quick retry.
const AFTER_LOST_FLOWS: usize = 5;
/// How much the CLI's resident memory may grow while flooded, over what it held once registered
/// (about 14 MiB in a debug build). Before the receive path was bounded, 51 MB of tiny responses
/// took it from 7 MB to 283 MB.
const RSS_GROWTH_CEILING_KIB: u64 = 16 * 1024;

fn spawn(fake: &FakeRegistrar, extra: &[&str]) -> Cli {
    let args = fake.register_args(FakeTransport::Tcp, "2001", extra);
    Cli::spawn(&args, &random_password()).unwrap()
}

/// A registrar that ends every flow right after its 200 OK (`after`): the REGISTERs and new
/// connections within the window stay within the quick retries and the ceiling.
fn flow_lost_after_each_ok(case: &str, after: After) {
    let fake = FakeRegistrar::start(vec![Step::ok(60).then(after)]).unwrap();
    let mut cli = spawn(&fake, &["--backoff-base", "30"]);
    let seen = fake.observe(WINDOW, WAIT).unwrap();
    let figures = ProcessFigures::of(cli.pid()).ok();
    print_figure(case, seen.len(), WINDOW, figures);

    let connections = fake.connections();
    assert!(
        seen.len() <= AFTER_LOST_FLOWS.min(register_ceiling(WINDOW)),
        "{} REGISTERs in {WINDOW:?}: {}",
        seen.len(),
        vicifast_e2e::fake_registrar::summary(&seen)
    );
    assert!(
        connections <= connection_ceiling(WINDOW).min(AFTER_LOST_FLOWS as u64),
        "{connections} connections in {WINDOW:?}"
    );
    // The client registered, saw the flow go, and is waiting to try again: never `failed`
    // (a registrar that drops connections may recover), and still running.
    cli.wait_for_state("registered", WAIT).unwrap();
    let last = cli.statuses().last().cloned().unwrap();
    assert!(
        ["retrying", "registering", "registered"].contains(&last["state"].as_str().unwrap_or("")),
        "{last}"
    );
    assert!(cli.statuses().iter().all(|s| s["state"] != "failed"));
    assert!(cli.wait_exit(Duration::ZERO).is_err(), "the CLI exited");
}

#[test]
fn connection_closed_after_every_ok_gets_the_backoff() {
    flow_lost_after_each_ok("1-close-after-ok", After::Close);
}

#[test]
fn unframeable_content_length_after_ok_gets_the_backoff() {
    flow_lost_after_each_ok(
        "1-bad-content-length-after-ok",
        After::Send(b"SIP/2.0 200 OK\r\nContent-Length: lots\r\n\r\n".to_vec()),
    );
}

#[test]
fn endless_header_after_ok_gets_the_backoff() {
    // 100 KB without an end of headers: more than any sane SIP message's headers.
    flow_lost_after_each_ok(
        "1-endless-header-after-ok",
        After::Send([&b"SIP/2.0 200 OK\r\nX-Junk: "[..], &[b'a'; 100_000]].concat()),
    );
}

#[test]
fn half_a_response_then_close_gets_the_backoff() {
    let fake = FakeRegistrar::start(vec![Step::half().then(After::Close)]).unwrap();
    let mut cli = spawn(&fake, &["--backoff-base", "30"]);
    let seen = fake.observe(WINDOW, WAIT).unwrap();
    print_figure(
        "half-then-close",
        seen.len(),
        WINDOW,
        ProcessFigures::of(cli.pid()).ok(),
    );
    // Never registered, so each closed connection is a plain failure: the backoff (at least
    // 30 s) follows the first one at once.
    assert!(
        seen.len() <= 2,
        "{} REGISTERs in {WINDOW:?}: {}",
        seen.len(),
        vicifast_e2e::fake_registrar::summary(&seen)
    );
    let retrying = cli.wait_for_state("retrying", WAIT).unwrap();
    assert!(cli.statuses().iter().all(|s| s["state"] != "registered"));
    assert!(retrying["next_attempt_in"].as_u64().is_some(), "{retrying}");
}

#[test]
fn half_a_response_then_silence_waits_for_the_transaction() {
    let fake = FakeRegistrar::start(vec![Step::half()]).unwrap();
    let cli = spawn(&fake, &[]);
    let seen = fake.observe(WINDOW, WAIT).unwrap();
    print_figure(
        "half-then-silence",
        seen.len(),
        WINDOW,
        ProcessFigures::of(cli.pid()).ok(),
    );
    // A reliable transport never retransmits, and Timer F (32 s) has not fired yet.
    assert_eq!(
        seen.len(),
        1,
        "{}",
        vicifast_e2e::fake_registrar::summary(&seen)
    );
    assert_eq!(fake.connections(), 1);
    assert!(cli.statuses().iter().all(|s| s["state"] != "registered"));
}

/// Once the CLI is registered, the registrar floods the flow with `count` messages of `kind`; the CLI
/// reads them all (the fake's OPTIONS after them is answered), stays registered, and its memory
/// stays under the ceiling. Returns the CLI's figures after the flood.
fn flooded(case: &str, kind: FloodKind, count: usize) -> (ProcessFigures, FakeRegistrar) {
    // An hour's binding: no refresh falls inside the flood, however slow the machine, so any
    // second REGISTER would be the flood's doing.
    let fake = FakeRegistrar::start(vec![Step::ok(3600)]).unwrap();
    let mut cli = spawn(&fake, &["--expires", "3600"]);
    cli.wait_for_state("registered", WAIT).unwrap();
    let start = ProcessFigures::of(cli.pid()).unwrap();
    fake.flood(FakeTransport::Tcp, kind, count).unwrap();
    let flood_deadline = Duration::from_secs(120);
    fake.wait_floods_done(flood_deadline).unwrap();
    fake.round_trip(FakeTransport::Tcp, WAIT).unwrap();
    let end = ProcessFigures::of(cli.pid()).unwrap();
    let registers = fake.register_count();
    println!(
        "hostile-figure case={case} flood={count} cpu_ms_during_flood={} rss_kib_before={} \
         rss_kib_after={} peak_rss_kib={} registers={registers}",
        end.cpu_ms.saturating_sub(start.cpu_ms),
        start.rss_kib,
        end.rss_kib,
        end.peak_rss_kib
    );
    assert!(
        end.peak_rss_kib <= start.rss_kib + RSS_GROWTH_CEILING_KIB,
        "peak RSS {} KiB after {count} messages, {} KiB once registered (growth allowed: \
         {RSS_GROWTH_CEILING_KIB} KiB)",
        end.peak_rss_kib,
        start.rss_kib
    );
    // Nothing in a flood of strays asks for a REGISTER.
    assert_eq!(
        registers,
        1,
        "{}",
        vicifast_e2e::fake_registrar::summary(&fake.registers())
    );
    assert_eq!(
        cli.statuses().last().map(|s| s["state"].clone()),
        Some("registered".into()),
        "{:?}",
        cli.statuses()
    );
    assert!(cli.wait_exit(Duration::ZERO).is_err(), "the CLI exited");
    (end, fake)
}

#[test]
fn flood_of_tiny_responses_keeps_memory_bounded() {
    // About 75 bytes each: 24 MB in all.
    flooded("3-tiny-response-flood", FloodKind::TinyResponses, 320_000);
}

#[test]
fn flood_of_keepalive_pings_is_answered_per_read() {
    let pings = 1_000_000;
    let (_, fake) = flooded("7-ping-flood", FloodKind::Pings, pings);
    let answered = fake.keepalive_bytes();
    println!("hostile-figure case=7-ping-flood keepalive_bytes_back={answered}");
    // Pongs are answered per read, not per ping (a write per ping cost seconds of CPU): the
    // fake writes 256 pings at a time, so even a client that reads each batch on its own sends
    // at most one pong per 256 pings; an eighth leaves room for its own pings.
    assert!(
        answered / 2 <= pings as u64 / 8,
        "{answered} keep-alive bytes back for {pings} pings"
    );
}

#[test]
fn flood_of_notifies_is_answered_once_each_and_stays_bounded() {
    let notifies = 40_000;
    let (_, fake) = flooded("notify-flood-tcp", FloodKind::Notifies, notifies);
    // One answer per NOTIFY at most, plus the OPTIONS round trip.
    assert!(
        fake.responses() <= notifies as u64 + 1,
        "{} answers to {notifies} NOTIFYs",
        fake.responses()
    );
}
