//! `vicifast-cli`: the registration engine without a window, for support staff, scripts, tests and
//! benchmarks.
//!
//! With `register`, SIGINT or SIGTERM unregister and exit ("stop here"); on Unix, SIGUSR1 answers
//! "use this computer" when another device took the extension (`extension_in_use`).
//!
//! Exit codes: 0 done (or stopped after unregistering: SIGINT/SIGTERM; on Windows Ctrl-C,
//! Ctrl-Break, console close, logoff, shutdown), 1 the registration or query failed in a way
//! retrying will not fix, 2 bad usage.

mod account;
mod output;
mod password;

use clap::{Args, Parser, Subcommand};
use password::PasswordArgs;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use vicifast_engine::validate;
use vicifast_engine::{
    AccountConfig, DriverOptions, EdgeConfig, EngineEvent, FixedContact, Password, Registration,
    RegistrationState, Transport,
};

#[derive(Parser, Debug)]
#[command(
    name = "vicifast-cli",
    version,
    about = "Keep a SIP extension registered, from the command line"
)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Print every SIP message sent and received (credentials redacted): on stderr, or as
    /// `trace` events on stdout with --json.
    #[arg(long, global = true)]
    trace: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Register and stay registered until interrupted (Ctrl-C, SIGTERM or closing the console unregister, then exit 0).
    Register {
        #[command(flatten)]
        account: AccountArgs,
        /// One JSON object per engine event on stdout (status changes, incoming calls, another
        /// device on the extension, …), each with an `event` field.
        #[arg(long)]
        json: bool,
    },
    /// Remove this machine's bindings of the extension, then exit.
    Unregister {
        #[command(flatten)]
        account: AccountArgs,
        #[arg(long)]
        json: bool,
    },
    /// Print the bindings the registrar holds for the extension, then exit.
    Bindings {
        #[command(flatten)]
        account: AccountArgs,
        #[arg(long)]
        json: bool,
    },
    /// Save, list or remove accounts (settings file + system keychain, shared with the app).
    Account {
        #[command(subcommand)]
        command: account::AccountCommand,
    },
}

#[derive(Args, Debug)]
struct AccountArgs {
    /// Use an account saved with `account set` or the app: its settings, and its password from
    /// the system keychain.
    #[arg(long, value_name = "NAME", conflicts_with_all = [
        "registrar", "user", "auth_user", "domain", "transport", "expires", "outbound_proxy",
        "ca_file", "password_stdin", "password_env",
    ])]
    account: Option<String>,
    /// Registrar: host, host:port, [v6]:port, sip:host[:port][;transport=tcp] or sips:host[:port].
    #[arg(long, required_unless_present = "account")]
    registrar: Option<String>,
    /// Extension (user part of the address of record).
    #[arg(long, required_unless_present = "account")]
    user: Option<String>,
    /// Authentication user name, when it differs from the extension.
    #[arg(long)]
    auth_user: Option<String>,
    /// SIP domain of the extension (default: the registrar's host).
    #[arg(long)]
    domain: Option<String>,
    /// Transport (default: from the registrar URI, else udp).
    #[arg(long, value_parser = parse_transport)]
    transport: Option<Transport>,
    /// Requested registration lifetime in seconds (1 to 86400).
    #[arg(long, default_value_t = 300, value_parser = parse_expires, allow_hyphen_values = true)]
    expires: u32,
    /// Send requests through this proxy (sip:host[:port][;transport=...]).
    #[arg(long)]
    outbound_proxy: Option<String>,
    /// Extra CA certificates (PEM) to trust for TLS, besides the system's.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    #[command(flatten)]
    password: PasswordArgs,
    /// Answer requests from any address, not only from the registrar.
    #[arg(long)]
    accept_from_anyone: bool,
    /// RFC 5626 instance identifier (urn:uuid:…), stable for this installation.
    #[arg(long, value_parser = parse_instance_id)]
    instance_id: Option<String>,
    /// First backoff step after failures, in seconds (RFC 5626 base-time).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    backoff_base: u64,
    /// Longest backoff, in seconds (RFC 5626 max-time).
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    backoff_cap: u64,
    /// Relay the extension's calls to the softphone that uses this loopback address (UDP and
    /// TCP) as its outbound proxy, such as 127.0.0.1:5070; port 0 picks a free one.
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_softphone_listen)]
    softphone_listen: Option<std::net::SocketAddr>,
    /// Reach a softphone that does not register at this loopback address
    /// (sip:127.0.0.1:PORT[;transport=tcp]). Implies a listener on 127.0.0.1:5070 unless
    /// --softphone-listen says otherwise.
    #[arg(long, value_name = "URI", value_parser = parse_softphone_contact)]
    softphone_contact: Option<FixedContact>,
    /// How often the softphone is asked whether it runs, in seconds.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    softphone_check_interval: u64,
    /// How often, in seconds (jittered ±25 %), to ask the registrar which bindings the extension
    /// has, to notice another device taking it (`extension_in_use`); 0 never asks.
    #[arg(long, value_name = "SECONDS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    binding_check_interval: u64,
}

fn parse_softphone_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    let addr: std::net::SocketAddr = s
        .parse()
        .map_err(|_| format!("`{s}` is not ADDR:PORT (such as 127.0.0.1:5070)"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "the softphone listener must be on this computer only (127.0.0.1 or [::1]), not {addr}"
        ));
    }
    Ok(addr)
}

fn parse_softphone_contact(s: &str) -> Result<FixedContact, String> {
    FixedContact::parse(s).map_err(|e| e.to_string())
}

/// The lifetime goes through the one validation (`vicifast_core::validate`) as clap parses it;
/// the values that reach the wire are checked in [`AccountArgs::config_from_flags`], so the
/// message is ours and never echoes a value raw (clap would print a line break as is).
fn parse_expires(s: &str) -> Result<u32, String> {
    validate::expires_text(s).map_err(|e| e.to_string())
}

fn parse_instance_id(s: &str) -> Result<String, String> {
    let uuid = s
        .strip_prefix("urn:uuid:")
        .ok_or_else(|| "expected urn:uuid:<uuid>".to_owned())?;
    let hex: String = uuid.chars().filter(|c| *c != '-').collect();
    if hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!("`{uuid}` is not a UUID"))
    }
}

fn parse_transport(s: &str) -> Result<Transport, String> {
    s.parse()
}

/// An account ready for the engine: its settings, password, driver options and softphone.
type Resolved = (AccountConfig, Password, DriverOptions, Option<EdgeConfig>);

/// A usage problem found after parsing: printed like clap's own, exit 2.
#[derive(Debug, thiserror::Error)]
enum UsageError {
    #[error("no password given: use --password-stdin or --password-env VAR")]
    NoPassword,
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("could not read the password from standard input: {0}")]
    Stdin(std::io::Error),
    #[error("the password is empty")]
    EmptyPassword,
    #[error("--ca-file: {0}")]
    CaFile(String),
    #[error("name the account: --account NAME, or --registrar and --user")]
    NoAccount,
    #[error("{flag}: {error}")]
    Invalid {
        flag: &'static str,
        error: vicifast_engine::ValidationError,
    },
}

impl AccountArgs {
    /// The account, its password and the driver options: from the flags, or with `--account`
    /// from the saved settings and the keychain. On failure, the message is printed and the
    /// exit code returned (2 bad usage, 1 a saved account or its password cannot be used).
    fn resolve(&self, json: bool) -> Result<Resolved, ExitCode> {
        if let Some(name) = &self.account {
            let saved = account::resolve(name).map_err(|e| e.report(json))?;
            let options = DriverOptions {
                ca_file: saved.ca_file,
            };
            if let Some(path) = &options.ca_file {
                vicifast_engine::check_ca_file(path)
                    .map_err(|e| usage_error(&UsageError::CaFile(e)))?;
            }
            let softphone = self.softphone(saved.softphone);
            return Ok((self.tune(saved.config), saved.password, options, softphone));
        }
        let config = self.config_from_flags().map_err(|e| usage_error(&e))?;
        let password = self.password().map_err(|e| usage_error(&e))?;
        let options = self.options().map_err(|e| usage_error(&e))?;
        Ok((config, password, options, self.softphone(None)))
    }

    /// The account named by `--registrar`, `--user` and the rest, each value checked by the one
    /// validation the settings file and the window use, then the whole by the core's own check.
    fn config_from_flags(&self) -> Result<AccountConfig, UsageError> {
        let (Some(registrar), Some(user)) = (&self.registrar, &self.user) else {
            return Err(UsageError::NoAccount);
        };
        let invalid = |flag: &'static str| move |error| UsageError::Invalid { flag, error };
        let registrar = validate::server(registrar).map_err(invalid("--registrar"))?;
        validate::user(user).map_err(invalid("--user"))?;
        if let Some(auth_user) = &self.auth_user {
            validate::auth_user(auth_user).map_err(invalid("--auth-user"))?;
        }
        if let Some(domain) = &self.domain {
            validate::domain(domain).map_err(invalid("--domain"))?;
        }
        let outbound_proxy = match &self.outbound_proxy {
            Some(proxy) => {
                Some(validate::outbound_proxy(proxy).map_err(invalid("--outbound-proxy"))?)
            }
            None => None,
        };
        let mut config = AccountConfig::new(user.clone(), registrar, user.clone());
        config.auth_user = self.auth_user.clone();
        config.domain = self.domain.clone();
        config.transport = self.transport;
        config.outbound_proxy = outbound_proxy;
        config.expires = Duration::from_secs(u64::from(self.expires));
        let config = self.tune(config);
        config.validate().map_err(|error| UsageError::Invalid {
            flag: account::flag_of(error.field.key()),
            error,
        })?;
        Ok(config)
    }

    /// The edge proxy's settings: the flags over the saved ones; none without either.
    fn softphone(&self, saved: Option<EdgeConfig>) -> Option<EdgeConfig> {
        let flagged = self.softphone_listen.is_some() || self.softphone_contact.is_some();
        let mut edge = match saved {
            Some(saved) => saved,
            None if flagged => EdgeConfig::default(),
            None => return None,
        };
        if let Some(listen) = self.softphone_listen {
            edge.listen = listen;
        }
        if let Some(contact) = &self.softphone_contact {
            edge.fixed_contact = Some(contact.clone());
        }
        edge.check_interval = Duration::from_secs(self.softphone_check_interval);
        Some(edge)
    }

    /// Applies the engine flags that go with either way of naming the account.
    fn tune(&self, mut config: AccountConfig) -> AccountConfig {
        config.accept_requests_from_anyone = self.accept_from_anyone;
        config.instance_id = self.instance_id.clone();
        config.backoff_base = Duration::from_secs(self.backoff_base);
        config.backoff_cap = Duration::from_secs(self.backoff_cap.max(self.backoff_base));
        config.binding_check_interval = (self.binding_check_interval > 0)
            .then(|| Duration::from_secs(self.binding_check_interval));
        config
    }

    fn options(&self) -> Result<DriverOptions, UsageError> {
        if let Some(path) = &self.ca_file {
            vicifast_engine::check_ca_file(path).map_err(UsageError::CaFile)?;
        }
        Ok(DriverOptions {
            ca_file: self.ca_file.clone(),
        })
    }

    fn password(&self) -> Result<Password, UsageError> {
        self.password.read()?.ok_or(UsageError::NoPassword)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("vicifast-cli: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    run(&runtime, cli.command, cli.trace)
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn usage_error(err: &UsageError) -> ExitCode {
    eprintln!("error: {err}\n\nFor more information, try '--help'.");
    ExitCode::from(2)
}

/// Settings and keychain lookups happen here, outside the runtime: the keychain is blocking
/// (D-Bus on Linux) and its client may start a runtime of its own, which tokio forbids inside one.
fn run(runtime: &tokio::runtime::Runtime, command: Command, trace: bool) -> ExitCode {
    let show_trace =
        |entry: &vicifast_engine::Stamped<vicifast_engine::TraceEntry>, json: bool| match (
            trace, json,
        ) {
            (false, _) => {}
            (true, true) => output::json_line(&EngineEvent::Trace(entry.clone())),
            (true, false) => output::trace(entry),
        };
    match command {
        Command::Register { account, json } => {
            let (config, password, options, softphone) = match account.resolve(json) {
                Ok(resolved) => resolved,
                Err(code) => return code,
            };
            runtime.block_on(register(config, password, options, softphone, json, trace))
        }
        Command::Unregister { account, json } => {
            let (config, password, options, _) = match account.resolve(json) {
                Ok(resolved) => resolved,
                Err(code) => return code,
            };
            let removed = runtime.block_on(vicifast_engine::remove_local_bindings_traced(
                config,
                password,
                options,
                |entry| show_trace(entry, json),
            ));
            match removed {
                Ok(removed) => {
                    output::removed(&removed, json);
                    ExitCode::SUCCESS
                }
                Err(err) => output::query_failed(&err.0, json),
            }
        }
        Command::Bindings { account, json } => {
            let (config, password, options, _) = match account.resolve(json) {
                Ok(resolved) => resolved,
                Err(code) => return code,
            };
            let listed = runtime.block_on(vicifast_engine::list_bindings_traced(
                config,
                password,
                options,
                |entry| show_trace(entry, json),
            ));
            match listed {
                Ok(bindings) => {
                    output::bindings(&bindings, json);
                    ExitCode::SUCCESS
                }
                Err(err) => output::query_failed(&err.0, json),
            }
        }
        Command::Account { command } => account::run(command),
    }
}

async fn register(
    config: AccountConfig,
    password: Password,
    options: DriverOptions,
    softphone: Option<EdgeConfig>,
    json: bool,
    trace: bool,
) -> ExitCode {
    let relays = softphone.is_some();
    let (registration, mut events) = match softphone {
        None => Registration::start(config, password, options),
        Some(edge) => match Registration::start_with_softphone(config, password, options, edge) {
            Ok((registration, events, listen)) => {
                output::softphone_listener(listen, json);
                (registration, events)
            }
            Err(err) => {
                eprintln!("vicifast-cli: {err}");
                return ExitCode::from(1);
            }
        },
    };
    let mut registration = Some(registration);
    let mut stopping: Option<tokio::task::JoinHandle<()>> = None;
    let mut failed = false;
    let mut line = output::LiveLine::new(std::io::stdout().is_terminal() && !json);
    let mut shutdown = Box::pin(shutdown_signal());
    let mut take_over = take_over_signal();
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                if json && (trace || !matches!(event, EngineEvent::Trace(_))) {
                    output::json_line(&event);
                }
                match event {
                    EngineEvent::Status(status) => {
                        if !json {
                            line.show(&status);
                        }
                        // Nothing more will happen without the user: report and leave.
                        if status.inner.state == RegistrationState::Failed && stopping.is_none() {
                            failed = true;
                            if let Some(r) = registration.take() {
                                stopping = Some(tokio::spawn(r.stop()));
                            }
                        }
                    }
                    EngineEvent::IncomingCall(call) if relays && !json => {
                        line.message(&format!(
                            "incoming call from {}: relayed to the softphone",
                            vicifast_engine::escape(&call.inner.from)
                        ));
                    }
                    EngineEvent::IncomingCall(_) if relays => {}
                    EngineEvent::IncomingCall(call) => {
                        line.message(&format!(
                            "incoming call from {} reached this device (answered 480: this app does not take calls)",
                            vicifast_engine::escape(&call.inner.from)
                        ));
                    }
                    EngineEvent::CallRefused(refused) if !json => {
                        line.message(&format!(
                            "incoming call from {} refused: {}",
                            vicifast_engine::escape(&refused.inner.call.from),
                            refused.inner.reason
                        ));
                    }
                    EngineEvent::CallMoved(moved) if !json => {
                        line.message(&output::call_moved(&moved));
                    }
                    EngineEvent::Softphone(status) if !json => {
                        line.message(&output::describe_softphone(&status));
                    }
                    EngineEvent::ExtensionInUse(info) if !json => {
                        line.message(&output::extension_in_use(&info.inner, std::process::id()));
                    }
                    EngineEvent::Trace(entry) if trace && !json => output::trace(&entry),
                    _ => {}
                }
            }
            () = next_signal(&mut take_over), if registration.is_some() => {
                if let Some(r) = &registration {
                    r.take_over();
                }
            }
            () = &mut shutdown, if stopping.is_none() => {
                if let Some(r) = registration.take() {
                    stopping = Some(tokio::spawn(r.stop()));
                }
            }
        }
    }
    line.finish();
    if let Some(task) = stopping {
        let _ = task.await;
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// SIGUSR1 answers "use this computer" when another device took the extension.
#[cfg(unix)]
fn take_over_signal() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).ok()
}

#[cfg(not(unix))]
fn take_over_signal() -> Option<()> {
    None
}

#[cfg(unix)]
async fn next_signal(signal: &mut Option<tokio::signal::unix::Signal>) {
    let received = match signal {
        Some(s) => s.recv().await.is_some(),
        None => false,
    };
    if !received {
        *signal = None;
        std::future::pending::<()>().await;
    }
}

#[cfg(not(unix))]
async fn next_signal(_: &mut Option<()>) {
    std::future::pending().await
}

/// Resolves when the user or the system asks the CLI to stop: SIGINT or SIGTERM on Unix; on
/// Windows Ctrl-C, Ctrl-Break, the console window being closed, logoff and shutdown.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(windows)]
    windows_console_stop().await;
    #[cfg(not(any(unix, windows)))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Windows ends a console program right after its handler returns from a close, logoff or
/// shutdown event; tokio's handler holds the process for those events until it exits by itself
/// (within the few seconds Windows allows), so the binding is removed first.
#[cfg(windows)]
async fn windows_console_stop() {
    use std::future::{pending, Future};
    use tokio::signal::windows;
    // An event whose handler could not be installed is one event fewer to wait for.
    async fn event(recv: Option<impl Future<Output = Option<()>>>) {
        if let Some(recv) = recv {
            if recv.await.is_some() {
                return;
            }
        }
        pending().await
    }
    let mut ctrl_c = windows::ctrl_c().ok();
    let mut ctrl_break = windows::ctrl_break().ok();
    let mut close = windows::ctrl_close().ok();
    let mut logoff = windows::ctrl_logoff().ok();
    let mut shutdown = windows::ctrl_shutdown().ok();
    tokio::select! {
        () = event(ctrl_c.as_mut().map(|s| s.recv())) => {}
        () = event(ctrl_break.as_mut().map(|s| s.recv())) => {}
        () = event(close.as_mut().map(|s| s.recv())) => {}
        () = event(logoff.as_mut().map(|s| s.recv())) => {}
        () = event(shutdown.as_mut().map(|s| s.recv())) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::{Cli, Command};
    use clap::Parser;

    fn refusal(extra: &[&str]) -> String {
        let mut argv = vec!["vicifast-cli", "register"];
        for (flag, value) in [("--registrar", "pbx"), ("--user", "1")] {
            if !extra.contains(&flag) {
                argv.extend([flag, value]);
            }
        }
        argv.extend_from_slice(extra);
        let cli = match Cli::try_parse_from(&argv) {
            Ok(cli) => cli,
            Err(err) => {
                assert_eq!(err.exit_code(), 2);
                return err.to_string();
            }
        };
        let Command::Register { account, .. } = cli.command else {
            panic!("not register");
        };
        let err = account
            .config_from_flags()
            .expect_err(&format!("{extra:?} accepted"));
        err.to_string()
    }

    #[test]
    fn a_line_break_in_any_flag_is_refused() {
        for (flag, value) in [
            ("--user", "1\r\nX-Evil: 1"),
            ("--auth-user", "a\r\nX-Evil: 1"),
            ("--domain", "example.com\r\nX-Evil: 1"),
            ("--registrar", "pbx\r\nX-Evil: 1"),
            ("--outbound-proxy", "sip:proxy;transport=tcp\r\nX: 1"),
        ] {
            let text = refusal(&[flag, value]);
            assert!(text.starts_with(flag), "{text}");
            assert!(text.contains("control characters"), "{flag}: {text}");
            assert!(!text.contains('\n'), "echoed raw: {text:?}");
        }
    }

    #[test]
    fn malformed_hosts_and_lifetimes_are_refused_clearly() {
        let long = "a".repeat(10_000);
        assert!(refusal(&["--registrar", &long]).contains("at most 253"));
        assert!(refusal(&["--registrar", "a:b:5060"]).contains("brackets"));
        for expires in ["-1", "0", "86401", "ten"] {
            let text = refusal(&["--expires", expires]);
            assert!(
                text.contains("whole number of seconds from 1 to 86400"),
                "{expires}: {text}"
            );
        }
        assert!(Cli::try_parse_from([
            "vicifast-cli",
            "register",
            "--registrar",
            "[2001:db8::1]:5060",
            "--user",
            "1",
            "--expires",
            "60",
        ])
        .is_ok());
    }
}
