//! Sans-IO core of VICIfast's SIP registration engine.
//!
//! A [`Registration`] is a pure state machine: it never reads a clock, opens a socket or draws
//! randomness of its own. The driver feeds it inputs (`handle_*`, each carrying `now`) and then
//! drains its outputs in this order, until each returns `None`:
//!
//! 1. [`Registration::poll_output`] until `None`: datagrams to send, flows to open or close,
//!    names to resolve, and events (status changes, incoming calls, trace entries), in order;
//! 2. [`Registration::poll_timeout`]: the next instant at which to call `handle_timeout`.
//!
//! Randomness (Call-ID, tags, branches, cnonces, backoff jitter) comes from a ChaCha20 CSPRNG
//! seeded by the driver, so tests can replay a run exactly.

mod binding;
pub mod config;
mod digest;
pub mod edge;
mod message;
mod registration;
pub mod status;
mod timer;
mod transaction;

pub use config::{AccountConfig, AddressError, Password, ServerAddress, TransactionTimers};
pub use digest::ChallengeError;
pub use message::{redact, MessageError};
pub use registration::{Purpose, Registration};
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

/// Identifies one flow (a UDP socket, or a TCP/TLS connection) the driver opened for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

impl std::fmt::Display for FlowId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "flow#{}", self.0)
    }
}

/// Bytes to send on a flow. On UDP `destination` is where to send them; on TCP/TLS the flow's peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub flow: FlowId,
    pub destination: SocketAddr,
    pub payload: Vec<u8>,
}

/// What the driver must do for the core, in the order the core asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    Transmit(Transmit),
    /// Locate the server (RFC 3263) and answer with [`Registration::handle_resolved`].
    Resolve {
        server: ServerAddress,
        transport: Option<Transport>,
    },
    /// Open a flow to `target`; answer with `handle_flow_opened` or `handle_flow_error`.
    OpenFlow {
        flow: FlowId,
        target: Target,
    },
    CloseFlow {
        flow: FlowId,
    },
    /// Work out which local address now reaches the current server (no packet sent) and answer
    /// with [`Registration::handle_network_changed`].
    CheckNetwork,
    Event(Event),
}

/// Things worth telling the user or the embedding application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    Status(Status),
    IncomingCall(IncomingCall),
    Trace(TraceEntry),
    /// The bindings the registrar listed, for [`Purpose::ListBindings`] and [`Purpose::RemoveLocal`].
    Bindings(Vec<BindingInfo>),
    /// The contacts removed by [`Purpose::RemoveLocal`].
    Removed(Vec<String>),
    /// Nothing more will happen: stopped, or a one-shot purpose is done.
    Finished,
}

/// Why a flow could not be opened or broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {detail}")]
pub struct FlowError {
    pub kind: FlowErrorKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowErrorKind {
    /// Nothing listens there (TCP RST, ICMP port unreachable).
    Refused,
    /// The server's certificate did not verify.
    TlsCertificate,
    /// No route to the server.
    NetworkUnreachable,
    /// The peer closed the connection.
    Closed,
    Other,
}
