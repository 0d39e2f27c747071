//! Telling when the softphone on this computer also registers directly with the PBX.
//!
//! A registrar that keeps one contact per extension (Asterisk's usual `max_contacts=1`) then
//! swaps the binding between the softphone and VICIfast at each refresh, and calls reach
//! whichever refreshed last. The registrar's 200 OK lists every binding of the extension; one
//! that is not VICIfast's own but names an address of this computer (the flow's local or public
//! address now or before a network change) is the softphone, or another SIP program here. When
//! the softphone registered with VICIfast too, the same user part and port make it certain.

use crate::message::UriParts;
use crate::status::BindingInfo;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A binding at the PBX that points at this computer but is not VICIfast's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectRegistration {
    /// The binding's Contact URI as the registrar listed it.
    pub contact: String,
    /// It has the user part and port the softphone registered with VICIfast.
    pub matches_softphone: bool,
}

/// The bindings in `bindings` that are direct registrations from this computer.
pub(crate) fn direct_registrations(
    bindings: &[BindingInfo],
    this_computer: &[IpAddr],
    softphone_contact: Option<&str>,
) -> Vec<DirectRegistration> {
    let softphone = softphone_contact.and_then(UriParts::parse);
    bindings
        .iter()
        .filter(|b| !b.ours)
        .filter_map(|b| {
            let uri = UriParts::parse(&b.contact)?;
            let ip: IpAddr = uri.host.parse().ok()?;
            let here = this_computer.contains(&ip) || ip.is_loopback();
            here.then(|| DirectRegistration {
                contact: b.contact.clone(),
                matches_softphone: softphone
                    .as_ref()
                    .is_some_and(|s| s.user == uri.user && s.port == uri.port),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(contact: &str, ours: bool) -> BindingInfo {
        BindingInfo {
            contact: contact.into(),
            expires_in: Some(60),
            ours,
            stale: false,
        }
    }

    #[test]
    fn names_foreign_bindings_at_this_computers_addresses() {
        let here: Vec<IpAddr> = vec![
            "198.18.1.2".parse().unwrap(),
            "203.0.113.7".parse().unwrap(),
        ];
        let bindings = [
            binding("sip:101@198.18.1.2:40000;transport=udp;ob", true),
            binding("sip:101@198.18.1.2:5060", false),
            binding("sip:101@203.0.113.7:61000;transport=tcp", false),
            binding("sip:101@198.18.9.9:5060", false),
        ];
        let found = direct_registrations(&bindings, &here, Some("sip:101@127.0.0.1:5060"));
        assert_eq!(
            found,
            vec![
                DirectRegistration {
                    contact: "sip:101@198.18.1.2:5060".into(),
                    matches_softphone: true,
                },
                DirectRegistration {
                    contact: "sip:101@203.0.113.7:61000;transport=tcp".into(),
                    matches_softphone: false,
                },
            ]
        );
        assert!(direct_registrations(&bindings, &[], None).is_empty());
    }
}
