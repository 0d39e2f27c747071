//! What the registrar holds: Kamailio's `ul.dump` and its log of saved REGISTERs, parsed.

use super::client::contains_host;

/// One contact Kamailio holds for an address of record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Binding {
    pub aor: String,
    /// The Contact URI as registered.
    pub contact: String,
    pub expires: Option<i64>,
    /// Where the REGISTER really came from, when the registrar saw a NAT (`sip:ip:port`).
    pub received: Option<String>,
    pub call_id: Option<String>,
}

impl Binding {
    /// Reachable at `addr` (ip or ip:port): the contact itself, or the NAT address it came from.
    pub fn reaches(&self, addr: &str) -> bool {
        contains_host(&self.contact, addr)
            || self
                .received
                .as_deref()
                .is_some_and(|r| contains_host(r, addr))
    }
}

/// Parses `kamcmd ul.dump` (the binrpc text tree):
/// `AoR: 101` … `Contact: { Address: sip:… Expires: 60 … Received: sip:… Call-ID: … }`.
pub fn parse_ul_dump(text: &str) -> Vec<Binding> {
    let mut out = Vec::new();
    let mut aor = String::new();
    let mut current: Option<Binding> = None;
    for line in text.lines() {
        let line = line.trim();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "AoR" => aor = value.to_owned(),
            "Address" => {
                if let Some(b) = current.take() {
                    out.push(b);
                }
                current = Some(Binding {
                    aor: aor.clone(),
                    contact: value.to_owned(),
                    ..Binding::default()
                });
            }
            "Expires" => {
                if let Some(b) = current.as_mut() {
                    // `permanent` and `deleted` are not numbers; a deleted contact is not held.
                    b.expires = value.parse().ok();
                    if value == "deleted" || value == "expired" {
                        b.expires = Some(0);
                    }
                }
            }
            "Received" => {
                if let Some(b) = current.as_mut() {
                    b.received = (!value.starts_with('[')).then(|| value.to_owned());
                }
            }
            "Call-ID" => {
                if let Some(b) = current.as_mut() {
                    b.call_id = Some(value.to_owned());
                }
            }
            _ => {}
        }
    }
    out.extend(current);
    out.retain(|b| b.expires != Some(0));
    out
}

/// One REGISTER as the registrar logged it: realtime seconds (µs precision), source address,
/// the Expires header and every Contact entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterEvent {
    pub at: f64,
    pub source: String,
    pub expires_header: Option<u32>,
    pub contacts: Vec<String>,
}

impl RegisterEvent {
    /// The lifetime this REGISTER asks for `entry`: its own `expires` parameter, else the header.
    fn entry_expires(&self, entry: &str) -> Option<u32> {
        entry
            .split(';')
            .skip(1)
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.eq_ignore_ascii_case("expires"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .or(self.expires_header)
    }

    /// Adds or refreshes a contact reaching `addr`.
    pub fn adds(&self, addr: &str) -> bool {
        self.contacts
            .iter()
            .any(|c| contains_host(c, addr) && self.entry_expires(c) != Some(0))
    }

    /// Removes a contact reaching `addr`, or all of them (`Contact: *`).
    pub fn removes(&self, addr: &str) -> bool {
        self.contacts.iter().any(|c| {
            c.trim() == "*" || (contains_host(c, addr) && self.entry_expires(c) == Some(0))
        })
    }
}

/// Parses `<marker> <secs.usecs> <src ip:port> <Expires header>| <contact>, <contact>…`.
pub fn parse_register_line(line: &str, marker: &str) -> Option<RegisterEvent> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let mut parts = rest.trim().splitn(3, ' ');
    let at = parts.next()?.parse().ok()?;
    let source = parts.next()?.to_owned();
    let (expires, contacts) = parts.next()?.split_once('|')?;
    Some(RegisterEvent {
        at,
        source,
        expires_header: expires.trim().parse().ok(),
        contacts: contacts
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty() && c != "<null>")
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "{\n\tDomains: {\n\t\tDomain: {\n\t\t\tDomain: location\n\t\t\tAoRs: {\n\
        \t\t\t\tInfo: {\n\t\t\t\t\tAoR: 101\n\t\t\t\t\tContacts: {\n\t\t\t\t\t\tContact: {\n\
        \t\t\t\t\t\t\tAddress: sip:101@198.18.1.10:5071\n\t\t\t\t\t\t\tExpires: 60\n\
        \t\t\t\t\t\t\tCall-ID: 1491551432@198.18.1.10\n\t\t\t\t\t\t\tReceived: sip:198.18.3.1:49355\n\
        \t\t\t\t\t\t}\n\t\t\t\t\t\tContact: {\n\t\t\t\t\t\t\tAddress: sip:101@198.18.2.10:5060;transport=tcp\n\
        \t\t\t\t\t\t\tExpires: 30\n\t\t\t\t\t\t\tReceived: [not set]\n\t\t\t\t\t\t}\n\
        \t\t\t\t\t}\n\t\t\t\t}\n\t\t\t}\n\t\t}\n\t}\n}\n";

    #[test]
    fn ul_dump_lists_each_contact_with_its_aor() {
        let b = parse_ul_dump(DUMP);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].aor, "101");
        assert_eq!(b[0].contact, "sip:101@198.18.1.10:5071");
        assert_eq!(b[0].received.as_deref(), Some("sip:198.18.3.1:49355"));
        assert!(b[0].reaches("198.18.3.1:49355"));
        assert_eq!(b[1].received, None);
        assert_eq!(b[1].expires, Some(30));
        assert!(b[1].reaches("198.18.2.10"));
    }

    #[test]
    fn register_line_parses_and_tells_adds_from_removes() {
        let e = parse_register_line(
            " 2(19009) NOTICE: <script>: VF-SAVED 1795500736.814095 198.18.2.10:5060 300| \
             <sip:101@198.18.2.10:5060;transport=udp>;expires=300, <sip:101@198.18.1.10:5060>;expires=0",
            "VF-SAVED",
        )
        .expect("parses");
        assert!((e.at - 1_795_500_736.814_095).abs() < 1e-6);
        assert_eq!(e.source, "198.18.2.10:5060");
        assert_eq!(e.contacts.len(), 2);
        assert!(e.adds("198.18.2.10") && !e.removes("198.18.2.10"));
        assert!(e.removes("198.18.1.10") && !e.adds("198.18.1.10"));
        let star = parse_register_line("VF-REGISTER 1.5 198.18.2.10:5060 0| *", "VF-REGISTER")
            .expect("parses");
        assert!(star.removes("198.18.2.10"));
        let hdr = parse_register_line(
            "VF-REGISTER 1.5 198.18.2.10:5060 0| <sip:101@198.18.2.10>",
            "VF-REGISTER",
        )
        .expect("parses");
        assert!(hdr.removes("198.18.2.10"));
        let none = parse_register_line(
            "VF-REGISTER 1.5 198.18.2.10:5060 <null>| <null>",
            "VF-REGISTER",
        )
        .expect("parses");
        assert!(none.contacts.is_empty());
    }
}
