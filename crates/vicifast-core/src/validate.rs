//! The one validation of what a user (or a script, or a provisioning source) gives us for an
//! account: SIP user, authentication user, domain, host, port, registration lifetime.
//!
//! Every way into the engine uses these functions: the CLI's flags, the settings file, the
//! window's form, and [`AccountConfig::validate`], which the core runs before it sends anything.
//! So a value with a CR or LF can never add a header line to a REGISTER, and every refusal reads
//! the same wherever the value came from: it names the field and says what is allowed.
//!
//! Written by hand: the rules are RFC 3261's user grammar and RFC 1123 host names, a few lines
//! each, and the messages are the product's own.

use crate::config::{AccountConfig, AddressError, ServerAddress, MAX_EXPIRES};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest host name (RFC 1035 §2.3.4, without the trailing dot).
pub const MAX_HOST_LEN: usize = 253;
/// Longest label of a host name (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Longest SIP user or authentication user name we accept: real ones are a few characters.
pub const MAX_USER_LEN: usize = 128;
/// Longest account name: it names the keychain entry and shows in the window and tray.
pub const MAX_NAME_CHARS: usize = 64;
/// Shortest registration lifetime a user may ask for, in seconds.
pub const MIN_EXPIRES: u32 = 1;

/// Which value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The account's label.
    Name,
    /// The SIP user (extension) of the address of record.
    Extension,
    AuthUser,
    Domain,
    /// The registrar's address.
    Server,
    OutboundProxy,
    Port,
    Expires,
    UserAgent,
    InstanceId,
}

impl Field {
    /// The field's name in the settings file and the window's form.
    pub fn key(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Extension => "extension",
            Self::AuthUser => "auth_user",
            Self::Domain => "domain",
            Self::Server => "server",
            Self::OutboundProxy => "outbound_proxy",
            Self::Port => "port",
            Self::Expires => "expires",
            Self::UserAgent => "user_agent",
            Self::InstanceId => "instance_id",
        }
    }

    /// The field in plain words.
    pub fn label(self) -> &'static str {
        match self {
            Self::Name => "account name",
            Self::Extension => "extension",
            Self::AuthUser => "authentication user name",
            Self::Domain => "domain",
            Self::Server => "server address",
            Self::OutboundProxy => "outbound proxy",
            Self::Port => "port",
            Self::Expires => "registration time",
            Self::UserAgent => "user agent",
            Self::InstanceId => "instance identifier",
        }
    }
}

/// What is wrong with the value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationErrorKind {
    Empty,
    /// A control character (CR, LF, TAB, NUL…): it could change the SIP message.
    ControlCharacter,
    /// A character the field cannot hold.
    Character(char),
    /// Longer than `max` characters.
    TooLong {
        max: usize,
    },
    /// A server address, domain or host that cannot be used.
    Address(AddressError),
    /// A number outside `min..=max`, or not a number (`given` as typed).
    OutOfRange {
        given: String,
        min: u64,
        max: u64,
    },
}

/// A value refused by validation: which field, and why, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub field: Field,
    pub kind: ValidationErrorKind,
}

impl ValidationError {
    pub fn new(field: Field, kind: ValidationErrorKind) -> Self {
        Self { field, kind }
    }

    fn address(field: Field, err: AddressError) -> Self {
        Self::new(field, ValidationErrorKind::Address(err))
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ValidationErrorKind as K;
        let what = self.field.label();
        match (&self.kind, self.field) {
            (K::Empty, Field::Name) => f.write_str("Give the account a name (such as Office)."),
            (K::Empty, Field::Extension) => {
                f.write_str("Enter the extension (your phone number at the PBX, such as 101).")
            }
            (K::Empty, Field::Server) => {
                f.write_str("Enter the server (your PBX's address, such as pbx.example.com).")
            }
            (K::Empty, _) => write!(f, "Enter the {what}, or leave it out."),
            (K::ControlCharacter, _) => write!(
                f,
                "The {what} cannot contain control characters such as tabs or line breaks."
            ),
            (K::Character(' '), Field::Extension) => f.write_str(
                "The extension cannot contain spaces: it is usually just digits, such as 101.",
            ),
            (K::Character(c), Field::Extension) => write!(
                f,
                "The extension cannot contain `{c}`: it is usually just digits, such as 101."
            ),
            (K::Character(' '), _) => write!(f, "The {what} cannot contain spaces."),
            (K::Character(c), _) => write!(f, "The {what} cannot contain `{c}`."),
            (K::TooLong { max }, _) => {
                write!(f, "The {what} is too long: use at most {max} characters.")
            }
            (K::OutOfRange { given, min, max }, Field::Expires) => write!(
                f,
                "The registration time must be a whole number of seconds from {min} to {max} \
                 (300 suits most PBXs), not `{}`.",
                crate::drop_log::escape(given)
            ),
            (K::OutOfRange { given, min, max }, _) => write!(
                f,
                "The {what} must be a number from {min} to {max}, not `{}`.",
                crate::drop_log::escape(given)
            ),
            (K::Address(err), field) => write_address_error(f, field, err),
        }
    }
}

fn write_address_error(
    f: &mut fmt::Formatter<'_>,
    field: Field,
    err: &AddressError,
) -> fmt::Result {
    use crate::drop_log::escape;
    let what = field.label();
    match err {
        AddressError::Empty => match field {
            Field::Server => {
                f.write_str("Enter the server (your PBX's address, such as pbx.example.com).")
            }
            _ => write!(f, "Enter the {what}, or leave it out."),
        },
        AddressError::BadPort(port) => write!(
            f,
            "`{}` in the {what} is not a port: use a number from 1 to 65535 (usually 5060, or \
             5061 for TLS).",
            escape(port)
        ),
        AddressError::BadHost(host) | AddressError::Ipv6NeedsBrackets(host)
            if field == Field::Domain =>
        {
            write!(
                f,
                "`{}` is not a domain: enter a name such as example.com or an IP address, without \
             sip: or a port (or leave it empty to use the server's).",
                escape(host)
            )
        }
        AddressError::BadHost(host) => write!(
            f,
            "`{}` is not a host name or IP address: enter the {what} as a name such as \
             pbx.example.com, or an address such as 192.0.2.10.",
            escape(host)
        ),
        AddressError::ControlCharacter => write!(
            f,
            "The {what} cannot contain control characters such as tabs or line breaks."
        ),
        AddressError::HostTooLong(len) => write!(
            f,
            "The host name in the {what} is {len} characters long: a host name has at most \
             {MAX_HOST_LEN}."
        ),
        AddressError::LabelTooLong(label) => write!(
            f,
            "The host name in the {what} has a part longer than {MAX_LABEL_LEN} characters \
             (`{}…`): each part between dots has at most {MAX_LABEL_LEN}.",
            escape(&label.chars().take(20).collect::<String>())
        ),
        AddressError::Ipv6NeedsBrackets(host) => write!(
            f,
            "`{}` in the {what} is neither a host name nor an IP address: write an IPv6 address \
             in brackets, such as [2001:db8::1]:5060.",
            escape(host)
        ),
        AddressError::BadScheme(scheme) => write!(
            f,
            "The {what} cannot start with {}:// (a SIP address starts with sip: or sips:, or \
             just give the host name).",
            escape(scheme)
        ),
        AddressError::BadTransport(t) => write!(
            f,
            "The {what} names the transport `{}`, which VICIfast does not know: use udp, tcp or \
             tls.",
            escape(t)
        ),
        AddressError::SipsNeedsTls(t) => write!(
            f,
            "A sips: {what} needs the TLS transport, not {}: remove ;transport= or use sip:.",
            t.via_token()
        ),
    }
}

fn no_control(field: Field, value: &str) -> Result<(), ValidationError> {
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            ValidationErrorKind::ControlCharacter,
        ));
    }
    Ok(())
}

fn not_too_long(field: Field, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            ValidationErrorKind::TooLong { max },
        ));
    }
    Ok(())
}

/// An account's label: 1 to 64 characters, no control characters.
pub fn name(value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(
            Field::Name,
            ValidationErrorKind::Empty,
        ));
    }
    no_control(Field::Name, value)?;
    not_too_long(Field::Name, value, MAX_NAME_CHARS)
}

/// A SIP user (the extension): RFC 3261 §25.1 `user`, unreserved and user-unreserved
/// characters and `%HH` escapes, at most 128 characters.
pub fn user(value: &str) -> Result<(), ValidationError> {
    let field = Field::Extension;
    if value.is_empty() {
        return Err(ValidationError::new(field, ValidationErrorKind::Empty));
    }
    no_control(field, value)?;
    not_too_long(field, value, MAX_USER_LEN)?;
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = value[i..].chars().next().unwrap_or_default();
        if c == '%' {
            let escaped = bytes.get(i + 1..i + 3);
            if !escaped.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return Err(ValidationError::new(
                    field,
                    ValidationErrorKind::Character('%'),
                ));
            }
            i += 3;
            continue;
        }
        if !(c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(c)) {
            return Err(ValidationError::new(
                field,
                ValidationErrorKind::Character(c),
            ));
        }
        i += c.len_utf8();
    }
    Ok(())
}

/// An authentication user name: it goes into a quoted string (RFC 2617 `username="…"`), so any
/// printable text but `"` and `\`, at most 128 characters.
pub fn auth_user(value: &str) -> Result<(), ValidationError> {
    let field = Field::AuthUser;
    if value.is_empty() {
        return Err(ValidationError::new(field, ValidationErrorKind::Empty));
    }
    no_control(field, value)?;
    not_too_long(field, value, MAX_USER_LEN)?;
    if let Some(c) = value.chars().find(|c| matches!(c, '"' | '\\')) {
        return Err(ValidationError::new(
            field,
            ValidationErrorKind::Character(c),
        ));
    }
    Ok(())
}

/// A host as it may stand in a SIP URI: a host name (RFC 1123: at most 253 characters, labels
/// of 1 to 63 letters, digits, `-` or `_`, not starting or ending with `-`; one trailing dot
/// allowed), an IPv4 address, or an IPv6 address (bare or in brackets).
pub fn host(value: &str) -> Result<(), AddressError> {
    if value.is_empty() {
        return Err(AddressError::Empty);
    }
    if value.chars().any(char::is_control) {
        return Err(AddressError::ControlCharacter);
    }
    if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        return match inner.parse::<Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(AddressError::BadHost(value.to_owned())),
        };
    }
    if value.parse::<Ipv6Addr>().is_ok() || value.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    if value.contains(':') {
        return Err(AddressError::Ipv6NeedsBrackets(value.to_owned()));
    }
    let name = value.strip_suffix('.').unwrap_or(value);
    // Digits and dots only, yet not an IPv4 address (`198.18.0.300`): a typo, not a name.
    if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(AddressError::BadHost(value.to_owned()));
    }
    if name.len() > MAX_HOST_LEN {
        return Err(AddressError::HostTooLong(name.len()));
    }
    for label in name.split('.') {
        if label.len() > MAX_LABEL_LEN {
            return Err(AddressError::LabelTooLong(label.to_owned()));
        }
        let well_formed = !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !well_formed {
            return Err(AddressError::BadHost(value.to_owned()));
        }
    }
    Ok(())
}

/// The domain of the address of record: a [`host`].
pub fn domain(value: &str) -> Result<(), ValidationError> {
    host(value).map_err(|err| ValidationError::address(Field::Domain, err))
}

/// A port number given on its own: 1 to 65535.
pub fn port(value: u16) -> Result<(), ValidationError> {
    if value == 0 {
        return Err(ValidationError::new(
            Field::Port,
            ValidationErrorKind::OutOfRange {
                given: "0".into(),
                min: 1,
                max: 65_535,
            },
        ));
    }
    Ok(())
}

/// A registrar address as typed (see [`ServerAddress::parse`]).
pub fn server(value: &str) -> Result<ServerAddress, ValidationError> {
    ServerAddress::parse(value).map_err(|err| ValidationError::address(Field::Server, err))
}

/// An outbound proxy address as typed (see [`ServerAddress::parse`]).
pub fn outbound_proxy(value: &str) -> Result<ServerAddress, ValidationError> {
    ServerAddress::parse(value).map_err(|err| ValidationError::address(Field::OutboundProxy, err))
}

/// A requested registration lifetime in seconds: 1 to a day.
pub fn expires(value: u32) -> Result<(), ValidationError> {
    if !(MIN_EXPIRES..=MAX_EXPIRES).contains(&value) {
        return Err(expires_error(value.to_string()));
    }
    Ok(())
}

/// A registration lifetime as typed (a flag, a text box): a whole number of seconds, 1 to a day.
pub fn expires_text(value: &str) -> Result<u32, ValidationError> {
    let seconds: u32 = value
        .trim()
        .parse()
        .map_err(|_| expires_error(value.to_owned()))?;
    expires(seconds)?;
    Ok(seconds)
}

fn expires_error(given: String) -> ValidationError {
    ValidationError::new(
        Field::Expires,
        ValidationErrorKind::OutOfRange {
            given,
            min: u64::from(MIN_EXPIRES),
            max: u64::from(MAX_EXPIRES),
        },
    )
}

fn server_address(field: Field, address: &ServerAddress) -> Result<(), ValidationError> {
    host(&address.host).map_err(|err| ValidationError::address(field, err))?;
    if address.port == Some(0) {
        return Err(ValidationError::address(
            field,
            AddressError::BadPort("0".into()),
        ));
    }
    Ok(())
}

impl AccountConfig {
    /// Checks every value that reaches the wire or a log, with the same rules as the settings
    /// and the CLI's flags. The core refuses to start with a config that fails this.
    pub fn validate(&self) -> Result<(), ValidationError> {
        name(&self.name)?;
        server_address(Field::Server, &self.registrar)?;
        if let Some(proxy) = &self.outbound_proxy {
            server_address(Field::OutboundProxy, proxy)?;
        }
        user(&self.user)?;
        if let Some(auth) = &self.auth_user {
            auth_user(auth)?;
        }
        if let Some(d) = &self.domain {
            domain(d)?;
        }
        let seconds = u32::try_from(self.expires.as_secs()).unwrap_or(u32::MAX);
        if self.expires.subsec_nanos() != 0 {
            return Err(expires_error(format!("{:?}", self.expires)));
        }
        expires(seconds)?;
        no_control(Field::UserAgent, &self.user_agent)?;
        not_too_long(Field::UserAgent, &self.user_agent, 256)?;
        if let Some(id) = &self.instance_id {
            no_control(Field::InstanceId, id)?;
            if let Some(c) = id.chars().find(|c| matches!(c, '"' | '<' | '>' | '\\')) {
                return Err(ValidationError::new(
                    Field::InstanceId,
                    ValidationErrorKind::Character(c),
                ));
            }
            not_too_long(Field::InstanceId, id, 128)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn kind<T: fmt::Debug>(r: Result<T, ValidationError>) -> ValidationErrorKind {
        r.expect_err("should be refused").kind
    }

    #[test]
    fn users() {
        for ok in ["101", "agent.7", "a-b_c", "%41gent", "+15551234", "x;y"] {
            assert_eq!(user(ok), Ok(()), "{ok}");
        }
        assert_eq!(kind(user("")), ValidationErrorKind::Empty);
        assert_eq!(kind(user("1 01")), ValidationErrorKind::Character(' '));
        assert_eq!(kind(user("101@pbx")), ValidationErrorKind::Character('@'));
        assert_eq!(kind(user("%4")), ValidationErrorKind::Character('%'));
        assert_eq!(kind(user("%zz")), ValidationErrorKind::Character('%'));
        assert_eq!(kind(user("é")), ValidationErrorKind::Character('é'));
        assert_eq!(
            kind(user(&"1".repeat(129))),
            ValidationErrorKind::TooLong { max: 128 }
        );
        for crlf in ["101\r\nX-Evil: 1", "101\n", "\r101", "1\x01", "1\t"] {
            assert_eq!(kind(user(crlf)), ValidationErrorKind::ControlCharacter);
        }
    }

    #[test]
    fn auth_users() {
        assert_eq!(auth_user("agent 101@example.com"), Ok(()));
        assert_eq!(kind(auth_user("a\"b")), ValidationErrorKind::Character('"'));
        assert_eq!(
            kind(auth_user("a\\b")),
            ValidationErrorKind::Character('\\')
        );
        assert_eq!(
            kind(auth_user("a\r\nb")),
            ValidationErrorKind::ControlCharacter
        );
        assert_eq!(kind(auth_user("")), ValidationErrorKind::Empty);
    }

    #[test]
    fn hosts() {
        for ok in [
            "pbx",
            "pbx.example.com",
            "pbx.example.com.",
            "_sip._udp.example.com",
            "198.18.0.1",
            "2001:db8::1",
            "[2001:db8::1]",
            &format!("{}.com", "a".repeat(63)),
        ] {
            assert_eq!(host(ok), Ok(()), "{ok}");
        }
        let long = vec!["a".repeat(60); 5].join(".");
        assert_eq!(host(&long), Err(AddressError::HostTooLong(long.len())));
        assert_eq!(
            host(&"a".repeat(10_000)),
            Err(AddressError::HostTooLong(10_000))
        );
        assert!(matches!(
            host(&"a".repeat(64)),
            Err(AddressError::LabelTooLong(_))
        ));
        assert!(matches!(
            host("a:b"),
            Err(AddressError::Ipv6NeedsBrackets(_))
        ));
        for bad in [
            "pb x",
            "a..b",
            "-pbx",
            "pbx-",
            ".pbx",
            "[pbx]",
            "pbx/1",
            "é.com",
            "198.18.0.300",
            "1.2.3",
        ] {
            assert!(matches!(host(bad), Err(AddressError::BadHost(_))), "{bad}");
        }
        assert_eq!(host("pbx\r\n"), Err(AddressError::ControlCharacter));
        assert_eq!(host(""), Err(AddressError::Empty));
    }

    #[test]
    fn servers() {
        assert!(server("pbx.example.com:5060").is_ok());
        assert!(server("[2001:db8::1]:5060").is_ok());
        let refused = |s: &str| server(s).expect_err(s).kind;
        assert_eq!(
            refused("a:b:5060"),
            ValidationErrorKind::Address(AddressError::Ipv6NeedsBrackets("a:b".into()))
        );
        assert_eq!(
            refused(&"a".repeat(10_000)),
            ValidationErrorKind::Address(AddressError::HostTooLong(10_000))
        );
        for crlf in [
            "pbx\r\nX: y",
            "sip:pbx;transport=tcp\r\nX: y",
            "sip:pbx?\r\n",
            "sip:1\r\n@pbx",
        ] {
            assert_eq!(
                refused(crlf),
                ValidationErrorKind::Address(AddressError::ControlCharacter),
                "{crlf:?}"
            );
        }
    }

    #[test]
    fn expiry() {
        assert_eq!(expires_text("300"), Ok(300));
        assert_eq!(expires_text("86400"), Ok(86_400));
        for bad in ["-1", "0", "86401", "5m", "", "4294967296"] {
            let err = expires_text(bad).expect_err(bad);
            assert_eq!(err.field, Field::Expires);
            let text = err.to_string();
            assert!(text.contains("from 1 to 86400"), "{text}");
        }
    }

    #[test]
    fn messages_name_the_field_and_what_is_allowed() {
        let err = user("101\r\nX: y").unwrap_err();
        assert_eq!(
            err.to_string(),
            "The extension cannot contain control characters such as tabs or line breaks."
        );
        let err = server("a:b:5060").unwrap_err();
        assert!(err.to_string().contains("in brackets"), "{err}");
        let err = expires_text("-1").unwrap_err();
        assert!(err.to_string().contains("`-1`"), "{err}");
        // Remote-looking junk in a message is escaped, never written raw.
        let err = expires_text("1\x1b[31m").unwrap_err();
        assert!(!err.to_string().contains('\x1b'), "{err}");
    }

    #[test]
    fn a_config_with_a_line_break_anywhere_is_refused() {
        let base = AccountConfig::new(
            "Office",
            ServerAddress::parse("pbx.example.com").unwrap(),
            "101",
        );
        assert_eq!(base.validate(), Ok(()));
        type Change = fn(&mut AccountConfig);
        let changes: [(Field, Change); 8] = [
            (Field::Extension, |c| c.user = "101\r\nX: y".into()),
            (Field::AuthUser, |c| c.auth_user = Some("a\r\nX: y".into())),
            (Field::Domain, |c| c.domain = Some("ex.com\r\nX: y".into())),
            (Field::Server, |c| c.registrar.host = "pbx\r\nX: y".into()),
            (Field::Name, |c| c.name = "a\nb".into()),
            (Field::UserAgent, |c| c.user_agent = "UA\r\nX: y".into()),
            (Field::InstanceId, |c| {
                c.instance_id = Some("urn:uuid:1>\r\n".into())
            }),
            (Field::Expires, |c| c.expires = Duration::ZERO),
        ];
        for (field, change) in changes {
            let mut config = base.clone();
            change(&mut config);
            assert_eq!(config.validate().map_err(|e| e.field), Err(field));
        }
    }
}
