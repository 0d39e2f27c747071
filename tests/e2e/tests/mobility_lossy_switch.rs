//! Scenario 6: 30% packet loss (each direction) on the path while the client switches from Wi-Fi
//! to wired. Retransmissions must carry the registration through; the registrar must end with
//! the wired contact and nothing on the old address.

use std::time::Duration;
use vicifast_e2e::netns::{Link, NetnsError, Scenario, ScenarioOptions};

#[test]
fn route_switch_with_30_percent_loss() -> Result<(), NetnsError> {
    let Some(mut s) = Scenario::start(
        "route_switch_with_30_percent_loss",
        ScenarioOptions::default(),
    )?
    else {
        return Ok(());
    };
    let old = s.registered_on(Link::Wifi)?;

    let how = s.topo.set_loss(30)?;
    println!("30% loss applied with {how:?}");
    s.topo.switch_default_route(Link::Wired, true)?;
    let new = s.client_ip(Link::Wired)?;
    // A non-INVITE transaction over UDP gives up after 32 s (Timer F); allow a few of them.
    s.wait_settled(&new, &[&old], Duration::from_secs(180))?;
    if let Some(drops) = s.topo.loss_drops() {
        println!("packets dropped on the path: {drops}");
    }
    Ok(())
}
