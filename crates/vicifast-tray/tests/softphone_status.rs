//! The softphone behind the app's account, as the tray process keeps it for the window and the
//! tray: a softphone that stops answering makes the account ask for attention and is in the
//! state a window opened later fetches; one that answers again clears it; a listener that cannot
//! start says why. Real engine and sockets on loopback: the "PBX" is a socket that never answers,
//! the softphone a socket the test answers from (or not).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a panic is the failure report

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::broadcast;
use vicifast_accounts::SoftphoneSettings;
use vicifast_accounts::{AccountSettings, ConfigStore, Keychain, MemoryKeychain, Settings};
use vicifast_engine::Password;
use vicifast_tray::app::{App, WindowEvent};
use vicifast_tray::state::TrayLook;
use vicifast_tray::window::Launcher;

/// The longest any one step may take before the test gives up (never reached when it works).
const STEP: Duration = Duration::from_secs(60);

struct Fixture {
    _dir: tempfile::TempDir,
    app: Arc<App>,
    events: broadcast::Receiver<WindowEvent>,
    /// Stands for the PBX: it receives the REGISTERs and never answers.
    _pbx: UdpSocket,
}

/// Starts the tray process's state with the app's account set up with `softphone`.
async fn start(softphone: SoftphoneSettings) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pbx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut account = AccountSettings::new("default", "127.0.0.1", "101");
    account.port = Some(pbx.local_addr().unwrap().port());
    account.softphone = Some(softphone);
    let store = ConfigStore::new(dir.path().join("config.toml"));
    store
        .save(&Settings {
            start_at_login: false,
            accounts: vec![account],
        })
        .unwrap();
    let keychain = MemoryKeychain::default();
    keychain.set("default", &Password::new("s3cret")).unwrap();
    let app = App::new(Ok(store), Arc::new(keychain), Launcher::disabled(), false);
    let events = app.subscribe();
    app.start().await;
    Fixture {
        _dir: dir,
        app,
        events,
        _pbx: pbx,
    }
}

/// A loopback port free for both UDP and TCP a moment ago.
fn free_port() -> SocketAddr {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = udp.local_addr().unwrap();
    std::net::TcpListener::bind(addr).expect("the same port free for TCP too");
    addr
}

/// Waits for the `softphones` event whose first softphone is in `state`.
async fn softphone_event(
    events: &mut broadcast::Receiver<WindowEvent>,
    state: &str,
) -> serde_json::Value {
    tokio::time::timeout(STEP, async {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("the event stream ended: {e}"),
            };
            if event.name == "softphones" && event.payload[0]["status"]["state"] == state {
                return event.payload;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no softphone report `{state}`"))
}

/// The next OPTIONS VICIfast sends the softphone.
async fn next_options(softphone: &UdpSocket) -> (String, SocketAddr) {
    let mut buf = vec![0u8; 65_535];
    tokio::time::timeout(STEP, async {
        loop {
            let (n, from) = softphone.recv_from(&mut buf).await.unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("OPTIONS ") {
                return (text, from);
            }
        }
    })
    .await
    .expect("VICIfast checks the softphone")
}

/// The softphone's 200 OK to `request`, introducing itself as MicroSIP.
fn answer(request: &str) -> String {
    let mut response = String::from("SIP/2.0 200 OK\r\n");
    for line in request.split("\r\n").skip(1) {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match name.as_str() {
            "via" | "from" | "call-id" | "cseq" => response.push_str(&format!("{line}\r\n")),
            "to" => response.push_str(&format!("{line};tag=sp1\r\n")),
            _ => {}
        }
    }
    response.push_str("User-Agent: MicroSIP/3.21.3\r\nContent-Length: 0\r\n\r\n");
    response
}

#[tokio::test]
async fn a_softphone_that_stops_answering_asks_for_attention_until_it_answers_again() {
    let softphone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let listen = free_port();
    let mut fixture = start(SoftphoneSettings {
        listen: listen.to_string(),
        contact: Some(format!(
            "sip:127.0.0.1:{}",
            softphone.local_addr().unwrap().port()
        )),
    })
    .await;
    let app = &fixture.app;

    // The first check goes unanswered: the softphone is not running.
    next_options(&softphone).await;
    softphone_event(&mut fixture.events, "not_answering").await;
    let state = serde_json::to_value(app.get_state().unwrap()).unwrap();
    let shown = &state["softphones"][0];
    assert_eq!(shown["account"], "default");
    assert_eq!(shown["extension"], "101");
    assert_eq!(shown["listen"], listen.to_string());
    assert_eq!(shown["status"]["state"], "not_answering");
    let tray = app.tray_views().borrow().clone();
    assert_eq!(tray.look, TrayLook::Failed);
    assert!(
        tray.tooltip.contains("softphone not running"),
        "{}",
        tray.tooltip
    );
    assert!(
        state["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "softphone"
                && e["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("not answering")),
        "{}",
        state["timeline"]
    );

    // It runs again: the next check is answered (a retransmission of the abandoned one is not
    // what VICIfast waits for, so answer every OPTIONS until it says so).
    let answering = async {
        loop {
            let (request, from) = next_options(&softphone).await;
            softphone
                .send_to(answer(&request).as_bytes(), from)
                .await
                .unwrap();
        }
    };
    let payload = tokio::select! {
        p = softphone_event(&mut fixture.events, "answering") => p,
        () = answering => unreachable!(),
    };
    assert_eq!(payload[0]["status"]["user_agent"], "MicroSIP/3.21.3");
    let tray = app.tray_views().borrow().clone();
    assert!(!tray.tooltip.contains("softphone"), "{}", tray.tooltip);
    assert_ne!(
        tray.look,
        TrayLook::Failed,
        "the registration only retries (its PBX never answers): {}",
        tray.tooltip
    );

    // Stopped: nothing is listening for the softphone any more, and the window is told so.
    app.quit().await;
    let state = serde_json::to_value(app.get_state().unwrap()).unwrap();
    assert_eq!(state["softphones"], serde_json::json!([]));
}

#[tokio::test]
async fn a_listener_that_cannot_start_says_why_and_asks_for_attention() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap();
    let fixture = start(SoftphoneSettings {
        listen: listen.to_string(),
        contact: None,
    })
    .await;
    let app = &fixture.app;

    let state = serde_json::to_value(app.get_state().unwrap()).unwrap();
    let shown = &state["softphones"][0];
    assert_eq!(shown["listen"], serde_json::Value::Null);
    let why = shown["listen_problem"].as_str().unwrap_or_default();
    assert!(
        why.starts_with(&format!(
            "VICIfast cannot listen for the softphone on {listen}"
        )),
        "{why}"
    );
    assert!(
        state["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "softphone" && e["text"] == why),
        "{}",
        state["timeline"]
    );
    let tray = app.tray_views().borrow().clone();
    assert_eq!(tray.look, TrayLook::Failed);
    assert!(
        tray.tooltip.contains("not listening for the softphone"),
        "{}",
        tray.tooltip
    );
    app.quit().await;
}
