//! The tray process's local socket, driven as the window drives it: answers come back by id,
//! events reach subscribers, and a peer that sends garbage is hung up on without disturbing
//! anyone else or changing anything.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use vicifast_accounts::{ConfigStore, MemoryKeychain};
use vicifast_engine::Transport;
use vicifast_ipc::{self as ipc, Call, LineReader, LineWriter, Request, ToWindow, UiSettings};
use vicifast_tray::app::App;
use vicifast_tray::window::Launcher;

struct Fixture {
    _dir: tempfile::TempDir,
    app: Arc<App>,
    socket: PathBuf,
    config: PathBuf,
}

impl Fixture {
    fn name(&self) -> interprocess::local_socket::Name<'_> {
        self.socket
            .as_path()
            .to_fs_name::<GenericFilePath>()
            .unwrap()
    }
}

async fn serve() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tray.sock");
    let config = dir.path().join("config.toml");
    let listener = ListenerOptions::new()
        .name(socket.clone().to_fs_name::<GenericFilePath>().unwrap())
        .create_tokio()
        .unwrap();
    let app = App::new(
        Ok(ConfigStore::new(&config)),
        Arc::new(MemoryKeychain::default()),
        Launcher::disabled(),
        false,
    );
    app.start().await;
    tokio::spawn(vicifast_tray::ipc::serve(listener, Arc::clone(&app)));
    Fixture {
        _dir: dir,
        app,
        socket,
        config,
    }
}

async fn connect(socket: &Path) -> (LineReader, LineWriter) {
    let name = socket.to_fs_name::<GenericFilePath>().unwrap();
    ipc::split(Stream::connect(name).await.unwrap())
}

async fn call(
    (reader, writer): &mut (LineReader, LineWriter),
    id: u64,
    call: Call,
) -> Result<serde_json::Value, vicifast_ipc::CommandError> {
    writer.send(&Request { id, call }).await.unwrap();
    loop {
        match reader.next::<ToWindow>().await.unwrap() {
            Some(ToWindow::Reply { id: got, result }) if got == id => return result,
            Some(_) => continue,
            None => panic!("the tray process hung up"),
        }
    }
}

fn form(server: &str) -> UiSettings {
    UiSettings {
        server: server.to_owned(),
        extension: "101".to_owned(),
        auth_user: None,
        domain: None,
        transport: Transport::Udp,
        port: None,
        outbound_proxy: None,
        expires: 300,
        start_at_login: false,
    }
}

#[tokio::test]
async fn first_run_state_comes_back_by_id() {
    let fixture = serve().await;
    let mut link = connect(&fixture.socket).await;
    assert_eq!(
        call(&mut link, 1, Call::Subscribe).await.ok(),
        Some(serde_json::Value::Null)
    );
    let state = call(&mut link, 2, Call::GetState).await.unwrap();
    assert_eq!(state["settings"], serde_json::Value::Null);
    assert_eq!(state["has_password"], false);
    let err = call(&mut link, 3, Call::Register).await.err().unwrap();
    assert_eq!(err.code, "not_configured");
}

#[tokio::test]
async fn an_invalid_form_names_the_field_and_writes_nothing() {
    let fixture = serve().await;
    let mut link = connect(&fixture.socket).await;
    let err = call(
        &mut link,
        1,
        Call::SaveSettings {
            settings: form(""),
            password_saved: false,
        },
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.field.as_deref(), Some("server"));
    // A valid form with no password in the keychain is refused too.
    let err = call(
        &mut link,
        2,
        Call::SaveSettings {
            settings: form("pbx.example.com"),
            password_saved: false,
        },
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.field.as_deref(), Some("password"));
    assert!(!fixture.config.exists());
}

#[tokio::test]
async fn garbage_ends_that_connection_only() {
    let fixture = serve().await;
    let mut good = connect(&fixture.socket).await;
    call(&mut good, 1, Call::Subscribe).await.unwrap();

    for garbage in [
        &b"not json at all\n"[..],
        &b"{\"id\":1,\"call\":\"format_disk\"}\n"[..],
        &b"\xff\xfe\x00\n"[..],
    ] {
        let name = fixture.name();
        let mut stream = Stream::connect(name).await.unwrap();
        stream.write_all(garbage).await.unwrap();
        let (mut reader, _writer) = ipc::split(stream);
        let answer = reader.next::<ToWindow>().await;
        assert!(
            matches!(answer, Ok(None) | Err(_)),
            "{garbage:?} got {answer:?}"
        );
    }

    // Longer than any message may be: hung up on before it is all read.
    let name = fixture.name();
    let stream = Stream::connect(name).await.unwrap();
    let (mut reader, mut writer) = ipc::split(stream);
    let huge = vec![b'x'; ipc::MAX_LINE + 10];
    let _ = writer.send(&String::from_utf8(huge).unwrap()).await;
    assert!(matches!(reader.next::<ToWindow>().await, Ok(None) | Err(_)));

    let state = call(&mut good, 2, Call::GetState).await.unwrap();
    assert_eq!(state["settings"], serde_json::Value::Null);
}

#[tokio::test]
async fn quit_answers_then_closes_and_ends_the_run() {
    let fixture = serve().await;
    let mut link = connect(&fixture.socket).await;
    call(&mut link, 1, Call::Subscribe).await.unwrap();
    let running = tokio::select! {
        biased;
        () = fixture.app.quit_requested() => false,
        () = std::future::ready(()) => true,
    };
    assert!(running, "quit was requested before anyone asked");

    assert_eq!(
        call(&mut link, 2, Call::Quit).await.ok(),
        Some(serde_json::Value::Null)
    );
    // The answer came first; then the tray process hangs up and its run ends.
    assert!(matches!(link.0.next::<ToWindow>().await, Ok(None) | Err(_)));
    fixture.app.quit_requested().await;
}
