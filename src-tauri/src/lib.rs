//! VICIfast's window: status, timeline, SIP trace and settings. This process exists only while
//! the window is open. The registration runs in VICIfast in the tray (`vicifast-tray`), which
//! this process starts if needed and talks to over a local socket ([`link`]); closing the window
//! ends this process and its web engine, so what stays running all day is small.

mod commands;
mod link;
#[cfg(windows)]
mod webview2;
mod window;

use link::TrayLink;

pub fn run() {
    init_logging();
    #[cfg(windows)]
    webview2::require();
    let built = tauri::Builder::default()
        // First, so a second launch is handed over before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            window::show(app);
        }))
        .manage(TrayLink::default())
        .invoke_handler(tauri::generate_handler![
            commands::get_state,
            commands::save_settings,
            commands::register,
            commands::unregister,
            commands::take_over,
            commands::clear_trace,
        ])
        .setup(|app| {
            window::show(app.handle());
            Ok(())
        })
        .build(tauri::generate_context!());
    match built {
        // The last window closed: this process ends (the registration goes on in the tray).
        Ok(app) => app.run(|_app, _event| {}),
        Err(e) => {
            eprintln!("VICIfast could not open its window: {e}");
            std::process::exit(1);
        }
    }
}

/// Log lines to stderr; `RUST_LOG` sets the level (default info).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
