//! The tray process's state and what it can be asked to do: the window's commands (over the
//! local socket), the tray menu's actions, and start-up from the saved settings.

use crate::account_events;
use crate::registration::{keychain_message, Engine, NotRunning, NotStarted, Report, Secrets};
use crate::settings_file::{self, Stamp};
use crate::state::{lock, Shared, TrayView, UiState, View};
use crate::{autostart, network, window};
use serde::Serialize;
use std::sync::{Arc, MutexGuard};
use tokio::sync::{broadcast, mpsc, watch};
use vicifast_accounts::{ConfigStore, Keychain, Settings};
use vicifast_engine::{
    Cause, EngineEvent, Problem, ProblemCode, RegistrationState, Stamped, Status, Transport,
};
use vicifast_ipc::settings::{self, UiSettings, ACCOUNT};
use vicifast_ipc::CommandError;

pub use crate::state::WindowEvent;

/// Everything the tray process knows and runs.
pub struct App {
    shared: Arc<Shared>,
    engine: Engine,
    /// Where settings are saved; `Err` when no location could be found (no home directory).
    store: Result<ConfigStore, String>,
    secrets: Secrets,
    quit: watch::Sender<bool>,
    window: window::Launcher,
    /// Whether saving settings changes the login items (off in tests).
    manage_autostart: bool,
    /// The settings file as this process last wrote it, so the watcher skips our own saves.
    own_write: std::sync::Mutex<Stamp>,
}

impl App {
    /// Must run inside a Tokio runtime: the reducer of the engines' reports is a task.
    pub fn new(
        store: Result<ConfigStore, String>,
        keychain: Arc<dyn Keychain>,
        window: window::Launcher,
        manage_autostart: bool,
    ) -> Arc<App> {
        let shared = Arc::new(Shared::default());
        let (reports, received) = mpsc::unbounded_channel::<Report>();
        tokio::spawn(account_events::run(Arc::clone(&shared), received));
        Arc::new(App {
            shared,
            engine: Engine::new(reports),
            store,
            secrets: Secrets(keychain),
            quit: watch::Sender::new(false),
            window,
            manage_autostart,
            own_write: std::sync::Mutex::new(None),
        })
    }

    /// Locks the view.
    pub fn view(&self) -> MutexGuard<'_, View> {
        self.shared.view()
    }

    /// Sends an event to every window listening.
    pub fn emit(&self, name: &'static str, payload: &impl Serialize) {
        self.shared.emit(name, payload);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<WindowEvent> {
        self.shared.subscribe()
    }

    /// What the tray shows, for its platform front end.
    pub fn tray_views(&self) -> watch::Receiver<TrayView> {
        self.shared.tray_views()
    }

    /// Brings the tray in line with the state.
    pub fn refresh_tray(&self) {
        self.shared.refresh_tray();
    }

    /// Resolves once Quit was asked for.
    pub async fn quit_requested(&self) {
        let mut quit = self.quit.subscribe();
        let _ = quit.wait_for(|q| *q).await;
    }

    /// Whether Quit has run to its end (every account unregistered).
    pub fn has_quit(&self) -> bool {
        *self.quit.borrow()
    }

    /// Tray Quit, SIGTERM, logout: unregister (waiting for the engine), then let `run` return.
    pub async fn quit(self: &Arc<Self>) {
        self.quit_after(async {}).await;
    }

    /// Unregisters every account, runs `before_exit` (e.g. answering whoever asked), then lets
    /// `run` return.
    pub async fn quit_after(self: &Arc<Self>, before_exit: impl std::future::Future<Output = ()>) {
        self.unregister().await;
        before_exit.await;
        self.quit.send_replace(true);
    }

    /// Shows the window: focuses the open one, or starts the window process.
    pub fn open_window(&self) {
        if self.shared.window_listening() || self.window.is_running() {
            self.emit("focus", &());
        } else {
            self.window.launch();
        }
    }

    /// The whole state, for a window that was just (re)created. Fails with `settings_file` when
    /// the settings file cannot be used: the window then shows that message instead of a
    /// first-run form that would invite overwriting the file.
    pub fn get_state(&self) -> Result<UiState, CommandError> {
        let view = self.view();
        if let Some(problem) = view.settings_problem.clone() {
            return Err(CommandError::new("settings_file", problem));
        }
        let interface = view.local_address().and_then(network::interface_of);
        Ok(view.ui_state(interface))
    }

    /// Saves the form (the window has already put a new password in the keychain, if there was
    /// one), then registers with it.
    pub async fn save_settings(
        self: &Arc<Self>,
        form: UiSettings,
        password_saved: bool,
    ) -> Result<UiState, CommandError> {
        let current = {
            let view = self.view();
            if let Some(problem) = &view.settings_problem {
                return Err(CommandError::new(
                    "settings_file",
                    format!("The settings file cannot be used, so nothing was saved: {problem}"),
                ));
            }
            view.settings.clone().unwrap_or_default()
        };
        let store = self.store.clone().map_err(|e| {
            CommandError::new("settings_file", format!("Settings cannot be saved: {e}"))
        })?;
        let saved_form = form.clone();
        let path = store.path().to_path_buf();
        let updated = self
            .secrets
            .run(move |keychain| persist(&current, &saved_form, keychain, &store))
            .await??;
        *lock(&self.own_write) = settings_file::stamp(&path);
        {
            let mut view = self.view();
            view.set_settings(updated);
            view.has_password = true;
        }
        if self.manage_autostart {
            autostart::apply(form.start_at_login);
        }
        // A new password restarts the app's account at once, so a wrong one shows now.
        let not_running = self.run_accounts(password_saved.then_some(ACCOUNT)).await;
        if let Some(why) = not_running.get(ACCOUNT) {
            // Shown as its status (e.g. the keychain could not give the password back).
            tracing::warn!("registration not started after saving: {why}");
        }
        self.get_state()
    }

    /// Brings the running registrations in line with the saved accounts (see [`Engine::apply`]);
    /// `restart` names one to start afresh.
    async fn run_accounts(&self, restart: Option<&str>) -> NotRunning {
        let accounts = {
            let view = self.view();
            view.settings.as_ref().map(|s| s.accounts.clone())
        };
        let accounts = accounts.unwrap_or_default();
        let not_running = self.engine.apply(&accounts, &self.secrets, restart).await;
        let own_saved = accounts.iter().any(|a| a.name == ACCOUNT);
        {
            let mut view = self.view();
            match not_running.get(ACCOUNT) {
                Some(NotStarted::NoPassword) => view.has_password = false,
                None if own_saved => view.has_password = true,
                _ => {}
            }
        }
        self.engine_changed().await;
        not_running
    }

    /// The menu's Register and Unregister follow whether anything runs.
    async fn engine_changed(&self) {
        let running = self.engine.is_running().await;
        self.view().active = running;
        self.refresh_tray();
    }

    /// "Register": every account tries again now (one that gave up, with its password from the
    /// keychain again) and those not running start; another device on an extension is taken
    /// over. Fails when the app's own account cannot start, or nothing is set up.
    pub async fn register(self: &Arc<Self>) -> Result<(), CommandError> {
        let (failed, in_use, saved) = {
            let view = self.view();
            let failed: Vec<String> = view
                .accounts
                .iter()
                .filter(|(_, a)| a.state() == Some(RegistrationState::Failed))
                .map(|(name, _)| name.clone())
                .collect();
            let in_use = view.accounts.values().any(|a| a.in_use().is_some());
            let saved = view
                .settings
                .as_ref()
                .is_some_and(|s| !s.accounts.is_empty());
            (failed, in_use, saved)
        };
        if !saved {
            return Err(CommandError::new(
                "not_configured",
                "Enter the server and extension in Settings first.",
            ));
        }
        if in_use {
            self.engine.take_over().await;
        }
        self.engine.retry_now(&failed).await;
        let not_running = self.run_accounts(None).await;
        match not_running.get(ACCOUNT) {
            Some(why) => Err(why.command_error(ACCOUNT)),
            None => Ok(()),
        }
    }

    /// "Use this computer" after another device took the extension.
    pub async fn take_over(self: &Arc<Self>) {
        self.engine.take_over().await;
    }

    /// Removes every binding and stops; returns once every account's last status is shown.
    pub async fn unregister(self: &Arc<Self>) {
        self.engine.stop().await;
        self.engine_changed().await;
    }

    /// The OS says the computer woke from sleep (Windows' power notification).
    pub async fn resumed(&self) {
        self.engine.resumed().await;
    }

    pub fn clear_trace(&self) {
        self.view().trace.clear();
    }

    /// The tray's Register: start, or try again now; the window says what is missing.
    pub async fn register_from_tray(self: &Arc<Self>) {
        if let Err(e) = self.register().await {
            tracing::warn!("register from the tray: {e}");
            self.open_window();
        }
    }

    /// Loads the settings and registers every saved account whose password is saved. Returns
    /// whether the window should open: first run, a settings or keychain problem of the app's
    /// own account (accounts added with the CLI alone do not need the window).
    pub async fn start(self: &Arc<Self>) -> bool {
        let loaded = match &self.store {
            Ok(store) => store
                .load()
                .map_err(|e| (store.path().display().to_string(), e.to_string())),
            Err(e) => Err((String::new(), e.clone())),
        };
        let (own_saved, any_saved) = match loaded {
            Ok(settings) => {
                let own = settings::account(&settings).is_some();
                let any = !settings.accounts.is_empty();
                self.view().set_settings(settings);
                (own, any)
            }
            Err((path, detail)) => {
                self.settings_problem(&path, &detail);
                return true;
            }
        };
        self.refresh_tray();
        if !any_saved {
            return true;
        }
        let not_running = self.run_accounts(None).await;
        own_saved && not_running.contains_key(ACCOUNT)
    }

    /// Where the settings file is, if there is a place for it.
    pub fn settings_path(&self) -> Option<std::path::PathBuf> {
        self.store.as_ref().ok().map(|s| s.path().to_path_buf())
    }

    /// Another program changed the settings file: take up its accounts. A damaged or
    /// newer-format file is reported (and then never written) while the registrations go on.
    pub async fn settings_file_changed(self: &Arc<Self>, stamp: Stamp) {
        if stamp.is_some() && *lock(&self.own_write) == stamp {
            return;
        }
        let Ok(store) = &self.store else {
            return;
        };
        let loaded = match store.load() {
            Ok(settings) => settings,
            Err(e) => {
                tracing::warn!("the settings file changed and cannot be used: {e}");
                self.view().settings_problem = Some(e.to_string());
                self.refresh_tray();
                return;
            }
        };
        tracing::info!("the settings file changed: applying it");
        {
            let mut view = self.view();
            let repaired = view.settings_problem.take().is_some();
            if repaired && view.settings.is_none() {
                // Damaged since start: nothing runs yet and the status is the file's problem.
                view.accounts.clear();
            }
            view.set_settings(loaded);
        }
        // The window lists the new accounts at once and drops the removed ones, which report
        // nothing more themselves.
        self.emit("accounts", &self.view().other_accounts());
        // Changed or new accounts (re)start, removed ones stop; the unchanged ones read their
        // password again.
        self.run_accounts(None).await;
    }

    /// A settings file that cannot be used is shown as the status; it is never overwritten.
    fn settings_problem(&self, path: &str, detail: &str) {
        let action = if path.is_empty() {
            "Ask your administrator for help, then restart VICIfast.".to_owned()
        } else {
            format!(
                "VICIfast left the file as it is. Ask your administrator to repair or remove {path}, then restart VICIfast."
            )
        };
        let mut problem = Problem::new(ProblemCode::SettingsFile, detail);
        problem.action = action;
        let status = Stamped::now(Status {
            problem: Some(problem),
            ..Status::without_flow(
                ACCOUNT,
                RegistrationState::Failed,
                Cause::Failed,
                Transport::Udp,
            )
        });
        self.view().settings_problem = Some(detail.to_owned());
        account_events::apply(
            &self.shared,
            Report::Event {
                account: ACCOUNT.to_owned(),
                event: EngineEvent::Status(status),
            },
        );
    }
}

/// Checks the form, checks the keychain holds a password, then writes the settings file.
/// Nothing is written when the form is invalid; the password never goes to the file. Blocking
/// (keychain, disk).
fn persist(
    current: &Settings,
    form: &UiSettings,
    keychain: &dyn Keychain,
    store: &ConfigStore,
) -> Result<Settings, CommandError> {
    let updated = settings::validated(current, form)?;
    match keychain.get(ACCOUNT) {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(CommandError::invalid(
                "password",
                "Enter the password for this extension.",
            ))
        }
        Err(e) => return Err(CommandError::new("credentials", keychain_message(&e))),
    }
    store.save(&updated).map_err(|e| {
        CommandError::new(
            "settings_file",
            format!("The settings could not be saved: {e}"),
        )
    })?;
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vicifast_accounts::{KeychainError, MemoryKeychain};
    use vicifast_engine::Password;

    use crate::test_form as form;

    fn temp_store() -> (tempfile::TempDir, ConfigStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ConfigStore::new(dir.path().join("config.toml"));
        (dir, store)
    }

    #[test]
    fn saves_settings_and_keeps_the_password_out_of_the_file() {
        let (_dir, store) = temp_store();
        let keychain = MemoryKeychain::default();
        assert!(keychain.set(ACCOUNT, &Password::new("s3cret-pw")).is_ok());
        let saved = persist(
            &Settings::default(),
            &form("pbx.example.com"),
            &keychain,
            &store,
        );
        assert!(saved.is_ok(), "{saved:?}");
        let file = std::fs::read_to_string(store.path()).unwrap_or_default();
        assert!(file.contains("pbx.example.com"), "{file}");
        assert!(!file.contains("s3cret-pw"), "{file}");
    }

    #[test]
    fn no_password_anywhere_is_a_password_field_error() {
        let (_dir, store) = temp_store();
        let err = persist(
            &Settings::default(),
            &form("pbx.example.com"),
            &MemoryKeychain::default(),
            &store,
        )
        .err();
        assert_eq!(err.as_ref().map(|e| e.code.as_str()), Some("invalid"));
        assert_eq!(err.and_then(|e| e.field).as_deref(), Some("password"));
        assert!(!store.path().exists(), "nothing is written");
    }

    #[test]
    fn invalid_settings_name_the_field_and_write_nothing() {
        let (_dir, store) = temp_store();
        let keychain = MemoryKeychain::default();
        assert!(keychain.set(ACCOUNT, &Password::new("pw")).is_ok());
        let err = persist(&Settings::default(), &form(""), &keychain, &store).err();
        assert_eq!(err.and_then(|e| e.field).as_deref(), Some("server"));
        assert!(!store.path().exists());
    }

    #[test]
    fn a_locked_keychain_is_a_credentials_error() {
        let (_dir, store) = temp_store();
        let keychain = MemoryKeychain::failing(KeychainError::Locked("test".to_owned()));
        let err = persist(
            &Settings::default(),
            &form("pbx.example.com"),
            &keychain,
            &store,
        )
        .err();
        assert_eq!(err.as_ref().map(|e| e.code.as_str()), Some("credentials"));
        assert!(err.is_some_and(|e| e.message.contains("locked")));
        assert!(!store.path().exists());
    }

    #[tokio::test]
    async fn a_file_damaged_and_repaired_by_another_program_is_taken_up() {
        let (_dir, store) = temp_store();
        let app = App::new(
            Ok(store.clone()),
            Arc::new(MemoryKeychain::default()),
            window::Launcher::disabled(),
            false,
        );
        assert!(app.start().await, "first run");
        assert!(app.get_state().is_ok());

        assert!(std::fs::write(store.path(), "format = 1\n[[accounts]\n").is_ok());
        app.settings_file_changed(settings_file::stamp(store.path()))
            .await;
        let err = app.get_state().err().map(|e| e.code);
        assert_eq!(err.as_deref(), Some("settings_file"));
        let saved = app.save_settings(form("pbx.example.com"), true).await.err();
        assert_eq!(saved.map(|e| e.code).as_deref(), Some("settings_file"));
        assert_eq!(
            std::fs::read_to_string(store.path()).ok().as_deref(),
            Some("format = 1\n[[accounts]\n"),
            "the damaged file is kept"
        );

        // Repaired with an account whose password is not in the keychain: taken up, and the
        // missing password is the problem shown.
        let repaired = settings::apply(&Settings::default(), &form("pbx.example.com"));
        assert!(std::fs::remove_file(store.path()).is_ok());
        assert!(store.save(&repaired).is_ok());
        app.settings_file_changed(settings_file::stamp(store.path()))
            .await;
        let state = app.get_state();
        assert!(state.is_ok(), "{state:?}");
        let status = app.view().own().and_then(|a| a.status.clone());
        let code = status.and_then(|s| s.inner.problem).map(|p| p.code);
        assert_eq!(code, Some(ProblemCode::Credentials));
    }

    #[tokio::test]
    async fn a_damaged_settings_file_is_reported_and_never_written() {
        let (_dir, store) = temp_store();
        assert!(std::fs::write(store.path(), "this is [not toml").is_ok());
        let app = App::new(
            Ok(store.clone()),
            Arc::new(MemoryKeychain::default()),
            window::Launcher::disabled(),
            false,
        );
        assert!(app.start().await, "the window opens to say so");
        let err = app.get_state().err();
        assert_eq!(err.map(|e| e.code), Some("settings_file".to_owned()));
        let saved = app.save_settings(form("pbx.example.com"), true).await.err();
        assert_eq!(saved.map(|e| e.code), Some("settings_file".to_owned()));
        assert_eq!(
            std::fs::read_to_string(store.path()).ok().as_deref(),
            Some("this is [not toml")
        );
        // As the tray shows it, not only as the view would.
        let tray = app.tray_views().borrow().clone();
        assert_eq!(tray.look, crate::state::TrayLook::Failed);
        assert!(tray.tooltip.contains("settings file"), "{}", tray.tooltip);
    }
}
