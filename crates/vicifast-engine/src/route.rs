//! Which local address the OS would use to reach a server right now.
//!
//! Neither `if-watch` nor `netdev` reports a change of default route, and a switch from Wi-Fi to
//! wired with both links up can happen without any address event. Connecting a UDP socket makes
//! the kernel pick the route and source address without sending a packet, so asking again after
//! every network event (and with each keep-alive) catches route-only changes on every platform.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

/// The source address the routing table picks for `server`. Fails when no route exists
/// (offline, or the only route went away).
pub(crate) fn local_ip_toward(server: SocketAddr) -> io::Result<IpAddr> {
    let unspecified: IpAddr = match server {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind(SocketAddr::new(unspecified, 0))?;
    socket.connect(server)?;
    let ip = socket.local_addr()?.ip();
    if ip.is_unspecified() {
        return Err(io::Error::new(
            io::ErrorKind::NetworkUnreachable,
            "no source address",
        ));
    }
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_server_is_reached_from_loopback() {
        let ip = local_ip_toward("127.0.0.1:5060".parse().unwrap()).unwrap();
        assert!(ip.is_loopback(), "{ip}");
    }
}
