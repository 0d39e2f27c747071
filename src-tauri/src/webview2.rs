//! The window's web engine on Windows is Microsoft Edge WebView2, part of current Windows 10 and
//! 11 but missing on some older or trimmed installations. Tauri, without it, shows a bare error
//! and leaves a process with no window; so this looks first and, when it is missing, says in
//! plain words what to install and exits with [`EXIT_WEBVIEW2_MISSING`], from which the tray
//! process knows to say the same the next time the window is asked for.

use vicifast_ipc::process::{EXIT_WEBVIEW2_MISSING, WEBVIEW2_MISSING};

/// Returns when WebView2 is there; otherwise explains and ends the process.
pub fn require() {
    let Err(e) = tauri::webview_version() else {
        return;
    };
    tracing::error!("no WebView2 runtime: {e}");
    eprintln!("VICIfast: {}", WEBVIEW2_MISSING.body);
    rfd::MessageDialog::new()
        .set_level(rfd::MessageLevel::Warning)
        .set_title(WEBVIEW2_MISSING.title)
        .set_description(WEBVIEW2_MISSING.body)
        .set_buttons(rfd::MessageButtons::Ok)
        .show();
    std::process::exit(EXIT_WEBVIEW2_MISSING);
}
