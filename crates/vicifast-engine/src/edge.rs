//! The softphone listener: the sockets of the edge proxy ([`vicifast_core::edge`]).
//!
//! One UDP socket and one TCP listener on the same loopback address and port
//! ([`EdgeConfig::listen`], `127.0.0.1:5070` by default). Nothing else is ever bound: a listener
//! on any other address is refused before a socket exists, and a datagram or connection from a
//! non-loopback source (which the kernel should never deliver to a loopback socket) is dropped
//! here as well as in the core. Messages for the PBX leave through the registration's flow, never
//! through these sockets, so the listener cannot relay anywhere else.
//!
//! Everything is bounded: the queue of arrivals to the driver (a full queue stops reading, and
//! the kernel drops datagrams, as UDP may), the number of TCP connections, and each connection's
//! queue of writes (a softphone that does not read loses messages, not our memory).

use crate::framing::{classify_datagram, Datagram, Frame, StreamFramer};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vicifast_core::edge::{ConnectionId, EdgeConfig, EdgeConfigError, LocalPeer, LocalTransmit};
use vicifast_core::Transport;

/// Arrivals waiting for the driver.
const ARRIVALS: usize = 256;
/// Open TCP connections with softphones on this computer; more are refused.
const MAX_CONNECTIONS: usize = 32;
/// Messages waiting to be written on one connection.
const WRITES_PER_CONNECTION: usize = 64;
const MAX_DATAGRAM: usize = 65_535;

/// Why the softphone listener could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoftphoneError {
    #[error(transparent)]
    Config(#[from] EdgeConfigError),
    #[error("cannot listen for the softphone on {addr} ({transport}): {source}{hint}", hint = bind_hint(source))]
    Bind {
        addr: SocketAddr,
        transport: Transport,
        source: io::Error,
    },
}

fn bind_hint(err: &io::Error) -> &'static str {
    match err.kind() {
        io::ErrorKind::AddrInUse => {
            ". Another program uses this port (another VICIfast, or a softphone listening on it): choose another softphone port, or change the softphone's own SIP port"
        }
        io::ErrorKind::PermissionDenied => ". Choose a port above 1023",
        _ => "",
    }
}

/// What the listener's tasks tell the driver.
#[derive(Debug)]
pub(crate) enum ListenerInput {
    Received {
        peer: LocalPeer,
        bytes: Vec<u8>,
    },
    /// A TCP connection (accepted, or opened to the softphone) closed or could not be opened.
    Closed {
        connection: ConnectionId,
    },
    /// Connecting to the softphone was refused: nothing listens there.
    Unreachable {
        peer: LocalPeer,
    },
}

/// One TCP connection's write queue, and the task that runs it.
struct Connection {
    peer: SocketAddr,
    writes: mpsc::Sender<Vec<u8>>,
    task: JoinHandle<()>,
}

/// The bound sockets of one account's edge proxy and their tasks. Dropping it closes them all.
pub(crate) struct SoftphoneListener {
    local: SocketAddr,
    udp: Arc<UdpSocket>,
    connections: HashMap<ConnectionId, Connection>,
    next_connection: u64,
    arrivals_tx: mpsc::Sender<ListenerInput>,
    arrivals: mpsc::Receiver<ListenerInput>,
    accepted: mpsc::Receiver<(TcpStream, SocketAddr)>,
    tasks: Vec<JoinHandle<()>>,
}

impl SoftphoneListener {
    /// Binds the UDP socket and the TCP listener to `config.listen` (port 0: one free port for
    /// both). Must be called inside a tokio runtime.
    pub fn bind(config: &EdgeConfig) -> Result<Self, SoftphoneError> {
        config.validate()?;
        let (udp, tcp) = bind_pair(config.listen)?;
        let local = udp.local_addr().map_err(|source| SoftphoneError::Bind {
            addr: config.listen,
            transport: Transport::Udp,
            source,
        })?;
        let udp = Arc::new(udp);
        let (arrivals_tx, arrivals) = mpsc::channel(ARRIVALS);
        let (accepted_tx, accepted) = mpsc::channel(8);
        let tasks = vec![
            tokio::spawn(read_datagrams(udp.clone(), arrivals_tx.clone())),
            tokio::spawn(accept(tcp, accepted_tx)),
        ];
        tracing::info!(%local, "listening for the softphone (UDP and TCP)");
        Ok(Self {
            local,
            udp,
            connections: HashMap::new(),
            next_connection: 0,
            arrivals_tx,
            arrivals,
            accepted,
            tasks,
        })
    }

    /// The address bound (the configured one, with the port chosen when it was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next arrival; accepted connections are set up on the way.
    pub async fn recv(&mut self) -> Option<ListenerInput> {
        loop {
            tokio::select! {
                input = self.arrivals.recv() => {
                    if let Some(ListenerInput::Closed { connection }) = &input {
                        self.connections.remove(connection);
                    }
                    return input;
                }
                Some((stream, peer)) = self.accepted.recv() => self.adopt(stream, peer),
            }
        }
    }

    /// Sends to the softphone: UDP from the listener's socket, TCP on the given connection, on
    /// one already open to that address, or on a new one.
    pub fn send(&mut self, transmit: LocalTransmit) {
        let LocalTransmit { peer, payload } = transmit;
        if !peer.addr.ip().is_loopback() {
            tracing::warn!(remote = %peer.addr, "refused to send softphone traffic off this computer");
            return;
        }
        if peer.transport == Transport::Udp {
            // Loopback sockets do not block in practice; a full buffer loses the datagram as UDP
            // may, and SIP retransmits.
            if let Err(err) = self.udp.try_send_to(&payload, peer.addr) {
                tracing::debug!(remote = %peer.addr, %err, "datagram to the softphone not sent");
            }
            return;
        }
        let existing = peer
            .connection
            .filter(|c| self.connections.contains_key(c))
            .or_else(|| {
                self.connections
                    .iter()
                    .find(|(_, c)| c.peer == peer.addr)
                    .map(|(id, _)| *id)
            });
        let id = match existing {
            Some(id) => id,
            None => match self.connect(peer.addr) {
                Some(id) => id,
                None => return,
            },
        };
        if let Some(connection) = self.connections.get(&id) {
            if connection.writes.try_send(payload).is_err() {
                tracing::warn!(remote = %peer.addr, "the softphone does not read its connection: message dropped");
            }
        }
    }

    fn new_connection_id(&mut self) -> Option<ConnectionId> {
        if self.connections.len() >= MAX_CONNECTIONS {
            tracing::warn!(
                "{MAX_CONNECTIONS} softphone connections are open already: another refused"
            );
            return None;
        }
        self.next_connection += 1;
        Some(ConnectionId(self.next_connection))
    }

    fn adopt(&mut self, stream: TcpStream, peer: SocketAddr) {
        let Some(id) = self.new_connection_id() else {
            return;
        };
        let (writes, queued) = mpsc::channel(WRITES_PER_CONNECTION);
        let arrivals = self.arrivals_tx.clone();
        let task = tokio::spawn(async move {
            run_connection(id, stream, peer, queued, &arrivals).await;
            let _ = arrivals
                .send(ListenerInput::Closed { connection: id })
                .await;
        });
        self.connections
            .insert(id, Connection { peer, writes, task });
    }

    /// Opens a connection to a softphone reached over TCP without one (it registered over UDP
    /// with `;transport=tcp`, or its connection closed); what is queued meanwhile waits for it.
    fn connect(&mut self, addr: SocketAddr) -> Option<ConnectionId> {
        let id = self.new_connection_id()?;
        let (writes, queued) = mpsc::channel(WRITES_PER_CONNECTION);
        let arrivals = self.arrivals_tx.clone();
        let task = tokio::spawn(async move {
            match TcpStream::connect(addr).await {
                Ok(stream) => run_connection(id, stream, addr, queued, &arrivals).await,
                Err(err) => {
                    tracing::debug!(remote = %addr, %err, "cannot connect to the softphone");
                    let peer = LocalPeer {
                        transport: Transport::Tcp,
                        addr,
                        connection: None,
                    };
                    let _ = arrivals.send(ListenerInput::Unreachable { peer }).await;
                }
            }
            let _ = arrivals
                .send(ListenerInput::Closed { connection: id })
                .await;
        });
        self.connections.insert(
            id,
            Connection {
                peer: addr,
                writes,
                task,
            },
        );
        Some(id)
    }
}

impl Drop for SoftphoneListener {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for connection in self.connections.values() {
            connection.task.abort();
        }
    }
}

/// A UDP socket and a TCP listener on the same address and port.
fn bind_pair(listen: SocketAddr) -> Result<(UdpSocket, TcpListener), SoftphoneError> {
    let bind_error = |transport, source| SoftphoneError::Bind {
        addr: listen,
        transport,
        source,
    };
    // With port 0 the TCP port chosen for UDP's may be taken: try a few.
    let attempts = if listen.port() == 0 { 8 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = std::net::UdpSocket::bind(listen).map_err(|e| bind_error(Transport::Udp, e))?;
        let addr = udp
            .local_addr()
            .map_err(|e| bind_error(Transport::Udp, e))?;
        match std::net::TcpListener::bind(addr) {
            Ok(tcp) => {
                let into_tokio = || -> io::Result<(UdpSocket, TcpListener)> {
                    udp.set_nonblocking(true)?;
                    tcp.set_nonblocking(true)?;
                    Ok((UdpSocket::from_std(udp)?, TcpListener::from_std(tcp)?))
                };
                return into_tokio().map_err(|e| bind_error(Transport::Udp, e));
            }
            Err(err) => last = Some(err),
        }
    }
    Err(bind_error(
        Transport::Tcp,
        last.unwrap_or_else(|| io::Error::other("no port")),
    ))
}

async fn read_datagrams(socket: Arc<UdpSocket>, arrivals: mpsc::Sender<ListenerInput>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            // ICMP errors from earlier sends surface here; they say nothing about this socket.
            Err(err) => {
                tracing::debug!(%err, "softphone listener: receive error");
                continue;
            }
        };
        if !from.ip().is_loopback() {
            tracing::debug!(remote = %from, "datagram from another computer dropped");
            continue;
        }
        let bytes = &buf[..n];
        match classify_datagram(bytes) {
            Datagram::Message => {}
            // RFC 5626 §4.4.1 over UDP: answer the ping; nothing else to do.
            Datagram::Ping => {
                let _ = socket.send_to(b"\r\n", from).await;
                continue;
            }
            Datagram::Pong | Datagram::Empty => continue,
        }
        let peer = LocalPeer {
            transport: Transport::Udp,
            addr: from,
            connection: None,
        };
        let input = ListenerInput::Received {
            peer,
            bytes: bytes.to_vec(),
        };
        if arrivals.send(input).await.is_err() {
            return;
        }
    }
}

async fn accept(listener: TcpListener, accepted: mpsc::Sender<(TcpStream, SocketAddr)>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) if peer.ip().is_loopback() => {
                let _ = stream.set_nodelay(true);
                if accepted.send((stream, peer)).await.is_err() {
                    return;
                }
            }
            Ok((_, peer)) => {
                tracing::debug!(remote = %peer, "connection from another computer refused")
            }
            Err(err) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(%err, "softphone listener: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn run_connection(
    id: ConnectionId,
    stream: TcpStream,
    addr: SocketAddr,
    mut writes: mpsc::Receiver<Vec<u8>>,
    arrivals: &mpsc::Sender<ListenerInput>,
) {
    let peer = LocalPeer {
        transport: Transport::Tcp,
        addr,
        connection: Some(id),
    };
    let (mut reader, mut writer) = stream.into_split();
    let mut framer = StreamFramer::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                framer.read_buffer().extend_from_slice(&buf[..n]);
                while let Some(frame) = framer.next_frame() {
                    match frame {
                        Ok(Frame::Message(bytes)) => {
                            if arrivals.send(ListenerInput::Received { peer, bytes: bytes.to_vec() }).await.is_err() {
                                return;
                            }
                        }
                        Ok(Frame::Ping) => {
                            if writer.write_all(b"\r\n").await.is_err() {
                                return;
                            }
                        }
                        Ok(Frame::Pong) => {}
                        Err(err) => {
                            tracing::debug!(remote = %addr, %err, "unframeable data from the softphone: connection closed");
                            return;
                        }
                    }
                }
            }
            write = writes.recv() => match write {
                Some(payload) => {
                    if writer.write_all(&payload).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
        }
    }
}
