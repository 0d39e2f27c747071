//! The race of issue 3: after a network switch the client registers the new contact and removes
//! the old one; if the removal (or a late refresh from the old flow) is processed after the new
//! binding was saved and removes it, the agent silently stops receiving calls while the client
//! believes it is registered.
//!
//! After the switch and the client's `registered`, this watches the registrar until the client's
//! next refresh has been processed: the new binding must be present at every look, and no
//! REGISTER processed after the new binding was saved may remove it (checked in Kamailio's log,
//! so a removal followed quickly by a re-add is caught too).

use std::time::{Duration, SystemTime};
use vicifast_e2e::netns::{
    realtime_secs, wait_until, Link, NetnsError, Scenario, ScenarioOptions, REGISTER_LIMIT,
    SETTLE_LIMIT,
};

/// Short, so the next refresh comes soon; the watch lasts until it has been processed.
const EXPIRES: u32 = 60;

fn switch_race(test: &str, remove_old_address: bool) -> Result<(), NetnsError> {
    let opts = ScenarioOptions {
        expires: Some(EXPIRES),
        ..ScenarioOptions::default()
    };
    let Some(mut s) = Scenario::start(test, opts)? else {
        return Ok(());
    };
    let old = s.registered_on(Link::Wifi)?;

    let switched_at = realtime_secs(
        s.topo
            .switch_default_route(Link::Wired, remove_old_address)?,
    );
    let new = s.client_ip(Link::Wired)?;
    s.wait_settled(&new, &[&old], REGISTER_LIMIT)?;
    let saved_at = s
        .registrar
        .saves()
        .iter()
        .find(|e| e.at >= switched_at && e.adds(&new))
        .map(|e| e.at)
        .ok_or(NetnsError::Unexpected {
            expected: format!("a logged save of a contact on {new}"),
            seen: s.registrar.log_tail(),
        })?;

    // Watch until a later save of the new contact (the next refresh) has been processed.
    let limit = Duration::from_secs(2 * u64::from(EXPIRES));
    let started = SystemTime::now();
    let mut vanished = None;
    let refreshed = wait_until(limit, Duration::from_millis(200), || {
        if vanished.is_none() && s.check_binding_now(&new).is_err() {
            vanished = Some(format!("{:?}", s.registrar.bindings()));
        }
        s.registrar
            .saves()
            .iter()
            .any(|e| e.at > saved_at && e.adds(&new))
            .then_some(())
    });
    if let Some(seen) = vanished {
        return Err(NetnsError::Unexpected {
            expected: format!("the binding on {new} present at every look after the switch"),
            seen,
        });
    }
    let removals: Vec<String> = s
        .registrar
        .registers()
        .iter()
        .filter(|e| e.at > saved_at && e.removes(&new))
        .map(|e| format!("{e:?}"))
        .collect();
    if !removals.is_empty() {
        return Err(NetnsError::Unexpected {
            expected: format!("no REGISTER removing the contact on {new} after it was saved"),
            seen: removals.join("; "),
        });
    }
    if refreshed.is_none() {
        return Err(NetnsError::Timeout {
            what: "the client's next refresh of the new binding".into(),
            waited: limit,
            last: format!("watched since {started:?}; {}", s.registrar.log_tail()),
        });
    }
    s.wait_settled(&new, &[&old], SETTLE_LIMIT)?;
    Ok(())
}

#[test]
fn new_binding_survives_a_switch_removing_the_old_address() -> Result<(), NetnsError> {
    switch_race(
        "new_binding_survives_a_switch_removing_the_old_address",
        true,
    )
}

#[test]
fn new_binding_survives_a_switch_keeping_both_addresses() -> Result<(), NetnsError> {
    switch_race(
        "new_binding_survives_a_switch_keeping_both_addresses",
        false,
    )
}
