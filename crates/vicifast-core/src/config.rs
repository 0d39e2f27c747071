//! What one account registers, and how.

use crate::status::Transport;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A registrar or proxy address as the user typed it: `host`, `host:port`, `[v6]:port`,
/// `sip:host[:port][;transport=tcp]` or `sips:host[:port]`. The host follows
/// [`crate::validate::host`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerAddress {
    /// Host name or numeric address (IPv6 without brackets).
    pub host: String,
    /// Explicit port; when absent, RFC 3263 SRV lookup applies to host names.
    pub port: Option<u16>,
    /// Transport named in the URI (`;transport=` or `sips:`), if any.
    pub transport: Option<Transport>,
}

/// Why a server address could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the server address is empty")]
    Empty,
    #[error("`{0}` is not a valid port (1-65535)")]
    BadPort(String),
    #[error("`{0}` is not a valid host name or IP address")]
    BadHost(String),
    #[error("unsupported URI scheme `{0}`: use sip: or sips:")]
    BadScheme(String),
    #[error("unknown transport `{0}`: use udp, tcp or tls")]
    BadTransport(String),
    #[error("sips: needs the TLS transport, not {0}")]
    SipsNeedsTls(Transport),
    #[error("the server address contains a control character (such as a line break)")]
    ControlCharacter,
    #[error("the host name is {0} characters long; at most 253 are allowed")]
    HostTooLong(usize),
    #[error("a part of the host name is longer than 63 characters")]
    LabelTooLong(String),
    #[error(
        "`{0}` is not a host name; an IPv6 address goes in brackets, such as [2001:db8::1]:5060"
    )]
    Ipv6NeedsBrackets(String),
}

impl ServerAddress {
    /// Parses what a user may type as a server: see the type's documentation.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        // Checked before trimming: a line break must be refused, not quietly cut off.
        if input.chars().any(char::is_control) {
            return Err(AddressError::ControlCharacter);
        }
        let input = input.trim();
        if input.is_empty() {
            return Err(AddressError::Empty);
        }
        let lower = input.to_ascii_lowercase();
        let (rest, secure) = if lower.starts_with("sips:") {
            (&input[5..], true)
        } else if lower.starts_with("sip:") {
            (&input[4..], false)
        } else if let Some(idx) = input.find("://") {
            return Err(AddressError::BadScheme(input[..idx].to_owned()));
        } else {
            (input, false)
        };
        // Drop a user part and URI headers; keep parameters to find `transport=`.
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
        let mut parts = rest.split(';');
        let hostport = parts.next().unwrap_or_default();
        let mut transport = if secure { Some(Transport::Tls) } else { None };
        for param in parts {
            if let Some((name, value)) = param.split_once('=') {
                if name.trim().eq_ignore_ascii_case("transport") {
                    let t: Transport = value
                        .trim()
                        .parse()
                        .map_err(|_| AddressError::BadTransport(value.trim().to_owned()))?;
                    if secure && t != Transport::Tls {
                        return Err(AddressError::SipsNeedsTls(t));
                    }
                    transport = Some(t);
                }
            }
        }
        let (host, port) = split_host_port(hostport)?;
        Ok(Self {
            host,
            port,
            transport,
        })
    }

    /// Whether the host is a numeric IP address (RFC 3263: used as is, no SRV).
    pub fn is_numeric(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }

    /// Host as it goes into a SIP URI (IPv6 in brackets).
    pub fn uri_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.transport == Some(Transport::Tls) {
            "sips"
        } else {
            "sip"
        };
        write!(f, "{scheme}:{}", self.uri_host())?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        match self.transport {
            Some(t @ (Transport::Udp | Transport::Tcp)) => write!(f, ";transport={t}"),
            _ => Ok(()),
        }
    }
}

fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), AddressError> {
    let hostport = hostport.trim();
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| AddressError::BadHost(hostport.to_owned()))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(AddressError::BadHost(hostport.to_owned())),
        };
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(AddressError::BadHost(hostport.to_owned()));
        }
        (host.to_owned(), port)
    } else if hostport.parse::<std::net::Ipv6Addr>().is_ok() {
        (hostport.to_owned(), None)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    crate::validate::host(&host)?;
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(AddressError::BadPort(p.to_owned())),
        },
    };
    Ok((host, port))
}

/// A password held only in memory: it never prints and cannot be serialised, so it cannot leak
/// into logs, traces, status events or IPC.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for computing a digest response.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Timers of RFC 3261 §17 (T1, T2, T4), configurable for tests and unusual networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionTimers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for TransactionTimers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// The longest binding lifetime the core asks for or refreshes by: a day.
pub const MAX_EXPIRES: u32 = 86_400;
/// A granted lifetime shorter than this (or than we asked, if that was less) is refreshed as if
/// it were this long, so that a registrar granting 1 s does not get a REGISTER every half second.
pub const MIN_REFRESHED_EXPIRES: u32 = 30;

/// Everything needed to register one extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    /// A label for the account (shown in status and logs).
    pub name: String,
    /// The registrar: where REGISTER is addressed (and sent, without an outbound proxy).
    pub registrar: ServerAddress,
    /// The extension (user part of the address of record).
    pub user: String,
    /// Authentication user name, when it differs from the extension.
    pub auth_user: Option<String>,
    /// SIP domain of the address of record; defaults to the registrar's host.
    pub domain: Option<String>,
    /// Transport; overrides what the registrar URI names.
    pub transport: Option<Transport>,
    /// Where to send requests instead of the registrar (a `Route` is added).
    pub outbound_proxy: Option<ServerAddress>,
    /// Requested binding lifetime.
    pub expires: Duration,
    /// RFC 5626 §4.5 backoff base for when every flow failed.
    pub backoff_base: Duration,
    /// Upper bound of the backoff.
    pub backoff_cap: Duration,
    /// Answer requests from any address, not only from the registrar or outbound proxy.
    pub accept_requests_from_anyone: bool,
    /// RFC 5626 instance identifier (`urn:uuid:…`), stable per installation.
    pub instance_id: Option<String>,
    pub user_agent: String,
    pub timers: TransactionTimers,
    /// Keep-alive interval on UDP flows (CRLF keep-alives hold the NAT mapping open).
    pub keepalive_udp: Duration,
    /// Keep-alive interval on TCP/TLS flows (RFC 5626 CRLFCRLF ping, CRLF pong). Kamailio and
    /// OpenSIPS close a TCP connection idle for 120 s by default: 90 s stays well inside that.
    pub keepalive_stream: Duration,
    /// How often, roughly (jittered ±25 %), to ask the registrar between refreshes which
    /// bindings the extension has, to notice another device taking it; `None` never asks.
    pub binding_check_interval: Option<Duration>,
}

impl AccountConfig {
    /// A configuration with the defaults the product ships.
    pub fn new(name: impl Into<String>, registrar: ServerAddress, user: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            registrar,
            user: user.into(),
            auth_user: None,
            domain: None,
            transport: None,
            outbound_proxy: None,
            expires: Duration::from_secs(300),
            backoff_base: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(1800),
            accept_requests_from_anyone: false,
            instance_id: None,
            user_agent: concat!("VICIfast/", env!("CARGO_PKG_VERSION")).to_owned(),
            timers: TransactionTimers::default(),
            keepalive_udp: Duration::from_secs(25),
            keepalive_stream: Duration::from_secs(90),
            binding_check_interval: Some(Duration::from_secs(120)),
        }
    }

    /// Keep-alive interval for a transport.
    pub fn keepalive_interval(&self, transport: Transport) -> Duration {
        if transport.is_reliable() {
            self.keepalive_stream
        } else {
            self.keepalive_udp
        }
    }

    /// The transport in effect: explicit setting, else the next hop's URI, else UDP.
    pub fn effective_transport(&self) -> Transport {
        self.transport
            .or_else(|| self.next_hop().transport)
            .unwrap_or_default()
    }

    /// Where requests go: the outbound proxy if set, else the registrar.
    pub fn next_hop(&self) -> &ServerAddress {
        self.outbound_proxy.as_ref().unwrap_or(&self.registrar)
    }

    /// Domain of the address of record.
    pub fn domain(&self) -> String {
        match &self.domain {
            Some(d) => d.clone(),
            None => self.registrar.uri_host(),
        }
    }

    pub fn auth_user(&self) -> &str {
        self.auth_user.as_deref().unwrap_or(&self.user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_users_type() {
        let a = ServerAddress::parse("pbx.example.com").unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.transport),
            ("pbx.example.com", None, None)
        );
        let a = ServerAddress::parse("198.18.0.1:5080").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("198.18.0.1", Some(5080)));
        let a = ServerAddress::parse("sip:pbx.example.com:5070;transport=TCP").unwrap();
        assert_eq!((a.port, a.transport), (Some(5070), Some(Transport::Tcp)));
        let a = ServerAddress::parse("sips:pbx.example.com").unwrap();
        assert_eq!(a.transport, Some(Transport::Tls));
        let a = ServerAddress::parse("[2001:db8::1]:5060").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("2001:db8::1", Some(5060)));
        assert_eq!(a.uri_host(), "[2001:db8::1]");
        let a = ServerAddress::parse("2001:db8::1").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("2001:db8::1", None));
        let a = ServerAddress::parse("sip:101@pbx.example.com").unwrap();
        assert_eq!(a.host, "pbx.example.com");
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        assert_eq!(ServerAddress::parse(""), Err(AddressError::Empty));
        assert!(matches!(
            ServerAddress::parse("pbx:0"),
            Err(AddressError::BadPort(_))
        ));
        assert!(matches!(
            ServerAddress::parse("pbx:99999"),
            Err(AddressError::BadPort(_))
        ));
        assert!(matches!(
            ServerAddress::parse("http://pbx"),
            Err(AddressError::BadScheme(_))
        ));
        assert!(matches!(
            ServerAddress::parse("pb x"),
            Err(AddressError::BadHost(_))
        ));
        assert!(matches!(
            ServerAddress::parse("sip:pbx;transport=sctp"),
            Err(AddressError::BadTransport(_))
        ));
        assert!(matches!(
            ServerAddress::parse("sips:pbx;transport=udp"),
            Err(AddressError::SipsNeedsTls(Transport::Udp))
        ));
    }

    #[test]
    fn password_never_prints() {
        let p = Password::new("hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
