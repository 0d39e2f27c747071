//! NAT correction: the registrar tells where it saw our request come from (Via `received` and
//! `rport`, RFC 3581). When that is not the address our Contact names, calls would be sent
//! where nothing listens: register the address the registrar can reach instead.

use super::{Registration, RequestKind};
use crate::binding::OurContact;
use crate::message::{self, param, Response, Via};
use crate::status::{Cause, RegistrationState};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

impl Registration {
    /// The address the registrar saw our request come from, when our Contact names another.
    pub(super) fn nat_correction(&self, resp: &Response) -> Option<SocketAddr> {
        let contact = self.contact.as_ref()?;
        public_address(resp).filter(|public| *public != contact.addr)
    }

    /// Registers the address the registrar can reach; the private contact is removed in the
    /// same REGISTER.
    pub(super) fn register_public(&mut self, now: Instant, public: SocketAddr) {
        let Some(flow) = self.flow.as_mut() else {
            return;
        };
        let rebinding = flow.public.replace(public).is_some();
        let transport = flow.target.transport;
        let private = self.contact.as_ref().map(|c| c.addr);
        tracing::info!(account = %self.config.name, %public, ?private, "registrar sees us at another address: registering that");
        self.replace_contact(OurContact::new(
            &self.config.user,
            public,
            transport,
            self.config.instance_id.as_deref(),
        ));
        if rebinding {
            self.state = RegistrationState::Registering;
            self.publish(now, Cause::NatRebinding);
        }
        self.send_request(now, RequestKind::Register, false);
    }
}

/// Our address as the server saw it: the top Via's `received` and `rport` (RFC 3581).
fn public_address(resp: &Response) -> Option<SocketAddr> {
    let via = resp
        .headers
        .get("via")
        .and_then(|v| message::split_list(v).into_iter().next())
        .and_then(|v| Via::parse(&v))?;
    let received = param(&via.params, "received");
    let rport = param(&via.params, "rport");
    if received.is_none() && rport.is_none() {
        return None;
    }
    let sent_by: SocketAddr = via.sent_by.parse().ok().or_else(|| {
        via.sent_by
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 5060))
    })?;
    let ip = match received {
        Some(r) => r.trim_matches(|c| c == '[' || c == ']').parse().ok()?,
        None => sent_by.ip(),
    };
    let port = match rport {
        Some(p) => p.parse().ok()?,
        None => sent_by.port(),
    };
    Some(SocketAddr::new(ip, port))
}
