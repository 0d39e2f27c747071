//! Desktop notifications: when the registration is lost, and when it is back.

use vicifast_engine::{
    CallMoved, Cause, ExtensionInUse, RegistrationState, SoftphoneState, SoftphoneStatus, Status,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    pub body: String,
}

/// Whether this status change of `who` deserves a notification; remembers a loss in
/// `lost_notified` so the recovery is announced too. Unregistering on request is not a loss.
pub fn on_change(
    who: &str,
    lost_notified: &mut bool,
    previous: Option<RegistrationState>,
    status: &Status,
) -> Option<Notice> {
    match status.state {
        RegistrationState::Registered if *lost_notified => {
            *lost_notified = false;
            Some(Notice {
                title: "Phone registered again".to_owned(),
                body: format!("{who} can receive calls again."),
            })
        }
        RegistrationState::Registered => None,
        RegistrationState::Unregistered | RegistrationState::Idle => None,
        _ if status.cause == Cause::UserRequest => None,
        _ if previous == Some(RegistrationState::Registered) && !*lost_notified => {
            *lost_notified = true;
            let why = status
                .problem
                .as_ref()
                .map(|p| p.message.clone())
                .unwrap_or_else(|| "VICIfast is registering again.".to_owned());
            Some(Notice {
                title: "Phone registration lost".to_owned(),
                body: format!("{who} cannot receive calls right now. {why}"),
            })
        }
        _ => None,
    }
}

/// Whether a change of the softphone behind the edge proxy deserves a notification: it stopped
/// answering (calls are refused meanwhile), or its settings need changing. The engine reports
/// changes only, so each is told once.
pub fn on_softphone(status: &SoftphoneStatus) -> Option<Notice> {
    if let Some(problem) = &status.problem {
        return Some(Notice {
            title: "Softphone settings".to_owned(),
            body: format!("{} {}", problem.message, problem.action),
        });
    }
    (status.state == SoftphoneState::NotAnswering).then(|| Notice {
        title: "Softphone not answering".to_owned(),
        body: "Calls are refused until your softphone runs again: start it.".to_owned(),
    })
}

/// Another device took the extension of `who`: one notice per episode (the engine reports each
/// episode once), with the choice the window and the tray menu offer.
pub fn on_extension_in_use(who: &str, info: &ExtensionInUse) -> Notice {
    Notice {
        title: "Extension in use on another device".to_owned(),
        body: format!(
            "{who}: {} Open VICIfast to choose: use this computer, or stop here.",
            info.message
        ),
    }
}

/// The network changed during a call: the agent hears nothing from the caller until the
/// softphone renegotiates, which it does not do by itself, so the agent is told what to do. The
/// engine reports each change once.
pub fn on_call_moved(moved: &CallMoved) -> Notice {
    Notice {
        title: "Network changed during your call".to_owned(),
        body: moved.message.clone(),
    }
}

/// The AppUserModelID Windows shows notifications under: the installer registers it (name and
/// icon) and gives it to the Start-menu entry; without it they would come from "PowerShell".
#[cfg(windows)]
pub const WINDOWS_APP_USER_MODEL_ID: &str = "com.vicifast.desktop";

/// Shows the notice through the desktop's notification service, off the async threads (it may
/// wait on D-Bus).
pub fn show(notice: &Notice) {
    let notice = notice.clone();
    tokio::task::spawn_blocking(move || {
        let mut notification = notify_rust::Notification::new();
        notification
            .appname("VICIfast")
            .summary(&notice.title)
            .body(&notice.body);
        #[cfg(windows)]
        notification.app_id(WINDOWS_APP_USER_MODEL_ID);
        if let Err(e) = notification.show() {
            tracing::warn!("desktop notification not shown: {e}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use vicifast_engine::Transport;

    fn status(state: RegistrationState, cause: Cause) -> Status {
        Status::without_flow("default", state, cause, Transport::Udp)
    }

    #[test]
    fn a_softphone_that_stops_answering_or_needs_new_settings_is_told() {
        let mut softphone = SoftphoneStatus {
            account: "default".into(),
            state: SoftphoneState::Answering,
            user_agent: Some("baresip v1.0.0".into()),
            contact: Some("sip:101@127.0.0.1:5062".into()),
            transport: Some(Transport::Udp),
            expires_in: Some(600),
            problem: None,
        };
        assert_eq!(on_softphone(&softphone), None);
        softphone.state = SoftphoneState::NotAnswering;
        let notice = on_softphone(&softphone).unwrap();
        assert!(notice.body.contains("refused"), "{notice:?}");
        softphone.problem = Some(vicifast_engine::SoftphoneProblem::new(
            vicifast_engine::SoftphoneProblemCode::WrongPassword,
            "digest response mismatch",
        ));
        let notice = on_softphone(&softphone).unwrap();
        assert!(notice.body.contains("password"), "{notice:?}");
    }

    #[test]
    fn lost_then_restored_once_each() {
        let mut lost_notified = false;
        let reg = Some(RegistrationState::Registered);
        let lost = on_change(
            "Extension 101",
            &mut lost_notified,
            reg,
            &status(RegistrationState::Retrying, Cause::RefreshFailed),
        );
        assert_eq!(
            lost.map(|n| n.title),
            Some("Phone registration lost".to_owned())
        );
        let again = on_change(
            "Extension 101",
            &mut lost_notified,
            Some(RegistrationState::Retrying),
            &status(RegistrationState::Retrying, Cause::RetryScheduled),
        );
        assert!(again.is_none());
        let back = on_change(
            "Extension 101",
            &mut lost_notified,
            Some(RegistrationState::Retrying),
            &status(RegistrationState::Registered, Cause::Registered),
        );
        assert_eq!(
            back.map(|n| n.title),
            Some("Phone registered again".to_owned())
        );
    }

    #[test]
    fn another_device_is_named_in_the_notice() {
        let info = ExtensionInUse::new(
            "default",
            vec![vicifast_engine::OtherDevice {
                contact: "sip:101@198.18.5.5:5062".to_owned(),
                address: Some("198.18.5.5:5062".to_owned()),
                user_agent: Some("MicroSIP/3.21".to_owned()),
                expires_in: None,
            }],
            vicifast_engine::InUseDetection::BindingCheck,
        );
        let n = on_extension_in_use("Extension 101", &info);
        assert!(
            n.body.contains("MicroSIP/3.21 at 198.18.5.5:5062"),
            "{}",
            n.body
        );
        assert!(n.body.contains("use this computer"));
    }

    #[test]
    fn a_call_across_a_network_change_tells_what_to_do() {
        let moved = CallMoved::new(
            "default",
            vec![vicifast_engine::CallInProgress {
                call_id: "c1".to_owned(),
                direction: vicifast_engine::CallDirection::Incoming,
                other_party: "sip:200@pbx".to_owned(),
            }],
            [198, 18, 1, 10].into(),
            [198, 18, 2, 10].into(),
        );
        let n = on_call_moved(&moved);
        assert!(n.body.contains("cannot hear the caller"), "{}", n.body);
        assert!(
            n.body.contains("put the call on hold and take it off hold"),
            "{}",
            n.body
        );
    }

    #[test]
    fn unregistering_on_request_is_quiet() {
        let n = on_change(
            "Extension 101",
            &mut false,
            Some(RegistrationState::Registered),
            &status(RegistrationState::Unregistered, Cause::UserRequest),
        );
        assert!(n.is_none());
    }
}
