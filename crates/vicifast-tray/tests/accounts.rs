//! Every saved account goes the same way through the tray process: the app's own (`default`)
//! and those added with the CLI start together, say the same way why they cannot, follow the
//! settings file, and each one's last status is shown by the time Quit returns. Real engines on
//! loopback; each "PBX" is a socket that never answers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a panic is the failure report

use std::sync::Arc;
use tokio::net::UdpSocket;
use vicifast_accounts::{AccountSettings, ConfigStore, Keychain, MemoryKeychain, Settings};
use vicifast_engine::{Password, ProblemCode, RegistrationState};
use vicifast_tray::app::App;
use vicifast_tray::window::Launcher;

struct Fixture {
    dir: tempfile::TempDir,
    store: ConfigStore,
    keychain: Arc<MemoryKeychain>,
    /// Receive the REGISTERs and never answer.
    pbx: Vec<UdpSocket>,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::new(dir.path().join("config.toml"));
        Self {
            dir,
            store,
            keychain: Arc::new(MemoryKeychain::default()),
            pbx: Vec::new(),
        }
    }

    /// Account `name`, extension `<name>-ext`, on a PBX of its own; with a password when
    /// `password`.
    async fn account(&mut self, name: &str, password: bool) -> AccountSettings {
        let pbx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut account = AccountSettings::new(name, "127.0.0.1", format!("{name}-ext"));
        account.port = Some(pbx.local_addr().unwrap().port());
        self.pbx.push(pbx);
        if password {
            self.keychain.set(name, &Password::new("pw")).unwrap();
        }
        account
    }

    /// The app's own account and `b` saved, each with its password when `passwords`, and the
    /// app (not started) that will run them.
    async fn two_accounts(passwords: bool) -> (Fixture, Arc<App>) {
        let mut fixture = Fixture::new().await;
        let own = fixture.account("default", passwords).await;
        let other = fixture.account("b", passwords).await;
        fixture.save(vec![own, other]);
        let app = fixture.app();
        (fixture, app)
    }

    fn save(&self, accounts: Vec<AccountSettings>) {
        // A new file each time, as `vicifast-cli account set` writes it (replaced by rename).
        let _ = std::fs::remove_file(self.store.path());
        self.store
            .save(&Settings {
                start_at_login: false,
                accounts,
            })
            .unwrap();
    }

    fn app(&self) -> Arc<App> {
        let keychain: Arc<dyn Keychain> = Arc::clone(&self.keychain) as _;
        App::new(
            Ok(self.store.clone()),
            keychain,
            Launcher::disabled(),
            false,
        )
    }

    fn stamp(&self) -> Option<(std::time::SystemTime, u64)> {
        let meta = std::fs::metadata(self.dir.path().join("config.toml")).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }
}

fn own_state(app: &App) -> Option<RegistrationState> {
    app.view().own().and_then(|a| a.state())
}

fn other_state(app: &App, name: &str) -> Option<RegistrationState> {
    app.view().accounts.get(name).and_then(|a| a.state())
}

#[tokio::test]
async fn quit_returns_once_every_accounts_last_status_is_shown() {
    let (_fixture, app) = Fixture::two_accounts(true).await;
    assert!(!app.start().await, "nothing to set up or fix");
    assert!(app.tray_views().borrow().can_unregister, "both run");

    app.quit().await;
    assert_eq!(own_state(&app), Some(RegistrationState::Unregistered));
    assert_eq!(
        other_state(&app, "b"),
        Some(RegistrationState::Unregistered)
    );
    let tray = app.tray_views().borrow().clone();
    assert!(!tray.can_unregister && tray.can_register, "{tray:?}");
    let state = serde_json::to_value(app.get_state().unwrap()).unwrap();
    assert_eq!(state["status"]["state"], "unregistered");
    assert_eq!(state["other_accounts"][0]["account"], "b");
    assert_eq!(state["other_accounts"][0]["state"], "unregistered");
}

#[tokio::test]
async fn an_account_without_a_password_says_so_whichever_it_is() {
    let (_fixture, app) = Fixture::two_accounts(false).await;
    assert!(
        app.start().await,
        "the window opens to ask for the password"
    );

    for name in ["default", "b"] {
        let status = app.view().accounts.get(name).and_then(|a| a.status.clone());
        let status = status.unwrap().inner;
        assert_eq!(status.state, RegistrationState::Failed, "{name}");
        let problem = status.problem.unwrap();
        assert_eq!(problem.code, ProblemCode::Credentials, "{name}");
        assert_eq!(problem.message, "No password is saved for this extension.");
    }
    let state = serde_json::to_value(app.get_state().unwrap()).unwrap();
    assert_eq!(state["has_password"], false);
    assert_eq!(
        state["status"]["problem"]["action"],
        "Enter it in Settings."
    );
    assert_eq!(
        state["other_accounts"][0]["problem"],
        "No password is saved for this extension."
    );
    let tray = app.tray_views().borrow().clone();
    assert!(
        tray.tooltip
            .contains("Extension default-ext: not registered — password not available")
            && tray
                .tooltip
                .contains("\nExtension b-ext: not registered — password not available"),
        "{}",
        tray.tooltip
    );
    assert!(!tray.can_unregister, "nothing runs");

    let err = app.register().await.err().map(|e| e.message);
    assert_eq!(
        err.as_deref(),
        Some("No password is saved for this extension. Enter it in Settings.")
    );
}

#[tokio::test]
async fn the_settings_file_starts_and_stops_any_account_the_same_way() {
    let mut fixture = Fixture::new().await;
    let own = fixture.account("default", true).await;
    let other = fixture.account("b", true).await;
    fixture.save(vec![own.clone()]);
    let app = fixture.app();
    assert!(!app.start().await);
    assert!(!app.view().accounts.contains_key("b"));

    // `vicifast-cli account set b`: b starts beside the app's own.
    fixture.save(vec![own.clone(), other.clone()]);
    app.settings_file_changed(fixture.stamp()).await;
    assert!(app
        .view()
        .accounts
        .get("b")
        .is_some_and(|b| b.extension == "b-ext"));

    // The app's own removed from the file: it stops (its last status stays shown), b goes on.
    fixture.save(vec![other]);
    app.settings_file_changed(fixture.stamp()).await;
    assert_eq!(own_state(&app), Some(RegistrationState::Unregistered));
    assert_ne!(
        other_state(&app, "b"),
        Some(RegistrationState::Unregistered)
    );
    assert!(app.tray_views().borrow().can_unregister, "b still runs");

    // And b removed: nothing runs, b is no longer listed, and an open window is told so.
    let mut events = app.subscribe();
    fixture.save(Vec::new());
    app.settings_file_changed(fixture.stamp()).await;
    assert!(!app.view().accounts.contains_key("b"));
    let mut listed = None;
    while let Ok(event) = events.try_recv() {
        if event.name == "accounts" {
            listed = Some(event.payload);
        }
    }
    assert_eq!(
        listed,
        Some(serde_json::json!([])),
        "the window's last list"
    );
    assert!(!app.tray_views().borrow().can_unregister, "nothing runs");
    app.quit().await;
}
