//! The routing rules of RFC 3261 §16 as the edge proxy applies them: Via branches (§16.6 step 8,
//! §16.11), Record-Route (§16.6 step 4, RFC 5658), Route (§16.4), Max-Forwards (§16.3, §16.6 step
//! 3) and the `received`/`rport` a server notes in the Via of a request it receives (§18.2.1,
//! RFC 3581).

use super::editable::EditableMessage;
use crate::message::{NameAddr, UriParts, Via};
use crate::status::Transport;
use digest_auth::{Algorithm, AlgorithmType};
use std::net::{IpAddr, SocketAddr};

/// The two sides of the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Leg {
    /// The PBX, over the registration's flow.
    Pbx,
    /// The softphone, over the loopback listener.
    Softphone,
}

impl Leg {
    pub fn other(self) -> Self {
        match self {
            Self::Pbx => Self::Softphone,
            Self::Softphone => Self::Pbx,
        }
    }

    fn mark(self) -> char {
        match self {
            Self::Pbx => 'p',
            Self::Softphone => 's',
        }
    }
}

const MAGIC_COOKIE: &str = "z9hG4bK";
/// Every branch the edge proxy creates starts with this, then the leg it was sent toward.
const OUR_BRANCH: &str = "z9hG4bKvf";
/// The URI parameter that marks a Record-Route (and later Route) entry as ours.
pub(crate) const ROUTE_MARK: &str = "vicifast";
/// RFC 3261 §8.1.1.6.
pub(crate) const INITIAL_MAX_FORWARDS: u32 = 70;

/// The branch for a request relayed toward `toward`: a hash of a secret and of what identifies
/// the incoming transaction (RFC 3261 §16.11). A retransmission gets the same branch, and so do a
/// CANCEL and a non-2xx ACK, which share the INVITE's branch: even with no state left, they reach
/// the transaction the INVITE created downstream. An ACK for a 2xx has a branch of its own and
/// gets one of ours. Requests from RFC 2543 elements (no magic cookie) are identified by their
/// Call-ID, From tag, CSeq number, Request-URI and top Via instead.
pub(crate) fn derive_branch(
    secret: &str,
    toward: Leg,
    request: &EditableMessage,
) -> Option<String> {
    let via = request.top_via()?;
    let incoming = via.branch().unwrap_or_default();
    let mut key = format!("{secret}|{}|{}|{incoming}", toward.mark(), via.sent_by);
    if !incoming.starts_with(MAGIC_COOKIE) {
        let (number, _) = request.cseq()?;
        key.push_str(&format!(
            "|{}|{}|{number}|{}",
            request.call_id().unwrap_or_default(),
            request.tag_in_from().unwrap_or_default(),
            request.uri().unwrap_or_default()
        ));
    }
    let hash = Algorithm::new(AlgorithmType::SHA2_256, false).hash(key.as_bytes());
    Some(format!("{OUR_BRANCH}{}{}", toward.mark(), hash.get(..24)?))
}

/// A random branch of ours, for requests the edge proxy originates (health checks).
pub(crate) fn own_branch(toward: Leg, token: &str) -> String {
    format!("{OUR_BRANCH}{}{token}", toward.mark())
}

/// The leg a branch of ours was sent toward; `None` for anybody else's branch.
pub(crate) fn branch_leg(branch: &str) -> Option<Leg> {
    match branch.strip_prefix(OUR_BRANCH)?.chars().next()? {
        'p' => Some(Leg::Pbx),
        's' => Some(Leg::Softphone),
        _ => None,
    }
}

/// Our Via for a request sent from `sent_by`.
pub(crate) fn via_value(transport: Transport, sent_by: SocketAddr, branch: &str) -> String {
    format!(
        "SIP/2.0/{} {sent_by};branch={branch};rport",
        transport.via_token()
    )
}

/// One of our Record-Route entries: the address at which the next hop on that side reaches us.
pub(crate) fn record_route(addr: SocketAddr, transport: Transport) -> String {
    format!(
        "<sip:{addr};transport={};lr;{ROUTE_MARK}>",
        transport.param()
    )
}

/// Whether a Route (or Request-URI) names this proxy: our mark, or the listener's address (the
/// outbound proxy URI a softphone preloads).
pub(crate) fn is_own_route(value: &str, listen: SocketAddr) -> bool {
    let Some(uri) = NameAddr::parse(value).map(|n| n.uri) else {
        return false;
    };
    let Some(parts) = UriParts::parse(&uri) else {
        return false;
    };
    if parts.params.iter().any(|(name, _)| name == ROUTE_MARK) {
        return true;
    }
    let host_is_listener = match parts.host.parse::<IpAddr>() {
        Ok(ip) => ip == listen.ip(),
        // A softphone set up with "localhost:5070" as its outbound proxy.
        Err(_) => parts.host == "localhost" && listen.ip().is_loopback(),
    };
    host_is_listener && parts.port.unwrap_or(5060) == listen.port()
}

/// RFC 3261 §16.4: removes the Route entries that name us from the top. A strict router before us
/// (RFC 2543) put our URI in the Request-URI: the last Route is then the real Request-URI.
pub(crate) fn strip_own_routes(request: &mut EditableMessage, listen: SocketAddr) {
    if request.uri().is_some_and(|uri| {
        UriParts::parse(uri).is_some_and(|p| p.params.iter().any(|(n, _)| n == ROUTE_MARK))
    }) {
        let mut routes = request.list("route");
        if let Some(last) = routes.pop().and_then(|r| NameAddr::parse(&r)) {
            request.set_uri(&last.uri);
            request.remove("route");
            for route in routes {
                request.append("route", route);
            }
        }
    }
    while request
        .top("route")
        .is_some_and(|top| is_own_route(&top, listen))
    {
        request.pop_top("route");
    }
}

/// RFC 3261 §16.6 step 3: one hop less, or `Err` when none is left (answer 483). A missing or
/// unreadable value counts as a fresh request's.
pub(crate) fn decrement_max_forwards(request: &mut EditableMessage) -> Result<(), ()> {
    let remaining = request
        .get("max-forwards")
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(INITIAL_MAX_FORWARDS);
    if remaining == 0 {
        return Err(());
    }
    request.set("max-forwards", (remaining - 1).min(255).to_string());
    Ok(())
}

/// RFC 3261 §18.2.1 and RFC 3581 §4: notes in the top Via where the request really came from.
pub(crate) fn mark_received(request: &mut EditableMessage, source: SocketAddr) {
    let Some(via) = request.top_via() else {
        return;
    };
    let wants_rport = via.params.iter().any(|(name, _)| name == "rport");
    let sent_by_host = sent_by_host(&via);
    if !wants_rport && sent_by_host == source.ip().to_string() {
        return;
    }
    let mut value = format!("SIP/2.0/{} {}", via.transport, via.sent_by);
    for (name, v) in &via.params {
        if name == "received" || name == "rport" {
            continue;
        }
        match v {
            Some(v) => value.push_str(&format!(";{name}={v}")),
            None => value.push_str(&format!(";{name}")),
        }
    }
    value.push_str(&format!(";received={}", source.ip()));
    if wants_rport {
        value.push_str(&format!(";rport={}", source.port()));
    }
    request.pop_top("via");
    request.push_top("via", value);
}

fn sent_by_host(via: &Via) -> String {
    let sent_by = via.sent_by.trim();
    if let Some(v6) = sent_by.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default().to_owned();
    }
    sent_by
        .rsplit_once(':')
        .map_or(sent_by, |(host, _)| host)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::param;

    const LISTEN: &str = "127.0.0.1:5070";

    fn request(text: &str) -> EditableMessage {
        EditableMessage::parse(text.as_bytes()).unwrap()
    }

    fn invite(via: &str) -> EditableMessage {
        request(&format!(
            "INVITE sip:102@pbx.test SIP/2.0\r\nVia: {via}\r\nFrom: <sip:101@pbx.test>;tag=a\r\nTo: <sip:102@pbx.test>\r\nCall-ID: c1\r\nCSeq: 5 INVITE\r\n\r\n"
        ))
    }

    #[test]
    fn cancel_and_retransmission_get_the_invites_branch_and_legs_differ() {
        let key = "branch-key";
        let a = invite("SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1;rport");
        let cancel = request("CANCEL sip:102@pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1;rport\r\nFrom: <sip:101@pbx.test>;tag=a\r\nTo: <sip:102@pbx.test>\r\nCall-ID: c1\r\nCSeq: 5 CANCEL\r\n\r\n");
        let to_pbx = derive_branch(key, Leg::Pbx, &a).unwrap();
        assert_eq!(derive_branch(key, Leg::Pbx, &cancel), Some(to_pbx.clone()));
        assert!(to_pbx.starts_with("z9hG4bKvfp"));
        assert_eq!(branch_leg(&to_pbx), Some(Leg::Pbx));
        assert_ne!(derive_branch(key, Leg::Softphone, &a), Some(to_pbx.clone()));
        assert_ne!(derive_branch("other", Leg::Pbx, &a), Some(to_pbx.clone()));
        let b = invite("SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK2;rport");
        assert_ne!(derive_branch(key, Leg::Pbx, &b), Some(to_pbx));
        assert_eq!(branch_leg("z9hG4bKabc"), None);
        assert_eq!(branch_leg("z9hG4bKvfx1"), None);
    }

    #[test]
    fn rfc2543_requests_are_told_apart_by_their_dialog_fields() {
        let a = invite("SIP/2.0/UDP 127.0.0.1:5062");
        let mut b = a.clone();
        b.set("cseq", "6 INVITE");
        assert_ne!(
            derive_branch("s", Leg::Pbx, &a),
            derive_branch("s", Leg::Pbx, &b)
        );
    }

    #[test]
    fn own_routes_are_recognised_by_mark_or_listener_address() {
        let listen: SocketAddr = LISTEN.parse().unwrap();
        assert!(is_own_route("<sip:127.0.0.1:5070;lr>", listen));
        assert!(is_own_route(
            "<sip:127.0.0.1:5070;transport=tcp;lr>",
            listen
        ));
        assert!(is_own_route(
            "<sip:198.18.9.9:4000;transport=udp;lr;vicifast>",
            listen
        ));
        assert!(is_own_route("<sip:localhost:5070;lr>", listen));
        assert!(!is_own_route("<sip:localhost:5060;lr>", listen));
        assert!(!is_own_route("<sip:127.0.0.1:5060;lr>", listen));
        assert!(!is_own_route("<sip:pbx.test;lr>", listen));
        assert!(!is_own_route("garbage", listen));
        let rr = record_route("198.18.1.2:40000".parse().unwrap(), Transport::Tcp);
        assert_eq!(rr, "<sip:198.18.1.2:40000;transport=tcp;lr;vicifast>");
        assert!(is_own_route(&rr, listen));
    }

    #[test]
    fn strips_our_routes_and_undoes_a_strict_router() {
        let listen: SocketAddr = LISTEN.parse().unwrap();
        let mut m = invite("SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1");
        m.append(
            "route",
            "<sip:127.0.0.1:5070;lr>, <sip:198.18.1.2:4000;lr;vicifast>",
        );
        m.append("route", "<sip:pbx.test;lr>");
        strip_own_routes(&mut m, listen);
        assert_eq!(m.list("route"), vec!["<sip:pbx.test;lr>"]);

        let mut strict = invite("SIP/2.0/UDP 198.18.0.1;branch=z9hG4bK1");
        strict.set_uri("sip:198.18.1.2:4000;lr;vicifast");
        strict.append("route", "<sip:proxy.test>");
        strict.append("route", "<sip:101@127.0.0.1:5062>");
        strip_own_routes(&mut strict, listen);
        assert_eq!(strict.uri(), Some("sip:101@127.0.0.1:5062"));
        assert_eq!(strict.list("route"), vec!["<sip:proxy.test>"]);
    }

    #[test]
    fn max_forwards_counts_down_and_stops_at_zero() {
        let mut m = invite("SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1");
        assert_eq!(decrement_max_forwards(&mut m), Ok(()));
        assert_eq!(m.get("max-forwards"), Some("69"));
        m.set("max-forwards", "1");
        assert_eq!(decrement_max_forwards(&mut m), Ok(()));
        assert_eq!(m.get("max-forwards"), Some("0"));
        assert_eq!(decrement_max_forwards(&mut m), Err(()));
    }

    #[test]
    fn received_and_rport_are_noted_in_the_top_via_only() {
        let mut m = invite("SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK1, SIP/2.0/UDP 198.18.0.9;branch=z9hG4bK0");
        mark_received(&mut m, "198.18.7.7:31000".parse().unwrap());
        let top = m.top_via().unwrap();
        assert_eq!(param(&top.params, "received"), Some("198.18.7.7"));
        assert_eq!(param(&top.params, "rport"), Some("31000"));
        assert_eq!(top.branch(), Some("z9hG4bK1"));
        assert_eq!(m.list("via").len(), 2);

        let mut same = invite("SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1");
        let before = same.clone();
        mark_received(&mut same, "127.0.0.1:5062".parse().unwrap());
        assert_eq!(same, before, "nothing to note");

        let mut v6 = invite("SIP/2.0/TCP [::1]:5062;branch=z9hG4bK1");
        mark_received(&mut v6, "[::1]:40000".parse().unwrap());
        assert_eq!(param(&v6.top_via().unwrap().params, "received"), None);
    }
}
