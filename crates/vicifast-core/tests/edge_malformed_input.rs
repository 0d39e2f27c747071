//! Whatever the softphone listener or the PBX flow delivers, the edge proxy neither panics nor
//! sends anything anywhere but the PBX flow and loopback, and its tables stay bounded: thousands
//! of mangled copies of real messages from both sides, a flood of INVITEs, forged responses.

mod edge_harness;
use edge_harness::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;
use vicifast_core::edge::FromPbx;

/// Line-level damage: what a broken or hostile peer sends, rather than random bit flips.
fn damage(rng: &mut ChaCha8Rng, original: &str) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = original
        .split("\r\n")
        .map(|l| l.as_bytes().to_vec())
        .collect();
    for _ in 0..rng.gen_range(1..=3) {
        let which = rng.gen_range(0..lines.len());
        let line = &mut lines[which];
        match rng.gen_range(0..8) {
            0 => {
                lines.remove(which);
            }
            1 => {
                let copy = line.clone();
                lines.insert(which, copy);
            }
            2 => line.truncate(rng.gen_range(0..=line.len())),
            3 => line.extend_from_slice(b";branch=z9hG4bKvfp, <sip:@>;;=,\""),
            4 => {
                let at = rng.gen_range(0..=line.len());
                line.insert(at, [0u8, b'\r', 0xff, b'\n', b' '][rng.gen_range(0..5)]);
            }
            5 => line.extend_from_slice(b"99999999999999999999999"),
            6 => *line = b"Content-Length: 4294967296".to_vec(),
            _ => {
                let other = rng.gen_range(0..lines.len());
                lines.swap(which, other);
            }
        }
        if lines.is_empty() {
            break;
        }
    }
    lines.join(&b"\r\n"[..])
}

fn samples() -> (Vec<String>, Vec<String>) {
    let sdp = loopback_sdp();
    let from_softphone = vec![
        baresip_register("z9hG4bKm1"),
        format!("INVITE sip:8600051@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bKm2\r\nRoute: <sip:127.0.0.1:5070;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:101@example.test>;tag=a\r\nTo: <sip:8600051@example.test>\r\nCall-ID: m2\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len()),
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKvfsabc;rport\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: m3\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n".to_owned(),
    ];
    let from_pbx = vec![
        format!("INVITE sip:101@198.18.1.2:40000 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKp1\r\nRecord-Route: <sip:198.18.0.1;lr>\r\nFrom: <sip:200@example.test>;tag=c\r\nTo: <sip:101@example.test>\r\nCall-ID: p1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{}", pbx_sdp().len(), pbx_sdp()),
        "CANCEL sip:101@198.18.1.2:40000 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKp1\r\nFrom: <sip:200@example.test>;tag=c\r\nTo: <sip:101@example.test>\r\nCall-ID: p1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n".to_owned(),
        "SIP/2.0 407 Proxy Authentication Required\r\nVia: SIP/2.0/UDP 198.18.1.2:40000;branch=z9hG4bKvfpabc;rport=40000\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKm2\r\nFrom: <sip:101@example.test>;tag=a\r\nTo: <sip:8600051@example.test>;tag=z\r\nCall-ID: m2\r\nCSeq: 1 INVITE\r\nProxy-Authenticate: Digest realm=\"x\", nonce=\"y\"\r\nContent-Length: 0\r\n\r\n".to_owned(),
    ];
    (from_softphone, from_pbx)
}

#[test]
fn mangled_messages_from_both_sides_never_panic_or_escape() {
    let mut sim = EdgeSim::registered();
    let (from_softphone, from_pbx) = samples();
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    for round in 0..3000 {
        let damaged = damage(&mut rng, &from_softphone[round % from_softphone.len()]);
        sim.proxy
            .handle_softphone_receive(sim.now, udp(SOFTPHONE), &damaged);
        let damaged = damage(&mut rng, &from_pbx[round % from_pbx.len()]);
        let _ = sim
            .proxy
            .handle_pbx_receive(sim.now, sim.flow.flow, sim.flow.remote, &damaged);
        sim.drain();
        if round % 100 == 0 {
            sim.advance(Duration::from_millis(700));
        }
        assert!(sim.proxy.transactions_in_progress() <= 256);
    }
    assert!(sim
        .to_pbx
        .iter()
        .all(|(flow, to, _)| *flow == sim.flow.flow && *to == addr(PBX)));
    // Still working afterwards.
    sim.advance(Duration::from_secs(60));
    sim.to_pbx.clear();
    sim.register_baresip();
    let (from_softphone, _) = samples();
    sim.softphone(&from_softphone[1].replace("z9hG4bKm2", "z9hG4bKafter"));
    assert_eq!(sim.take_pbx().len(), 1);
}

#[test]
fn garbage_is_dropped_silently() {
    let mut sim = EdgeSim::new();
    for junk in [
        &b""[..],
        b"\r\n",
        b"\0\0\0\0",
        b"INVITE",
        b"SIP/2.0 200 OK\r\n\r\n",
        b"INVITE sip:x SIP/2.0\r\n\r\n",
        &[0xff; 2000],
    ] {
        sim.proxy
            .handle_softphone_receive(sim.now, udp(SOFTPHONE), junk);
        assert_eq!(
            sim.proxy
                .handle_pbx_receive(sim.now, sim.flow.flow, sim.flow.remote, junk),
            FromPbx::ForRegistration,
            "the registration decides about what is not a relayable message"
        );
        sim.drain();
    }
    assert!(sim.to_pbx.is_empty());
    assert!(sim.to_softphone.is_empty());
}

#[test]
fn an_invite_flood_is_capped_and_forgotten() {
    let mut sim = EdgeSim::registered();
    let before = sim.proxy.transactions_in_progress();
    let mut refused = 0;
    for i in 0..1000 {
        let invite = format!(
            "INVITE sip:101@198.18.1.2:40000 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKflood{i}\r\nFrom: <sip:200@example.test>;tag=f{i}\r\nTo: <sip:101@example.test>\r\nCall-ID: flood-{i}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(sim.pbx(&invite), FromPbx::Handled);
        refused += sim
            .take_pbx()
            .iter()
            .filter(|m| m.starts_with("SIP/2.0 503 "))
            .count();
        assert!(sim.proxy.transactions_in_progress() <= 256);
    }
    assert_eq!(refused, 1000 - (256 - before));
    sim.to_softphone.clear();
    sim.advance(Duration::from_secs(300));
    assert_eq!(sim.proxy.transactions_in_progress(), 0);
}

#[test]
fn responses_that_are_not_to_our_requests_are_dropped() {
    let mut sim = EdgeSim::registered();
    // From the softphone: a branch that is not ours, and one of ours sent toward the PBX.
    for branch in ["z9hG4bKnotours", "z9hG4bKvfpforged"] {
        sim.softphone(&format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: f\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
        ));
    }
    assert!(sim.to_pbx.is_empty());
}
