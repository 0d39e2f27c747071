//! VICIfast's Windows programs under Wine, for the end-to-end tests of the Windows build.
//!
//! The tests run inside `tests/windows/run-under-wine.sh` (`make test-windows-e2e`), which gives
//! them a private WINEPREFIX (with the `bcryptprimitives.dll` test fixture that Wine 8 lacks)
//! and a private Xvfb display. They run only when asked (`VICIFAST_WINDOWS_E2E=1`), so the
//! Linux end-to-end run does not start Wine a second time, and skip with a message otherwise.

use crate::{Cli, CliError, Finished};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Set by `make test-windows-e2e`: run the Wine tests.
pub const WINDOWS_E2E_ENV: &str = "VICIFAST_WINDOWS_E2E";
/// The cross-built `vicifast-cli.exe` (set by mk/windows.mk).
pub const CLI_EXE_ENV: &str = "VICIFAST_CLI_EXE";

/// A prepared Wine prefix and the Windows build of `vicifast-cli`.
pub struct Wine {
    prefix: PathBuf,
    cli_exe: PathBuf,
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
        Ok(Wine { prefix, cli_exe })
    }

    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// `%APPDATA%` of the prefix's user, as a Linux path.
    pub fn appdata(&self) -> Result<PathBuf, String> {
        let users = self.prefix.join("drive_c/users");
        let entries = std::fs::read_dir(&users).map_err(|e| format!("{}: {e}", users.display()))?;
        entries
            .filter_map(Result::ok)
            .map(|e| e.path().join("AppData/Roaming"))
            .find(|p| p.is_dir() && !p.starts_with(users.join("Public")))
            .ok_or_else(|| format!("no user with AppData under {}", users.display()))
    }

    /// `vicifast-cli.exe <args> --password-env …` under Wine (see [`Cli::spawn`]).
    pub fn spawn_cli<S: AsRef<OsStr>>(&self, args: &[S], password: &str) -> Result<Cli, CliError> {
        Cli::spawn_program(wine_program(), &self.exe_args(args), password)
    }

    /// `vicifast-cli.exe <args>` under Wine without the `--password-env` flag the runner adds
    /// (a saved account's password comes from Credential Manager alone).
    pub fn spawn_cli_without_password<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Cli, CliError> {
        let mut sh_args: Vec<std::ffi::OsString> = vec![
            "-c".into(),
            // The last two arguments are `--password-env VAR`.
            "exec wine \"${@:1:$(($# - 2))}\"".into(),
            "vicifast-cli-under-wine".into(),
        ];
        sh_args.extend(self.exe_args(args));
        Cli::spawn_program(PathBuf::from("/bin/bash"), &sh_args, "not-the-password")
    }

    /// A one-shot command (`bindings`, `account set`, …) under Wine, to its end.
    pub fn run_cli<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        password: &str,
        timeout: Duration,
    ) -> Result<Finished, String> {
        Cli::run_program(wine_program(), &self.exe_args(args), password, timeout)
    }

    fn exe_args<S: AsRef<OsStr>>(&self, args: &[S]) -> Vec<std::ffi::OsString> {
        let mut all = vec![self.cli_exe.clone().into_os_string()];
        all.extend(args.iter().map(|a| a.as_ref().to_owned()));
        all
    }
}

fn wine_program() -> PathBuf {
    crate::tools::find_program("wine").unwrap_or_else(|| PathBuf::from("wine"))
}

/// `path` as a Windows program under Wine names it: Wine's drive Z: is the Linux root.
pub fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}
