//! The local registrar: a softphone's REGISTER is answered by VICIfast, never forwarded.
//!
//! It challenges with the account's own realm and password (see [`super::challenge`]), refuses a
//! softphone set up for another extension, and records one binding: the softphone's Contact, the
//! path its REGISTER came on (the UDP source, or the TCP connection, as RFC 5626 flows are used),
//! its User-Agent and instance, and when the binding lapses. A later REGISTER replaces it; one
//! with `expires=0` or `Contact: *` removes it.

use super::challenge::{Nonces, Verdict};
use super::config::EdgeConfig;
use super::editable::EditableMessage;
use super::health::{SoftphoneProblem, SoftphoneProblemCode};
use super::LocalPeer;
use crate::config::Password;
use crate::message::{param, NameAddr, UriParts};
use crate::status::Transport;
use rand::Rng;
use rand_chacha::ChaCha20Rng;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The softphone as registered with VICIfast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SoftphoneBinding {
    /// The Contact URI it registered: the Request-URI of requests relayed to it.
    pub contact: String,
    /// Where requests to it go: the path its REGISTER came on.
    pub peer: LocalPeer,
    /// The address its Contact names, when that is on this computer: where a TCP softphone is
    /// reached once the connection it registered on has closed.
    pub contact_addr: Option<SocketAddr>,
    pub user_agent: Option<String>,
    pub instance: Option<String>,
    pub expires_at: Instant,
}

/// The account the softphone must sign in as.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub user: String,
    pub auth_user: String,
    pub realm: String,
    pub password: Password,
}

/// What became of a REGISTER.
#[derive(Debug)]
pub(crate) struct RegisterOutcome {
    pub response: EditableMessage,
    pub change: BindingChange,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BindingChange {
    None,
    /// Registered (or refreshed) this binding.
    Bound,
    /// The binding was removed at the softphone's request.
    Removed,
    /// Refused: the agent has to change something in the softphone.
    Refused(SoftphoneProblem),
}

#[derive(Debug)]
pub(crate) struct LocalRegistrar {
    nonces: Nonces,
    pub binding: Option<SoftphoneBinding>,
    /// When recent wrong passwords were sent, oldest first.
    wrong_passwords: VecDeque<Instant>,
}

impl LocalRegistrar {
    pub fn new(config: &EdgeConfig) -> Self {
        Self {
            nonces: Nonces::new(config.nonce_lifetime),
            binding: None,
            wrong_passwords: VecDeque::new(),
        }
    }

    /// Answers a REGISTER from `source`.
    pub fn handle(
        &mut self,
        now: Instant,
        rng: &mut ChaCha20Rng,
        request: &EditableMessage,
        source: LocalPeer,
        identity: &Identity,
        config: &EdgeConfig,
    ) -> RegisterOutcome {
        let to_tag = format!("{:016x}", rng.gen::<u64>());
        let to_tag = to_tag.as_str();
        let respond =
            |code, reason: &str| EditableMessage::response_to(request, code, reason, Some(to_tag));
        let refuse = |reason: &str, code, detail: String| RegisterOutcome {
            response: respond(403, reason),
            change: BindingChange::Refused(SoftphoneProblem::new(code, detail)),
        };
        let to_user = request
            .get("to")
            .and_then(NameAddr::parse)
            .and_then(|to| UriParts::parse(&to.uri))
            .and_then(|uri| uri.user);
        if to_user.as_deref() != Some(identity.user.as_str()) {
            return refuse(
                "Not This Extension",
                SoftphoneProblemCode::WrongExtension,
                format!(
                    "REGISTER for `{}`, the account's extension is `{}`",
                    to_user.unwrap_or_default(),
                    identity.user
                ),
            );
        }
        let window = config.nonce_lifetime;
        while self
            .wrong_passwords
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= window)
        {
            self.wrong_passwords.pop_front();
        }
        if self.wrong_passwords.len() >= config.max_wrong_passwords as usize {
            return refuse(
                "Too Many Wrong Passwords",
                SoftphoneProblemCode::TooManyAttempts,
                format!(
                    "{} wrong passwords within {} s",
                    self.wrong_passwords.len(),
                    window.as_secs()
                ),
            );
        }
        let users = [identity.auth_user.as_str(), identity.user.as_str()];
        let verdict = self.nonces.verify(
            now,
            request.get_all("authorization"),
            "REGISTER",
            &identity.realm,
            &users,
            &identity.password,
        );
        match verdict {
            Verdict::Accepted => {}
            Verdict::Missing | Verdict::Stale => {
                let mut response = respond(401, "Unauthorized");
                for &algorithm in &config.digest_algorithms {
                    let challenge = self.nonces.challenge(
                        now,
                        rng,
                        &identity.realm,
                        algorithm,
                        verdict == Verdict::Stale,
                    );
                    response.append("www-authenticate", challenge);
                }
                return RegisterOutcome {
                    response,
                    change: BindingChange::None,
                };
            }
            Verdict::WrongUser(user) => {
                return refuse(
                    "Not This Extension",
                    SoftphoneProblemCode::WrongExtension,
                    format!(
                        "signed in as `{user}`, the account's user is `{}`",
                        identity.auth_user
                    ),
                )
            }
            Verdict::WrongPassword => {
                self.wrong_passwords.push_back(now);
                return refuse(
                    "Wrong Password",
                    SoftphoneProblemCode::WrongPassword,
                    "the digest response did not match the account's password".into(),
                );
            }
        }
        self.apply_contacts(now, request, source, config, respond)
    }

    fn apply_contacts(
        &mut self,
        now: Instant,
        request: &EditableMessage,
        source: LocalPeer,
        config: &EdgeConfig,
        respond: impl Fn(u16, &str) -> EditableMessage,
    ) -> RegisterOutcome {
        let header_expires = request
            .get("expires")
            .and_then(|v| v.trim().parse::<u32>().ok());
        let contacts = request.list("contact");
        let mut change = BindingChange::None;
        if contacts.iter().any(|c| c.trim() == "*") {
            if contacts.len() != 1 || header_expires != Some(0) {
                return outcome(respond(400, "Contact * Needs Expires 0"));
            }
            if self.binding.take().is_some() {
                change = BindingChange::Removed;
            }
            return RegisterOutcome {
                response: respond(200, "OK"),
                change,
            };
        }
        let mut parsed = Vec::new();
        for raw in &contacts {
            let Some(contact) = NameAddr::parse(raw).filter(|c| UriParts::parse(&c.uri).is_some())
            else {
                return outcome(respond(400, "Bad Contact"));
            };
            let expires = param(&contact.params, "expires")
                .and_then(|v| v.parse::<u32>().ok())
                .or(header_expires)
                .unwrap_or(config.max_softphone_expires);
            if expires > 0 && expires < config.min_softphone_expires {
                let mut response = respond(423, "Interval Too Brief");
                response.append("min-expires", config.min_softphone_expires.to_string());
                return outcome(response);
            }
            parsed.push((contact, expires));
        }
        for (contact, expires) in parsed {
            if expires == 0 {
                if self
                    .binding
                    .as_ref()
                    .is_some_and(|b| b.contact == contact.uri)
                {
                    self.binding = None;
                    change = BindingChange::Removed;
                }
                continue;
            }
            let granted = expires.min(config.max_softphone_expires);
            let contact_addr = UriParts::parse(&contact.uri).and_then(|uri| {
                let ip: IpAddr = uri.host.parse().ok()?;
                let default_port = if source.transport == Transport::Tls {
                    5061
                } else {
                    5060
                };
                ip.is_loopback()
                    .then(|| SocketAddr::new(ip, uri.port.unwrap_or(default_port)))
            });
            self.binding = Some(SoftphoneBinding {
                instance: param(&contact.params, "+sip.instance")
                    .map(|i| i.trim_matches(|c| c == '<' || c == '>').to_owned()),
                contact: contact.uri,
                peer: source,
                contact_addr,
                user_agent: request.get("user-agent").map(str::to_owned),
                expires_at: now + Duration::from_secs(u64::from(granted)),
            });
            change = BindingChange::Bound;
        }
        let mut response = respond(200, "OK");
        if let Some(binding) = &self.binding {
            let left = binding.expires_at.saturating_duration_since(now).as_secs();
            response.append("contact", format!("<{}>;expires={left}", binding.contact));
        }
        RegisterOutcome { response, change }
    }

    /// Forgets a binding whose time is up; returns whether there was one.
    pub fn expire(&mut self, now: Instant) -> bool {
        if self.binding.as_ref().is_some_and(|b| b.expires_at <= now) {
            self.binding = None;
            return true;
        }
        false
    }
}

fn outcome(response: EditableMessage) -> RegisterOutcome {
    RegisterOutcome {
        response,
        change: BindingChange::None,
    }
}
