//! The running registrations: one engine per saved account (the app's own, `default`, is one of
//! them), kept in line with the settings. What each engine reports goes, tagged with its account,
//! into one channel of [`Report`]s that a single reducer
//! ([`account_events`](crate::account_events)) applies; this module knows nothing of the view.

use crate::softphone::{ListenProblem, SoftphoneView};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};
use vicifast_accounts::{AccountSettings, Keychain, KeychainError};
use vicifast_engine::{
    Cause, DriverOptions, EngineEvent, Password, Problem, ProblemCode, Registration,
    RegistrationState, Stamped, Status,
};
use vicifast_ipc::settings::ACCOUNT;
use vicifast_ipc::CommandError;

/// What the engines tell the reducer, in order per account.
#[derive(Debug)]
pub enum Report {
    /// `account`'s engine started; `softphone` is its edge proxy's listener (or why there is
    /// none) when its settings have a `[softphone]` table.
    Started {
        account: String,
        softphone: Option<SoftphoneView>,
    },
    /// Something `account`'s engine reported, or a status the app made for an account that
    /// could not start.
    Event { account: String, event: EngineEvent },
    /// `account`'s engine has ended and this is its last report: `applied` is answered once
    /// everything before it has been applied, so whoever stopped the engine knows the final
    /// status was shown (Quit waits for it before the process ends).
    Ended {
        account: String,
        applied: oneshot::Sender<()>,
    },
    /// Answered once every report before it has been applied.
    Flush { applied: oneshot::Sender<()> },
}

/// Where reports go.
pub type Reports = mpsc::UnboundedSender<Report>;

/// Why an account is not running; shown as its status, and returned to whoever asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotStarted {
    #[error("{}", .0.message)]
    Settings(CommandError),
    #[error("No password is saved for this extension.")]
    NoPassword,
    #[error("{0}")]
    Keychain(String),
}

impl NotStarted {
    /// What the agent can do about it, for `account`.
    fn action(&self, account: &str) -> String {
        match self {
            Self::Settings(_) if account == ACCOUNT => "Correct it in Settings.".to_owned(),
            Self::Settings(_) => format!("Correct it with vicifast-cli account set {account}."),
            Self::NoPassword if account == ACCOUNT => "Enter it in Settings.".to_owned(),
            Self::NoPassword => {
                format!("Save it with vicifast-cli account set {account} --password-stdin.")
            }
            Self::Keychain(_) => "Unlock the system keychain, then press Register.".to_owned(),
        }
    }

    /// For the window's command that started it.
    pub fn command_error(&self, account: &str) -> CommandError {
        match self {
            Self::Settings(e) => e.clone(),
            Self::NoPassword | Self::Keychain(_) => {
                CommandError::new("credentials", format!("{self} {}", self.action(account)))
            }
        }
    }

    /// The status that shows it: failed, with the problem and what to do.
    fn status(&self, account: &AccountSettings) -> Stamped<Status> {
        let (code, detail) = match self {
            Self::Settings(e) => (ProblemCode::InvalidSettings, e.message.clone()),
            Self::NoPassword | Self::Keychain(_) => (ProblemCode::Credentials, self.to_string()),
        };
        let mut problem = Problem::new(code, detail);
        if matches!(self, Self::NoPassword) {
            problem.message = self.to_string();
        }
        problem.action = self.action(&account.name);
        Stamped::now(Status {
            problem: Some(problem),
            ..Status::without_flow(
                account.name.clone(),
                RegistrationState::Failed,
                Cause::Failed,
                account.transport,
            )
        })
    }
}

/// The OS keychain (or a stand-in in tests).
pub struct Secrets(pub Arc<dyn Keychain>);

impl Secrets {
    /// Runs a keychain call on the blocking pool: it may wait on D-Bus (or an unlock prompt).
    pub async fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn Keychain) -> T + Send + 'static,
    ) -> Result<T, CommandError> {
        let keychain = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || call(keychain.as_ref()))
            .await
            .map_err(|e| {
                CommandError::new(
                    "credentials",
                    format!("The keychain call did not finish ({e})."),
                )
            })
    }

    /// `account`'s password.
    async fn password(&self, account: &str) -> Result<Password, NotStarted> {
        let name = account.to_owned();
        match self.run(move |k| k.get(&name)).await {
            Ok(Ok(Some(password))) => Ok(password),
            Ok(Ok(None)) => Err(NotStarted::NoPassword),
            Ok(Err(e)) => Err(NotStarted::Keychain(keychain_message(&e))),
            Err(e) => Err(NotStarted::Keychain(e.message)),
        }
    }
}

/// Words for a keychain failure (the accounts crate words them for the user).
pub fn keychain_message(error: &KeychainError) -> String {
    format!("{error}.")
}

/// The running engines by account name; one lock serialises their starts and stops.
pub struct Engine {
    running: Mutex<HashMap<String, Running>>,
    reports: Reports,
    /// Held while [`Engine::stop`] removes the bindings, so a second stop (Quit or the end of
    /// the session while the window's Unregister runs) waits for them to be gone instead of
    /// finding nothing to stop and letting the process end first.
    stopping: Mutex<()>,
}

struct Running {
    registration: Registration,
    /// The settings it runs with, to tell a password change from a new configuration.
    settings: AccountSettings,
    /// Ends once the engine's last report has been applied.
    delivered: tokio::task::JoinHandle<()>,
}

/// What [`Engine::apply`] did not start, by account.
pub type NotRunning = HashMap<String, NotStarted>;

impl Engine {
    pub fn new(reports: Reports) -> Self {
        Self {
            running: Mutex::default(),
            reports,
            stopping: Mutex::default(),
        }
    }

    /// Brings the running engines in line with `accounts`: stops those removed or changed and
    /// starts those new, changed or not running, each with its own password from the keychain.
    /// Those unchanged and running are left running (no gap) and get their password again (it
    /// may have been changed with `vicifast-cli account set`; one that had given up tries again
    /// at once). `restart` names an account to start afresh even if unchanged: a new password
    /// was saved, so a wrong one shows now, not at the next refresh.
    pub async fn apply(
        &self,
        accounts: &[AccountSettings],
        secrets: &Secrets,
        restart: Option<&str>,
    ) -> NotRunning {
        let mut running = self.running.lock().await;
        let stale: Vec<String> = running
            .iter()
            .filter(|(name, r)| {
                restart == Some(name.as_str()) || !accounts.iter().any(|a| a == &r.settings)
            })
            .map(|(name, _)| name.clone())
            .collect();
        stop_all(stale.iter().filter_map(|n| running.remove(n)).collect()).await;

        let mut not_running = NotRunning::new();
        for account in accounts {
            let name = account.name.clone();
            if let Some(r) = running.get(&name) {
                if let Ok(password) = secrets.password(&name).await {
                    r.registration.set_password(password);
                }
                continue;
            }
            match self.start(account, secrets).await {
                Ok(started) => {
                    running.insert(name, started);
                }
                Err(why) => {
                    tracing::warn!(account = %name, "not registering: {why}");
                    let event = EngineEvent::Status(why.status(account));
                    self.report(Report::Event {
                        account: name.clone(),
                        event,
                    });
                    not_running.insert(name, why);
                }
            }
        }
        // Whoever asked sees the accounts started (and why others did not) in the view.
        self.flush().await;
        not_running
    }

    /// Returns once every report so far has been applied.
    async fn flush(&self) {
        let (applied, done) = oneshot::channel();
        self.report(Report::Flush { applied });
        let _ = done.await;
    }

    /// Whether any engine runs.
    pub async fn is_running(&self) -> bool {
        !self.running.lock().await.is_empty()
    }

    /// Tries again now, except `failed`: those gave up (a wrong password, say) and try again
    /// only with their password from the keychain, which [`Engine::apply`] gives them.
    pub async fn retry_now(&self, failed: &[String]) {
        for (name, r) in self.running.lock().await.iter() {
            if !failed.contains(name) {
                r.registration.retry_now();
            }
        }
    }

    /// "Use this computer": every registration that found another device on its extension
    /// registers now (the others ignore it).
    pub async fn take_over(&self) {
        for r in self.running.lock().await.values() {
            r.registration.take_over();
        }
    }

    /// The OS says the computer woke from sleep: every registration checks its flow and
    /// registers again.
    pub async fn resumed(&self) {
        for r in self.running.lock().await.values() {
            r.registration.resumed();
        }
    }

    /// Removes every binding and stops; returns once every engine's last status was applied.
    pub async fn stop(&self) {
        let _one_at_a_time = self.stopping.lock().await;
        let running: Vec<Running> = self.running.lock().await.drain().map(|(_, r)| r).collect();
        stop_all(running).await;
    }

    fn report(&self, report: Report) {
        // The reducer ends only with the process.
        let _ = self.reports.send(report);
    }

    /// Starts `account`'s engine, with the edge proxy for its softphone when its settings have
    /// a `[softphone]` table. A listener that cannot be bound (its port taken) or unusable
    /// softphone settings leave the account registering without one; its [`SoftphoneView`]
    /// then says why, for the window and the tray.
    async fn start(
        &self,
        account: &AccountSettings,
        secrets: &Secrets,
    ) -> Result<Running, NotStarted> {
        let config = account
            .to_config()
            .map_err(|e| NotStarted::Settings(CommandError::invalid(e.field, e.message)))?;
        let password = secrets.password(&account.name).await?;
        let options = DriverOptions {
            ca_file: account.ca_file.clone(),
        };
        let (registration, events, softphone) = match account.softphone_config() {
            Ok(None) => {
                let (registration, events) = Registration::start(config, password, options);
                (registration, events, None)
            }
            Ok(Some(edge)) => match Registration::start_with_softphone(
                config.clone(),
                password.clone(),
                options.clone(),
                edge,
            ) {
                Ok((registration, events, listen)) => {
                    tracing::info!(account = %account.name, %listen, "softphone edge proxy listening");
                    let shown = SoftphoneView::listening(account, listen);
                    (registration, events, Some(shown))
                }
                Err(err) => {
                    not_listening(account, ListenProblem::from(err), config, password, options)
                }
            },
            Err(err) => not_listening(
                account,
                ListenProblem::Settings(err),
                config,
                password,
                options,
            ),
        };
        self.report(Report::Started {
            account: account.name.clone(),
            softphone,
        });
        let delivered = tokio::spawn(deliver(account.name.clone(), events, self.reports.clone()));
        Ok(Running {
            registration,
            settings: account.clone(),
            delivered,
        })
    }
}

type Events = mpsc::UnboundedReceiver<EngineEvent>;

/// Registers without the softphone's listener, which could not start.
fn not_listening(
    account: &AccountSettings,
    problem: ListenProblem,
    config: vicifast_engine::AccountConfig,
    password: Password,
    options: DriverOptions,
) -> (Registration, Events, Option<SoftphoneView>) {
    tracing::warn!(account = %account.name, %problem, "softphone edge proxy not started");
    let (registration, events) = Registration::start(config, password, options);
    let shown = SoftphoneView::not_listening(account, &problem);
    (registration, events, Some(shown))
}

/// Passes `account`'s events on, tagged, until its engine ends; then waits for the reducer to
/// confirm it applied them all.
async fn deliver(account: String, mut events: Events, reports: Reports) {
    while let Some(event) = events.recv().await {
        let event = Report::Event {
            account: account.clone(),
            event,
        };
        if reports.send(event).is_err() {
            return;
        }
    }
    let (applied, done) = oneshot::channel();
    if reports.send(Report::Ended { account, applied }).is_ok() {
        let _ = done.await;
    }
}

/// Stops all at once: each waits for its registrar (at most 2 s) to remove its binding, then
/// for its last status to be applied.
async fn stop_all(running: Vec<Running>) {
    let mut stopping = tokio::task::JoinSet::new();
    for r in running {
        stopping.spawn(async move {
            r.registration.stop().await;
            let _ = r.delivered.await;
        });
    }
    while stopping.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use vicifast_engine::Transport;

    #[tokio::test]
    async fn delivery_ends_only_once_the_reducer_has_applied_the_last_report() {
        let (engine, events) = mpsc::unbounded_channel();
        let (reports, mut received) = mpsc::unbounded_channel();
        let delivered = tokio::spawn(deliver("b".to_owned(), events, reports));
        let last = Status::without_flow(
            "b",
            RegistrationState::Unregistered,
            Cause::UserRequest,
            Transport::Udp,
        );
        assert!(engine.send(EngineEvent::Status(Stamped::now(last))).is_ok());
        drop(engine); // the engine has ended

        let first = received.recv().await;
        assert!(
            matches!(&first, Some(Report::Event { account, .. }) if account == "b"),
            "{first:?}"
        );
        let Some(Report::Ended { account, applied }) = received.recv().await else {
            panic!("the end is reported after the last event");
        };
        assert_eq!(account, "b");
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!delivered.is_finished(), "it waits for the reducer");
        assert!(applied.send(()).is_ok());
        assert!(delivered.await.is_ok());
    }
}
