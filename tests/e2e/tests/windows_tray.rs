//! The Windows tray process (`vicifast-tray.exe`, release) under Wine: started with no window,
//! as the login item starts it, it registers the account saved with `vicifast-cli.exe account
//! set` using the password from Credential Manager, and puts its icon in the system tray (Wine
//! draws it in a "Wine System Tray" window when the desktop has no tray of its own).
//!
//! Needs `VICIFAST_TRAY_EXE` and `VICIFAST_DIST_CLI_EXE` (`make test-windows-tray`); runs inside
//! tests/windows/run-under-wine.sh, and says why it was skipped elsewhere.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vicifast_e2e::wine::Wine;
use vicifast_e2e::{account_args, registrar_with_user, RegistrarOptions, Transport, WAIT};

fn x_windows() -> String {
    let out = Command::new("xwininfo")
        .args(["-root", "-tree"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `done` until it holds, or fails after [`WAIT`] saying `what`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {WAIT:?}");
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

#[test]
fn tray_registers_the_saved_account_without_a_window() {
    let exe = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .ok_or(format!(
                "{var} names no built program (make test-windows-tray)"
            ))
    };
    let found = Wine::from_env().and_then(|wine| {
        let tray = exe("VICIFAST_TRAY_EXE")?;
        let cli = exe("VICIFAST_DIST_CLI_EXE")?;
        Ok((wine.private_copy()?.with_cli_exe(cli), tray))
    });
    let (wine, tray_exe) = match found {
        Ok(found) => found,
        Err(why) => {
            vicifast_e2e::wine::not_run("tray_registers_the_saved_account_without_a_window", &why);
            return;
        }
    };
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
    let mut set = vec!["account".to_owned(), "set".to_owned(), "default".to_owned()];
    set.extend(account_args(&registrar, Transport::Udp, &ext));
    let saved = wine.run_cli(&set, &password, WAIT).unwrap();
    assert!(saved.status.success(), "account set: {saved:?}");

    // No password in its environment: the tray process has only Credential Manager.
    let mut tray = Command::new("wine")
        .arg(&tray_exe)
        .arg("--no-window")
        .env("WINEPREFIX", wine.prefix())
        .env_remove(vicifast_e2e::PASSWORD_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    wait_until("no binding at the registrar", || {
        assert!(
            tray.try_wait().unwrap().is_none(),
            "vicifast-tray.exe exited"
        );
        registrar.bindings(&ext).is_ok_and(|b| b.len() == 1)
    });
    let binding = &registrar.bindings(&ext).unwrap()[0];
    assert!(
        binding
            .user_agent
            .as_deref()
            .is_some_and(|ua| ua.starts_with("VICIfast/")),
        "{binding:?}"
    );
    wait_until("no icon in Wine's system tray", || {
        x_windows().contains("\"Wine System Tray\"")
    });
    assert!(
        !x_windows().contains("\"VICIfast\":"),
        "a window opened though the tray process was started with --no-window"
    );

    // The tray process has no way to be asked to quit here yet: end the prefix's programs.
    let _ = tray.kill();
    let _ = tray.wait();
}
