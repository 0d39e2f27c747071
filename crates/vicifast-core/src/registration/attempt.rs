//! One attempt: resolve the next hop (RFC 3263), take its targets in order, open a flow to one
//! (or reuse the open one), send the first request. A failure that may pass moves on to the next
//! target, then backs off (RFC 5626 §4.5); a failure only the user can fix stops everything.

use super::pacing::{Backoff, ConnectionPermit, FailureKind};
use super::{Goal, Phase, Registration, RequestKind, Resume, WaitCause};
use crate::status::{Cause, Problem, ProblemCode, RegistrationState};
use crate::timer::TimerTable;
use crate::{Event, FlowId, Output, Target};
use rand::Rng;
use std::time::{Duration, Instant};

/// The targets the last resolution gave, and the one in use.
#[derive(Debug, Default)]
pub(super) struct Targets {
    list: Vec<Target>,
    index: usize,
    /// A target's TLS certificate did not verify: unless another target works, that needs the
    /// user, not another try.
    certificate_failure: Option<Problem>,
}

impl Targets {
    fn current(&self) -> Option<&Target> {
        self.list.get(self.index)
    }

    /// Moves to the next target, if there is one.
    fn advance(&mut self) -> bool {
        if self.index + 1 < self.list.len() {
            self.index += 1;
            true
        } else {
            false
        }
    }
}

/// Why an attempt did not succeed, and what may be tried next.
#[derive(Debug)]
pub(super) struct Failure {
    pub problem: Problem,
    /// Another resolved target may do better (the failure was about this server).
    pub try_next_target: bool,
    /// The registrar asked us to wait this long (Retry-After).
    pub retry_after: Option<Duration>,
    pub kind: FailureKind,
}

impl Failure {
    /// A failure of this server: the next target may do better.
    pub fn of_server(problem: Problem) -> Self {
        Self {
            problem,
            try_next_target: true,
            retry_after: None,
            kind: FailureKind::Other,
        }
    }

    /// The flow that carried our binding broke.
    pub fn flow_lost(problem: Problem) -> Self {
        Self {
            kind: FailureKind::FlowLost,
            ..Self::of_server(problem)
        }
    }

    /// A failure the next target would most likely share.
    pub fn of_attempt(problem: Problem) -> Self {
        Self {
            try_next_target: false,
            ..Self::of_server(problem)
        }
    }

    pub fn retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }
}

impl Registration {
    /// The request that opens an exchange on a new flow for the current goal.
    pub(super) fn first_request_kind(&self) -> RequestKind {
        match self.goal {
            Goal::Maintain => RequestKind::Register,
            Goal::Unregister => RequestKind::Unregister,
            Goal::ListBindings | Goal::RemoveLocal => RequestKind::Query,
        }
    }

    /// Resolves the next hop afresh and starts over from its first target.
    pub(super) fn begin_attempt(&mut self, now: Instant) {
        // The one check that holds whoever built the config: nothing unvalidated reaches the
        // wire (a line break in a user name would add a header line to the REGISTER).
        if let Err(err) = self.config.validate() {
            self.fail(
                now,
                Problem::new(ProblemCode::InvalidSettings, err.to_string()),
            );
            return;
        }
        self.phase = Phase::Resolving;
        self.outputs.push_back(Output::Resolve {
            server: self.config.next_hop().clone(),
            transport: self.config.transport,
        });
    }

    /// The driver's answer to [`Output::Resolve`].
    pub fn handle_resolved(&mut self, now: Instant, result: Result<Vec<Target>, String>) {
        if !matches!(self.phase, Phase::Resolving) {
            return;
        }
        match result {
            Ok(targets) if !targets.is_empty() => {
                self.targets = Targets {
                    list: targets,
                    index: 0,
                    certificate_failure: None,
                };
                self.use_target(now);
            }
            Ok(_) => self.attempt_failed(
                now,
                Failure::of_attempt(Problem::new(ProblemCode::DnsFailure, "no address records")),
            ),
            Err(detail) => self.attempt_failed(
                now,
                Failure::of_attempt(Problem::new(ProblemCode::DnsFailure, detail)),
            ),
        }
    }

    /// Talks to the current target, reusing the open flow when it already goes there.
    fn use_target(&mut self, now: Instant) {
        let Some(target) = self.targets.current().cloned() else {
            return;
        };
        if let Some(flow) = &self.flow {
            if flow.target == target {
                let kind = self.first_request_kind();
                self.send_request(now, kind, false);
                return;
            }
        }
        self.drop_flow();
        match self.pacer.admit_connection(now) {
            Ok(permit) => self.open_flow(now, permit, target),
            Err(until) => self.hold(now, until, Resume::Attempt),
        }
    }

    /// Asks the driver for a new flow to `target`: the one place that does.
    fn open_flow(&mut self, now: Instant, _permit: ConnectionPermit, target: Target) {
        self.next_flow_id += 1;
        let flow = FlowId(self.next_flow_id);
        self.phase = Phase::Connecting {
            flow,
            target: target.clone(),
            deadline: now + self.config.timers.t1 * 64,
        };
        self.outputs.push_back(Output::OpenFlow { flow, target });
    }

    /// Opening the flow took too long.
    pub(super) fn on_connect_timeout(&mut self, now: Instant) {
        if let Phase::Connecting { flow, .. } = self.phase {
            self.outputs.push_back(Output::CloseFlow { flow });
            self.attempt_failed(
                now,
                Failure::of_server(Problem::new(
                    ProblemCode::Timeout,
                    "connecting to the server timed out",
                )),
            );
        }
    }

    /// A failure that may pass: the next target if allowed, else an immediate retry while the
    /// binding still holds, else backoff.
    pub(super) fn attempt_failed(&mut self, now: Instant, failure: Failure) {
        if self.stopping() {
            self.finish(now, RegistrationState::Unregistered, Cause::Unregistered);
            return;
        }
        if failure.problem.code == ProblemCode::TlsCertificate {
            self.targets
                .certificate_failure
                .get_or_insert_with(|| failure.problem.clone());
        }
        if failure.try_next_target && self.targets.advance() {
            tracing::info!(account = %self.config.name, problem = %failure.problem, "trying the next server address");
            self.use_target(now);
            return;
        }
        // Trying again would meet the same certificate: that is for the user to look at (or a
        // settings change), not for the backoff.
        if let Some(problem) = self.targets.certificate_failure.take() {
            self.fail(now, problem);
            return;
        }
        if self.goal.is_one_shot() {
            self.fail(now, failure.problem);
            return;
        }
        self.problem = Some(failure.problem);
        let binding_valid = self.binding.as_ref().is_some_and(|b| b.expires_at > now);
        if let Some(binding) = self
            .binding
            .as_mut()
            .filter(|b| !b.retried && binding_valid)
        {
            binding.retried = true;
            self.publish(now, Cause::RefreshFailed);
            self.begin_attempt(now);
            return;
        }
        self.wait_after_failure(now, failure.kind, failure.retry_after);
        if !binding_valid {
            self.state = RegistrationState::Retrying;
        }
        self.publish(now, Cause::RetryScheduled);
    }

    /// Backs off as the pacing rule says after a failure of `kind`.
    pub(super) fn wait_after_failure(
        &mut self,
        now: Instant,
        kind: FailureKind,
        retry_after: Option<Duration>,
    ) {
        let unit: f64 = self.rng.gen();
        let schedule = Backoff {
            base: self.config.backoff_base,
            cap: self.config.backoff_cap,
        };
        let retry_at = self
            .pacer
            .on_failure(now, kind, unit, schedule, retry_after);
        self.phase = Phase::BackingOff {
            until: retry_at,
            cause: WaitCause::Failure,
            then: Resume::Attempt,
        };
    }

    /// The REGISTER or connection ceiling says not before `until`: wait, then do `then`.
    pub(super) fn hold(&mut self, now: Instant, until: Instant, then: Resume) {
        tracing::warn!(
            account = %self.config.name,
            wait_ms = until.saturating_duration_since(now).as_millis() as u64,
            "REGISTER or connection ceiling reached: waiting"
        );
        self.phase = Phase::BackingOff {
            until,
            cause: WaitCause::Ceiling,
            then,
        };
        if self.state != RegistrationState::Registered {
            self.publish(now, Cause::RetryScheduled);
        }
    }

    /// A wait in [`Phase::BackingOff`] is over: do what it was for.
    pub(super) fn wait_over(&mut self, now: Instant) {
        let Phase::BackingOff { then, .. } = std::mem::replace(&mut self.phase, Phase::Resolving)
        else {
            return;
        };
        self.pacer.wait_over();
        match then {
            Resume::Send {
                kind,
                answers_challenge,
            } if self.flow.is_some() => self.send_request(now, kind, answers_challenge),
            Resume::Send { .. } | Resume::Attempt => self.begin_attempt(now),
        }
    }

    /// A failure only the user can fix: stop trying.
    pub(super) fn fail(&mut self, now: Instant, problem: Problem) {
        if self.stopping() {
            self.finish(now, RegistrationState::Unregistered, Cause::Unregistered);
            return;
        }
        tracing::warn!(account = %self.config.name, %problem, "registration failed");
        self.problem = Some(problem);
        self.clear_timers();
        self.binding = None;
        self.phase = Phase::Failed;
        self.state = RegistrationState::Failed;
        self.publish(now, Cause::Failed);
        if self.goal.is_one_shot() {
            self.phase = Phase::Finished;
            self.outputs.push_back(Output::Event(Event::Finished));
        }
    }

    /// Starts over now, on the user's word (new password, "try again").
    pub(super) fn restart(&mut self, now: Instant, cause: Cause) {
        self.pacer.user_retry();
        self.problem = None;
        self.state = if self.binding.is_some() {
            RegistrationState::Registered
        } else {
            RegistrationState::Registering
        };
        self.publish(now, cause);
        self.begin_attempt(now);
    }

    pub(super) fn finish(&mut self, now: Instant, state: RegistrationState, cause: Cause) {
        self.timers = TimerTable::default();
        // Nothing will wake us again: the drops held back so far are summarised now.
        if let Some(summary) = self.drops.flush(now + self.drops.interval()) {
            tracing::warn!(account = %self.config.name, "{summary}");
        }
        self.phase = Phase::Finished;
        self.state = state;
        if state == RegistrationState::Unregistered {
            self.binding = None;
        }
        self.publish(now, cause);
        if let Some(flow) = self.flow.take() {
            self.outputs.push_back(Output::CloseFlow { flow: flow.id });
        }
        self.outputs.push_back(Output::Event(Event::Finished));
    }
}
