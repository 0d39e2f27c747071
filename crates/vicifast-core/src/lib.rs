//! Sans-IO core of VICIfast's SIP registration engine.
//!
//! A [`Registration`] is a pure state machine: it never reads a clock, opens a socket or draws
//! randomness of its own. The driver feeds it inputs (`handle_*`, each carrying `now`) and then
//! drains its outputs in this order, until each returns `None`:
//!
//! 1. [`Registration::poll_transmit`]/[`Registration::poll_action`]: datagrams to send, flows to open or close, names to resolve;
//! 2. [`Registration::poll_event`]: status changes, incoming calls, trace entries;
//! 3. [`Registration::poll_timeout`]: the next instant at which to call `handle_timeout`.
//!
//! Randomness (Call-ID, tags, branches, cnonces, backoff jitter) comes from a ChaCha20 CSPRNG
//! seeded by the driver, so tests can replay a run exactly.

pub mod config;
pub mod status;

pub use config::{AccountConfig, AddressError, Password, ServerAddress, TransactionTimers};
pub use status::{
    BindingInfo, Cause, Direction, IncomingCall, Problem, ProblemCode, RegistrationState, Status,
    TraceEntry, Transport,
};

use std::net::SocketAddr;

/// One place a request can be sent: an address, the transport to use, and the name to verify a
/// TLS certificate against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub addr: SocketAddr,
    pub transport: Transport,
    /// Host name (or IP literal) the server's TLS certificate must match.
    pub server_name: String,
}
