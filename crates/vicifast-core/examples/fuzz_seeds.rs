//! Builds the fuzzers' seed corpora (`fuzz/corpus/<target>/`) from real captures
//! (`fuzz/captures/*.sip`, written by the e2e crate's `sip_captures` against Kamailio).
//!
//! - `message`: every captured message as it is;
//! - `challenge`: every captured `WWW-Authenticate` value, as a 401's and as a 407's;
//! - `registration`: per transport and purpose, the registrar's captured answers replayed as
//!   answers to the core's own requests (401 with Kamailio's challenge, 200 with its headers),
//!   then refreshes, Kamailio's OPTIONS, INVITE and ACK, network changes, a broken flow, and stop;
//! - `stream`: Kamailio's captured messages over TCP back to back, in reads of two sizes;
//! - `edge`: a captured REGISTER from the softphone side, Kamailio's OPTIONS and INVITE from the
//!   PBX side, answers echoed back, and time passing.
//!
//! Usage: `cargo run -p vicifast-core --example fuzz_seeds [captures dir] [corpus dir]`
//! (defaults `fuzz/captures`, `fuzz/corpus`).

use std::path::PathBuf;
use vicifast_core::fuzzing::{Setup, Step};
use vicifast_core::{FlowErrorKind, Transport};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let captures = PathBuf::from(args.next().unwrap_or_else(|| "fuzz/captures".into()));
    let corpus = PathBuf::from(args.next().unwrap_or_else(|| "fuzz/corpus".into()));
    let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&captures)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        messages.push((name, std::fs::read(&path)?));
    }
    let find = |transport: &str, label: &str| -> Vec<u8> {
        messages
            .iter()
            .find(|(n, _)| n.starts_with(transport) && n.ends_with(label))
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    };

    let mut written = 0;
    let mut write = |target: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes)?;
        written += 1;
        Ok(())
    };

    for (name, bytes) in &messages {
        write("message", name, bytes)?;
        for value in header_values(bytes, "WWW-Authenticate") {
            for (flag, kind) in [(0u8, "401"), (1, "407")] {
                let mut seed = vec![flag];
                seed.extend_from_slice(value.as_bytes());
                write("challenge", &format!("{name}-{kind}"), &seed)?;
            }
        }
    }

    for (transport_name, transport) in [
        ("udp", Transport::Udp),
        ("tcp", Transport::Tcp),
        ("tls", Transport::Tls),
    ] {
        // TLS was not captured: Kamailio says the same over it as over TCP.
        let capture = if transport_name == "tls" {
            "tcp"
        } else {
            transport_name
        };
        let challenge = find(capture, "received-401");
        let granted = find(capture, "received-200");
        let options = find(capture, "received-OPTIONS");
        let invite = find(capture, "received-INVITE");
        let ack = find(capture, "received-ACK");
        let challenge_extra = headers_except_dialog(&challenge);
        let granted_extra = headers_except_dialog(&granted);
        let contact_line = header_lines(&granted, "Contact").join("");
        for purpose in 0..3u8 {
            let setup = Setup {
                transport,
                purpose,
                accept_requests_from_anyone: false,
                outbound_proxy: false,
            };
            let mut steps = vec![
                Step::Answer {
                    code: 401,
                    contact_expires: None,
                    extra: challenge_extra.clone(),
                },
                Step::Answer {
                    code: 200,
                    contact_expires: (purpose == 0).then_some(60),
                    extra: if purpose == 0 {
                        granted_extra.clone()
                    } else {
                        [granted_extra.clone(), contact_line.clone().into_bytes()].concat()
                    },
                },
            ];
            if purpose == 0 {
                steps.extend([
                    Step::FromRegistrar(options.clone()),
                    Step::FromRegistrar(invite.clone()),
                    Step::FromRegistrar(ack.clone()),
                    Step::NextTimer,
                    Step::Answer {
                        code: 200,
                        contact_expires: Some(60),
                        extra: granted_extra.clone(),
                    },
                    Step::Wait(30_000),
                ]);
            }
            steps.push(Step::Stop);
            steps.push(Step::Answer {
                code: 200,
                contact_expires: None,
                extra: granted_extra.clone(),
            });
            let name = format!("{transport_name}-purpose{purpose}-register-refresh-stop");
            write("registration", &name, &encode(setup, &steps))?;
        }
        // Mobility and failures on the same answers.
        let setup = Setup {
            transport,
            purpose: 0,
            accept_requests_from_anyone: false,
            outbound_proxy: transport_name == "tcp",
        };
        let answer_ok = |expires| Step::Answer {
            code: 200,
            contact_expires: Some(expires),
            extra: granted_extra.clone(),
        };
        let answer_challenge = Step::Answer {
            code: 401,
            contact_expires: None,
            extra: challenge_extra.clone(),
        };
        let steps = vec![
            answer_challenge.clone(),
            answer_ok(60),
            Step::NetworkChanged(Some(1)),
            answer_challenge.clone(),
            answer_ok(60),
            Step::FlowBroke(FlowErrorKind::Closed),
            Step::NextTimer,
            Step::NextTimer,
            answer_ok(1),
            Step::NetworkChanged(None),
            Step::Wait(20_000),
            Step::NetworkChanged(Some(2)),
            answer_ok(4_294_967_295),
            Step::Resumed,
            Step::RefuseFlows(Some(FlowErrorKind::Refused)),
            Step::FlowBroke(FlowErrorKind::Other),
            Step::Wait(600_000),
            Step::RefuseFlows(None),
            Step::RetryNow,
            answer_ok(60),
        ];
        write(
            "registration",
            &format!("{transport_name}-network-changes-and-failures"),
            &encode(setup, &steps),
        )?;
        let steps = vec![
            Step::Answer {
                code: 503,
                contact_expires: None,
                extra: b"Retry-After: 120\r\n".to_vec(),
            },
            Step::NextTimer,
            Step::Answer {
                code: 423,
                contact_expires: None,
                extra: b"Min-Expires: 3600\r\n".to_vec(),
            },
            answer_challenge.clone(),
            Step::Answer {
                code: 401,
                contact_expires: None,
                extra: [b"WWW-Authenticate: Digest realm=\"vicifast.test\", nonce=\"n2\", stale=true, algorithm=SHA-256, qop=\"auth\"\r\n".as_slice()].concat(),
            },
            Step::Answer {
                code: 302,
                contact_expires: None,
                extra: b"Contact: <sip:101@198.18.0.7:5060>\r\n".to_vec(),
            },
            Step::SetPassword,
            Step::ResolveFails(true),
            Step::Wait(3_000_000),
            Step::ResolveFails(false),
            Step::Wait(3_000_000),
            answer_challenge,
            answer_ok(60),
        ];
        write(
            "registration",
            &format!("{transport_name}-server-errors"),
            &encode(setup, &steps),
        )?;
    }

    // The edge proxy: a REGISTER from the softphone, requests from the PBX, answers echoed.
    let register = find("udp", "sent-REGISTER");
    let options = find("udp", "received-OPTIONS");
    let invite = find("udp", "received-INVITE");
    let ack = find("udp", "received-ACK");
    let mut edge = vec![0u8];
    edge_op(&mut edge, 0, &register);
    edge_op(&mut edge, 2, &options);
    edge_op(&mut edge, 2, &invite);
    edge.push(4); // the softphone answers what was relayed to it
    edge_op(&mut edge, 1, b"200 OK");
    edge_op(&mut edge, 2, &ack);
    edge.push(5);
    edge.extend_from_slice(&[6, 0x60, 0xea, 0, 0]); // 60 s
    edge_op(&mut edge, 0x13, &register); // the same over TCP (op 1 with the TCP bit)
    write("edge", "udp-register-options-invite", &edge)?;
    let mut edge = vec![1u8];
    edge_op(&mut edge, 0, &invite); // the softphone calls out
    edge.push(4); // the PBX answers
    edge_op(&mut edge, 0, b"180 Ringing");
    edge.extend_from_slice(&[7, 3]); // a new flow, public address
    edge_op(&mut edge, 2, &invite);
    edge.extend_from_slice(&[8, 1]);
    write("edge", "udp-call-out-and-flow-change", &edge)?;

    // The engine's stream framer: Kamailio's answers and requests over TCP back to back, with
    // a ping and a pong between them, arriving in reads of 200 bytes, then of 7.
    let mut stream = Vec::new();
    for label in [
        "received-401",
        "received-200",
        "received-OPTIONS",
        "received-INVITE",
        "received-ACK",
    ] {
        stream.extend_from_slice(&find("tcp", label));
        stream.extend_from_slice(b"\r\n\r\n");
    }
    stream.extend_from_slice(b"\r\n");
    for read in [200u8, 7] {
        let mut seed = Vec::new();
        for chunk in stream.chunks(usize::from(read)) {
            seed.push(u8::try_from(chunk.len()).unwrap_or(read));
            seed.extend_from_slice(chunk);
        }
        write("stream", &format!("tcp-kamailio-reads-of-{read}"), &seed)?;
    }

    println!("{written} seeds written under {}", corpus.display());
    Ok(())
}

fn encode(setup: Setup, steps: &[Step]) -> Vec<u8> {
    let mut out = vec![setup.encode(), 0];
    for step in steps {
        step.encode(&mut out);
    }
    out
}

/// An edge step that carries bytes: the op byte (with its flag bits), a u16 length, the bytes.
fn edge_op(out: &mut Vec<u8>, op: u8, bytes: &[u8]) {
    out.push(op);
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&bytes[..usize::from(len)]);
}

fn head(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

fn header_lines(bytes: &[u8], name: &str) -> Vec<String> {
    head(bytes)
        .split("\r\n")
        .skip(1)
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        })
        .map(|l| format!("{l}\r\n"))
        .collect()
}

fn header_values(bytes: &[u8], name: &str) -> Vec<String> {
    header_lines(bytes, name)
        .iter()
        .filter_map(|l| l.split_once(':').map(|(_, v)| v.trim().to_owned()))
        .collect()
}

/// The header lines a registrar adds of its own (challenge, Server, Supported…): everything but
/// what [`Step::Answer`] copies from the request, the Contact list and Content-Length.
fn headers_except_dialog(bytes: &[u8]) -> Vec<u8> {
    const COPIED: [&str; 7] = [
        "via",
        "from",
        "to",
        "call-id",
        "cseq",
        "contact",
        "content-length",
    ];
    head(bytes)
        .split("\r\n")
        .skip(1)
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| !COPIED.contains(&n.trim().to_ascii_lowercase().as_str()))
        })
        .flat_map(|l| format!("{l}\r\n").into_bytes())
        .collect()
}
