//! Scenario 5: the registrar restarts and loses every binding it held in memory. The client must
//! end registered with its binding present again (at the latest its refresh, with a short
//! `--expires`, restores it).

use std::time::Duration;
use vicifast_e2e::netns::{Link, NetnsError, Scenario, ScenarioOptions};

const EXPIRES: u32 = 60;

#[test]
fn registrar_restart_loses_bindings() -> Result<(), NetnsError> {
    let opts = ScenarioOptions {
        expires: Some(EXPIRES),
        ..ScenarioOptions::default()
    };
    let Some(mut s) = Scenario::start("registrar_restart_loses_bindings", opts)? else {
        return Ok(());
    };
    let addr = s.registered_on(Link::Wifi)?;

    s.registrar.restart(&s.topo)?;
    let right_after = s.registrar.bindings()?;
    if right_after.iter().any(|b| b.reaches(&addr)) {
        // Not a client failure: the scenario did not happen (bindings survived the restart).
        return Err(NetnsError::Unexpected {
            expected: "no bindings right after the restart".into(),
            seen: format!("{right_after:?}"),
        });
    }
    // The refresh at the latest (within one expiry) restores the binding; twice that bounds it.
    s.wait_settled(&addr, &[], Duration::from_secs(2 * u64::from(EXPIRES)))?;
    Ok(())
}
