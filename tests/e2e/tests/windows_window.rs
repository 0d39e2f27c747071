//! The Windows window process (`vicifast.exe`) on a system without Microsoft Edge WebView2 (Wine
//! has none): instead of a bare error and a process left without a window, it shows a message
//! box saying what to install, and once that is closed it exits with code 3 (which tells the
//! tray process to say the same).
//!
//! Needs `VICIFAST_WINDOW_EXE` (`make test-windows-window`); runs inside
//! tests/windows/run-under-wine.sh, and says why it was skipped elsewhere.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vicifast_e2e::wine::{x_windows, Wine, WEBVIEW2_DIALOG_TITLE as DIALOG_TITLE};
use vicifast_e2e::WAIT;

#[test]
fn window_without_webview2_explains_and_exits() {
    let found = Wine::from_env().and_then(|wine| {
        let exe = std::env::var_os("VICIFAST_WINDOW_EXE")
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .ok_or("VICIFAST_WINDOW_EXE names no built vicifast.exe (make test-windows-window)")?;
        Ok((wine, exe))
    });
    let (wine, exe) = match found {
        Ok(found) => found,
        Err(why) => {
            vicifast_e2e::wine::not_run("window_without_webview2_explains_and_exits", &why);
            return;
        }
    };
    let mut window = Command::new("wine")
        .arg(&exe)
        .env("WINEPREFIX", wine.prefix())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The explanation appears as a dialog on the display.
    let deadline = Instant::now() + WAIT;
    while !x_windows().contains(DIALOG_TITLE) {
        if let Some(status) = window.try_wait().unwrap() {
            panic!("vicifast.exe exited ({status}) without showing {DIALOG_TITLE:?}");
        }
        assert!(
            Instant::now() < deadline,
            "no dialog {DIALOG_TITLE:?} within {WAIT:?}"
        );
        std::thread::park_timeout(Duration::from_millis(100));
    }

    // Closing it (as the user's OK would) ends the process, with the code the tray reads.
    let closed = wine
        .run(&["taskkill", "/IM", "vicifast.exe"], WAIT)
        .unwrap();
    assert!(closed.status.success(), "{closed:?}");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = window.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "vicifast.exe still running after its dialog closed"
        );
        std::thread::park_timeout(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut window.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(3), "{status}\n{stderr}");
    assert!(
        stderr.contains("Microsoft Edge WebView2 Runtime"),
        "no explanation on stderr:\n{stderr}"
    );
    assert!(
        !x_windows().contains(DIALOG_TITLE),
        "the dialog is still shown"
    );
}
