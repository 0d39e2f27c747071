//! The REGISTER request (RFC 3261 §10.2): one Call-ID and From tag for every REGISTER of a
//! registration, a rising CSeq, our Contact (with old ones to remove), and credentials for the
//! last challenge. Every REGISTER leaves through [`Registration::send_request`].

use super::pacing::RegisterPermit;
use super::{random_token, sent_by, Phase, Registration, Resume};
use crate::config::AccountConfig;
use crate::digest::DigestSession;
use crate::message::MessageBuilder;
use crate::transaction::ClientTransaction;
use crate::FlowId;
use rand_chacha::ChaCha20Rng;
use std::net::SocketAddr;
use std::time::Instant;

pub(super) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY";

/// What a REGISTER asks of the registrar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RequestKind {
    /// Adds or refreshes our binding.
    Register,
    /// Removes our binding (Expires 0), on stop.
    Unregister,
    /// No Contact: asks for the current bindings.
    Query,
    /// Removes the listed contacts.
    Remove(Vec<String>),
    /// No Contact: asks for the current bindings, to learn why a REGISTER was refused (our own
    /// binding from before may hold the extension's only place).
    Probe,
    /// No Contact: asks for the current bindings between refreshes, to notice another device
    /// that took the extension.
    Check,
}

/// The request in flight and what it carried.
#[derive(Debug)]
pub(super) struct Pending {
    pub tx: ClientTransaction,
    pub kind: RequestKind,
    /// The credentials in this request answer a challenge that came in reply to the request just
    /// before it; a new challenge (or a refusal) now means the credentials are wrong.
    pub answers_challenge: bool,
    /// The request carried credentials at all (answering a challenge, or pre-emptively).
    pub carried_credentials: bool,
    /// Contacts this request removes (expires=0).
    pub removing: Vec<String>,
}

/// The fields every REGISTER of this registration shares.
#[derive(Debug)]
pub(super) struct Dialog {
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// The binding lifetime we ask for; raised by 423 Interval Too Brief.
    pub requested_expires: u32,
}

impl Dialog {
    pub fn new(rng: &mut ChaCha20Rng, config: &AccountConfig) -> Self {
        Self {
            call_id: random_token(rng, 24),
            from_tag: random_token(rng, 12),
            cseq: 0,
            requested_expires: u32::try_from(config.expires.as_secs()).unwrap_or(u32::MAX),
        }
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn tag(&self) -> &str {
        &self.from_tag
    }
}

/// The last challenges, answered again with a rising nonce count on every request.
#[derive(Debug, Default)]
pub(super) struct Auth {
    pub www: Option<DigestSession>,
    pub proxy: Option<DigestSession>,
    /// The registrar accepted these credentials once (a 2xx to a request carrying them): a
    /// later refusal is not about the password.
    pub accepted: bool,
}

impl Auth {
    /// New credentials: the old challenges and what we learned about the old password go.
    pub fn forget_challenges(&mut self) {
        self.www = None;
        self.proxy = None;
        self.accepted = false;
    }

    pub fn has_credentials(&self) -> bool {
        self.www.is_some() || self.proxy.is_some()
    }
}

impl Registration {
    /// Builds and sends one REGISTER on the open flow (without one, starts a new attempt).
    pub(super) fn send_request(
        &mut self,
        now: Instant,
        kind: RequestKind,
        answers_challenge: bool,
    ) {
        let Some(flow) = self.flow.clone() else {
            self.begin_attempt(now);
            return;
        };
        let permit = match self.pacer.admit_register(now) {
            Ok(permit) => permit,
            Err(until) => {
                let then = Resume::Send {
                    kind,
                    answers_challenge,
                };
                self.hold(now, until, then);
                return;
            }
        };
        self.dialog.cseq += 1;
        let branch = format!("z9hG4bK{}", random_token(&mut self.rng, 22));
        let transport = flow.target.transport;
        let request_uri = self.request_uri();
        let aor = format!("<sip:{}@{}>", self.config.user, self.config.domain());
        let expires = self.dialog.requested_expires;
        let mut builder = MessageBuilder::request("REGISTER", &request_uri)
            .header(
                "Via",
                format!(
                    "SIP/2.0/{} {};rport;branch={branch}",
                    transport.via_token(),
                    sent_by(flow.local)
                ),
            )
            .header("Max-Forwards", 70)
            .header("From", format!("{aor};tag={}", self.dialog.from_tag))
            .header("To", &aor)
            .header("Call-ID", &self.dialog.call_id)
            .header("CSeq", format!("{} REGISTER", self.dialog.cseq));
        if let Some(proxy) = &self.config.outbound_proxy {
            builder = builder.header("Route", format!("<{};lr>", proxy));
        }
        let removing = match &kind {
            RequestKind::Register | RequestKind::Unregister => self.stale_contacts.clone(),
            RequestKind::Remove(contacts) => contacts.clone(),
            RequestKind::Query | RequestKind::Probe | RequestKind::Check => Vec::new(),
        };
        // Old contacts first and without +sip.instance: a registrar that matches bindings by
        // instance must not apply their expires=0 to the new binding.
        for uri in &removing {
            builder = builder.header("Contact", format!("<{uri}>;expires=0"));
        }
        let ours = match kind {
            RequestKind::Register => Some(expires),
            RequestKind::Unregister => Some(0),
            RequestKind::Remove(_)
            | RequestKind::Query
            | RequestKind::Probe
            | RequestKind::Check => None,
        };
        if let Some(expires) = ours {
            if let Some(contact) = &self.contact {
                builder = builder
                    .header("Contact", contact.header_value(expires))
                    .header("Expires", expires);
            }
        } else if matches!(kind, RequestKind::Remove(_)) {
            builder = builder.header("Expires", 0);
        }
        builder = builder
            .header("Allow", ALLOW)
            .header("Supported", "outbound, path")
            .header("User-Agent", &self.config.user_agent);
        let carried_credentials = self.auth.has_credentials();
        let auth_user = self.config.auth_user().to_owned();
        for session in [self.auth.proxy.as_mut(), self.auth.www.as_mut()]
            .into_iter()
            .flatten()
        {
            let cnonce = random_token(&mut self.rng, 8);
            let value = session.authorize(
                "REGISTER",
                &request_uri,
                &auth_user,
                &self.password,
                b"",
                &cnonce,
            );
            builder = builder.header(session.header_name(), value);
        }
        let payload = builder.finish();
        let tx = ClientTransaction::new(
            now,
            branch,
            self.dialog.cseq,
            flow.id,
            flow.target.addr,
            payload.clone(),
            transport.is_reliable(),
            self.config.timers,
        );
        self.phase = Phase::Transacting(Pending {
            tx,
            kind,
            answers_challenge,
            carried_credentials,
            removing,
        });
        self.transmit_register(permit, flow.id, flow.target.addr, payload);
    }

    /// Sends a new REGISTER: the one place that does (retransmissions repeat it on Timer E).
    fn transmit_register(
        &mut self,
        _permit: RegisterPermit,
        flow: FlowId,
        destination: SocketAddr,
        payload: Vec<u8>,
    ) {
        self.push_transmit(flow, destination, payload);
    }

    /// Ends the exchange in flight and hands back its request; the caller moves on to the next
    /// phase (every path out of here sets one).
    pub(super) fn take_pending(&mut self) -> Option<Pending> {
        match std::mem::replace(&mut self.phase, Phase::Resolving) {
            Phase::Transacting(pending) => Some(pending),
            other => {
                self.phase = other;
                None
            }
        }
    }

    fn request_uri(&self) -> String {
        match &self.config.domain {
            Some(domain) => format!("sip:{domain}"),
            None => {
                let registrar = &self.config.registrar;
                match registrar.port {
                    Some(port) => format!("sip:{}:{port}", registrar.uri_host()),
                    None => format!("sip:{}", registrar.uri_host()),
                }
            }
        }
    }
}
