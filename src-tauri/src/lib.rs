//! VICIfast desktop app: keeps the agent's extension registered from the tray, with a small
//! window showing whether calls can reach this computer, and if not, why.
//!
//! `run()` wires the pieces: the shared [`state`], the [`registration`] engine, the [`tray`],
//! the window's [`commands`] and [`notifications`]. Closing the window destroys it (the app
//! stays in the tray); it is created again on demand.

mod commands;
mod error;
mod network;
mod notifications;
mod registration;
mod settings;
mod state;
mod timeline;
mod tray;
mod window;

use commands::Store;
use registration::{Engine, Secrets};
use state::Shared;
use std::sync::Arc;
use tauri::{AppHandle, Manager, RunEvent, Runtime};
use vicifast_accounts::{ConfigStore, OsKeychain};
use vicifast_engine::Stamped;

/// Command-line flag: open the window at start even when registering from saved settings.
pub const WINDOW_FLAG: &str = "--window";

pub fn run() {
    init_logging();
    let open_window = std::env::args().any(|a| a == WINDOW_FLAG);
    let store = Store(ConfigStore::default_location().map_err(|e| e.to_string()));
    let built = tauri::Builder::default()
        // First, so a second launch is handed over before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            window::show(app);
        }))
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            None,
        ))
        .manage(Shared::default())
        .manage(Engine::default())
        .manage(store)
        .manage(Secrets(Arc::new(OsKeychain)))
        .invoke_handler(tauri::generate_handler![
            commands::get_state,
            commands::save_settings,
            commands::register,
            commands::unregister,
            commands::clear_trace,
        ])
        .setup(move |app| {
            startup(app.handle(), open_window);
            #[cfg(unix)]
            quit_on_signals(app.handle());
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match built {
        Ok(app) => app,
        Err(e) => {
            eprintln!("VICIfast could not start: {e}");
            std::process::exit(1);
        }
    };
    app.run(|_app, event| {
        // The last window closed: stay in the tray. An explicit exit (Quit) has a code.
        if let RunEvent::ExitRequested {
            code: None, api, ..
        } = event
        {
            api.prevent_exit();
        }
    });
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Loads the settings and registers at once when an account and its password are saved;
/// otherwise (first run, a settings problem) opens the window.
fn startup<R: Runtime>(app: &AppHandle<R>, mut open_window: bool) {
    let loaded = match &app.state::<Store>().0 {
        Ok(store) => store
            .load()
            .map_err(|e| (store_path_hint(store), e.to_string())),
        Err(e) => Err((String::new(), e.clone())),
    };
    let has_account = match loaded {
        Ok(settings) => {
            let has = settings::account(&settings).is_some();
            app.state::<Shared>().view().settings = Some(settings);
            has
        }
        Err((path, detail)) => {
            settings_problem(app, &path, &detail);
            false
        }
    };
    if let Err(e) = tray::create(app) {
        tracing::error!("no tray icon: {e}");
        open_window = true;
    }
    if has_account {
        let handle = app.clone();
        tauri::async_runtime::spawn(async move {
            if let Err(e) = handle.state::<Engine>().start(&handle, false).await {
                tracing::warn!("not registering at start: {e}");
                window::show(&handle);
            }
        });
    } else {
        open_window = true;
    }
    if open_window {
        window::show(app);
    }
}

/// SIGTERM (logout, shutdown) and SIGINT quit like the tray's Quit: unregister, then exit.
#[cfg(unix)]
fn quit_on_signals<R: Runtime>(app: &AppHandle<R>) {
    use tokio::signal::unix::{signal, SignalKind};
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("cannot watch for SIGTERM/SIGINT");
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("signal received: unregistering, then quitting");
        tray::quit_app(&app);
    });
}

fn store_path_hint(store: &ConfigStore) -> String {
    format!("{}", store.path().display())
}

/// A settings file that cannot be used is shown as the status; it is never overwritten.
fn settings_problem<R: Runtime>(app: &AppHandle<R>, path: &str, detail: &str) {
    let action = if path.is_empty() {
        "Ask your administrator for help, then restart VICIfast.".to_owned()
    } else {
        format!(
            "VICIfast left the file as it is. Ask your administrator to repair or remove {path}, then restart VICIfast."
        )
    };
    let status = serde_json::json!({
        "at": Stamped::now(()).at,
        "account": settings::ACCOUNT,
        "state": "failed",
        "cause": "failed",
        "contact": null, "server": null, "transport": "udp", "local_address": null,
        "expires_in": null, "next_refresh_in": null, "next_attempt_in": null,
        "problem": {
            "code": "settings_file",
            "message": "The settings file could not be read.",
            "action": action,
            "detail": detail,
        },
        "bindings": [],
    });
    let shared = app.state::<Shared>();
    let mut view = shared.view();
    view.settings_problem = Some(detail.to_owned());
    view.problem_words = Some(state::problem_words("settings_file").to_owned());
    view.status = Some(status);
}
