//! Flows (RFC 5626 §3): one UDP socket, or one TCP/TLS connection, to one server address. Each
//! runs as its own task that opens the transport, reports what arrives, and writes what the core
//! sends; dropping the [`FlowHandle`] closes it.

use crate::framing::{classify_datagram, Datagram, Frame, StreamFramer};
use crate::route::local_ip_toward;
use crate::tls;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vicifast_core::{FlowError, FlowErrorKind, FlowId, Target, Transport};

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
        bytes: Vec<u8>,
    },
    /// A keep-alive answer (RFC 5626 §4.4.1 pong) arrived.
    Pong {
        flow: FlowId,
    },
}

/// The driver's side of a running flow.
#[derive(Debug)]
pub(crate) struct FlowHandle {
    writes: mpsc::UnboundedSender<(SocketAddr, Vec<u8>)>,
    task: JoinHandle<()>,
}

impl FlowHandle {
    /// Starts opening a flow to `target`; the outcome arrives on `inputs`.
    pub fn open(
        flow: FlowId,
        target: Target,
        tls_config: Option<Result<Arc<rustls::ClientConfig>, String>>,
        inputs: mpsc::UnboundedSender<FlowInput>,
    ) -> Self {
        let (writes, pending_writes) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let result = match target.transport {
                Transport::Udp => run_udp(flow, &target, &inputs, pending_writes).await,
                Transport::Tcp | Transport::Tls => {
                    run_stream(flow, &target, tls_config, &inputs, pending_writes).await
                }
            };
            if let Err(error) = result {
                let _ = inputs.send(FlowInput::Failed { flow, error });
            }
        });
        Self { writes, task }
    }

    pub fn send(&self, destination: SocketAddr, payload: Vec<u8>) {
        let _ = self.writes.send((destination, payload));
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

async fn run_udp(
    flow: FlowId,
    target: &Target,
    inputs: &mpsc::UnboundedSender<FlowInput>,
    mut writes: mpsc::UnboundedReceiver<(SocketAddr, Vec<u8>)>,
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
    let _ = inputs.send(FlowInput::Opened { flow, local });
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut recv_errors = 0;
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, remote)) => {
                    recv_errors = 0;
                    let bytes = &buf[..n];
                    match classify_datagram(bytes) {
                        Datagram::Message => {
                            let _ = inputs.send(FlowInput::Received { flow, remote, bytes: bytes.to_vec() });
                        }
                        Datagram::Pong => {
                            let _ = inputs.send(FlowInput::Pong { flow });
                        }
                        Datagram::Ping => {
                            let _ = socket.send_to(b"\r\n", remote).await;
                        }
                        Datagram::Empty => {}
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
        }
    }
}

trait SipStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> SipStream for T {}

async fn run_stream(
    flow: FlowId,
    target: &Target,
    tls_config: Option<Result<Arc<rustls::ClientConfig>, String>>,
    inputs: &mpsc::UnboundedSender<FlowInput>,
    mut writes: mpsc::UnboundedReceiver<(SocketAddr, Vec<u8>)>,
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
    let _ = inputs.send(FlowInput::Opened { flow, local });
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut framer = StreamFramer::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = read.map_err(|e| flow_error(&e, "connection broke"))?;
                if n == 0 {
                    return Err(FlowError { kind: FlowErrorKind::Closed, detail: format!("{} closed the connection", target.addr) });
                }
                framer.push(&buf[..n]);
                while let Some(frame) = framer.next_frame() {
                    match frame {
                        Ok(Frame::Message(bytes)) => {
                            let _ = inputs.send(FlowInput::Received { flow, remote: target.addr, bytes });
                        }
                        Ok(Frame::Ping) => {
                            writer.write_all(b"\r\n").await.map_err(|e| flow_error(&e, "connection broke"))?;
                        }
                        Ok(Frame::Pong) => {
                            let _ = inputs.send(FlowInput::Pong { flow });
                        }
                        Err(err) => {
                            return Err(FlowError { kind: FlowErrorKind::Other, detail: format!("unframeable data from {}: {err}", target.addr) });
                        }
                    }
                }
            }
            write = writes.recv() => match write {
                Some((_, payload)) => {
                    writer.write_all(&payload).await.map_err(|e| flow_error(&e, "connection broke"))?;
                }
                None => return Ok(()),
            },
        }
    }
}
