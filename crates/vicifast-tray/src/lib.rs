//! VICIfast in the tray: the process that runs all day. It keeps the agent's extension
//! registered (the [`registration`] engine), shows the state in the [`tray`] and in desktop
//! [`notifications`], and serves the window process over a local socket ([`ipc`], speaking the
//! protocol of the `vicifast-ipc` crate).
//!
//! The window is a separate process (`vicifast`, Tauri with its web engine) started on demand
//! and gone when its window closes: a web engine costs far more memory than everything here, so
//! it must not stay resident. This process links no web engine and, on Linux, no GUI toolkit.

mod account_events;
pub mod app;
mod autostart;
pub mod ipc;
mod network;
mod notifications;
mod registration;
mod settings_file;
pub mod softphone;
pub mod state;
mod timeline;
pub mod tray;
#[cfg(test)]
mod ui_types;
pub mod window;

use app::App;
use interprocess::local_socket::tokio::Listener;
use std::sync::Arc;
use vicifast_accounts::{ConfigStore, OsKeychain};
use vicifast_ipc::process::{NO_WINDOW_FLAG, WINDOW_FLAG};
use vicifast_ipc::{Call, Request, ToWindow};

const USAGE: &str = "usage: vicifast-tray [--window | --no-window]
Keeps your phone extension registered from the system tray. A second launch opens the window.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WindowAtStart {
    /// Only when there is something to set up or fix.
    WhenNeeded,
    Always,
    Never,
}

pub fn run() {
    init_logging();
    let mut window_at_start = WindowAtStart::WhenNeeded;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            WINDOW_FLAG => window_at_start = WindowAtStart::Always,
            NO_WINDOW_FLAG => window_at_start = WindowAtStart::Never,
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("vicifast-tray: unknown argument `{other}`\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("VICIfast could not start: {e}");
            std::process::exit(1);
        }
    };

    // One instance per user: a second launch asks the first to show its window.
    let (listener, _instance_lock) = match runtime.block_on(claim_single_instance(window_at_start))
    {
        Ok(Some(claimed)) => claimed,
        Ok(None) => return,
        Err(e) => {
            eprintln!("VICIfast could not start: {e}");
            std::process::exit(1);
        }
    };

    let store = ConfigStore::default_location().map_err(|e| e.to_string());
    let app = {
        // The reducer of the engines' reports is a task on this runtime.
        let _in_runtime = runtime.enter();
        App::new(
            store,
            Arc::new(OsKeychain),
            window::Launcher::beside_current_exe(),
            true,
        )
    };
    let main_app = Arc::clone(&app);
    let main = async move {
        let app = main_app;
        tokio::spawn(ipc::serve(listener, Arc::clone(&app)));
        tokio::spawn(quit_on_signals(Arc::clone(&app)));
        let needs_window = app.start().await;
        if let Some(path) = app.settings_path() {
            let watching = Arc::clone(&app);
            tokio::spawn(settings_file::watch(path, move |stamp| {
                let app = Arc::clone(&watching);
                async move { app.settings_file_changed(stamp).await }
            }));
        }
        if window_at_start == WindowAtStart::Always
            || (needs_window && window_at_start == WindowAtStart::WhenNeeded)
        {
            app.open_window();
        }
        app.quit_requested().await;
        tracing::info!("quitting");
    };
    tray::run_main_loop(runtime, app, main);
}

/// `Ok(None)`: another instance is running (and was asked to open its window).
///
/// The instance is the holder of an exclusive lock on a file beside the socket: two launches at
/// the same moment (the login item and the agent opening the window) cannot both win, and a
/// socket file left by a crash (no lock holder) is simply replaced.
async fn claim_single_instance(
    window_at_start: WindowAtStart,
) -> Result<Option<(Listener, std::fs::File)>, String> {
    let lock_path =
        vicifast_ipc::lock_path().map_err(|e| format!("no place for the lock file: {e}"))?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            hand_over(window_at_start).await;
            return Ok(None);
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(format!("cannot lock {}: {e}", lock_path.display()))
        }
    }
    let name =
        vicifast_ipc::endpoint().map_err(|e| format!("no place for the local socket: {e}"))?;
    vicifast_ipc::listener_options(name)
        .map_err(|e| format!("cannot secure the local socket: {e}"))?
        .try_overwrite(true)
        .create_tokio()
        .map(|listener| Some((listener, lock)))
        .map_err(|e| format!("cannot listen on the local socket: {e}"))
}

/// Asks the running instance to open its window (it may still be starting: a few tries).
async fn hand_over(window_at_start: WindowAtStart) {
    if window_at_start == WindowAtStart::Never {
        return;
    }
    for _ in 0..50 {
        if let Ok((mut reader, mut writer)) = vicifast_ipc::connect().await {
            let request = Request {
                id: 1,
                call: Call::OpenWindow,
            };
            if writer.send(&request).await.is_ok() {
                let _ = reader.next::<ToWindow>().await;
                eprintln!("VICIfast is already running; its window was asked to open.");
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    eprintln!("VICIfast is already running but did not answer.");
}

/// Log lines to stderr; `RUST_LOG` sets the level (default info).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// SIGTERM (logout, shutdown) and SIGINT / Ctrl+C quit like the tray's Quit: unregister, exit.
async fn quit_on_signals(app: Arc<App>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
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
    }
    #[cfg(not(unix))]
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    tracing::info!("signal received: unregistering, then quitting");
    app.quit().await;
}

/// A plain valid settings form for `server`, for the crate's tests.
#[cfg(test)]
fn test_form(server: &str) -> vicifast_ipc::UiSettings {
    vicifast_ipc::UiSettings {
        server: server.to_owned(),
        extension: "101".to_owned(),
        auth_user: None,
        domain: None,
        transport: vicifast_engine::Transport::Udp,
        port: None,
        outbound_proxy: None,
        expires: 300,
        start_at_login: false,
    }
}
