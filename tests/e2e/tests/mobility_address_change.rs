//! Scenario 2: the client's address changes on the same link (a new DHCP lease). The registrar
//! must end up with the contact on the new address only.

use vicifast_e2e::netns::{
    Link, NetnsError, Scenario, ScenarioOptions, REGISTER_LIMIT, SETTLE_LIMIT,
};

#[test]
fn address_change_on_the_same_link() -> Result<(), NetnsError> {
    let Some(mut s) = Scenario::start(
        "address_change_on_the_same_link",
        ScenarioOptions::default(),
    )?
    else {
        return Ok(());
    };
    let old = s.registered_on(Link::Wifi)?;

    s.topo.change_address(Link::Wifi)?;
    let new = s.client_ip(Link::Wifi)?;
    assert_ne!(old, new, "the topology must hand out a different address");
    s.wait_registered_from(&new, REGISTER_LIMIT)?;
    s.wait_settled(&new, &[&old], SETTLE_LIMIT)?;
    Ok(())
}
