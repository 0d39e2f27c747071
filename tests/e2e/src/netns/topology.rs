//! The three-namespace test network and the changes tests make to it.
//!
//! ```text
//!   cli                        router                         reg
//!   wifi0 198.18.1.10/24 ───── wifi-r 198.18.1.1/24
//!   eth0  198.18.2.10/24 ───── eth-r  198.18.2.1/24
//!                              up-r   198.18.3.1/24 ───────── up0 198.18.3.2/24
//!                                                             lo  198.18.0.1/32 (registrar)
//! ```
//! Routed: the registrar sees the client's own addresses. NAT: the router masquerades everything
//! leaving `up-r` (with random ports, so a lost mapping comes back on another port) and the
//! registrar has no route back to the client's networks.

use super::{io_err, realtime_secs, unique_name, Namespace, Result, TempDir};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::SystemTime;

/// The registrar's address, on the `reg` namespace's loopback.
pub const REGISTRAR_ADDR: &str = "198.18.0.1";
const ROUTER_UP: &str = "198.18.3.1";
const REG_UP: &str = "198.18.3.2";
/// The client's first host number on each link; each address change takes the next one.
const FIRST_HOST: u8 = 10;

/// One of the client's two links to the registrar side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// 198.18.1.0/24, interface `wifi0`.
    Wifi,
    /// 198.18.2.0/24, interface `eth0`.
    Wired,
}

impl Link {
    pub fn other(self) -> Link {
        match self {
            Link::Wifi => Link::Wired,
            Link::Wired => Link::Wifi,
        }
    }

    /// Interface name in the `cli` namespace.
    pub fn client_if(self) -> &'static str {
        match self {
            Link::Wifi => "wifi0",
            Link::Wired => "eth0",
        }
    }

    fn router_if(self) -> &'static str {
        match self {
            Link::Wifi => "wifi-r",
            Link::Wired => "eth-r",
        }
    }

    fn subnet(self) -> u8 {
        match self {
            Link::Wifi => 1,
            Link::Wired => 2,
        }
    }

    pub fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.subnet(), 1)
    }

    fn host(self, n: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.subnet(), n)
    }

    fn index(self) -> usize {
        match self {
            Link::Wifi => 0,
            Link::Wired => 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TopologyOptions {
    /// Masquerade on the router: the registrar sees 198.18.3.1 and a NAT'd port.
    pub nat: bool,
    /// The link carrying the default route at the start.
    pub default_link: Link,
    /// A short tag for the namespace names, to tell tests apart in `ip netns` listings.
    pub tag: String,
}

impl Default for TopologyOptions {
    fn default() -> Self {
        TopologyOptions {
            nat: false,
            default_link: Link::Wifi,
            tag: "t".into(),
        }
    }
}

/// Added packet loss; removed again by [`Topology::clear_loss`] or with the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossGuard {
    /// `tc netem` on the router's interfaces (both directions).
    Netem,
    /// nftables `numgen random` drop in the router's forward chain: this kernel may lack netem.
    Nft,
}

/// The test network. Field order is drop order: namespaces (and what runs in them), then files.
#[derive(Debug)]
pub struct Topology {
    cli: Namespace,
    router: Namespace,
    reg: Namespace,
    dir: TempDir,
    nat: bool,
    default_link: Option<Link>,
    /// Current host number of the client's address on each link; `None` when removed.
    host: [Option<u8>; 2],
    loss: Option<LossGuard>,
}

impl Topology {
    pub fn new(opts: TopologyOptions) -> Result<Topology> {
        let dir = TempDir::new(&format!("{}-etc", opts.tag))?;
        // Everything a resolver inside could read points back into the namespaces: a lookup of
        // anything but these names fails at once on the namespace's own loopback.
        std::fs::write(
            dir.path().join("hosts"),
            format!("127.0.0.1 localhost\n{REGISTRAR_ADDR} registrar.test\n"),
        )
        .map_err(io_err("writing private hosts"))?;
        std::fs::write(
            dir.path().join("resolv.conf"),
            "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
        )
        .map_err(io_err("writing private resolv.conf"))?;

        let reg = Namespace::create(unique_name(&format!("{}-reg", opts.tag)), dir.path())?;
        let router = Namespace::create(unique_name(&format!("{}-rt", opts.tag)), dir.path())?;
        let cli = Namespace::create(unique_name(&format!("{}-cli", opts.tag)), dir.path())?;
        let mut topo = Topology {
            cli,
            router,
            reg,
            dir,
            nat: opts.nat,
            default_link: Some(opts.default_link),
            host: [Some(FIRST_HOST), Some(FIRST_HOST)],
            loss: None,
        };
        topo.build(opts.default_link)?;
        Ok(topo)
    }

    fn build(&mut self, default_link: Link) -> Result<()> {
        let (reg, router, cli) = (&self.reg, &self.router, &self.cli);
        // Registrar side.
        router.ip([
            "link",
            "add",
            "name",
            "up-r",
            "type",
            "veth",
            "peer",
            "name",
            "up0",
            "netns",
            reg.name(),
        ])?;
        router.ip(["addr", "add", &format!("{ROUTER_UP}/24"), "dev", "up-r"])?;
        router.ip(["link", "set", "up-r", "up"])?;
        reg.ip(["addr", "add", &format!("{REGISTRAR_ADDR}/32"), "dev", "lo"])?;
        reg.ip(["addr", "add", &format!("{REG_UP}/24"), "dev", "up0"])?;
        reg.ip(["link", "set", "up0", "up"])?;
        router.ip([
            "route",
            "add",
            &format!("{REGISTRAR_ADDR}/32"),
            "via",
            REG_UP,
        ])?;
        if !self.nat {
            // Behind NAT the registrar must not be able to reach the client's own addresses.
            reg.ip(["route", "add", "default", "via", ROUTER_UP])?;
        }

        // Client side: two links.
        for link in [Link::Wifi, Link::Wired] {
            router.ip([
                "link",
                "add",
                "name",
                link.router_if(),
                "type",
                "veth",
                "peer",
                "name",
                link.client_if(),
                "netns",
                cli.name(),
            ])?;
            router.ip([
                "addr",
                "add",
                &format!("{}/24", link.gateway()),
                "dev",
                link.router_if(),
            ])?;
            router.ip(["link", "set", link.router_if(), "up"])?;
            cli.ip([
                "addr",
                "add",
                &format!("{}/24", link.host(FIRST_HOST)),
                "dev",
                link.client_if(),
            ])?;
            cli.ip(["link", "set", link.client_if(), "up"])?;
            // Deleting the primary address of a subnet would otherwise delete the secondary we
            // just added in an address change.
            cli.exec(
                "sysctl",
                [
                    "-qw",
                    &format!("net.ipv4.conf.{}.promote_secondaries=1", link.client_if()),
                ],
            )?;
        }
        cli.ip([
            "route",
            "add",
            "default",
            "via",
            &default_link.gateway().to_string(),
        ])?;

        router.exec("sysctl", ["-qw", "net.ipv4.ip_forward=1"])?;
        // Strict reverse-path filtering: like two real networks, the router drops a packet from
        // the Wi-Fi address that arrives over the wired link (a client still sending from an
        // address that no longer fits its route gets nowhere, as it would in an office).
        for conf in ["all", "default", "wifi-r", "eth-r", "up-r"] {
            router.exec(
                "sysctl",
                ["-qw", &format!("net.ipv4.conf.{conf}.rp_filter=1")],
            )?;
        }
        if self.nat {
            // `random`: a new mapping after the old one is lost gets a different port, as on a
            // real NAT that has forgotten the flow.
            router.exec(
                "nft",
                ["add table ip vfnat; \
                     add chain ip vfnat post { type nat hook postrouting priority srcnat; }; \
                     add rule ip vfnat post oifname \"up-r\" masquerade random"],
            )?;
        }
        Ok(())
    }

    pub fn reg(&self) -> &Namespace {
        &self.reg
    }

    pub fn router(&self) -> &Namespace {
        &self.router
    }

    pub fn cli(&self) -> &Namespace {
        &self.cli
    }

    /// Directory for files that live as long as the topology (configs, logs, certificates).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn nat(&self) -> bool {
        self.nat
    }

    pub fn default_link(&self) -> Option<Link> {
        self.default_link
    }

    /// The client's current address on `link`, if it has one.
    pub fn client_addr(&self, link: Link) -> Option<Ipv4Addr> {
        self.host[link.index()].map(|h| link.host(h))
    }

    /// The address the registrar will see the client's packets come from: the router's outside
    /// address behind NAT, else the client's address on the default link.
    pub fn expected_source(&self) -> Option<Ipv4Addr> {
        if self.nat {
            return ROUTER_UP.parse().ok();
        }
        self.client_addr(self.default_link?)
    }

    /// Moves the default route to `to`; with `remove_old_address` the old link also loses its
    /// address (leaving Wi-Fi), otherwise both keep theirs (a route metric change). Returns the
    /// instant just before the change was handed to the kernel.
    pub fn switch_default_route(
        &mut self,
        to: Link,
        remove_old_address: bool,
    ) -> Result<SystemTime> {
        let from = to.other();
        let mut lines = vec![format!(
            "route replace default via {} dev {}",
            to.gateway(),
            to.client_if()
        )];
        if remove_old_address {
            if let Some(old) = self.client_addr(from) {
                lines.push(format!("address del {old}/24 dev {}", from.client_if()));
            }
        }
        let at = SystemTime::now();
        self.cli.ip_batch(&lines)?;
        self.default_link = Some(to);
        if remove_old_address {
            self.host[from.index()] = None;
        }
        Ok(at)
    }

    /// Gives the client a new address on `link` and removes the old one (a new DHCP lease).
    pub fn change_address(&mut self, link: Link) -> Result<SystemTime> {
        let old = self.host[link.index()];
        let new = old.map_or(FIRST_HOST, |h| if h >= 250 { FIRST_HOST } else { h + 1 });
        let mut lines = vec![format!(
            "address add {}/24 dev {}",
            link.host(new),
            link.client_if()
        )];
        if let Some(old) = old {
            lines.push(format!(
                "address del {}/24 dev {}",
                link.host(old),
                link.client_if()
            ));
        }
        if self.default_link == Some(link) {
            // Removing the old address can take the default route with it; a DHCP client puts it
            // back in the same breath.
            lines.push(format!(
                "route replace default via {} dev {}",
                link.gateway(),
                link.client_if()
            ));
        }
        let at = SystemTime::now();
        self.cli.ip_batch(&lines)?;
        self.host[link.index()] = Some(new);
        Ok(at)
    }

    /// Takes the client's side of `link` down (Wi-Fi switched off). If it carried the default
    /// route the client has no route to the registrar until [`Topology::link_up`].
    pub fn link_down(&mut self, link: Link) -> Result<SystemTime> {
        let at = SystemTime::now();
        self.cli.ip(["link", "set", link.client_if(), "down"])?;
        Ok(at)
    }

    /// Brings `link` back and, as a connection manager would, restores the default route over it
    /// if it carried the default route before (the kernel drops that route on link down).
    pub fn link_up(&mut self, link: Link) -> Result<SystemTime> {
        let mut lines = vec![format!("link set {} up", link.client_if())];
        if self.default_link == Some(link) {
            lines.push(format!(
                "route replace default via {} dev {}",
                link.gateway(),
                link.client_if()
            ));
        }
        let at = SystemTime::now();
        self.cli.ip_batch(&lines)?;
        Ok(at)
    }

    /// Forgets every NAT mapping on the router: the client's next packet leaves from a new
    /// (random) port, as after a NAT reboot or a mapping timeout.
    pub fn nat_rebind(&mut self) -> Result<SystemTime> {
        let at = SystemTime::now();
        // conntrack prints a summary on stderr and exits 0 even with nothing to flush.
        self.router.exec("conntrack", ["-F"])?;
        Ok(at)
    }

    /// The router's current public mapping of the client's SIP flow: (client address:port as
    /// sent, address:port the registrar sees). Reads conntrack, so it is the truth, not a guess.
    pub fn nat_mappings(&self) -> Result<Vec<(String, String)>> {
        let out = self.router.exec(
            "conntrack",
            ["-L", "-p", "udp", "-d", REGISTRAR_ADDR, "--dport", "5060"],
        )?;
        Ok(out.lines().filter_map(parse_conntrack_line).collect())
    }

    /// The public `ip:port` the registrar sees for the client socket `inside` (`ip:port`).
    pub fn public_address_of(&self, inside: &str) -> Option<String> {
        self.nat_mappings()
            .ok()?
            .into_iter()
            .find(|(i, _)| i == inside)
            .map(|(_, outside)| outside)
    }

    /// Drops `percent`% of the packets the router forwards, each direction.
    pub fn set_loss(&mut self, percent: u8) -> Result<LossGuard> {
        self.clear_loss()?;
        let netem = ["wifi-r", "eth-r", "up-r"].iter().try_for_each(|dev| {
            self.router
                .exec(
                    "tc",
                    [
                        "qdisc",
                        "replace",
                        "dev",
                        dev,
                        "root",
                        "netem",
                        "loss",
                        &format!("{percent}%"),
                    ],
                )
                .map(|_| ())
        });
        let guard = match netem {
            Ok(()) => LossGuard::Netem,
            Err(_) => {
                // Not every kernel has sch_netem (this one does not); nftables' random number
                // generator gives the same independent per-packet loss.
                for dev in ["wifi-r", "eth-r", "up-r"] {
                    let _ = self.router.exec("tc", ["qdisc", "del", "dev", dev, "root"]);
                }
                self.router.exec(
                    "nft",
                    [format!(
                        "add table inet vfloss; \
                         add chain inet vfloss lossy {{ type filter hook forward priority -10; }}; \
                         add rule inet vfloss lossy numgen random mod 100 < {percent} counter drop"
                    )],
                )?;
                LossGuard::Nft
            }
        };
        self.loss = Some(guard);
        Ok(guard)
    }

    /// Packets dropped so far by the nftables loss rule (`None` with netem or no loss).
    pub fn loss_drops(&self) -> Option<u64> {
        if self.loss != Some(LossGuard::Nft) {
            return None;
        }
        let out = self.router.exec("nft", ["list table inet vfloss"]).ok()?;
        let mut words = out.split_whitespace();
        words.by_ref().find(|w| *w == "packets")?;
        words.next()?.parse().ok()
    }

    pub fn clear_loss(&mut self) -> Result<()> {
        match self.loss.take() {
            Some(LossGuard::Netem) => {
                for dev in ["wifi-r", "eth-r", "up-r"] {
                    self.router
                        .exec("tc", ["qdisc", "del", "dev", dev, "root"])?;
                }
            }
            Some(LossGuard::Nft) => {
                self.router.exec("nft", ["delete table inet vfloss"])?;
            }
            None => {}
        }
        Ok(())
    }

    /// Resets every established TCP connection of the registrar's SIP ports from the server side
    /// (`ss -K` aborts the socket, which sends the peer a RST), as a crashing or restarting
    /// server or an idle-timeout middlebox would.
    pub fn reset_registrar_connections(&self) -> Result<SystemTime> {
        let at = SystemTime::now();
        self.reg.exec(
            "ss",
            [
                "-K",
                "-t",
                "state",
                "established",
                "(",
                "sport",
                "=",
                ":5060",
                "or",
                "sport",
                "=",
                ":5061",
                ")",
            ],
        )?;
        Ok(at)
    }

    /// Established TCP connections on the registrar's SIP ports, as `ss` prints them.
    pub fn registrar_connections(&self) -> Result<Vec<String>> {
        let out = self.reg.exec(
            "ss",
            [
                "-H",
                "-t",
                "-n",
                "state",
                "established",
                "(",
                "sport",
                "=",
                ":5060",
                "or",
                "sport",
                "=",
                ":5061",
                ")",
            ],
        )?;
        Ok(out
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.trim().is_empty())
            .collect())
    }

    /// The source address the kernel would use from the client towards the registrar right now.
    pub fn route_source(&self) -> Option<Ipv4Addr> {
        let out = self.cli.ip(["-4", "route", "get", REGISTRAR_ADDR]).ok()?;
        let mut words = out.split_whitespace();
        words.by_ref().find(|w| *w == "src")?;
        words.next()?.parse().ok()
    }

    /// Seconds since the epoch, for printing a change's instant in the registrar's clock.
    pub fn stamp(t: SystemTime) -> f64 {
        realtime_secs(t)
    }

    /// Runs a command in the `reg` namespace and returns its `Command`, for the registrar.
    pub fn reg_command(&self, program: &str) -> Command {
        self.reg.command(program)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = self.clear_loss();
    }
}

/// `udp 17 29 src=198.18.1.10 dst=198.18.0.1 sport=5060 dport=5060 src=198.18.0.1 dst=198.18.3.1
/// sport=5060 dport=41234 [ASSURED] ...` → ("198.18.1.10:5060", "198.18.3.1:41234").
fn parse_conntrack_line(line: &str) -> Option<(String, String)> {
    let field = |key: &str, nth: usize| {
        line.split_whitespace()
            .filter_map(|w| w.strip_prefix(key))
            .nth(nth)
            .map(str::to_owned)
    };
    let inside = format!("{}:{}", field("src=", 0)?, field("sport=", 0)?);
    let outside = format!("{}:{}", field("dst=", 1)?, field("dport=", 1)?);
    Some((inside, outside))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conntrack_line_gives_inside_and_outside() {
        let line = "udp      17 29 src=198.18.1.10 dst=198.18.0.1 sport=40000 dport=5060 \
                    src=198.18.0.1 dst=198.18.3.1 sport=5060 dport=41234 [ASSURED] mark=0 use=1";
        assert_eq!(
            parse_conntrack_line(line),
            Some(("198.18.1.10:40000".into(), "198.18.3.1:41234".into()))
        );
    }
}
