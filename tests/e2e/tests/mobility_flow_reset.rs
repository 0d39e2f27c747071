//! Scenario 7: over TCP and over TLS, the registrar side resets the connection (`ss -K` in the
//! registrar's namespace sends the client a RST). The client must register again over a new
//! connection, and the registrar must hold only the contact of the new flow.

use vicifast_e2e::netns::{
    Link, NetnsError, Scenario, ScenarioOptions, REGISTER_LIMIT, SETTLE_LIMIT,
};

fn connection_reset(test: &str, transport: &'static str) -> Result<(), NetnsError> {
    let opts = ScenarioOptions {
        transport,
        ..ScenarioOptions::default()
    };
    let Some(mut s) = Scenario::start(test, opts)? else {
        return Ok(());
    };
    let addr = s.registered_on(Link::Wifi)?;
    let connections = s.topo.registrar_connections()?;
    if connections.is_empty() {
        return Err(NetnsError::Unexpected {
            expected: format!("an established {transport} connection at the registrar"),
            seen: "none".into(),
        });
    }
    s.client.drain();

    s.topo.reset_registrar_connections()?;
    // A new `registered` after the reset, then the registrar holding exactly the contact the
    // client reports now: the old flow's contact (old port) must be gone.
    s.client
        .wait_for("registered again after the reset", REGISTER_LIMIT, |st| {
            st.is_registered()
        })?;
    s.wait_settled(&addr, &[], SETTLE_LIMIT)?;
    Ok(())
}

#[test]
fn tcp_connection_reset_by_the_registrar() -> Result<(), NetnsError> {
    connection_reset("tcp_connection_reset_by_the_registrar", "tcp")
}

#[test]
fn tls_connection_reset_by_the_registrar() -> Result<(), NetnsError> {
    connection_reset("tls_connection_reset_by_the_registrar", "tls")
}
