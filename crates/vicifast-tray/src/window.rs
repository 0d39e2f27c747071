//! Starts the window process (`vicifast`, installed next to this binary) when the window is
//! asked for and none is running. The window process exits when its window closes, taking its
//! web engine with it: that is what keeps the tray process small.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use vicifast_ipc::process::{EXIT_WEBVIEW2_MISSING, WEBVIEW2_MISSING, WINDOW_BINARY};

pub struct Launcher {
    binary: Option<PathBuf>,
    running: Arc<AtomicBool>,
}

impl Launcher {
    /// The window binary next to this process's own executable.
    pub fn beside_current_exe() -> Self {
        let binary = std::env::current_exe().ok().map(|exe| {
            exe.with_file_name(format!("{WINDOW_BINARY}{}", std::env::consts::EXE_SUFFIX))
        });
        Self {
            binary,
            running: Arc::default(),
        }
    }

    /// Never starts anything (tests).
    pub fn disabled() -> Self {
        Self {
            binary: None,
            running: Arc::default(),
        }
    }

    /// Whether a window process this launcher started is still running.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Starts the window process; a task waits for it so it does not linger as a zombie.
    pub fn launch(&self) {
        let Some(binary) = &self.binary else {
            return;
        };
        if self.running.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut command = tokio::process::Command::new(binary);
        command.stdin(std::process::Stdio::null());
        match command.spawn() {
            Ok(mut child) => {
                tracing::info!("window process started ({})", binary.display());
                let running = Arc::clone(&self.running);
                tokio::spawn(async move {
                    let status = child.wait().await;
                    running.store(false, Ordering::SeqCst);
                    if status.is_ok_and(|s| s.code() == Some(EXIT_WEBVIEW2_MISSING)) {
                        crate::notifications::show(&crate::notifications::Notice {
                            title: WEBVIEW2_MISSING.title.to_owned(),
                            body: WEBVIEW2_MISSING.body.to_owned(),
                        });
                    }
                });
            }
            Err(e) => {
                self.running.store(false, Ordering::SeqCst);
                tracing::error!("could not start the window ({}): {e}", binary.display());
            }
        }
    }
}
