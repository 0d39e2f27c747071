//! Real network changes for end-to-end tests, in Linux network namespaces.
//!
//! A [`Topology`] is three namespaces joined by veth pairs: `reg` (the registrar, 198.18.0.1 on its
//! loopback), `router` (forwards, or masquerades when built with NAT) and `cli` (the client, with a
//! "Wi-Fi" link on 198.18.1.0/24 and a "wired" link on 198.18.2.0/24). Tests change that network the
//! way an operating system would (routes, addresses, link state, NAT state, loss, connection
//! resets) and then check what the registrar holds.
//!
//! Everything here is torn down on `Drop`, even when a test panics half-way: processes first (they
//! hold namespaces alive), then namespaces (which takes their veth pairs with them), then the
//! temporary directory. Every name is unique per process and per topology, so tests run in
//! parallel. Nothing leaves the namespaces: only 198.18.0.0/15 is used, nothing is connected to the
//! host's namespace, and every command runs with a private /etc/hosts and /etc/resolv.conf.

mod baresip;
pub mod bench;
mod bindings;
mod client;
mod registrar;
mod scenario;
mod topology;

pub use baresip::{baresip_has_netroam, baresip_version, Baresip};
pub use registrar::{NsRegistrar, RegistrarOptions};
pub use scenario::{
    cli_path, same_uri, Scenario, ScenarioOptions, REGISTER_LIMIT, SETTLE_LIMIT, USER,
};

pub use bindings::{parse_register_line, parse_ul_dump, Binding, RegisterEvent};
pub use client::{contains_host, CliClient, CliStatus, ClientOptions};
pub use topology::{Link, LossGuard, Topology, TopologyOptions, REGISTRAR_ADDR};

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// What went wrong while building or changing the test network.
#[derive(thiserror::Error)]
pub enum NetnsError {
    /// A command we ran (ip, nft, tc, conntrack, ss, ...) failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    /// A program could not be started at all (usually: not installed).
    #[error("cannot run `{program}`: {source} (is it installed? `make netns-deps`)")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A bounded wait ran out; `what` says what we were waiting for, `last` what we saw last.
    #[error("timed out after {waited:?} waiting for {what}; last seen: {last}")]
    Timeout {
        what: String,
        waited: Duration,
        last: String,
    },
    /// The network or the registrar is not in the state the scenario requires.
    #[error("expected {expected}; saw {seen}")]
    Unexpected { expected: String, seen: String },
    /// A process we started ended while a test still needed it.
    #[error("{what} exited early ({status}); stderr tail:\n{stderr}")]
    Exited {
        what: String,
        status: String,
        stderr: String,
    },
}

/// Tests return `Result<(), NetnsError>` and the test harness prints a failure with `Debug`:
/// make that the readable message (and its cause), not a struct dump.
impl std::fmt::Debug for NetnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

pub type Result<T, E = NetnsError> = std::result::Result<T, E>;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetnsError {
    let context = context.into();
    move |source| NetnsError::Io { context, source }
}

/// True when this process may create network namespaces. Otherwise prints why the test is skipped,
/// so a non-root `cargo test` passes visibly instead of silently.
pub fn have_root(test: &str) -> bool {
    if effective_uid() == Some(0) {
        return true;
    }
    crate::skip::skipped(
        test,
        "needs root for network namespaces (run as root, or `sudo make netns-test`)",
    );
    false
}

fn effective_uid() -> Option<u32> {
    // /proc avoids a libc dependency; the second field of `Uid:` is the effective uid.
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// A name no other topology in any process on this machine is using: `vf` + pid + counter + tag.
/// Namespace names are free-form, but we keep them short for readable `ip netns` listings.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("vf{}-{n}-{tag}", std::process::id())
}

/// Runs a command to completion; a non-zero exit is an error carrying its stderr.
pub fn run<I, S>(program: &str, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_command(cmd)
}

pub(crate) fn run_command(mut cmd: Command) -> Result<String> {
    let shown = format_command(&cmd);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out: Output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| NetnsError::Spawn { program, source })?;
    if !out.status.success() {
        return Err(NetnsError::Command {
            command: shown,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn format_command(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// One network namespace, deleted on drop together with whatever still runs inside it.
#[derive(Debug)]
pub struct Namespace {
    name: String,
    /// Private /etc/hosts and /etc/resolv.conf bind-mounted over the real ones for every command
    /// run inside, so no name lookup can reach the host's resolver.
    hosts: PathBuf,
    resolv: PathBuf,
}

impl Namespace {
    /// Creates the namespace and brings its loopback up. `etc_dir` holds the private files.
    pub fn create(name: String, etc_dir: &Path) -> Result<Self> {
        run("ip", ["netns", "add", &name])?;
        let ns = Namespace {
            name,
            hosts: etc_dir.join("hosts"),
            resolv: etc_dir.join("resolv.conf"),
        };
        ns.ip(["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> ...`: configuration needs no mount namespace, so it skips the wrapper.
    pub fn ip<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.arg("-n").arg(&self.name).args(args);
        run_command(cmd)
    }

    /// Several `ip` commands in one process (`ip -batch`), so a change the OS would make at once
    /// (move the default route and drop the old address) reaches netlink listeners back to back.
    pub fn ip_batch(&self, lines: &[String]) -> Result<()> {
        let script = lines.join("\n") + "\n";
        let path = self.hosts.with_file_name(format!("{}.batch", self.name));
        std::fs::write(&path, script).map_err(io_err("writing ip batch file"))?;
        let mut cmd = Command::new("ip");
        cmd.arg("-n").arg(&self.name).arg("-batch").arg(&path);
        let result = run_command(cmd).map(|_| ());
        let _ = std::fs::remove_file(&path);
        result
    }

    /// A command that will run inside this namespace, in its own mount namespace with the private
    /// /etc/hosts and /etc/resolv.conf. The process keeps its pid across the wrappers (each
    /// `exec`s), so signalling the child signals the program itself.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name])
            .args(["unshare", "--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@""#)
            .arg("vf-netns")
            .arg(&self.hosts)
            .arg(&self.resolv)
            .arg(program);
        cmd
    }

    /// Runs a program inside the namespace to completion.
    pub fn exec<I, S>(&self, program: &str, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(program);
        cmd.args(args);
        run_command(cmd)
    }

    /// Pids of every process inside the namespace.
    fn pids(&self) -> Vec<u32> {
        run("ip", ["netns", "pids", &self.name])
            .map(|out| {
                out.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Only processes inside a namespace this test created: ours by construction. A namespace
        // with live processes would outlive `ip netns del` and keep its veth pairs.
        for signal in ["-TERM", "-KILL"] {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            let mut kill = Command::new("kill");
            kill.arg(signal).args(pids.iter().map(u32::to_string));
            let _ = kill.stderr(Stdio::null()).status();
            let _ = wait_until(Duration::from_secs(2), Duration::from_millis(20), || {
                self.pids().is_empty().then_some(())
            });
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// A temporary directory removed on drop (std has none, and the harness adds no crate for it).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(unique_name(tag));
        std::fs::create_dir_all(&path).map_err(io_err(format!("creating {}", path.display())))?;
        Ok(TempDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `f` every `every` until it returns `Some`, for at most `limit`. `None` when time ran out.
/// The one way tests here wait: bounded, and done as soon as the condition holds.
pub fn wait_until<T>(
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(every.min(deadline - now));
    }
}

/// Seconds since the Unix epoch on CLOCK_REALTIME, the clock Kamailio's `$TV` and tcpdump use.
pub fn realtime_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A fresh random password (hex of 16 bytes from the kernel's CSPRNG), so none is ever committed.
pub fn generate_password() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_err("reading /dev/urandom"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
