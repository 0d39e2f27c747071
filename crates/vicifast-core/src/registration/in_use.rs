//! Another device on the extension. Registrars that keep one contact per extension (Asterisk's
//! chan_sip; res_pjsip with `max_contacts=1` and `remove_existing=yes`) give the binding to
//! whichever device registered last, and every 200 OK lists only that device: two devices on
//! one extension take it from each other at each refresh, both believe they are registered, and
//! calls go to whichever refreshed last.
//!
//! So between refreshes we ask (a REGISTER without Contact, reusing the last nonce when the
//! registrar allows it) which bindings the extension has, every couple of minutes, jittered,
//! through the pacing rule's gate like every REGISTER. The registrar's qualify OPTIONS, when they
//! came at a steady pace and stop, bring the next query forward: they are only a hint. A query
//! also comes just before our own refresh when that is due first, so a device that took the
//! binding since we last looked is seen before our refresh silently takes it back. A listing
//! that names another device and not us starts an episode: one [`Event::ExtensionInUse`], the
//! problem `extension_in_use` in every status until it ends. We never take the binding back
//! sooner than the normal refresh on our own: only the user's "use this computer"
//! ([`Registration::take_over`]) registers at once; "stop here" is [`Registration::stop`]. The
//! episode ends when the user chooses, or when no other device has been seen for two lifetimes
//! of our binding.

use super::{Goal, Phase, Registration, RequestKind};
use crate::binding::listed_contact_address;
use crate::message::NameAddr;
use crate::status::{
    BindingInfo, Cause, ExtensionInUse, InUseDetection, OtherDevice, Problem, ProblemCode,
};
use crate::timer::Timer;
use crate::{Event, Output};
use rand::Rng;
use std::time::{Duration, Instant};

/// Gaps between qualify OPTIONS outside this range are not a pace worth watching.
const QUALIFY_GAPS: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(5)..=Duration::from_secs(600);
/// A check due just before our refresh comes this long before it.
const BEFORE_REFRESH: Duration = Duration::from_secs(5);
/// An episode ends once no other device was seen for this many lifetimes of our binding.
const FREE_AFTER_LIFETIMES: u32 = 2;

/// The pace of the registrar's qualify OPTIONS to our contact.
#[derive(Debug, Default)]
pub(super) struct QualifyWatch {
    last: Option<Instant>,
    interval: Option<Duration>,
}

/// An episode of another device holding the extension.
#[derive(Debug)]
pub(super) struct InUse {
    pub info: ExtensionInUse,
    pub problem: Problem,
    last_seen: Instant,
}

/// Binding checks on this registration, and why the one in flight was sent.
#[derive(Debug)]
pub(super) struct Checks {
    /// The registrar refused a query: do not ask again on this registration.
    pub refused: bool,
    pub reason: InUseDetection,
    /// The Contact the registrar listed as ours in the last 2xx to our REGISTER (it may have
    /// rewritten it), so a query finds ours by it.
    pub listed_as_ours: Option<String>,
    pub qualify: QualifyWatch,
}

impl Default for Checks {
    fn default() -> Self {
        Self {
            refused: false,
            reason: InUseDetection::BindingCheck,
            listed_as_ours: None,
            qualify: QualifyWatch::default(),
        }
    }
}

impl Registration {
    /// The user chose this computer for the extension: register now (the other device takes
    /// it back at its next refresh unless it is signed out). Does nothing outside an episode.
    pub fn take_over(&mut self, now: Instant) {
        if self.stopping() || self.is_finished() || self.in_use.take().is_none() {
            return;
        }
        if self
            .problem
            .as_ref()
            .is_some_and(|p| p.code == ProblemCode::ExtensionInUse)
        {
            self.problem = None;
        }
        tracing::info!(account = %self.config.name, "this computer takes the extension: registering now");
        match self.phase {
            Phase::Registered => {
                self.publish(now, Cause::TakeOver);
                self.send_request(now, RequestKind::Register, false);
            }
            Phase::Failed | Phase::BackingOff { .. } => self.restart(now, Cause::TakeOver),
            // A binding check is in flight: register as soon as it is answered.
            Phase::Transacting(ref pending) if pending.kind == RequestKind::Check => {
                self.timers.stop(Timer::Refresh);
                self.publish(now, Cause::TakeOver);
            }
            // A REGISTER is already under way.
            _ => self.publish(now, Cause::TakeOver),
        }
    }

    /// Arms the next binding check, unless one is armed or checks are off.
    pub(super) fn schedule_check(&mut self, now: Instant) {
        let Some(every) = self.config.binding_check_interval else {
            return;
        };
        if self.checks.refused
            || self.goal != Goal::Maintain
            || self.timers.get(Timer::BindingCheck).is_some()
        {
            return;
        }
        let unit: f64 = self.rng.gen();
        let periodic = now + every.mul_f64(0.75 + 0.5 * unit);
        // Also look just before our own refresh: another device that took the binding since our
        // last look would get it back silently at that refresh. Not sooner than half an interval
        // after the last look, so short lifetimes do not multiply the checks.
        let before_refresh = self
            .timers
            .get(Timer::Refresh)
            .and_then(|refresh| refresh.checked_sub(BEFORE_REFRESH))
            .filter(|at| *at >= now + every / 2 && *at < periodic);
        self.timers
            .set(Timer::BindingCheck, before_refresh.unwrap_or(periodic));
    }

    /// Time to ask the registrar which bindings the extension has.
    pub(super) fn on_check_due(&mut self, now: Instant, reason: InUseDetection) {
        if matches!(self.phase, Phase::Registered)
            && self.binding.is_some()
            && !self.checks.refused
            && self.goal == Goal::Maintain
        {
            self.checks.reason = reason;
            self.send_request(now, RequestKind::Check, false);
        }
        // Otherwise a REGISTER is under way or the registration is recovering: ask next time.
        self.schedule_check(now);
    }

    /// A qualify OPTIONS from the registrar reached us.
    pub(super) fn qualify_seen(&mut self, now: Instant) {
        let watch = &mut self.checks.qualify;
        if let Some(last) = watch.last {
            let gap = now.saturating_duration_since(last);
            if QUALIFY_GAPS.contains(&gap) {
                watch.interval = Some(gap);
            }
        }
        watch.last = Some(now);
        if let Some(interval) = watch.interval.filter(|_| self.binding.is_some()) {
            // Two missed, and half a gap of slack.
            self.timers
                .set(Timer::QualifySilent, now + interval * 2 + interval / 2);
        }
    }

    /// The registrar's qualify OPTIONS stopped: it may be sending them to another device.
    pub(super) fn on_qualify_silent(&mut self, now: Instant) {
        self.checks.qualify = QualifyWatch::default();
        if matches!(self.phase, Phase::Registered) {
            tracing::info!(account = %self.config.name, "the registrar's qualify requests stopped arriving: asking which bindings the extension has");
            self.on_check_due(now, InUseDetection::QualifyStopped);
        }
    }

    /// A new flow: the pace of qualify requests is learned again on it.
    pub(super) fn forget_qualify(&mut self) {
        self.checks.qualify = QualifyWatch::default();
        self.timers.stop(Timer::QualifySilent);
    }

    /// The 2xx to our REGISTER listed these bindings (after any correction).
    pub(super) fn note_registered_listing(
        &mut self,
        now: Instant,
        listed: &[(NameAddr, BindingInfo)],
    ) {
        if let Some((contact, _)) = listed.iter().find(|(_, b)| b.ours && !b.stale) {
            self.checks.listed_as_ours = Some(contact.uri.clone());
            return;
        }
        // The registrar still lists another device instead of us, after we registered again.
        let others = other_devices(listed, None);
        if !others.is_empty() {
            self.binding_taken(now, others, InUseDetection::Registration);
        }
    }

    /// The answer to a binding check. A listing that names other devices than the last one is
    /// published even when nothing else changed: the edge proxy learns from it that the
    /// softphone also registers directly, within a check interval instead of at the next
    /// refresh.
    pub(super) fn on_checked(
        &mut self,
        now: Instant,
        listed: &[(NameAddr, BindingInfo)],
        listing_changed: bool,
    ) {
        let known = self.checks.listed_as_ours.clone();
        let is_ours = |contact: &NameAddr, b: &BindingInfo| {
            (b.ours && !b.stale) || known.as_deref() == Some(contact.uri.as_str())
        };
        let ours_listed = listed.iter().any(|(c, b)| is_ours(c, b));
        let others = other_devices(listed, known.as_deref());
        if !ours_listed && !others.is_empty() {
            self.binding_taken(now, others, self.checks.reason);
            self.after_check(now);
            return;
        }
        if !ours_listed {
            if known.is_none() {
                // The registrar lists no bindings at all: queries tell nothing here.
                self.checks.refused = true;
                self.timers.stop(Timer::BindingCheck);
                self.after_check(now);
                return;
            }
            tracing::warn!(account = %self.config.name, "the registrar no longer lists our binding: registering again");
            self.phase = Phase::Registered;
            self.publish(now, Cause::BindingLost);
            self.send_request(now, RequestKind::Register, false);
            return;
        }
        let lifetime = self.binding.as_ref().map_or(Duration::ZERO, |b| {
            Duration::from_secs(u64::from(b.granted))
        });
        if self
            .in_use
            .as_ref()
            .is_some_and(|e| now >= e.last_seen + lifetime * FREE_AFTER_LIFETIMES)
        {
            self.in_use = None;
            if self
                .problem
                .as_ref()
                .is_some_and(|p| p.code == ProblemCode::ExtensionInUse)
            {
                self.problem = None;
            }
            tracing::info!(account = %self.config.name, "no other device on the extension for a while");
            self.after_check(now);
            self.publish(now, Cause::ExtensionFree);
            return;
        }
        self.after_check(now);
        if listing_changed {
            self.publish(now, Cause::BindingsChanged);
        }
    }

    /// The registrar would not answer a binding check with a listing: `code`, `detail`.
    pub(super) fn check_unanswered(&mut self, now: Instant, code: u16, detail: &str) {
        let for_good = (400..500).contains(&code) && !matches!(code, 408 | 429 | 480);
        tracing::info!(account = %self.config.name, %detail, for_good, "the registrar did not answer the binding check");
        if for_good {
            self.checks.refused = true;
            self.timers.stop(Timer::BindingCheck);
        }
        self.after_check(now);
    }

    /// Back to waiting for the refresh; a refresh (or an expiry) that fell due while the check
    /// was in flight is done now.
    fn after_check(&mut self, now: Instant) {
        self.phase = Phase::Registered;
        if self.binding.is_none() || self.timers.get(Timer::Refresh).is_none() {
            self.send_request(now, RequestKind::Register, false);
        }
    }

    /// Another device holds the extension instead of us.
    fn binding_taken(&mut self, now: Instant, others: Vec<OtherDevice>, by: InUseDetection) {
        if let Some(episode) = self.in_use.as_mut() {
            episode.last_seen = now;
            let same = episode
                .info
                .others
                .iter()
                .map(|o| &o.contact)
                .eq(others.iter().map(|o| &o.contact));
            if !same {
                episode.info = ExtensionInUse::new(self.config.name.clone(), others, by);
                self.publish(now, Cause::ExtensionInUse);
            }
            return;
        }
        let info = ExtensionInUse::new(self.config.name.clone(), others, by);
        let contacts: Vec<&str> = info.others.iter().map(|o| o.contact.as_str()).collect();
        let problem = Problem::new(
            ProblemCode::ExtensionInUse,
            format!(
                "the registrar lists {} instead of our binding ({by:?})",
                contacts.join(", ")
            ),
        );
        tracing::warn!(account = %self.config.name, others = ?contacts, "another device took the extension's binding");
        self.problem = Some(problem.clone());
        self.in_use = Some(InUse {
            info: info.clone(),
            problem,
            last_seen: now,
        });
        self.outputs
            .push_back(Output::Event(Event::ExtensionInUse(info)));
        self.publish(now, Cause::ExtensionInUse);
    }
}

/// The listed bindings that belong to neither this installation nor our listed contact.
fn other_devices(listed: &[(NameAddr, BindingInfo)], ours: Option<&str>) -> Vec<OtherDevice> {
    listed
        .iter()
        .filter(|(c, b)| !b.ours && ours != Some(c.uri.as_str()))
        .map(|(contact, b)| OtherDevice {
            contact: b.contact.clone(),
            address: listed_contact_address(contact),
            user_agent: crate::message::param(&contact.params, "user-agent")
                .or_else(|| crate::message::param(&contact.params, "+sip.user-agent"))
                .map(|v| v.trim_matches('"').to_owned()),
            expires_in: b.expires_in,
        })
        .collect()
}
