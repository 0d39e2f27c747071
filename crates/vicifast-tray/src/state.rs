//! What the app knows and shows: saved settings, each account's last status, bounded timeline
//! and trace. Kept in the backend so a window created later (or again) gets it all from
//! `get_state`; [`Shared`] holds it with the channels that tell the window and the tray.

use crate::softphone::SoftphoneView;
use crate::timeline::TimelineEntry;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::{broadcast, watch};
use vicifast_accounts::Settings;
use vicifast_engine::{ExtensionInUse, RegistrationState, Stamped, Status, TraceEntry};
use vicifast_ipc::settings::{self, UiSettings, ACCOUNT};

pub const TIMELINE_LIMIT: usize = 200;
pub const TRACE_LIMIT: usize = 300;

/// How many window events may wait for a slow window before it misses some.
const EVENT_BACKLOG: usize = 512;

/// `UiState` on the wire.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct UiState {
    pub settings: Option<UiSettings>,
    pub has_password: bool,
    /// The last status of the app's own account.
    pub status: Option<Stamped<Status>>,
    pub timeline: Vec<TimelineEntry>,
    pub trace: Vec<Stamped<TraceEntry>>,
    pub interface: Option<String>,
    pub other_accounts: Vec<OtherAccount>,
    /// The softphone of each running account that has one.
    pub softphones: Vec<SoftphoneView>,
}

/// Another saved account (added with `vicifast-cli account set`), registered beside the app's
/// own; the window lists it (`OtherAccount` on the wire, event `accounts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct OtherAccount {
    pub account: String,
    pub extension: String,
    pub server: String,
    /// `None` until its registration reports.
    pub state: Option<RegistrationState>,
    /// What went wrong, in words for the agent.
    pub problem: Option<String>,
}

/// One saved account as this process shows it: the app's own (`default`, set up in the window)
/// or another (added with the CLI). Every account is kept and updated the same way; only the
/// window's wire format tells the app's own apart (its `status`, the others' `accounts`).
#[derive(Debug, Clone, Default)]
pub struct AccountView {
    pub extension: String,
    pub server: String,
    /// The last status: the engine's, or one the app made (no password, an unreadable file).
    pub status: Option<Stamped<Status>>,
    /// The registration was lost and the user was told; tell them again when it is back.
    pub lost_notified: bool,
}

impl AccountView {
    pub fn state(&self) -> Option<RegistrationState> {
        self.status.as_ref().map(|s| s.inner.state)
    }

    /// Another device holds the extension: the tray asks for attention, and its Register means
    /// "use this computer", Unregister "stop here".
    pub fn in_use(&self) -> Option<&ExtensionInUse> {
        self.status.as_ref()?.inner.extension_in_use.as_deref()
    }

    /// A few words on the current problem, for the tooltip.
    fn problem_words(&self) -> Option<&'static str> {
        let problem = self.status.as_ref()?.inner.problem.as_ref()?;
        Some(problem_words(problem.code.as_str()))
    }

    /// Who the account is, for the agent: its extension.
    pub fn who(&self) -> String {
        if self.extension.is_empty() {
            "Your extension".to_owned()
        } else {
            format!("Extension {}", self.extension)
        }
    }
}

/// What the tray icon shows: four looks, told apart by shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayLook {
    Registered,
    Working,
    Failed,
    Offline,
}

impl TrayLook {
    /// How much the look asks for attention: the tray shows the most urgent of all accounts.
    fn urgency(self) -> u8 {
        match self {
            Self::Registered => 0,
            Self::Offline => 1,
            Self::Working => 2,
            Self::Failed => 3,
        }
    }

    pub fn of(state: Option<RegistrationState>) -> Self {
        match state {
            Some(RegistrationState::Registered) => Self::Registered,
            Some(RegistrationState::Registering | RegistrationState::Retrying) => Self::Working,
            Some(RegistrationState::Failed) => Self::Failed,
            _ => Self::Offline,
        }
    }
}

/// A snapshot for the tray: icon, tooltip and which of Register/Unregister the menu enables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayView {
    pub look: TrayLook,
    pub tooltip: String,
    /// Register (or try again now): stopped, or some account is not registered.
    pub can_register: bool,
    /// Unregister: something is running.
    pub can_unregister: bool,
}

/// Everything behind the window and the tray.
#[derive(Debug, Default)]
pub struct View {
    /// Saved settings, `None` when the file could not be read.
    pub settings: Option<Settings>,
    /// Why the settings file could not be used (it is then never written).
    pub settings_problem: Option<String>,
    pub has_password: bool,
    /// Every saved account by name, and the app's own (`default`) even before it is set up
    /// (from the first load of the settings on).
    pub accounts: BTreeMap<String, AccountView>,
    pub active: bool,
    pub timeline: VecDeque<TimelineEntry>,
    pub trace: VecDeque<Stamped<TraceEntry>>,
    /// The softphone behind each running account's edge proxy, by account name.
    pub softphones: BTreeMap<String, SoftphoneView>,
}

impl View {
    pub fn push_timeline(&mut self, entry: TimelineEntry) {
        push_bounded(&mut self.timeline, entry, TIMELINE_LIMIT);
    }

    pub fn push_trace(&mut self, entry: Stamped<TraceEntry>) {
        push_bounded(&mut self.trace, entry, TRACE_LIMIT);
    }

    /// Brings the accounts in line with the saved settings: those removed go (the app's own
    /// stays, with its last status), the new ones come, each with its extension and server.
    pub fn set_settings(&mut self, saved: Settings) {
        self.accounts
            .retain(|name, _| name == ACCOUNT || saved.accounts.iter().any(|a| &a.name == name));
        self.accounts.entry(ACCOUNT.to_owned()).or_default();
        for account in &saved.accounts {
            let shown = self.accounts.entry(account.name.clone()).or_default();
            shown.extension.clone_from(&account.extension);
            shown.server.clone_from(&account.server);
        }
        if settings::account(&saved).is_none() {
            if let Some(own) = self.accounts.get_mut(ACCOUNT) {
                own.extension.clear();
                own.server.clear();
            }
        }
        self.settings = Some(saved);
    }

    /// The app's own account, once the settings were loaded or it reported.
    pub fn own(&self) -> Option<&AccountView> {
        self.accounts.get(ACCOUNT)
    }

    pub fn ui_settings(&self) -> Option<UiSettings> {
        self.settings.as_ref().and_then(settings::to_ui)
    }

    pub fn ui_state(&self, interface: Option<String>) -> UiState {
        UiState {
            settings: self.ui_settings(),
            has_password: self.has_password,
            status: self.own().and_then(|a| a.status.clone()),
            timeline: self.timeline.iter().rev().cloned().collect(),
            trace: self.trace.iter().rev().cloned().collect(),
            interface,
            other_accounts: self.other_accounts(),
            softphones: self.softphones(),
        }
    }

    /// The address the app's own account registers from.
    pub fn local_address(&self) -> Option<&str> {
        self.own()?.status.as_ref()?.inner.local_address.as_deref()
    }

    pub fn softphones(&self) -> Vec<SoftphoneView> {
        self.softphones.values().cloned().collect()
    }

    /// What keeps `account`'s softphone from taking calls, in a few words.
    fn softphone_trouble(&self, account: &str) -> Option<&'static str> {
        self.softphones
            .get(account)
            .and_then(SoftphoneView::trouble)
    }

    /// The accounts other than the app's own, as the window lists them.
    pub fn other_accounts(&self) -> Vec<OtherAccount> {
        self.accounts
            .iter()
            .filter(|(name, _)| name.as_str() != ACCOUNT)
            .map(|(name, a)| OtherAccount {
                account: name.clone(),
                extension: a.extension.clone(),
                server: a.server.clone(),
                state: a.state(),
                problem: a
                    .status
                    .as_ref()
                    .and_then(|s| s.inner.problem.as_ref())
                    .map(|p| p.message.clone()),
            })
            .collect()
    }

    /// How `account` looks in the tray: a softphone that cannot take calls or another device on
    /// the extension leaves the agent unreachable, registered or not.
    fn look_of(&self, name: &str, account: &AccountView) -> TrayLook {
        if account.in_use().is_some() || self.softphone_trouble(name).is_some() {
            TrayLook::Failed
        } else {
            TrayLook::of(account.state())
        }
    }

    pub fn tray(&self) -> TrayView {
        let own_set_up = self.settings.as_ref().and_then(settings::account).is_some();
        let unset = AccountView::default();
        let own = self.own().unwrap_or(&unset);
        // An app account never set up does not grey out the others' icon.
        let others = || self.accounts.iter().filter(|(n, _)| n.as_str() != ACCOUNT);
        let show_own = own_set_up || self.settings_problem.is_some() || others().next().is_none();
        let own_look = if self.settings_problem.is_some() {
            TrayLook::Failed
        } else {
            self.look_of(ACCOUNT, own)
        };
        let look = show_own
            .then_some(own_look)
            .into_iter()
            .chain(others().map(|(name, a)| self.look_of(name, a)))
            .max_by_key(|l| l.urgency())
            .unwrap_or(TrayLook::Offline);

        let who = if own_set_up {
            own.who()
        } else {
            "Not set up".to_owned()
        };
        let state = match own.state() {
            Some(s) => state_words(s),
            None if own_set_up || self.settings_problem.is_some() => "not registered",
            None => "open VICIfast to set up",
        };
        let mut tooltip = format!("VICIfast — {who}: {state}");
        self.tooltip_troubles(&mut tooltip, ACCOUNT, own);
        if own.in_use().is_some() {
            tooltip.push_str(" (Register: use this computer; Unregister: stop here)");
        }
        for (name, other) in others() {
            let state = other.state().map_or("not registered", state_words);
            tooltip.push_str(&format!("\n{}: {state}", other.who()));
            self.tooltip_troubles(&mut tooltip, name, other);
        }
        let registered = |a: &AccountView| a.state() == Some(RegistrationState::Registered);
        let waiting = (own_set_up && !registered(own))
            || others().any(|(_, a)| !registered(a))
            || self.accounts.values().any(|a| a.in_use().is_some());
        TrayView {
            look,
            tooltip,
            can_register: !self.active || waiting,
            can_unregister: self.active,
        }
    }

    /// The account's problem and its softphone's, each after a dash; for the app's own, a
    /// settings file that became unusable while its registration goes on.
    fn tooltip_troubles(&self, tooltip: &mut String, name: &str, account: &AccountView) {
        let file = self.settings_problem.is_some()
            && name == ACCOUNT
            && account.problem_words() != Some(problem_words("settings_file"));
        let words = account.problem_words().into_iter();
        let file = file.then(|| problem_words("settings_file"));
        for words in words.chain(file).chain(self.softphone_trouble(name)) {
            tooltip.push_str(" — ");
            tooltip.push_str(words);
        }
    }
}

fn push_bounded<T>(list: &mut VecDeque<T>, entry: T, limit: usize) {
    list.push_back(entry);
    while list.len() > limit {
        list.pop_front();
    }
}

fn state_words(state: RegistrationState) -> &'static str {
    match state {
        RegistrationState::Idle => "not started",
        RegistrationState::Registering => "registering",
        RegistrationState::Registered => "registered",
        RegistrationState::Retrying => "retrying",
        RegistrationState::Failed => "not registered",
        RegistrationState::Offline => "offline",
        RegistrationState::Unregistered => "unregistered",
        _ => "unknown",
    }
}

/// A problem code in a few words, for the tooltip.
pub fn problem_words(code: &str) -> &'static str {
    match code {
        "wrong_password" => "wrong password",
        "forbidden" => "server refused this extension",
        "unknown_extension" => "unknown extension",
        "rejected" => "server rejected registration",
        "timeout" => "server not answering",
        "dns_failure" => "server name not found",
        "connection_refused" => "connection refused",
        "tls_certificate" => "untrusted certificate",
        "server_error" => "server error",
        "network_down" => "no network",
        "transport_error" => "connection broke",
        "invalid_response" => "bad server answer",
        "credentials" => "password not available",
        "invalid_settings" => "setting unusable",
        "extension_in_use" => "another device has this extension",
        "settings_file" => "settings file unreadable",
        _ => "problem",
    }
}

/// An event for the window: its name (`status`, `timeline`, `trace`, `accounts`, `softphones`,
/// `focus`) and payload.
#[derive(Debug, Clone)]
pub struct WindowEvent {
    pub name: &'static str,
    pub payload: serde_json::Value,
}

/// The view, and the channels that tell the window (events) and the tray (a snapshot) of its
/// changes.
pub struct Shared {
    view: Mutex<View>,
    events: broadcast::Sender<WindowEvent>,
    tray: watch::Sender<TrayView>,
}

impl Default for Shared {
    fn default() -> Self {
        let view = View::default();
        let tray = watch::Sender::new(view.tray());
        Self {
            view: Mutex::new(view),
            events: broadcast::channel(EVENT_BACKLOG).0,
            tray,
        }
    }
}

impl Shared {
    /// Locks the view.
    pub fn view(&self) -> MutexGuard<'_, View> {
        lock(&self.view)
    }

    /// Sends an event to every window listening.
    pub fn emit(&self, name: &'static str, payload: &impl Serialize) {
        match serde_json::to_value(payload) {
            // No window listening is the usual case, not an error.
            Ok(payload) => drop(self.events.send(WindowEvent { name, payload })),
            Err(e) => tracing::warn!("event `{name}` not sent: {e}"),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<WindowEvent> {
        self.events.subscribe()
    }

    /// Whether a window is listening.
    pub fn window_listening(&self) -> bool {
        self.events.receiver_count() > 0
    }

    /// What the tray shows, for its platform front end.
    pub fn tray_views(&self) -> watch::Receiver<TrayView> {
        self.tray.subscribe()
    }

    /// Brings the tray in line with the view.
    pub fn refresh_tray(&self) {
        let view = self.view().tray();
        self.tray.send_if_modified(|shown| {
            let changed = *shown != view;
            *shown = view;
            changed
        });
    }
}

/// Locks `mutex`; a panic while it was held does not make it unusable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_bounded_and_newest_first_in_ui_state() {
        let mut view = View::default();
        for i in 0..(TIMELINE_LIMIT + 5) {
            view.push_timeline(TimelineEntry {
                at: format!("{i}"),
                kind: "refreshed".to_owned(),
                text: String::new(),
            });
        }
        let ui = view.ui_state(None);
        assert_eq!(ui.timeline.len(), TIMELINE_LIMIT);
        assert_eq!(ui.timeline[0].at, format!("{}", TIMELINE_LIMIT + 4));
    }

    #[test]
    fn tray_looks_differ_per_state() {
        assert_eq!(
            TrayLook::of(Some(RegistrationState::Registered)),
            TrayLook::Registered
        );
        assert_eq!(
            TrayLook::of(Some(RegistrationState::Retrying)),
            TrayLook::Working
        );
        assert_eq!(
            TrayLook::of(Some(RegistrationState::Failed)),
            TrayLook::Failed
        );
        assert_eq!(TrayLook::of(None), TrayLook::Offline);
    }

    #[test]
    fn menu_enables_register_when_stopped_or_not_registered() {
        let mut view = View::default();
        view.set_settings(settings::apply(&Settings::default(), &form()));
        assert!(view.tray().can_register);
        assert!(!view.tray().can_unregister);
        view.active = true;
        set_state(&mut view, ACCOUNT, RegistrationState::Registered, None);
        assert!(!view.tray().can_register);
        assert!(view.tray().can_unregister);
        set_state(&mut view, ACCOUNT, RegistrationState::Failed, None);
        assert!(view.tray().can_register, "try again now");
        assert!(view.tray().can_unregister);
    }

    fn form() -> UiSettings {
        crate::test_form("pbx")
    }

    /// The app's own account set up, running and registered.
    fn registered_view() -> View {
        let mut view = View {
            active: true,
            ..View::default()
        };
        view.set_settings(settings::apply(&Settings::default(), &form()));
        set_state(&mut view, ACCOUNT, RegistrationState::Registered, None);
        view
    }

    /// `name`'s last status says `state`, with `problem`.
    fn set_state(
        view: &mut View,
        name: &str,
        state: RegistrationState,
        problem: Option<vicifast_engine::ProblemCode>,
    ) {
        let status = Status {
            problem: problem.map(|code| vicifast_engine::Problem::new(code, "test")),
            ..Status::without_flow(
                name,
                state,
                vicifast_engine::Cause::Failed,
                Default::default(),
            )
        };
        let shown = view.accounts.entry(name.to_owned()).or_default();
        shown.status = Some(Stamped::now(status));
    }

    /// Another saved account, `<name>-ext`; retrying because the server does not answer.
    fn add_other(view: &mut View, name: &str, state: RegistrationState) {
        view.accounts.insert(
            name.to_owned(),
            AccountView {
                extension: format!("{name}-ext"),
                server: "pbx".to_owned(),
                ..AccountView::default()
            },
        );
        let problem =
            (state == RegistrationState::Retrying).then_some(vicifast_engine::ProblemCode::Timeout);
        set_state(view, name, state, problem);
    }

    #[test]
    fn the_tray_shows_the_most_urgent_account_and_names_each() {
        let mut view = registered_view();
        assert_eq!(view.tray().look, TrayLook::Registered);
        add_other(&mut view, "b", RegistrationState::Retrying);
        add_other(&mut view, "c", RegistrationState::Registered);
        let tray = view.tray();
        assert_eq!(tray.look, TrayLook::Working);
        assert!(
            tray.tooltip
                .contains("Extension b-ext: retrying — server not answering"),
            "{}",
            tray.tooltip
        );
        assert!(tray.tooltip.contains("Extension c-ext: registered"));
        assert!(
            tray.can_register,
            "b is not registered: Register tries again"
        );
        add_other(&mut view, "d", RegistrationState::Failed);
        assert_eq!(view.tray().look, TrayLook::Failed);
        assert!(view.tray().can_register, "Register retries the failed one");
    }

    #[test]
    fn an_app_account_never_set_up_does_not_grey_out_the_others() {
        let mut view = View {
            active: true,
            ..View::default()
        };
        add_other(&mut view, "b", RegistrationState::Registered);
        assert_eq!(view.tray().look, TrayLook::Registered);
        assert!(view.tray().tooltip.contains("open VICIfast to set up"));
    }

    #[test]
    fn another_device_on_the_extension_asks_for_attention_and_offers_the_choice() {
        use vicifast_engine::{InUseDetection, OtherDevice};
        let mut view = registered_view();
        assert_eq!(view.tray().look, TrayLook::Registered);
        assert!(!view.tray().can_register);
        set_state(
            &mut view,
            ACCOUNT,
            RegistrationState::Registered,
            Some(vicifast_engine::ProblemCode::ExtensionInUse),
        );
        let in_use = ExtensionInUse::new(
            "default",
            vec![OtherDevice {
                contact: "sip:101@198.18.5.5:5062".to_owned(),
                address: Some("198.18.5.5:5062".to_owned()),
                user_agent: None,
                expires_in: Some(300),
            }],
            InUseDetection::BindingCheck,
        );
        if let Some(status) = view
            .accounts
            .get_mut(ACCOUNT)
            .and_then(|a| a.status.as_mut())
        {
            status.inner.extension_in_use = Some(Box::new(in_use));
        }
        let tray = view.tray();
        assert_eq!(tray.look, TrayLook::Failed);
        assert!(tray.can_register, "Register: use this computer");
        assert!(tray.can_unregister, "Unregister: stop here");
        assert!(
            tray.tooltip.contains("another device has this extension")
                && tray.tooltip.contains("use this computer"),
            "{}",
            tray.tooltip
        );
    }

    #[test]
    fn a_softphone_that_cannot_take_calls_makes_its_account_ask_for_attention() {
        use crate::softphone::SoftphoneView;
        use vicifast_engine::{SoftphoneState, SoftphoneStatus, Stamped, Transport};
        let mut view = registered_view();
        add_other(&mut view, "b", RegistrationState::Registered);
        let account = vicifast_accounts::AccountSettings::new(ACCOUNT, "pbx", "101");
        let mut softphone = SoftphoneView::listening(&account, "127.0.0.1:5070".parse().unwrap());
        let report = |state| {
            Some(Stamped {
                at: "2026-12-04T08:00:00.000Z".to_owned(),
                inner: SoftphoneStatus {
                    account: ACCOUNT.to_owned(),
                    state,
                    user_agent: Some("MicroSIP/3.21.3".to_owned()),
                    contact: Some("sip:101@127.0.0.1:5062".to_owned()),
                    transport: Some(Transport::Udp),
                    expires_in: Some(600),
                    problem: None,
                },
            })
        };
        softphone.status = report(SoftphoneState::Answering);
        view.softphones
            .insert(ACCOUNT.to_owned(), softphone.clone());
        let tray = view.tray();
        assert_eq!(tray.look, TrayLook::Registered);
        assert!(!tray.tooltip.contains("softphone"), "{}", tray.tooltip);

        softphone.status = report(SoftphoneState::NotAnswering);
        view.softphones
            .insert(ACCOUNT.to_owned(), softphone.clone());
        let tray = view.tray();
        assert_eq!(tray.look, TrayLook::Failed);
        let first_line = tray.tooltip.lines().next().unwrap_or_default();
        assert_eq!(
            first_line,
            "VICIfast — Extension 101: registered — softphone not running"
        );
        assert!(
            tray.tooltip.contains("\nExtension b-ext: registered")
                && !tray.tooltip.contains("b-ext: registered —"),
            "only the account whose softphone is down is flagged: {}",
            tray.tooltip
        );
        assert!(
            !tray.can_register,
            "registering again does not start the softphone"
        );

        // The window opened now gets it from get_state, not only from the event.
        let ui = serde_json::to_value(view.ui_state(None)).unwrap();
        assert_eq!(ui["softphones"][0]["status"]["state"], "not_answering");
        assert_eq!(ui["softphones"][0]["listen"], "127.0.0.1:5070");

        softphone.status = report(SoftphoneState::Answering);
        view.softphones.insert(ACCOUNT.to_owned(), softphone);
        assert_eq!(view.tray().look, TrayLook::Registered);

        // Another account's softphone: its line says so, and the icon asks for attention.
        let b = vicifast_accounts::AccountSettings::new("b", "pbx", "b-ext");
        let mut theirs = SoftphoneView::listening(&b, "127.0.0.1:5071".parse().unwrap());
        theirs.status = report(SoftphoneState::NotRegistered);
        view.softphones.insert("b".to_owned(), theirs);
        let tray = view.tray();
        assert_eq!(tray.look, TrayLook::Failed);
        assert!(
            tray.tooltip
                .contains("\nExtension b-ext: registered — no softphone signed in"),
            "{}",
            tray.tooltip
        );
    }

    #[test]
    fn tooltip_names_extension_state_and_problem() {
        let mut view = View::default();
        set_state(
            &mut view,
            ACCOUNT,
            RegistrationState::Failed,
            Some(vicifast_engine::ProblemCode::WrongPassword),
        );
        let t = view.tray();
        assert_eq!(t.look, TrayLook::Failed);
        assert!(t.tooltip.contains("wrong password"), "{}", t.tooltip);
    }
}
