//! Bindings: our Contact, and the list of bindings a registrar returns in its 200 OK.
//!
//! With an RFC 5626 instance id, our Contact also names the installation in its URI
//! (`rinstance`, as CounterPath's softphones do): registrars such as Asterisk list bindings by
//! URI only, without `+sip.instance`, and that is how a binding left over from before a crash
//! or a network change is still recognised as ours.

use crate::config::{MAX_EXPIRES, MIN_REFRESHED_EXPIRES};
use crate::message::{param, split_list, Headers, NameAddr, UriParts};
use crate::status::{BindingInfo, ExpiryAdjustment, ExpiryAdjustmentReason, Transport};
use std::net::SocketAddr;

/// The Contact this device registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OurContact {
    /// `sip:user@ip:port;transport=x[;rinstance=…;ob]`
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
        let instance = instance_id.map_or_else(String::new, |id| {
            format!(";rinstance={};ob", instance_token(id))
        });
        Self {
            uri: format!(
                "sip:{user}@{host}:{};transport={}{instance}",
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

    /// Whether a Contact from the registrar is exactly this one: the same user, host, port and
    /// transport.
    pub fn is_same(&self, contact: &NameAddr) -> bool {
        match (UriParts::parse(&self.uri), UriParts::parse(&contact.uri)) {
            (Some(a), Some(b)) => a.same_contact(&b),
            _ => false,
        }
    }

    /// Whether a Contact from the registrar was registered by this installation: our
    /// `+sip.instance`, or our `rinstance` in the URI.
    pub fn same_instance(&self, contact: &NameAddr) -> bool {
        self.instance_id
            .as_deref()
            .is_some_and(|ours| is_instance(contact, ours))
    }
}

/// Whether `contact` names the installation `instance_id`.
pub(crate) fn is_instance(contact: &NameAddr, instance_id: &str) -> bool {
    if let Some(theirs) = param(&contact.params, "+sip.instance") {
        let theirs = theirs.trim_start_matches('<').trim_end_matches('>');
        if theirs.eq_ignore_ascii_case(instance_id) {
            return true;
        }
    }
    UriParts::parse(&contact.uri)
        .and_then(|u| param(&u.params, "rinstance").map(str::to_owned))
        .is_some_and(|token| token.eq_ignore_ascii_case(&instance_token(instance_id)))
}

/// A short, stable token for an instance id (FNV-1a, 64 bits, in hex): what goes into the URI.
fn instance_token(instance_id: &str) -> String {
    let hash = instance_id
        .to_ascii_lowercase()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{hash:016x}")
}

/// What a 2xx lists: every binding of the address of record, each with its remaining lifetime
/// (its `expires` parameter, else the Expires header), ours marked.
///
/// `bound`: the 2xx answers a REGISTER that added our Contact, so one of the bindings is the one
/// we keep even when the registrar rewrote its address (then it is our instance's binding with
/// the longest lifetime). Our instance's other bindings are stale: left from before.
pub(crate) fn listed_bindings(
    headers: &Headers,
    ours: Option<&OurContact>,
    bound: bool,
) -> Vec<(NameAddr, BindingInfo)> {
    let default_expires = headers
        .get("expires")
        .and_then(|v| v.trim().parse::<u32>().ok());
    let mut listed: Vec<(NameAddr, BindingInfo)> = split_all(headers)
        .into_iter()
        .filter_map(|raw| NameAddr::parse(&raw))
        .filter(|c| c.uri != "*")
        .map(|contact| {
            let expires_in = param(&contact.params, "expires")
                .and_then(|v| v.parse::<u32>().ok())
                .or(default_expires);
            let current = ours.is_some_and(|o| o.is_same(&contact));
            let stale = !current && ours.is_some_and(|o| o.same_instance(&contact));
            let info = BindingInfo {
                contact: contact.uri.clone(),
                expires_in,
                ours: current || stale,
                stale,
            };
            (contact, info)
        })
        .collect();
    if bound && !listed.iter().any(|(_, b)| b.ours && !b.stale) {
        if let Some((_, rewritten)) = listed
            .iter_mut()
            .filter(|(_, b)| b.stale)
            .max_by_key(|(_, b)| b.expires_in)
        {
            rewritten.stale = false;
        }
    }
    listed
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

/// Where a listed binding's device is reached, `host:port`: the source address the registrar
/// saw it at when it lists one (Kamailio's `received`), else the Contact's host and port.
pub(crate) fn listed_contact_address(contact: &NameAddr) -> Option<String> {
    let hostport = |uri: &str| {
        UriParts::parse(uri).map(|u| {
            let host = if u.host.contains(':') {
                format!("[{}]", u.host.trim_matches(|c| c == '[' || c == ']'))
            } else {
                u.host
            };
            match u.port {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
    };
    param(&contact.params, "received")
        .and_then(hostport)
        .or_else(|| hostport(&contact.uri))
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
        let list = listed_bindings(&headers, Some(&ours), true);
        let summary: Vec<_> = list
            .iter()
            .map(|(_, b)| (b.expires_in, b.ours, b.stale))
            .collect();
        assert_eq!(
            summary,
            vec![
                (Some(30), false, false),
                (Some(60), true, false),
                (Some(90), false, false)
            ]
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
        assert!(ours.same_instance(&theirs) && !ours.is_same(&theirs));
        assert!(ours
            .header_value(300)
            .ends_with(";expires=300;+sip.instance=\"<urn:uuid:1234>\";reg-id=1"));
        let token = instance_token("urn:uuid:1234");
        assert!(ours
            .uri
            .ends_with(&format!(";transport=tcp;rinstance={token};ob")));
        // The only binding of our instance in the answer to our REGISTER is ours, rewritten.
        let headers = headers_of(
            "SIP/2.0 200 OK\r\nContact: <sip:101@198.18.9.9:1234>;expires=300;+sip.instance=\"<urn:uuid:1234>\"\r\n\r\n",
        );
        let list = listed_bindings(&headers, Some(&ours), true);
        assert!(list[0].1.ours && !list[0].1.stale);
    }

    #[test]
    fn an_old_binding_of_this_installation_is_ours_and_stale_even_without_instance() {
        let instance = Some("urn:uuid:00000000-0000-4000-8000-000000000001");
        let old = OurContact::new(
            "101",
            "198.18.1.2:39999".parse().unwrap(),
            Transport::Udp,
            instance,
        );
        let ours = OurContact::new(
            "101",
            "198.18.1.2:40001".parse().unwrap(),
            Transport::Udp,
            instance,
        );
        let other = OurContact::new(
            "101",
            "198.18.1.2:40002".parse().unwrap(),
            Transport::Udp,
            Some("urn:uuid:99"),
        );
        // Asterisk lists bindings by URI only.
        let headers = headers_of(&format!(
            "SIP/2.0 200 OK\r\nContact: <{}>;expires=100, <{}>;expires=300, <{}>;expires=200\r\n\r\n",
            old.uri, ours.uri, other.uri
        ));
        let list = listed_bindings(&headers, Some(&ours), true);
        let marks: Vec<_> = list.iter().map(|(_, b)| (b.ours, b.stale)).collect();
        assert_eq!(marks, vec![(true, true), (true, false), (false, false)]);
        // Listed in answer to a query, our instance's bindings elsewhere are all stale.
        let only_old = headers_of(&format!(
            "SIP/2.0 200 OK\r\nContact: <{}>;expires=100\r\n\r\n",
            old.uri
        ));
        let list = listed_bindings(&only_old, Some(&ours), false);
        assert_eq!((list[0].1.ours, list[0].1.stale), (true, true));
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
    fn a_listed_device_is_found_where_the_registrar_saw_it() {
        let kamailio =
            NameAddr::parse("<sip:101@10.0.0.5:5060>;expires=60;received=\"sip:198.18.0.9:4321\"")
                .unwrap();
        assert_eq!(
            listed_contact_address(&kamailio).as_deref(),
            Some("198.18.0.9:4321")
        );
        let plain = NameAddr::parse("<sip:101@[2001:db8::5]:5070;transport=tcp>").unwrap();
        assert_eq!(
            listed_contact_address(&plain).as_deref(),
            Some("[2001:db8::5]:5070")
        );
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
