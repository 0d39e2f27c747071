//! Relaying: what the edge proxy does with each request, response and timer. The rules are in
//! the module documentation of [`super`]; the transaction states in [`super::transaction`].

use super::calls::CallDirection;
use super::editable::EditableMessage;
use super::health::{ProbeDue, SoftphoneState};
use super::registrar::BindingChange;
use super::routing::{
    branch_leg, decrement_max_forwards, derive_branch, mark_received, record_route,
    strip_own_routes, via_value, Leg,
};
use super::sdp::rewrite_media_addresses;
use super::transaction::{
    Cancel, ClientState, Downstream, Due, Key, Peer, RelayTransaction, Upstream,
};
use super::{EdgeEvent, EdgeOutput, EdgeProxy, FromPbx, LocalPeer, LocalTransmit};
use crate::message::{self, NameAddr, UriParts};
use crate::status::{Direction, IncomingCall, TraceEntry, Transport};
use crate::{FlowId, Transmit};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE, PRACK, REFER, SUBSCRIBE, NOTIFY, MESSAGE";

impl EdgeProxy {
    // ---- arrivals ----

    /// A message (a UDP datagram, or one framed from a TCP connection) arrived at the listener.
    pub fn handle_softphone_receive(&mut self, now: Instant, source: LocalPeer, data: &[u8]) {
        if !source.addr.ip().is_loopback() {
            tracing::debug!(account = %self.account, remote = %source.addr, "message to the softphone listener from another computer dropped");
            return;
        }
        if data.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            // RFC 5626 §4.4.1 keep-alive: a ping on a stream gets a pong.
            if source.transport.is_reliable() && data.len() >= 4 {
                self.outputs
                    .push_back(EdgeOutput::ToSoftphone(LocalTransmit {
                        peer: source,
                        payload: b"\r\n".to_vec(),
                    }));
            }
            return;
        }
        let message = match EditableMessage::parse(data) {
            Ok(m) => m,
            Err(err) => {
                tracing::debug!(account = %self.account, %err, "malformed message from the softphone dropped");
                return;
            }
        };
        self.trace(Direction::Received, source.addr, source.transport, data);
        if message.code().is_some() {
            self.on_response(now, Leg::Softphone, message);
        } else {
            let upstream = Upstream {
                leg: Leg::Softphone,
                peer: Peer::Softphone(source),
                reliable: source.transport.is_reliable(),
            };
            self.on_request(now, upstream, source.addr, message);
        }
    }

    /// A message arrived on a flow of the registration. See [`FromPbx`].
    pub fn handle_pbx_receive(
        &mut self,
        now: Instant,
        flow: FlowId,
        remote: SocketAddr,
        data: &[u8],
    ) -> FromPbx {
        let Some(current) = self.flow.filter(|f| f.flow == flow) else {
            return FromPbx::ForRegistration;
        };
        if !current.transport.is_reliable() && remote != current.remote {
            return FromPbx::ForRegistration;
        }
        let Ok(message) = EditableMessage::parse(data) else {
            return FromPbx::ForRegistration;
        };
        if message.code().is_some() {
            let leg = message
                .top_via()
                .and_then(|v| v.branch().and_then(branch_leg));
            if leg != Some(Leg::Pbx) {
                return FromPbx::ForRegistration;
            }
            self.trace(Direction::Received, remote, current.transport, data);
            self.on_response(now, Leg::Pbx, message);
            return FromPbx::Handled;
        }
        if !message.has_transaction_fields() || self.is_for_registration(&message) {
            return FromPbx::ForRegistration;
        }
        self.trace(Direction::Received, remote, current.transport, data);
        let upstream = Upstream {
            leg: Leg::Pbx,
            peer: Peer::Pbx,
            reliable: current.transport.is_reliable(),
        };
        self.on_request(now, upstream, remote, message);
        FromPbx::Handled
    }

    /// REGISTER, and the registrar's qualify: an out-of-dialog OPTIONS whose To names the
    /// Request-URI or an address of this computer.
    fn is_for_registration(&self, request: &EditableMessage) -> bool {
        if request.is_method("REGISTER") {
            return true;
        }
        if !request.is_method("OPTIONS") || request.in_dialog() {
            return false;
        }
        let to = request
            .get("to")
            .and_then(NameAddr::parse)
            .and_then(|t| UriParts::parse(&t.uri));
        let target = request.uri().and_then(UriParts::parse);
        let (Some(to), Some(target)) = (to, target) else {
            return true;
        };
        let same_point = to.user == target.user
            && to.host == target.host
            && to.port.unwrap_or(5060) == target.port.unwrap_or(5060);
        let here = to
            .host
            .parse::<IpAddr>()
            .is_ok_and(|ip| self.this_computer().contains(&ip));
        same_point || here
    }

    // ---- requests ----

    fn on_request(
        &mut self,
        now: Instant,
        upstream: Upstream,
        source: SocketAddr,
        mut request: EditableMessage,
    ) {
        if !request.has_transaction_fields() {
            tracing::debug!(account = %self.account, "request without Via, From, To, Call-ID or CSeq dropped");
            return;
        }
        mark_received(&mut request, source);
        let method = request.method().unwrap_or_default().to_ascii_uppercase();
        let Some(branch) = derive_branch(&self.secret, upstream.leg.other(), &request) else {
            return;
        };
        if request.in_dialog() {
            self.calls.request_in_dialog(now, &request);
            if upstream.leg == Leg::Softphone && carries_sdp(&request) {
                if let Some(flow) = self.flow {
                    self.calls.softphone_sent_media(&request, &flow);
                }
            }
        }
        match method.as_str() {
            "ACK" => return self.on_ack(upstream, branch, request),
            "CANCEL" => return self.on_cancel(now, upstream, branch, request),
            _ => {}
        }
        let key: Key = (branch, method == "INVITE");
        if let Some(tx) = self.transactions.entries.get(&key) {
            if let Some(bytes) = tx.last_response.clone() {
                let peer = tx.upstream;
                self.send(peer, bytes);
            }
            return;
        }
        if self.transactions.is_full() {
            tracing::warn!(account = %self.account, %method, "too many transactions in progress: request refused");
            let tag = self.token();
            let mut busy =
                EditableMessage::response_to(&request, 503, "Service Unavailable", Some(&tag));
            busy.append("retry-after", "5");
            self.send(upstream.peer, busy.to_bytes());
            return;
        }
        let in_dialog = request.in_dialog();
        match upstream.leg {
            Leg::Softphone => {
                if method == "REGISTER" {
                    return self.on_register(now, upstream, key, request);
                }
                let Peer::Softphone(peer) = upstream.peer else {
                    return;
                };
                if !in_dialog && !self.accepts_from(&peer) {
                    return self.answer(
                        now,
                        upstream,
                        key,
                        &request,
                        403,
                        "Register With VICIfast First",
                        &[],
                    );
                }
                if method == "OPTIONS" && !in_dialog && self.names_listener(request.uri()) {
                    let extra = [("allow", ALLOW), ("accept", "application/sdp")];
                    return self.answer(now, upstream, key, &request, 200, "OK", &extra);
                }
            }
            Leg::Pbx if method == "INVITE" && !in_dialog => {
                let call = IncomingCall {
                    account: self.account.clone(),
                    from: request
                        .get("from")
                        .and_then(NameAddr::parse)
                        .map(|f| f.uri)
                        .unwrap_or_default(),
                    call_id: request.call_id().unwrap_or_default().to_owned(),
                };
                let refusal = match self.softphone_path() {
                    None => Some("softphone not registered with VICIfast"),
                    Some(_) if !self.state.takes_calls() => Some("softphone not answering"),
                    Some(_) => None,
                };
                if let Some(reason) = refusal {
                    tracing::warn!(account = %self.account, from = %call.from, reason, "incoming call refused");
                    self.refuse_call(now, upstream, key, &request, reason);
                    self.outputs
                        .push_back(EdgeOutput::Event(EdgeEvent::CallRefused {
                            call,
                            reason: reason.to_owned(),
                        }));
                    return;
                }
                self.relay(now, upstream, key, request, Some(call));
                self.start_check(now);
                return;
            }
            Leg::Pbx => {}
        }
        self.relay(now, upstream, key, request, None);
    }

    fn on_register(
        &mut self,
        now: Instant,
        upstream: Upstream,
        key: Key,
        request: EditableMessage,
    ) {
        let Peer::Softphone(source) = upstream.peer else {
            return;
        };
        let outcome = self.registrar.handle(
            now,
            &mut self.rng,
            &request,
            source,
            &self.identity,
            &self.config,
        );
        let code = outcome.response.code().unwrap_or(500);
        self.answer_with(now, upstream, key, &request, outcome.response);
        match outcome.change {
            BindingChange::None => {}
            BindingChange::Bound => {
                let user_agent = self
                    .registrar
                    .binding
                    .as_ref()
                    .and_then(|b| b.user_agent.clone());
                if user_agent.is_some() {
                    self.user_agent = user_agent;
                }
                self.problem = None;
                self.checks.probe = None;
                self.checks.next_check = Some(now + self.config.check_interval);
                self.set_state(now, SoftphoneState::Answering);
            }
            BindingChange::Removed => self.binding_gone(now),
            BindingChange::Refused(problem) => {
                tracing::warn!(account = %self.account, code, problem = %problem.detail, "softphone REGISTER refused");
                self.problem = Some(problem);
                self.publish(now);
            }
        }
    }

    /// The softphone's registration ended: fall back to the fixed contact, if any.
    pub(super) fn binding_gone(&mut self, now: Instant) {
        self.checks.probe = None;
        if self.config.fixed_contact.is_some() {
            self.checks.next_check = Some(now);
            self.set_state(now, SoftphoneState::Checking);
        } else {
            self.checks.next_check = None;
            self.set_state(now, SoftphoneState::NotRegistered);
        }
    }

    /// Out-of-dialog requests are taken from the registered softphone's path only (from any
    /// loopback source when a softphone without registration is configured).
    fn accepts_from(&self, source: &LocalPeer) -> bool {
        match &self.registrar.binding {
            Some(binding) => {
                let same_connection = binding.peer.connection.is_some()
                    && binding.peer.connection == source.connection;
                binding.peer.transport == source.transport
                    && (same_connection
                        || binding.peer.addr == source.addr
                        || binding.contact_addr == Some(source.addr))
            }
            None => self.config.fixed_contact.is_some(),
        }
    }

    fn names_listener(&self, uri: Option<&str>) -> bool {
        uri.and_then(UriParts::parse).is_some_and(|u| {
            u.host.parse::<IpAddr>().ok() == Some(self.config.listen.ip())
                && u.port.unwrap_or(5060) == self.config.listen.port()
        })
    }

    fn on_ack(&mut self, upstream: Upstream, branch: String, request: EditableMessage) {
        if let Some(tx) = self.transactions.entries.get_mut(&(branch.clone(), true)) {
            if tx.from == upstream.leg && tx.final_code.is_some_and(|c| c >= 300) {
                // Hop by hop (RFC 3261 §17.2.1): ours, or already sent downstream by us.
                tx.final_retransmit = None;
                return;
            }
        }
        // The ACK for a 2xx is a request of its own, relayed without a transaction.
        self.forward_statelessly(upstream.leg, branch, request);
    }

    fn on_cancel(
        &mut self,
        now: Instant,
        upstream: Upstream,
        branch: String,
        request: EditableMessage,
    ) {
        let key = (branch.clone(), true);
        let Some(tx) = self
            .transactions
            .entries
            .get(&key)
            .filter(|tx| tx.from == upstream.leg)
        else {
            // RFC 3261 §16.10: no context, forward it; our derived branch still finds the INVITE.
            self.forward_statelessly(upstream.leg, branch, request);
            return;
        };
        let pending = tx.final_code.is_none();
        let tag = self.token();
        let ok = EditableMessage::response_to(&request, 200, "OK", Some(&tag));
        self.send(upstream.peer, ok.to_bytes());
        if pending {
            self.cancel_downstream(now, &key);
        }
    }

    /// Sends a request on without a transaction: ACK for a 2xx, CANCEL with no context.
    fn forward_statelessly(&mut self, from: Leg, branch: String, mut request: EditableMessage) {
        if decrement_max_forwards(&mut request).is_err() {
            return;
        }
        strip_own_routes(&mut request, self.config.listen);
        let Some((peer, sent_by, transport)) = self.next_hop(from.other()) else {
            tracing::debug!(account = %self.account, "nowhere to relay to: request dropped");
            return;
        };
        match from {
            Leg::Softphone => self.rewrite_sdp(&mut request),
            // A CANCEL must name what its INVITE was relayed to.
            Leg::Pbx if !request.in_dialog() => {
                if let Some((_, contact)) = self.softphone_path() {
                    request.set_uri(&contact);
                }
            }
            Leg::Pbx => {}
        }
        request.push_top("via", via_value(transport, sent_by, &branch));
        self.send(peer, request.to_bytes());
    }

    /// Where requests toward `leg` go, the address our Via names there, and the transport.
    fn next_hop(&self, leg: Leg) -> Option<(Peer, SocketAddr, Transport)> {
        match leg {
            Leg::Pbx => self
                .flow
                .map(|flow| (Peer::Pbx, flow.local, flow.transport)),
            Leg::Softphone => self
                .softphone_path()
                .map(|(peer, _)| (Peer::Softphone(peer), self.config.listen, peer.transport)),
        }
    }

    /// Relays a request to the other leg, with a transaction.
    fn relay(
        &mut self,
        now: Instant,
        upstream: Upstream,
        key: Key,
        received: EditableMessage,
        call: Option<IncomingCall>,
    ) {
        let mut request = received.clone();
        if decrement_max_forwards(&mut request).is_err() {
            return self.answer(now, upstream, key, &received, 483, "Too Many Hops", &[]);
        }
        strip_own_routes(&mut request, self.config.listen);
        let to = upstream.leg.other();
        let Some((peer, sent_by, transport)) = self.next_hop(to) else {
            return match to {
                Leg::Pbx => self.answer(
                    now,
                    upstream,
                    key,
                    &received,
                    503,
                    "No Connection To Phone Server",
                    &[],
                ),
                Leg::Softphone => self.refuse_call(
                    now,
                    upstream,
                    key,
                    &received,
                    "softphone not registered with VICIfast",
                ),
            };
        };
        if to == Leg::Softphone && !request.in_dialog() {
            if let Some((_, contact)) = self.softphone_path() {
                request.set_uri(&contact);
            }
        }
        let creates_dialog = !request.in_dialog()
            && ["INVITE", "SUBSCRIBE", "REFER"]
                .iter()
                .any(|m| request.is_method(m));
        if let (true, Some(flow)) = (creates_dialog, self.flow) {
            let softphone_transport = match (upstream.peer, peer) {
                (Peer::Softphone(p), _) | (_, Peer::Softphone(p)) => p.transport,
                _ => Transport::Udp,
            };
            let toward_pbx = record_route(flow.reachable_at(), flow.transport);
            let toward_softphone = record_route(self.config.listen, softphone_transport);
            // RFC 5658: the entry for the side the request goes to on top.
            let (lower, upper) = match to {
                Leg::Softphone => (toward_pbx, toward_softphone),
                Leg::Pbx => (toward_softphone, toward_pbx),
            };
            request.push_top("record-route", lower);
            request.push_top("record-route", upper);
        }
        if to == Leg::Pbx {
            self.rewrite_sdp(&mut request);
        }
        request.push_top("via", via_value(transport, sent_by, &key.0));
        let bytes = request.to_bytes();
        let invite = key.1;
        let timers = self.config.timers;
        let reliable = transport.is_reliable();
        let downstream = Downstream::new(now, peer, request, bytes.clone(), reliable, timers);
        let mut tx =
            RelayTransaction::new(invite, upstream, received, Some(downstream), call.clone());
        if invite {
            // RFC 3261 §16.2: a stateful proxy answers 100 to an INVITE at once.
            let trying = EditableMessage::response_to(&tx.request, 100, "Trying", None).to_bytes();
            tx.last_response = Some(trying.clone());
            self.send(upstream.peer, trying);
        }
        self.transactions.entries.insert(key, tx);
        self.send(peer, bytes);
        if let Some(call) = call {
            tracing::info!(account = %self.account, from = %call.from, "incoming call relayed to the softphone");
            self.outputs
                .push_back(EdgeOutput::Event(EdgeEvent::IncomingCall(call)));
        }
    }

    /// Answers a request ourselves.
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &mut self,
        now: Instant,
        upstream: Upstream,
        key: Key,
        request: &EditableMessage,
        code: u16,
        reason: &str,
        extra: &[(&str, &str)],
    ) {
        let tag = self.token();
        let mut response = EditableMessage::response_to(request, code, reason, Some(&tag));
        for (name, value) in extra {
            response.append(name, *value);
        }
        self.answer_with(now, upstream, key, request, response);
    }

    /// 480 with a Reason saying why the softphone cannot take the call.
    fn refuse_call(
        &mut self,
        now: Instant,
        upstream: Upstream,
        key: Key,
        request: &EditableMessage,
        why: &str,
    ) {
        let reason = format!("SIP;cause=480;text=\"{why}\"");
        self.answer(
            now,
            upstream,
            key,
            request,
            480,
            "Temporarily Unavailable",
            &[("reason", &reason)],
        );
    }

    /// Sends our response and keeps it for retransmissions (and Timer G on an INVITE).
    fn answer_with(
        &mut self,
        now: Instant,
        upstream: Upstream,
        key: Key,
        request: &EditableMessage,
        response: EditableMessage,
    ) {
        let code = response.code().unwrap_or(500);
        let bytes = response.to_bytes();
        let tx = RelayTransaction::answered(
            now,
            key.1,
            upstream,
            request.clone(),
            code,
            bytes.clone(),
            self.config.timers,
        );
        if !self.transactions.is_full() {
            self.transactions.entries.insert(key, tx);
        }
        self.send(upstream.peer, bytes);
    }

    /// Ends a relayed transaction with a final response of ours (timeouts, softphone gone).
    fn finish_ourselves(
        &mut self,
        now: Instant,
        key: &Key,
        code: u16,
        reason: &str,
        extra: &[(&str, String)],
    ) {
        let timers = self.config.timers;
        let tag = self.token();
        let Some(tx) = self.transactions.entries.get_mut(key) else {
            return;
        };
        if tx.final_code.is_some() {
            return;
        }
        let mut response = EditableMessage::response_to(&tx.request, code, reason, Some(&tag));
        for (name, value) in extra {
            response.append(name, value.clone());
        }
        let bytes = response.to_bytes();
        tx.complete(now, code, bytes.clone(), true, timers);
        let peer = tx.upstream;
        self.send(peer, bytes);
    }

    /// CANCELs a relayed INVITE downstream: now if a provisional response allows it, else as
    /// soon as one comes.
    fn cancel_downstream(&mut self, now: Instant, key: &Key) {
        let timers = self.config.timers;
        let Some(down) = self
            .transactions
            .entries
            .get_mut(key)
            .and_then(|tx| tx.downstream.as_mut())
        else {
            return;
        };
        if down.cancel != Cancel::None {
            return;
        }
        match down.state {
            ClientState::Calling => down.cancel = Cancel::Wanted,
            ClientState::Proceeding => {
                let bytes = build_cancel(&down.forwarded);
                down.cancel = Cancel::Sent {
                    bytes: bytes.clone(),
                    retransmit: (!down.reliable).then(|| (now + timers.t1, timers.t1)),
                    until: now + timers.t1 * 64,
                };
                let peer = down.peer;
                self.send(peer, bytes);
            }
            ClientState::Completed => {}
        }
    }

    /// The softphone stopped answering: every call still ringing toward it ends now.
    pub(super) fn refuse_pending_calls(&mut self, now: Instant, state: SoftphoneState) {
        let why = if state == SoftphoneState::NotRegistered {
            "softphone not registered with VICIfast"
        } else {
            "softphone not answering"
        };
        let ringing: Vec<(Key, IncomingCall)> = self
            .transactions
            .entries
            .iter()
            .filter(|(_, tx)| tx.final_code.is_none())
            .filter_map(|(key, tx)| tx.call.clone().map(|call| (key.clone(), call)))
            .collect();
        for (key, call) in ringing {
            self.cancel_downstream(now, &key);
            let reason = format!("SIP;cause=480;text=\"{why}\"");
            self.finish_ourselves(
                now,
                &key,
                480,
                "Temporarily Unavailable",
                &[("reason", reason)],
            );
            self.outputs
                .push_back(EdgeOutput::Event(EdgeEvent::CallRefused {
                    call,
                    reason: why.to_owned(),
                }));
        }
    }

    // ---- responses ----

    fn on_response(&mut self, now: Instant, from: Leg, mut response: EditableMessage) {
        let Some(branch) = response
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned))
        else {
            return;
        };
        if branch_leg(&branch) != Some(from) {
            tracing::debug!(account = %self.account, "response that is not to a request of ours dropped");
            return;
        }
        if from == Leg::Softphone && self.checks.answered(&branch) {
            return self.on_check_answered(now, &response);
        }
        let (Some((_, method)), Some(code)) = (response.cseq(), response.code()) else {
            return;
        };
        let method = method.to_ascii_uppercase();
        if method == "CANCEL" {
            if let Some(down) = self
                .transactions
                .entries
                .get_mut(&(branch, true))
                .and_then(|tx| tx.downstream.as_mut())
            {
                if matches!(down.cancel, Cancel::Sent { .. }) {
                    down.cancel = Cancel::Done;
                }
            }
            return;
        }
        response.pop_top("via");
        if response.top_via().is_none() {
            return;
        }
        if from == Leg::Softphone {
            self.rewrite_sdp(&mut response);
            if let (true, Some(flow)) = (carries_sdp(&response), self.flow) {
                self.calls.softphone_sent_media(&response, &flow);
            }
        }
        let key: Key = (branch, method == "INVITE");
        if !self.transactions.entries.contains_key(&key) {
            // RFC 3261 §16.7 with no context: relayed on as a stateless proxy would (a 2xx
            // retransmitted after the transaction ended).
            if code > 100 {
                if let Some((peer, _, _)) = self.next_hop(from.other()) {
                    self.send(peer, response.to_bytes());
                }
            }
            return;
        }
        match code {
            100..=199 => self.on_provisional(now, &key, code, response),
            200..=299 => self.on_success(now, &key, response),
            _ => self.on_failure(now, &key, response),
        }
    }

    fn on_provisional(&mut self, now: Instant, key: &Key, code: u16, response: EditableMessage) {
        let timers = self.config.timers;
        let invite_timeout = self.config.invite_timeout;
        let Some(tx) = self.transactions.entries.get_mut(key) else {
            return;
        };
        let Some(down) = tx.downstream.as_mut() else {
            return;
        };
        if down.state == ClientState::Completed {
            return;
        }
        if down.state == ClientState::Calling {
            down.state = ClientState::Proceeding;
            if tx.invite {
                // Timer A stops; Timer C replaces Timer B.
                down.retransmit = None;
                down.give_up = Some(now + invite_timeout);
            } else if down.retransmit.is_some() {
                down.retransmit = Some((now + timers.t2, timers.t2));
            }
        }
        let cancel_now = down.cancel == Cancel::Wanted;
        let forward = code > 100 && tx.final_code.is_none();
        let upstream = tx.upstream;
        if forward {
            let bytes = response.to_bytes();
            tx.last_response = Some(bytes.clone());
            self.send(upstream, bytes);
        }
        if cancel_now {
            if let Some(down) = self
                .transactions
                .entries
                .get_mut(key)
                .and_then(|tx| tx.downstream.as_mut())
            {
                down.cancel = Cancel::None;
            }
            self.cancel_downstream(now, key);
        }
    }

    fn on_success(&mut self, now: Instant, key: &Key, response: EditableMessage) {
        let timers = self.config.timers;
        let Some(tx) = self.transactions.entries.get_mut(key) else {
            return;
        };
        if let Some(down) = tx.downstream.as_mut() {
            down.state = ClientState::Completed;
            down.retransmit = None;
            down.give_up = None;
        }
        if tx.invite && !tx.request.in_dialog() {
            let direction = match tx.from {
                Leg::Pbx => CallDirection::Incoming,
                Leg::Softphone => CallDirection::Outgoing,
            };
            self.calls
                .answered(now, direction, &tx.request, &response, self.flow.as_ref());
        }
        let bytes = response.to_bytes();
        let first = tx.final_code.is_none();
        if first {
            let code = response.code().unwrap_or(200);
            tx.complete(now, code, bytes.clone(), false, timers);
        }
        // Every 2xx to an INVITE goes up, retransmissions and late ones included (§16.7 step 5).
        if first || tx.invite {
            let upstream = tx.upstream;
            self.send(upstream, bytes);
        }
    }

    fn on_failure(&mut self, now: Instant, key: &Key, mut response: EditableMessage) {
        let timers = self.config.timers;
        let Some(tx) = self.transactions.entries.get_mut(key) else {
            return;
        };
        if tx.request.in_dialog() {
            self.calls.request_failed(&tx.request, response.code());
        }
        let mut sends = Vec::new();
        if let Some(down) = tx.downstream.as_mut() {
            if tx.invite {
                // RFC 3261 §17.1.1.3: the ACK to a non-2xx final response is ours to send, and
                // to send again for each retransmission of that response.
                if down.state != ClientState::Completed || down.ack.is_none() {
                    down.ack = Some(build_ack(&down.forwarded, &response));
                }
                if let Some(ack) = &down.ack {
                    sends.push((down.peer, ack.clone()));
                }
            }
            down.state = ClientState::Completed;
            down.retransmit = None;
            down.give_up = None;
            if matches!(down.cancel, Cancel::Wanted) {
                down.cancel = Cancel::Done;
            }
        }
        if tx.final_code.is_none() {
            if response.code() == Some(503) {
                response.set_status(500, "Server Internal Error");
            }
            let bytes = response.to_bytes();
            let code = response.code().unwrap_or(500);
            tx.complete(now, code, bytes.clone(), false, timers);
            sends.push((tx.upstream, bytes));
        }
        for (peer, bytes) in sends {
            self.send(peer, bytes);
        }
    }

    // ---- softphone checks ----

    pub(super) fn start_check(&mut self, now: Instant) {
        let Some((peer, target)) = self.softphone_path() else {
            return;
        };
        let token = self.token();
        if let Some(bytes) = self.checks.start(
            now,
            peer,
            &target,
            self.config.listen,
            &token,
            self.config.answer_wait,
            self.config.timers,
        ) {
            self.send(Peer::Softphone(peer), bytes);
        }
    }

    fn on_check_answered(&mut self, now: Instant, response: &EditableMessage) {
        if let Some(agent) = response
            .get("user-agent")
            .or_else(|| response.get("server"))
        {
            self.user_agent = Some(agent.to_owned());
        }
        self.checks.next_check = Some(now + self.config.check_interval);
        self.set_state(now, SoftphoneState::Answering);
    }

    // ---- timers ----

    /// Timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.registrar.expire(now) {
            tracing::info!(account = %self.account, "the softphone's registration with VICIfast lapsed");
            self.binding_gone(now);
        }
        match self.checks.on_timeout(now, self.config.timers) {
            Some(ProbeDue::Retransmit(peer, bytes)) => self.send(Peer::Softphone(peer), bytes),
            Some(ProbeDue::Unanswered) => {
                self.checks.next_check = Some(now + self.config.check_interval);
                let state = if self.softphone_path().is_some() {
                    SoftphoneState::NotAnswering
                } else {
                    SoftphoneState::NotRegistered
                };
                self.set_state(now, state);
            }
            None => {}
        }
        if self.checks.next_check.is_some_and(|at| at <= now) {
            self.checks.next_check = Some(now + self.config.check_interval);
            self.start_check(now);
        }
        let due: Vec<Key> = self
            .transactions
            .entries
            .iter()
            .filter(|(_, tx)| tx.next_deadline().is_some_and(|at| at <= now))
            .map(|(key, _)| key.clone())
            .collect();
        for key in due {
            self.on_transaction_timeout(now, &key);
        }
    }

    fn on_transaction_timeout(&mut self, now: Instant, key: &Key) {
        let timers = self.config.timers;
        let Some(tx) = self.transactions.entries.get_mut(key) else {
            return;
        };
        for due in tx.on_timeout(now, timers) {
            let Some(tx) = self.transactions.entries.get_mut(key) else {
                return;
            };
            match due {
                Due::Forget => {
                    self.transactions.entries.remove(key);
                    return;
                }
                Due::RetransmitFinal => {
                    if let Some(bytes) = tx.last_response.clone() {
                        let peer = tx.upstream;
                        self.send(peer, bytes);
                    }
                }
                Due::RetransmitRequest => {
                    if let Some(down) = &tx.downstream {
                        let (peer, bytes) = (down.peer, down.bytes.clone());
                        self.send(peer, bytes);
                    }
                }
                Due::RetransmitCancel => {
                    if let Some(Downstream {
                        peer,
                        cancel: Cancel::Sent { bytes, .. },
                        ..
                    }) = &tx.downstream
                    {
                        let (peer, bytes) = (*peer, bytes.clone());
                        self.send(peer, bytes);
                    }
                }
                Due::NoResponse => {
                    if tx.request.in_dialog() {
                        self.calls.request_failed(&tx.request, None);
                    }
                    let cancelled = tx
                        .downstream
                        .as_ref()
                        .is_some_and(|d| d.cancel == Cancel::Wanted);
                    if !tx.invite {
                        // RFC 4320: no 408 for a non-INVITE; the upstream's own Timer F ends it.
                        tx.forget_at = Some(now);
                        continue;
                    }
                    if cancelled {
                        self.finish_ourselves(now, key, 487, "Request Terminated", &[]);
                    } else {
                        self.finish_ourselves(now, key, 408, "Request Timeout", &[]);
                    }
                }
                Due::RangTooLong => {
                    self.cancel_downstream(now, key);
                    self.finish_ourselves(now, key, 408, "Request Timeout", &[]);
                }
            }
        }
    }

    // ---- sending ----

    /// The only place bytes leave the edge proxy: to the PBX over the current flow, or to a
    /// loopback peer.
    fn send(&mut self, peer: Peer, payload: Vec<u8>) {
        match peer {
            Peer::Pbx => {
                let Some(flow) = self.flow else {
                    tracing::debug!(account = %self.account, "no flow to the PBX: message dropped");
                    return;
                };
                self.trace(Direction::Sent, flow.remote, flow.transport, &payload);
                self.outputs.push_back(EdgeOutput::ToPbx(Transmit {
                    flow: flow.flow,
                    destination: flow.remote,
                    payload,
                }));
            }
            Peer::Softphone(peer) => {
                if !peer.addr.ip().is_loopback() {
                    return;
                }
                self.trace(Direction::Sent, peer.addr, peer.transport, &payload);
                self.outputs
                    .push_back(EdgeOutput::ToSoftphone(LocalTransmit { peer, payload }));
            }
        }
    }

    /// Replaces media addresses the PBX cannot reach (see [`super::sdp`]).
    fn rewrite_sdp(&self, message: &mut EditableMessage) {
        let Some(flow) = self.flow else {
            return;
        };
        if message.body.is_empty() || message.content_type().as_deref() != Some("application/sdp") {
            return;
        }
        let to = flow.reachable_at().ip();
        let local = flow.local.ip();
        let behind_nat = flow.public.is_some_and(|p| p.ip() != local);
        let unreachable = |ip: IpAddr| {
            ip != to
                && (ip.is_loopback()
                    || self.past_addresses.contains(&ip)
                    || (behind_nat && ip == local))
        };
        if let Some(body) = rewrite_media_addresses(&message.body, unreachable, to) {
            message.body = body;
        }
    }

    fn trace(
        &mut self,
        direction: Direction,
        remote: SocketAddr,
        transport: Transport,
        bytes: &[u8],
    ) {
        if !self.config.trace {
            return;
        }
        self.outputs
            .push_back(EdgeOutput::Event(EdgeEvent::Trace(TraceEntry {
                account: self.account.clone(),
                direction,
                remote: remote.to_string(),
                transport,
                text: message::redact(&String::from_utf8_lossy(bytes)),
            })));
    }
}

/// Whether a message carries an SDP body.
fn carries_sdp(message: &EditableMessage) -> bool {
    !message.body.is_empty() && message.content_type().as_deref() == Some("application/sdp")
}

/// RFC 3261 §17.1.1.3: the ACK to a non-2xx final response of a relayed INVITE.
fn build_ack(invite: &EditableMessage, response: &EditableMessage) -> Vec<u8> {
    let mut ack = EditableMessage::request("ACK", invite.uri().unwrap_or_default());
    copy_cancel_and_ack_fields(invite, &mut ack);
    if let Some(to) = response.get("to") {
        ack.set("to", to.to_owned());
    }
    if let Some((number, _)) = invite.cseq() {
        ack.append("cseq", format!("{number} ACK"));
    }
    ack.to_bytes()
}

/// RFC 3261 §9.1: the CANCEL of a relayed INVITE.
fn build_cancel(invite: &EditableMessage) -> Vec<u8> {
    let mut cancel = EditableMessage::request("CANCEL", invite.uri().unwrap_or_default());
    copy_cancel_and_ack_fields(invite, &mut cancel);
    if let Some((number, _)) = invite.cseq() {
        cancel.append("cseq", format!("{number} CANCEL"));
    }
    cancel.to_bytes()
}

/// The top Via (same branch), Routes, From, To, Call-ID and a fresh Max-Forwards.
fn copy_cancel_and_ack_fields(invite: &EditableMessage, out: &mut EditableMessage) {
    if let Some(via) = invite.top("via") {
        out.append("via", via);
    }
    for route in invite.list("route") {
        out.append("route", route);
    }
    out.append("max-forwards", "70");
    for name in ["from", "to", "call-id"] {
        if let Some(value) = invite.get(name) {
            out.append(name, value.to_owned());
        }
    }
}
