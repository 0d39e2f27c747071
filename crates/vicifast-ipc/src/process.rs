//! How one process starts the other: both are installed side by side, the window starts the
//! tray process when it is not running, and the tray process starts the window when asked for it.

/// The tray process's file name, without the platform's suffix.
pub const TRAY_BINARY: &str = "vicifast-tray";

/// The window process's file name, without the platform's suffix.
pub const WINDOW_BINARY: &str = "vicifast";

/// Tells the tray process to open the window at start even when registering from saved settings.
pub const WINDOW_FLAG: &str = "--window";

/// Tells the tray process never to open the window at start (the window starts it with this).
pub const NO_WINDOW_FLAG: &str = "--no-window";

/// The window process's exit code when the system lacks its web engine (Microsoft Edge
/// WebView2 on Windows): it has explained that itself; the tray process says it again when it
/// started that window, since the registration goes on without one.
pub const EXIT_WEBVIEW2_MISSING: i32 = 3;

/// A title and a message in the words the user sees.
pub struct Explanation {
    pub title: &'static str,
    pub body: &'static str,
}

/// What the user is told when the window cannot open for lack of WebView2.
pub const WEBVIEW2_MISSING: Explanation = Explanation {
    title: "VICIfast cannot open its window",
    body: "The window needs the Microsoft Edge WebView2 Runtime, which is missing on this \
           computer. Install \"Microsoft Edge WebView2 Runtime\" (Evergreen) from Microsoft, \
           or ask your IT department to. Your phone stays registered meanwhile: VICIfast keeps \
           running in the tray.",
};
