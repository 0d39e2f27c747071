//! Scenario 1: the default route moves from Wi-Fi to wired. The registrar must end up holding the
//! client's contact on the wired address and nothing on the Wi-Fi address, whether the Wi-Fi
//! address disappears with the route or stays (only the route moved), and also when the
//! registrar allows a single contact per extension (`max_contacts=1`): there a client that adds
//! the new contact before removing the old one is refused and keeps the stale binding.

use vicifast_e2e::netns::{
    Link, NetnsError, Scenario, ScenarioOptions, REGISTER_LIMIT, SETTLE_LIMIT,
};

fn route_switch(test: &str, remove_old_address: bool, max_contacts: u32) -> Result<(), NetnsError> {
    let opts = ScenarioOptions {
        max_contacts,
        ..ScenarioOptions::default()
    };
    let Some(mut s) = Scenario::start(test, opts)? else {
        return Ok(());
    };
    let old = s.registered_on(Link::Wifi)?;

    s.topo
        .switch_default_route(Link::Wired, remove_old_address)?;
    let new = s.client_ip(Link::Wired)?;
    s.wait_registered_from(&new, REGISTER_LIMIT)?;
    s.wait_settled(&new, &[&old], SETTLE_LIMIT)?;
    Ok(())
}

#[test]
fn route_switch_removing_the_old_address() -> Result<(), NetnsError> {
    route_switch("route_switch_removing_the_old_address", true, 0)
}

#[test]
fn route_switch_keeping_both_addresses() -> Result<(), NetnsError> {
    route_switch("route_switch_keeping_both_addresses", false, 0)
}

#[test]
fn route_switch_with_one_contact_allowed() -> Result<(), NetnsError> {
    route_switch("route_switch_with_one_contact_allowed", true, 1)
}
