//! The one reducer: applies what every account's engine reports (a [`Report`]) to the view and
//! tells the window, the tray and the user. The app's own account (`default`) and the others go
//! the same way; only the wire tells them apart: the window hears of the app's own as `status`
//! and of the others as `accounts`, and the others' timeline lines and notices name their
//! extension.

use crate::notifications::{self, Notice};
use crate::registration::Report;
use crate::softphone::SoftphoneView;
use crate::state::{AccountView, Shared, View};
use crate::timeline::{self, TimelineEntry};
use std::sync::Arc;
use tokio::sync::mpsc;
use vicifast_engine::{EngineEvent, SoftphoneStatus, Stamped};
use vicifast_ipc::settings::ACCOUNT;

/// Applies reports in the order they come until every engine (and the app) is gone.
pub async fn run(shared: Arc<Shared>, mut reports: mpsc::UnboundedReceiver<Report>) {
    while let Some(report) = reports.recv().await {
        apply(&shared, report);
    }
}

pub fn apply(shared: &Shared, report: Report) {
    match report {
        Report::Started { account, softphone } => show_softphone(shared, &account, softphone),
        Report::Event { account, event } => apply_event(shared, &account, event),
        Report::Ended { account, applied } => {
            forget_softphone(shared, &account);
            let _ = applied.send(());
        }
        Report::Flush { applied } => {
            let _ = applied.send(());
        }
    }
}

/// The account's entry: the app's own is always shown; another only while it is saved (a
/// report from an engine stopped meanwhile finds none).
fn shown<'a>(view: &'a mut View, account: &str) -> Option<&'a mut AccountView> {
    if account == ACCOUNT {
        Some(view.accounts.entry(ACCOUNT.to_owned()).or_default())
    } else {
        view.accounts.get_mut(account)
    }
}

/// Who `account` is in timeline lines and notices: `None` for the app's own (its window is
/// about it), else its extension; `Err` when the account is no longer shown.
fn speaker(shared: &Shared, account: &str) -> Result<Option<String>, ()> {
    let mut view = shared.view();
    let shown = shown(&mut view, account).ok_or(())?;
    Ok((account != ACCOUNT).then(|| shown.who()))
}

/// `entry` as a line about `who`.
fn named(mut entry: TimelineEntry, who: Option<&str>) -> TimelineEntry {
    if let Some(who) = who {
        entry.text = format!("{who}: {}", entry.text);
    }
    entry
}

fn apply_event(shared: &Shared, account: &str, event: EngineEvent) {
    if let EngineEvent::Trace(trace) = event {
        shared.view().push_trace(trace.clone());
        shared.emit("trace", &trace);
        return;
    }
    let Ok(who) = speaker(shared, account) else {
        return;
    };
    let who = who.as_deref();
    match event {
        EngineEvent::Status(status) => {
            let (entry, notice) = {
                let mut view = shared.view();
                let Some(shown) = shown(&mut view, account) else {
                    return;
                };
                let previous = shown.state();
                let entry = timeline::from_status(previous, &status).map(|e| named(e, who));
                let notice = notifications::on_change(
                    &shown.who(),
                    &mut shown.lost_notified,
                    previous,
                    &status.inner,
                );
                shown.status = Some(status.clone());
                if let Some(e) = &entry {
                    view.push_timeline(e.clone());
                }
                (entry, notice)
            };
            if account == ACCOUNT {
                shared.emit("status", &status);
            } else {
                shared.emit("accounts", &shared.view().other_accounts());
            }
            announce(shared, entry, notice);
        }
        EngineEvent::IncomingCall(call) => {
            let entry = named(timeline::from_call(&call), who);
            shared.view().push_timeline(entry.clone());
            shared.emit("timeline", &entry);
        }
        EngineEvent::ExtensionInUse(info) => {
            let entry = named(timeline::from_extension_in_use(&info), who);
            let notice = {
                let mut view = shared.view();
                view.push_timeline(entry.clone());
                let extension = shown(&mut view, account).map(|a| a.who());
                notifications::on_extension_in_use(&extension.unwrap_or_default(), &info.inner)
            };
            announce(shared, Some(entry), Some(notice));
        }
        EngineEvent::Softphone(status) => softphone_changed(shared, account, who, status),
        EngineEvent::CallRefused(refused) => {
            let entry = named(timeline::from_refused_call(&refused), who);
            shared.view().push_timeline(entry.clone());
            announce(shared, Some(entry), None);
        }
        EngineEvent::CallMoved(moved) => {
            let entry = named(timeline::from_call_moved(&moved), who);
            let notice = notifications::on_call_moved(&moved.inner);
            shared.view().push_timeline(entry.clone());
            announce(shared, Some(entry), Some(notice));
        }
        _ => {}
    }
}

/// Shows (or, with `None`, forgets) the softphone of `account` and tells the window; a listener
/// that could not start is told like any other softphone problem.
fn show_softphone(shared: &Shared, account: &str, softphone: Option<SoftphoneView>) {
    let not_listening = softphone.as_ref().and_then(|s| {
        let problem = s.listen_problem.clone()?;
        Some(if account == ACCOUNT {
            problem
        } else {
            format!("Extension {}: {problem}", s.extension)
        })
    });
    {
        let mut view = shared.view();
        match softphone {
            Some(s) => view.softphones.insert(account.to_owned(), s),
            None => view.softphones.remove(account),
        };
    }
    shared.emit("softphones", &shared.view().softphones());
    if let Some(problem) = not_listening {
        let entry = TimelineEntry {
            at: Stamped::now(()).at,
            kind: "softphone".to_owned(),
            text: problem.clone(),
        };
        shared.view().push_timeline(entry.clone());
        let notice = Notice {
            title: "Softphone cannot reach VICIfast".to_owned(),
            body: problem,
        };
        announce(shared, Some(entry), Some(notice));
    }
}

/// `account`'s engine ended: its softphone is no longer served.
fn forget_softphone(shared: &Shared, account: &str) {
    let removed = shared.view().softphones.remove(account).is_some();
    if removed {
        shared.emit("softphones", &shared.view().softphones());
        shared.refresh_tray();
    }
}

/// The edge proxy of `account` reported a change of the softphone: the window, the timeline,
/// the tray and (when it stopped answering or needs new settings) a notification. `who` names
/// another account's extension.
fn softphone_changed(
    shared: &Shared,
    account: &str,
    who: Option<&str>,
    status: Stamped<SoftphoneStatus>,
) {
    let entry = named(timeline::from_softphone(&status), who);
    let mut notice = notifications::on_softphone(&status.inner);
    if let (Some(who), Some(n)) = (who, notice.as_mut()) {
        n.body = format!("{who}: {}", n.body);
    }
    {
        let mut view = shared.view();
        match view.softphones.get_mut(account) {
            Some(shown) => shown.status = Some(status),
            // Reported by an engine this process no longer shows (stopped meanwhile).
            None => return,
        }
        view.push_timeline(entry.clone());
    }
    // The tray first: whoever reacts to the event sees the tray that goes with it.
    announce(shared, Some(entry), notice);
    shared.emit("softphones", &shared.view().softphones());
}

/// What a change means beyond itself: a timeline line, the tray (sent only when it looks
/// different), a notice.
fn announce(shared: &Shared, entry: Option<TimelineEntry>, notice: Option<Notice>) {
    if let Some(e) = entry {
        shared.emit("timeline", &e);
    }
    shared.refresh_tray();
    if let Some(n) = notice {
        notifications::show(&n);
    }
}
