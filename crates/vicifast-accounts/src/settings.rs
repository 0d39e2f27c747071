//! What the user enters for an account, and the checks that turn it into an engine config.
//!
//! The checks of each value are `vicifast_core::validate`'s: the same for the settings file, the
//! window and the CLI's flags. What is checked here is how the fields combine (a port given
//! twice, a transport the URI contradicts).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use vicifast_core::edge::{EdgeConfig, EdgeConfigError, FixedContact, DEFAULT_LISTEN};
use vicifast_core::validate::{self, ValidationError};
use vicifast_core::{AccountConfig, Transport};

/// The registration lifetime asked for when the user does not choose one.
pub const DEFAULT_EXPIRES: u32 = 300;

/// One account as the user enters it (also the IPC `Settings` shape minus start_at_login).
/// It holds no password: that lives in the keychain, under [`AccountSettings::name`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSettings {
    /// The user's label for the account; also the keychain entry's user name.
    pub name: String,
    /// Registrar: `host`, `host:port`, `[v6]:port`, `sip:host[:port][;transport=tcp]`, `sips:host`.
    pub server: String,
    /// The extension (user part of the address of record).
    pub extension: String,
    /// Authentication user name, when it differs from the extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_user: Option<String>,
    /// SIP domain of the extension, when it differs from the server's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default)]
    pub transport: Transport,
    /// Server port, when not given in `server` (the two must agree when both are given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_proxy: Option<String>,
    /// Requested registration lifetime, in seconds.
    #[serde(default = "default_expires")]
    pub expires: u32,
    /// Extra CA certificates (PEM) to trust for TLS, besides the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The softphone on this computer that takes the extension's calls through VICIfast (the
    /// `[accounts.softphone]` table); absent: VICIfast registers alone and takes no calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub softphone: Option<SoftphoneSettings>,
}

fn default_expires() -> u32 {
    DEFAULT_EXPIRES
}

/// Where VICIfast listens for the account's softphone, and where it reaches one that does not
/// register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftphoneSettings {
    /// The loopback address and port the softphone uses as its outbound proxy.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A softphone with registration switched off is reached here, such as
    /// `sip:127.0.0.1:5062` (loopback only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_string()
}

impl Default for SoftphoneSettings {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            contact: None,
        }
    }
}

impl SoftphoneSettings {
    /// Validates and builds the edge proxy's settings; errors name the field
    /// (`softphone.listen` or `softphone.contact`), in plain words.
    pub fn to_edge_config(&self) -> Result<EdgeConfig, FieldError> {
        let listen_text = self.listen.trim();
        let listen: std::net::SocketAddr = listen_text.parse().map_err(|_| {
            FieldError::new(
                "softphone.listen",
                format!(
                    "`{listen_text}` is not an address and port on this computer: use \
                     127.0.0.1:5070 (or another port)."
                ),
            )
        })?;
        if listen.port() == 0 {
            return Err(FieldError::new(
                "softphone.listen",
                "Choose a port for the softphone listener, such as 5070: the softphone must \
                 know it.",
            ));
        }
        let fixed_contact = match non_blank(self.contact.as_deref()) {
            Some(contact) => Some(
                FixedContact::parse(contact)
                    .map_err(|e| FieldError::new("softphone.contact", softphone_message(&e)))?,
            ),
            None => None,
        };
        let config = EdgeConfig {
            listen,
            fixed_contact,
            ..EdgeConfig::default()
        };
        config
            .validate()
            .map_err(|e| FieldError::new("softphone.listen", softphone_message(&e)))?;
        Ok(config)
    }
}

fn softphone_message(err: &EdgeConfigError) -> String {
    let mut text = err.to_string();
    if let Some(first) = text.get(..1) {
        let upper = first.to_uppercase();
        text.replace_range(..1, &upper);
    }
    text.push('.');
    text
}

/// Everything the settings file holds (the file also carries `format = 1`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub start_at_login: bool,
    #[serde(default)]
    pub accounts: Vec<AccountSettings>,
}

impl Settings {
    /// The account with this name (names compare exactly, as keychain entries do).
    pub fn account(&self, name: &str) -> Option<&AccountSettings> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// Adds `account`, or replaces the one with the same name in place.
    pub fn upsert(&mut self, account: AccountSettings) {
        match self.accounts.iter_mut().find(|a| a.name == account.name) {
            Some(existing) => *existing = account,
            None => self.accounts.push(account),
        }
    }

    /// Removes and returns the account with this name.
    pub fn remove(&mut self, name: &str) -> Option<AccountSettings> {
        let index = self.accounts.iter().position(|a| a.name == name)?;
        Some(self.accounts.remove(index))
    }
}

/// A value the user entered that cannot be used: which field, and why, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// `server`, `extension`, `auth_user`, `domain`, `transport`, `port`, `outbound_proxy`,
    /// `expires` or `name`: the [`AccountSettings`] field to point at.
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl AccountSettings {
    /// An account with the given essentials and defaults for the rest (UDP, 300 s).
    pub fn new(
        name: impl Into<String>,
        server: impl Into<String>,
        extension: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            server: server.into(),
            extension: extension.into(),
            auth_user: None,
            domain: None,
            transport: Transport::default(),
            port: None,
            outbound_proxy: None,
            expires: DEFAULT_EXPIRES,
            ca_file: None,
            softphone: None,
        }
    }

    /// The edge proxy's settings, when the account has a softphone; errors as
    /// [`AccountSettings::to_config`]'s.
    pub fn softphone_config(&self) -> Result<Option<EdgeConfig>, FieldError> {
        self.softphone
            .as_ref()
            .map(SoftphoneSettings::to_edge_config)
            .transpose()
    }

    /// Validates and builds the engine config; errors name the field, in plain words.
    ///
    /// Surrounding blanks are ignored, and an optional field holding only blanks counts as
    /// not set (what an emptied text box sends).
    pub fn to_config(&self) -> Result<AccountConfig, FieldError> {
        let name = self.name.trim();
        validate::name(name)?;

        let mut registrar = validate::server(&self.server)?;
        if let Some(port) = self.port {
            validate::port(port)?;
            match registrar.port {
                Some(in_server) if in_server != port => {
                    return Err(FieldError::new(
                        "port",
                        format!(
                            "The port {port} differs from the port {in_server} in the server \
                             address: keep only one of them."
                        ),
                    ))
                }
                _ => registrar.port = Some(port),
            }
        }

        let extension = self.extension.trim();
        validate::user(extension)?;

        let auth_user = non_blank(self.auth_user.as_deref());
        if let Some(user) = auth_user {
            validate::auth_user(user)?;
        }

        let domain = non_blank(self.domain.as_deref());
        if let Some(domain) = domain {
            validate::domain(domain)?;
        }

        let outbound_proxy = match non_blank(self.outbound_proxy.as_deref()) {
            Some(proxy) => Some(validate::outbound_proxy(proxy)?),
            None => None,
        };

        // The transport chosen wins over the URI's; a URI naming another one is a contradiction
        // the user should resolve rather than one we silently settle.
        for (what, address) in [
            ("server address", Some(&registrar)),
            ("outbound proxy", outbound_proxy.as_ref()),
        ] {
            if let Some(named) = address.and_then(|a| a.transport) {
                if named != self.transport {
                    return Err(FieldError::new(
                        "transport",
                        format!(
                            "The {what} asks for {}, but the transport is set to {}: choose {} \
                             or change the {what}.",
                            upper(named),
                            upper(self.transport),
                            upper(named),
                        ),
                    ));
                }
            }
        }

        validate::expires(self.expires)?;

        self.softphone_config()?;

        let mut config = AccountConfig::new(name, registrar, extension);
        config.auth_user = auth_user.map(str::to_owned);
        config.domain = domain.map(str::to_owned);
        config.transport = Some(self.transport);
        config.outbound_proxy = outbound_proxy;
        config.expires = Duration::from_secs(u64::from(self.expires));
        // The same check the core makes before sending anything.
        config.validate()?;
        Ok(config)
    }
}

impl From<ValidationError> for FieldError {
    fn from(err: ValidationError) -> Self {
        Self::new(err.field.key(), err.to_string())
    }
}

fn non_blank(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

fn upper(t: Transport) -> &'static str {
    t.via_token()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountSettings {
        AccountSettings::new("Office", "pbx.example.com", "101")
    }

    fn field_of(a: &AccountSettings) -> String {
        a.to_config().unwrap_err().field
    }

    #[test]
    fn a_softphone_table_is_checked_and_builds_the_edge_config() {
        let mut a = account();
        assert_eq!(a.softphone_config(), Ok(None));
        a.softphone = Some(SoftphoneSettings::default());
        let edge = a.softphone_config().unwrap().unwrap();
        assert_eq!(edge.listen, DEFAULT_LISTEN);
        assert_eq!(edge.fixed_contact, None);
        a.softphone = Some(SoftphoneSettings {
            listen: " 127.0.0.1:5080 ".into(),
            contact: Some("sip:127.0.0.1:5062;transport=tcp".into()),
        });
        let edge = a.softphone_config().unwrap().unwrap();
        assert_eq!(edge.listen.port(), 5080);
        assert_eq!(edge.fixed_contact.unwrap().transport, Transport::Tcp);
        assert!(a.to_config().is_ok());

        for (listen, contact, field) in [
            ("0.0.0.0:5070", None, "softphone.listen"),
            ("198.18.0.5:5070", None, "softphone.listen"),
            ("127.0.0.1", None, "softphone.listen"),
            ("127.0.0.1:0", None, "softphone.listen"),
            (
                "127.0.0.1:5070",
                Some("sip:198.18.0.5:5062"),
                "softphone.contact",
            ),
            (
                "127.0.0.1:5070",
                Some("sip:127.0.0.1;transport=tls"),
                "softphone.contact",
            ),
        ] {
            a.softphone = Some(SoftphoneSettings {
                listen: listen.into(),
                contact: contact.map(Into::into),
            });
            let err = a.to_config().unwrap_err();
            assert_eq!(err.field, field, "{listen} {contact:?}: {err}");
            assert!(err.message.ends_with('.'), "{}", err.message);
        }
    }

    #[test]
    fn a_softphone_table_round_trips_through_toml() {
        let mut a = account();
        a.softphone = Some(SoftphoneSettings {
            listen: "127.0.0.1:5070".into(),
            contact: Some("sip:127.0.0.1:5062".into()),
        });
        let settings = Settings {
            start_at_login: false,
            accounts: vec![a.clone(), account()],
        };
        let text = toml::to_string(&settings).unwrap();
        assert!(text.contains("[accounts.softphone]"), "{text}");
        let back: Settings = toml::from_str(&text).unwrap();
        assert_eq!(back, settings);
        let minimal: Settings = toml::from_str(
            "[[accounts]]\nname = \"A\"\nserver = \"pbx\"\nextension = \"101\"\n[accounts.softphone]\n",
        )
        .unwrap();
        assert_eq!(
            minimal.accounts[0].softphone,
            Some(SoftphoneSettings::default())
        );
    }

    #[test]
    fn builds_the_engine_config() {
        let mut a = account();
        a.auth_user = Some(" agent101 ".into());
        a.domain = Some("example.com".into());
        a.transport = Transport::Tcp;
        a.port = Some(5070);
        a.outbound_proxy = Some("sip:proxy.example.com;transport=tcp".into());
        a.expires = 600;
        let c = a.to_config().unwrap();
        assert_eq!(c.name, "Office");
        assert_eq!(c.registrar.host, "pbx.example.com");
        assert_eq!(c.registrar.port, Some(5070));
        assert_eq!(c.user, "101");
        assert_eq!(c.auth_user.as_deref(), Some("agent101"));
        assert_eq!(c.domain.as_deref(), Some("example.com"));
        assert_eq!(c.transport, Some(Transport::Tcp));
        assert_eq!(c.effective_transport(), Transport::Tcp);
        assert_eq!(
            c.outbound_proxy.as_ref().map(|p| p.host.as_str()),
            Some("proxy.example.com")
        );
        assert_eq!(c.expires, Duration::from_secs(600));
    }

    #[test]
    fn blank_optional_fields_count_as_unset() {
        let mut a = account();
        a.auth_user = Some("  ".into());
        a.domain = Some(String::new());
        a.outbound_proxy = Some(" ".into());
        let c = a.to_config().unwrap();
        assert_eq!(
            (c.auth_user, c.domain, c.outbound_proxy),
            (None, None, None)
        );
    }

    #[test]
    fn port_combines_with_the_server() {
        let mut a = account();
        a.server = "sip:pbx.example.com:5080".into();
        a.port = Some(5080);
        assert_eq!(a.to_config().unwrap().registrar.port, Some(5080));
        a.port = None;
        assert_eq!(a.to_config().unwrap().registrar.port, Some(5080));
        a.port = Some(5060);
        let err = a.to_config().unwrap_err();
        assert_eq!(err.field, "port");
        assert!(
            err.message.contains("5060") && err.message.contains("5080"),
            "{err}"
        );
        a.server = "pbx.example.com".into();
        a.port = Some(0);
        assert_eq!(field_of(&a), "port");
    }

    #[test]
    fn each_bad_field_is_named_in_plain_words() {
        type Change = Box<dyn Fn(&mut AccountSettings)>;
        let cases: Vec<(&str, Change, &str)> = vec![
            ("name", Box::new(|a| a.name = "  ".into()), "name"),
            ("name", Box::new(|a| a.name = "x".repeat(65)), "too long"),
            ("name", Box::new(|a| a.name = "a\tb".into()), "control"),
            (
                "server",
                Box::new(|a| a.server = String::new()),
                "Enter the server",
            ),
            (
                "server",
                Box::new(|a| a.server = "pb x".into()),
                "not a host name",
            ),
            (
                "server",
                Box::new(|a| a.server = "http://pbx".into()),
                "http://",
            ),
            (
                "server",
                Box::new(|a| a.server = "pbx:99999".into()),
                "99999",
            ),
            (
                "server",
                Box::new(|a| a.server = "sip:pbx;transport=sctp".into()),
                "sctp",
            ),
            (
                "extension",
                Box::new(|a| a.extension = String::new()),
                "Enter the extension",
            ),
            (
                "extension",
                Box::new(|a| a.extension = "1 01".into()),
                "spaces",
            ),
            (
                "extension",
                Box::new(|a| a.extension = "101@pbx".into()),
                "`@`",
            ),
            (
                "auth_user",
                Box::new(|a| a.auth_user = Some("a\"b".into())),
                "`\"`",
            ),
            (
                "domain",
                Box::new(|a| a.domain = Some("sip:example.com".into())),
                "not a domain",
            ),
            (
                "outbound_proxy",
                Box::new(|a| a.outbound_proxy = Some("prox y".into())),
                "outbound proxy",
            ),
            (
                "transport",
                Box::new(|a| a.server = "sips:pbx.example.com".into()),
                "asks for TLS, but the transport is set to UDP",
            ),
            (
                "transport",
                Box::new(|a| {
                    a.outbound_proxy = Some("sip:proxy;transport=tcp".into());
                }),
                "outbound proxy asks for TCP",
            ),
            ("expires", Box::new(|a| a.expires = 0), "seconds"),
            ("expires", Box::new(|a| a.expires = 86_401), "seconds"),
        ];
        for (field, change, words) in cases {
            let mut a = account();
            change(&mut a);
            let err = a
                .to_config()
                .expect_err(&format!("{a:?} should not validate"));
            assert_eq!(err.field, field, "{a:?}: {err}");
            assert!(
                err.message.contains(words),
                "{field}: {:?} lacks {words:?}",
                err.message
            );
            assert!(err.message.ends_with('.'), "{err}");
        }
    }

    #[test]
    fn no_line_break_in_any_field_gets_through() {
        type Change = fn(&mut AccountSettings);
        let cases: [(&str, Change); 6] = [
            ("extension", |a| a.extension = "101\r\nX-Evil: 1".into()),
            ("auth_user", |a| a.auth_user = Some("a\r\nX-Evil: 1".into())),
            ("domain", |a| a.domain = Some("example.com\r\nX: 1".into())),
            ("server", |a| {
                a.server = "sip:pbx;transport=udp\r\nX: 1".into()
            }),
            ("outbound_proxy", |a| {
                a.outbound_proxy = Some("proxy\nX: 1".into())
            }),
            ("name", |a| a.name = "Of\nfice".into()),
        ];
        for (field, change) in cases {
            let mut a = account();
            change(&mut a);
            let err = a.to_config().expect_err(field);
            assert_eq!(err.field, field, "{err}");
            assert!(err.message.contains("control characters"), "{err}");
        }
    }

    #[test]
    fn hosts_too_long_or_ambiguous_are_refused() {
        let mut a = account();
        a.server = "a".repeat(10_000);
        let err = a.to_config().unwrap_err();
        assert_eq!(err.field, "server");
        assert!(err.message.contains("at most 253"), "{err}");
        a.server = "a:b:5060".into();
        let err = a.to_config().unwrap_err();
        assert!(err.message.contains("brackets"), "{err}");
    }

    #[test]
    fn a_uri_transport_that_agrees_is_fine() {
        let mut a = account();
        a.server = "sips:pbx.example.com".into();
        a.transport = Transport::Tls;
        assert_eq!(a.to_config().unwrap().effective_transport(), Transport::Tls);
    }

    #[test]
    fn ipv6_servers_and_domains() {
        let mut a = account();
        a.server = "[2001:db8::1]".into();
        a.port = Some(5062);
        a.domain = Some("[2001:db8::1]".into());
        let c = a.to_config().unwrap();
        assert_eq!(
            (c.registrar.host.as_str(), c.registrar.port),
            ("2001:db8::1", Some(5062))
        );
    }

    #[test]
    fn settings_find_replace_and_remove_by_name() {
        let mut s = Settings::default();
        s.upsert(account());
        let mut home = account();
        home.name = "Home".into();
        s.upsert(home);
        let mut office = account();
        office.extension = "202".into();
        s.upsert(office);
        assert_eq!(s.accounts.len(), 2);
        assert_eq!(s.accounts[0].extension, "202", "replaced in place");
        assert_eq!(s.remove("Home").map(|a| a.name), Some("Home".to_owned()));
        assert!(s.remove("Home").is_none());
        assert!(s.account("Office").is_some());
    }

    #[test]
    fn ipc_shape_uses_lowercase_transport_and_field_names() {
        let mut a = account();
        a.transport = Transport::Tls;
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["transport"], "tls");
        assert_eq!(json["extension"], "101");
        let back: AccountSettings = serde_json::from_value(serde_json::json!({
            "name": "Office", "server": "pbx.example.com", "extension": "101",
            "auth_user": null, "domain": null, "transport": "tcp", "port": null,
            "outbound_proxy": null, "expires": 120, "ca_file": null
        }))
        .unwrap();
        assert_eq!(back.transport, Transport::Tcp);
        assert_eq!(back.expires, 120);
        let err = serde_json::to_value(FieldError::new("port", "Bad.")).unwrap();
        assert_eq!(err, serde_json::json!({"field": "port", "message": "Bad."}));
    }
}
