//! What the app knows and shows: saved settings, the last status, bounded timeline and trace.
//! Kept in the backend so a window created later (or again) gets it all from `get_state`.

use crate::softphone::SoftphoneView;
use crate::timeline::TimelineEntry;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use vicifast_accounts::Settings;
use vicifast_engine::{ExtensionInUse, RegistrationState, Stamped, Status, TraceEntry};
use vicifast_ipc::settings::{self, UiSettings, ACCOUNT};

pub const TIMELINE_LIMIT: usize = 200;
pub const TRACE_LIMIT: usize = 300;

/// `UiState` on the wire.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct UiState {
    pub settings: Option<UiSettings>,
    pub has_password: bool,
    /// The last status: the engine's, or one the app made in the same shape (an unreadable
    /// settings file, problem code `settings_file`, which is not one of the engine's codes).
    #[cfg_attr(test, ts(as = "Option<Stamped<vicifast_engine::Status>>"))]
    pub status: Option<serde_json::Value>,
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
    #[serde(skip)]
    pub problem_words: Option<String>,
    /// Its loss was announced; announce its return too.
    #[serde(skip)]
    pub lost_notified: bool,
}

impl OtherAccount {
    /// It cannot register at all: `problem` for the window, `words` for the tooltip.
    pub fn failed(&mut self, problem: String, words: &str) {
        self.state = Some(RegistrationState::Failed);
        self.problem = Some(problem);
        self.problem_words = Some(words.to_owned());
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
    /// The last status as sent to the window (an engine status, or one the app made).
    pub status: Option<serde_json::Value>,
    pub state: Option<RegistrationState>,
    /// A few words on the current problem, for the tooltip.
    pub problem_words: Option<String>,
    pub local_address: Option<String>,
    pub active: bool,
    pub timeline: VecDeque<TimelineEntry>,
    pub trace: VecDeque<Stamped<TraceEntry>>,
    /// The registration was lost and the user was told; tell them again when it is back.
    pub lost_notified: bool,
    /// The other saved accounts, by name.
    pub others: BTreeMap<String, OtherAccount>,
    /// Another device holds the app's extension: the tray asks for attention, and its Register
    /// means "use this computer", Unregister "stop here".
    pub in_use: Option<ExtensionInUse>,
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

    pub fn set_status(&mut self, status: &Stamped<Status>) {
        self.status = serde_json::to_value(status).ok();
        self.state = Some(status.inner.state);
        self.local_address = status.inner.local_address.clone();
        self.in_use = status.inner.extension_in_use.as_deref().cloned();
        self.problem_words = status
            .inner
            .problem
            .as_ref()
            .map(|p| problem_words(p.code.as_str()).to_owned());
    }

    pub fn ui_settings(&self) -> Option<UiSettings> {
        self.settings.as_ref().and_then(settings::to_ui)
    }

    pub fn extension(&self) -> Option<String> {
        self.ui_settings().map(|s| s.extension)
    }

    pub fn ui_state(&self, interface: Option<String>) -> UiState {
        UiState {
            settings: self.ui_settings(),
            has_password: self.has_password,
            status: self.status.clone(),
            timeline: self.timeline.iter().rev().cloned().collect(),
            trace: self.trace.iter().rev().cloned().collect(),
            interface,
            other_accounts: self.other_accounts(),
            softphones: self.softphones(),
        }
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

    pub fn other_accounts(&self) -> Vec<OtherAccount> {
        self.others.values().cloned().collect()
    }

    pub fn tray(&self) -> TrayView {
        let main_set_up = self.settings.as_ref().and_then(settings::account).is_some();
        // A softphone that cannot take calls leaves the agent unreachable, registered or not.
        let main_softphone = self.softphone_trouble(ACCOUNT);
        let main_look =
            if self.settings_problem.is_some() || self.in_use.is_some() || main_softphone.is_some()
            {
                TrayLook::Failed
            } else {
                TrayLook::of(self.state)
            };
        // An app account never set up does not grey out the others' icon.
        let show_main = main_set_up || self.settings_problem.is_some() || self.others.is_empty();
        let look = show_main
            .then_some(main_look)
            .into_iter()
            .chain(self.others.values().map(|o| {
                if self.softphone_trouble(&o.account).is_some() {
                    TrayLook::Failed
                } else {
                    TrayLook::of(o.state)
                }
            }))
            .max_by_key(|l| l.urgency())
            .unwrap_or(TrayLook::Offline);
        let who = self
            .extension()
            .map(|e| format!("Extension {e}"))
            .unwrap_or_else(|| "Not set up".to_owned());
        let state = match (self.settings_problem.is_some(), self.state) {
            (true, _) => "settings file unreadable".to_owned(),
            (false, Some(s)) => state_words(s).to_owned(),
            (false, None) if !main_set_up => "open VICIfast to set up".to_owned(),
            (false, None) => "not registered".to_owned(),
        };
        let mut tooltip = format!("VICIfast — {who}: {state}");
        for words in self
            .problem_words
            .as_deref()
            .into_iter()
            .chain(main_softphone)
        {
            tooltip.push_str(" — ");
            tooltip.push_str(words);
        }
        if self.in_use.is_some() {
            tooltip.push_str(" (Register: use this computer; Unregister: stop here)");
        }
        for other in self.others.values() {
            let state = other.state.map_or("not registered", state_words);
            tooltip.push_str(&format!("\nExtension {}: {state}", other.extension));
            let softphone = self.softphone_trouble(&other.account);
            for words in other.problem_words.as_deref().into_iter().chain(softphone) {
                tooltip.push_str(" — ");
                tooltip.push_str(words);
            }
        }
        let registered = |s: Option<RegistrationState>| s == Some(RegistrationState::Registered);
        let main_waiting = main_set_up && !registered(self.state);
        TrayView {
            look,
            tooltip,
            can_register: !self.active
                || main_waiting
                || self.in_use.is_some()
                || self.others.values().any(|o| !registered(o.state)),
            can_unregister: self.active,
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

/// The shared state, managed by Tauri.
#[derive(Debug, Default)]
pub struct Shared {
    view: Mutex<View>,
}

impl Shared {
    /// Locks the view.
    pub fn view(&self) -> MutexGuard<'_, View> {
        lock(&self.view)
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
        let mut view = View {
            settings: Some(settings::apply(&Settings::default(), &form())),
            ..View::default()
        };
        assert!(view.tray().can_register);
        assert!(!view.tray().can_unregister);
        view.active = true;
        view.state = Some(RegistrationState::Registered);
        assert!(!view.tray().can_register);
        assert!(view.tray().can_unregister);
        view.state = Some(RegistrationState::Failed);
        assert!(view.tray().can_register, "try again now");
        assert!(view.tray().can_unregister);
    }

    fn form() -> UiSettings {
        crate::test_form("pbx")
    }

    /// The app's own account set up, running and registered.
    fn registered_view() -> View {
        View {
            active: true,
            state: Some(RegistrationState::Registered),
            settings: Some(settings::apply(&Settings::default(), &form())),
            ..View::default()
        }
    }

    fn other(name: &str, state: Option<RegistrationState>) -> OtherAccount {
        OtherAccount {
            account: name.to_owned(),
            extension: format!("{name}-ext"),
            server: "pbx".to_owned(),
            state,
            problem: None,
            problem_words: state
                .filter(|s| *s == RegistrationState::Retrying)
                .map(|_| "server not answering".to_owned()),
            lost_notified: false,
        }
    }

    #[test]
    fn the_tray_shows_the_most_urgent_account_and_names_each() {
        let mut view = registered_view();
        assert_eq!(view.tray().look, TrayLook::Registered);
        view.others.insert(
            "b".to_owned(),
            other("b", Some(RegistrationState::Retrying)),
        );
        view.others.insert(
            "c".to_owned(),
            other("c", Some(RegistrationState::Registered)),
        );
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
        view.others
            .insert("d".to_owned(), other("d", Some(RegistrationState::Failed)));
        assert_eq!(view.tray().look, TrayLook::Failed);
        assert!(view.tray().can_register, "Register retries the failed one");
    }

    #[test]
    fn an_app_account_never_set_up_does_not_grey_out_the_others() {
        let mut view = View {
            active: true,
            ..View::default()
        };
        view.others.insert(
            "b".to_owned(),
            other("b", Some(RegistrationState::Registered)),
        );
        assert_eq!(view.tray().look, TrayLook::Registered);
        assert!(view.tray().tooltip.contains("open VICIfast to set up"));
    }

    #[test]
    fn another_device_on_the_extension_asks_for_attention_and_offers_the_choice() {
        use vicifast_engine::{InUseDetection, OtherDevice};
        let mut view = registered_view();
        assert_eq!(view.tray().look, TrayLook::Registered);
        assert!(!view.tray().can_register);
        view.in_use = Some(ExtensionInUse::new(
            "default",
            vec![OtherDevice {
                contact: "sip:101@198.18.5.5:5062".to_owned(),
                address: Some("198.18.5.5:5062".to_owned()),
                user_agent: None,
                expires_in: Some(300),
            }],
            InUseDetection::BindingCheck,
        ));
        view.problem_words = Some(problem_words("extension_in_use").to_owned());
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
        view.others.insert(
            "b".to_owned(),
            other("b", Some(RegistrationState::Registered)),
        );
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
        let mut view = View {
            state: Some(RegistrationState::Failed),
            problem_words: Some(problem_words("wrong_password").to_owned()),
            ..View::default()
        };
        view.settings = None;
        let t = view.tray();
        assert_eq!(t.look, TrayLook::Failed);
        assert!(t.tooltip.contains("wrong password"), "{}", t.tooltip);
    }
}
