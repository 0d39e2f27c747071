//! Audit: what the registrar's list of bindings says about ours. A 2xx that does not list the
//! binding we keep is corrected by registering again; one that lists an old binding of this
//! installation (left by a crash or a network change) has it removed.
//!
//! A 403 is ambiguous: a wrong password (Asterisk's chan_sip with `alwaysauthreject`), a
//! registrar that keeps one contact per extension and still holds our binding from before a
//! crash (res_pjsip `max_contacts=1`, `remove_existing=no`), or a real refusal. With an instance
//! id, a 403 to our REGISTER is followed by one query (a REGISTER without Contact): a binding of
//! ours elsewhere is removed in the next REGISTER; credentials refused by the query are the
//! password; credentials it accepted make the 403 a refusal of this contact.
//!
//! Finding another device that took the extension (`in_use`) reads the same listings.

use super::{Registration, RequestKind};
use crate::binding::listed_contact_address;
use crate::drop_log::escape;
use crate::message::NameAddr;
use crate::status::{BindingInfo, Cause, Problem, ProblemCode};
use std::time::Instant;

/// What a 2xx's listing of the bindings asks us to correct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ListingFix {
    /// Our binding is not listed: register again.
    Missing,
    /// These old bindings of ours are: remove them.
    Stale(Vec<String>),
}

/// What a refused request carried.
#[derive(Debug, Clone, Copy)]
pub(super) struct Refused {
    pub answered_challenge: bool,
    pub carried_credentials: bool,
}

impl Registration {
    /// What the listing in a 2xx to our REGISTER asks us to correct, if anything.
    pub(super) fn listing_correction(
        &self,
        listed: &[(NameAddr, BindingInfo)],
    ) -> Option<ListingFix> {
        if !listed.is_empty() && !listed.iter().any(|(_, b)| b.ours && !b.stale) {
            return Some(ListingFix::Missing);
        }
        let stale = stale_bindings(listed);
        (!stale.is_empty()).then_some(ListingFix::Stale(stale))
    }

    pub(super) fn correct_listing(&mut self, now: Instant, fix: ListingFix) {
        match fix {
            ListingFix::Missing => {
                tracing::warn!(account = %self.config.name, "registrar did not list our binding: registering again");
                self.publish(now, Cause::BindingLost);
            }
            ListingFix::Stale(stale) => {
                tracing::info!(account = %self.config.name, ?stale, "registrar still holds an old binding of ours: removing it");
                for uri in stale {
                    self.remember_stale(uri);
                }
            }
        }
        self.send_request(now, RequestKind::Register, false);
    }

    /// A 403 answered a request of `kind`.
    pub(super) fn on_forbidden(
        &mut self,
        now: Instant,
        kind: RequestKind,
        refused: Refused,
        detail: String,
    ) {
        match kind {
            RequestKind::Register
                if self.config.instance_id.is_some() && !self.retries.probed_refusal =>
            {
                self.retries.probed_refusal = true;
                tracing::info!(account = %self.config.name, %detail, "REGISTER refused: asking the registrar which bindings it holds");
                self.send_request(now, RequestKind::Probe, false);
            }
            RequestKind::Probe if refused.carried_credentials && !self.auth.accepted => {
                self.fail(now, Problem::credentials_refused(detail));
            }
            _ if refused.answered_challenge && !self.auth.accepted => {
                self.fail(now, Problem::credentials_refused(detail));
            }
            _ => self.fail(now, Problem::new(ProblemCode::Forbidden, detail)),
        }
    }

    /// The bindings the registrar holds, asked for after it refused our REGISTER: a binding of
    /// ours from before is removed in the next REGISTER; anything else is a refusal of this
    /// contact.
    pub(super) fn on_probed(&mut self, now: Instant, listed: &[(NameAddr, BindingInfo)]) {
        let stale = stale_bindings(listed);
        if stale.is_empty() {
            let others = listed.len();
            // Name them: a registrar keeping one contact per extension (res_pjsip
            // `max_contacts=1`, `remove_existing=no`) refuses us while another device holds it.
            let where_: Vec<String> = listed
                .iter()
                .map(|(c, b)| listed_contact_address(c).unwrap_or_else(|| b.contact.clone()))
                .collect();
            self.fail(
                now,
                Problem::new(
                    ProblemCode::Forbidden,
                    format!(
                        "403 to our REGISTER, though the registrar accepts our credentials; it \
                         holds {others} other binding(s) for the extension ({})",
                        escape(&where_.join(", "))
                    ),
                ),
            );
            return;
        }
        tracing::info!(account = %self.config.name, ?stale, "the registrar holds our own binding from before: removing it");
        for uri in stale {
            self.remember_stale(uri);
        }
        self.publish(now, Cause::BindingLost);
        self.send_request(now, RequestKind::Register, false);
    }
}

fn stale_bindings(listed: &[(NameAddr, BindingInfo)]) -> Vec<String> {
    listed
        .iter()
        .filter(|(_, b)| b.stale)
        .map(|(c, _)| c.uri.clone())
        .collect()
}
