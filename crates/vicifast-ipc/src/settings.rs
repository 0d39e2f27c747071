//! The settings form as the window sends it (`Settings` in the IPC contract), and how it maps to
//! the saved account. Both processes apply the same rules: the window checks the form before it
//! puts a password in the keychain, the tray process before it saves the settings file.

use crate::error::CommandError;
use serde::{Deserialize, Serialize};
use vicifast_accounts::{AccountSettings, Settings};
use vicifast_core::Transport;

/// The one account the app manages.
pub const ACCOUNT: &str = "default";

/// `Settings` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct UiSettings {
    pub server: String,
    pub extension: String,
    pub auth_user: Option<String>,
    pub domain: Option<String>,
    pub transport: Transport,
    pub port: Option<u16>,
    pub outbound_proxy: Option<String>,
    pub expires: u32,
    pub start_at_login: bool,
}

/// The app's account in the saved settings, if there is one.
pub fn account(settings: &Settings) -> Option<&AccountSettings> {
    settings.accounts.iter().find(|a| a.name == ACCOUNT)
}

/// The saved accounts other than the app's own (added with `vicifast-cli account set`).
pub fn others(settings: &Settings) -> Vec<AccountSettings> {
    settings
        .accounts
        .iter()
        .filter(|a| a.name != ACCOUNT)
        .cloned()
        .collect()
}

/// What the window shows for the saved settings (`None` before the first save).
pub fn to_ui(settings: &Settings) -> Option<UiSettings> {
    account(settings).map(|a| UiSettings {
        server: a.server.clone(),
        extension: a.extension.clone(),
        auth_user: a.auth_user.clone(),
        domain: a.domain.clone(),
        transport: a.transport,
        port: a.port,
        outbound_proxy: a.outbound_proxy.clone(),
        expires: a.expires,
        start_at_login: settings.start_at_login,
    })
}

/// The saved settings after the window's form is applied: the app's account is replaced (keeping
/// what the form does not show, like a CA file), other accounts are kept as they are.
pub fn apply(current: &Settings, form: &UiSettings) -> Settings {
    let ca_file = account(current).and_then(|a| a.ca_file.clone());
    let softphone = account(current).and_then(|a| a.softphone.clone());
    let account = AccountSettings {
        name: ACCOUNT.to_owned(),
        server: form.server.trim().to_owned(),
        extension: form.extension.trim().to_owned(),
        auth_user: non_empty(&form.auth_user),
        domain: non_empty(&form.domain),
        transport: form.transport,
        port: form.port,
        outbound_proxy: non_empty(&form.outbound_proxy),
        expires: form.expires,
        ca_file,
        softphone,
    };
    let mut accounts: Vec<AccountSettings> = current
        .accounts
        .iter()
        .filter(|a| a.name != ACCOUNT)
        .cloned()
        .collect();
    accounts.insert(0, account);
    Settings {
        start_at_login: form.start_at_login,
        accounts,
    }
}

/// [`apply`], then checks the account as the engine will: an error names the field at fault.
pub fn validated(current: &Settings, form: &UiSettings) -> Result<Settings, CommandError> {
    let updated = apply(current, form);
    if let Some(account) = account(&updated) {
        account
            .to_config()
            .map_err(|e| CommandError::invalid(e.field, e.message))?;
    }
    Ok(updated)
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> UiSettings {
        UiSettings {
            server: " pbx.example.com ".to_owned(),
            extension: "101".to_owned(),
            auth_user: Some(String::new()),
            domain: None,
            transport: Transport::Tcp,
            port: Some(5070),
            outbound_proxy: Some("  ".to_owned()),
            expires: 300,
            start_at_login: true,
        }
    }

    #[test]
    fn form_round_trips_through_saved_settings() {
        let saved = apply(&Settings::default(), &form());
        let ui = to_ui(&saved).expect("the account");
        assert_eq!(ui.server, "pbx.example.com");
        assert_eq!(ui.auth_user, None);
        assert_eq!(ui.outbound_proxy, None);
        assert_eq!(ui.port, Some(5070));
        assert!(ui.start_at_login);
    }

    #[test]
    fn wire_format_matches_the_contract() {
        let json = serde_json::json!({
            "server": "pbx", "extension": "101", "auth_user": null, "domain": null,
            "transport": "tls", "port": null, "outbound_proxy": null, "expires": 300,
            "start_at_login": false
        });
        let parsed: Result<UiSettings, _> = serde_json::from_value(json);
        assert_eq!(parsed.map(|s| s.transport).ok(), Some(Transport::Tls));
    }

    /// The window's form goes through the same validation as the CLI's flags and the settings
    /// file: a line break in any field is refused, naming the field, and nothing is saved.
    #[test]
    fn a_line_break_in_any_field_is_refused() {
        type Change = fn(&mut UiSettings);
        let cases: [(&str, Change); 5] = [
            ("server", |f| f.server = "pbx\r\nX: 1".into()),
            ("extension", |f| f.extension = "101\r\nX: 1".into()),
            ("auth_user", |f| f.auth_user = Some("a\r\nX: 1".into())),
            ("domain", |f| f.domain = Some("example.com\nX: 1".into())),
            ("outbound_proxy", |f| {
                f.outbound_proxy = Some("sip:proxy\r\nX: 1".into())
            }),
        ];
        for (field, change) in cases {
            let mut f = form();
            change(&mut f);
            let err = validated(&Settings::default(), &f).expect_err(field);
            assert_eq!(err.field.as_deref(), Some(field), "{}", err.message);
            assert!(
                err.message.contains("control characters"),
                "{}",
                err.message
            );
        }
    }
}
