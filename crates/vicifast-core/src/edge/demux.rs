//! How the registration and the edge proxy of one account share the registration's flow.
//!
//! The registration owns the flow (it opens, refreshes, moves and closes it); the edge proxy only
//! sends on it. So the edge proxy follows the registration: [`follow_flow`] after every input to
//! the registration, and [`receive_on_flow`] for every message that arrives on a flow, which
//! gives the edge proxy first pick ([`EdgeProxy::handle_pbx_receive`]) and the registration what
//! the edge proxy leaves ([`FromPbx::ForRegistration`]: its own responses, REGISTER, the
//! registrar's qualify OPTIONS). An INVITE on the current flow therefore reaches the softphone,
//! never the registration's "no one here" answer.

use super::{EdgeProxy, FromPbx};
use crate::{FlowId, Registration};
use std::net::SocketAddr;
use std::time::Instant;

/// Tells the edge proxy about a new flow, a new public address or the loss of the flow, if the
/// registration's differs from what the edge proxy has. Returns whether it did.
pub fn follow_flow(edge: &mut EdgeProxy, registration: &Registration, now: Instant) -> bool {
    let current = registration.pbx_flow();
    if edge.pbx_flow().copied() == current {
        return false;
    }
    edge.handle_pbx_flow(now, current);
    true
}

/// A message arrived on a flow of the registration: the edge proxy's, or else the registration's.
pub fn receive_on_flow(
    registration: &mut Registration,
    edge: Option<&mut EdgeProxy>,
    now: Instant,
    flow: FlowId,
    remote: SocketAddr,
    data: &[u8],
) {
    let Some(edge) = edge else {
        registration.handle_receive(now, flow, remote, data);
        return;
    };
    follow_flow(edge, registration, now);
    if edge.handle_pbx_receive(now, flow, remote, data) == FromPbx::ForRegistration {
        registration.handle_receive(now, flow, remote, data);
        follow_flow(edge, registration, now);
    }
}
