//! Scenario 4: the client sits behind a NAT router, and the router forgets its mapping (conntrack
//! flushed: a NAT reboot or timeout). The client's next packets leave from a new public port; the
//! registrar must end up with one binding that reaches the client through the new mapping, and
//! nothing through the old one.

use std::time::Duration;
use vicifast_e2e::netns::{
    wait_until, Link, NetnsError, Scenario, ScenarioOptions, REGISTER_LIMIT, SETTLE_LIMIT,
};

/// With `--expires 60` the client refreshes (and so re-learns its public address) within a
/// minute even if nothing else makes it notice; twice that bounds the wait.
const EXPIRES: u32 = 60;

#[test]
fn nat_mapping_changes() -> Result<(), NetnsError> {
    let opts = ScenarioOptions {
        nat: true,
        expires: Some(EXPIRES),
        ..ScenarioOptions::default()
    };
    let Some(mut s) = Scenario::start("nat_mapping_changes", opts)? else {
        return Ok(());
    };
    let private = s.client_ip(Link::Wifi)?;
    let before = s.wait_registered_from(&private, REGISTER_LIMIT)?;
    let inside = before.local_address.clone().ok_or(NetnsError::Unexpected {
        expected: "the client to report its local address".into(),
        seen: format!("{:?}", before.raw),
    })?;
    let old_public = wait_until(SETTLE_LIMIT, Duration::from_millis(100), || {
        s.topo.public_address_of(&inside)
    })
    .ok_or(NetnsError::Unexpected {
        expected: format!("a NAT mapping for {inside}"),
        seen: format!("{:?}", s.topo.nat_mappings()),
    })?;
    s.wait_only_binding(&before, &old_public, &[], SETTLE_LIMIT)?;

    s.topo.nat_rebind()?;
    let limit = Duration::from_secs(2 * u64::from(EXPIRES));
    // The new mapping appears with the client's next packet; the registrar must then hold a
    // binding that reaches it and none reaching the forgotten one.
    let mut seen = String::new();
    let done = wait_until(limit, Duration::from_millis(200), || {
        let public = s
            .topo
            .public_address_of(&inside)
            .filter(|p| *p != old_public)?;
        let bindings = s.registrar.bindings().ok()?;
        seen = format!("mapping {public}, bindings {bindings:?}");
        let [b] = bindings.as_slice() else {
            return None;
        };
        (b.reaches(&public) && !b.reaches(&old_public)).then_some(public)
    });
    if done.is_none() {
        return Err(NetnsError::Timeout {
            what: format!("one binding through the new NAT mapping (old {old_public})"),
            waited: limit,
            last: seen,
        });
    }
    let last = s.client.latest().cloned();
    match last {
        Some(st) if st.is_registered() => Ok(()),
        other => Err(NetnsError::Unexpected {
            expected: "the client to report registered".into(),
            seen: format!("{:?}", other.map(|st| (st.state, st.cause))),
        }),
    }
}
