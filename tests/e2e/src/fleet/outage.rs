//! A broken path on loopback: nftables drops every packet to or from the registrar's port while
//! the registrar keeps running (its bindings expire as they would behind a dead link). Needs
//! root; the table is removed on drop.

use crate::netns::{run, NetnsError};

/// Packets to and from one port on loopback are dropped while this lives.
#[derive(Debug)]
pub struct PathDrop {
    table: String,
}

impl PathDrop {
    /// Starts dropping UDP and TCP packets to and from `port` on `lo`.
    pub fn start(port: u16) -> Result<PathDrop, NetnsError> {
        // One table per process and port: other benchmarks and tests may run at the same time.
        let table = format!("vicifast_fleet_{}_{port}", std::process::id());
        let script = format!(
            "table inet {table} {{\n\
             \tchain input {{\n\
             \t\ttype filter hook input priority -10; policy accept;\n\
             \t\tiif \"lo\" udp dport {port} drop\n\
             \t\tiif \"lo\" udp sport {port} drop\n\
             \t\tiif \"lo\" tcp dport {port} drop\n\
             \t\tiif \"lo\" tcp sport {port} drop\n\
             \t}}\n\
             }}\n"
        );
        let dir = tempfile::Builder::new()
            .prefix("vicifast-fleet-nft-")
            .tempdir()
            .map_err(crate::netns::io_err(
                "creating a temp dir for the nftables rules",
            ))?;
        let path = dir.path().join("drop.nft");
        std::fs::write(&path, script)
            .map_err(crate::netns::io_err("writing the nftables rules"))?;
        run("nft", [std::ffi::OsStr::new("-f"), path.as_os_str()])?;
        Ok(PathDrop { table })
    }

    /// Restores the path.
    pub fn end(self) {}
}

impl Drop for PathDrop {
    fn drop(&mut self) {
        if let Err(err) = run("nft", ["delete", "table", "inet", &self.table]) {
            eprintln!("could not remove nftables table {}: {err}", self.table);
        }
    }
}
