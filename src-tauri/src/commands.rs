//! The window's commands (docs/ipc-contract.md): thin wrappers that check input, then delegate.

use crate::error::CommandError;
use crate::registration::{keychain_message, Engine, Secrets};
use crate::settings::{self, UiSettings, ACCOUNT};
use crate::state::{Shared, UiState};
use crate::{network, tray};
use tauri::{AppHandle, Manager, Runtime, State};
use tauri_plugin_autostart::ManagerExt;
use vicifast_accounts::ConfigStore;
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
    let updated = settings::apply(&current, &settings);
    if let Some(account) = settings::account(&updated) {
        account
            .to_config()
            .map_err(|e| CommandError::invalid(e.field, e.message))?;
    }

    let password = password.filter(|p| !p.is_empty()).map(Password::new);
    let new_password = password.is_some();
    match password {
        Some(p) => secrets
            .run(move |keychain| keychain.set(ACCOUNT, &p))
            .await?
            .map_err(|e| CommandError::new("credentials", keychain_message(&e)))?,
        None => match secrets.run(|keychain| keychain.get(ACCOUNT)).await? {
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

    let store = store.0.as_ref().map_err(|e| {
        CommandError::new("settings_file", format!("Settings cannot be saved: {e}"))
    })?;
    store.save(&updated).map_err(|e| {
        CommandError::new(
            "settings_file",
            format!("The settings could not be saved: {e}"),
        )
    })?;
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
