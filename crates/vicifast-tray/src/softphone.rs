//! The softphone behind each account's edge proxy, as the window and the tray show it: the edge
//! proxy's last report, where the softphone must point (the listener's address) and, when there
//! is no listener, why. Kept per account in the [`View`](crate::state::View), so a window opened
//! later gets it from `get_state` (`UiState.softphones`); every change is sent whole as event
//! `softphones` (`SoftphoneView[]` on the wire).

use serde::Serialize;
use std::net::SocketAddr;
use vicifast_accounts::{AccountSettings, FieldError};
use vicifast_engine::{
    SoftphoneError, SoftphoneProblemCode, SoftphoneState, SoftphoneStatus, Stamped,
};

/// One account's softphone (`SoftphoneView` on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SoftphoneView {
    /// The account's name in the settings (`default` for the app's own).
    pub account: String,
    pub extension: String,
    /// The address the softphone must use as its outbound proxy (UDP and TCP); `None` while
    /// VICIfast is not listening.
    pub listen: Option<String>,
    /// Why VICIfast is not listening for the softphone, in words for the agent.
    pub listen_problem: Option<String>,
    /// The edge proxy's last report; `None` before the first.
    pub status: Option<Stamped<SoftphoneStatus>>,
}

impl SoftphoneView {
    /// Listening on `listen` (as bound) for `account`'s softphone; nothing reported yet.
    pub fn listening(account: &AccountSettings, listen: SocketAddr) -> Self {
        Self {
            account: account.name.clone(),
            extension: account.extension.clone(),
            listen: Some(listen.to_string()),
            listen_problem: None,
            status: None,
        }
    }

    /// `account` has a softphone but VICIfast could not start listening for it.
    pub fn not_listening(account: &AccountSettings, problem: &ListenProblem) -> Self {
        Self {
            account: account.name.clone(),
            extension: account.extension.clone(),
            listen: None,
            listen_problem: Some(problem.to_string()),
            status: None,
        }
    }

    /// A few words for the tooltip while the softphone cannot take the agent's calls or its
    /// settings need changing; `None` while it takes calls as it should.
    pub fn trouble(&self) -> Option<&'static str> {
        if self.listen_problem.is_some() {
            return Some("not listening for the softphone");
        }
        let status = &self.status.as_ref()?.inner;
        if let Some(problem) = &status.problem {
            return Some(match problem.code {
                SoftphoneProblemCode::WrongPassword => "wrong password in the softphone",
                SoftphoneProblemCode::WrongExtension => "softphone set up for another extension",
                SoftphoneProblemCode::TooManyAttempts => {
                    "softphone refused: too many wrong passwords"
                }
                SoftphoneProblemCode::AlsoRegisteredDirectly => {
                    "softphone also registers directly with the server"
                }
                _ => "softphone settings need a change",
            });
        }
        match status.state {
            SoftphoneState::NotAnswering => Some("softphone not running"),
            SoftphoneState::NotRegistered => Some("no softphone signed in"),
            // Checking: calls are still relayed; the next report settles it.
            _ => None,
        }
    }
}

/// Why the listener for an account's softphone did not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenProblem {
    #[error("The softphone settings of this account cannot be used: {}", .0.message)]
    Settings(FieldError),
    #[error("VICIfast {0}.")]
    Listener(#[from] SoftphoneError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use vicifast_engine::{SoftphoneProblem, Transport};

    fn account() -> AccountSettings {
        AccountSettings::new("default", "pbx.example.com", "101")
    }

    pub(crate) fn answering() -> SoftphoneView {
        let mut view = SoftphoneView::listening(&account(), "127.0.0.1:5070".parse().unwrap());
        view.status = Some(Stamped {
            at: "2026-12-04T08:00:00.000Z".to_owned(),
            inner: SoftphoneStatus {
                account: "default".to_owned(),
                state: SoftphoneState::Answering,
                user_agent: Some("MicroSIP/3.21.3".to_owned()),
                contact: Some("sip:101@127.0.0.1:5062".to_owned()),
                transport: Some(Transport::Udp),
                expires_in: Some(600),
                problem: None,
            },
        });
        view
    }

    #[test]
    fn the_wire_form_is_the_one_the_window_reads() {
        let json = serde_json::to_value(answering()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "account": "default",
                "extension": "101",
                "listen": "127.0.0.1:5070",
                "listen_problem": null,
                "status": {
                    "at": "2026-12-04T08:00:00.000Z",
                    "account": "default",
                    "state": "answering",
                    "user_agent": "MicroSIP/3.21.3",
                    "contact": "sip:101@127.0.0.1:5062",
                    "transport": "udp",
                    "expires_in": 600,
                    "problem": null,
                }
            })
        );
    }

    #[test]
    fn trouble_names_what_keeps_calls_from_the_softphone() {
        let mut view = answering();
        assert_eq!(view.trouble(), None);
        let status = &mut view.status.as_mut().unwrap().inner;
        status.state = SoftphoneState::Checking;
        assert_eq!(
            view.trouble(),
            None,
            "calls are still relayed while checking"
        );
        let status = &mut view.status.as_mut().unwrap().inner;
        status.state = SoftphoneState::NotAnswering;
        assert_eq!(view.trouble(), Some("softphone not running"));
        let status = &mut view.status.as_mut().unwrap().inner;
        status.state = SoftphoneState::NotRegistered;
        status.problem = Some(SoftphoneProblem::new(
            SoftphoneProblemCode::WrongPassword,
            "digest response mismatch",
        ));
        assert_eq!(view.trouble(), Some("wrong password in the softphone"));
        let mut open_to_all = account();
        open_to_all.softphone = Some(vicifast_accounts::SoftphoneSettings {
            listen: "0.0.0.0:5070".to_owned(),
            contact: None,
        });
        let refused = open_to_all.softphone_config().unwrap_err();
        let blocked = SoftphoneView::not_listening(&open_to_all, &ListenProblem::Settings(refused));
        assert_eq!(blocked.trouble(), Some("not listening for the softphone"));
        assert_eq!(blocked.listen, None);
        let words = blocked.listen_problem.unwrap_or_default();
        assert!(
            words.starts_with("The softphone settings of this account cannot be used: "),
            "{words}"
        );
    }
}
