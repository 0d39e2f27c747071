//! The tokio driver: one task per registration that feeds the sans-IO core with what the network,
//! the clock and the user say, and carries out what the core asks for.

use crate::edge::{ListenerInput, SoftphoneListener};
use crate::events::{BindingList, EngineEvent, RefusedCall, RemovedContacts, Stamped};
use crate::flow::{FlowHandle, FlowInput, INPUT_QUEUE};
use crate::junk::{EngineDrop, JunkLog};
use crate::monitor::{system_monitor, NetworkMonitor, SystemMonitor};
use crate::resolve::Resolver;
use crate::DriverOptions;
use rand::RngCore;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use vicifast_core::edge::{follow_flow, receive_on_flow, EdgeEvent, EdgeOutput, EdgeProxy};
use vicifast_core::{
    Event, FlowId, Output, Password, Registration as Core, ServerAddress, Target, Transport,
};

/// What the handle asks of the running task.
#[derive(Debug)]
pub(crate) enum Command {
    SetPassword(Password),
    RetryNow,
    TakeOver,
    NetworkChanged,
    /// The OS says the computer woke from sleep.
    Resumed,
    Stop(oneshot::Sender<()>),
}

/// The answer to one registrar lookup, as the core takes it.
type Resolution = Result<Vec<Target>, String>;

/// Everything the driver task owns.
pub(crate) struct Driver {
    core: Core,
    options: DriverOptions,
    resolver: Option<Resolver>,
    tls_config: Option<Result<Arc<rustls::ClientConfig>, String>>,
    flows: HashMap<FlowId, FlowHandle>,
    /// Bounded: a stream flow waits for room, a UDP flow drops (see `flow`).
    flow_inputs: (mpsc::Sender<FlowInput>, mpsc::Receiver<FlowInput>),
    resolved: (mpsc::Sender<Resolution>, mpsc::Receiver<Resolution>),
    events: mpsc::UnboundedSender<EngineEvent>,
    /// The server our newest flow goes to: what route checks are about.
    server: Option<SocketAddr>,
    /// A flood of messages must not become a flood of events the embedder has to hold.
    traces: Budget,
    calls: Budget,
    junk: JunkLog,
    /// The softphone's edge proxy and its listener, for an account that has one.
    edge: Option<Edge>,
}

/// An account's edge proxy (sans-IO) and the sockets it is reached at.
pub(crate) struct Edge {
    pub proxy: EdgeProxy,
    pub listener: SoftphoneListener,
}

/// At most `per_second` events of one kind a second; the rest are counted as dropped.
#[derive(Debug)]
struct Budget {
    per_second: u32,
    window: (Instant, u32),
}

impl Budget {
    fn new(per_second: u32) -> Self {
        Self {
            per_second,
            window: (Instant::now(), 0),
        }
    }

    /// Whether one more event fits this second.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.window.0) >= Duration::from_secs(1) {
            self.window = (now, 0);
        }
        let fits = self.window.1 < self.per_second;
        if fits {
            self.window.1 += 1;
        }
        fits
    }
}

/// Trace entries passed to the embedder per second at most (a registration needs a few a
/// minute).
const TRACES_PER_SECOND: u32 = 100;
/// Incoming-call notices per second at most (an agent gets a few calls a minute).
const CALLS_PER_SECOND: u32 = 10;

/// A wall clock that runs this much ahead of the monotonic one means we slept (the monotonic
/// clock stops during suspend); smaller gaps are clock adjustments.
const SLEEP_GAP: Duration = Duration::from_secs(10);

/// A fresh seed for the core's CSPRNG from the operating system.
pub(crate) fn os_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    seed
}

impl Driver {
    pub fn new(
        core: Core,
        options: DriverOptions,
        events: mpsc::UnboundedSender<EngineEvent>,
    ) -> Self {
        Self {
            core,
            options,
            resolver: None,
            tls_config: None,
            flows: HashMap::new(),
            flow_inputs: mpsc::channel(INPUT_QUEUE),
            // One answer per lookup, and the core asks for one lookup at a time.
            resolved: mpsc::channel(4),
            events,
            server: None,
            traces: Budget::new(TRACES_PER_SECOND),
            calls: Budget::new(CALLS_PER_SECOND),
            junk: JunkLog::new("engine"),
            edge: None,
        }
    }

    /// Relays the softphone's calls through `edge` as well.
    pub fn with_edge(mut self, edge: Edge) -> Self {
        self.edge = Some(edge);
        self
    }

    /// Runs until the core has finished (stopped, or its one-shot purpose done).
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut stop_waiters: Vec<oneshot::Sender<()>> = Vec::new();
        let mut commands_open = true;
        let mut monitor = match system_monitor() {
            Ok(m) => Some(m),
            Err(err) => {
                tracing::warn!(%err, "cannot watch the network; relying on keep-alive route checks");
                None
            }
        };
        let mut clocks = (SystemTime::now(), Instant::now());
        // The last wake handled, from the clocks or from the OS: one wake, one re-check.
        let mut last_resume: Option<Instant> = None;
        self.core.start(now());
        if let Some(edge) = &mut self.edge {
            edge.proxy.start(now());
        }
        loop {
            self.carry_out();
            if self.core.is_finished() {
                break;
            }
            let edge_deadline = self.edge.as_ref().and_then(|e| e.proxy.poll_timeout());
            let deadline = [self.core.poll_timeout(), edge_deadline]
                .into_iter()
                .flatten()
                .min()
                .map(Instant::from_std);
            tokio::select! {
                Some(input) = self.flow_inputs.1.recv() => {
                    let now = now();
                    match input {
                        FlowInput::Opened { flow, local } => self.core.handle_flow_opened(now, flow, local),
                        FlowInput::Failed { flow, error } => {
                            self.flows.remove(&flow);
                            self.core.handle_flow_error(now, flow, error);
                        }
                        FlowInput::Received { flow, remote, bytes } => receive_on_flow(
                            &mut self.core,
                            self.edge.as_mut().map(|e| &mut e.proxy),
                            now,
                            flow,
                            remote,
                            &bytes,
                        ),
                        FlowInput::Pong { flow } => self.core.handle_pong(now, flow),
                    }
                }
                Some(result) = self.resolved.1.recv() => self.core.handle_resolved(now(), result),
                Some(input) = softphone_input(self.edge.as_mut()) => self.on_softphone_input(input),
                command = commands.recv(), if commands_open => match command {
                    Some(Command::SetPassword(password)) => {
                        if let Some(edge) = &mut self.edge {
                            edge.proxy.set_password(password.clone());
                        }
                        self.core.set_password(now(), password);
                    }
                    Some(Command::RetryNow) => self.core.retry_now(now()),
                    Some(Command::TakeOver) => self.core.take_over(now()),
                    Some(Command::NetworkChanged) => self.check_network(),
                    Some(Command::Resumed) => {
                        // The clock check below may have seen this wake already.
                        if last_resume.is_none_or(|at: Instant| at.elapsed() > SLEEP_GAP) {
                            tracing::info!("woke from sleep (the system says)");
                            last_resume = Some(Instant::now());
                            self.core.handle_resumed(now());
                        }
                    }
                    Some(Command::Stop(done)) => {
                        stop_waiters.push(done);
                        self.core.stop(now());
                    }
                    // Every handle is gone: nobody can stop us any more, so stop now.
                    None => {
                        commands_open = false;
                        self.core.stop(now());
                    }
                },
                () = sleep_until(deadline) => {
                    let now = now();
                    self.core.handle_timeout(now);
                    if let Some(edge) = &mut self.edge {
                        edge.proxy.handle_timeout(now);
                    }
                }
                () = self.junk.summary_due() => self.junk.flush(),
                changed = network_change(&mut monitor) => {
                    if let Err(err) = changed {
                        tracing::warn!(%err, "network monitor failed; relying on keep-alive route checks");
                        monitor = None;
                    }
                    self.check_network();
                }
            }
            let (wall, mono) = (SystemTime::now(), Instant::now());
            let wall_elapsed = wall.duration_since(clocks.0).unwrap_or_default();
            if wall_elapsed > mono.duration_since(clocks.1) + SLEEP_GAP
                && last_resume.is_none_or(|at| at.elapsed() > SLEEP_GAP)
            {
                tracing::info!(?wall_elapsed, "woke from sleep");
                last_resume = Some(mono);
                self.core.handle_resumed(now());
            }
            clocks = (wall, mono);
        }
        self.flows.clear();
        for waiter in stop_waiters {
            let _ = waiter.send(());
        }
    }

    /// Drains the core's outputs and acts on each, then the edge proxy's (which follows the
    /// registration's flow first).
    fn carry_out(&mut self) {
        self.carry_out_registration();
        let Some(edge) = &mut self.edge else {
            return;
        };
        follow_flow(&mut edge.proxy, &self.core, now());
        while let Some(output) = edge.proxy.poll_output() {
            match output {
                EdgeOutput::ToPbx(t) => match self.flows.get(&t.flow) {
                    Some(flow) => {
                        if !flow.send(t.destination, t.payload) {
                            self.junk
                                .dropped(EngineDrop::WriteQueueFull, Some(t.destination));
                        }
                    }
                    None => tracing::debug!(flow = %t.flow, "relay on a closed flow dropped"),
                },
                EdgeOutput::ToSoftphone(t) => edge.listener.send(t),
                EdgeOutput::Event(event) => {
                    let engine_event = match event {
                        EdgeEvent::Softphone(status) => {
                            EngineEvent::Softphone(Stamped::now(status))
                        }
                        EdgeEvent::IncomingCall(call) => {
                            if !self.calls.take() {
                                self.junk.dropped(EngineDrop::CallNoticeOverflow, None);
                                continue;
                            }
                            EngineEvent::IncomingCall(Stamped::now(call))
                        }
                        EdgeEvent::CallRefused { call, reason } => {
                            if !self.calls.take() {
                                self.junk.dropped(EngineDrop::CallNoticeOverflow, None);
                                continue;
                            }
                            EngineEvent::CallRefused(Stamped::now(RefusedCall { call, reason }))
                        }
                        EdgeEvent::CallMoved(moved) => EngineEvent::CallMoved(Stamped::now(moved)),
                        EdgeEvent::Trace(entry) => {
                            if !self.traces.take() {
                                self.junk.dropped(EngineDrop::TraceOverflow, None);
                                continue;
                            }
                            tracing::trace!(direction = ?entry.direction, remote = %entry.remote, "\n{}", entry.text);
                            EngineEvent::Trace(Stamped::now(entry))
                        }
                        _ => continue,
                    };
                    let _ = self.events.send(engine_event);
                }
                _ => {}
            }
        }
    }

    fn on_softphone_input(&mut self, input: ListenerInput) {
        let Some(edge) = &mut self.edge else {
            return;
        };
        let now = now();
        match input {
            ListenerInput::Received { peer, bytes } => {
                edge.proxy.handle_softphone_receive(now, peer, &bytes)
            }
            ListenerInput::Closed { connection } => {
                edge.proxy.handle_connection_closed(now, connection)
            }
            ListenerInput::Unreachable { peer } => {
                edge.proxy.handle_softphone_unreachable(now, peer)
            }
        }
    }

    fn carry_out_registration(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Transmit(t) => match self.flows.get(&t.flow) {
                    Some(flow) => {
                        if !flow.send(t.destination, t.payload) {
                            self.junk
                                .dropped(EngineDrop::WriteQueueFull, Some(t.destination));
                        }
                    }
                    None => tracing::debug!(flow = %t.flow, "transmit on a closed flow dropped"),
                },
                Output::Resolve { server, transport } => self.resolve(server, transport),
                Output::CheckNetwork => self.check_network(),
                Output::OpenFlow { flow, target } => {
                    self.server = Some(target.addr);
                    let tls = (target.transport == Transport::Tls).then(|| self.tls_config());
                    let handle = FlowHandle::open(flow, target, tls, self.flow_inputs.0.clone());
                    self.flows.insert(flow, handle);
                }
                Output::CloseFlow { flow } => {
                    self.flows.remove(&flow);
                }
                Output::Event(event) => {
                    if let (Event::Status(status), Some(edge)) = (&event, self.edge.as_mut()) {
                        edge.proxy.handle_bindings(now(), &status.bindings);
                    }
                    self.publish(event);
                }
                _ => {}
            }
        }
    }

    /// Tells the core which local address reaches the server now (no packet is sent).
    fn check_network(&mut self) {
        let Some(server) = self.server else { return };
        let local_ip = crate::route::local_ip_toward(server).ok();
        self.core.handle_network_changed(now(), local_ip);
    }

    fn tls_config(&mut self) -> Result<Arc<rustls::ClientConfig>, String> {
        let ca_file = self.options.ca_file.clone();
        self.tls_config
            .get_or_insert_with(|| {
                crate::tls::client_config(ca_file.as_deref()).map_err(|e| e.to_string())
            })
            .clone()
    }

    fn resolve(&mut self, server: ServerAddress, transport: Option<Transport>) {
        let reply = self.resolved.0.clone();
        if self.resolver.is_none() {
            match Resolver::from_system() {
                Ok(r) => self.resolver = Some(r),
                Err(err) => {
                    let _ = reply.try_send(Err(err.to_string()));
                    return;
                }
            }
        }
        let Some(resolver) = self.resolver.clone() else {
            return;
        };
        tokio::spawn(async move {
            let result = resolver
                .resolve(&server, transport)
                .await
                .map_err(|e| e.to_string());
            let _ = reply.send(result).await;
        });
    }

    fn publish(&mut self, event: Event) {
        let engine_event = match event {
            Event::Status(status) => {
                tracing::info!(
                    account = %status.account,
                    state = %status.state,
                    cause = ?status.cause,
                    problem = status.problem.as_ref().map(|p| p.code.as_str()),
                    "status"
                );
                EngineEvent::Status(Stamped::now(status))
            }
            Event::IncomingCall(call) => {
                if !self.calls.take() {
                    self.junk.dropped(EngineDrop::CallNoticeOverflow, None);
                    return;
                }
                EngineEvent::IncomingCall(Stamped::now(call))
            }
            Event::Trace(entry) => {
                if !self.traces.take() {
                    self.junk.dropped(EngineDrop::TraceOverflow, None);
                    return;
                }
                tracing::trace!(direction = ?entry.direction, remote = %entry.remote, "\n{}", entry.text);
                EngineEvent::Trace(Stamped::now(entry))
            }
            Event::Bindings(bindings) => {
                EngineEvent::Bindings(Stamped::now(BindingList { bindings }))
            }
            Event::Removed(removed) => {
                EngineEvent::Removed(Stamped::now(RemovedContacts { removed }))
            }
            Event::ExtensionInUse(info) => EngineEvent::ExtensionInUse(Stamped::now(info)),
            Event::ExpiryAdjusted(adjusted) => EngineEvent::ExpiryAdjusted(Stamped::now(adjusted)),
            Event::Finished => return,
            _ => return,
        };
        let _ = self.events.send(engine_event);
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

async fn network_change(monitor: &mut Option<SystemMonitor>) -> std::io::Result<()> {
    match monitor {
        Some(m) => m.changed().await,
        None => std::future::pending().await,
    }
}

async fn softphone_input(edge: Option<&mut Edge>) -> Option<ListenerInput> {
    match edge {
        Some(e) => e.listener.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn a_budget_lets_its_share_through_then_refuses() {
        let mut budget = Budget::new(3);
        let passed = (0..1000).filter(|_| budget.take()).count();
        // Within one second 3 pass; a slow machine may start a second window, never more.
        assert!((3..=6).contains(&passed), "{passed}");
    }
}
