//! Proves the Kamailio harness itself, without vicifast-cli: sipsak registers with a right and a
//! wrong generated password, the registrar lists (or does not list) the binding, counts the
//! REGISTERs, reaches a registered UDP contact with OPTIONS (200) and INVITE (480), forgets
//! bindings on restart, and serves TLS with a certificate the generated CA verifies.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;
use vicifast_e2e::{random_extension, random_password, Registrar, RegistrarOptions};

fn sipsak() -> std::path::PathBuf {
    ["/usr/bin/sipsak", "/usr/local/bin/sipsak"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
        .expect("sipsak not found: run `make test`, which installs it")
}

/// One sipsak REGISTER (with digest when challenged) of `contact` for `ext` over UDP.
fn sipsak_register(registrar: &Registrar, ext: &str, password: &str, contact: &str) {
    // sipsak's exit code and output are unreliable across modes; the registrar is the judge.
    let _ = Command::new(sipsak())
        .args(["-U", "-s", &format!("sip:{ext}@127.0.0.1")])
        .args(["-r", &registrar.udp_port().to_string()])
        .args([
            "-u", ext, "-a", password, "-E", "udp", "-C", contact, "-x", "60",
        ])
        .output()
        .expect("run sipsak");
}

#[test]
fn right_password_registers_and_wrong_one_does_not() {
    let registrar = Registrar::start(RegistrarOptions::default()).expect("registrar");
    let ext = random_extension();
    let password = registrar.add_user(&ext).expect("add user");

    sipsak_register(
        &registrar,
        &ext,
        &random_password(),
        "sip:wrong@127.0.0.1:45111",
    );
    assert!(registrar.bindings(&ext).expect("bindings").is_empty());
    let attempts = registrar.register_attempts(&ext);
    assert_eq!(attempts.len(), 2, "{attempts:?}\n{}", registrar.log_tail());
    assert!(!attempts[0].authorized && attempts[1].authorized);

    let contact = format!("sip:{ext}@127.0.0.1:45112");
    sipsak_register(&registrar, &ext, &password, &contact);
    let bindings = registrar.bindings(&ext).expect("bindings");
    assert_eq!(bindings.len(), 1, "{bindings:?}\n{}", registrar.log_tail());
    assert_eq!(bindings[0].uri, contact);
    assert!(bindings[0].expires.is_some_and(|e| e > 0 && e <= 60));
    assert_eq!(
        bindings[0].socket.as_deref(),
        Some(format!("udp:127.0.0.1:{}", registrar.udp_port()).as_str())
    );
    assert_eq!(registrar.register_count(&ext), 4);
}

#[test]
fn unknown_user_is_challenged_and_not_bound() {
    let registrar = Registrar::start(RegistrarOptions::default()).expect("registrar");
    let ext = random_extension();
    sipsak_register(
        &registrar,
        &ext,
        &random_password(),
        &format!("sip:{ext}@127.0.0.1:45113"),
    );
    assert!(registrar.bindings(&ext).expect("bindings").is_empty());
    assert!(registrar.register_count(&ext) >= 1);
}

/// Answers one OPTIONS with 200 and one INVITE with 480, as a registered phone that takes no
/// calls would; returns the source address of each request.
fn answer_two_requests(socket: UdpSocket) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut sources = Vec::new();
        let mut buf = [0u8; 65535];
        while sources.len() < 2 {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                break;
            };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let method = text
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            if method == "ACK" {
                continue;
            }
            sources.push(format!("{method} from {from}"));
            let status = if method == "OPTIONS" {
                "200 OK"
            } else {
                "480 Temporarily Unavailable"
            };
            let mut reply = format!("SIP/2.0 {status}\r\n");
            for line in text.lines() {
                let name = line
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if ["via", "from", "call-id", "cseq"].contains(&name.as_str()) {
                    reply.push_str(&format!("{line}\r\n"));
                } else if name == "to" {
                    reply.push_str(&format!("{line};tag=harness\r\n"));
                }
            }
            reply.push_str("Content-Length: 0\r\n\r\n");
            socket.send_to(reply.as_bytes(), from).expect("send reply");
        }
        sources
    })
}

#[test]
fn registrar_reaches_a_registered_udp_contact() {
    let registrar = Registrar::start(RegistrarOptions::default()).expect("registrar");
    let ext = random_extension();
    let password = registrar.add_user(&ext).expect("add user");
    let phone = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let contact = format!("sip:{ext}@{}", phone.local_addr().expect("addr"));
    sipsak_register(&registrar, &ext, &password, &contact);
    assert_eq!(
        registrar.bindings(&ext).expect("bindings").len(),
        1,
        "{}",
        registrar.log_tail()
    );

    let answers = answer_two_requests(phone);
    // sipsak sends from another port than the contact, so aim at the contact, not the source.
    let options = registrar.send_request_to_contact("OPTIONS", &contact);
    assert_eq!(options.expect("OPTIONS"), 200);
    let invite = registrar.send_request_to_contact("INVITE", &contact);
    assert_eq!(invite.expect("INVITE"), 480);
    let sources = answers.join().expect("responder");
    let from = format!("from 127.0.0.1:{}", registrar.udp_port());
    assert!(sources.iter().all(|s| s.ends_with(&from)), "{sources:?}");
}

#[test]
fn silent_contact_gives_408() {
    let registrar = Registrar::start(RegistrarOptions::default()).expect("registrar");
    let ext = random_extension();
    let password = registrar.add_user(&ext).expect("add user");
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let contact = format!("sip:{ext}@{}", silent.local_addr().expect("addr"));
    sipsak_register(&registrar, &ext, &password, &contact);
    let options = registrar.send_request_to_contact("OPTIONS", &contact);
    assert_eq!(options.expect("OPTIONS"), 408);
    drop(silent);
}

#[test]
fn restart_forgets_bindings_but_keeps_users() {
    let mut registrar = Registrar::start(RegistrarOptions::default()).expect("registrar");
    let ext = random_extension();
    let password = registrar.add_user(&ext).expect("add user");
    let contact = format!("sip:{ext}@127.0.0.1:45114");
    sipsak_register(&registrar, &ext, &password, &contact);
    assert_eq!(registrar.bindings(&ext).expect("bindings").len(), 1);

    registrar.restart().expect("restart");
    assert!(registrar.bindings(&ext).expect("bindings").is_empty());
    sipsak_register(&registrar, &ext, &password, &contact);
    assert_eq!(
        registrar.bindings(&ext).expect("bindings").len(),
        1,
        "{}",
        registrar.log_tail()
    );
}

#[test]
fn tls_certificate_verifies_against_the_ca_file() {
    let registrar = Registrar::start(RegistrarOptions::default()).expect("registrar");
    for name in ["-verify_ip", "-verify_hostname"] {
        let value = if name == "-verify_ip" {
            "127.0.0.1"
        } else {
            "localhost"
        };
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{}", registrar.tls_port()),
            ])
            .arg("-CAfile")
            .arg(registrar.ca_file())
            .args([name, value, "-verify_return_error", "-brief"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl s_client");
        assert!(
            out.status.success(),
            "{name} {value}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn ipv6_registrar_listens_on_loopback_v6() {
    if UdpSocket::bind("[::1]:0").is_err() {
        vicifast_e2e::skip::skipped(
            "ipv6_registrar_listens_on_loopback_v6",
            "no IPv6 loopback on this machine",
        );
        return;
    }
    let registrar = Registrar::start(RegistrarOptions {
        ipv6: true,
        ..RegistrarOptions::default()
    })
    .expect("registrar");
    // sipsak has no IPv6: probe with a hand-made OPTIONS.
    let probe = UdpSocket::bind("[::1]:0").expect("bind");
    let local = probe.local_addr().expect("addr");
    let port = registrar.udp_port();
    let options = format!(
        "OPTIONS sip:[::1]:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-v6probe;rport\r\n\
         From: <sip:probe@[::1]>;tag=p1\r\nTo: <sip:[::1]:{port}>\r\nCall-ID: v6probe\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    probe
        .send_to(options.as_bytes(), ("::1", port))
        .expect("send");
    probe
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    let (n, _) = probe.recv_from(&mut buf).expect("an answer from [::1]");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(
        text.starts_with("SIP/2.0 200"),
        "{text}\n{}",
        registrar.log_tail()
    );
}

#[test]
fn max_contacts_variant_starts() {
    let registrar = Registrar::start(RegistrarOptions {
        max_contacts: Some(1),
        ..RegistrarOptions::default()
    })
    .expect("registrar");
    let config = std::fs::read_to_string(registrar.dir().join("kamailio.cfg")).expect("cfg");
    assert!(config.contains("modparam(\"registrar\", \"max_contacts\", 1)"));
    let ext = random_extension();
    let password = registrar.add_user(&ext).expect("add user");
    sipsak_register(
        &registrar,
        &ext,
        &password,
        &format!("sip:{ext}@127.0.0.1:45115"),
    );
    sipsak_register(
        &registrar,
        &ext,
        &password,
        &format!("sip:{ext}@127.0.0.1:45116"),
    );
    let bindings = registrar.bindings(&ext).expect("bindings");
    assert_eq!(bindings.len(), 1, "{bindings:?}\n{}", registrar.log_tail());
}
