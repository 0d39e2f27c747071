//! Locating the registrar (RFC 3263 §4): which transport, address and port to try, in order.
//!
//! A numeric address is used as is. A host name with a port, or with a transport but no SRV
//! records, is looked up for A/AAAA. A host name without a port goes through SRV
//! (`_sip._udp`, `_sip._tcp`, `_sips._tcp`, or only the one for the chosen transport), ordered
//! by priority and weight (RFC 2782), each target's addresses in turn. NAPTR is not queried:
//! registrars for call centres publish SRV at most, and RFC 3263 allows going straight to SRV.
//! The lookups use hickory-resolver with the system's resolver configuration.

use hickory_resolver::config::LookupIpStrategy;
use hickory_resolver::TokioResolver;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use thiserror::Error;
use vicifast_core::{ServerAddress, Target, Transport};

/// At most this many targets are tried before a new lookup.
const MAX_TARGETS: usize = 16;

/// Why the registrar's name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum ResolveError {
    #[error("cannot read the system's DNS configuration: {0}")]
    Config(String),
    #[error("the name {0} does not exist in DNS")]
    NotFound(String),
    #[error("DNS lookup of {name} failed: {detail}")]
    Lookup { name: String, detail: String },
}

/// One SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// The DNS queries resolution needs; a trait so the RFC 3263 logic is tested without a server.
pub(crate) trait Dns {
    /// SRV records for `name`; empty when there are none.
    fn srv(
        &self,
        name: &str,
    ) -> impl std::future::Future<Output = Result<Vec<SrvRecord>, ResolveError>> + Send;
    /// A and AAAA addresses for `host`.
    fn ips(
        &self,
        host: &str,
    ) -> impl std::future::Future<Output = Result<Vec<IpAddr>, ResolveError>> + Send;
}

/// The system's resolver. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Resolver {
    inner: Arc<TokioResolver>,
}

impl Resolver {
    pub fn from_system() -> Result<Self, ResolveError> {
        let mut builder =
            TokioResolver::builder_tokio().map_err(|e| ResolveError::Config(e.to_string()))?;
        builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        Ok(Self {
            inner: Arc::new(builder.build()),
        })
    }

    /// The targets to try for `server`, best first. `transport` is the one the user chose.
    pub async fn resolve(
        &self,
        server: &ServerAddress,
        transport: Option<Transport>,
    ) -> Result<Vec<Target>, ResolveError> {
        // A Send rng: the lookup runs as a spawned task.
        let mut rng = rand::rngs::StdRng::from_entropy();
        resolve_with(self, server, transport, &mut rng).await
    }
}

impl Dns for Resolver {
    async fn srv(&self, name: &str) -> Result<Vec<SrvRecord>, ResolveError> {
        match self.inner.srv_lookup(name).await {
            Ok(lookup) => Ok(lookup
                .iter()
                .map(|srv| SrvRecord {
                    priority: srv.priority(),
                    weight: srv.weight(),
                    port: srv.port(),
                    target: srv.target().to_utf8(),
                })
                .collect()),
            Err(err) if err.is_no_records_found() || err.is_nx_domain() => Ok(Vec::new()),
            Err(err) => Err(ResolveError::Lookup {
                name: name.to_owned(),
                detail: err.to_string(),
            }),
        }
    }

    async fn ips(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        match self.inner.lookup_ip(host).await {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(err) if err.is_no_records_found() || err.is_nx_domain() => {
                Err(ResolveError::NotFound(host.to_owned()))
            }
            Err(err) => Err(ResolveError::Lookup {
                name: host.to_owned(),
                detail: err.to_string(),
            }),
        }
    }
}

fn default_port(transport: Transport) -> u16 {
    match transport {
        Transport::Tls => 5061,
        Transport::Udp | Transport::Tcp => 5060,
    }
}

fn srv_name(transport: Transport, host: &str) -> String {
    let service = match transport {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
    };
    format!("{service}.{}", host.trim_end_matches('.'))
}

pub(crate) async fn resolve_with<D: Dns, R: Rng>(
    dns: &D,
    server: &ServerAddress,
    transport: Option<Transport>,
    rng: &mut R,
) -> Result<Vec<Target>, ResolveError> {
    let chosen = transport.or(server.transport);
    let host = server.host.as_str();
    let target = |ip: IpAddr, port: u16, transport: Transport| Target {
        addr: SocketAddr::new(ip, port),
        transport,
        // RFC 5922 §4: the certificate must name the domain the user gave, not the SRV target.
        server_name: host.to_owned(),
    };

    if let Ok(ip) = host.parse::<IpAddr>() {
        let transport = chosen.unwrap_or(Transport::Udp);
        let port = server.port.unwrap_or_else(|| default_port(transport));
        return Ok(vec![target(ip, port, transport)]);
    }

    if server.port.is_none() {
        let transports = match chosen {
            Some(t) => vec![t],
            None => vec![Transport::Udp, Transport::Tcp, Transport::Tls],
        };
        let mut targets = Vec::new();
        let mut first_error = None;
        for transport in transports {
            let records = match dns.srv(&srv_name(transport, host)).await {
                Ok(records) => records,
                Err(err) => {
                    first_error.get_or_insert(err);
                    continue;
                }
            };
            for record in order_srv(records, rng) {
                match dns.ips(&record.target).await {
                    Ok(ips) => {
                        targets.extend(ips.into_iter().map(|ip| target(ip, record.port, transport)))
                    }
                    Err(err) => {
                        tracing::debug!(%err, target = %record.target, "SRV target does not resolve")
                    }
                }
            }
        }
        if !targets.is_empty() {
            targets.truncate(MAX_TARGETS);
            return Ok(targets);
        }
        if let Some(err) = first_error {
            tracing::debug!(%err, "SRV lookup failed; trying A/AAAA");
        }
    }

    let transport = chosen.unwrap_or(Transport::Udp);
    let port = server.port.unwrap_or_else(|| default_port(transport));
    let mut targets: Vec<Target> = dns
        .ips(host)
        .await?
        .into_iter()
        .map(|ip| target(ip, port, transport))
        .collect();
    targets.truncate(MAX_TARGETS);
    if targets.is_empty() {
        return Err(ResolveError::NotFound(host.to_owned()));
    }
    Ok(targets)
}

/// RFC 2782 order: ascending priority; within one priority, a weighted random draw without
/// replacement (weight 0 records get a small chance, as the RFC's running-sum method gives).
/// A single target of "." means the service is decidedly not offered there.
pub(crate) fn order_srv<R: Rng>(mut records: Vec<SrvRecord>, rng: &mut R) -> Vec<SrvRecord> {
    records.retain(|r| r.target != "." && !r.target.is_empty());
    records.sort_by_key(|r| r.priority);
    let mut ordered = Vec::with_capacity(records.len());
    let mut rest = records.as_slice();
    while let Some(first) = rest.first() {
        let same = rest
            .iter()
            .take_while(|r| r.priority == first.priority)
            .count();
        let (group, tail) = rest.split_at(same);
        rest = tail;
        // Zero weights first, as RFC 2782 asks, so they get picked only when the draw is 0.
        let mut pool: Vec<SrvRecord> = group.to_vec();
        pool.shuffle(rng);
        pool.sort_by_key(|r| r.weight != 0);
        while !pool.is_empty() {
            let total: u32 = pool.iter().map(|r| u32::from(r.weight)).sum();
            let draw = rng.gen_range(0..=total);
            let mut running = 0u32;
            let pick = pool
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= draw
                })
                .unwrap_or(0);
            ordered.push(pool.remove(pick));
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::HashMap;

    #[derive(Default)]
    struct FakeDns {
        srv: HashMap<String, Vec<SrvRecord>>,
        ips: HashMap<String, Vec<IpAddr>>,
        broken_srv: bool,
    }

    impl Dns for FakeDns {
        async fn srv(&self, name: &str) -> Result<Vec<SrvRecord>, ResolveError> {
            if self.broken_srv {
                return Err(ResolveError::Lookup {
                    name: name.into(),
                    detail: "timed out".into(),
                });
            }
            Ok(self.srv.get(name).cloned().unwrap_or_default())
        }
        async fn ips(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
            self.ips
                .get(host)
                .cloned()
                .ok_or_else(|| ResolveError::NotFound(host.into()))
        }
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn server(text: &str) -> ServerAddress {
        ServerAddress::parse(text).unwrap()
    }

    fn run(
        dns: &FakeDns,
        text: &str,
        transport: Option<Transport>,
    ) -> Result<Vec<Target>, ResolveError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(resolve_with(
            dns,
            &server(text),
            transport,
            &mut StdRng::seed_from_u64(7),
        ))
    }

    fn addrs(targets: &[Target]) -> Vec<(String, Transport)> {
        targets
            .iter()
            .map(|t| (t.addr.to_string(), t.transport))
            .collect()
    }

    #[test]
    fn numeric_address_is_used_as_is() {
        let dns = FakeDns::default();
        let got = run(&dns, "198.18.0.1", None).unwrap();
        assert_eq!(addrs(&got), [("198.18.0.1:5060".into(), Transport::Udp)]);
        let got = run(&dns, "sips:[2001:db8::1]", None).unwrap();
        assert_eq!(addrs(&got), [("[2001:db8::1]:5061".into(), Transport::Tls)]);
        let got = run(&dns, "198.18.0.1:5080", Some(Transport::Tcp)).unwrap();
        assert_eq!(addrs(&got), [("198.18.0.1:5080".into(), Transport::Tcp)]);
    }

    #[test]
    fn srv_for_every_transport_when_none_is_chosen() {
        let mut dns = FakeDns::default();
        dns.srv.insert(
            "_sip._tcp.pbx.test".into(),
            vec![srv(10, 0, 5070, "b.pbx.test.")],
        );
        dns.srv.insert(
            "_sips._tcp.pbx.test".into(),
            vec![srv(10, 0, 5071, "b.pbx.test.")],
        );
        dns.ips
            .insert("b.pbx.test.".into(), vec!["198.18.0.2".parse().unwrap()]);
        let got = run(&dns, "pbx.test", None).unwrap();
        assert_eq!(
            addrs(&got),
            [
                ("198.18.0.2:5070".into(), Transport::Tcp),
                ("198.18.0.2:5071".into(), Transport::Tls)
            ]
        );
        assert!(got.iter().all(|t| t.server_name == "pbx.test"));
    }

    #[test]
    fn chosen_transport_queries_only_its_srv() {
        let mut dns = FakeDns::default();
        dns.srv.insert(
            "_sip._udp.pbx.test".into(),
            vec![srv(10, 0, 5070, "a.pbx.test")],
        );
        dns.srv.insert(
            "_sips._tcp.pbx.test".into(),
            vec![srv(10, 0, 5071, "a.pbx.test")],
        );
        dns.ips
            .insert("a.pbx.test".into(), vec!["198.18.0.3".parse().unwrap()]);
        let got = run(&dns, "pbx.test", Some(Transport::Tls)).unwrap();
        assert_eq!(addrs(&got), [("198.18.0.3:5071".into(), Transport::Tls)]);
    }

    #[test]
    fn no_srv_falls_back_to_a_and_aaaa_on_the_default_port() {
        let mut dns = FakeDns::default();
        dns.ips.insert(
            "pbx.test".into(),
            vec![
                "198.18.0.4".parse().unwrap(),
                "2001:db8::4".parse().unwrap(),
            ],
        );
        let got = run(&dns, "pbx.test", Some(Transport::Tls)).unwrap();
        assert_eq!(
            addrs(&got),
            [
                ("198.18.0.4:5061".into(), Transport::Tls),
                ("[2001:db8::4]:5061".into(), Transport::Tls)
            ]
        );
    }

    #[test]
    fn failing_srv_still_falls_back_to_addresses() {
        let mut dns = FakeDns {
            broken_srv: true,
            ..FakeDns::default()
        };
        dns.ips
            .insert("pbx.test".into(), vec!["198.18.0.4".parse().unwrap()]);
        let got = run(&dns, "pbx.test", None).unwrap();
        assert_eq!(addrs(&got), [("198.18.0.4:5060".into(), Transport::Udp)]);
    }

    #[test]
    fn explicit_port_skips_srv() {
        let mut dns = FakeDns::default();
        dns.srv.insert(
            "_sip._udp.pbx.test".into(),
            vec![srv(10, 0, 5070, "a.pbx.test")],
        );
        dns.ips
            .insert("pbx.test".into(), vec!["198.18.0.5".parse().unwrap()]);
        let got = run(&dns, "pbx.test:5999", None).unwrap();
        assert_eq!(addrs(&got), [("198.18.0.5:5999".into(), Transport::Udp)]);
    }

    #[test]
    fn unknown_name_is_not_found() {
        let err = run(&FakeDns::default(), "nowhere.test", None).unwrap_err();
        assert_eq!(err, ResolveError::NotFound("nowhere.test".into()));
    }

    #[test]
    fn srv_orders_by_priority_then_weight() {
        let records = vec![
            srv(20, 0, 1, "backup"),
            srv(10, 1, 2, "light"),
            srv(10, 1000, 3, "heavy"),
            srv(5, 0, 4, "."),
        ];
        let mut heavy_first = 0;
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let ordered = order_srv(records.clone(), &mut rng);
            let names: Vec<_> = ordered.iter().map(|r| r.target.as_str()).collect();
            assert_eq!(names.len(), 3, "the '.' record is dropped");
            assert_eq!(names[2], "backup");
            if names[0] == "heavy" {
                heavy_first += 1;
            }
        }
        // Weight 1000 against 1: the heavy target comes first nearly always, but not always
        // by construction (the draw is random).
        assert!(heavy_first > 180, "{heavy_first}");
    }

    #[test]
    fn zero_weights_all_get_a_turn() {
        let records = vec![srv(10, 0, 1, "a"), srv(10, 0, 2, "b")];
        let mut rng = StdRng::seed_from_u64(3);
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..50 {
            firsts.insert(order_srv(records.clone(), &mut rng)[0].target.clone());
        }
        assert_eq!(firsts.len(), 2);
    }
}
