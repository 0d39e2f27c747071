//! Harness for the end-to-end tests: a real Kamailio registrar per test ([`Registrar`]) and the
//! `vicifast-cli` binary driven as a child process ([`Cli`]).
//!
//! Every registrar lives in its own temp dir with its own ports, so tests run in parallel.
//! Nothing here sleeps to synchronise: waits are on conditions, each under a deadline.

mod cli;
pub mod edge;
pub mod fake_registrar;
pub mod fleet;
pub mod netns;
mod registrar;
pub mod skip;
pub mod softphone;
mod tools;
pub mod wine;

pub use cli::{Cli, CliError, Finished, PASSWORD_ENV};
pub use registrar::{
    derived_password, AsteriskHabits, Binding, HarnessError, RegisterAttempt, Registrar,
    RegistrarOptions, Transport,
};

use rand::distributions::{Alphanumeric, DistString};
use std::process::ExitCode;
use std::time::Duration;

/// Upper bound for any one expected status or exit: generous, since a slow CI machine must not
/// fail a test; a passing run never waits this long.
pub const WAIT: Duration = Duration::from_secs(30);

/// A fresh random secret (24 alphanumerics): tests never hold a fixed password.
pub fn random_password() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 24)
}

/// A fresh extension number, so tests sharing a registrar cannot see each other's bindings.
pub fn random_extension() -> String {
    use rand::Rng;
    rand::thread_rng().gen_range(1000..10_000).to_string()
}

/// The account flags that point `vicifast-cli` at `registrar` over `transport` as `ext`
/// (everything but the password and the subcommand).
pub fn account_args(registrar: &Registrar, transport: Transport, ext: &str) -> Vec<String> {
    account_args_via(registrar, "127.0.0.1", transport, ext)
}

/// Like [`account_args`], reaching the registrar at `host` (e.g. `[::1]`).
pub fn account_args_via(
    registrar: &Registrar,
    host: &str,
    transport: Transport,
    ext: &str,
) -> Vec<String> {
    let mut args = vec![
        "--registrar".to_owned(),
        format!("{host}:{}", registrar.port(transport)),
        "--transport".to_owned(),
        transport.as_str().to_owned(),
        "--user".to_owned(),
        ext.to_owned(),
    ];
    if transport == Transport::Tls {
        args.push("--ca-file".to_owned());
        args.push(registrar.ca_file().display().to_string());
    }
    args
}

/// `register <account flags> --json <extra>` for `vicifast-cli`.
pub fn register_args(
    registrar: &Registrar,
    transport: Transport,
    ext: &str,
    extra: &[&str],
) -> Vec<String> {
    command_args("register", registrar, transport, ext, extra)
}

/// `<command> <account flags> --json <extra>`, for `register`, `unregister` and `bindings`.
pub fn command_args(
    command: &str,
    registrar: &Registrar,
    transport: Transport,
    ext: &str,
    extra: &[&str],
) -> Vec<String> {
    let mut args = vec![command.to_owned()];
    args.extend(account_args(registrar, transport, ext));
    args.push("--json".to_owned());
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// A registrar with one fresh user: (registrar, extension, password).
pub fn registrar_with_user(options: RegistrarOptions) -> (Registrar, String, String) {
    let registrar = Registrar::start(options).unwrap_or_else(|e| panic!("{e}"));
    let ext = random_extension();
    let password = registrar
        .add_user(&ext)
        .unwrap_or_else(|e| panic!("adding user {ext}: {e}"));
    (registrar, ext, password)
}

/// A field of /proc/<pid>/status counted in kB (`VmRSS:`, `VmHWM:`…), in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in {path}"))
}

/// The `main` of a benchmark that takes one optional count (`usage` names it, with its range
/// when bounded): `default` without it, refused outside `allowed`; runs `bench`, and says what
/// failed.
pub fn bench_main(
    name: &str,
    usage: &str,
    default: usize,
    allowed: std::ops::RangeInclusive<usize>,
    bench: fn(usize) -> Result<(), String>,
) -> ExitCode {
    let count = match std::env::args().nth(1).map(|a| a.parse()) {
        None => default,
        Some(Ok(n)) if allowed.contains(&n) => n,
        Some(_) => {
            eprintln!("usage: {name} [{usage}]");
            return ExitCode::from(2);
        }
    };
    match bench(count) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{name}: {err}");
            ExitCode::FAILURE
        }
    }
}
