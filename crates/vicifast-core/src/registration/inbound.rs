//! Requests the registrar sends to our flow, answered here and nowhere else: OPTIONS (qualify)
//! with 200 and our capabilities, NOTIFY and CANCEL with 200, INVITE with 480 plus an
//! incoming-call event, BYE with 481, anything else with 405. Retransmitted requests get the same
//! answer again (RFC 3261 §17.2).

use super::request::ALLOW;
use super::{random_token, Registration};
use crate::drop_log::{escape, DropReason};
use crate::message::{self, MessageBuilder, NameAddr, Request, Via};
use crate::status::{IncomingCall, Transport};
use crate::{Event, FlowId, Output};
use std::net::SocketAddr;
use std::time::Instant;

impl Registration {
    pub(super) fn on_request(
        &mut self,
        now: Instant,
        flow: FlowId,
        remote: SocketAddr,
        transport: Transport,
        req: Request,
    ) {
        let vias: Vec<String> = req.headers.get_all("via").map(str::to_owned).collect();
        let top_via = vias
            .first()
            .and_then(|v| message::split_list(v).into_iter().next())
            .and_then(|v| Via::parse(&v));
        let (Some(top_via), Some(from), Some(to), Some(call_id), Some(cseq)) = (
            top_via,
            req.headers.get("from"),
            req.headers.get("to"),
            req.headers.get("call-id"),
            req.headers
                .get("cseq")
                .filter(|c| message::parse_cseq(c).is_some()),
        ) else {
            self.dropped(now, DropReason::MalformedRequest, remote, &req.method);
            return;
        };
        let branch = top_via.branch().unwrap_or_default().to_owned();
        let method = req.method.to_ascii_uppercase();
        if method == "ACK" {
            self.server_transactions.acknowledge(&branch);
            return;
        }
        if let Some(resend) = self.server_transactions.retransmission(&branch, &method) {
            self.push_transmit(resend.flow, resend.destination, resend.payload);
            return;
        }
        let (code, reason) = match method.as_str() {
            "OPTIONS" | "NOTIFY" | "CANCEL" => (200, "OK"),
            "INVITE" => (480, "Temporarily Unavailable"),
            "BYE" => (481, "Call/Transaction Does Not Exist"),
            _ => (405, "Method Not Allowed"),
        };
        let to_value = if NameAddr::parse(to).is_some_and(|t| t.tag().is_some()) {
            to.to_owned()
        } else {
            format!("{to};tag={}", random_token(&mut self.rng, 12))
        };
        let mut builder = MessageBuilder::response(code, reason);
        for via in &vias {
            builder = builder.header("Via", via);
        }
        builder = builder
            .header("From", from)
            .header("To", to_value)
            .header("Call-ID", call_id)
            .header("CSeq", cseq);
        if method == "OPTIONS" || code == 405 {
            builder = builder.header("Allow", ALLOW);
        }
        if method == "OPTIONS" {
            builder = builder
                .header("Accept", "application/sdp")
                .header("Supported", "path");
        }
        let payload = builder
            .header("User-Agent", &self.config.user_agent)
            .finish();
        self.server_transactions.record(
            now,
            branch,
            method == "INVITE",
            flow,
            remote,
            payload.clone(),
            transport.is_reliable(),
            self.config.timers,
        );
        self.push_transmit(flow, remote, payload);
        if method == "OPTIONS" {
            self.qualify_seen(now);
        }
        if method == "INVITE" {
            let from_uri = NameAddr::parse(from).map_or_else(|| from.to_owned(), |n| n.uri);
            tracing::info!(account = %self.config.name, from = %escape(&from_uri), "incoming call reached this device");
            self.outputs
                .push_back(Output::Event(Event::IncomingCall(IncomingCall {
                    account: self.config.name.clone(),
                    from: from_uri,
                    call_id: call_id.to_owned(),
                })));
        }
    }
}
