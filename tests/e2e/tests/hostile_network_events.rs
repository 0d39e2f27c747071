//! Issue 8, case 4: network events must not undo the backoff. While the registrar refuses every
//! connection, 40 default-route changes (Wi-Fi and wired in turn, both keeping their addresses,
//! as VPNs, containers and IPv6 router advertisements do all day) may pull one attempt forward,
//! then the backoff applies again: before the fix, 40 changes in 10 s gave 80 connection
//! attempts.
//!
//! Real network namespaces (needs root; skipped with a message otherwise). The registrar's
//! namespace has nothing listening on the SIP port, so the kernel refuses each connection;
//! nftables counts the SYNs that reach it.

use std::time::Duration;
use vicifast_e2e::netns::{
    cli_path, generate_password, have_root, CliClient, ClientOptions, Link, NetnsError, Topology,
    TopologyOptions, REGISTRAR_ADDR,
};

/// Route changes, and the pause between them (the stimulus' rhythm, not a synchronisation).
const CHANGES: usize = 40;
const BETWEEN_CHANGES: Duration = Duration::from_millis(250);
const WAIT: Duration = Duration::from_secs(30);

fn syn_count(topo: &Topology) -> Result<u64, NetnsError> {
    let listing = topo
        .reg()
        .exec("nft", ["list", "chain", "inet", "vfsyn", "count"])?;
    Ok(listing
        .split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

#[test]
fn route_flapping_does_not_undo_the_backoff() -> Result<(), NetnsError> {
    let test = "route_flapping_does_not_undo_the_backoff";
    if !have_root(test) {
        return Ok(());
    }
    let mut topo = Topology::new(TopologyOptions {
        tag: "flap".into(),
        ..TopologyOptions::default()
    })?;
    topo.reg().exec(
        "nft",
        ["add table inet vfsyn; \
          add chain inet vfsyn count { type filter hook input priority -10; }; \
          add rule inet vfsyn count tcp dport 5060 tcp flags & (syn | ack) == syn counter"],
    )?;
    let mut options = ClientOptions::new(cli_path(), "2004", &generate_password()?);
    options.transport = "tcp".into();
    options.registrar = format!("{REGISTRAR_ADDR}:5060");
    options.extra_args = ["--backoff-base", "30"].map(String::from).to_vec();
    let mut client = CliClient::start(topo.cli(), &options)?;

    // The first attempt is refused; the backoff (at least 30 s) starts.
    let retrying = client.wait_for("retrying after a refused connection", WAIT, |s| {
        s.state == "retrying"
    })?;
    let before = syn_count(&topo)?;

    for i in 0..CHANGES {
        let to = if i % 2 == 0 { Link::Wired } else { Link::Wifi };
        topo.switch_default_route(to, false)?;
        std::thread::park_timeout(BETWEEN_CHANGES);
    }
    let during = syn_count(&topo)? - before;
    let window = BETWEEN_CHANGES * CHANGES as u32;
    println!(
        "hostile-figure case=4-route-flapping changes={CHANGES} window_s={:.1} \
         connection_attempts={during} attempts_before_flapping={before} \
         attempts_per_min={:.1}",
        window.as_secs_f64(),
        during as f64 * 60.0 / window.as_secs_f64()
    );
    // One attempt pulled forward by the changes; its failure brings a longer wait, which no
    // later change may cut short. (Without the rule: two per change.)
    assert!(
        during <= 2,
        "{during} connection attempts during {CHANGES} route changes (before them: {before}); \
         first retry status: {:?}\n{}",
        retrying.raw,
        client.stderr_tail()
    );
    client.drain();
    assert!(
        client.history().iter().all(|s| s.state != "registered"),
        "registered with a refusing registrar?"
    );
    Ok(())
}
