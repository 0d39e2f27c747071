//! VICIfast's Windows programs under Wine, for the end-to-end tests of the Windows build.
//!
//! The tests run inside `tests/windows/run-under-wine.sh` (`make test-windows-e2e`), which gives
//! them a private WINEPREFIX (with the `bcryptprimitives.dll` test fixture that Wine 8 lacks)
//! and a private Xvfb display. They run only when asked (`VICIFAST_WINDOWS_E2E=1`), so the
//! Linux end-to-end run does not start Wine a second time, and skip with a message otherwise.

use crate::{Cli, CliError, Finished};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Set by `make test-windows-e2e`: run the Wine tests.
pub const WINDOWS_E2E_ENV: &str = "VICIFAST_WINDOWS_E2E";
/// The cross-built `vicifast-cli.exe` (set by mk/windows.mk).
pub const CLI_EXE_ENV: &str = "VICIFAST_CLI_EXE";

/// A prepared Wine prefix and the Windows build of `vicifast-cli`.
pub struct Wine {
    prefix: PathBuf,
    cli_exe: PathBuf,
    /// Holds a private copy of the prefix ([`Wine::private_copy`]) until dropped.
    _own: Option<tempfile::TempDir>,
}

impl Wine {
    /// The Wine set-up of this run, or why the Wine tests cannot run here (the caller prints it
    /// as the reason for skipping).
    pub fn from_env() -> Result<Wine, String> {
        if std::env::var_os(WINDOWS_E2E_ENV).is_none() {
            return Err(format!(
                "the Windows programs run under Wine only in `make test-windows-e2e` \
                 ({WINDOWS_E2E_ENV}=1 inside tests/windows/run-under-wine.sh)"
            ));
        }
        if crate::tools::find_program("wine").is_none() {
            return Err("wine is not installed (make windows-deps)".to_owned());
        }
        let prefix = std::env::var_os("WINEPREFIX")
            .map(PathBuf::from)
            .filter(|p| p.join("drive_c").is_dir())
            .ok_or("no prepared WINEPREFIX: run inside tests/windows/run-under-wine.sh")?;
        let cli_exe = std::env::var_os(CLI_EXE_ENV)
            .map(PathBuf::from)
            .ok_or(format!("{CLI_EXE_ENV} is not set"))?;
        if !cli_exe.is_file() {
            return Err(format!(
                "{} is not built: cargo build --target x86_64-pc-windows-gnu -p vicifast-cli",
                cli_exe.display()
            ));
        }
        Ok(Wine {
            prefix,
            cli_exe,
            _own: None,
        })
    }

    /// A prefix of this test's own (its own wineserver and registry), copied from the prepared
    /// one. Wine rewrites its files in place (the registry too), so everything is copied except
    /// the system DLLs, which are hard-linked: they are most of the prefix and nothing writes
    /// them.
    pub fn private_copy(&self) -> Result<Wine, String> {
        let dir = tempfile::Builder::new()
            .prefix("vicifast-wine-own.")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let copy = dir.path().join("prefix");
        std::fs::create_dir(&copy).map_err(|e| format!("{}: {e}", copy.display()))?;
        let script = r#"set -e
tar -C "$0" --exclude=./drive_c/windows/system32 -cf - . | tar -C "$1" -xf -
cp -al "$0/drive_c/windows/system32" "$1/drive_c/windows/system32""#;
        let output = Command::new("bash")
            .args(["-c", script])
            .arg(&self.prefix)
            .arg(&copy)
            .output()
            .map_err(|e| format!("bash: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "copying the prefix: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(Wine {
            prefix: copy,
            cli_exe: self.cli_exe.clone(),
            _own: Some(dir),
        })
    }

    /// The same prefix, running `exe` (e.g. the copy an installer put in place) as the CLI.
    pub fn with_cli_exe(mut self, exe: PathBuf) -> Wine {
        self.cli_exe = exe;
        self
    }

    /// The Windows `vicifast-cli.exe` this runs, as a Linux path.
    pub fn cli_exe(&self) -> &Path {
        &self.cli_exe
    }

    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// `%APPDATA%` of the prefix's user, as a Linux path.
    pub fn appdata(&self) -> Result<PathBuf, String> {
        Ok(self.user_profile()?.join("AppData/Roaming"))
    }

    /// `%LOCALAPPDATA%` of the prefix's user, as a Linux path.
    pub fn local_appdata(&self) -> Result<PathBuf, String> {
        Ok(self.user_profile()?.join("AppData/Local"))
    }

    /// `%USERPROFILE%` of the prefix's user (the Linux user's name), as a Linux path.
    fn user_profile(&self) -> Result<PathBuf, String> {
        let users = self.prefix.join("drive_c/users");
        let entries = std::fs::read_dir(&users).map_err(|e| format!("{}: {e}", users.display()))?;
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.join("AppData/Roaming").is_dir() && !p.ends_with("Public"))
            .ok_or_else(|| format!("no user with AppData under {}", users.display()))
    }

    /// `vicifast-cli.exe <args> --password-env …` under Wine (see [`Cli::spawn`]).
    pub fn spawn_cli<S: AsRef<OsStr>>(&self, args: &[S], password: &str) -> Result<Cli, CliError> {
        Cli::spawn_program(bash(), &self.wine_args(LAUNCH, args), password)
    }

    /// `vicifast-cli.exe <args>` under Wine without the `--password-env` flag the runner adds
    /// (a saved account's password comes from Credential Manager alone).
    pub fn spawn_cli_without_password<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Cli, CliError> {
        Cli::spawn_program(
            bash(),
            &self.wine_args(LAUNCH_WITHOUT_PASSWORD, args),
            "not-the-password",
        )
    }

    /// A one-shot command (`bindings`, `account set`, …) under Wine, to its end.
    pub fn run_cli<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        password: &str,
        timeout: Duration,
    ) -> Result<Finished, String> {
        Cli::run_program(bash(), &self.wine_args(LAUNCH, args), password, timeout)
    }

    /// A Windows program (`reg`, `cmd`, …) under Wine, to its end, with its output.
    pub fn run(&self, args: &[&str], timeout: Duration) -> Result<Output, String> {
        let mut cmd = Command::new("wine");
        cmd.args(args).env("WINEPREFIX", &self.prefix);
        crate::tools::run_with_deadline(&mut cmd, timeout)
            .map_err(|e| format!("wine {args:?}: {e}"))
    }

    /// Waits until the prefix's wineserver has exited (which saves the registry to its files):
    /// every program of this prefix must have ended first.
    pub fn wait_for_wineserver_exit(&self, timeout: Duration) -> Result<(), String> {
        let mut cmd = Command::new("wineserver");
        cmd.arg("-w").env("WINEPREFIX", &self.prefix);
        crate::tools::run_with_deadline(&mut cmd, timeout)
            .map(drop)
            .map_err(|e| format!("wineserver -w: {e}"))
    }

    /// bash's arguments: the launch script, then the prefix, the exe and `args`.
    fn wine_args<S: AsRef<OsStr>>(&self, script: &str, args: &[S]) -> Vec<OsString> {
        let mut all: Vec<OsString> = vec![
            "-c".into(),
            script.into(),
            self.prefix.clone().into_os_string(),
            self.cli_exe.clone().into_os_string(),
        ];
        all.extend(args.iter().map(|a| a.as_ref().to_owned()));
        all
    }
}

impl Drop for Wine {
    fn drop(&mut self) {
        if self._own.is_some() {
            let _ = Command::new("wineserver")
                .arg("-k")
                .env("WINEPREFIX", &self.prefix)
                .output();
        }
    }
}

/// `bash -c LAUNCH <prefix> <exe> <args…>`: exec keeps the pid, so a signal to the child reaches
/// the Windows program (Wine turns SIGINT into the console's Ctrl-C event).
const LAUNCH: &str = "export WINEPREFIX=\"$0\"; exec wine \"$@\"";
/// The same without the last two arguments (the runner's `--password-env VAR`).
const LAUNCH_WITHOUT_PASSWORD: &str = "export WINEPREFIX=\"$0\"; exec wine \"${@:1:$(($# - 2))}\"";

fn bash() -> PathBuf {
    PathBuf::from("/bin/bash")
}

/// `path` as a Windows program under Wine names it: Wine's drive Z: is the Linux root.
pub fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// A Windows test that cannot run: a failure where the Wine tests were asked for (`make test`
/// asks, in its `test-windows-*` steps), so a missing program never passes silently. Elsewhere
/// (a plain `cargo test`, or `make test`'s Linux pass over the same files) it only says why: the
/// test is not skipped for the run's count, since it runs in its own step.
pub fn not_run(test: &str, why: &str) {
    if std::env::var_os(WINDOWS_E2E_ENV).is_some() {
        panic!("{test} was asked to run under Wine ({WINDOWS_E2E_ENV}=1) but cannot: {why}");
    }
    eprintln!("{test}: not run here: {why}");
}

/// The title of the window process's explanation when WebView2 is missing (always, under Wine).
pub const WEBVIEW2_DIALOG_TITLE: &str = "VICIfast cannot open its window";

/// The top-level X windows on this display, as `xwininfo -root -tree` lists them.
pub fn x_windows() -> String {
    let out = Command::new("xwininfo")
        .args(["-root", "-tree"])
        .output()
        .unwrap_or_else(|e| panic!("xwininfo -root -tree: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
