//! The softphone's health is the agent's reachability: VICIfast checks it with OPTIONS at an
//! interval and on each incoming call, tells when it stops answering (one status change, not one
//! per check), answers incoming calls at once with 480 and a Reason while it cannot take them,
//! and ends a call it already relayed when the softphone dies or rings for too long.

mod edge_harness;
use edge_harness::*;
use std::time::Duration;
use vicifast_core::edge::{EdgeConfig, EdgeEvent, FixedContact, FromPbx, SoftphoneState};

fn invite(branch: &str) -> String {
    format!(
        "INVITE sip:101@198.18.1.2:40000;transport=udp;ob SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;rport;branch={branch}\r\nFrom: \"VICIdial\" <sip:8600051@198.18.0.1>;tag=v1\r\nTo: <sip:101@198.18.1.2;ob>\r\nContact: <sip:asterisk@198.18.0.1:5060>\r\nCall-ID: vd-{branch}\r\nCSeq: 2731 INVITE\r\nMax-Forwards: 70\r\nUser-Agent: Asterisk PBX 20.5.0\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Answers every health check the softphone got since the last call, as a running softphone.
fn answer_checks(sim: &mut EdgeSim, user_agent: &str) -> usize {
    let checks: Vec<String> = sim
        .take_softphone()
        .into_iter()
        .filter(|m| first_line(m).starts_with("OPTIONS "))
        .collect();
    for check in &checks {
        let ua = format!("User-Agent: {user_agent}");
        sim.softphone(&respond(check, 200, "OK", &[&ua], ""));
    }
    checks.len()
}

/// Moves time on until the next health check reaches the softphone; returns it.
fn next_check(sim: &mut EdgeSim) -> String {
    for _ in 0..200 {
        if let Some(at) = sim
            .to_softphone
            .iter()
            .position(|(_, m)| first_line(m).starts_with("OPTIONS "))
        {
            return sim.to_softphone.remove(at).1;
        }
        sim.advance(Duration::from_millis(100));
    }
    panic!("no check within 20 s")
}

fn refusals(sim: &EdgeSim) -> Vec<String> {
    sim.events
        .iter()
        .filter_map(|e| match e {
            EdgeEvent::CallRefused { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn checks_run_at_the_interval_and_a_silent_softphone_is_reported_once() {
    let mut sim = EdgeSim::registered();
    sim.advance(Duration::from_secs(15));
    assert_eq!(
        answer_checks(&mut sim, "baresip v1.0.0"),
        1,
        "one check at 15 s"
    );
    assert_eq!(sim.state(), SoftphoneState::Answering);
    assert_eq!(sim.status().user_agent.as_deref(), Some("baresip v1.0.0"));

    // The softphone quits: the next check goes unanswered (retransmitted at 0.5 s and 1.5 s).
    sim.advance(Duration::from_secs(15));
    assert_eq!(
        sim.state(),
        SoftphoneState::Answering,
        "still within the answer wait"
    );
    sim.advance(Duration::from_secs(2));
    assert_eq!(sim.state(), SoftphoneState::NotAnswering);
    let checks = sim.take_softphone();
    assert_eq!(checks.len(), 3, "the check and two retransmissions");
    assert!(checks.iter().all(|c| c == &checks[0]));
    let before = sim.statuses().len();
    sim.advance(Duration::from_secs(60));
    assert_eq!(
        sim.statuses().len(),
        before,
        "no new status while nothing changes"
    );
    assert_eq!(
        sim.statuses().last().unwrap().state,
        SoftphoneState::NotAnswering
    );

    // It comes back: the next answered check says so.
    sim.take_softphone();
    let check = next_check(&mut sim);
    sim.softphone(&respond(
        &check,
        200,
        "OK",
        &["User-Agent: baresip v1.0.0"],
        "",
    ));
    assert_eq!(sim.state(), SoftphoneState::Answering);
}

#[test]
fn a_call_for_a_softphone_that_does_not_answer_gets_480_at_once() {
    let mut sim = EdgeSim::registered();
    sim.advance(Duration::from_secs(18));
    assert_eq!(sim.state(), SoftphoneState::NotAnswering);
    sim.take_softphone();
    assert_eq!(sim.pbx(&invite("z9hG4bKPjv1")), FromPbx::Handled);
    let up = sim.take_pbx();
    assert_eq!(up.len(), 1);
    assert!(
        up[0].starts_with("SIP/2.0 480 Temporarily Unavailable\r\n"),
        "{}",
        up[0]
    );
    assert_eq!(
        header(&up[0], "Reason").as_deref(),
        Some("SIP;cause=480;text=\"softphone not answering\"")
    );
    assert!(sim.take_softphone().is_empty(), "nothing relayed");
    assert_eq!(refusals(&sim), vec!["softphone not answering"]);
}

#[test]
fn a_call_before_any_softphone_registered_gets_480_saying_so() {
    let mut sim = EdgeSim::new();
    assert_eq!(sim.pbx(&invite("z9hG4bKPjv2")), FromPbx::Handled);
    let up = sim.take_pbx();
    assert!(up[0].starts_with("SIP/2.0 480 "));
    assert!(header(&up[0], "Reason")
        .unwrap()
        .contains("not registered with VICIfast"));
}

#[test]
fn a_softphone_that_dies_while_a_call_rings_ends_the_call_at_once() {
    let mut sim = EdgeSim::registered();
    assert_eq!(sim.pbx(&invite("z9hG4bKPjv3")), FromPbx::Handled);
    let down = sim.take_softphone();
    assert_eq!(down.len(), 2, "the INVITE and a check sent with it");
    let relayed = down[0].clone();
    sim.softphone(&respond(&relayed, 180, "Ringing", &[], ""));
    sim.take_pbx();
    // The check sent with the call goes unanswered: the softphone is gone.
    sim.advance(Duration::from_secs(2));
    assert_eq!(sim.state(), SoftphoneState::NotAnswering);
    let up = sim.take_pbx();
    assert_eq!(up.len(), 1);
    assert!(up[0].starts_with("SIP/2.0 480 "));
    assert!(header(&up[0], "Reason").unwrap().contains("not answering"));
    let cancel = sim
        .take_softphone()
        .into_iter()
        .find(|m| first_line(m).starts_with("CANCEL "))
        .expect("a CANCEL to the softphone");
    assert_eq!(top_branch(&cancel), top_branch(&relayed));
    assert_eq!(refusals(&sim), vec!["softphone not answering"]);
}

#[test]
fn a_call_that_rings_past_the_invite_timeout_is_cancelled() {
    // Checks far apart, so that only the one sent with the call happens while it rings.
    let mut sim = EdgeSim::with_config(EdgeConfig {
        check_interval: Duration::from_secs(600),
        ..EdgeConfig::default()
    });
    sim.register_baresip();
    assert_eq!(sim.pbx(&invite("z9hG4bKPjc1")), FromPbx::Handled);
    let down = sim.take_softphone();
    let (relayed, check) = (down[0].clone(), down[1].clone());
    sim.softphone(&respond(&check, 200, "OK", &[], ""));
    sim.softphone(&respond(&relayed, 180, "Ringing", &[], ""));
    sim.take_pbx();
    // Alive, ringing, nobody picks up.
    sim.advance(Duration::from_secs(179));
    let early = sim.take_pbx();
    assert!(early.is_empty(), "{early:?}");
    sim.advance(Duration::from_secs(2));
    let up = sim.take_pbx();
    assert_eq!(
        up.len(),
        2,
        "the 408 at 180 s and its Timer G retransmission"
    );
    assert!(up[0].starts_with("SIP/2.0 408 Request Timeout\r\n"));
    assert_eq!(up[0], up[1]);
    assert!(sim
        .take_softphone()
        .iter()
        .any(|m| first_line(m).starts_with("CANCEL ")));
}

#[test]
fn unreachable_softphone_is_known_without_waiting() {
    let mut sim = EdgeSim::registered();
    sim.proxy
        .handle_softphone_unreachable(sim.now, udp(SOFTPHONE));
    sim.drain();
    assert_eq!(sim.state(), SoftphoneState::NotAnswering);
}

#[test]
fn a_softphone_without_registration_is_checked_and_called_at_its_configured_address() {
    let config = EdgeConfig {
        fixed_contact: Some(FixedContact::parse("sip:127.0.0.1:5062").unwrap()),
        ..EdgeConfig::default()
    };
    let mut sim = EdgeSim::with_config(config);
    assert_eq!(sim.state(), SoftphoneState::Checking);
    sim.advance(Duration::ZERO);
    let checks = sim.take_softphone();
    assert_eq!(checks.len(), 1);
    assert!(checks[0].starts_with("OPTIONS sip:101@127.0.0.1:5062 SIP/2.0\r\n"));
    sim.softphone(&respond(
        &checks[0],
        200,
        "OK",
        &["User-Agent: Linphone/5.2"],
        "",
    ));
    assert_eq!(sim.state(), SoftphoneState::Answering);
    assert_eq!(sim.status().user_agent.as_deref(), Some("Linphone/5.2"));

    assert_eq!(sim.pbx(&invite("z9hG4bKPjf1")), FromPbx::Handled);
    let (to, relayed) = sim.to_softphone.remove(0);
    assert_eq!(to, udp(SOFTPHONE));
    assert!(relayed.starts_with("INVITE sip:101@127.0.0.1:5062 SIP/2.0\r\n"));
}
