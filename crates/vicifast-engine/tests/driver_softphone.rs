//! The softphone listener over real loopback sockets, with a scripted registrar: a call from the
//! registrar reaches the softphone and its answer goes back over the registration's flow; a
//! softphone REGISTER is challenged locally and never reaches the registrar; a listener off
//! loopback or on a port in use is refused with a clear error before anything is sent.
//! (Real softphones and a real registrar are in tests/e2e.)

#![allow(clippy::unwrap_used)]

mod common;

use common::{header, ok, response, wait_for, WAIT};
use std::net::SocketAddr;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use vicifast_engine::{
    AccountConfig, DriverOptions, EdgeConfig, EngineEvent, FixedContact, Password, Registration,
    RegistrationState, ServerAddress, SoftphoneError, SoftphoneState, Transport,
};

/// The softphone's answer to a relayed request: every Via, in order, and its own Contact.
fn answer(req: &str, status: &str, contact: SocketAddr) -> String {
    let vias: Vec<&str> = req.lines().filter(|l| l.starts_with("Via:")).collect();
    response(
        req,
        status,
        &vias,
        "sp",
        Some(&format!("<sip:101@{contact}>")),
    )
}

fn config(registrar: SocketAddr) -> AccountConfig {
    let mut c = AccountConfig::new(
        "t",
        ServerAddress::parse(&registrar.to_string()).unwrap(),
        "101",
    );
    c.transport = Some(Transport::Udp);
    c.domain = Some("example.test".into());
    c
}

/// A registrar that answers REGISTERs and hands every other message (and each REGISTER's
/// source) to the test.
async fn registrar() -> (
    SocketAddr,
    std::sync::Arc<UdpSocket>,
    mpsc::UnboundedReceiver<(SocketAddr, String)>,
) {
    let socket = std::sync::Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = socket.local_addr().unwrap();
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let server = socket.clone();
    tokio::spawn(async move {
        let mut buf = vec![0; 65535];
        while let Ok((n, from)) = server.recv_from(&mut buf).await {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.starts_with("REGISTER ") {
                let _ = server.send_to(ok(&text).as_bytes(), from).await;
            }
            let _ = seen_tx.send((from, text));
        }
    });
    (addr, socket, seen)
}

async fn recv_text(socket: &UdpSocket) -> (SocketAddr, String) {
    let mut buf = vec![0; 65535];
    let (n, from) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .expect("a message within the bound")
        .unwrap();
    (from, String::from_utf8_lossy(&buf[..n]).to_string())
}

/// A registration with its softphone listener: the handle, its events, the listener's address.
type Started = (
    Registration,
    mpsc::UnboundedReceiver<EngineEvent>,
    SocketAddr,
);

/// VICIfast with its softphone listener on loopback, registered with the scripted registrar at
/// `registrar_addr`, relaying calls to the softphone at `softphone_addr`; returns it with its
/// events and the listener's address.
async fn registered_with_softphone(
    registrar_addr: SocketAddr,
    softphone_addr: SocketAddr,
) -> Started {
    let edge = EdgeConfig {
        fixed_contact: Some(FixedContact::parse(&softphone_addr.to_string()).unwrap()),
        ..loopback_listener()
    };
    let (reg, mut events, listen) = start(registrar_addr, edge).unwrap();
    wait_for(&mut events, |e| match e {
        EngineEvent::Status(s) if s.inner.state == RegistrationState::Registered => Some(()),
        _ => None,
    })
    .await;
    (reg, events, listen)
}

/// A listener on a free loopback port.
fn loopback_listener() -> EdgeConfig {
    EdgeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..EdgeConfig::default()
    }
}

/// Starts registering with the registrar at `registrar_addr`, with the softphone listener `edge`.
fn start(registrar_addr: SocketAddr, edge: EdgeConfig) -> Result<Started, SoftphoneError> {
    Registration::start_with_softphone(
        config(registrar_addr),
        Password::new("pw"),
        DriverOptions::default(),
        edge,
    )
}

#[tokio::test]
async fn a_call_from_the_registrar_reaches_the_softphone_and_its_answer_goes_back() {
    let (registrar_addr, registrar_socket, mut seen) = registrar().await;
    let softphone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let softphone_addr = softphone.local_addr().unwrap();
    let (reg, _events, listen) = registered_with_softphone(registrar_addr, softphone_addr).await;
    assert!(listen.ip().is_loopback() && listen.port() != 0);
    let flow = loop {
        let (from, text) = seen.recv().await.unwrap();
        if text.starts_with("REGISTER ") {
            break from;
        }
    };

    let invite = format!(
        "INVITE sip:101@{flow} SIP/2.0\r\nVia: SIP/2.0/UDP {registrar_addr};branch=z9hG4bKcall1\r\nFrom: <sip:200@example.test>;tag=a1\r\nTo: <sip:101@example.test>\r\nCall-ID: call-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:200@{registrar_addr}>\r\nContent-Length: 0\r\n\r\n"
    );
    registrar_socket
        .send_to(invite.as_bytes(), flow)
        .await
        .unwrap();
    // The softphone gets a check (OPTIONS) and the INVITE, from the listener.
    let relayed = loop {
        let (from, text) = recv_text(&softphone).await;
        assert_eq!(
            from, listen,
            "everything to the softphone comes from the listener"
        );
        if text.starts_with("INVITE ") {
            break text;
        }
        if text.starts_with("OPTIONS ") {
            let reply = answer(&text, "200 OK", softphone_addr);
            softphone.send_to(reply.as_bytes(), listen).await.unwrap();
        }
    };
    assert!(
        relayed.starts_with(&format!("INVITE sip:101@{softphone_addr}")),
        "{relayed}"
    );
    assert_eq!(
        relayed.matches("Via:").count(),
        2,
        "our Via on top of the registrar's"
    );
    for status in ["180 Ringing", "200 OK"] {
        let reply = answer(&relayed, status, softphone_addr);
        softphone.send_to(reply.as_bytes(), listen).await.unwrap();
    }
    let mut codes = Vec::new();
    while !codes.contains(&"200".to_owned()) {
        let (from, text) = tokio::time::timeout(WAIT, seen.recv())
            .await
            .unwrap()
            .unwrap();
        if text.contains("call-1") && text.starts_with("SIP/2.0 ") {
            assert_eq!(from, flow, "responses go back over the registration's flow");
            assert_eq!(text.matches("Via:").count(), 1, "our Via popped");
            codes.push(text[8..11].to_owned());
        }
    }
    assert_eq!(codes, ["100", "180", "200"]);
    tokio::time::timeout(WAIT, reg.stop()).await.unwrap();
}

#[tokio::test]
async fn a_softphone_register_is_challenged_here_and_never_reaches_the_registrar() {
    let (registrar_addr, _socket, mut seen) = registrar().await;
    let (reg, mut events, listen) = start(registrar_addr, loopback_listener()).unwrap();
    let first = wait_for(&mut events, |e| match e {
        EngineEvent::Softphone(s) => Some(s.inner.state),
        _ => None,
    })
    .await;
    assert_eq!(first, SoftphoneState::NotRegistered);
    let softphone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = softphone.local_addr().unwrap();
    let register = format!(
        "REGISTER sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKsp1;rport\r\nFrom: <sip:101@example.test>;tag=s1\r\nTo: <sip:101@example.test>\r\nCall-ID: sp-1\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\nContact: <sip:101@{me}>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    );
    softphone
        .send_to(register.as_bytes(), listen)
        .await
        .unwrap();
    let (_, answer) = recv_text(&softphone).await;
    assert!(answer.starts_with("SIP/2.0 401 "), "{answer}");
    assert!(header(&answer, "WWW-Authenticate")
        .unwrap()
        .starts_with("Digest "));
    // Whatever reached the registrar meanwhile is VICIfast's own REGISTERs, none of the softphone's.
    while let Ok((_, text)) = seen.try_recv() {
        assert!(
            !text.contains("sp-1"),
            "the softphone's REGISTER was forwarded: {text}"
        );
    }
    tokio::time::timeout(WAIT, reg.stop()).await.unwrap();
}

#[tokio::test]
async fn a_listener_off_loopback_or_on_a_port_in_use_is_refused() {
    let (registrar_addr, _socket, _seen) = registrar().await;
    let outside = EdgeConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..EdgeConfig::default()
    };
    let err = start(registrar_addr, outside).unwrap_err();
    assert!(matches!(err, SoftphoneError::Config(_)));
    assert!(err.to_string().contains("this computer only"), "{err}");

    let taken = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let busy = EdgeConfig {
        listen: taken.local_addr().unwrap(),
        ..EdgeConfig::default()
    };
    let err = start(registrar_addr, busy).unwrap_err();
    assert!(
        err.to_string().contains("Another program uses this port"),
        "{err}"
    );
}

#[tokio::test]
async fn a_request_from_the_softphone_for_another_host_goes_to_the_registrar_only() {
    let (registrar_addr, _socket, mut seen) = registrar().await;
    let softphone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let softphone_addr = softphone.local_addr().unwrap();
    // Another local "server" the request names: it must get nothing.
    let elsewhere = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let elsewhere_addr = elsewhere.local_addr().unwrap();
    let (reg, _events, listen) = registered_with_softphone(registrar_addr, softphone_addr).await;
    let message = format!(
        "MESSAGE sip:x@{elsewhere_addr} SIP/2.0\r\nVia: SIP/2.0/UDP {softphone_addr};branch=z9hG4bKm1;rport\r\nRoute: <sip:{elsewhere_addr};lr>\r\nFrom: <sip:101@example.test>;tag=m1\r\nTo: <sip:x@{elsewhere_addr}>\r\nCall-ID: relay-1\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
    );
    softphone.send_to(message.as_bytes(), listen).await.unwrap();
    let (from, relayed) = tokio::time::timeout(WAIT, async {
        loop {
            let (from, text) = seen.recv().await.unwrap();
            if text.contains("relay-1") {
                return (from, text);
            }
        }
    })
    .await
    .expect("the MESSAGE reaches the registrar");
    assert!(relayed.starts_with("MESSAGE "), "{relayed}");
    assert_ne!(from, softphone_addr, "sent from VICIfast's flow");
    // A later datagram to `elsewhere` would be a relay off the PBX: send ourselves a marker and
    // check it is the first thing there.
    elsewhere.send_to(b"marker", elsewhere_addr).await.unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = elsewhere.recv_from(&mut buf).await.unwrap();
    assert_eq!(
        &buf[..n],
        b"marker",
        "something was sent to the host the request named"
    );
    tokio::time::timeout(WAIT, reg.stop()).await.unwrap();
}
