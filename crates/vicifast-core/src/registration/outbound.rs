//! The flow our binding lives on (RFC 5626): opening it, losing it, and keeping it alive with
//! CRLF keep-alives (UDP) or CRLFCRLF pings answered by CRLF pongs (TCP/TLS, §4.4.1).

use super::attempt::Failure;
use super::pacing::FailureKind;
use super::{Phase, Registration};
use crate::binding::OurContact;
use crate::drop_log::escape;
use crate::message::Response;
use crate::status::{Cause, Problem, ProblemCode, RegistrationState};
use crate::timer::Timer;
use crate::{FlowError, FlowErrorKind, FlowId, Output, Target, Transmit};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// RFC 5626 §4.4.1: a pong must arrive within 10 s.
const PONG_WAIT: Duration = Duration::from_secs(10);

/// An open flow, and what we learned about it.
#[derive(Debug, Clone)]
pub(super) struct Flow {
    pub id: FlowId,
    pub target: Target,
    pub local: SocketAddr,
    /// The server answers keep-alive pings on this flow, so a missing pong means it failed.
    pub answers_pings: bool,
    /// Our address as the registrar sees it over this flow (Via received/rport), when it differs
    /// from ours.
    pub public: Option<SocketAddr>,
    /// Re-registrations for a NAT address or a missing binding on this flow; bounds loops.
    pub corrections: u8,
    /// The registrar granted our binding over this flow: losing it is losing the binding.
    pub carried_binding: bool,
}

impl Registration {
    /// The driver opened the flow asked for by [`Output::OpenFlow`].
    pub fn handle_flow_opened(&mut self, now: Instant, flow: FlowId, local: SocketAddr) {
        let Phase::Connecting {
            flow: connecting,
            target,
            ..
        } = &self.phase
        else {
            return;
        };
        if *connecting != flow {
            return;
        }
        let target = target.clone();
        let contact = OurContact::new(
            &self.config.user,
            local,
            target.transport,
            self.config.instance_id.as_deref(),
        );
        self.flow = Some(Flow {
            id: flow,
            target,
            local,
            answers_pings: false,
            public: None,
            corrections: 0,
            carried_binding: false,
        });
        self.replace_contact(contact);
        self.forget_qualify();
        let kind = self.first_request_kind();
        self.send_request(now, kind, false);
    }

    /// A flow could not be opened, or broke.
    pub fn handle_flow_error(&mut self, now: Instant, flow: FlowId, error: FlowError) {
        let connecting = matches!(self.phase, Phase::Connecting { flow: f, .. } if f == flow);
        let open = self.flow.as_ref().is_some_and(|f| f.id == flow);
        if !connecting && !open {
            return;
        }
        tracing::debug!(account = %self.config.name, ?error, "flow failed");
        let lost_binding = open && self.flow.as_ref().is_some_and(|f| f.carried_binding);
        if open {
            self.flow = None;
            self.server_transactions.forget_flow(flow);
        }
        let problem = Problem::new(error.kind.problem_code(), escape(&error.detail));
        if error.kind == FlowErrorKind::NetworkUnreachable && !self.stopping() {
            self.go_offline(now, Cause::NetworkChanged);
            self.outputs.push_back(Output::CheckNetwork);
            return;
        }
        match self.phase {
            Phase::Connecting { .. } | Phase::Transacting(_) => {
                self.take_pending();
                let failure = if lost_binding {
                    Failure::flow_lost(problem)
                } else {
                    Failure::of_server(problem)
                };
                self.attempt_failed(now, failure);
            }
            // A connection that drops while we wait to refresh leaves the registrar unable to
            // reach us over it: register again over a new one, as soon as the pacing rule
            // allows (quick retries when the binding had held).
            Phase::Registered => {
                self.problem = Some(problem);
                self.lose_binding();
                self.timers.stop(Timer::PongTimeout);
                self.state = RegistrationState::Registering;
                self.wait_after_failure(now, FailureKind::FlowLost, None);
                self.publish(now, Cause::FlowFailed);
            }
            _ => {}
        }
    }

    /// A keep-alive pong (CRLF) arrived on a flow.
    pub fn handle_pong(&mut self, _now: Instant, flow: FlowId) {
        if let Some(current) = self.flow.as_mut().filter(|f| f.id == flow) {
            current.answers_pings = true;
            self.timers.stop(Timer::PongTimeout);
        }
    }

    /// Closes the open flow, if any.
    pub(super) fn drop_flow(&mut self) {
        if let Some(flow) = self.flow.take() {
            self.server_transactions.forget_flow(flow.id);
            self.outputs.push_back(Output::CloseFlow { flow: flow.id });
        }
    }

    /// Closes the open flow and the one being opened, if any.
    pub(super) fn drop_flows(&mut self) {
        if let Phase::Connecting { flow, .. } = self.phase {
            self.outputs.push_back(Output::CloseFlow { flow });
        }
        self.drop_flow();
    }

    /// Our binding now lives on the open flow: keep it alive, and learn whether the registrar
    /// answers pings (it supports outbound).
    pub(super) fn flow_registered(&mut self, now: Instant, resp: &Response) {
        let supports_outbound = resp
            .headers
            .get_all("require")
            .chain(resp.headers.get_all("supported"))
            .any(|v| v.to_ascii_lowercase().contains("outbound"));
        let Some(flow) = self.flow.as_mut() else {
            return;
        };
        flow.carried_binding = true;
        if supports_outbound {
            flow.answers_pings = true;
        }
        let interval = self.config.keepalive_interval(flow.target.transport);
        if self.timers.get(Timer::KeepAlive).is_none() {
            self.timers.set(Timer::KeepAlive, now + interval);
        }
    }

    pub(super) fn send_keepalive(&mut self, now: Instant) {
        let Some(flow) = self.flow.clone() else {
            return;
        };
        let transport = flow.target.transport;
        if matches!(self.phase, Phase::Registered) {
            // RFC 5626 §4.4.1: CRLFCRLF; on streams the server answers CRLF.
            self.outputs.push_back(Output::Transmit(Transmit {
                flow: flow.id,
                destination: flow.target.addr,
                payload: b"\r\n\r\n".to_vec(),
            }));
            if transport.is_reliable() && flow.answers_pings {
                self.timers.set(Timer::PongTimeout, now + PONG_WAIT);
            }
            self.outputs.push_back(Output::CheckNetwork);
        }
        self.timers.set(
            Timer::KeepAlive,
            now + self.config.keepalive_interval(transport),
        );
    }

    pub(super) fn on_pong_timeout(&mut self, now: Instant) {
        if let Some(flow) = self.flow.as_ref().map(|f| f.id) {
            self.outputs.push_back(Output::CloseFlow { flow });
            self.handle_flow_error(
                now,
                flow,
                FlowError {
                    kind: FlowErrorKind::Closed,
                    detail: "no answer to the keep-alive ping within 10 s".into(),
                },
            );
        }
    }
}

impl FlowErrorKind {
    fn problem_code(self) -> ProblemCode {
        match self {
            FlowErrorKind::Refused => ProblemCode::ConnectionRefused,
            FlowErrorKind::TlsCertificate => ProblemCode::TlsCertificate,
            FlowErrorKind::NetworkUnreachable => ProblemCode::NetworkDown,
            FlowErrorKind::Closed | FlowErrorKind::Other => ProblemCode::TransportError,
        }
    }
}
