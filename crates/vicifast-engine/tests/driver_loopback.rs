//! The driver over real loopback sockets: UDP and TCP flows carry REGISTERs to a scripted
//! responder, stop unregisters, a refused connection and a dropped one are reported and handled.
//! (The full protocol against a real registrar is in tests/e2e.)

#![allow(clippy::unwrap_used)]

mod common;

use common::{header, ok, wait_for, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use vicifast_engine::{
    AccountConfig, Cause, DriverOptions, EngineEvent, Password, ProblemCode, Registration,
    RegistrationState, ServerAddress, Status, Transport,
};

fn config(port: u16, transport: Transport) -> AccountConfig {
    let mut c = AccountConfig::new(
        "t",
        ServerAddress::parse(&format!("127.0.0.1:{port}")).unwrap(),
        "101",
    );
    c.transport = Some(transport);
    c
}

async fn next_status(
    events: &mut mpsc::UnboundedReceiver<EngineEvent>,
    want: impl Fn(&Status) -> bool,
) -> Status {
    wait_for(events, |e| match e {
        EngineEvent::Status(s) if want(&s.inner) => Some(s.inner.clone()),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn udp_registers_then_stop_unregisters() {
    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = server.local_addr().unwrap().port();
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut buf = vec![0; 65535];
        while let Ok((n, from)) = server.recv_from(&mut buf).await {
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let _ = server.send_to(ok(&req).as_bytes(), from).await;
            let _ = seen_tx.send(req);
        }
    });
    let (reg, mut events) = Registration::start(
        config(port, Transport::Udp),
        Password::new("pw"),
        DriverOptions::default(),
    );
    let status = next_status(&mut events, |s| s.state == RegistrationState::Registered).await;
    assert_eq!(
        status.server.as_deref(),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert!(status.contact.unwrap().starts_with("sip:101@127.0.0.1:"));
    assert!(status.bindings.iter().any(|b| b.ours));
    tokio::time::timeout(WAIT, reg.stop())
        .await
        .expect("stop is bounded");
    let mut last = String::new();
    while let Ok(req) = seen.try_recv() {
        last = req;
    }
    assert_eq!(header(&last, "Expires").as_deref(), Some("0"));
    // The stream ends after the final status.
    let mut states = Vec::new();
    while let Some(e) = events.recv().await {
        if let EngineEvent::Status(s) = e {
            states.push(s.inner.state);
        }
    }
    assert_eq!(states.last(), Some(&RegistrationState::Unregistered));
}

#[tokio::test]
async fn tcp_refused_is_reported_as_connection_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let (reg, mut events) = Registration::start(
        config(port, Transport::Tcp),
        Password::new("pw"),
        DriverOptions::default(),
    );
    let status = next_status(&mut events, |s| s.state == RegistrationState::Retrying).await;
    assert_eq!(status.problem.unwrap().code, ProblemCode::ConnectionRefused);
    assert!(status.next_attempt_in.is_some());
    tokio::time::timeout(WAIT, reg.stop())
        .await
        .expect("stop is bounded");
}

#[tokio::test]
async fn tcp_registers_and_re_registers_when_the_server_drops_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        // First connection: answer one REGISTER, then close. Second: answer everything.
        for connection in 0..2 {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut pending = Vec::new();
            let mut buf = vec![0; 65535];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                pending.extend_from_slice(&buf[..n]);
                while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                    let req = String::from_utf8_lossy(&pending[..end + 4]).to_string();
                    pending.drain(..end + 4);
                    let _ = stream.write_all(ok(&req).as_bytes()).await;
                    if connection == 0 {
                        let _ = stream.shutdown().await;
                        break;
                    }
                }
                if connection == 0 && !pending.is_empty() {
                    break;
                }
            }
            if connection == 0 {
                drop(stream);
            } else {
                std::future::pending::<()>().await;
            }
        }
    });
    let (reg, mut events) = Registration::start(
        config(port, Transport::Tcp),
        Password::new("pw"),
        DriverOptions::default(),
    );
    let first = next_status(&mut events, |s| s.state == RegistrationState::Registered).await;
    let failed = next_status(&mut events, |s| s.cause == Cause::FlowFailed).await;
    assert_eq!(failed.problem.unwrap().code, ProblemCode::TransportError);
    let again = next_status(&mut events, |s| s.state == RegistrationState::Registered).await;
    assert_ne!(first.local_address, again.local_address, "a new connection");
    tokio::time::timeout(WAIT, reg.stop())
        .await
        .expect("stop is bounded");
}
