//! Media addresses in the softphone's SDP (RFC 4566, RFC 3605).
//!
//! The softphone talks to VICIfast over loopback, so it may offer `127.0.0.1` as its media
//! address, or the address this computer had before the network changed. The PBX cannot send
//! audio there. The connection address (`c=`, session and media level), the origin address
//! (`o=`) and the RTCP address (`a=rtcp:`) are replaced by the address the registration's flow
//! uses now, in the same address family as that flow. Everything else in the body, ICE candidates
//! included, is left as the softphone wrote it; `0.0.0.0` (hold, RFC 2543 style) and addresses the
//! PBX may well reach are not touched.

use std::net::IpAddr;

/// The body with unreachable addresses replaced by `to`, or `None` when nothing changed (or the
/// body is not text).
pub(crate) fn rewrite_media_addresses(
    body: &[u8],
    unreachable: impl Fn(IpAddr) -> bool,
    to: IpAddr,
) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut out = String::with_capacity(text.len() + 32);
    let mut changed = false;
    for line in text.split_inclusive('\n') {
        let (content, ending) = split_ending(line);
        match rewrite_line(content, &unreachable, to) {
            Some(new) => {
                out.push_str(&new);
                changed = true;
            }
            None => out.push_str(content),
        }
        out.push_str(ending);
    }
    changed.then(|| out.into_bytes())
}

fn split_ending(line: &str) -> (&str, &str) {
    if let Some(content) = line.strip_suffix("\r\n") {
        (content, "\r\n")
    } else if let Some(content) = line.strip_suffix('\n') {
        (content, "\n")
    } else {
        (line, "")
    }
}

/// The rewritten line, when it names an unreachable address.
fn rewrite_line(line: &str, unreachable: &impl Fn(IpAddr) -> bool, to: IpAddr) -> Option<String> {
    let family = if to.is_ipv4() { "IP4" } else { "IP6" };
    if let Some(rest) = line.strip_prefix("c=") {
        // c=<nettype> <addrtype> <connection-address>
        let mut parts = rest.split(' ');
        let (Some("IN"), Some(_), Some(address), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        address_to_replace(address, unreachable)?;
        return Some(format!("c=IN {family} {to}"));
    }
    if let Some(rest) = line.strip_prefix("o=") {
        // o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>
        let parts: Vec<&str> = rest.split(' ').collect();
        let [user, id, version, "IN", _, address] = parts.as_slice() else {
            return None;
        };
        address_to_replace(address, unreachable)?;
        return Some(format!("o={user} {id} {version} IN {family} {to}"));
    }
    if let Some(rest) = line.strip_prefix("a=rtcp:") {
        // a=rtcp:<port> [<nettype> <addrtype> <connection-address>]
        let parts: Vec<&str> = rest.split(' ').collect();
        let [port, "IN", _, address] = parts.as_slice() else {
            return None;
        };
        address_to_replace(address, unreachable)?;
        return Some(format!("a=rtcp:{port} IN {family} {to}"));
    }
    None
}

/// `Some` when the address is a unicast one the PBX cannot reach (multicast carries `/ttl`).
fn address_to_replace(address: &str, unreachable: &impl Fn(IpAddr) -> bool) -> Option<()> {
    let ip: IpAddr = address.parse().ok()?;
    (!ip.is_unspecified() && unreachable(ip)).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// baresip 1.0's offer when its outbound proxy is on loopback.
    const BARESIP: &str = "v=0\r\n\
o=- 1983213337 3019513436 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 10400 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtcp:10401 IN IP4 127.0.0.1\r\n\
a=sendrecv\r\n";

    fn rewrite(body: &str, to: &str) -> Option<String> {
        let old: IpAddr = "198.18.1.2".parse().unwrap();
        rewrite_media_addresses(
            body.as_bytes(),
            |ip| ip.is_loopback() || ip == old,
            to.parse().unwrap(),
        )
        .map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn loopback_addresses_become_the_flow_address() {
        let out = rewrite(BARESIP, "203.0.113.7").unwrap();
        assert!(out.contains("\r\nc=IN IP4 203.0.113.7\r\n"));
        assert!(out.contains("\r\no=- 1983213337 3019513436 IN IP4 203.0.113.7\r\n"));
        assert!(out.contains("\r\na=rtcp:10401 IN IP4 203.0.113.7\r\n"));
        assert!(!out.contains("127.0.0.1"));
        assert_eq!(out.len(), BARESIP.len() + 3 * ("203.0.113.7".len() - 9));
    }

    #[test]
    fn an_old_address_and_ipv6_loopback_are_rewritten_in_the_flow_family() {
        let media_v6 =
            "v=0\no=- 1 1 IN IP6 ::1\nc=IN IP6 ::1\nm=audio 4000 RTP/AVP 0\nc=IN IP4 198.18.1.2\n";
        let out = rewrite(media_v6, "198.18.2.9").unwrap();
        assert_eq!(
            out,
            "v=0\no=- 1 1 IN IP4 198.18.2.9\nc=IN IP4 198.18.2.9\nm=audio 4000 RTP/AVP 0\nc=IN IP4 198.18.2.9\n"
        );
        let out = rewrite("c=IN IP4 127.0.0.1\r\n", "2001:db8::5").unwrap();
        assert_eq!(out, "c=IN IP6 2001:db8::5\r\n");
    }

    #[test]
    fn reachable_hold_multicast_and_non_text_bodies_are_left_alone() {
        assert_eq!(rewrite("c=IN IP4 198.18.5.5\r\n", "198.18.2.9"), None);
        assert_eq!(rewrite("c=IN IP4 0.0.0.0\r\n", "198.18.2.9"), None);
        assert_eq!(rewrite("c=IN IP4 224.2.1.1/127\r\n", "198.18.2.9"), None);
        assert_eq!(
            rewrite(
                "a=candidate:1 1 UDP 1 127.0.0.1 4000 typ host\r\n",
                "198.18.2.9"
            ),
            None
        );
        assert!(
            rewrite_media_addresses(b"c=IN IP4 \xff", |_| true, "198.18.2.9".parse().unwrap())
                .is_none()
        );
        assert_eq!(
            rewrite("c=IN IP4\r\nc=\r\no=\r\na=rtcp:\r\n", "198.18.2.9"),
            None
        );
    }
}
