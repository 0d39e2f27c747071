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
//!
//! # The pacing rule
//!
//! A call center's agents share one PBX and usually one public address: a client that hammers
//! the registrar gets that address banned, and the whole office stops taking calls. So the rate
//! of REGISTERs and of new connections ([`Output::OpenFlow`]) to the registrar is bounded by the
//! backoff, whatever the registrar or the network does, and a hard ceiling backs that up:
//!
//! - After a failure (refused, timed out, 5xx, a flow that breaks, stale nonces or 423s that do
//!   not end), the next attempt waits as RFC 5626 §4.5 says: a random time between half and all
//!   of `min(backoff_cap, backoff_base * 2^failures)`, at least the registrar's Retry-After.
//! - A success resets the failure count only once it has held for 30 s: a registrar or load
//!   balancer that closes the connection right after each 200 OK gets the growing backoff, not
//!   a reconnect per 200 OK.
//! - When a flow that carried a binding that held breaks (the registrar restarted, or closed an
//!   idle connection), the next attempts come after random waits under 2, 4, 8 and 16 s, then
//!   the backoff applies: back within seconds of the registrar, and a registrar's thousands of
//!   agents come back spread out rather than in one spike.
//! - A network change (new address, route back) re-registers at once. While failing, a change
//!   pulls the next attempt forward once per wait, and that attempt's failure counts like any
//!   other: route events cannot undo the backoff.
//! - Ceiling: at most 10 REGISTERs at once then one per 5 s, and 5 new flows at once then one per
//!   12 s. Every REGISTER and every new flow passes this one gate (user commands too); whatever
//!   is over it waits for the gate.
//! - A granted expiry below 30 s (or below what we asked, if that is less) is refreshed as if it
//!   were that long, and one longer than we asked (or than a day) as if it were what we asked;
//!   the status says so ([`Status::expiry_adjusted`]).

mod binding;
pub mod config;
mod digest;
pub mod drop_log;
pub mod edge;
#[doc(hidden)]
pub mod fuzzing;
mod message;
mod registration;
pub mod status;
mod timer;
mod transaction;
pub mod validate;

pub use config::{AccountConfig, AddressError, Password, ServerAddress, TransactionTimers};
pub use digest::ChallengeError;
pub use drop_log::{DropLog, DropReason};
pub use message::{redact, MessageError};
pub use registration::{Purpose, Registration};
pub use status::{
    BindingInfo, Cause, Direction, ExpiryAdjustment, ExpiryAdjustmentReason, ExtensionInUse,
    InUseDetection, IncomingCall, OtherDevice, Problem, ProblemCode, RegistrationState, Status,
    TraceEntry, Transport,
};
pub use validate::{Field, ValidationError, ValidationErrorKind};

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
    /// Another device took the extension's binding: once per episode (the status carries it
    /// for as long as it lasts).
    ExtensionInUse(ExtensionInUse),
    /// The registrar granted a lifetime we refresh by another (reported when it changes).
    ExpiryAdjusted(ExpiryAdjustment),
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
