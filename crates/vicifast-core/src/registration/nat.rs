//! Corrections after a 2xx: the registrar tells where it saw our request come from (Via
//! `received` and `rport`, RFC 3581); when that is not the address our Contact names, calls
//! would be sent where nothing listens, so we register the address the registrar can reach
//! instead. The same budget covers a 2xx that does not list our binding, and one that lists an
//! old binding of ours to remove.

use super::{Registration, RequestKind};
use crate::binding::OurContact;
use crate::message::{self, param, NameAddr, Response, Via};
use crate::status::{BindingInfo, Cause, RegistrationState};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// Consecutive re-registrations for NAT or a missing binding on one flow.
const MAX_CORRECTIVE_REGISTERS: u8 = 2;

impl Registration {
    /// After a 2xx to REGISTER: if the registrar sees us at another address (NAT), did not list
    /// our binding, or still lists an old binding of ours, register again at once (at most twice
    /// in a row on one flow). Returns whether it did.
    pub(super) fn correct_contact(
        &mut self,
        now: Instant,
        resp: &Response,
        listed: &[(NameAddr, BindingInfo)],
    ) -> bool {
        let (Some(contact), Some(flow)) = (self.contact.clone(), self.flow.as_mut()) else {
            return false;
        };
        if flow.corrections >= MAX_CORRECTIVE_REGISTERS {
            return false;
        }
        if let Some(public) = public_address(resp).filter(|p| *p != contact.addr) {
            let rebinding = flow.public.is_some();
            flow.public = Some(public);
            flow.corrections += 1;
            let transport = flow.target.transport;
            tracing::info!(account = %self.config.name, %public, private = %contact.addr, "registrar sees us at another address: registering that");
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
            return true;
        }
        if !listed.is_empty() && !listed.iter().any(|(_, b)| b.ours && !b.stale) {
            flow.corrections += 1;
            tracing::warn!(account = %self.config.name, "registrar did not list our binding: registering again");
            self.publish(now, Cause::BindingLost);
            self.send_request(now, RequestKind::Register, false);
            return true;
        }
        let stale: Vec<String> = listed
            .iter()
            .filter(|(_, b)| b.stale)
            .map(|(c, _)| c.uri.clone())
            .collect();
        if !stale.is_empty() {
            flow.corrections += 1;
            tracing::info!(account = %self.config.name, ?stale, "registrar still holds an old binding of ours: removing it");
            for uri in stale {
                self.remember_stale(uri);
            }
            self.send_request(now, RequestKind::Register, false);
            return true;
        }
        flow.corrections = 0;
        false
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
