//! Flows (RFC 5626 §3): one UDP socket, or one TCP/TLS connection, to one server address. Each
//! runs as its own task that opens the transport, reports what arrives, and writes what the core
//! sends; dropping the [`FlowHandle`] closes it.
//!
//! Nothing a peer sends can make a flow grow without bound: the queues to and from the driver
//! are bounded (a TCP/TLS flow stops reading while the core is behind, so the peer's own window
//! fills; a UDP flow drops and counts what does not fit), a stream holds at most one message
//! not yet complete, and keep-alives cost one pong written (for pings) and one input to the
//! core (for pongs) per read, however many arrived.

use crate::framing::{classify_datagram, Datagram, Frame, StreamFramer, MAX_BUFFERED_BYTES};
use crate::junk::{EngineDrop, JunkLog};
use crate::route::local_ip_toward;
use crate::tls;
use bytes::Bytes;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vicifast_core::{FlowError, FlowErrorKind, FlowId, Target, Transport};

/// Inputs all flows may have queued for the driver: beyond this a stream stops reading and a
/// UDP socket drops.
pub(crate) const INPUT_QUEUE: usize = 64;
/// Writes the core may have queued for one flow: beyond this they are dropped and counted (the
/// core's pacing keeps its own sends far below; only answers to a request flood get here).
const WRITE_QUEUE: usize = 64;
/// At most this much is gathered into one write.
const MAX_COALESCED_WRITE: usize = 64 * 1024;
/// A UDP ping from the server is answered at most once per this interval.
const UDP_PONG_INTERVAL: Duration = Duration::from_secs(1);

/// What a flow task tells the driver.
#[derive(Debug)]
pub(crate) enum FlowInput {
    Opened {
        flow: FlowId,
        local: SocketAddr,
    },
    Failed {
        flow: FlowId,
        error: FlowError,
    },
    Received {
        flow: FlowId,
        remote: SocketAddr,
        bytes: Bytes,
    },
    /// A keep-alive answer (RFC 5626 §4.4.1 pong) arrived.
    Pong {
        flow: FlowId,
    },
}

/// The driver's side of a running flow.
#[derive(Debug)]
pub(crate) struct FlowHandle {
    writes: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    task: JoinHandle<()>,
}

impl FlowHandle {
    /// Starts opening a flow to `target`; the outcome arrives on `inputs`.
    pub fn open(
        flow: FlowId,
        target: Target,
        tls_config: Option<Result<Arc<rustls::ClientConfig>, String>>,
        inputs: mpsc::Sender<FlowInput>,
    ) -> Self {
        let (writes, pending_writes) = mpsc::channel(WRITE_QUEUE);
        let task = tokio::spawn(async move {
            let result = match target.transport {
                Transport::Udp => run_udp(flow, &target, &inputs, pending_writes).await,
                Transport::Tcp | Transport::Tls => {
                    run_stream(flow, &target, tls_config, &inputs, pending_writes).await
                }
            };
            if let Err(error) = result {
                let _ = inputs.send(FlowInput::Failed { flow, error }).await;
            }
        });
        Self { writes, task }
    }

    /// Queues a write; `false` when the flow's queue is full and the write was dropped.
    pub fn send(&self, destination: SocketAddr, payload: Vec<u8>) -> bool {
        match self.writes.try_send((destination, payload)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => false,
            // The flow task has ended; its failure is on the way to the driver.
            Err(TrySendError::Closed(_)) => true,
        }
    }
}

impl Drop for FlowHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn flow_error(err: &io::Error, context: &str) -> FlowError {
    use io::ErrorKind as K;
    let kind = match err.kind() {
        K::ConnectionRefused => FlowErrorKind::Refused,
        K::NetworkUnreachable | K::HostUnreachable | K::AddrNotAvailable | K::NetworkDown => {
            FlowErrorKind::NetworkUnreachable
        }
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            FlowErrorKind::Closed
        }
        _ => FlowErrorKind::Other,
    };
    FlowError {
        kind,
        detail: format!("{context}: {err}"),
    }
}

/// Consecutive receive errors after which a UDP socket is considered broken.
const MAX_UDP_RECV_ERRORS: u32 = 100;
const MAX_DATAGRAM: usize = 65_535;

/// The driver is gone (the registration ended): the flow ends quietly.
fn driver_gone() -> FlowError {
    FlowError {
        kind: FlowErrorKind::Closed,
        detail: "the registration ended".into(),
    }
}

async fn run_udp(
    flow: FlowId,
    target: &Target,
    inputs: &mpsc::Sender<FlowInput>,
    mut writes: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
) -> Result<(), FlowError> {
    // Bind to the address the OS would use towards the server, so the Contact names a real
    // interface address and a route change shows up as a different local address.
    let local_ip = local_ip_toward(target.addr)
        .map_err(|e| flow_error(&e, &format!("no route to {}", target.addr)))?;
    let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0))
        .await
        .map_err(|e| flow_error(&e, "cannot open a UDP socket"))?;
    let local = socket
        .local_addr()
        .map_err(|e| flow_error(&e, "UDP socket has no address"))?;
    inputs
        .send(FlowInput::Opened { flow, local })
        .await
        .map_err(|_| driver_gone())?;
    let mut junk = JunkLog::new(flow);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut recv_errors = 0;
    let mut last_pong: Option<Instant> = None;
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, remote)) => {
                    recv_errors = 0;
                    let bytes = &buf[..n];
                    let input = match classify_datagram(bytes) {
                        Datagram::Message => FlowInput::Received { flow, remote, bytes: Bytes::copy_from_slice(bytes) },
                        Datagram::Pong => FlowInput::Pong { flow },
                        Datagram::Ping => {
                            // Only the server's pings, and not faster than it could mean them:
                            // a flood of pings (from anyone) must not become a flood of pongs.
                            let due = last_pong.is_none_or(|at| at.elapsed() >= UDP_PONG_INTERVAL);
                            if remote == target.addr && due {
                                last_pong = Some(Instant::now());
                                let _ = socket.send_to(b"\r\n", remote).await;
                            } else {
                                junk.dropped(EngineDrop::UnansweredPing, Some(remote));
                            }
                            continue;
                        }
                        Datagram::Empty => continue,
                    };
                    match inputs.try_send(input) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => junk.dropped(EngineDrop::InputQueueFull, Some(remote)),
                        Err(TrySendError::Closed(_)) => return Ok(()),
                    }
                }
                // ICMP errors surface here on some systems; they say nothing about our socket.
                Err(err) => {
                    recv_errors += 1;
                    tracing::debug!(%flow, %err, "UDP receive error");
                    if recv_errors >= MAX_UDP_RECV_ERRORS {
                        return Err(flow_error(&err, "UDP socket keeps failing"));
                    }
                }
            },
            write = writes.recv() => match write {
                Some((destination, payload)) => {
                    socket
                        .send_to(&payload, destination)
                        .await
                        .map_err(|e| flow_error(&e, &format!("cannot send to {destination}")))?;
                }
                None => return Ok(()),
            },
            () = junk.summary_due() => junk.flush(),
        }
    }
}

trait SipStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> SipStream for T {}

async fn run_stream(
    flow: FlowId,
    target: &Target,
    tls_config: Option<Result<Arc<rustls::ClientConfig>, String>>,
    inputs: &mpsc::Sender<FlowInput>,
    mut writes: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
) -> Result<(), FlowError> {
    let tcp = TcpStream::connect(target.addr)
        .await
        .map_err(|e| flow_error(&e, &format!("cannot connect to {}", target.addr)))?;
    let _ = tcp.set_nodelay(true);
    let local = tcp
        .local_addr()
        .map_err(|e| flow_error(&e, "connection has no local address"))?;
    let stream: Box<dyn SipStream> = if target.transport == Transport::Tls {
        let config = match tls_config {
            Some(Ok(config)) => config,
            Some(Err(detail)) => {
                return Err(FlowError {
                    kind: FlowErrorKind::TlsCertificate,
                    detail,
                });
            }
            None => {
                return Err(FlowError {
                    kind: FlowErrorKind::Other,
                    detail: "TLS is not set up".into(),
                });
            }
        };
        let tls_stream = tls::connect(tcp, &target.server_name, config)
            .await
            .map_err(|err| FlowError {
                kind: if err.is_certificate_error() {
                    FlowErrorKind::TlsCertificate
                } else {
                    FlowErrorKind::Other
                },
                detail: format!("TLS with {} ({}): {err}", target.addr, target.server_name),
            })?;
        Box::new(tls_stream)
    } else {
        Box::new(tcp)
    };
    inputs
        .send(FlowInput::Opened { flow, local })
        .await
        .map_err(|_| driver_gone())?;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut framer = StreamFramer::default();
    let mut outgoing = Vec::new();
    loop {
        tokio::select! {
            read = reader.read_buf(framer.read_buffer()) => {
                let n = read.map_err(|e| flow_error(&e, "connection broke"))?;
                if n == 0 {
                    return Err(FlowError { kind: FlowErrorKind::Closed, detail: format!("{} closed the connection", target.addr) });
                }
                let (mut pinged, mut ponged) = (false, false);
                while let Some(frame) = framer.next_frame() {
                    match frame {
                        // Waiting here is the back-pressure: while the core is behind, this
                        // flow reads nothing more and the peer's sending window fills.
                        Ok(Frame::Message(bytes)) => inputs
                            .send(FlowInput::Received { flow, remote: target.addr, bytes })
                            .await
                            .map_err(|_| driver_gone())?,
                        Ok(Frame::Ping) => pinged = true,
                        Ok(Frame::Pong) => ponged = true,
                        Err(err) => {
                            return Err(FlowError { kind: FlowErrorKind::Other, detail: format!("unframeable data from {}: {err}", target.addr) });
                        }
                    }
                }
                if framer.buffered() > MAX_BUFFERED_BYTES {
                    return Err(FlowError {
                        kind: FlowErrorKind::Other,
                        detail: format!("{} sent over {MAX_BUFFERED_BYTES} bytes without completing a message", target.addr),
                    });
                }
                // However many pongs this read held, they say one thing: the peer is there.
                if ponged {
                    inputs.send(FlowInput::Pong { flow }).await.map_err(|_| driver_gone())?;
                }
                // However many pings this read held, one pong answers them all.
                if pinged {
                    writer.write_all(b"\r\n").await.map_err(|e| flow_error(&e, "connection broke"))?;
                }
            }
            write = writes.recv() => match write {
                Some((_, payload)) => {
                    // Whatever else is queued goes out in the same write.
                    outgoing.extend_from_slice(&payload);
                    while outgoing.len() < MAX_COALESCED_WRITE {
                        match writes.try_recv() {
                            Ok((_, more)) => outgoing.extend_from_slice(&more),
                            Err(_) => break,
                        }
                    }
                    let written = writer.write_all(&outgoing).await;
                    outgoing.clear();
                    written.map_err(|e| flow_error(&e, "connection broke"))?;
                }
                None => return Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn target(addr: SocketAddr) -> Target {
        Target {
            addr,
            transport: Transport::Tcp,
            server_name: addr.ip().to_string(),
        }
    }

    /// A peer that accepts one connection, writes `bytes`, then reads until we close.
    fn peer(bytes: Vec<u8>) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            // The flow may close first (that is what some tests check): errors are expected.
            let _ = stream.write_all(&bytes);
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let mut received = Vec::new();
            let _ = stream.read_to_end(&mut received);
            received
        });
        (addr, thread)
    }

    const OK: &[u8] = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";

    /// With room for 2 inputs, 20,000 messages all arrive, in order: a stream that outpaces
    /// the core waits for it (the peer's window fills) instead of dropping or queueing.
    #[tokio::test]
    async fn a_stream_flood_waits_for_the_core_and_loses_nothing() {
        let count = 20_000;
        let (addr, peer) = peer(OK.repeat(count));
        let (tx, mut rx) = mpsc::channel(2);
        let handle = FlowHandle::open(FlowId(1), target(addr), None, tx);
        let mut messages = 0;
        loop {
            match rx.recv().await.unwrap() {
                FlowInput::Opened { .. } => {}
                FlowInput::Received { bytes, .. } => {
                    assert_eq!(&bytes[..], OK);
                    messages += 1;
                }
                FlowInput::Failed { error, .. } => {
                    assert_eq!(error.kind, FlowErrorKind::Closed, "{error}");
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(messages, count);
        drop(handle);
        peer.join().unwrap();
    }

    /// 10,000 pings in one burst get a handful of pongs (one per read), not 10,000 writes.
    #[tokio::test]
    async fn a_ping_flood_gets_one_pong_per_read() {
        let pings = 10_000;
        let (addr, peer) = peer(b"\r\n\r\n".repeat(pings));
        let (tx, mut rx) = mpsc::channel(2);
        let handle = FlowHandle::open(FlowId(1), target(addr), None, tx);
        loop {
            match rx.recv().await.unwrap() {
                FlowInput::Failed { error, .. } => {
                    assert_eq!(error.kind, FlowErrorKind::Closed, "{error}");
                    break;
                }
                FlowInput::Opened { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        drop(handle);
        let pongs = peer.join().unwrap();
        assert!(pongs.chunks(2).all(|c| c == b"\r\n"), "{pongs:?}");
        let count = pongs.len() / 2;
        // Each read takes up to 16 KB (4,096 pings); small reads still give at most one each.
        assert!(
            (1..=100).contains(&count),
            "{count} pongs for {pings} pings"
        );
    }

    /// A peer that never completes a message is cut off with a clear cause, holding at most
    /// the largest message we accept.
    #[tokio::test]
    async fn endless_headers_close_the_flow_with_a_cause() {
        let (addr, peer) = peer(vec![b'a'; 1024 * 1024]);
        let (tx, mut rx) = mpsc::channel(2);
        let handle = FlowHandle::open(FlowId(1), target(addr), None, tx);
        let error = loop {
            match rx.recv().await.unwrap() {
                FlowInput::Failed { error, .. } => break error,
                FlowInput::Opened { .. } => {}
                other => panic!("{other:?}"),
            }
        };
        assert!(error.detail.contains("unframeable"), "{error}");
        assert!(error.detail.contains("headers exceed"), "{error}");
        drop(handle);
        peer.join().unwrap();
    }

    /// A UDP flood never blocks the flow: what does not fit the core's queue is dropped and
    /// counted. Pings are answered only when they come from the server.
    #[tokio::test]
    async fn a_udp_flood_is_dropped_beyond_the_queue_and_strangers_get_no_pong() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // A bound on the wait for the pong: a flow that never answers fails the test.
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.set_nonblocking(true).unwrap();
        let target = Target {
            transport: Transport::Udp,
            ..target(server.local_addr().unwrap())
        };
        let (tx, mut rx) = mpsc::channel(1);
        let handle = FlowHandle::open(FlowId(1), target, None, tx);
        let Some(FlowInput::Opened { local, .. }) = rx.recv().await else {
            panic!("not opened");
        };
        for _ in 0..50 {
            server.send_to(OK, local).unwrap();
        }
        stranger.send_to(b"\r\n\r\n", local).unwrap();
        server.send_to(b"\r\n\r\n", local).unwrap();
        // The flow reads in order: once the server's ping is answered, everything before it
        // was handled.
        let mut pong = [0u8; 8];
        let server_pong = tokio::task::spawn_blocking(move || {
            let n = server.recv(&mut pong).unwrap();
            pong[..n].to_vec()
        });
        assert_eq!(server_pong.await.unwrap(), b"\r\n");
        let mut buf = [0u8; 8];
        assert_eq!(
            stranger.recv(&mut buf).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::WouldBlock),
            "a stranger's ping was answered"
        );
        assert!(matches!(rx.try_recv(), Ok(FlowInput::Received { .. })));
        assert!(rx.try_recv().is_err(), "more queued than the queue holds");
        drop(handle);
    }
}
