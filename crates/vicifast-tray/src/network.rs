//! Which network interface carries the registration (shown in the window's details).

use std::net::SocketAddr;

/// The name of the interface holding `local_address` (`ip:port`), if any.
pub fn interface_of(local_address: &str) -> Option<String> {
    let ip = local_address.parse::<SocketAddr>().ok()?.ip();
    if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .find(|i| i.ip() == ip)
        .map(|i| i.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_and_garbage_is_not() {
        assert!(interface_of("127.0.0.1:5060").is_some());
        assert_eq!(interface_of("not an address"), None);
    }
}
