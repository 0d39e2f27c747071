//! Whatever arrives from the network, the core neither panics nor loses its footing: thousands of
//! mangled copies of real messages (responses to our REGISTER, requests from the registrar) are
//! fed to a registered account, and afterwards it is still registered and still answers.

mod harness;
use harness::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;
use vicifast_core::RegistrationState;

/// Characters that mean something in SIP syntax: where parsers slip.
const SIGNIFICANT: &[u8] = b":;,<>\"\\\r\n =@[]%0123456789";

fn mangle(rng: &mut ChaCha8Rng, original: &[u8]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.gen_range(0..bytes.len());
        match rng.gen_range(0..6) {
            0 => bytes.truncate(at),
            1 => bytes[at] = rng.gen(),
            2 => bytes.insert(at, SIGNIFICANT[rng.gen_range(0..SIGNIFICANT.len())]),
            3 => {
                let end = (at + rng.gen_range(1..40)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                let _ = bytes.splice(at..at, copy);
            }
            4 => {
                let end = (at + rng.gen_range(1..20)).min(bytes.len());
                bytes.drain(at..end);
            }
            _ => {
                bytes.splice(at..at, b"99999999999999999999".iter().copied());
            }
        }
    }
    bytes
}

#[test]
fn mangled_messages_change_nothing_and_never_panic() {
    let mut sim = Sim::new(config(), "pw", FakeRegistrar::new("pw"));
    sim.register();
    assert_eq!(sim.last_status().state, RegistrationState::Registered);
    let req = sim
        .registers_sent()
        .last()
        .expect("a REGISTER")
        .text
        .clone();
    let contact = header(&req, "Contact").expect("our Contact");
    let call_id = header(&req, "Call-ID").expect("a Call-ID");
    let samples: Vec<Vec<u8>> = vec![
        response(&req, 200, &[format!("Contact: {contact}, <sip:other@198.18.9.9>;expires=60")])
            .into_bytes(),
        response(
            &req,
            401,
            &["WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", qop=\"auth,auth-int\", algorithm=SHA-256".into()],
        )
        .into_bytes(),
        response(&req, 423, &["Min-Expires: 3600".into()]).into_bytes(),
        b"OPTIONS sip:101@[2001:db8::1]:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKq1\r\n\
             From: <sip:registrar@198.18.0.1>;tag=a\r\nTo: <sip:101@198.18.0.2>\r\nCall-ID: q1\r\n\
             CSeq: 7 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            .to_vec(),
        format!(
            "INVITE sip:101@198.18.0.2:5060 SIP/2.0\r\nv: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKi1\r\n\
             f: \"Caller, \\\"A\\\"\" <sip:200@198.18.0.1>;tag=b\r\nt: <sip:101@198.18.0.2>\r\ni: {call_id}x\r\n\
             CSeq: 1 INVITE\r\nl: 3\r\n\r\nv=0"
        )
        .into_bytes(),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    for _ in 0..5_000 {
        let sample = &samples[rng.gen_range(0..samples.len())];
        let mangled = mangle(&mut rng, sample);
        sim.inject_bytes(REGISTRAR, &mangled);
    }
    // Whatever the mangled copies did (some are still valid answers), the account settles back
    // to registered, and a genuine request is still answered.
    sim.run_for(Duration::from_secs(120));
    assert_eq!(
        sim.last_status().state,
        RegistrationState::Registered,
        "{:#?}",
        sim.last_status()
    );
    let before = sim.sent.len();
    sim.inject_bytes(REGISTRAR, &samples[3]);
    assert!(
        sim.sent[before..]
            .iter()
            .any(|s| s.text.starts_with("SIP/2.0 200")),
        "OPTIONS unanswered after the storm"
    );
}
