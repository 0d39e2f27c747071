//! One mobility scenario: topology + registrar + client, and the checks every test makes.

use super::bindings::Binding;
use super::client::{contains_host, CliClient, CliStatus, ClientOptions};
use super::registrar::{NsRegistrar, RegistrarOptions};
use super::{generate_password, have_root, NetnsError, Result, Topology, TopologyOptions};
use super::{wait_until, Link};
use std::path::PathBuf;
use std::time::Duration;

/// The extension every scenario registers.
pub const USER: &str = "101";

/// Longest wait for a registration on a clean path: generous for a loaded 2-core CI machine, and
/// never a pass/fail threshold on speed (the benchmark measures speed).
pub const REGISTER_LIMIT: Duration = Duration::from_secs(30);
/// Longest wait for the registrar's bindings to become what the client reported.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ScenarioOptions {
    pub nat: bool,
    /// udp, tcp or tls.
    pub transport: &'static str,
    pub expires: Option<u32>,
    /// Kamailio `max_contacts` (0: unlimited).
    pub max_contacts: u32,
    pub default_link: Link,
}

impl Default for ScenarioOptions {
    fn default() -> Self {
        ScenarioOptions {
            nat: false,
            transport: "udp",
            expires: None,
            max_contacts: 0,
            default_link: Link::Wifi,
        }
    }
}

/// Field order is drop order: the client first (it unregisters), then the registrar, then the
/// network under both.
#[derive(Debug)]
pub struct Scenario {
    pub client: CliClient,
    pub registrar: NsRegistrar,
    pub topo: Topology,
}

/// Where `vicifast-cli` is: `$VICIFAST_CLI`, else the workspace's debug build.
pub fn cli_path() -> PathBuf {
    if let Some(p) = std::env::var_os("VICIFAST_CLI") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("debug/vicifast-cli")
}

impl Scenario {
    /// Builds the network, starts the registrar and the client. `Ok(None)`: skipped (not root).
    pub fn start(test: &str, opts: ScenarioOptions) -> Result<Option<Scenario>> {
        if !have_root(test) {
            return Ok(None);
        }
        let tag: String = test
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(6)
            .collect();
        let topo = Topology::new(TopologyOptions {
            nat: opts.nat,
            default_link: opts.default_link,
            tag,
        })?;
        let password = generate_password()?;
        let registrar = NsRegistrar::start(
            &topo,
            &RegistrarOptions {
                max_contacts: opts.max_contacts,
                tls: opts.transport == "tls",
            },
            USER,
            &password,
        )?;
        let mut copts = ClientOptions::new(cli_path(), USER, &password);
        copts.transport = opts.transport.into();
        copts.expires = opts.expires;
        copts.ca_file = registrar.ca_file().map(PathBuf::from);
        let client = CliClient::start(topo.cli(), &copts)?;
        Ok(Some(Scenario {
            client,
            registrar,
            topo,
        }))
    }

    /// Waits for the client to report `registered` from `addr` (its contact or local address).
    pub fn wait_registered_from(&mut self, addr: &str, limit: Duration) -> Result<CliStatus> {
        self.client
            .wait_for(&format!("registered from {addr}"), limit, |s| {
                s.is_registered()
                    && (s.contact_has(addr)
                        || s.local_address
                            .as_deref()
                            .is_some_and(|l| contains_host(&format!("@{l}"), addr)))
            })
    }

    /// The client's address on `link`; an error when the topology gave it none.
    pub fn client_ip(&self, link: Link) -> Result<String> {
        self.topo
            .client_addr(link)
            .map(|a| a.to_string())
            .ok_or_else(|| NetnsError::Unexpected {
                expected: format!("an address on {link:?}"),
                seen: "none".to_owned(),
            })
    }

    /// The usual first step: registered from `link`'s address, and the registrar holds that one
    /// binding only. Returns the address.
    pub fn registered_on(&mut self, link: Link) -> Result<String> {
        let addr = self.client_ip(link)?;
        let status = self.wait_registered_from(&addr, REGISTER_LIMIT)?;
        self.wait_only_binding(&status, &addr, &[], SETTLE_LIMIT)?;
        Ok(addr)
    }

    /// Waits until the registrar holds exactly one binding for the extension: the contact the
    /// client reported in `status`, reachable at `addr`, and nothing reachable at any of `stale`.
    /// Returns that binding. Polls `kamcmd ul.dump`.
    pub fn wait_only_binding(
        &self,
        status: &CliStatus,
        addr: &str,
        stale: &[&str],
        limit: Duration,
    ) -> Result<Binding> {
        let mut last = Vec::new();
        let found = wait_until(limit, Duration::from_millis(100), || {
            let bindings = self.registrar.bindings().ok()?;
            last.clone_from(&bindings);
            only_binding(&bindings, status, addr, stale).cloned()
        });
        found.ok_or_else(|| NetnsError::Timeout {
            what: format!(
                "the registrar to hold only {} (reaching {addr}; stale: {stale:?})",
                status.contact.as_deref().unwrap_or("the client's contact")
            ),
            waited: limit,
            last: format!("{last:?}"),
        })
    }

    /// Waits until the client's latest status is `registered` from `addr` and the registrar holds
    /// exactly that contact and nothing reaching `stale`. Robust to the client moving to a new
    /// socket on the way: it compares with whatever the client reports last.
    pub fn wait_settled(
        &mut self,
        addr: &str,
        stale: &[&str],
        limit: Duration,
    ) -> Result<(CliStatus, Binding)> {
        let mut last = String::new();
        let found = wait_until(limit, Duration::from_millis(100), || {
            let status = self.client.latest()?.clone();
            let bindings = self.registrar.bindings().ok()?;
            last = format!(
                "client {} {}/{} contact={:?}; bindings {bindings:?}",
                status.at, status.state, status.cause, status.contact
            );
            let from_addr = status.contact_has(addr)
                || status
                    .local_address
                    .as_deref()
                    .is_some_and(|l| contains_host(&format!("@{l}"), addr));
            if !status.is_registered() || !from_addr {
                return None;
            }
            only_binding(&bindings, &status, addr, stale)
                .cloned()
                .map(|b| (status, b))
        });
        found.ok_or_else(|| NetnsError::Timeout {
            what: format!("client registered from {addr} and the registrar holding only its contact (stale: {stale:?})"),
            waited: limit,
            last,
        })
    }

    /// Fails unless, at this moment, the registrar holds a binding reaching `addr`.
    pub fn check_binding_now(&self, addr: &str) -> Result<Binding> {
        let bindings = self.registrar.bindings()?;
        if let Some(b) = bindings.iter().find(|b| b.reaches(addr)) {
            return Ok(b.clone());
        }
        Err(NetnsError::Unexpected {
            expected: format!("a binding reaching {addr}"),
            seen: format!("{bindings:?}"),
        })
    }
}

/// The single binding, if `bindings` is exactly the client's current contact and nothing stale.
fn only_binding<'b>(
    bindings: &'b [Binding],
    status: &CliStatus,
    addr: &str,
    stale: &[&str],
) -> Option<&'b Binding> {
    let [b] = bindings else { return None };
    let same = status
        .contact
        .as_deref()
        .is_none_or(|c| same_uri(c, &b.contact));
    (same && b.reaches(addr) && !stale.iter().any(|s| b.reaches(s))).then_some(b)
}

/// `<sip:101@198.18.1.10:5060;transport=udp>;expires=300` and `sip:101@198.18.1.10:5060` name
/// the same contact: user, host and port compared, URI parameters ignored.
pub fn same_uri(a: &str, b: &str) -> bool {
    fn core(s: &str) -> String {
        let s = s.trim();
        let s = s.find('<').map_or(s, |i| &s[i + 1..]);
        let s = s.split(['>', ';']).next().unwrap_or("");
        s.to_ascii_lowercase()
    }
    core(a) == core(b)
}

#[cfg(test)]
mod tests {
    use super::same_uri;

    #[test]
    fn uris_compare_without_parameters() {
        assert!(same_uri(
            "<sip:101@198.18.1.10:5060;transport=udp>;expires=300",
            "sip:101@198.18.1.10:5060"
        ));
        assert!(same_uri(
            "sip:101@198.18.1.10:5060;ob",
            "\"x\" <sip:101@198.18.1.10:5060>"
        ));
        assert!(!same_uri(
            "sip:101@198.18.1.10:5060",
            "sip:101@198.18.1.10:5061"
        ));
    }
}
