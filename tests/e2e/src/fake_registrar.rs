//! A scriptable, misbehaving registrar on loopback (UDP and TCP), for the hostile-registrar tests.
//!
//! Kamailio behaves; this one does what a broken registrar, load balancer or attacker does, on
//! cue: each REGISTER it receives takes the next [`Step`] of its script (the last one repeats),
//! which says how to answer (200 with any Expires and Contact list, a challenge with any
//! algorithm, any status with any headers, silence, half a message) and what to do after (close
//! the connection, send unframeable bytes, flood the client with tiny messages, pings or
//! NOTIFYs), optionally from another source port. It records every REGISTER with its arrival
//! instant and counts the connections it accepted, so a test can hold the client to the pacing
//! rule.
//!
//! Its SIP is written by hand on purpose: it must send what no SIP library would (half
//! messages, lying Vias, absurd numbers), and read just enough of a REGISTER to answer it.
//!
//! Everything is bounded: floods have a count, reads a buffer ceiling, and every thread stops
//! when the registrar is dropped. Nothing here sleeps to synchronise: waits are on a condvar,
//! each under a deadline.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often blocked reads and writes look at the stop flag.
const TICK: Duration = Duration::from_millis(50);
/// A client's unread bytes on one connection beyond this end the connection (the fake must stay
/// bounded too).
const MAX_BUFFERED: usize = 1 << 20;
/// The realm of the challenges.
pub const FAKE_REALM: &str = "fake.test";

/// Which of the fake's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FakeTransport {
    Udp,
    Tcp,
}

impl FakeTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            FakeTransport::Udp => "udp",
            FakeTransport::Tcp => "tcp",
        }
    }
}

/// The Contact list of a 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// The REGISTER's own Contact, with `;expires=` set to the step's expiry.
    Echo,
    /// Only these contacts (another device's, or nothing of ours).
    Foreign(Vec<String>),
    /// No Contact header at all.
    Omitted,
}

/// How a REGISTER is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200 OK granting `expires` seconds (Expires header and the Contact's parameter).
    Ok { expires: u64, contacts: Contacts },
    /// Any other status line.
    Status { code: u16, reason: String },
    /// No answer at all.
    Silence,
    /// The first half of a 200 OK, and then nothing.
    Half,
}

/// The kind of message in a flood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodKind {
    /// Tiny responses that match no request (about 70 bytes each).
    TinyResponses,
    /// RFC 5626 CRLFCRLF keep-alive pings.
    Pings,
    /// NOTIFY requests, each a new transaction.
    Notifies,
    /// Unparseable datagrams or bytes with NUL and escape characters in them.
    Junk,
}

/// What happens after the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    Nothing,
    /// Close the connection (TCP).
    Close,
    /// Send these bytes (on UDP, as one datagram).
    Send(Vec<u8>),
    /// Send `count` messages of `kind` as fast as the client takes them.
    Flood {
        kind: FloodKind,
        count: usize,
    },
}

/// One reaction of the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub answer: Answer,
    /// Extra header lines of the answer (`Retry-After`, `WWW-Authenticate`, `Min-Expires`, …).
    pub headers: Vec<(String, String)>,
    pub after: After,
    /// Answer from another UDP port than the one the REGISTER went to.
    pub from_other_port: bool,
    /// Put `received`/`rport` in the top Via that change with every REGISTER (a NAT that
    /// rebinds all the time, or a registrar that lies).
    pub flapping_via: bool,
}

impl Step {
    fn with(answer: Answer) -> Self {
        Step {
            answer,
            headers: Vec::new(),
            after: After::Nothing,
            from_other_port: false,
            flapping_via: false,
        }
    }

    /// 200 OK granting `expires` seconds to the REGISTER's contact.
    pub fn ok(expires: u64) -> Self {
        Self::with(Answer::Ok {
            expires,
            contacts: Contacts::Echo,
        })
    }

    /// Any status, e.g. `Step::status(503, "Service Unavailable").header("Retry-After", "120")`.
    pub fn status(code: u16, reason: &str) -> Self {
        Self::with(Answer::Status {
            code,
            reason: reason.to_owned(),
        })
    }

    /// 401 with a digest challenge using `algorithm` (and `stale=true` when asked). Every
    /// challenge has a fresh nonce.
    pub fn challenge(algorithm: &str, stale: bool) -> Self {
        let mut value = format!(
            "Digest realm=\"{FAKE_REALM}\", nonce=\"{{nonce}}\", qop=\"auth\", algorithm={algorithm}"
        );
        if stale {
            value.push_str(", stale=true");
        }
        Self::status(401, "Unauthorized").header("WWW-Authenticate", &value)
    }

    pub fn silence() -> Self {
        Self::with(Answer::Silence)
    }

    pub fn half() -> Self {
        Self::with(Answer::Half)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn contacts(mut self, contacts: Contacts) -> Self {
        if let Answer::Ok { contacts: c, .. } = &mut self.answer {
            *c = contacts;
        }
        self
    }

    pub fn then(mut self, after: After) -> Self {
        self.after = after;
        self
    }

    pub fn from_other_port(mut self) -> Self {
        self.from_other_port = true;
        self
    }

    pub fn flapping_via(mut self) -> Self {
        self.flapping_via = true;
        self
    }
}

/// One REGISTER as the fake received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub transport: FakeTransport,
    pub source: SocketAddr,
    /// The TCP connection it came on (numbered from 1 in accept order).
    pub connection: Option<u64>,
    /// The top Via's branch: retransmissions share it.
    pub branch: String,
    pub expires: Option<String>,
    pub authorized: bool,
    /// The whole message as received.
    pub text: String,
}

impl Received {
    /// Whether it asked to remove bindings (sent on shutdown).
    pub fn is_removal(&self) -> bool {
        self.expires.as_deref() == Some("0") || self.text.contains(";expires=0")
    }
}

/// What the fake has seen and done so far.
#[derive(Debug, Default)]
struct Record {
    registers: Vec<Received>,
    connections: u64,
    /// Responses the client sent (to NOTIFYs, OPTIONS, …).
    responses: u64,
    /// Call-IDs of the answered round trips ([`FakeRegistrar::round_trip`]).
    answered: HashSet<String>,
    /// Keep-alive bytes from the client: pings (CRLFCRLF) and pongs (CRLF).
    pings_from_client: u64,
    pongs_from_client: u64,
    /// Datagrams or bytes the fake could not read as SIP.
    unreadable: u64,
    floods_started: u64,
    floods_finished: u64,
    /// Messages of floods written so far.
    flooded: u64,
    /// Where the last UDP REGISTER came from, to reach the client.
    udp_peer: Option<SocketAddr>,
}

/// A TCP connection's write half, shared by its reader and its flood.
type Writer = Arc<Mutex<TcpStream>>;

struct Shared {
    script: Vec<Step>,
    stop: AtomicBool,
    record: Mutex<Record>,
    changed: Condvar,
    udp: UdpSocket,
    other_udp: UdpSocket,
    /// The latest TCP connection's writer, to reach the client.
    tcp_writer: Mutex<Option<Writer>>,
    next_id: AtomicU64,
    floods: Mutex<Vec<JoinHandle<()>>>,
}

/// A running fake registrar. Dropping it stops every thread and closes every socket.
pub struct FakeRegistrar {
    shared: Arc<Shared>,
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl FakeRegistrar {
    /// Starts a fake on free loopback ports. `script` must not be empty: its last step repeats.
    pub fn start(script: Vec<Step>) -> std::io::Result<FakeRegistrar> {
        assert!(!script.is_empty(), "a script needs at least one step");
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        udp.set_read_timeout(Some(TICK))?;
        let other_udp = UdpSocket::bind("127.0.0.1:0")?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            script,
            stop: AtomicBool::new(false),
            record: Mutex::new(Record::default()),
            changed: Condvar::new(),
            udp: udp.try_clone()?,
            other_udp,
            tcp_writer: Mutex::new(None),
            next_id: AtomicU64::new(1),
            floods: Mutex::new(Vec::new()),
        });
        let udp_addr = udp.local_addr()?;
        let tcp_addr = listener.local_addr()?;
        let mut threads = Vec::new();
        let s = Arc::clone(&shared);
        threads.push(std::thread::spawn(move || serve_udp(&s, &udp)));
        let s = Arc::clone(&shared);
        threads.push(std::thread::spawn(move || serve_tcp(&s, &listener)));
        Ok(FakeRegistrar {
            shared,
            udp_addr,
            tcp_addr,
            threads,
        })
    }

    pub fn addr(&self, transport: FakeTransport) -> SocketAddr {
        match transport {
            FakeTransport::Udp => self.udp_addr,
            FakeTransport::Tcp => self.tcp_addr,
        }
    }

    /// `register --registrar … --transport … --user <user> --json` for `vicifast-cli`, then
    /// `extra`.
    pub fn register_args(
        &self,
        transport: FakeTransport,
        user: &str,
        extra: &[&str],
    ) -> Vec<String> {
        let mut args: Vec<String> = [
            "register",
            "--registrar",
            &self.addr(transport).to_string(),
            "--transport",
            transport.as_str(),
            "--user",
            user,
            "--json",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    }

    /// Every REGISTER received so far, in order (removals included).
    pub fn registers(&self) -> Vec<Received> {
        self.record().registers.clone()
    }

    /// REGISTERs received so far that ask for a binding (not removals), retransmissions included.
    pub fn register_count(&self) -> usize {
        self.record()
            .registers
            .iter()
            .filter(|r| !r.is_removal())
            .count()
    }

    /// Distinct REGISTER transactions (branches) so far, removals excluded.
    pub fn transaction_count(&self) -> usize {
        let record = self.record();
        let branches: HashSet<&str> = record
            .registers
            .iter()
            .filter(|r| !r.is_removal())
            .map(|r| r.branch.as_str())
            .collect();
        branches.len()
    }

    pub fn connections(&self) -> u64 {
        self.record().connections
    }

    /// Responses the client sent to the fake's requests.
    pub fn responses(&self) -> u64 {
        self.record().responses
    }

    /// Keep-alive bytes (CRLFs outside messages) the client sent: its pongs, and its own pings.
    /// Counted in bytes because back-to-back pongs (CRLF CRLF) read like a ping.
    pub fn keepalive_bytes(&self) -> u64 {
        let record = self.record();
        record.pings_from_client * 4 + record.pongs_from_client * 2
    }

    /// Flood messages written so far.
    pub fn flooded(&self) -> u64 {
        self.record().flooded
    }

    /// Waits until `n` REGISTERs asking for a binding have arrived; `Err` with what did arrive
    /// when `timeout` passes first. A test that expects the client to stay quiet calls this
    /// with one more than its bound and expects `Err`.
    pub fn wait_for_registers(&self, n: usize, timeout: Duration) -> Result<Vec<Received>, String> {
        self.wait_until(timeout, |r| {
            r.registers.iter().filter(|r| !r.is_removal()).count() >= n
        })
        .map(|r| r.registers.clone())
        .map_err(|r| {
            format!(
                "{} REGISTERs within {timeout:?}, waited for {n}: {}",
                r.registers.len(),
                summary(&r.registers)
            )
        })
    }

    /// Watches the client for `window` from its first REGISTER (waiting up to `first_within`
    /// for that one) and returns the REGISTERs asking for a binding that arrived in the window.
    /// This is an observation period, not a synchronisation: the bound a test checks afterwards
    /// holds whatever the machine's speed (a slow client sends fewer, never more).
    pub fn observe(
        &self,
        window: Duration,
        first_within: Duration,
    ) -> Result<Vec<Received>, String> {
        let first = self.wait_for_registers(1, first_within)?[0].at;
        let end = first + window;
        let left = end.saturating_duration_since(Instant::now());
        let record = match self.wait_until(left, |_| false) {
            Ok(r) | Err(r) => r,
        };
        Ok(record
            .registers
            .iter()
            .filter(|r| !r.is_removal() && r.at <= end)
            .cloned()
            .collect())
    }

    /// Waits until `n` connections have been accepted; `Err` with the count on timeout.
    pub fn wait_for_connections(&self, n: u64, timeout: Duration) -> Result<(), String> {
        self.wait_until(timeout, |r| r.connections >= n)
            .map(drop)
            .map_err(|r| {
                format!(
                    "{} connections within {timeout:?}, waited for {n}",
                    r.connections
                )
            })
    }

    /// Waits until every flood started has been written out (or its connection ended).
    pub fn wait_floods_done(&self, timeout: Duration) -> Result<u64, String> {
        self.wait_until(timeout, |r| {
            r.floods_started > 0 && r.floods_finished == r.floods_started
        })
        .map(|r| r.flooded)
        .map_err(|r| {
            format!(
                "floods not done within {timeout:?}: {} of {} finished, {} messages written",
                r.floods_finished, r.floods_started, r.flooded
            )
        })
    }

    /// Starts a flood of `count` messages of `kind` to the client on its latest flow (the last
    /// UDP address a REGISTER came from, or the latest TCP connection).
    pub fn flood(
        &self,
        transport: FakeTransport,
        kind: FloodKind,
        count: usize,
    ) -> Result<(), String> {
        let target = match transport {
            FakeTransport::Udp => {
                let peer = self.record().udp_peer.ok_or("no UDP client seen yet")?;
                let socket = self
                    .shared
                    .udp
                    .try_clone()
                    .map_err(|e| format!("cloning the UDP socket: {e}"))?;
                FloodTarget::Udp(socket, peer)
            }
            FakeTransport::Tcp => {
                let writer = lock(&self.shared.tcp_writer)
                    .clone()
                    .ok_or("no TCP client seen yet")?;
                FloodTarget::Tcp(writer, self.tcp_addr)
            }
        };
        spawn_flood(&self.shared, target, kind, count);
        Ok(())
    }

    /// Starts a UDP flood from another port of the fake's address: a stranger, as far as the
    /// client can tell.
    pub fn flood_from_another_port(&self, kind: FloodKind, count: usize) -> Result<(), String> {
        let peer = self.record().udp_peer.ok_or("no UDP client seen yet")?;
        let socket = self
            .shared
            .other_udp
            .try_clone()
            .map_err(|e| format!("cloning the UDP socket: {e}"))?;
        spawn_flood(&self.shared, FloodTarget::Udp(socket, peer), kind, count);
        Ok(())
    }

    /// Sends an OPTIONS to the client on its latest flow and waits for the answer. The client
    /// handles a flow's input in order, so once it answers, everything sent before was read
    /// (over UDP, read or dropped by the kernel: the OPTIONS is resent until answered).
    pub fn round_trip(&self, transport: FakeTransport, timeout: Duration) -> Result<(), String> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let call_id = format!("fake-round-trip-{id}");
        let local = self.addr(transport);
        let request = options_request(local, transport, &call_id, id);
        match transport {
            FakeTransport::Udp => {
                // Resent as Timer E would (the flood may have filled the client's socket buffer,
                // and the kernel drops what does not fit), until answered or `timeout`.
                let peer = self.record().udp_peer.ok_or("no UDP client seen yet")?;
                let deadline = Instant::now() + timeout;
                let mut interval = Duration::from_millis(500);
                loop {
                    self.shared
                        .udp
                        .send_to(&request, peer)
                        .map_err(|e| format!("sending OPTIONS: {e}"))?;
                    let left = deadline.saturating_duration_since(Instant::now());
                    if self
                        .wait_until(interval.min(left), |r| r.answered.contains(&call_id))
                        .is_ok()
                    {
                        return Ok(());
                    }
                    if left <= interval {
                        return Err(format!(
                            "the client did not answer an OPTIONS within {timeout:?}"
                        ));
                    }
                    interval = (interval * 2).min(Duration::from_secs(4));
                }
            }
            FakeTransport::Tcp => {
                let writer = lock(&self.shared.tcp_writer)
                    .clone()
                    .ok_or("no TCP client seen yet")?;
                write_all_bounded(&self.shared, &writer, &request)
                    .map_err(|e| format!("sending OPTIONS: {e}"))?;
            }
        }
        self.wait_until(timeout, |r| r.answered.contains(&call_id))
            .map(drop)
            .map_err(|_| format!("the client did not answer an OPTIONS within {timeout:?}"))
    }

    fn record(&self) -> MutexGuard<'_, Record> {
        lock(&self.shared.record)
    }

    fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&Record) -> bool,
    ) -> Result<MutexGuard<'_, Record>, MutexGuard<'_, Record>> {
        let guard = self.record();
        let (guard, result) = self
            .shared
            .changed
            .wait_timeout_while(guard, timeout, |r| !done(r))
            .unwrap_or_else(|p| p.into_inner());
        if result.timed_out() && !done(&guard) {
            Err(guard)
        } else {
            Ok(guard)
        }
    }
}

impl Drop for FakeRegistrar {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(writer) = lock(&self.shared.tcp_writer).take() {
            let _ = lock(&writer).shutdown(Shutdown::Both);
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        for flood in lock(&self.shared.floods).drain(..) {
            let _ = flood.join();
        }
    }
}

/// One line per REGISTER for failure messages: offset from the first, transport, source, branch.
pub fn summary(registers: &[Received]) -> String {
    let Some(first) = registers.first() else {
        return "none".to_owned();
    };
    registers
        .iter()
        .map(|r| {
            format!(
                "\n  +{:.3}s {} {} conn={:?} branch={} expires={:?}",
                (r.at - first.at).as_secs_f64(),
                r.transport.as_str(),
                r.source,
                r.connection,
                r.branch,
                r.expires
            )
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn update(&self, f: impl FnOnce(&mut Record)) {
        f(&mut lock(&self.record));
        self.changed.notify_all();
    }

    /// Records a REGISTER and returns its index (which script step applies).
    fn record_register(&self, received: Received) -> Option<usize> {
        let removal = received.is_removal();
        let mut record = lock(&self.record);
        if received.transport == FakeTransport::Udp {
            record.udp_peer = Some(received.source);
        }
        let index = record.registers.iter().filter(|r| !r.is_removal()).count();
        record.registers.push(received);
        drop(record);
        self.changed.notify_all();
        (!removal).then_some(index)
    }

    fn step(&self, index: usize) -> &Step {
        &self.script[index.min(self.script.len() - 1)]
    }

    /// A message from the client that is not a REGISTER.
    fn other_message(&self, message: &Message) {
        self.update(|r| {
            if message.is_response() {
                r.responses += 1;
                if let Some(call_id) = message.header("call-id") {
                    if call_id.starts_with("fake-round-trip-") {
                        r.answered.insert(call_id.to_owned());
                    }
                }
            }
        });
    }
}

fn serve_udp(shared: &Arc<Shared>, socket: &UdpSocket) {
    let mut buf = vec![0u8; 65_536];
    while !shared.stopped() {
        let (n, source) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => continue,
        };
        let bytes = &buf[..n];
        if bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            shared.update(|r| r.pings_from_client += 1);
            continue;
        }
        let Some(message) = Message::parse(bytes) else {
            shared.update(|r| r.unreadable += 1);
            continue;
        };
        if !message.is_register() {
            shared.other_message(&message);
            continue;
        }
        let received = message.received(FakeTransport::Udp, source, None);
        let Some(index) = shared.record_register(received) else {
            let _ = socket.send_to(
                &message.response(&Step::ok(0), 0, socket_addr(socket)),
                source,
            );
            continue;
        };
        let step = shared.step(index).clone();
        if let Some(answer) = answer_bytes(&message, &step, index, socket_addr(socket)) {
            let from = if step.from_other_port {
                &shared.other_udp
            } else {
                socket
            };
            let _ = from.send_to(&answer, source);
        }
        match &step.after {
            After::Nothing | After::Close => {}
            After::Send(bytes) => {
                let _ = socket.send_to(bytes, source);
            }
            After::Flood { kind, count } => {
                if let Ok(socket) = socket.try_clone() {
                    spawn_flood(shared, FloodTarget::Udp(socket, source), *kind, *count);
                }
            }
        }
    }
}

fn socket_addr(socket: &UdpSocket) -> SocketAddr {
    socket
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

fn serve_tcp(shared: &Arc<Shared>, listener: &TcpListener) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    let local = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    while !shared.stopped() {
        match listener.accept() {
            Ok((stream, peer)) => {
                let mut number = 0;
                shared.update(|r| {
                    r.connections += 1;
                    number = r.connections;
                });
                let shared = Arc::clone(shared);
                connections.push(std::thread::spawn(move || {
                    serve_connection(&shared, stream, peer, number, local);
                }));
                connections.retain(|c| !c.is_finished());
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::park_timeout(TICK / 5),
            Err(_) => std::thread::park_timeout(TICK),
        }
    }
    for connection in connections {
        let _ = connection.join();
    }
}

fn serve_connection(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    number: u64,
    local: SocketAddr,
) {
    let _ = stream.set_read_timeout(Some(TICK));
    let _ = stream.set_write_timeout(Some(TICK));
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let writer: Writer = Arc::new(Mutex::new(write_half));
    *lock(&shared.tcp_writer) = Some(Arc::clone(&writer));
    let mut reader = stream;
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    'read: while !shared.stopped() {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        }
        if buffer.len() > MAX_BUFFERED {
            break;
        }
        while let Some(frame) = next_frame(&mut buffer) {
            let message = match frame {
                StreamFrame::Ping => {
                    shared.update(|r| r.pings_from_client += 1);
                    let _ = write_all_bounded(shared, &writer, b"\r\n");
                    continue;
                }
                StreamFrame::Pong => {
                    shared.update(|r| r.pongs_from_client += 1);
                    continue;
                }
                StreamFrame::Message(bytes) => bytes,
            };
            let Some(message) = Message::parse(&message) else {
                shared.update(|r| r.unreadable += 1);
                continue;
            };
            if !message.is_register() {
                shared.other_message(&message);
                continue;
            }
            let received = message.received(FakeTransport::Tcp, peer, Some(number));
            let Some(index) = shared.record_register(received) else {
                let _ =
                    write_all_bounded(shared, &writer, &message.response(&Step::ok(0), 0, local));
                continue;
            };
            let step = shared.step(index).clone();
            if let Some(answer) = answer_bytes(&message, &step, index, local) {
                if write_all_bounded(shared, &writer, &answer).is_err() {
                    break 'read;
                }
            }
            match &step.after {
                After::Nothing => {}
                After::Close => break 'read,
                After::Send(bytes) => {
                    let _ = write_all_bounded(shared, &writer, bytes);
                }
                After::Flood { kind, count } => {
                    let target = FloodTarget::Tcp(Arc::clone(&writer), local);
                    spawn_flood(shared, target, *kind, *count);
                }
            }
        }
    }
    let _ = lock(&writer).shutdown(Shutdown::Both);
}

/// Where a flood goes: the client's UDP address, or its TCP connection.
enum FloodTarget {
    Udp(UdpSocket, SocketAddr),
    Tcp(Writer, SocketAddr),
}

/// Starts a flood on its own thread (joined when the fake is dropped; it stops early then).
fn spawn_flood(shared: &Arc<Shared>, target: FloodTarget, kind: FloodKind, count: usize) {
    shared.update(|r| r.floods_started += 1);
    let s = Arc::clone(shared);
    let thread = std::thread::spawn(move || {
        match target {
            FloodTarget::Udp(socket, peer) => {
                let local = socket_addr(&socket);
                for i in 0..count {
                    if s.stopped() {
                        break;
                    }
                    let _ =
                        socket.send_to(&flood_message(kind, i, local, FakeTransport::Udp), peer);
                    s.update(|r| r.flooded += 1);
                }
            }
            FloodTarget::Tcp(writer, local) => flood_stream(&s, &writer, kind, count, local),
        }
        s.update(|r| r.floods_finished += 1);
    });
    lock(&shared.floods).push(thread);
}

/// Writes `count` flood messages in batches of whole messages, so the connection's answers can
/// go between batches.
fn flood_stream(
    shared: &Shared,
    writer: &Writer,
    kind: FloodKind,
    count: usize,
    local: SocketAddr,
) {
    const BATCH: usize = 256;
    let mut i = 0;
    while i < count && !shared.stopped() {
        let end = (i + BATCH).min(count);
        let batch: Vec<u8> = (i..end)
            .flat_map(|k| flood_message(kind, k, local, FakeTransport::Tcp))
            .collect();
        if write_all_bounded(shared, writer, &batch).is_err() {
            break;
        }
        let written = (end - i) as u64;
        shared.update(|r| r.flooded += written);
        i = end;
    }
}

/// `write_all` that gives up when the fake stops or the connection fails, even while the client
/// reads nothing (its window full).
fn write_all_bounded(shared: &Shared, writer: &Writer, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        if shared.stopped() {
            return Err(ErrorKind::Interrupted.into());
        }
        let result = lock(writer).write(bytes);
        match result {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

enum StreamFrame {
    Ping,
    Pong,
    Message(Vec<u8>),
}

/// Cuts the next keep-alive or message off a stream buffer (RFC 3261 §18.3, RFC 5626 §4.4.1).
fn next_frame(buffer: &mut Vec<u8>) -> Option<StreamFrame> {
    if buffer.starts_with(b"\r\n\r\n") {
        buffer.drain(..4);
        return Some(StreamFrame::Ping);
    }
    if buffer.starts_with(b"\r\n") && !buffer[2..].starts_with(b"\r") {
        buffer.drain(..2);
        return Some(StreamFrame::Pong);
    }
    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let body = header_value(&head, "content-length", "l")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if buffer.len() < end + body {
        return None;
    }
    Some(StreamFrame::Message(buffer.drain(..end + body).collect()))
}

/// The first value of a header (by full or compact name) in a message head.
fn header_value<'a>(head: &'a str, name: &str, compact: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        let n = n.trim();
        (n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(compact)).then(|| v.trim())
    })
}

/// A SIP message from the client, read just enough to answer it.
struct Message {
    start: String,
    headers: Vec<(String, String)>,
    text: String,
}

impl Message {
    fn parse(bytes: &[u8]) -> Option<Message> {
        let text = std::str::from_utf8(bytes).ok()?.to_owned();
        let head = text.split("\r\n\r\n").next()?;
        let mut lines = head.split("\r\n");
        let start = lines.next()?.to_owned();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (expand(n.trim()), v.trim().to_owned()))
            .collect();
        Some(Message {
            start,
            headers,
            text,
        })
    }

    fn is_response(&self) -> bool {
        self.start.starts_with("SIP/2.0 ")
    }

    fn is_register(&self) -> bool {
        self.start.starts_with("REGISTER ")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn received(
        &self,
        transport: FakeTransport,
        source: SocketAddr,
        connection: Option<u64>,
    ) -> Received {
        let branch = self
            .header("via")
            .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("branch=")))
            .unwrap_or_default()
            .to_owned();
        Received {
            at: Instant::now(),
            transport,
            source,
            connection,
            branch,
            expires: self.header("expires").map(str::to_owned),
            authorized: self.header("authorization").is_some(),
            text: self.text.clone(),
        }
    }

    /// The response `step` gives to this REGISTER, the `index`-th.
    fn response(&self, step: &Step, index: usize, local: SocketAddr) -> Vec<u8> {
        let (code, reason) = match &step.answer {
            Answer::Ok { .. } | Answer::Silence | Answer::Half => (200, "OK".to_owned()),
            Answer::Status { code, reason } => (*code, reason.clone()),
        };
        let mut out = format!("SIP/2.0 {code} {reason}\r\n");
        for (i, via) in self.all("via").enumerate() {
            if i == 0 && step.flapping_via {
                let n = index % 200;
                out.push_str(&format!(
                    "Via: {via};received=198.18.{}.{};rport={}\r\n",
                    n / 100 + 10,
                    n % 100 + 1,
                    20_000 + index % 40_000
                ));
            } else {
                out.push_str(&format!("Via: {via}\r\n"));
            }
        }
        for name in ["from", "call-id", "cseq"] {
            if let Some(value) = self.header(name) {
                out.push_str(&format!("{}: {value}\r\n", canonical(name)));
            }
        }
        if let Some(to) = self.header("to") {
            if to.contains(";tag=") {
                out.push_str(&format!("To: {to}\r\n"));
            } else {
                out.push_str(&format!("To: {to};tag=fake{index}\r\n"));
            }
        }
        if let Answer::Ok { expires, contacts } = &step.answer {
            match contacts {
                Contacts::Echo => {
                    if let Some(contact) = self.header("contact").filter(|c| *c != "*") {
                        out.push_str(&format!(
                            "Contact: {};expires={expires}\r\n",
                            without_expires(contact)
                        ));
                    }
                }
                Contacts::Foreign(list) => {
                    for contact in list {
                        out.push_str(&format!("Contact: <{contact}>;expires={expires}\r\n"));
                    }
                }
                Contacts::Omitted => {}
            }
            out.push_str(&format!("Expires: {expires}\r\n"));
        }
        for (name, value) in &step.headers {
            let value = value.replace("{nonce}", &format!("n{index}x{}", local.port()));
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("Server: VICIfast hostile fake\r\nContent-Length: 0\r\n\r\n");
        out.into_bytes()
    }
}

/// The bytes that answer `message` per `step`, `None` for silence.
fn answer_bytes(
    message: &Message,
    step: &Step,
    index: usize,
    local: SocketAddr,
) -> Option<Vec<u8>> {
    match step.answer {
        Answer::Silence => None,
        Answer::Half => {
            let whole = message.response(step, index, local);
            Some(whole[..whole.len() / 2].to_vec())
        }
        _ => Some(message.response(step, index, local)),
    }
}

/// A contact value without its `expires` header parameter.
fn without_expires(contact: &str) -> String {
    let (uri, params) = match contact.rfind('>') {
        Some(at) => contact.split_at(at + 1),
        None => (contact, ""),
    };
    let kept: String = params
        .split(';')
        .filter(|p| !p.is_empty() && !p.trim().to_ascii_lowercase().starts_with("expires="))
        .map(|p| format!(";{p}"))
        .collect();
    format!("{uri}{kept}")
}

fn expand(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        other => return other.to_owned(),
    }
    .to_owned()
}

fn canonical(name: &str) -> &'static str {
    match name {
        "from" => "From",
        "call-id" => "Call-ID",
        _ => "CSeq",
    }
}

/// The `i`-th message of a flood of `kind`.
fn flood_message(
    kind: FloodKind,
    i: usize,
    local: SocketAddr,
    transport: FakeTransport,
) -> Vec<u8> {
    let via = match transport {
        FakeTransport::Udp => "UDP",
        FakeTransport::Tcp => "TCP",
    };
    match kind {
        FloodKind::TinyResponses => {
            format!("SIP/2.0 200 OK\r\nv: SIP/2.0/{via} {local};branch=z9hG4bKf{i}\r\nl: 0\r\n\r\n")
                .into_bytes()
        }
        FloodKind::Pings => b"\r\n\r\n".to_vec(),
        FloodKind::Notifies => format!(
            "NOTIFY sip:client@{local} SIP/2.0\r\n\
             Via: SIP/2.0/{via} {local};branch=z9hG4bKnotify{i}\r\n\
             From: <sip:fake@{local}>;tag=nf{i}\r\n\
             To: <sip:client@{local}>\r\n\
             Call-ID: fake-notify-{i}\r\n\
             CSeq: 1 NOTIFY\r\n\
             Event: message-summary\r\n\
             Subscription-State: active\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .into_bytes(),
        FloodKind::Junk => {
            let mut junk = format!("JUNK{i} \u{1b}[31m red \u{7} bell ").into_bytes();
            junk.extend_from_slice(&[0, 0, 0xff, 0xfe, b'\r', b'\n', 0x1b]);
            junk
        }
    }
}

/// An OPTIONS from the fake to the client, to learn when it has read everything before it.
fn options_request(local: SocketAddr, transport: FakeTransport, call_id: &str, id: u64) -> Vec<u8> {
    let via = match transport {
        FakeTransport::Udp => "UDP",
        FakeTransport::Tcp => "TCP",
    };
    format!(
        "OPTIONS sip:client@{local} SIP/2.0\r\n\
         Via: SIP/2.0/{via} {local};branch=z9hG4bKrt{id}\r\n\
         From: <sip:fake@{local}>;tag=rt{id}\r\n\
         To: <sip:client@{local}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Figures of a process from /proc: resident memory now and at its peak, CPU time, open fds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessFigures {
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    /// User plus system CPU time, in milliseconds.
    pub cpu_ms: u64,
    pub open_fds: usize,
}

impl ProcessFigures {
    /// Reads `/proc/<pid>/status`, `stat` and `fd`.
    pub fn of(pid: u32) -> Result<ProcessFigures, String> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
        // Fields after the command name (which may hold spaces): utime and stime are the 12th
        // and 13th, in USER_HZ (100 a second on Linux).
        let after_comm = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let ticks: u64 = after_comm
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse::<u64>().ok())
            .sum();
        let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0);
        Ok(ProcessFigures {
            rss_kib: field("VmRSS:")?,
            peak_rss_kib: field("VmHWM:")?,
            cpu_ms: ticks * 10,
            open_fds,
        })
    }
}

/// The most REGISTERs the pacing rule (the core's docs) lets through in `window`: 10 at once,
/// then one per 5 s.
pub fn register_ceiling(window: Duration) -> usize {
    10 + (window.as_secs() / 5) as usize
}

/// The most new connections the pacing rule lets through in `window`: 5 at once, then one per
/// 12 s.
pub fn connection_ceiling(window: Duration) -> u64 {
    5 + window.as_secs() / 12
}

/// How many times one non-INVITE request is sent over UDP within `window` of its first sending,
/// at most (RFC 3261 §17.1.2.2: Timer E starts at T1 = 500 ms and doubles up to T2 = 4 s). A
/// retransmission can come late, never early, so this is a bound; one second is added for the
/// first copy's own delay on loopback.
pub fn udp_sends_within(window: Duration) -> usize {
    let limit = window + Duration::from_secs(1);
    let (mut at, mut interval, mut sends) = (Duration::ZERO, Duration::from_millis(500), 0);
    while at <= limit {
        sends += 1;
        at += interval;
        interval = (interval * 2).min(Duration::from_secs(4));
    }
    sends
}

/// Prints one line of figures for the closing note (`--nocapture` shows them; grep
/// `hostile-figure`).
pub fn print_figure(
    case: &str,
    registers: usize,
    window: Duration,
    figures: Option<ProcessFigures>,
) {
    let per_minute = registers as f64 * 60.0 / window.as_secs_f64().max(0.001);
    match figures {
        Some(f) => println!(
            "hostile-figure case={case} registers={registers} window_s={:.1} registers_per_min={per_minute:.1} \
             rss_kib={} peak_rss_kib={} cpu_ms={} fds={}",
            window.as_secs_f64(),
            f.rss_kib,
            f.peak_rss_kib,
            f.cpu_ms,
            f.open_fds
        ),
        None => println!(
            "hostile-figure case={case} registers={registers} window_s={:.1} registers_per_min={per_minute:.1}",
            window.as_secs_f64()
        ),
    }
}
