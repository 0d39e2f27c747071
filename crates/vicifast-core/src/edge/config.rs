//! What the edge proxy of one account is set to.

use crate::config::TransactionTimers;
use crate::message::UriParts;
use crate::status::Transport;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The listener address softphones are told to use as their outbound proxy.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 5070);

/// Digest algorithms the local registrar can challenge with (RFC 8760).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    Md5,
    Sha256,
}

impl DigestAlgorithm {
    pub fn token(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
        }
    }
}

/// Where to reach a softphone that does not register: its SIP address on this computer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedContact {
    pub addr: SocketAddr,
    pub transport: Transport,
}

impl FixedContact {
    /// `sip:[user@]127.0.0.1:5062[;transport=tcp]` or `127.0.0.1:5062`. Only loopback addresses.
    pub fn parse(input: &str) -> Result<Self, EdgeConfigError> {
        let input = input.trim();
        let bad = || EdgeConfigError::BadContact(input.to_owned());
        let uri = if input.to_ascii_lowercase().starts_with("sip:") {
            input.to_owned()
        } else {
            format!("sip:{input}")
        };
        let parts = UriParts::parse(&uri).ok_or_else(bad)?;
        let ip: IpAddr = parts.host.parse().map_err(|_| bad())?;
        let transport = match crate::message::param(&parts.params, "transport") {
            None => Transport::Udp,
            Some(t) => match t.parse::<Transport>() {
                Ok(t @ (Transport::Udp | Transport::Tcp)) => t,
                _ => return Err(bad()),
            },
        };
        let addr = SocketAddr::new(ip, parts.port.unwrap_or(5060));
        if !ip.is_loopback() {
            return Err(EdgeConfigError::NotLoopback(addr));
        }
        Ok(Self { addr, transport })
    }
}

/// Why an edge configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeConfigError {
    #[error("the softphone listener must be on this computer only (127.0.0.1 or ::1), not {0}")]
    NotLoopback(SocketAddr),
    #[error("`{0}` is not a softphone address on this computer: use sip:127.0.0.1:PORT, optionally with ;transport=tcp")]
    BadContact(String),
    #[error("{0} must be longer than zero")]
    ZeroInterval(&'static str),
    #[error("no digest algorithm to challenge the softphone with")]
    NoAlgorithm,
}

/// The edge proxy's settings for one account. [`EdgeConfig::default`] is what the product ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeConfig {
    /// The loopback address the driver's UDP and TCP listeners are bound to; it goes into our Via
    /// and Record-Route toward the softphone.
    pub listen: SocketAddr,
    /// A softphone with registration switched off is reached here while none has registered.
    pub fixed_contact: Option<FixedContact>,
    /// How often the softphone is asked (OPTIONS) whether it is running.
    pub check_interval: Duration,
    /// How long it has to answer a check before it counts as not answering.
    pub answer_wait: Duration,
    /// RFC 3261 §16.8 Timer C: how long an INVITE may ring without a final response.
    pub invite_timeout: Duration,
    /// The longest registration granted to the softphone (it may ask for less).
    pub max_softphone_expires: u32,
    /// The shortest registration accepted (shorter ones get 423 with this Min-Expires).
    pub min_softphone_expires: u32,
    /// How long a nonce of the local registrar may be used.
    pub nonce_lifetime: Duration,
    /// The challenges offered to the softphone, in order of preference. MD5 alone by default:
    /// several softphones (baresip 1.0 among them) give up on the first algorithm they do not
    /// know instead of taking the next challenge.
    pub digest_algorithms: Vec<DigestAlgorithm>,
    /// Wrong passwords accepted within [`EdgeConfig::nonce_lifetime`] before REGISTERs are
    /// refused outright until it has passed.
    pub max_wrong_passwords: u32,
    /// Emit every message relayed or answered as an [`super::EdgeEvent::Trace`] (the support
    /// trace). Building the entries is a quarter to a half of the relay's cost in the core (the
    /// `edge_relay_cost` example measures it).
    pub trace: bool,
    pub timers: TransactionTimers,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            fixed_contact: None,
            check_interval: Duration::from_secs(15),
            answer_wait: Duration::from_secs(2),
            invite_timeout: Duration::from_secs(180),
            max_softphone_expires: 3600,
            min_softphone_expires: 60,
            nonce_lifetime: Duration::from_secs(300),
            digest_algorithms: vec![DigestAlgorithm::Md5],
            max_wrong_passwords: 5,
            trace: true,
            timers: TransactionTimers::default(),
        }
    }
}

impl EdgeConfig {
    /// Checks what the proxy relies on: loopback only, no zero intervals, one algorithm at least.
    pub fn validate(&self) -> Result<(), EdgeConfigError> {
        if !self.listen.ip().is_loopback() {
            return Err(EdgeConfigError::NotLoopback(self.listen));
        }
        if let Some(fixed) = &self.fixed_contact {
            if !fixed.addr.ip().is_loopback() {
                return Err(EdgeConfigError::NotLoopback(fixed.addr));
            }
        }
        for (name, value) in [
            ("the softphone check interval", self.check_interval),
            ("the softphone answer wait", self.answer_wait),
            ("the INVITE timeout", self.invite_timeout),
            ("the nonce lifetime", self.nonce_lifetime),
            ("T1", self.timers.t1),
        ] {
            if value.is_zero() {
                return Err(EdgeConfigError::ZeroInterval(name));
            }
        }
        if self.digest_algorithms.is_empty() {
            return Err(EdgeConfigError::NoAlgorithm);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_contact_accepts_loopback_uris_only() {
        let c = FixedContact::parse("sip:127.0.0.1:5062;transport=tcp").unwrap();
        assert_eq!(c.addr, "127.0.0.1:5062".parse().unwrap());
        assert_eq!(c.transport, Transport::Tcp);
        let c = FixedContact::parse("[::1]:5062").unwrap();
        assert_eq!(c.addr, "[::1]:5062".parse().unwrap());
        assert_eq!(c.transport, Transport::Udp);
        assert!(matches!(
            FixedContact::parse("sip:198.18.0.5:5062"),
            Err(EdgeConfigError::NotLoopback(_))
        ));
        for bad in [
            "",
            "sip:",
            "localhost:5062",
            "127.0.0.1:x",
            "sip:127.0.0.1;transport=tls",
        ] {
            assert!(FixedContact::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_is_valid_and_validation_names_the_problem() {
        assert_eq!(EdgeConfig::default().validate(), Ok(()));
        let mut c = EdgeConfig {
            listen: "0.0.0.0:5070".parse().unwrap(),
            ..EdgeConfig::default()
        };
        assert!(matches!(c.validate(), Err(EdgeConfigError::NotLoopback(_))));
        c.listen = DEFAULT_LISTEN;
        c.check_interval = Duration::ZERO;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("check interval"));
        c.check_interval = Duration::from_secs(1);
        c.digest_algorithms.clear();
        assert_eq!(c.validate(), Err(EdgeConfigError::NoAlgorithm));
    }
}
