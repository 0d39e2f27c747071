//! Tokio driver for the VICIfast registration core.
//!
//! [`Registration::start`] runs one account's registration as a task: it resolves the registrar
//! (RFC 3263), opens UDP, TCP or TLS flows, drives the sans-IO core in `vicifast-core`, and
//! reports every status change, incoming call and traced SIP message as an [`EngineEvent`].
//! [`list_bindings`] and [`remove_local_bindings`] run the same machinery once, for the CLI.
//!
//! # Bounds
//!
//! Nothing a peer sends makes the engine grow without bound or write without limit:
//!
//! - every queue between a socket and the core is bounded: a TCP/TLS flow stops reading while
//!   the core is behind (the peer's window fills), a UDP flow drops and counts what does not
//!   fit, and writes over a flow's queue are dropped and counted;
//! - a stream holds at most one incomplete message (the largest accepted: 64 KB of headers and
//!   64 KB of body) and is closed with the cause when a peer sends more without completing it;
//!   framing takes time linear in the bytes received;
//! - keep-alive pings cost one pong per read on a stream, and on UDP one a second, to the
//!   server only;
//! - trace entries and incoming-call notices to the embedder have a budget per second;
//! - drops are logged through the core's `DropLog`: a few lines, then one summary per minute.

mod driver;
mod edge;
mod events;
mod flow;
mod framing;
#[doc(hidden)]
pub mod fuzzing;
mod junk;
mod monitor;
mod resolve;
mod route;
mod tls;

pub use edge::SoftphoneError;
pub use events::{BindingList, EngineEvent, RefusedCall, RemovedContacts, Stamped};
pub use vicifast_core::drop_log::{escape, escape_uncut};
pub use vicifast_core::edge::{
    CallDirection, CallInProgress, CallMoved, EdgeConfig, EdgeConfigError, FixedContact,
    SoftphoneProblem, SoftphoneProblemCode, SoftphoneState, SoftphoneStatus, DEFAULT_LISTEN,
};
pub use vicifast_core::{
    validate, AccountConfig, AddressError, BindingInfo, Cause, Direction, ExpiryAdjustment,
    ExtensionInUse, InUseDetection, IncomingCall, OtherDevice, Password, Problem, ProblemCode,
    RegistrationState, ServerAddress, Status, TraceEntry, Transport, ValidationError,
};

use driver::{os_seed, Command, Driver, Edge};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot};
use vicifast_core::edge::EdgeProxy;
use vicifast_core::{Purpose, Registration as Core};

/// How the driver reaches the network.
#[derive(Debug, Clone, Default)]
pub struct DriverOptions {
    /// A PEM file of extra certificate authorities to trust for TLS, besides the system's.
    pub ca_file: Option<PathBuf>,
}

/// Checks that a CA file can be used for TLS, so a bad path is reported before starting.
pub fn check_ca_file(path: &Path) -> Result<(), String> {
    tls::client_config(Some(path))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A handle to one running registration. Dropping it unregisters in the background.
#[derive(Debug)]
pub struct Registration {
    commands: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
}

impl Registration {
    /// Starts registering at once. Must be called inside a tokio runtime.
    pub fn start(
        config: AccountConfig,
        password: Password,
        options: DriverOptions,
    ) -> (Registration, mpsc::UnboundedReceiver<EngineEvent>) {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let core = Core::new(config, password, Purpose::Maintain, os_seed());
        let task = tokio::spawn(Driver::new(core, options, events_tx).run(commands_rx));
        (Registration { commands, task }, events_rx)
    }

    /// Like [`Registration::start`], with the account's softphone taking its calls through an
    /// edge proxy listening on `softphone.listen` (loopback only). Returns the address bound
    /// (the port chosen when it was 0). Fails, before anything is sent, when the listener cannot
    /// be bound or the settings are not usable.
    pub fn start_with_softphone(
        config: AccountConfig,
        password: Password,
        options: DriverOptions,
        softphone: EdgeConfig,
    ) -> Result<
        (
            Registration,
            mpsc::UnboundedReceiver<EngineEvent>,
            SocketAddr,
        ),
        SoftphoneError,
    > {
        let mut softphone = softphone;
        let listener = edge::SoftphoneListener::bind(&softphone)?;
        let listen = listener.local_addr();
        softphone.listen = listen;
        let proxy = EdgeProxy::new(&config, password.clone(), softphone, os_seed())?;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let core = Core::new(config, password, Purpose::Maintain, os_seed());
        let driver = Driver::new(core, options, events_tx).with_edge(Edge { proxy, listener });
        let task = tokio::spawn(driver.run(commands_rx));
        Ok((Registration { commands, task }, events_rx, listen))
    }

    /// New credentials; if the registration had given up, it tries again at once.
    pub fn set_password(&self, password: Password) {
        let _ = self.commands.send(Command::SetPassword(password));
    }

    /// Try again now instead of waiting for the backoff.
    pub fn retry_now(&self) {
        let _ = self.commands.send(Command::RetryNow);
    }

    /// Another device took the extension and the user chose this computer: register now. The
    /// other device takes it back at its next refresh unless it is signed out.
    pub fn take_over(&self) {
        let _ = self.commands.send(Command::TakeOver);
    }

    /// The network changed (new address, new route). The engine watches the network itself;
    /// this is for embedders that learn of changes another way.
    pub fn network_changed(&self) {
        let _ = self.commands.send(Command::NetworkChanged);
    }

    /// The OS says the computer woke from sleep (Windows' WM_POWERBROADCAST): check the flow and
    /// register again, as when the engine notices the clock jump itself.
    pub fn resumed(&self) {
        let _ = self.commands.send(Command::Resumed);
    }

    /// Removes our binding (waiting at most 2 s for the registrar), then ends the event stream.
    pub async fn stop(self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Stop(done)).is_ok() {
            let _ = wait.await;
        }
        let _ = self.task.await;
    }
}

/// Why a one-shot query did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub Problem);

/// Runs the core once for a one-shot `purpose` and returns what `answer` picks from its events;
/// without an answer, the last problem reported (or a timeout) is the error.
async fn run_once<T>(
    config: AccountConfig,
    password: Password,
    options: DriverOptions,
    purpose: Purpose,
    mut on_trace: impl FnMut(&Stamped<TraceEntry>),
    answer: impl Fn(EngineEvent) -> Option<T>,
) -> Result<T, QueryError> {
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let (_commands, commands_rx) = mpsc::unbounded_channel();
    let core = Core::new(config, password, purpose, os_seed());
    Driver::new(core, options, events_tx).run(commands_rx).await;
    let mut problem = None;
    while let Ok(event) = events_rx.try_recv() {
        if let EngineEvent::Status(status) = &event {
            problem = status.inner.problem.clone();
        }
        if let EngineEvent::Trace(entry) = &event {
            on_trace(entry);
        }
        if let Some(found) = answer(event) {
            return Ok(found);
        }
    }
    Err(QueryError(problem.unwrap_or_else(no_answer)))
}

/// Asks the registrar which bindings the extension has (a REGISTER without Contact).
pub async fn list_bindings(
    config: AccountConfig,
    password: Password,
    options: DriverOptions,
) -> Result<Vec<BindingInfo>, QueryError> {
    list_bindings_traced(config, password, options, |_| {}).await
}

/// [`list_bindings`], handing every SIP message sent and received to `on_trace`.
pub async fn list_bindings_traced(
    config: AccountConfig,
    password: Password,
    options: DriverOptions,
    on_trace: impl FnMut(&Stamped<TraceEntry>),
) -> Result<Vec<BindingInfo>, QueryError> {
    run_once(
        config,
        password,
        options,
        Purpose::ListBindings,
        on_trace,
        |e| match e {
            EngineEvent::Bindings(list) => Some(list.inner.bindings),
            _ => None,
        },
    )
    .await
}

/// Removes the extension's bindings that point at this machine; returns the removed contacts.
pub async fn remove_local_bindings(
    config: AccountConfig,
    password: Password,
    options: DriverOptions,
) -> Result<Vec<String>, QueryError> {
    remove_local_bindings_traced(config, password, options, |_| {}).await
}

/// [`remove_local_bindings`], handing every SIP message sent and received to `on_trace`.
pub async fn remove_local_bindings_traced(
    config: AccountConfig,
    password: Password,
    options: DriverOptions,
    on_trace: impl FnMut(&Stamped<TraceEntry>),
) -> Result<Vec<String>, QueryError> {
    run_once(
        config,
        password,
        options,
        Purpose::RemoveLocal,
        on_trace,
        |e| match e {
            EngineEvent::Removed(list) => Some(list.inner.removed),
            _ => None,
        },
    )
    .await
}

fn no_answer() -> Problem {
    Problem::new(ProblemCode::Timeout, "the registrar did not answer")
}
