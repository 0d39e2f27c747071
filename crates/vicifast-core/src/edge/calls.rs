//! Calls in progress through the edge proxy, so that the agent can be told when the network
//! changes under one.
//!
//! The PBX sends a call's audio to the address the softphone's SDP named when the call was set
//! up (VICIfast's flow address then: see `sdp`). When the laptop's address changes mid-call the
//! registration moves within milliseconds, but the PBX keeps sending the audio to the old
//! address until the softphone renegotiates with a re-INVITE. A softphone behind VICIfast never
//! does that by itself (it talks to VICIfast on loopback and sees no change), and VICIfast, a
//! proxy, has no place in the dialog's CSeq space to send one for it. So the edge proxy tracks
//! the calls passing it and, when the flow moves to another address while one is up, says so
//! once ([`super::EdgeEvent::CallMoved`]) with what the agent can do.
//!
//! A call is an INVITE dialog (RFC 3261 §12), identified by its Call-ID and its two tags. It
//! counts from its 2xx relayed (either way) until a BYE either way, a response that ends the
//! dialog (RFC 5057 §5.1) to a request inside it, or a request inside it that timed out. Each
//! call remembers the address the PBX sends its audio to: the flow's when the call was answered,
//! and again whenever the softphone sends SDP inside it (a re-INVITE, an UPDATE, its answer to
//! the PBX's re-INVITE), which VICIfast points at the flow's address of that moment. At most
//! [`MAX_CALLS`] are tracked (the least recently active is dropped for a new one) and a call
//! with no request in either direction for [`CALL_IDLE_LIMIT`] is forgotten, so a dialog whose
//! end never passed VICIfast (a BYE lost toward an old address) does not stay for ever.

use super::editable::EditableMessage;
use super::PbxFlow;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Calls tracked at once; a call center agent has one, two during a consultative transfer.
pub const MAX_CALLS: usize = 16;

/// A call with no request either way for this long is forgotten. Longer than a shift: VICIdial
/// keeps the agent's call up all day, usually without a single request inside it.
pub const CALL_IDLE_LIMIT: Duration = Duration::from_secs(16 * 3600);

/// Who placed a call, as seen from the softphone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    /// From the PBX to the softphone.
    Incoming,
    /// From the softphone to the PBX.
    Outgoing,
}

/// A call up through the edge proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallInProgress {
    pub call_id: String,
    pub direction: CallDirection,
    /// The other party's URI: the caller's (From) or the one called (To).
    pub other_party: String,
}

/// This computer's address changed while calls were up: their audio from the PBX still goes to
/// the old address until the softphone renegotiates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallMoved {
    pub account: String,
    /// The calls whose audio was set up for an earlier address.
    pub calls: Vec<CallInProgress>,
    /// Where the PBX reached this computer before the change (the registrar's view of it when
    /// known, else the flow's local address) ...
    pub old_address: IpAddr,
    /// ... and where it reaches it now.
    pub new_address: IpAddr,
    /// What the agent should do, in plain words.
    pub message: String,
}

impl CallMoved {
    pub fn new(
        account: impl Into<String>,
        calls: Vec<CallInProgress>,
        old_address: IpAddr,
        new_address: IpAddr,
    ) -> Self {
        let which = if calls.len() > 1 {
            "your calls"
        } else {
            "your call"
        };
        Self {
            account: account.into(),
            calls,
            old_address,
            new_address,
            message: format!(
                "The network changed during {which}: if you cannot hear the caller, put the call \
                 on hold and take it off hold (or hang up and log in again)."
            ),
        }
    }
}

/// Where the PBX reaches this computer, as far as its audio is concerned: addresses only (the
/// audio goes to the softphone's own RTP port, whatever the flow's SIP port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlowAddress {
    local: IpAddr,
    /// The registrar's view of us, when it reported one.
    public: Option<IpAddr>,
}

impl FlowAddress {
    fn reachable(self) -> IpAddr {
        self.public.unwrap_or(self.local)
    }

    /// Whether audio sent to `self` would miss `now`. A public address not known (yet) on the
    /// same local address is not a move: a new flow learns it from the registrar's first answer.
    fn moved_to(self, now: FlowAddress) -> bool {
        self.local != now.local
            || matches!((self.public, now.public), (Some(was), Some(is)) if was != is)
    }
}

/// A dialog: its Call-ID and its two tags, in either order (requests go both ways).
#[derive(Debug, Clone, PartialEq, Eq)]
struct DialogId {
    call_id: String,
    tags: (String, String),
}

impl DialogId {
    fn of(message: &EditableMessage) -> Option<Self> {
        let call_id = message.call_id()?.to_owned();
        let (a, b) = (message.tag_in_from()?, message.tag_in_to()?);
        let tags = if a <= b { (a, b) } else { (b, a) };
        Some(Self { call_id, tags })
    }
}

#[derive(Debug)]
struct Call {
    id: DialogId,
    info: CallInProgress,
    /// Where the PBX sends this call's audio.
    media_at: FlowAddress,
    last_active: Instant,
}

/// What a flow change did to the calls up: the ones now sent audio at an old address.
#[derive(Debug)]
pub(crate) struct Moved {
    pub calls: Vec<CallInProgress>,
    pub old_address: IpAddr,
    pub new_address: IpAddr,
}

/// The calls up through the edge proxy, and the flow address they were last compared with.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    entries: Vec<Call>,
    /// The address of the latest flow (kept while there is none, so that the flow after an
    /// outage is compared with the one before it).
    last: Option<FlowAddress>,
}

impl Calls {
    /// The calls up at `now`.
    pub fn in_progress(&self, now: Instant) -> Vec<CallInProgress> {
        self.entries
            .iter()
            .filter(|c| !idle(c, now))
            .map(|c| c.info.clone())
            .collect()
    }

    /// A 2xx to an INVITE that began a dialog was relayed: `request` is that INVITE as it came
    /// from the side `direction` names, `response` the 2xx.
    pub fn answered(
        &mut self,
        now: Instant,
        direction: CallDirection,
        request: &EditableMessage,
        response: &EditableMessage,
        flow: Option<&PbxFlow>,
    ) {
        let Some(id) = DialogId::of(response) else {
            return;
        };
        let media_at = match (flow, self.last) {
            (Some(flow), _) => self.address_of(flow),
            (None, Some(last)) => last,
            (None, None) => return,
        };
        if let Some(call) = self.entries.iter_mut().find(|c| c.id == id) {
            // A retransmission of the 2xx.
            call.last_active = now;
            return;
        }
        self.entries.retain(|c| !idle(c, now));
        if self.entries.len() >= MAX_CALLS {
            if let Some(oldest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| c.last_active)
                .map(|(i, _)| i)
            {
                self.entries.swap_remove(oldest);
            }
        }
        let party = match direction {
            CallDirection::Incoming => request.get("from"),
            CallDirection::Outgoing => request.get("to"),
        };
        let other_party = party
            .and_then(crate::message::NameAddr::parse)
            .map(|p| p.uri)
            .unwrap_or_default();
        self.entries.push(Call {
            info: CallInProgress {
                call_id: id.call_id.clone(),
                direction,
                other_party,
            },
            id,
            media_at,
            last_active: now,
        });
    }

    /// A request inside a dialog passed (either way): a BYE ends its call, anything else keeps
    /// it alive.
    pub fn request_in_dialog(&mut self, now: Instant, request: &EditableMessage) {
        let Some(id) = DialogId::of(request) else {
            return;
        };
        if request.is_method("BYE") {
            self.entries.retain(|c| c.id != id);
        } else if let Some(call) = self.entries.iter_mut().find(|c| c.id == id) {
            call.last_active = now;
        }
    }

    /// The softphone sent SDP inside a dialog, which VICIfast pointed at `flow`'s address: the
    /// PBX sends the call's audio there from now on.
    pub fn softphone_sent_media(&mut self, message: &EditableMessage, flow: &PbxFlow) {
        let Some(id) = DialogId::of(message) else {
            return;
        };
        let address = self.address_of(flow);
        if let Some(call) = self.entries.iter_mut().find(|c| c.id == id) {
            call.media_at = address;
        }
    }

    /// A request inside a dialog failed (`code`) or timed out (`None`). RFC 5057 §5.1: some
    /// codes end the whole dialog; 408, 481 and a timeout end the usage the request belongs to,
    /// the call unless it was a request of a subscription sharing the dialog (REFER's NOTIFY).
    pub fn request_failed(&mut self, request: &EditableMessage, code: Option<u16>) {
        let whole_dialog = matches!(
            code,
            Some(404 | 410 | 416 | 482 | 483 | 484 | 485 | 502 | 604)
        );
        let usage = matches!(code, None | Some(408 | 481));
        let of_the_call = !["SUBSCRIBE", "NOTIFY", "REFER"]
            .iter()
            .any(|m| request.is_method(m));
        if !(whole_dialog || (usage && of_the_call)) {
            return;
        }
        if let Some(id) = DialogId::of(request) {
            self.entries.retain(|c| c.id != id);
        }
    }

    /// The registration's flow is now `flow`. Returns the calls whose audio was set up for
    /// another address, when the flow's address changed and there are any.
    pub fn flow_changed(&mut self, now: Instant, flow: Option<&PbxFlow>) -> Option<Moved> {
        let here = self.address_of(flow?);
        let previous = self.last.replace(here)?;
        if !previous.moved_to(here) {
            return None;
        }
        self.entries.retain(|c| !idle(c, now));
        let calls: Vec<CallInProgress> = self
            .entries
            .iter()
            .filter(|c| c.media_at.moved_to(here))
            .map(|c| c.info.clone())
            .collect();
        (!calls.is_empty()).then(|| Moved {
            calls,
            old_address: previous.reachable(),
            new_address: here.reachable(),
        })
    }

    /// `flow`'s address, with the public address of the flow before it while the registrar has
    /// not reported one for this flow yet on the same local address.
    fn address_of(&self, flow: &PbxFlow) -> FlowAddress {
        let local = flow.local.ip();
        let public = flow.public.map(|p| p.ip()).or_else(|| {
            self.last
                .filter(|last| last.local == local)
                .and_then(|last| last.public)
        });
        FlowAddress { local, public }
    }
}

fn idle(call: &Call, now: Instant) -> bool {
    now.saturating_duration_since(call.last_active) >= CALL_IDLE_LIMIT
}
