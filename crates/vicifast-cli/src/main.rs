//! `vicifast-cli`: the registration engine without a window, for support staff, scripts, tests and
//! benchmarks.
//!
//! Exit codes: 0 done (or stopped by SIGINT/SIGTERM after unregistering), 1 the registration or
//! query failed in a way retrying will not fix, 2 bad usage.

mod account;
mod output;
mod password;

use clap::{Args, Parser, Subcommand};
use password::PasswordArgs;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use vicifast_engine::{
    AccountConfig, DriverOptions, EdgeConfig, EngineEvent, FixedContact, Password, Registration,
    RegistrationState, ServerAddress, Transport,
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Register and stay registered until interrupted (SIGINT/SIGTERM unregister, then exit 0).
    Register {
        #[command(flatten)]
        account: AccountArgs,
        /// One JSON object per status change on stdout.
        #[arg(long)]
        json: bool,
        /// Print every SIP message sent and received on stderr (credentials redacted).
        #[arg(long)]
        trace: bool,
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
    #[arg(long, value_parser = parse_server, required_unless_present = "account")]
    registrar: Option<ServerAddress>,
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
    /// Requested registration lifetime in seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    expires: u32,
    /// Send requests through this proxy (sip:host[:port][;transport=...]).
    #[arg(long, value_parser = parse_server)]
    outbound_proxy: Option<ServerAddress>,
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

fn parse_server(s: &str) -> Result<ServerAddress, String> {
    ServerAddress::parse(s).map_err(|e| e.to_string())
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
        let (Some(registrar), Some(user)) = (&self.registrar, &self.user) else {
            return Err(usage_error(&UsageError::NoAccount));
        };
        let password = self.password().map_err(|e| usage_error(&e))?;
        let options = self.options().map_err(|e| usage_error(&e))?;
        let mut config = AccountConfig::new(user.clone(), registrar.clone(), user.clone());
        config.auth_user = self.auth_user.clone();
        config.domain = self.domain.clone();
        config.transport = self.transport;
        config.outbound_proxy = self.outbound_proxy.clone();
        config.expires = Duration::from_secs(u64::from(self.expires));
        Ok((self.tune(config), password, options, self.softphone(None)))
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
    run(&runtime, cli.command)
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
fn run(runtime: &tokio::runtime::Runtime, command: Command) -> ExitCode {
    match command {
        Command::Register {
            account,
            json,
            trace,
        } => {
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
            let removed = runtime.block_on(vicifast_engine::remove_local_bindings(
                config, password, options,
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
            match runtime.block_on(vicifast_engine::list_bindings(config, password, options)) {
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
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                match event {
                    EngineEvent::Status(status) => {
                        if json {
                            output::json_line(&status);
                        } else {
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
                    EngineEvent::IncomingCall(call) if relays => {
                        if json {
                            output::json_line(&serde_json::json!({ "at": call.at, "incoming_call": call.inner }));
                        } else {
                            line.message(&format!("incoming call from {}: relayed to the softphone", call.inner.from));
                        }
                    }
                    EngineEvent::IncomingCall(call) => {
                        line.message(&format!(
                            "incoming call from {} reached this device (answered 480: this app does not take calls)",
                            call.inner.from
                        ));
                    }
                    EngineEvent::CallRefused(refused) => {
                        if json {
                            output::json_line(&serde_json::json!({ "at": refused.at, "refused_call": refused.inner }));
                        } else {
                            line.message(&format!(
                                "incoming call from {} refused: {}",
                                refused.inner.call.from, refused.inner.reason
                            ));
                        }
                    }
                    EngineEvent::Softphone(status) => {
                        if json {
                            output::json_line(&serde_json::json!({ "at": status.at, "softphone": status.inner }));
                        } else {
                            line.message(&output::describe_softphone(&status));
                        }
                    }
                    EngineEvent::Trace(entry) if trace => output::trace(&entry),
                    _ => {}
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

/// Resolves on SIGINT or SIGTERM (Ctrl-C or Ctrl-Break elsewhere).
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
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
