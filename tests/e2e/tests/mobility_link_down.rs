//! Scenario 3: the only link with a route to the registrar goes down for 20 s, then comes back.
//! While down the client reports `offline` with problem `network_down` (and never `registered`);
//! once up it registers again, and the registrar holds its contact and nothing stale.

use std::time::{Duration, SystemTime};
use vicifast_e2e::netns::{
    Link, NetnsError, Scenario, ScenarioOptions, REGISTER_LIMIT, SETTLE_LIMIT,
};

/// The outage of the scenario: part of what is tested, not a synchronisation delay.
const OUTAGE: Duration = Duration::from_secs(20);

#[test]
fn link_down_for_20_seconds_then_up() -> Result<(), NetnsError> {
    let Some(mut s) = Scenario::start(
        "link_down_for_20_seconds_then_up",
        ScenarioOptions::default(),
    )?
    else {
        return Ok(());
    };
    let addr = s.registered_on(Link::Wifi)?;
    s.client.drain();

    let down_at = s.topo.link_down(Link::Wifi)?;
    if s.topo.route_source().is_some() {
        return Err(NetnsError::Unexpected {
            expected: "no route to the registrar with Wi-Fi down".into(),
            seen: format!("{:?}", s.topo.route_source()),
        });
    }
    s.client
        .wait_for("offline with problem network_down", OUTAGE, |st| {
            st.state == "offline" && st.problem_code.as_deref() == Some("network_down")
        })?;
    let elapsed = SystemTime::now()
        .duration_since(down_at)
        .unwrap_or_default();
    std::thread::sleep(OUTAGE.saturating_sub(elapsed));
    if let Some(bad) = s.client.drain().iter().find(|st| st.is_registered()) {
        return Err(NetnsError::Unexpected {
            expected: "no `registered` status while the link is down".into(),
            seen: format!("{} {}/{}", bad.at, bad.state, bad.cause),
        });
    }

    s.topo.link_up(Link::Wifi)?;
    s.wait_registered_from(&addr, REGISTER_LIMIT)?;
    s.wait_settled(&addr, &[], SETTLE_LIMIT)?;
    Ok(())
}
