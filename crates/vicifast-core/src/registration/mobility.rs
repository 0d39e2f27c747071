//! Mobility: the laptop moves between networks, sleeps, or loses every route. A new local address
//! means a new flow and a new Contact, registered at once with the old Contact removed in the
//! same REGISTER (RFC 5626 §4.2.1 style); no route means `offline` and silence until a route
//! returns.

use super::{Phase, Registration, Resume, WaitCause};
use crate::binding::OurContact;
use crate::status::{Cause, Problem, ProblemCode, RegistrationState};
use crate::timer::Timer;
use crate::Output;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// While offline, how often to ask the driver to look at the routes again.
const OFFLINE_PROBE: Duration = Duration::from_secs(30);
/// How many old contacts we remember for removal.
const MAX_STALE_CONTACTS: usize = 4;

impl Registration {
    /// The network changed: `local_ip` is the address the OS would now use to reach the server
    /// (`None`: no route). The driver calls this on every interface, address or route event and
    /// after each [`Output::CheckNetwork`]; nothing happens unless our flow's address is affected.
    pub fn handle_network_changed(&mut self, now: Instant, local_ip: Option<IpAddr>) {
        if self.stopping() || matches!(self.phase, Phase::Idle | Phase::Finished | Phase::Failed) {
            return;
        }
        let Some(ip) = local_ip else {
            if !matches!(self.phase, Phase::Offline) {
                self.go_offline(now, Cause::NetworkChanged);
            }
            return;
        };
        if matches!(self.phase, Phase::Offline) {
            self.problem = None;
            self.timers.stop(Timer::RouteCheck);
            self.attempt_after_network_change(now, Cause::NetworkChanged);
            return;
        }
        let failing = matches!(
            self.phase,
            Phase::BackingOff {
                cause: WaitCause::Failure,
                ..
            }
        );
        match self.flow.as_ref().map(|f| f.local.ip()) {
            Some(current) if current == ip => {}
            Some(_) => self.reopen(now, Cause::AddressChanged),
            // A new network may cure what made us back off: try now rather than later, once.
            None if failing => self.pull_attempt_forward(now),
            None => {}
        }
    }

    /// While backing off after a failure: start the next attempt now if the pacing rule allows
    /// one more network-change attempt during this wait.
    fn pull_attempt_forward(&mut self, now: Instant) {
        if self.pacer.network_changed(now).is_none() {
            self.publish(now, Cause::NetworkChanged);
            self.begin_attempt(now);
        }
    }

    /// After a network change: a new attempt at once, unless we are failing and the change has
    /// already pulled an attempt forward during this wait (then the backoff applies).
    fn attempt_after_network_change(&mut self, now: Instant, cause: Cause) {
        match self.pacer.network_changed(now) {
            None => {
                self.state = RegistrationState::Registering;
                self.publish(now, cause);
                self.begin_attempt(now);
            }
            Some(retry_at) => {
                self.phase = Phase::BackingOff {
                    until: retry_at,
                    cause: WaitCause::Failure,
                    then: Resume::Attempt,
                };
                self.state = RegistrationState::Retrying;
                self.publish(now, cause);
            }
        }
    }

    /// The machine woke from sleep: the binding may have lapsed and the NAT forgotten us, so
    /// register again at once over a new flow.
    pub fn handle_resumed(&mut self, now: Instant) {
        if self.stopping() {
            return;
        }
        match self.phase {
            Phase::Registered
            | Phase::BackingOff { .. }
            | Phase::Transacting(_)
            | Phase::Connecting { .. }
            | Phase::Resolving => self.reopen(now, Cause::Resumed),
            Phase::Offline => self.outputs.push_back(Output::CheckNetwork),
            Phase::Idle | Phase::Failed | Phase::Finished => {}
        }
    }

    pub(super) fn go_offline(&mut self, now: Instant, cause: Cause) {
        self.drop_flows();
        self.clear_timers();
        // Safety net for platforms whose route events we miss: ask for a re-check now and then.
        self.timers.set(Timer::RouteCheck, now + OFFLINE_PROBE);
        self.lose_binding();
        self.phase = Phase::Offline;
        self.state = RegistrationState::Offline;
        self.problem = Some(Problem::new(
            ProblemCode::NetworkDown,
            "no route to the server from any local address",
        ));
        self.publish(now, cause);
    }

    /// While offline: have the driver look at the routes again.
    pub(super) fn check_route(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Offline) {
            self.outputs.push_back(Output::CheckNetwork);
            self.timers.set(Timer::RouteCheck, now + OFFLINE_PROBE);
        }
    }

    /// Our flow's address is gone: register from scratch over a new flow. The old contact goes
    /// into the new REGISTER with expires=0 (see `stale_contacts`).
    fn reopen(&mut self, now: Instant, cause: Cause) {
        self.drop_flows();
        for timer in [
            Timer::Refresh,
            Timer::Expiry,
            Timer::KeepAlive,
            Timer::PongTimeout,
        ] {
            self.timers.stop(timer);
        }
        self.lose_binding();
        self.problem = None;
        self.attempt_after_network_change(now, cause);
    }

    /// Installs a new Contact; the one it replaces is removed with the next REGISTER.
    pub(super) fn replace_contact(&mut self, contact: OurContact) {
        if let Some(old) = self.contact.replace(contact) {
            if self.contact.as_ref().is_some_and(|c| c.uri != old.uri) {
                self.remember_stale(old.uri);
            }
        }
    }

    /// A contact of ours the registrar may still hold: removed with the next REGISTER.
    pub(super) fn remember_stale(&mut self, uri: String) {
        if self.contact.as_ref().is_some_and(|c| c.uri == uri) || self.stale_contacts.contains(&uri)
        {
            return;
        }
        self.stale_contacts.push(uri);
        if self.stale_contacts.len() > MAX_STALE_CONTACTS {
            self.stale_contacts.remove(0);
        }
    }
}
