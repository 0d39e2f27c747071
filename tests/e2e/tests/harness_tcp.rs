//! Proves the harness reaches a TCP contact over the client's own connection: a hand-made phone
//! registers over one TCP connection (digest auth with a generated password) and keeps it open;
//! the registrar's OPTIONS gets 200 and INVITE gets 480 on that same connection.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use md5::{Digest, Md5};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use vicifast_e2e::{registrar_with_user, RegistrarOptions};

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One SIP message from the stream (headers, then Content-Length bytes of body).
fn read_message(reader: &mut BufReader<TcpStream>) -> String {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "connection closed"
        );
        if line == "\r\n" && !text.is_empty() {
            break;
        }
        if line != "\r\n" {
            text.push_str(&line);
        }
    }
    let length = text
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    text
}

fn quoted(text: &str, key: &str) -> String {
    let start = text.find(&format!("{key}=\"")).unwrap() + key.len() + 2;
    text[start..].split('"').next().unwrap().to_owned()
}

#[test]
fn registrar_reaches_a_tcp_contact_over_its_connection() {
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let stream = TcpStream::connect(("127.0.0.1", registrar.tcp_port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let local = stream.local_addr().unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let contact = format!("sip:{ext}@{local};transport=tcp");
    let register = |cseq: u32, auth: &str| {
        format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK-h{cseq};rport\r\n\
             From: <sip:{ext}@127.0.0.1>;tag=h\r\nTo: <sip:{ext}@127.0.0.1>\r\nCall-ID: harness-tcp\r\n\
             CSeq: {cseq} REGISTER\r\nContact: <{contact}>\r\n{auth}Expires: 60\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    };
    writer.write_all(register(1, "").as_bytes()).unwrap();
    let challenge = read_message(&mut reader);
    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
    let (realm, nonce) = (quoted(&challenge, "realm"), quoted(&challenge, "nonce"));
    let ha1 = md5_hex(&format!("{ext}:{realm}:{password}"));
    let ha2 = md5_hex("REGISTER:sip:127.0.0.1");
    let response = md5_hex(&format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
    let auth = format!(
        "Authorization: Digest username=\"{ext}\", realm=\"{realm}\", nonce=\"{nonce}\", \
         uri=\"sip:127.0.0.1\", response=\"{response}\", qop=auth, nc=00000001, \
         cnonce=\"c0ffee\", algorithm=MD5\r\n"
    );
    writer.write_all(register(2, &auth).as_bytes()).unwrap();
    let ok = read_message(&mut reader);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert_eq!(registrar.bindings(&ext).unwrap()[0].uri, contact);

    // The phone: answer on the same connection until the INVITE's ACK.
    let phone = std::thread::spawn(move || {
        let mut methods = Vec::new();
        while !methods.contains(&"ACK".to_owned()) {
            let request = read_message(&mut reader);
            let method = request.split(' ').next().unwrap().to_owned();
            methods.push(method.clone());
            if method == "ACK" {
                break;
            }
            let status = if method == "OPTIONS" {
                "200 OK"
            } else {
                "480 Temporarily Unavailable"
            };
            let mut reply = format!("SIP/2.0 {status}\r\n");
            for line in request.lines() {
                let name = line.split(':').next().unwrap().to_ascii_lowercase();
                if ["via", "from", "call-id", "cseq"].contains(&name.as_str()) {
                    reply.push_str(&format!("{line}\r\n"));
                } else if name == "to" {
                    reply.push_str(&format!("{line};tag=p\r\n"));
                }
            }
            reply.push_str("Content-Length: 0\r\n\r\n");
            writer.write_all(reply.as_bytes()).unwrap();
        }
        methods
    });
    assert_eq!(registrar.send_request("OPTIONS", &contact).unwrap(), 200);
    assert_eq!(registrar.send_request("INVITE", &contact).unwrap(), 480);
    assert_eq!(phone.join().unwrap(), ["OPTIONS", "INVITE", "ACK"]);
}
