//! What the registrar answered to the REGISTER in flight: matched strictly (branch, CSeq, Call-ID,
//! From tag), then acted on: the bindings a 2xx grants and lists, digest challenges (RFC 3261
//! §22), 423 Interval Too Brief (§10.2.8), refusals and server errors.

use super::attempt::Failure;
use super::audit::Refused;
use super::{uri_ip, Binding, Goal, Phase, Registration, RequestKind};
use crate::binding::{is_instance, listed_bindings, refreshed_lifetime};
use crate::config::MAX_EXPIRES;
use crate::digest::{ChallengeError, DigestSession};
use crate::drop_log::{escape, DropReason};
use crate::message::{self, NameAddr, Response, Via};
use crate::status::{BindingInfo, Cause, Problem, ProblemCode, RegistrationState};
use crate::timer::{refresh_delay, Timer};
use crate::{Event, Output};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Bounds on re-sending the same REGISTER after answers that ask for it.
const MAX_STALE_RETRIES: u8 = 3;
const MAX_INTERVAL_RETRIES: u8 = 3;

/// Answers that asked us to send again, since the last 2xx; they bound the loops.
#[derive(Debug, Default)]
pub(super) struct Retries {
    /// `stale=true` challenges.
    stale: u8,
    /// 423 Interval Too Brief.
    interval: u8,
    /// A 403 was followed by a query for the bindings.
    pub probed_refusal: bool,
}

/// Corrective REGISTERs in a row on one flow (NAT address, listing of our bindings).
const MAX_CORRECTIVE_REGISTERS: u8 = 2;

impl Registration {
    pub(super) fn on_response(&mut self, now: Instant, remote: SocketAddr, resp: Response) {
        let Some(via) = resp
            .headers
            .get("via")
            .and_then(|v| message::split_list(v).into_iter().next())
            .and_then(|v| Via::parse(&v))
        else {
            let detail = format!("{} response without a usable Via", resp.code);
            self.dropped(now, DropReason::Malformed, remote, &detail);
            return;
        };
        let branch = via.branch().unwrap_or_default();
        let in_flight = match &self.phase {
            Phase::Transacting(pending) => pending.tx.branch == branch,
            _ => false,
        };
        if !in_flight {
            let reason = if self.completed.iter().any(|c| c.branch == branch) {
                DropReason::Retransmission
            } else {
                DropReason::StrayResponse
            };
            self.dropped(now, reason, remote, &resp.code.to_string());
            return;
        }
        let Phase::Transacting(pending) = &mut self.phase else {
            return;
        };
        // Beyond the branch, the response must belong to our dialog-less exchange.
        let cseq_ok = resp
            .headers
            .get("cseq")
            .and_then(message::parse_cseq)
            .is_some_and(|(n, m)| n == pending.tx.cseq && m.eq_ignore_ascii_case("REGISTER"));
        let call_id_ok = resp.headers.get("call-id") == Some(self.dialog.call_id());
        let from_tag_ok = resp
            .headers
            .get("from")
            .and_then(NameAddr::parse)
            .is_some_and(|f| f.tag() == Some(self.dialog.tag()));
        if !(cseq_ok && call_id_ok && from_tag_ok) {
            self.dropped(
                now,
                DropReason::ForgedResponse,
                remote,
                &resp.code.to_string(),
            );
            return;
        }
        if resp.code < 200 {
            pending.tx.on_provisional(now);
            return;
        }
        let Some(pending) = self.take_pending() else {
            return;
        };
        self.completed.push(pending.tx.complete(now));
        let retry_after = resp
            .headers
            .get("retry-after")
            .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs);
        let detail = format!("{} {}", resp.code, escape(&resp.reason));
        let kind = pending.kind;
        if kind == RequestKind::Check && !matches!(resp.code, 200..=299 | 401 | 407) {
            self.check_unanswered(now, resp.code, &detail);
            return;
        }
        match resp.code {
            200..=299 => {
                if pending.carried_credentials {
                    self.auth.accepted = true;
                }
                self.on_success(now, kind, pending.removing, &resp);
            }
            401 | 407 => self.on_challenge(now, kind, pending.answers_challenge, &resp),
            423 => self.on_interval_too_brief(now, kind, &resp),
            403 => {
                let refused = Refused {
                    answered_challenge: pending.answers_challenge,
                    carried_credentials: pending.carried_credentials,
                };
                self.on_forbidden(now, kind, refused, detail);
            }
            404 => self.fail(now, Problem::new(ProblemCode::UnknownExtension, detail)),
            408 | 480 => self.attempt_failed(
                now,
                Failure::of_attempt(Problem::new(ProblemCode::Timeout, detail))
                    .retry_after(retry_after),
            ),
            503 => self.attempt_failed(
                now,
                Failure::of_server(Problem::new(ProblemCode::ServerError, detail))
                    .retry_after(retry_after),
            ),
            500..=599 => self.attempt_failed(
                now,
                Failure::of_attempt(Problem::new(ProblemCode::ServerError, detail))
                    .retry_after(retry_after),
            ),
            _ => self.fail(now, Problem::new(ProblemCode::Rejected, detail)),
        }
    }

    fn on_success(
        &mut self,
        now: Instant,
        kind: RequestKind,
        removed: Vec<String>,
        resp: &Response,
    ) {
        self.retries = Retries::default();
        self.stale_contacts.retain(|c| !removed.contains(c));
        let adds_ours = kind == RequestKind::Register;
        let listed = listed_bindings(&resp.headers, self.contact.as_ref(), adds_ours);
        let before = std::mem::replace(
            &mut self.listed,
            listed.iter().map(|(_, b)| b.clone()).collect(),
        );
        let listing_changed = !same_devices(&before, &self.listed);
        match kind {
            RequestKind::Register => {
                let header_expires = resp
                    .headers
                    .get("expires")
                    .and_then(|v| v.trim().parse::<u32>().ok());
                let granted = listed
                    .iter()
                    .find(|(_, b)| b.ours && !b.stale)
                    .and_then(|(_, b)| b.expires_in)
                    .or(header_expires)
                    .unwrap_or(self.dialog.requested_expires);
                if self.correct_after_success(now, resp, &listed) {
                    return;
                }
                if granted == 0 {
                    self.attempt_failed(
                        now,
                        Failure::of_attempt(Problem::new(
                            ProblemCode::InvalidResponse,
                            "the registrar granted our binding 0 seconds",
                        )),
                    );
                    return;
                }
                self.bound(now, granted, resp);
                self.note_registered_listing(now, &listed);
            }
            RequestKind::Unregister => {
                self.binding = None;
                self.finish(now, RegistrationState::Unregistered, Cause::Unregistered);
            }
            RequestKind::Query => {
                self.outputs
                    .push_back(Output::Event(Event::Bindings(self.listed.clone())));
                if self.goal == Goal::RemoveLocal {
                    let local_ip = self.flow.as_ref().map(|f| f.local.ip());
                    let to_remove: Vec<String> = listed
                        .iter()
                        .filter(|(contact, _)| self.is_local_binding(contact, local_ip))
                        .map(|(contact, _)| contact.uri.clone())
                        .collect();
                    if !to_remove.is_empty() {
                        self.send_request(now, RequestKind::Remove(to_remove), false);
                        return;
                    }
                    self.outputs
                        .push_back(Output::Event(Event::Removed(Vec::new())));
                }
                self.finish(now, self.state, Cause::UserRequest);
            }
            RequestKind::Remove(_) => {
                self.outputs
                    .push_back(Output::Event(Event::Removed(removed)));
                self.finish(now, RegistrationState::Unregistered, Cause::Unregistered);
            }
            RequestKind::Probe => self.on_probed(now, &listed),
            RequestKind::Check => self.on_checked(now, &listed, listing_changed),
        }
    }

    /// After a 2xx to REGISTER: when the registrar sees us at another address (NAT), or its
    /// listing of the bindings needs correcting, register again at once, at most twice in a row
    /// on one flow. Returns whether it did.
    fn correct_after_success(
        &mut self,
        now: Instant,
        resp: &Response,
        listed: &[(NameAddr, BindingInfo)],
    ) -> bool {
        let nat = self.nat_correction(resp);
        let listing = self.listing_correction(listed);
        let Some(flow) = self.flow.as_mut() else {
            return false;
        };
        if nat.is_none() && listing.is_none() {
            flow.corrections = 0;
            return false;
        }
        if flow.corrections >= MAX_CORRECTIVE_REGISTERS {
            return false;
        }
        flow.corrections += 1;
        match (nat, listing) {
            (Some(public), _) => self.register_public(now, public),
            (None, Some(fix)) => self.correct_listing(now, fix),
            (None, None) => {}
        }
        true
    }

    /// The registrar holds our binding for `granted` seconds: refresh ahead of it.
    fn bound(&mut self, now: Instant, granted: u32, resp: &Response) {
        let contact = self
            .contact
            .as_ref()
            .map(|c| c.uri.clone())
            .unwrap_or_default();
        let was_registered = self.state == RegistrationState::Registered
            && self.binding.as_ref().is_some_and(|b| b.contact == contact);
        let (lifetime, adjusted) = refreshed_lifetime(granted, self.dialog.requested_expires);
        if let Some(adjusted) = adjusted.as_ref().filter(|a| {
            self.binding
                .as_ref()
                .and_then(|b| b.adjusted.as_ref())
                .is_none_or(|old| old.granted != a.granted)
        }) {
            tracing::warn!(account = %self.config.name, granted, refreshed_as = lifetime, reason = ?adjusted.reason, "the registrar granted a lifetime we do not refresh by");
            self.outputs
                .push_back(Output::Event(Event::ExpiryAdjusted(adjusted.clone())));
        }
        let granted_for = Duration::from_secs(u64::from(lifetime));
        self.binding = Some(Binding {
            granted: lifetime,
            expires_at: now + granted_for,
            contact,
            retried: false,
            adjusted,
        });
        self.timers
            .set(Timer::Refresh, now + refresh_delay(granted_for));
        self.timers.set(Timer::Expiry, now + granted_for);
        self.pacer.on_success(now);
        // Another device on the extension stays the problem until its episode ends.
        self.problem = self.in_use.as_ref().map(|e| e.problem.clone());
        self.phase = Phase::Registered;
        self.schedule_check(now);
        self.state = RegistrationState::Registered;
        self.flow_registered(now, resp);
        self.publish(
            now,
            if was_registered {
                Cause::Refreshed
            } else {
                Cause::Registered
            },
        );
    }

    fn is_local_binding(&self, contact: &NameAddr, local_ip: Option<IpAddr>) -> bool {
        let ours = self
            .config
            .instance_id
            .as_deref()
            .is_some_and(|id| is_instance(contact, id));
        ours || local_ip.is_some_and(|local| uri_ip(&contact.uri) == Some(local))
    }

    fn on_challenge(
        &mut self,
        now: Instant,
        kind: RequestKind,
        answers_challenge: bool,
        resp: &Response,
    ) {
        let proxy = resp.code == 407;
        let header = if proxy {
            "proxy-authenticate"
        } else {
            "www-authenticate"
        };
        let session = match DigestSession::from_challenges(resp.headers.get_all(header), proxy) {
            Ok(s) => s,
            Err(err @ (ChallengeError::Missing | ChallengeError::Unsupported(_))) => {
                self.fail(
                    now,
                    Problem::new(ProblemCode::Rejected, escape(&err.to_string())),
                );
                return;
            }
        };
        let detail = format!(
            "{} {} (realm \"{}\")",
            resp.code,
            escape(&resp.reason),
            escape(session.realm())
        );
        if session.is_stale() {
            self.retries.stale += 1;
            if self.retries.stale > MAX_STALE_RETRIES {
                self.attempt_failed(
                    now,
                    Failure::of_attempt(Problem::new(
                        ProblemCode::ServerError,
                        format!("{detail}: nonce stale again and again"),
                    )),
                );
                return;
            }
        } else if answers_challenge {
            self.fail(
                now,
                Problem::new(
                    ProblemCode::WrongPassword,
                    format!("{detail} after credentials were sent"),
                ),
            );
            return;
        }
        let slot = if proxy {
            &mut self.auth.proxy
        } else {
            &mut self.auth.www
        };
        *slot = Some(session);
        self.send_request(now, kind, true);
    }

    fn on_interval_too_brief(&mut self, now: Instant, kind: RequestKind, resp: &Response) {
        let min = resp
            .headers
            .get("min-expires")
            .and_then(|v| v.trim().parse::<u32>().ok());
        self.retries.interval += 1;
        match min {
            Some(min)
                if min > self.dialog.requested_expires
                    && min <= MAX_EXPIRES
                    && self.retries.interval <= MAX_INTERVAL_RETRIES =>
            {
                self.dialog.requested_expires = min;
                self.send_request(now, kind, false);
            }
            _ => self.fail(
                now,
                Problem::new(
                    ProblemCode::Rejected,
                    format!("423 Interval Too Brief with Min-Expires {min:?}"),
                ),
            ),
        }
    }

    /// Timer F: the registrar never answered the request in flight.
    pub(super) fn on_transaction_timeout(&mut self, now: Instant) {
        let Some(pending) = self.take_pending() else {
            return;
        };
        self.completed.push(pending.tx.complete(now));
        if pending.kind == RequestKind::Unregister {
            self.finish(now, RegistrationState::Unregistered, Cause::Unregistered);
            return;
        }
        let server = self
            .flow
            .as_ref()
            .map(|f| f.target.addr.to_string())
            .unwrap_or_default();
        self.attempt_failed(
            now,
            Failure::of_server(Problem::new(
                ProblemCode::Timeout,
                format!("no answer from {server} within 32 s"),
            )),
        );
    }
}

/// Whether two listings of the extension's bindings name the same devices (their remaining
/// lifetimes aside).
fn same_devices(a: &[BindingInfo], b: &[BindingInfo]) -> bool {
    fn devices(listing: &[BindingInfo]) -> Vec<(&str, bool, bool)> {
        let mut devices: Vec<_> = listing
            .iter()
            .map(|b| (b.contact.as_str(), b.ours, b.stale))
            .collect();
        devices.sort_unstable();
        devices
    }
    devices(a) == devices(b)
}
