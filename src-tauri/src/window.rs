//! The window, made from its config in tauri.conf.json; a second launch focuses it.

use tauri::{AppHandle, Manager, Runtime, WebviewWindowBuilder};

pub const MAIN: &str = "main";

/// Shows and focuses the window, creating it if it does not exist.
pub fn show<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
        return;
    }
    let Some(config) = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == MAIN)
        .cloned()
    else {
        tracing::error!("no window `{MAIN}` in tauri.conf.json");
        return;
    };
    match WebviewWindowBuilder::from_config(app, &config).and_then(|b| b.build()) {
        Ok(window) => {
            let _ = window.set_focus();
        }
        Err(e) => tracing::error!("could not open the window: {e}"),
    }
}
