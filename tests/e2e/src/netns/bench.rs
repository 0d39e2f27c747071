//! One run of the mobility benchmark: a fresh topology and registrar, one client, one network
//! change, and the time from that change to the registrar saving the client's new binding.
//!
//! Both instants are CLOCK_REALTIME: the harness stamps the change just before handing it to the
//! kernel, and Kamailio stamps `save()` with `$TV(Sn)` (microseconds). Process start-up and
//! registrar readiness are outside the measured interval.

use super::baresip::Baresip;
use super::client::{CliClient, ClientOptions};
use super::registrar::{NsRegistrar, RegistrarOptions};
use super::scenario::{cli_path, USER};
use super::{
    generate_password, realtime_secs, wait_until, Link, NetnsError, Result, Topology,
    TopologyOptions,
};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchClient {
    Vicifast,
    Baresip,
}

impl BenchClient {
    pub fn name(self) -> &'static str {
        match self {
            BenchClient::Vicifast => "vicifast",
            BenchClient::Baresip => "baresip",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchScenario {
    /// Scenario 1: default route Wi-Fi → wired, Wi-Fi address removed.
    RouteSwitch,
    /// Scenario 2: new address on the Wi-Fi link, old one removed.
    AddressChange,
}

impl BenchScenario {
    pub fn name(self) -> &'static str {
        match self {
            BenchScenario::RouteSwitch => "route switch, old address removed",
            BenchScenario::AddressChange => "address change on the same link",
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Trial {
    /// Change → registrar saved the new contact, in milliseconds.
    pub latency_ms: f64,
    /// A binding other than the new contact was still held a moment after the new one was saved.
    pub stale_left: bool,
}

/// Registration lifetime for both clients: long enough that no ordinary refresh falls inside a
/// run, so what is measured is the reaction to the change and stale bindings cannot expire away.
const EXPIRES: u32 = 300;
/// How long after the new binding a stale one counts as "left" rather than "being removed".
const STALE_GRACE: Duration = Duration::from_secs(2);

/// Runs one trial. `phase` is how long to wait after registering before the change (baresip
/// polls the network every 60 s, so a random phase samples its whole cycle); `limit` bounds the
/// wait for the new binding.
pub fn run_trial(
    client: BenchClient,
    scenario: BenchScenario,
    phase: Duration,
    limit: Duration,
) -> Result<Trial> {
    let mut topo = Topology::new(TopologyOptions {
        tag: format!("b{}", client.name().chars().next().unwrap_or('x')),
        ..TopologyOptions::default()
    })?;
    let password = generate_password()?;
    let registrar = NsRegistrar::start(&topo, &RegistrarOptions::default(), USER, &password)?;
    let old = topo
        .client_addr(Link::Wifi)
        .map(|a| a.to_string())
        .unwrap_or_default();

    // Held until the end of the run; dropped before the registrar and the topology.
    let mut _vicifast = None;
    let mut _baresip = None;
    match client {
        BenchClient::Vicifast => {
            let mut opts = ClientOptions::new(cli_path(), USER, &password);
            opts.expires = Some(EXPIRES);
            _vicifast = Some(CliClient::start(topo.cli(), &opts)?);
        }
        BenchClient::Baresip => {
            let dir = topo.dir().join("baresip");
            _baresip = Some(Baresip::start(
                topo.cli(),
                &dir,
                USER,
                &password,
                super::REGISTRAR_ADDR,
                EXPIRES,
            )?);
        }
    }
    let registered = wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        registrar
            .bindings()
            .ok()?
            .iter()
            .any(|b| b.reaches(&old))
            .then_some(())
    });
    if registered.is_none() {
        let output = _baresip
            .as_ref()
            .map(Baresip::output_tail)
            .unwrap_or_default();
        return Err(NetnsError::Timeout {
            what: format!("{} to register from {old}", client.name()),
            waited: Duration::from_secs(30),
            last: format!("{}\n{}", registrar.log_tail(), output),
        });
    }
    std::thread::sleep(phase);

    let changed = match scenario {
        BenchScenario::RouteSwitch => topo.switch_default_route(Link::Wired, true)?,
        BenchScenario::AddressChange => topo.change_address(Link::Wifi)?,
    };
    let new = match scenario {
        BenchScenario::RouteSwitch => topo.client_addr(Link::Wired),
        BenchScenario::AddressChange => topo.client_addr(Link::Wifi),
    }
    .map(|a| a.to_string())
    .unwrap_or_default();
    let changed_at = realtime_secs(changed);
    let saved = wait_until(limit, Duration::from_millis(20), || {
        registrar
            .saves()
            .into_iter()
            .find(|e| e.at >= changed_at && e.adds(&new))
    })
    .ok_or_else(|| NetnsError::Timeout {
        what: format!("{} to save a binding on {new}", client.name()),
        waited: limit,
        last: registrar.log_tail(),
    })?;
    // Part of the definition of "stale left", not synchronisation: a client that removes the old
    // binding right after adding the new one gets this long to do it.
    std::thread::sleep(STALE_GRACE);
    let bindings = registrar.bindings()?;
    let stale_left = bindings.iter().any(|b| !b.reaches(&new));
    Ok(Trial {
        latency_ms: (saved.at - changed_at) * 1000.0,
        stale_left,
    })
}

/// Nearest-rank percentiles over successful runs.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

pub fn summarize(latencies: &[f64]) -> Option<Summary> {
    if latencies.is_empty() {
        return None;
    }
    let mut v = latencies.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let idx = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[idx.clamp(1, v.len()) - 1]
    };
    Some(Summary {
        p50: rank(50.0),
        p95: rank(95.0),
        max: v[v.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::summarize;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = summarize(&v).expect("non-empty");
        assert_eq!((s.p50, s.p95, s.max), (10.0, 19.0, 20.0));
        assert!(summarize(&[]).is_none());
        let one = summarize(&[7.0]).expect("non-empty");
        assert_eq!((one.p50, one.p95, one.max), (7.0, 7.0, 7.0));
    }
}
