//! What the engine tells its embedder: status changes, incoming calls and the SIP trace, each
//! stamped with the wall-clock time it happened.

use serde::Serialize;
use std::time::SystemTime;
use vicifast_core::edge::{CallMoved, SoftphoneStatus};
use vicifast_core::{
    BindingInfo, ExpiryAdjustment, ExtensionInUse, IncomingCall, Status, TraceEntry,
};

/// A value with the moment it was produced (RFC 3339, UTC, milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Stamped<T> {
    pub at: String,
    #[serde(flatten)]
    pub inner: T,
}

impl<T> Stamped<T> {
    pub fn now(inner: T) -> Self {
        Self::at(SystemTime::now(), inner)
    }

    pub fn at(when: SystemTime, inner: T) -> Self {
        Self {
            at: humantime::format_rfc3339_millis(when).to_string(),
            inner,
        }
    }
}

/// The bindings a registrar listed (for `bindings`-style queries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BindingList {
    pub bindings: Vec<BindingInfo>,
}

/// The contacts an `unregister` removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedContacts {
    pub removed: Vec<String>,
}

/// A call from the PBX answered at once because the softphone cannot take it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedCall {
    #[serde(flatten)]
    pub call: IncomingCall,
    /// Why, in words for the agent.
    pub reason: String,
}

/// Everything a running registration reports. Serialised (as the CLI's `--json` lines), each
/// event is one object whose `event` field names the variant in snake case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EngineEvent {
    Status(Stamped<Status>),
    IncomingCall(Stamped<IncomingCall>),
    Trace(Stamped<TraceEntry>),
    Bindings(Stamped<BindingList>),
    Removed(Stamped<RemovedContacts>),
    /// Another device took the extension (once per episode; statuses carry it meanwhile).
    ExtensionInUse(Stamped<ExtensionInUse>),
    /// The registrar granted a lifetime the engine refreshes by another (when it changes).
    ExpiryAdjusted(Stamped<ExpiryAdjustment>),
    /// The softphone behind the edge proxy changed state (answering, not answering, …).
    Softphone(Stamped<SoftphoneStatus>),
    /// A call was refused at once because the softphone cannot take it.
    CallRefused(Stamped<RefusedCall>),
    /// The network changed during a call through the edge proxy (once per change): the PBX
    /// keeps sending its audio to the old address until the softphone renegotiates.
    CallMoved(Stamped<CallMoved>),
}
