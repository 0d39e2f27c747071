//! Runs the registration engine for the app's account and forwards what it reports to the
//! window (`status`, `timeline`, `trace` events), the tray and desktop notifications.

use crate::app::App;
use crate::notifications;
use crate::softphone::{ListenProblem, SoftphoneView};
use crate::state::{problem_words, OtherAccount};
use crate::timeline;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;
use vicifast_accounts::{AccountSettings, Keychain, KeychainError};
use vicifast_engine::{
    Cause, DriverOptions, EngineEvent, Password, Problem, ProblemCode, Registration,
    RegistrationState, SoftphoneStatus, Stamped, Status,
};
use vicifast_ipc::settings::{self, UiSettings, ACCOUNT};
use vicifast_ipc::CommandError;

/// The running engines: the app's account (one lock serialises its start and stop) and the other
/// saved accounts, by name.
#[derive(Default)]
pub struct Engine {
    running: Mutex<Option<Running>>,
    others: Mutex<HashMap<String, Running>>,
    /// Held while [`Engine::stop`] removes the bindings, so a second stop (Quit or the end of
    /// the session while the window's Unregister runs) waits for them to be gone instead of
    /// finding nothing to stop and letting the process end first.
    stopping: Mutex<()>,
}

struct Running {
    registration: Registration,
    forwarder: tokio::task::JoinHandle<()>,
    /// The settings it runs with, to tell a password change from a new configuration.
    settings: RunningWith,
}

enum RunningWith {
    /// The app's own account, as the window's form shows it.
    App(UiSettings),
    Other(AccountSettings),
}

/// Starts an account's engine, with the edge proxy for its softphone when its settings have a
/// `[softphone]` table. A listener that cannot be bound (its port taken) or unusable softphone
/// settings leave the account registering without one; the returned [`SoftphoneView`] then says
/// why, for the window and the tray.
fn start_engine(
    account: &AccountSettings,
    config: vicifast_engine::AccountConfig,
    password: Password,
    options: DriverOptions,
) -> (
    Registration,
    tokio::sync::mpsc::UnboundedReceiver<EngineEvent>,
    Option<SoftphoneView>,
) {
    let problem = match account.softphone_config() {
        Ok(None) => {
            let (registration, events) = Registration::start(config, password, options);
            return (registration, events, None);
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
                return (registration, events, Some(shown));
            }
            Err(err) => ListenProblem::from(err),
        },
        Err(err) => ListenProblem::Settings(err),
    };
    tracing::warn!(account = %account.name, %problem, "softphone edge proxy not started");
    let (registration, events) = Registration::start(config, password, options);
    let shown = SoftphoneView::not_listening(account, &problem);
    (registration, events, Some(shown))
}

/// Shows (or, with `None`, forgets) the softphone of `account` and tells the window; a listener
/// that could not start is told like any other softphone problem.
fn show_softphone(app: &App, account: &str, shown: Option<SoftphoneView>) {
    let not_listening = shown.as_ref().and_then(|s| {
        let problem = s.listen_problem.clone()?;
        Some(if account == ACCOUNT {
            problem
        } else {
            format!("Extension {}: {problem}", s.extension)
        })
    });
    {
        let mut view = app.view();
        match shown {
            Some(s) => view.softphones.insert(account.to_owned(), s),
            None => view.softphones.remove(account),
        };
    }
    app.emit("softphones", &app.view().softphones());
    if let Some(problem) = not_listening {
        let entry = timeline::TimelineEntry {
            at: Stamped::now(()).at,
            kind: "softphone".to_owned(),
            text: problem.clone(),
        };
        app.view().push_timeline(entry.clone());
        let notice = notifications::Notice {
            title: "Softphone cannot reach VICIfast".to_owned(),
            body: problem,
        };
        announce(app, Some(entry), true, Some(notice));
    }
}

/// Forgets the softphones of accounts no longer running and tells the window.
fn forget_softphones(app: &App, keep: impl Fn(&str) -> bool) {
    let changed = {
        let mut view = app.view();
        let before = view.softphones.len();
        view.softphones.retain(|account, _| keep(account));
        view.softphones.len() != before
    };
    if changed {
        app.emit("softphones", &app.view().softphones());
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
}

/// Words for a keychain failure (the accounts crate words them for the user).
pub fn keychain_message(error: &KeychainError) -> String {
    format!("{error}.")
}

impl Engine {
    /// Starts registering with the saved account and the keychain's password, replacing a
    /// running registration. Unless `fresh`, a running registration with the same settings only
    /// gets the password again (and retries at once if it had given up). `fresh` (a new password
    /// was saved) re-registers at once, so a wrong password shows now, not at the next refresh.
    pub async fn start(&self, app: &Arc<App>, fresh: bool) -> Result<(), CommandError> {
        let (account, form) = {
            let view = app.view();
            let saved = view.settings.as_ref();
            let account = saved.and_then(settings::account).cloned();
            let form = saved.and_then(settings::to_ui);
            match (account, form) {
                (Some(a), Some(f)) => (a, f),
                _ => {
                    return Err(CommandError::new(
                        "not_configured",
                        "Enter the server and extension in Settings first.",
                    ))
                }
            }
        };
        let config = account
            .to_config()
            .map_err(|e| CommandError::invalid(e.field, e.message))?;
        let password = match read_password(app).await {
            Ok(p) => p,
            Err(e) => {
                credentials_problem(app, &form, &e.message);
                return Err(e);
            }
        };

        let mut running = self.running.lock().await;
        if let Some(r) = running.as_mut() {
            if matches!(&r.settings, RunningWith::App(s) if *s == form) && !fresh {
                r.registration.set_password(password);
                return Ok(());
            }
        }
        if let Some(old) = running.take() {
            old.stop().await;
        }
        let options = DriverOptions {
            ca_file: account.ca_file.clone(),
        };
        let (registration, mut events, softphone) =
            start_engine(&account, config, password, options);
        show_softphone(app, &account.name, softphone);
        let handle = Arc::clone(app);
        let forwarder = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                forward(&handle, event);
            }
        });
        *running = Some(Running {
            registration,
            forwarder,
            settings: RunningWith::App(form),
        });
        app.view().active = true;
        app.refresh_tray();
        Ok(())
    }

    /// "Register" pressed: try again now if running, else start; the same for the other
    /// accounts.
    pub async fn register(&self, app: &Arc<App>) -> Result<(), CommandError> {
        if app.view().in_use.is_some() {
            self.take_over().await;
        }
        self.register_others(app).await;
        let only_others = {
            let view = app.view();
            view.settings.as_ref().and_then(settings::account).is_none() && !view.others.is_empty()
        };
        if only_others {
            return Ok(());
        }
        {
            let running = self.running.lock().await;
            if let Some(r) = running.as_ref() {
                let failed = app.view().state == Some(RegistrationState::Failed);
                if failed {
                    // A permanent failure needs the (maybe new) password; it retries at once.
                    drop(running);
                    return self.start(app, false).await;
                }
                r.registration.retry_now();
                return Ok(());
            }
        }
        self.start(app, false).await
    }

    /// "Use this computer": every registration that found another device on its extension
    /// registers now (the others ignore it).
    pub async fn take_over(&self) {
        if let Some(r) = self.running.lock().await.as_ref() {
            r.registration.take_over();
        }
        for r in self.others.lock().await.values() {
            r.registration.take_over();
        }
    }

    /// The OS says the computer woke from sleep: every registration checks its flow and
    /// registers again.
    pub async fn resumed(&self) {
        if let Some(r) = self.running.lock().await.as_ref() {
            r.registration.resumed();
        }
        for r in self.others.lock().await.values() {
            r.registration.resumed();
        }
    }

    /// Removes every binding and stops; waits for the engines to finish.
    pub async fn stop(&self, app: &Arc<App>) {
        let _one_at_a_time = self.stopping.lock().await;
        let old = self.running.lock().await.take();
        let others: Vec<Running> = self.others.lock().await.drain().map(|(_, r)| r).collect();
        stop_all(old.into_iter().chain(others).collect()).await;
        forget_softphones(app, |_| false);
        app.view().active = false;
        app.refresh_tray();
    }

    /// Stops the app's own account only (its settings were removed from the file).
    pub async fn stop_main(&self, app: &Arc<App>) {
        let old = self.running.lock().await.take();
        stop_all(old.into_iter().collect()).await;
        forget_softphones(app, |account| account != ACCOUNT);
        let others_running = !self.others.lock().await.is_empty();
        app.view().active = others_running;
        app.refresh_tray();
    }

    /// Gives each running other account its password from the keychain again (it may have been
    /// changed with `vicifast-cli account set`); one that had given up tries again at once.
    pub async fn refresh_other_passwords(&self, app: &Arc<App>) {
        let others = self.others.lock().await;
        for (name, running) in others.iter() {
            let lookup = name.clone();
            if let Ok(Ok(Some(password))) = app.secrets().run(move |k| k.get(&lookup)).await {
                running.registration.set_password(password);
            }
        }
    }

    /// Brings the other saved accounts (added with the CLI) in line with the settings: stops
    /// those removed or changed, starts those new, changed or not running, each with its own
    /// password from the keychain. Those unchanged and running are left alone (no gap).
    pub async fn start_others(&self, app: &Arc<App>) {
        let accounts = app
            .view()
            .settings
            .as_ref()
            .map(settings::others)
            .unwrap_or_default();
        let mut others = self.others.lock().await;
        let stale: Vec<String> = others
            .iter()
            .filter(|(name, r)| {
                !accounts.iter().any(|a| {
                    &a.name == *name && matches!(&r.settings, RunningWith::Other(s) if s == a)
                })
            })
            .map(|(name, _)| name.clone())
            .collect();
        stop_all(stale.iter().filter_map(|n| others.remove(n)).collect()).await;
        app.view()
            .others
            .retain(|name, _| others.contains_key(name));
        forget_softphones(app, |account| {
            account == ACCOUNT || others.contains_key(account)
        });
        let accounts: Vec<AccountSettings> = accounts
            .into_iter()
            .filter(|a| !others.contains_key(&a.name))
            .collect();
        for account in accounts {
            let name = account.name.clone();
            let mut shown = OtherAccount {
                account: name.clone(),
                extension: account.extension.clone(),
                server: account.server.clone(),
                state: None,
                problem: None,
                problem_words: None,
                lost_notified: false,
            };
            let config = match account.to_config() {
                Ok(config) => config,
                Err(e) => {
                    shown.failed(
                        format!("Its saved settings are not valid: {}", e.message),
                        "settings not valid",
                    );
                    app.view().others.insert(name, shown);
                    continue;
                }
            };
            let lookup = name.clone();
            let password = match app.secrets().run(move |k| k.get(&lookup)).await {
                Ok(Ok(Some(p))) => p,
                found => {
                    let why = match found {
                        Ok(Ok(_)) => format!("No password is saved for it (vicifast-cli account set {name} --password-stdin)."),
                        Ok(Err(e)) => keychain_message(&e),
                        Err(e) => e.message,
                    };
                    shown.failed(why, problem_words("credentials"));
                    app.view().others.insert(name, shown);
                    continue;
                }
            };
            app.view().others.insert(name.clone(), shown);
            let options = DriverOptions {
                ca_file: account.ca_file.clone(),
            };
            let (registration, mut events, softphone) =
                start_engine(&account, config, password, options);
            show_softphone(app, &name, softphone);
            let handle = Arc::clone(app);
            let forwarded = name.clone();
            let forwarder = tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    forward_other(&handle, &forwarded, event);
                }
            });
            others.insert(
                name,
                Running {
                    registration,
                    forwarder,
                    settings: RunningWith::Other(account),
                },
            );
        }
        if !others.is_empty() {
            app.view().active = true;
        }
        drop(others);
        app.emit("accounts", &app.view().other_accounts());
        app.refresh_tray();
    }

    /// Retries the other accounts now (one that gave up with its password from the keychain
    /// again), and starts those not running.
    async fn register_others(&self, app: &Arc<App>) {
        {
            let others = self.others.lock().await;
            for (name, running) in others.iter() {
                let failed = app
                    .view()
                    .others
                    .get(name)
                    .is_some_and(|o| o.state == Some(RegistrationState::Failed));
                if !failed {
                    running.registration.retry_now();
                    continue;
                }
                let lookup = name.clone();
                if let Ok(Ok(Some(password))) = app.secrets().run(move |k| k.get(&lookup)).await {
                    // New credentials: it tries again at once.
                    running.registration.set_password(password);
                }
            }
        }
        self.start_others(app).await;
    }
}

/// Stops all at once: each waits for its registrar (at most 2 s) to remove its binding.
async fn stop_all(running: Vec<Running>) {
    let mut stopping = tokio::task::JoinSet::new();
    for r in running {
        stopping.spawn(r.stop());
    }
    while stopping.join_next().await.is_some() {}
}

impl Running {
    async fn stop(self) {
        self.registration.stop().await;
        // The stream ends after the last status; wait until it has been forwarded.
        let _ = self.forwarder.await;
    }
}

async fn read_password(app: &App) -> Result<Password, CommandError> {
    let found = app.secrets().run(|keychain| keychain.get(ACCOUNT)).await?;
    match found {
        Ok(Some(p)) => {
            app.view().has_password = true;
            Ok(p)
        }
        Ok(None) => {
            app.view().has_password = false;
            Err(CommandError::new(
                "credentials",
                "No password is saved for this extension. Enter it in Settings.",
            ))
        }
        Err(e) => Err(CommandError::new("credentials", keychain_message(&e))),
    }
}

/// Shows "the password could not be read" as the status (problem code `credentials`).
pub fn credentials_problem(app: &App, form: &UiSettings, detail: &str) {
    let status = Stamped::now(Status {
        problem: Some(Problem::new(ProblemCode::Credentials, detail)),
        ..Status::without_flow(
            ACCOUNT,
            RegistrationState::Failed,
            Cause::Failed,
            form.transport,
        )
    });
    forward(app, EngineEvent::Status(status));
}

/// Updates the state from one engine event and tells the window, the tray and the user.
pub fn forward(app: &App, event: EngineEvent) {
    match event {
        EngineEvent::Status(status) => {
            let (entry, notice, tray_changed) = {
                let mut view = app.view();
                let previous = view.state;
                let old_tray = view.tray();
                let entry = timeline::from_status(previous, &status);
                if let Some(e) = &entry {
                    view.push_timeline(e.clone());
                }
                view.set_status(&status);
                let notice = notifications::on_status(&mut view, previous, &status.inner);
                (entry, notice, view.tray() != old_tray)
            };
            app.emit("status", &status);
            announce(app, entry, tray_changed, notice);
        }
        EngineEvent::IncomingCall(call) => {
            let entry = timeline::from_call(&call);
            app.view().push_timeline(entry.clone());
            app.emit("timeline", &entry);
        }
        EngineEvent::ExtensionInUse(info) => {
            let entry = timeline::from_extension_in_use(&info);
            let who = app
                .view()
                .extension()
                .map(|e| format!("Extension {e}"))
                .unwrap_or_else(|| "Your extension".to_owned());
            app.view().push_timeline(entry.clone());
            announce(
                app,
                Some(entry),
                false,
                Some(notifications::on_extension_in_use(&who, &info.inner)),
            );
        }
        EngineEvent::Trace(trace) => {
            app.view().push_trace(trace.clone());
            app.emit("trace", &trace);
        }
        EngineEvent::Softphone(status) => softphone_changed(app, ACCOUNT, None, status),
        EngineEvent::CallRefused(refused) => {
            let entry = timeline::from_refused_call(&refused);
            app.view().push_timeline(entry.clone());
            announce(app, Some(entry), false, None);
        }
        EngineEvent::CallMoved(moved) => {
            let entry = timeline::from_call_moved(&moved);
            let notice = notifications::on_call_moved(&moved.inner);
            app.view().push_timeline(entry.clone());
            announce(app, Some(entry), false, Some(notice));
        }
        _ => {}
    }
}

/// Updates the state from one event of another account's engine and tells the window, the tray
/// and the user, naming the extension.
pub fn forward_other(app: &App, name: &str, event: EngineEvent) {
    match event {
        EngineEvent::Status(status) => {
            let (entry, notice, tray_changed) = {
                let mut view = app.view();
                let old_tray = view.tray();
                let Some(other) = view.others.get_mut(name) else {
                    return;
                };
                let previous = other.state;
                let who = format!("Extension {}", other.extension);
                let entry = timeline::from_status(previous, &status).map(|mut e| {
                    e.text = format!("{who}: {}", e.text);
                    e
                });
                other.state = Some(status.inner.state);
                other.problem = status.inner.problem.as_ref().map(|p| p.message.clone());
                other.problem_words = status
                    .inner
                    .problem
                    .as_ref()
                    .map(|p| problem_words(p.code.as_str()).to_owned());
                let notice = notifications::on_change(
                    &who,
                    &mut other.lost_notified,
                    previous,
                    &status.inner,
                );
                if let Some(e) = &entry {
                    view.push_timeline(e.clone());
                }
                (entry, notice, view.tray() != old_tray)
            };
            app.emit("accounts", &app.view().other_accounts());
            announce(app, entry, tray_changed, notice);
        }
        EngineEvent::ExtensionInUse(info) => {
            let Some(extension) = app.view().others.get(name).map(|o| o.extension.clone()) else {
                return;
            };
            let who = format!("Extension {extension}");
            let mut entry = timeline::from_extension_in_use(&info);
            entry.text = format!("{who}: {}", entry.text);
            app.view().push_timeline(entry.clone());
            announce(
                app,
                Some(entry),
                false,
                Some(notifications::on_extension_in_use(&who, &info.inner)),
            );
        }
        EngineEvent::Softphone(status) => {
            let Some(extension) = app.view().others.get(name).map(|o| o.extension.clone()) else {
                return;
            };
            softphone_changed(app, name, Some(&format!("Extension {extension}")), status);
        }
        EngineEvent::CallRefused(refused) => {
            let Some(extension) = app.view().others.get(name).map(|o| o.extension.clone()) else {
                return;
            };
            let mut entry = timeline::from_refused_call(&refused);
            entry.text = format!("Extension {extension}: {}", entry.text);
            app.view().push_timeline(entry.clone());
            announce(app, Some(entry), false, None);
        }
        other => forward(app, other),
    }
}

/// The edge proxy of `account` reported a change of the softphone: the window, the timeline,
/// the tray and (when it stopped answering or needs new settings) a notification. `who` names
/// another account's extension.
fn softphone_changed(
    app: &App,
    account: &str,
    who: Option<&str>,
    status: Stamped<SoftphoneStatus>,
) {
    let mut entry = timeline::from_softphone(&status);
    let mut notice = notifications::on_softphone(&status.inner);
    if let Some(who) = who {
        entry.text = format!("{who}: {}", entry.text);
        if let Some(n) = notice.as_mut() {
            n.body = format!("{who}: {}", n.body);
        }
    }
    let tray_changed = {
        let mut view = app.view();
        let old_tray = view.tray();
        match view.softphones.get_mut(account) {
            Some(shown) => shown.status = Some(status),
            // Reported by an engine this process no longer shows (stopped meanwhile).
            None => return,
        }
        view.push_timeline(entry.clone());
        view.tray() != old_tray
    };
    // The tray first: whoever reacts to the event sees the tray that goes with it.
    announce(app, Some(entry), tray_changed, notice);
    app.emit("softphones", &app.view().softphones());
}

/// What a status change means beyond the status itself: a timeline line, the tray, a notice.
fn announce(
    app: &App,
    entry: Option<timeline::TimelineEntry>,
    tray_changed: bool,
    notice: Option<notifications::Notice>,
) {
    if let Some(e) = entry {
        app.emit("timeline", &e);
    }
    if tray_changed {
        app.refresh_tray();
    }
    if let Some(n) = notice {
        notifications::show(&n);
    }
}
