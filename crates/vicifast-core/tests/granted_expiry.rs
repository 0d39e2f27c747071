//! The lifetime the registrar grants is not trusted blindly: one under 30 s is refreshed as if it
//! were 30 s (no REGISTER every half second for `Expires: 1`), one longer than asked as if it
//! were what was asked (no century without a refresh for `Expires: 4294967295`). The status says
//! so, in a field the window and the CLI can show.

mod harness;
use harness::*;
use std::time::Duration;
use vicifast_core::{ExpiryAdjustmentReason, RegistrationState};

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn a_one_second_grant_is_refreshed_as_if_it_were_thirty() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.force_grant = Some(1);
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.register();
    let status = sim.last_status();
    assert_eq!(status.next_refresh_in, Some(15));
    let adjusted = status.expiry_adjusted.expect("the status says so");
    assert_eq!(
        (adjusted.granted, adjusted.refreshed_as, adjusted.reason),
        (1, 30, ExpiryAdjustmentReason::BelowMinimum)
    );
    assert!(
        adjusted.message.contains("only 1 s"),
        "{}",
        adjusted.message
    );
    sim.run_for(10 * MINUTE);
    println!(
        "Expires: 1 → {} REGISTERs in 10 min, per minute {:?}",
        sim.registers_sent().len(),
        sim.registers_per_minute()
    );
    // One refresh every 15 s (pre-authorised, so one REGISTER each): 4 a minute.
    assert!(sim.registers_per_minute().iter().all(|n| *n <= 5));
    assert_eq!(sim.last_status().state, RegistrationState::Registered);
}

#[test]
fn a_grant_of_4294967295_seconds_after_asking_60_is_refreshed_as_60() {
    let mut c = config();
    c.expires = Duration::from_secs(60);
    let mut registrar = FakeRegistrar::new("pw");
    registrar.force_grant = Some(u32::MAX);
    let mut sim = Sim::new(c, "pw", registrar);
    sim.register();
    let status = sim.last_status();
    assert_eq!(
        (status.expires_in, status.next_refresh_in),
        (Some(60), Some(30))
    );
    let adjusted = status.expiry_adjusted.expect("the status says so");
    assert_eq!(
        (adjusted.granted, adjusted.refreshed_as, adjusted.reason),
        (u32::MAX, 60, ExpiryAdjustmentReason::AboveRequested)
    );
    sim.run_for(5 * MINUTE);
    let refreshes = sim.registers_sent().len() - 2;
    assert_eq!(refreshes, 10, "every 30 s");
}

#[test]
fn an_ordinary_grant_carries_no_adjustment() {
    let mut registrar = FakeRegistrar::new("pw");
    registrar.max_grant = Some(120);
    let mut sim = Sim::new(config(), "pw", registrar);
    sim.register();
    assert_eq!(sim.last_status().expiry_adjusted, None);
    let json = serde_json::to_value(sim.last_status()).expect("json");
    assert!(json.get("expiry_adjusted").is_some_and(|v| v.is_null()));
}
