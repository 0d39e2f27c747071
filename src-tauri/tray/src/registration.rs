//! Runs the registration engine for the app's account and forwards what it reports to the
//! window (`status`, `timeline`, `trace` events), the tray and desktop notifications.

use crate::app::App;
use crate::error::CommandError;
use crate::notifications;
use crate::settings::{self, UiSettings, ACCOUNT};
use crate::timeline;
use std::sync::Arc;
use tokio::sync::Mutex;
use vicifast_accounts::{Keychain, KeychainError};
use vicifast_engine::{
    Cause, DriverOptions, EngineEvent, Password, Problem, ProblemCode, Registration,
    RegistrationState, Stamped, Status,
};

/// The running engine, if any. One lock serialises start and stop.
#[derive(Default)]
pub struct Engine {
    running: Mutex<Option<Running>>,
}

struct Running {
    registration: Registration,
    forwarder: tokio::task::JoinHandle<()>,
    /// The settings it runs with, to tell a password change from a new configuration.
    settings: UiSettings,
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
            if r.settings == form && !fresh {
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
        let (registration, mut events) = Registration::start(config, password, options);
        let handle = Arc::clone(app);
        let forwarder = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                forward(&handle, event);
            }
        });
        *running = Some(Running {
            registration,
            forwarder,
            settings: form,
        });
        app.view().active = true;
        app.refresh_tray();
        Ok(())
    }

    /// "Register" pressed: try again now if running, else start.
    pub async fn register(&self, app: &Arc<App>) -> Result<(), CommandError> {
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

    /// Removes the binding and stops; waits for the engine to finish.
    pub async fn stop(&self, app: &Arc<App>) {
        let old = self.running.lock().await.take();
        if let Some(old) = old {
            old.stop().await;
        }
        app.view().active = false;
        app.refresh_tray();
    }
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
        EngineEvent::IncomingCall(call) => {
            let entry = timeline::from_call(&call);
            app.view().push_timeline(entry.clone());
            app.emit("timeline", &entry);
        }
        EngineEvent::Trace(trace) => {
            app.view().push_trace(trace.clone());
            app.emit("trace", &trace);
        }
        _ => {}
    }
}
