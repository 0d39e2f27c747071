//! The Windows tray process (`vicifast-tray.exe`) under Wine: started with no window, as the
//! login item starts it, it registers the account saved with `vicifast-cli.exe account set`
//! using the password from Credential Manager, and puts its icon in the system tray (Wine draws
//! it in a "Wine System Tray" window when the desktop has no tray of its own). Its named pipe
//! answers `get_state` and `quit` (which removes the binding before the process exits) and is
//! open to the current user only; the end of the session (WM_QUERYENDSESSION/WM_ENDSESSION,
//! which `wineboot --end-session` sends as Windows does at logoff) unregisters too; a second
//! launch asks the first to open the window and leaves it alone. The tray icon changes when a
//! wrong password stops the registration; pictures of both looks are kept in
//! test-output/windows/.
//!
//! Needs `VICIFAST_TRAY_EXE`, `VICIFAST_DIST_CLI_EXE` and `VICIFAST_TRAY_CALL_EXE` (the pipe
//! client `tray_call.exe`, a test helper; `make test-windows-tray`); runs inside
//! tests/windows/run-under-wine.sh, and says why it was skipped elsewhere.
#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use vicifast_e2e::wine::{x_windows, Wine, WEBVIEW2_DIALOG_TITLE};
use vicifast_e2e::{
    account_args, registrar_with_user, Registrar, RegistrarOptions, Transport, WAIT,
};

/// Polls `done` until it holds, or fails after [`WAIT`] saying `what`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {WAIT:?}");
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// A private Wine prefix, the programs under test, and the tray processes started in it.
struct TrayUnderWine {
    wine: Wine,
    tray_exe: PathBuf,
    tray_call_exe: PathBuf,
    trays: Vec<Child>,
}

impl TrayUnderWine {
    /// `None` (after saying why) when the Wine tests were not asked for.
    fn new(test: &str) -> Option<TrayUnderWine> {
        let exe = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_file())
                .ok_or(format!(
                    "{var} names no built program (make test-windows-tray)"
                ))
        };
        let found = Wine::from_env().and_then(|wine| {
            let tray_exe = exe("VICIFAST_TRAY_EXE")?;
            let tray_call_exe = exe("VICIFAST_TRAY_CALL_EXE")?;
            let cli = exe("VICIFAST_DIST_CLI_EXE")?;
            Ok(TrayUnderWine {
                wine: wine.private_copy()?.with_cli_exe(cli),
                tray_exe,
                tray_call_exe,
                trays: Vec::new(),
            })
        });
        match found {
            Ok(found) => Some(found),
            Err(why) => {
                vicifast_e2e::wine::not_run(test, &why);
                None
            }
        }
    }

    /// A registrar with one extension, saved as the app's account (password in Credential
    /// Manager).
    fn saved_account(&self) -> (Registrar, String) {
        let (registrar, ext, password) = registrar_with_user(RegistrarOptions::default());
        let mut set = vec!["account".to_owned(), "set".to_owned(), "default".to_owned()];
        set.extend(account_args(&registrar, Transport::Udp, &ext));
        let saved = self.wine.run_cli(&set, &password, WAIT).unwrap();
        assert!(saved.status.success(), "account set: {saved:?}");
        (registrar, ext)
    }

    /// Saves an account, starts the tray process with no window and waits for its binding.
    fn start_registered(&mut self) -> (Registrar, String, usize) {
        let (registrar, ext) = self.saved_account();
        let tray = self.start_tray(&["--no-window"]);
        self.wait_for_one_binding(tray, &registrar, &ext);
        (registrar, ext, tray)
    }

    /// Starts `vicifast-tray.exe <args>`; no password in its environment: it has only
    /// Credential Manager.
    fn start_tray(&mut self, args: &[&str]) -> usize {
        let child = Command::new("wine")
            .arg(&self.tray_exe)
            .args(args)
            .env("WINEPREFIX", self.wine.prefix())
            .env_remove(vicifast_e2e::PASSWORD_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.trays.push(child);
        self.trays.len() - 1
    }

    fn is_running(&mut self, tray: usize) -> bool {
        self.trays[tray].try_wait().unwrap().is_none()
    }

    /// Waits for the tray process to end by itself.
    fn exit_status(&mut self, tray: usize, why: &str) -> ExitStatus {
        let mut status = None;
        wait_until(why, || {
            status = self.trays[tray].try_wait().unwrap();
            status.is_some()
        });
        status.unwrap()
    }

    /// `tray_call.exe <arg>` under Wine: its stdout as JSON, or its failure.
    fn tray_call(&self, arg: &str) -> Result<serde_json::Value, String> {
        self.tray_call_within(arg, WAIT)
    }

    fn tray_call_within(&self, arg: &str, deadline: Duration) -> Result<serde_json::Value, String> {
        let exe = self.tray_call_exe.to_str().unwrap();
        let out = self.wine.run(&[exe, arg], deadline)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "tray_call {arg}: {}\n{stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        serde_json::from_str(stdout.trim()).map_err(|e| format!("tray_call {arg}: {e}: {stdout}"))
    }

    /// Waits until the tray process answers on its pipe (it may still be starting; a call
    /// made in its first moments under Wine was once seen to get no answer, so each try is
    /// short).
    fn wait_for_pipe(&mut self, tray: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(self.is_running(tray), "vicifast-tray.exe exited");
            match self.tray_call_within("get_state", Duration::from_secs(5)) {
                Ok(_) => return,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "no answer on the tray process's pipe within {WAIT:?}: {e}"
                ),
            }
            std::thread::park_timeout(Duration::from_millis(100));
        }
    }

    fn wait_for_one_binding(&mut self, tray: usize, registrar: &Registrar, ext: &str) {
        wait_until("no binding at the registrar", || {
            assert!(self.is_running(tray), "vicifast-tray.exe exited");
            registrar.bindings(ext).is_ok_and(|b| b.len() == 1)
        });
    }
}

impl Drop for TrayUnderWine {
    fn drop(&mut self) {
        // Whatever a failed test left running; `Wine` then ends the prefix's wineserver.
        for tray in &mut self.trays {
            let _ = tray.kill();
            let _ = tray.wait();
        }
    }
}

#[test]
fn tray_registers_the_saved_account_without_a_window_and_quits_over_its_pipe() {
    let Some(mut wine) = TrayUnderWine::new(
        "tray_registers_the_saved_account_without_a_window_and_quits_over_its_pipe",
    ) else {
        return;
    };
    let (registrar, ext, tray) = wine.start_registered();
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

    // The state the window would fetch, over the named pipe.
    let mut state = serde_json::Value::Null;
    wait_until("get_state over the pipe never said `registered`", || {
        state = wine.tray_call("get_state").unwrap();
        state["status"]["state"] == "registered"
    });
    assert_eq!(state["settings"]["extension"], ext.as_str(), "{state}");
    assert_eq!(state["has_password"], true, "{state}");

    // `quit` answers once the binding is gone, then the process ends by itself.
    assert_eq!(wine.tray_call("quit"), Ok(serde_json::Value::Null));
    assert_eq!(registrar.bindings(&ext).unwrap(), vec![], "binding left");
    let status = wine.exit_status(tray, "vicifast-tray.exe still running after quit");
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn tray_pipe_is_open_to_the_current_user_only() {
    let Some(mut wine) = TrayUnderWine::new("tray_pipe_is_open_to_the_current_user_only") else {
        return;
    };
    let (_registrar, _ext, tray) = wine.start_registered();
    wine.wait_for_pipe(tray);
    let access = wine.tray_call("--access").unwrap();
    let user = access["user"].as_str().unwrap();
    let dacl = access["dacl"].as_str().unwrap();
    assert!(user.starts_with("S-1-5-"), "{access}");
    // Protected (nothing inherited), and exactly one entry: allow, for this user.
    let entries = dacl
        .strip_prefix("D:P")
        .unwrap_or_else(|| panic!("not a protected access list: {dacl}"));
    let entries: Vec<&str> = entries
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(")(")
        .collect();
    assert_eq!(entries.len(), 1, "{dacl}");
    let fields: Vec<&str> = entries[0].split(';').collect();
    assert_eq!(fields.len(), 6, "{dacl}");
    assert_eq!(fields[0], "A", "not an allow entry: {dacl}");
    assert_eq!(fields[5], user, "granted to someone else: {dacl}");
    assert!(
        ["GA", "FA"].contains(&fields[2]),
        "not full access for the user: {dacl}"
    );

    assert_eq!(wine.tray_call("quit"), Ok(serde_json::Value::Null));
    let status = wine.exit_status(tray, "vicifast-tray.exe still running after quit");
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn end_of_session_unregisters_and_ends_the_tray() {
    let Some(mut wine) = TrayUnderWine::new("end_of_session_unregisters_and_ends_the_tray") else {
        return;
    };
    let (registrar, ext, tray) = wine.start_registered();

    // What Windows does at logoff and shutdown: WM_QUERYENDSESSION, then WM_ENDSESSION, to
    // every top-level window; Wine ends the process once its windows have answered.
    let ended = wine
        .wine
        .run(&["wineboot", "--end-session", "--shutdown"], WAIT)
        .unwrap();
    assert!(ended.status.success(), "wineboot --end-session: {ended:?}");
    wine.exit_status(
        tray,
        "vicifast-tray.exe still running after the session ended",
    );
    assert_eq!(
        registrar.bindings(&ext).unwrap(),
        vec![],
        "binding left behind at the end of the session"
    );
}

#[test]
fn a_second_launch_asks_the_first_to_open_the_window_and_exits() {
    let Some(mut wine) =
        TrayUnderWine::new("a_second_launch_asks_the_first_to_open_the_window_and_exits")
    else {
        return;
    };
    let (registrar, ext, first) = wine.start_registered();
    wine.wait_for_pipe(first);

    // As the Start-menu entry launches it: no flag.
    let second = wine.start_tray(&[]);
    let status = wine.exit_status(second, "the second vicifast-tray.exe did not exit");
    assert_eq!(status.code(), Some(0), "{status}");

    // The first started the window process, which (Wine has no WebView2) explains that.
    wait_until("the first tray process did not open the window", || {
        x_windows().contains(WEBVIEW2_DIALOG_TITLE)
    });
    assert!(wine.is_running(first), "the first vicifast-tray.exe exited");
    assert_eq!(registrar.bindings(&ext).unwrap().len(), 1, "one binding");
    let closed = wine
        .wine
        .run(&["taskkill", "/IM", "vicifast.exe"], WAIT)
        .unwrap();
    assert!(closed.status.success(), "{closed:?}");

    assert_eq!(wine.tray_call("quit"), Ok(serde_json::Value::Null));
    let status = wine.exit_status(first, "vicifast-tray.exe still running after quit");
    assert_eq!(status.code(), Some(0), "{status}");
    assert_eq!(registrar.bindings(&ext).unwrap(), vec![]);
}

/// REGISTER requests the tray process has sent, as its trace (in `get_state`) shows them.
fn registers_sent(state: &serde_json::Value) -> usize {
    state["trace"].as_array().map_or(0, |trace| {
        trace
            .iter()
            .filter(|t| {
                t["direction"] == "sent"
                    && t["text"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("REGISTER "))
            })
            .count()
    })
}

#[test]
fn waking_from_sleep_registers_again() {
    let Some(mut wine) = TrayUnderWine::new("waking_from_sleep_registers_again") else {
        return;
    };
    let (registrar, ext, tray) = wine.start_registered();
    let mut state = serde_json::Value::Null;
    wait_until("get_state over the pipe never said `registered`", || {
        state = wine.tray_call("get_state").unwrap();
        state["status"]["state"] == "registered"
    });
    let before = registers_sent(&state);
    assert!(before > 0, "{state}");

    // Wine never sleeps: send the tray process's window what Windows broadcasts on waking.
    assert_eq!(wine.tray_call("--resume"), Ok(serde_json::Value::Null));
    wait_until("no REGISTER after waking", || {
        state = wine.tray_call("get_state").unwrap();
        registers_sent(&state) > before && state["status"]["state"] == "registered"
    });
    assert_eq!(registrar.bindings(&ext).unwrap().len(), 1, "one binding");

    assert_eq!(wine.tray_call("quit"), Ok(serde_json::Value::Null));
    wine.exit_status(tray, "vicifast-tray.exe still running after quit");
}

/// Where pictures of Wine's system tray go.
fn output_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-output/windows")
}

/// A picture (PNG) of Wine's system tray window, saved as `name`; `None` while there is no such
/// window to take (Wine makes it again when the first icon comes after the last went).
fn tray_picture(name: &str) -> Option<Vec<u8>> {
    let windows = x_windows();
    let id = windows
        .lines()
        .find(|l| l.contains("\"Wine System Tray\""))
        .and_then(|l| l.split_whitespace().next())?
        .to_owned();
    let dir = output_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    let taken = Command::new("import")
        .args(["-window", &id])
        .arg(&path)
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("import (imagemagick): {e}"));
    taken.success().then(|| std::fs::read(&path).unwrap())
}

/// The tray's picture once two in a row are the same (Wine draws a new icon a moment after the
/// tray process sets it).
fn settled_tray_picture(name: &str) -> Vec<u8> {
    let mut last = None;
    let mut settled = None;
    wait_until("the tray icon to settle", || {
        let now = tray_picture(name);
        if now.is_some() && now == last {
            settled = now;
            return true;
        }
        last = now;
        false
    });
    settled.unwrap()
}

#[test]
fn a_wrong_password_changes_the_tray_icon() {
    let Some(mut wine) = TrayUnderWine::new("a_wrong_password_changes_the_tray_icon") else {
        return;
    };
    let (registrar, ext, tray) = wine.start_registered();
    wait_until("get_state over the pipe never said `registered`", || {
        wine.tray_call("get_state").unwrap()["status"]["state"] == "registered"
    });
    wait_until("no icon in Wine's system tray", || {
        x_windows().contains("\"Wine System Tray\"")
    });
    let registered = settled_tray_picture("tray-registered");
    assert_eq!(wine.tray_call("quit"), Ok(serde_json::Value::Null));
    wine.exit_status(tray, "vicifast-tray.exe still running after quit");

    // The same account saved with a wrong password: the registrar refuses it.
    let mut set = vec!["account".to_owned(), "set".to_owned(), "default".to_owned()];
    set.extend(account_args(&registrar, Transport::Udp, &ext));
    let saved = wine.wine.run_cli(&set, "not-the-password", WAIT).unwrap();
    assert!(saved.status.success(), "account set: {saved:?}");
    let tray = wine.start_tray(&["--no-window"]);
    let mut state = serde_json::Value::Null;
    wait_until(
        "get_state over the pipe never said `wrong_password`",
        || {
            state = wine
                .tray_call_within("get_state", Duration::from_secs(5))
                .unwrap_or_default();
            state["status"]["problem"]["code"] == "wrong_password"
        },
    );
    assert_eq!(state["status"]["state"], "failed", "{state}");
    wait_until(
        "the tray icon never changed from the registered look",
        || tray_picture("tray-wrong-password").is_some_and(|p| p != registered),
    );
    settled_tray_picture("tray-wrong-password");
    assert_eq!(registrar.bindings(&ext).unwrap(), vec![], "no binding");

    assert_eq!(wine.tray_call("quit"), Ok(serde_json::Value::Null));
    wine.exit_status(tray, "vicifast-tray.exe still running after quit");
}
