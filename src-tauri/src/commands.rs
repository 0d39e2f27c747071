//! The window's commands (docs/ipc-contract.md): thin wrappers that check input, then delegate.

use crate::error::CommandError;
use crate::registration::{keychain_message, Engine, Secrets};
use crate::settings::{self, UiSettings, ACCOUNT};
use crate::state::{Shared, UiState};
use crate::{network, tray};
use tauri::{AppHandle, Manager, Runtime, State};
use tauri_plugin_autostart::ManagerExt;
use vicifast_accounts::{ConfigStore, Keychain, Settings};
use vicifast_engine::Password;

/// Where settings are saved; `Err` when no location could be found (no home directory).
pub struct Store(pub Result<ConfigStore, String>);

/// The whole state, for a window that was just (re)created.
pub fn ui_state<R: Runtime>(app: &AppHandle<R>) -> UiState {
    let view = app.state::<Shared>();
    let view = view.view();
    let interface = view
        .local_address
        .as_deref()
        .and_then(network::interface_of);
    view.ui_state(interface)
}

/// Fails with `settings_file` when the settings file cannot be used: the window then shows that
/// message instead of a first-run form that would invite overwriting the file.
#[tauri::command]
pub async fn get_state(app: AppHandle) -> Result<UiState, CommandError> {
    if let Some(problem) = app.state::<Shared>().view().settings_problem.clone() {
        return Err(CommandError::new("settings_file", problem));
    }
    Ok(ui_state(&app))
}

#[tauri::command]
pub async fn save_settings(
    app: AppHandle,
    store: State<'_, Store>,
    secrets: State<'_, Secrets>,
    engine: State<'_, Engine>,
    settings: UiSettings,
    password: Option<String>,
) -> Result<UiState, CommandError> {
    let current = {
        let view = app.state::<Shared>();
        let view = view.view();
        if let Some(problem) = &view.settings_problem {
            return Err(CommandError::new(
                "settings_file",
                format!("The settings file cannot be used, so nothing was saved: {problem}"),
            ));
        }
        view.settings.clone().unwrap_or_default()
    };
    let store = store.0.clone().map_err(|e| {
        CommandError::new("settings_file", format!("Settings cannot be saved: {e}"))
    })?;
    let password = password.filter(|p| !p.is_empty()).map(Password::new);
    let new_password = password.is_some();
    let form = settings.clone();
    let updated = secrets
        .run(move |keychain| persist(&current, &form, password, keychain, &store))
        .await??;
    {
        let view = app.state::<Shared>();
        let mut view = view.view();
        view.settings = Some(updated);
        view.has_password = true;
    }
    apply_start_at_login(&app, settings.start_at_login);
    tray::refresh(&app);

    if let Err(e) = engine.start(&app, new_password).await {
        // Shown as the status (e.g. the keychain could not give the password back).
        tracing::warn!("registration not started after saving: {e}");
    }
    Ok(ui_state(&app))
}

/// Checks the form, stores a new password in the keychain (or checks one is there), then writes
/// the settings file. Nothing is written when the form is invalid; the password never goes to
/// the file. Blocking (keychain, disk).
fn persist(
    current: &Settings,
    form: &UiSettings,
    password: Option<Password>,
    keychain: &dyn Keychain,
    store: &ConfigStore,
) -> Result<Settings, CommandError> {
    let updated = settings::apply(current, form);
    if let Some(account) = settings::account(&updated) {
        account
            .to_config()
            .map_err(|e| CommandError::invalid(e.field, e.message))?;
    }
    match password {
        Some(p) => keychain
            .set(ACCOUNT, &p)
            .map_err(|e| CommandError::new("credentials", keychain_message(&e)))?,
        None => match keychain.get(ACCOUNT) {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(CommandError::invalid(
                    "password",
                    "Enter the password for this extension.",
                ))
            }
            Err(e) => return Err(CommandError::new("credentials", keychain_message(&e))),
        },
    }
    store.save(&updated).map_err(|e| {
        CommandError::new(
            "settings_file",
            format!("The settings could not be saved: {e}"),
        )
    })?;
    Ok(updated)
}

fn apply_start_at_login<R: Runtime>(app: &AppHandle<R>, enabled: bool) {
    let launcher = app.autolaunch();
    let result = if enabled {
        launcher.enable()
    } else {
        match launcher.is_enabled() {
            Ok(true) => launcher.disable(),
            other => other.map(|_| ()),
        }
    };
    if let Err(e) = result {
        tracing::warn!("start at login not applied: {e}");
    }
}

#[tauri::command]
pub async fn register(app: AppHandle, engine: State<'_, Engine>) -> Result<(), CommandError> {
    engine.register(&app).await
}

#[tauri::command]
pub async fn unregister(app: AppHandle, engine: State<'_, Engine>) -> Result<(), CommandError> {
    engine.stop(&app).await;
    Ok(())
}

#[tauri::command]
pub async fn clear_trace(app: AppHandle) -> Result<(), CommandError> {
    app.state::<Shared>().view().trace.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vicifast_accounts::{KeychainError, MemoryKeychain};
    use vicifast_engine::Transport;

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

    fn temp_store() -> (tempfile::TempDir, ConfigStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ConfigStore::new(dir.path().join("config.toml"));
        (dir, store)
    }

    #[test]
    fn saves_settings_and_keeps_the_password_out_of_the_file() {
        let (_dir, store) = temp_store();
        let keychain = MemoryKeychain::default();
        let saved = persist(
            &Settings::default(),
            &form("pbx.example.com"),
            Some(Password::new("s3cret-pw")),
            &keychain,
            &store,
        );
        assert!(saved.is_ok(), "{saved:?}");
        let file = std::fs::read_to_string(store.path()).unwrap_or_default();
        assert!(file.contains("pbx.example.com"), "{file}");
        assert!(!file.contains("s3cret-pw"), "{file}");
        let stored = keychain
            .get(ACCOUNT)
            .ok()
            .flatten()
            .map(|p| p.expose().to_owned());
        assert_eq!(stored.as_deref(), Some("s3cret-pw"));
    }

    #[test]
    fn no_password_anywhere_is_a_password_field_error() {
        let (_dir, store) = temp_store();
        let err = persist(
            &Settings::default(),
            &form("pbx.example.com"),
            None,
            &MemoryKeychain::default(),
            &store,
        )
        .err();
        assert_eq!(err.as_ref().map(|e| e.code), Some("invalid"));
        assert_eq!(err.and_then(|e| e.field).as_deref(), Some("password"));
        assert!(!store.path().exists(), "nothing is written");
    }

    #[test]
    fn invalid_settings_name_the_field_and_write_nothing() {
        let (_dir, store) = temp_store();
        let keychain = MemoryKeychain::default();
        let err = persist(
            &Settings::default(),
            &form(""),
            Some(Password::new("pw")),
            &keychain,
            &store,
        )
        .err();
        assert_eq!(err.and_then(|e| e.field).as_deref(), Some("server"));
        assert!(!store.path().exists());
        assert!(keychain.get(ACCOUNT).ok().flatten().is_none());
    }

    #[test]
    fn a_locked_keychain_is_a_credentials_error() {
        let (_dir, store) = temp_store();
        let keychain = MemoryKeychain::failing(KeychainError::Locked("test".to_owned()));
        let err = persist(
            &Settings::default(),
            &form("pbx.example.com"),
            Some(Password::new("pw")),
            &keychain,
            &store,
        )
        .err();
        assert_eq!(err.as_ref().map(|e| e.code), Some("credentials"));
        assert!(err.is_some_and(|e| e.message.contains("locked")));
        assert!(!store.path().exists());
    }
}
