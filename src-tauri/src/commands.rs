//! The window's commands (docs/ipc-contract.md): each is passed to VICIfast in the tray, which
//! runs the registration. Saving a new password is the one thing done here: it goes straight
//! from the form to the OS keychain, so it never crosses the local socket.

use crate::link::TrayLink;
use tauri::{AppHandle, State};
use vicifast_accounts::{Keychain, OsKeychain, Settings};
use vicifast_core::Password;
use vicifast_ipc::settings::{self, UiSettings, ACCOUNT};
use vicifast_ipc::{Call, CommandError};

type Answer = Result<serde_json::Value, CommandError>;

#[tauri::command]
pub async fn get_state(app: AppHandle, link: State<'_, TrayLink>) -> Answer {
    link.call(&app, Call::GetState).await
}

#[tauri::command]
pub async fn save_settings(
    app: AppHandle,
    link: State<'_, TrayLink>,
    settings: UiSettings,
    password: Option<String>,
) -> Answer {
    // The form is checked before the keychain is touched: an invalid form changes nothing.
    settings::validated(&Settings::default(), &settings)?;
    let password = password.filter(|p| !p.is_empty()).map(Password::new);
    let password_saved = match password {
        Some(password) => {
            store_password(password).await?;
            true
        }
        None => false,
    };
    link.call(
        &app,
        Call::SaveSettings {
            settings,
            password_saved,
        },
    )
    .await
}

/// Puts the password in the OS keychain, off the async threads (it may wait on D-Bus or an
/// unlock prompt).
async fn store_password(password: Password) -> Result<(), CommandError> {
    tauri::async_runtime::spawn_blocking(move || OsKeychain.set(ACCOUNT, &password))
        .await
        .map_err(|e| {
            CommandError::new(
                "credentials",
                format!("The keychain call did not finish ({e})."),
            )
        })?
        .map_err(|e| CommandError::new("credentials", format!("{e}.")))
}

#[tauri::command]
pub async fn register(app: AppHandle, link: State<'_, TrayLink>) -> Answer {
    link.call(&app, Call::Register).await
}

#[tauri::command]
pub async fn unregister(app: AppHandle, link: State<'_, TrayLink>) -> Answer {
    link.call(&app, Call::Unregister).await
}

/// "Use this computer" after another device took the extension ("stop here" is `unregister`).
#[tauri::command]
pub async fn take_over(app: AppHandle, link: State<'_, TrayLink>) -> Answer {
    link.call(&app, Call::TakeOver).await
}

#[tauri::command]
pub async fn clear_trace(app: AppHandle, link: State<'_, TrayLink>) -> Answer {
    link.call(&app, Call::ClearTrace).await
}
