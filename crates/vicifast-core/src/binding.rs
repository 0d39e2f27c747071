//! Bindings: our Contact, and the list of bindings a registrar returns in its 200 OK.

use crate::config::{MAX_EXPIRES, MIN_REFRESHED_EXPIRES};
use crate::message::{param, split_list, Headers, NameAddr, UriParts};
use crate::status::{BindingInfo, ExpiryAdjustment, ExpiryAdjustmentReason, Transport};
use std::net::SocketAddr;

/// The Contact this device registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OurContact {
    /// `sip:user@ip:port;transport=x`
    pub uri: String,
    /// The address the URI names: our flow's local address, or our public address behind NAT.
    pub addr: SocketAddr,
    pub instance_id: Option<String>,
}

impl OurContact {
    pub fn new(
        user: &str,
        local: SocketAddr,
        transport: Transport,
        instance_id: Option<&str>,
    ) -> Self {
        let host = match local {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        };
        // `ob` (RFC 5626 §5.4) asks proxies to keep using this flow for requests to us.
        let ob = if instance_id.is_some() { ";ob" } else { "" };
        Self {
            uri: format!(
                "sip:{user}@{host}:{};transport={}{ob}",
                local.port(),
                transport.param()
            ),
            addr: local,
            instance_id: instance_id.map(str::to_owned),
        }
    }

    /// The Contact header value with the requested lifetime.
    pub fn header_value(&self, expires: u32) -> String {
        let mut value = format!("<{}>;expires={expires}", self.uri);
        if let Some(instance) = &self.instance_id {
            value.push_str(&format!(";+sip.instance=\"<{instance}>\";reg-id=1"));
        }
        value
    }

    /// Whether a Contact from the registrar is this binding: the same instance, or the same
    /// user, host, port and transport.
    pub fn matches(&self, contact: &NameAddr) -> bool {
        if let (Some(ours), Some(theirs)) =
            (&self.instance_id, param(&contact.params, "+sip.instance"))
        {
            let theirs = theirs.trim_start_matches('<').trim_end_matches('>');
            if theirs.eq_ignore_ascii_case(ours) {
                return true;
            }
        }
        match (UriParts::parse(&self.uri), UriParts::parse(&contact.uri)) {
            (Some(a), Some(b)) => a.same_contact(&b),
            _ => false,
        }
    }
}

/// The bindings listed in a 2xx to REGISTER, with each one's remaining lifetime (its `expires`
/// parameter, else the Expires header).
pub(crate) fn listed_bindings(
    headers: &Headers,
    ours: Option<&OurContact>,
) -> Vec<(NameAddr, BindingInfo)> {
    let default_expires = headers
        .get("expires")
        .and_then(|v| v.trim().parse::<u32>().ok());
    split_all(headers)
        .into_iter()
        .filter_map(|raw| NameAddr::parse(&raw))
        .filter(|c| c.uri != "*")
        .map(|contact| {
            let expires_in = param(&contact.params, "expires")
                .and_then(|v| v.parse::<u32>().ok())
                .or(default_expires);
            let info = BindingInfo {
                contact: contact.uri.clone(),
                expires_in,
                ours: ours.is_some_and(|o| o.matches(&contact)),
            };
            (contact, info)
        })
        .collect()
}

/// The lifetime to refresh a binding by, when the registrar granted `granted` seconds and we
/// asked `requested`: floored at 30 s (or `requested`, if less), capped at `requested` (at most a
/// day). Says why when it is not `granted`.
pub(crate) fn refreshed_lifetime(granted: u32, requested: u32) -> (u32, Option<ExpiryAdjustment>) {
    let floor = MIN_REFRESHED_EXPIRES.min(requested).max(1);
    let cap = requested.clamp(floor, MAX_EXPIRES);
    if granted < floor {
        let why = ExpiryAdjustmentReason::BelowMinimum;
        (floor, Some(ExpiryAdjustment::new(granted, floor, why)))
    } else if granted > cap {
        let why = ExpiryAdjustmentReason::AboveRequested;
        (cap, Some(ExpiryAdjustment::new(granted, cap, why)))
    } else {
        (granted, None)
    }
}

fn split_all(headers: &Headers) -> Vec<String> {
    headers.get_all("contact").flat_map(split_list).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::SipMessage;

    fn headers_of(raw: &str) -> Headers {
        match SipMessage::parse(raw.as_bytes()).unwrap() {
            SipMessage::Response(r) => r.headers,
            SipMessage::Request(r) => r.headers,
        }
    }

    #[test]
    fn finds_ours_among_kamailio_style_contacts() {
        let ours = OurContact::new(
            "101",
            "198.18.0.2:40000".parse().unwrap(),
            Transport::Udp,
            None,
        );
        let headers = headers_of(concat!(
            "SIP/2.0 200 OK\r\nCall-ID: x\r\nExpires: 90\r\n",
            "Contact: <sip:101@198.18.0.3:5060>;expires=30, \"Desk, A\" <sip:101@198.18.0.2:40000;transport=udp>;expires=60;received=\"sip:198.18.0.9:1\"\r\n",
            "Contact: <sip:101@198.18.0.4:5060>\r\n\r\n"
        ));
        let list = listed_bindings(&headers, Some(&ours));
        let summary: Vec<_> = list.iter().map(|(_, b)| (b.expires_in, b.ours)).collect();
        assert_eq!(
            summary,
            vec![(Some(30), false), (Some(60), true), (Some(90), false)]
        );
    }

    #[test]
    fn matches_by_instance_even_when_the_address_was_rewritten() {
        let ours = OurContact::new(
            "101",
            "198.18.0.2:40000".parse().unwrap(),
            Transport::Tcp,
            Some("urn:uuid:1234"),
        );
        let theirs =
            NameAddr::parse("<sip:101@198.18.9.9:1234>;+sip.instance=\"<urn:uuid:1234>\"").unwrap();
        assert!(ours.matches(&theirs));
        assert!(ours
            .header_value(300)
            .ends_with(";expires=300;+sip.instance=\"<urn:uuid:1234>\";reg-id=1"));
        assert!(ours.uri.ends_with(";transport=tcp;ob"));
    }

    #[test]
    fn granted_lifetimes_are_floored_and_capped() {
        assert_eq!(refreshed_lifetime(300, 300), (300, None));
        assert_eq!(refreshed_lifetime(60, 300), (60, None));
        let (used, why) = refreshed_lifetime(1, 300);
        assert_eq!(used, 30);
        assert_eq!(
            why.map(|w| w.reason),
            Some(ExpiryAdjustmentReason::BelowMinimum)
        );
        assert_eq!(
            refreshed_lifetime(10, 20).0,
            20,
            "the floor is what we asked, if less"
        );
        assert_eq!(refreshed_lifetime(20, 20), (20, None));
        let (used, why) = refreshed_lifetime(u32::MAX, 60);
        assert_eq!(used, 60);
        assert_eq!(
            why.map(|w| (w.granted, w.reason)),
            Some((u32::MAX, ExpiryAdjustmentReason::AboveRequested))
        );
        assert_eq!(refreshed_lifetime(u32::MAX, u32::MAX).0, MAX_EXPIRES);
    }

    #[test]
    fn ipv6_contact_is_bracketed() {
        let ours = OurContact::new(
            "101",
            "[2001:db8::2]:5062".parse().unwrap(),
            Transport::Tls,
            None,
        );
        assert_eq!(ours.uri, "sip:101@[2001:db8::2]:5062;transport=tls");
    }
}
