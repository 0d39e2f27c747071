//! The "Recent events" timeline: status changes and incoming calls in plain words.

use serde::Serialize;
use vicifast_engine::{
    CallMoved, Cause, ExtensionInUse, IncomingCall, RefusedCall, RegistrationState, SoftphoneState,
    SoftphoneStatus, Stamped, Status,
};

/// One line of the timeline (`TimelineEntry` in the IPC contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct TimelineEntry {
    pub at: String,
    pub kind: String,
    pub text: String,
}

/// The timeline entry a status change deserves, if any. `previous` is the state before it, so a
/// repeated status (a countdown update) adds nothing.
pub fn from_status(
    previous: Option<RegistrationState>,
    status: &Stamped<Status>,
) -> Option<TimelineEntry> {
    let s = &status.inner;
    let problem = s
        .problem
        .as_ref()
        .map(|p| p.message.clone())
        .unwrap_or_default();
    let (kind, text) = match (s.state, s.cause) {
        (RegistrationState::Registered, Cause::Refreshed) => {
            ("refreshed", "Registration renewed.".to_owned())
        }
        (RegistrationState::Registered, _) if previous == Some(RegistrationState::Registered) => {
            match s.cause {
                Cause::NetworkChanged | Cause::AddressChanged | Cause::NatRebinding => (
                    "network_changed",
                    "The network changed; registered again over the new connection.".to_owned(),
                ),
                _ => return None,
            }
        }
        (RegistrationState::Registered, _) => (
            "registered",
            match &s.contact {
                Some(_) if s.cause == Cause::Resumed => {
                    "Registered again after the computer woke up.".to_owned()
                }
                _ => "Registered: calls can reach this computer.".to_owned(),
            },
        ),
        (RegistrationState::Registering, Cause::NetworkChanged | Cause::AddressChanged) => (
            "network_changed",
            "The network changed; registering over the new connection.".to_owned(),
        ),
        (RegistrationState::Registering, Cause::CredentialsChanged) => (
            "credentials_changed",
            "New password saved; registering with it.".to_owned(),
        ),
        (RegistrationState::Registering, Cause::BindingLost) => (
            "failed",
            "The phone server lost this computer's registration; registering again.".to_owned(),
        ),
        (RegistrationState::Registering, _) => {
            if previous == Some(RegistrationState::Registering) {
                return None;
            }
            ("registering", "Registering…".to_owned())
        }
        (RegistrationState::Retrying, _) => {
            if previous == Some(RegistrationState::Retrying) {
                return None;
            }
            (
                "retrying",
                join("Could not register; trying again shortly.", &problem),
            )
        }
        (RegistrationState::Failed, _) => ("failed", join("Registration stopped.", &problem)),
        (RegistrationState::Offline, _) => {
            if previous == Some(RegistrationState::Offline) {
                return None;
            }
            (
                "offline",
                "No network connection; registering again when it is back.".to_owned(),
            )
        }
        (RegistrationState::Unregistered, _) => (
            "unregistered",
            "Unregistered: calls no longer reach this computer.".to_owned(),
        ),
        _ => return None,
    };
    Some(TimelineEntry {
        at: status.at.clone(),
        kind: kind.to_owned(),
        text,
    })
}

pub fn from_extension_in_use(info: &Stamped<ExtensionInUse>) -> TimelineEntry {
    TimelineEntry {
        at: info.at.clone(),
        kind: "extension_in_use".to_owned(),
        text: info.inner.message.clone(),
    }
}

pub fn from_call(call: &Stamped<IncomingCall>) -> TimelineEntry {
    TimelineEntry {
        at: call.at.clone(),
        kind: "incoming_call".to_owned(),
        text: format!("Incoming call from {}.", call.inner.from),
    }
}

/// The timeline entry for a change of the softphone behind the edge proxy.
pub fn from_softphone(status: &Stamped<SoftphoneStatus>) -> TimelineEntry {
    let s = &status.inner;
    let name = s.user_agent.as_deref().unwrap_or("the softphone");
    let first = match s.state {
        SoftphoneState::Answering => format!("Softphone answering ({name}): calls go to it."),
        SoftphoneState::NotAnswering => {
            format!("Softphone not answering ({name}): calls are refused until it runs again.")
        }
        SoftphoneState::Checking => "Checking the softphone.".to_owned(),
        _ => "No softphone is signed in to VICIfast.".to_owned(),
    };
    let problem = s
        .problem
        .as_ref()
        .map(|p| format!("{} {}", p.message, p.action))
        .unwrap_or_default();
    TimelineEntry {
        at: status.at.clone(),
        kind: "softphone".to_owned(),
        text: join(&first, &problem),
    }
}

/// The timeline entry for a call refused because the softphone cannot take it.
pub fn from_refused_call(refused: &Stamped<RefusedCall>) -> TimelineEntry {
    TimelineEntry {
        at: refused.at.clone(),
        kind: "refused_call".to_owned(),
        text: format!(
            "Call from {} refused: {}.",
            refused.inner.call.from, refused.inner.reason
        ),
    }
}

/// The timeline entry for a network change during a call: what the agent can do about it.
pub fn from_call_moved(moved: &Stamped<CallMoved>) -> TimelineEntry {
    TimelineEntry {
        at: moved.at.clone(),
        kind: "call_moved".to_owned(),
        text: moved.inner.message.clone(),
    }
}

fn join(first: &str, problem: &str) -> String {
    if problem.is_empty() {
        first.to_owned()
    } else {
        format!("{first} {problem}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vicifast_engine::{Problem, ProblemCode, Transport};

    fn status(state: RegistrationState, cause: Cause, problem: Option<Problem>) -> Stamped<Status> {
        Stamped {
            at: "2026-11-26T05:00:00.000Z".to_owned(),
            inner: Status {
                contact: Some("sip:101@192.0.2.1:5060".to_owned()),
                problem,
                ..Status::without_flow("default", state, cause, Transport::Udp)
            },
        }
    }

    #[test]
    fn registered_then_refreshed() {
        let e = from_status(
            Some(RegistrationState::Registering),
            &status(RegistrationState::Registered, Cause::Registered, None),
        );
        assert_eq!(e.map(|e| e.kind), Some("registered".to_owned()));
        let e = from_status(
            Some(RegistrationState::Registered),
            &status(RegistrationState::Registered, Cause::Refreshed, None),
        );
        assert_eq!(e.map(|e| e.kind), Some("refreshed".to_owned()));
    }

    #[test]
    fn failure_carries_the_problem_in_words() {
        let p = Problem::new(ProblemCode::WrongPassword, "401");
        let e = from_status(
            Some(RegistrationState::Registering),
            &status(RegistrationState::Failed, Cause::Failed, Some(p)),
        );
        let e = e.expect("an entry");
        assert_eq!(e.kind, "failed");
        assert!(e.text.contains("password"), "{}", e.text);
    }

    #[test]
    fn repeated_retrying_adds_nothing() {
        let s = status(RegistrationState::Retrying, Cause::RetryScheduled, None);
        assert!(from_status(Some(RegistrationState::Retrying), &s).is_none());
        assert!(from_status(Some(RegistrationState::Registering), &s).is_some());
    }

    #[test]
    fn incoming_call() {
        let call = Stamped {
            at: "2026-11-26T05:00:00.000Z".to_owned(),
            inner: IncomingCall {
                account: "default".to_owned(),
                from: "sip:200@pbx".to_owned(),
                call_id: "x".to_owned(),
            },
        };
        assert_eq!(from_call(&call).kind, "incoming_call");
    }

    #[test]
    fn a_call_across_a_network_change_says_what_to_do() {
        let moved = Stamped {
            at: "2026-11-26T05:00:00.000Z".to_owned(),
            inner: CallMoved::new(
                "default",
                Vec::new(),
                [198, 18, 1, 10].into(),
                [198, 18, 2, 10].into(),
            ),
        };
        let e = from_call_moved(&moved);
        assert_eq!(e.kind, "call_moved");
        assert!(
            e.text.contains("if you cannot hear the caller"),
            "{}",
            e.text
        );
    }
}
