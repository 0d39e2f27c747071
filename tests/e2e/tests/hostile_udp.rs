//! Hostile registrars over UDP (issue 8, cases 5 and 6, and more of the same kind): absurd
//! granted expiries, junk floods, challenges with odd algorithms, 200 OKs listing only other
//! devices, answers from another port, NOTIFY floods, 503 with Retry-After, 302, silence, stale
//! nonces, 423 chains and a Via that flaps. Each test holds the client to a REGISTER count over a
//! window (a bound from the pacing rule or RFC 3261's timers), and checks what it reports.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use serde_json::Value;
use std::time::Duration;
use vicifast_e2e::fake_registrar::{
    print_figure, register_ceiling, summary, udp_sends_within, Contacts, FakeRegistrar,
    FakeTransport, FloodKind, ProcessFigures, Received, Step,
};
use vicifast_e2e::{random_password, Cli, WAIT};

/// How long a test watches the client after its first REGISTER.
const WINDOW: Duration = Duration::from_secs(8);
/// How much the CLI's resident memory may grow while flooded, over what it held once registered
/// (about 14 MiB in a debug build).
const RSS_GROWTH_CEILING_KIB: u64 = 16 * 1024;

fn start(script: Vec<Step>, extra: &[&str]) -> (FakeRegistrar, Cli) {
    let fake = FakeRegistrar::start(script).unwrap();
    let args = fake.register_args(FakeTransport::Udp, "2002", extra);
    let cli = Cli::spawn(&args, &random_password()).unwrap();
    (fake, cli)
}

fn watch(case: &str, fake: &FakeRegistrar, cli: &Cli) -> Vec<Received> {
    let seen = fake.observe(WINDOW, WAIT).unwrap();
    print_figure(case, seen.len(), WINDOW, ProcessFigures::of(cli.pid()).ok());
    seen
}

fn assert_at_most(seen: &[Received], bound: usize) {
    assert!(
        seen.len() <= bound,
        "{} REGISTERs in {WINDOW:?}, at most {bound} allowed: {}",
        seen.len(),
        summary(seen)
    );
}

/// Registered for an hour, so no refresh falls inside what the test does next.
fn registered_for_an_hour() -> (FakeRegistrar, Cli) {
    let (fake, mut cli) = start(vec![Step::ok(3600)], &["--expires", "3600"]);
    cli.wait_for_state("registered", WAIT).unwrap();
    (fake, cli)
}

/// After a flood of `junk` datagrams: a handful of log lines and a summary, not a line per
/// datagram, and remote bytes escaped (no NUL, ESC or BEL from the attacker reaches the
/// terminal).
fn assert_log_bounded_and_escaped(log: &str, junk: usize) {
    assert!(
        log.lines().count() <= 20 && log.len() <= 16 * 1024,
        "{} log lines, {} bytes for {junk} junk datagrams:\n{}",
        log.lines().count(),
        log.len(),
        &log[..log.len().min(4000)]
    );
    assert!(
        !log.contains(['\0', '\u{1b}', '\u{7}']),
        "raw control bytes in the log:\n{log:?}"
    );
}

/// The flood changed nothing: one REGISTER, still registered.
fn assert_still_registered_once(fake: &FakeRegistrar, cli: &Cli) {
    assert_eq!(fake.register_count(), 1, "{}", summary(&fake.registers()));
    assert_eq!(
        cli.statuses().last().map(|s| s["state"].clone()),
        Some("registered".into())
    );
}

/// A registrar whose answers never arrive (`step`): over the window only retransmissions of
/// the first transaction (Timer E), no new ones, and never `registered`.
fn one_transaction_unanswered(case: &str, step: Step) {
    let (fake, cli) = start(vec![step], &[]);
    let seen = watch(case, &fake, &cli);
    assert_at_most(&seen, udp_sends_within(WINDOW));
    assert_eq!(fake.transaction_count(), 1, "{}", summary(&seen));
    never(&cli, "registered");
}

fn never(cli: &Cli, state: &str) {
    assert!(
        cli.statuses().iter().all(|s| s["state"] != state),
        "{:?}",
        cli.statuses()
    );
}

#[test]
fn expires_of_one_second_is_refreshed_as_thirty() {
    let (fake, mut cli) = start(vec![Step::ok(1)], &["--expires", "60"]);
    let registered = cli.wait_for_state("registered", WAIT).unwrap();
    // Refreshing a 30 s binding happens after 15 s at the earliest: one REGISTER in the window.
    let seen = watch("5-expires-1", &fake, &cli);
    assert_at_most(&seen, 1);
    let adjusted = &registered["expiry_adjusted"];
    assert_eq!(adjusted["reason"], "below_minimum", "{registered}");
    assert_eq!(adjusted["granted"], 1, "{registered}");
    assert_eq!(adjusted["refreshed_as"], 30, "{registered}");
    assert!(!adjusted["message"].as_str().unwrap_or("").is_empty());
}

#[test]
fn expires_of_a_century_is_refreshed_as_asked() {
    let (fake, mut cli) = start(vec![Step::ok(4_294_967_295)], &["--expires", "60"]);
    let registered = cli.wait_for_state("registered", WAIT).unwrap();
    let seen = watch("5-expires-max", &fake, &cli);
    assert_at_most(&seen, 1);
    let adjusted = &registered["expiry_adjusted"];
    assert_eq!(adjusted["reason"], "above_requested", "{registered}");
    assert_eq!(adjusted["granted"], 4_294_967_295_u64, "{registered}");
    assert_eq!(adjusted["refreshed_as"], 60, "{registered}");
    let refresh = registered["next_refresh_in"].as_u64().unwrap();
    assert!(refresh <= 60, "refresh in {refresh} s: {registered}");
    assert!(
        registered["expires_in"].as_u64().is_some_and(|e| e <= 60),
        "{registered}"
    );
}

#[test]
fn junk_flood_writes_a_bounded_escaped_log() {
    let junk = 20_000;
    let (fake, cli) = registered_for_an_hour();
    fake.flood(FakeTransport::Udp, FloodKind::Junk, junk)
        .unwrap();
    fake.wait_floods_done(WAIT).unwrap();
    fake.round_trip(FakeTransport::Udp, WAIT).unwrap();
    let log = cli.stderr();
    let figures = ProcessFigures::of(cli.pid()).unwrap();
    println!(
        "hostile-figure case=6-junk-flood datagrams={junk} log_bytes={} peak_rss_kib={}",
        log.len(),
        figures.peak_rss_kib
    );
    assert_log_bounded_and_escaped(&log, junk);
    assert_still_registered_once(&fake, &cli);
}

#[test]
fn junk_flood_from_a_stranger_is_dropped_quietly() {
    let junk = 20_000;
    let (fake, cli) = registered_for_an_hour();
    fake.flood_from_another_port(FloodKind::Junk, junk).unwrap();
    fake.wait_floods_done(WAIT).unwrap();
    // The registrar's own OPTIONS comes after the flood on the same socket queue.
    fake.round_trip(FakeTransport::Udp, WAIT).unwrap();
    let log = cli.stderr();
    println!(
        "hostile-figure case=6-junk-flood-from-stranger datagrams={junk} log_bytes={}",
        log.len()
    );
    assert_log_bounded_and_escaped(&log, junk);
    assert_still_registered_once(&fake, &cli);
}

#[test]
fn notify_flood_is_answered_once_each_and_stays_bounded() {
    let notifies = 5_000;
    let (fake, cli) = registered_for_an_hour();
    let start = ProcessFigures::of(cli.pid()).unwrap();
    fake.flood(FakeTransport::Udp, FloodKind::Notifies, notifies)
        .unwrap();
    fake.wait_floods_done(WAIT).unwrap();
    fake.round_trip(FakeTransport::Udp, WAIT).unwrap();
    let figures = ProcessFigures::of(cli.pid()).unwrap();
    println!(
        "hostile-figure case=notify-flood-udp notifies={notifies} answers={} peak_rss_kib={}",
        fake.responses(),
        figures.peak_rss_kib
    );
    assert!(
        figures.peak_rss_kib <= start.rss_kib + RSS_GROWTH_CEILING_KIB,
        "{start:?} once registered, {figures:?} after the flood"
    );
    assert!(
        fake.responses() <= notifies as u64 + 1,
        "{} answers",
        fake.responses()
    );
    assert_still_registered_once(&fake, &cli);
}

/// A challenge with `algorithm` that never accepts an answer: at most one REGISTER to be
/// challenged and one with credentials, then `failed` (it needs the user) and exit 1.
fn odd_algorithm(algorithm: &str) {
    let (fake, mut cli) = start(vec![Step::challenge(algorithm, false)], &[]);
    let failed = cli
        .wait_for_state("failed", WAIT)
        .unwrap_or_else(|e| panic!("algorithm {algorithm}: {e}"));
    let code = failed["problem"]["code"].as_str().unwrap_or("");
    assert!(
        ["rejected", "wrong_password"].contains(&code),
        "algorithm {algorithm}: {failed}"
    );
    assert_eq!(cli.wait_exit(WAIT).unwrap().code(), Some(1));
    let count = fake.register_count();
    println!("hostile-figure case=401-algorithm-{algorithm} registers={count}");
    assert!(
        (1..=2).contains(&count),
        "algorithm {algorithm}: {count} REGISTERs: {}",
        summary(&fake.registers())
    );
}

#[test]
fn challenges_with_odd_algorithms_end_after_two_registers() {
    for algorithm in ["AKAv1-MD5", "SHA-512-256", "MD5-sess", "rot13", "\"\""] {
        odd_algorithm(algorithm);
    }
}

#[test]
fn ok_listing_only_other_devices_is_corrected_at_most_twice() {
    let foreign = Contacts::Foreign(vec![
        "sip:2002@198.18.0.77:5060".to_owned(),
        "sip:2002@198.18.0.78:5062;transport=tcp".to_owned(),
    ]);
    let (fake, cli) = start(vec![Step::ok(60).contacts(foreign)], &[]);
    let seen = watch("200-foreign-contacts", &fake, &cli);
    // The first REGISTER and two corrections on this flow (the core's limit), well inside the
    // ceiling of 10 at once.
    assert_at_most(&seen, 3.min(register_ceiling(WINDOW)));
    never(&cli, "failed");
}

#[test]
fn answers_from_another_port_are_ignored() {
    one_transaction_unanswered("answer-from-other-port", Step::ok(60).from_other_port());
}

#[test]
fn silence_gets_retransmissions_of_one_transaction() {
    one_transaction_unanswered("silence-udp", Step::silence());
}

#[test]
fn half_a_datagram_is_dropped() {
    one_transaction_unanswered("half-datagram", Step::half());
}

fn retrying_status(cli: &mut Cli) -> Value {
    cli.wait_for_state("retrying", WAIT).unwrap()
}

#[test]
fn service_unavailable_with_retry_after_is_honoured() {
    let (fake, mut cli) = start(
        vec![Step::status(503, "Service Unavailable").header("Retry-After", "120")],
        &["--backoff-base", "5"],
    );
    let retrying = retrying_status(&mut cli);
    assert_eq!(retrying["problem"]["code"], "server_error", "{retrying}");
    let next = retrying["next_attempt_in"].as_u64().unwrap_or(0);
    assert!(next >= 119, "Retry-After: 120 but next attempt in {next} s");
    let seen = watch("503-retry-after", &fake, &cli);
    assert_at_most(&seen, 1);
}

#[test]
fn redirect_needs_the_user() {
    let (fake, mut cli) = start(
        vec![Step::status(302, "Moved Temporarily").header("Contact", "<sip:2002@198.18.0.9:5060>")],
        &[],
    );
    let failed = cli.wait_for_state("failed", WAIT).unwrap();
    assert_eq!(failed["problem"]["code"], "rejected", "{failed}");
    assert_eq!(cli.wait_exit(WAIT).unwrap().code(), Some(1));
    assert_eq!(fake.register_count(), 1, "{}", summary(&fake.registers()));
}

#[test]
fn stale_nonces_forever_get_the_backoff() {
    let (fake, mut cli) = start(
        vec![Step::challenge("MD5", false), Step::challenge("MD5", true)],
        &["--backoff-base", "30"],
    );
    let retrying = retrying_status(&mut cli);
    let count = fake.register_count();
    println!("hostile-figure case=stale-nonce-chain registers_before_backoff={count}");
    // One to be challenged, one answer, three answers to stale challenges, then the backoff:
    // with --backoff-base 30, the first wait is at least 30 s.
    assert!(
        count <= 5,
        "{count} REGISTERs: {}",
        summary(&fake.registers())
    );
    let next = retrying["next_attempt_in"].as_u64().unwrap_or(0);
    assert!(next >= 29, "next attempt in {next} s: {retrying}");
    assert!(fake
        .wait_for_registers(count + 1, Duration::from_secs(3))
        .is_err());
}

#[test]
fn interval_too_brief_chain_ends() {
    let steps = [120, 240, 480, 960, 1920, 3840]
        .iter()
        .map(|min| Step::status(423, "Interval Too Brief").header("Min-Expires", &min.to_string()))
        .collect();
    let (fake, mut cli) = start(steps, &["--expires", "60"]);
    let failed = cli.wait_for_state("failed", WAIT).unwrap();
    assert_eq!(failed["problem"]["code"], "rejected", "{failed}");
    let count = fake.register_count();
    println!("hostile-figure case=423-chain registers={count}");
    // The request and three raised retries.
    assert!(
        count <= 4,
        "{count} REGISTERs: {}",
        summary(&fake.registers())
    );
}

#[test]
fn interval_too_brief_beyond_a_day_fails_at_once() {
    let (fake, mut cli) = start(
        vec![Step::status(423, "Interval Too Brief").header("Min-Expires", "4294967295")],
        &[],
    );
    let failed = cli.wait_for_state("failed", WAIT).unwrap();
    assert_eq!(failed["problem"]["code"], "rejected", "{failed}");
    assert_eq!(fake.register_count(), 1);
}

#[test]
fn flapping_received_and_rport_are_followed_at_most_twice() {
    let (fake, cli) = start(vec![Step::ok(60).flapping_via()], &[]);
    let seen = watch("flapping-via", &fake, &cli);
    assert_at_most(&seen, 3.min(register_ceiling(WINDOW)));
    never(&cli, "failed");
}
