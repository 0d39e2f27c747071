//! A real Kamailio registrar for one test: its own temp dir, ports, TLS certificate, log and
//! control socket; stopped on drop.

use crate::tools::{
    find_program, make_test_certificates, run_with_deadline, TEST_CA_FILE, TEST_SERVER_CERT,
    TEST_SERVER_KEY,
};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const TEMPLATE: &str = include_str!("../../registrar/kamailio.cfg.in");
const READY_DEADLINE: Duration = Duration::from_secs(10);
const STOP_DEADLINE: Duration = Duration::from_secs(5);
const RPC_DEADLINE: Duration = Duration::from_secs(10);
/// tm gives up on a silent contact after fr_timer / fr_inv_timer (5 s / 10 s in the config).
const REQUEST_DEADLINE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(25);

/// SIP transport, as the CLI's `--transport` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub const ALL: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Tls];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to configure one registrar.
#[derive(Debug, Clone)]
pub struct RegistrarOptions {
    /// `registrar` max_contacts per AOR; `None` means unlimited.
    pub max_contacts: Option<u32>,
    /// Shortest registration Kamailio grants (seconds); shorter requests are raised to it.
    pub min_expires: u32,
    /// Also listen on [::1] (same ports).
    pub ipv6: bool,
    /// Digest realm of the challenges.
    pub realm: String,
    /// Also proxy calls between the registered users (Record-Route, 407 for its own users'
    /// INVITEs, requests to a user over the flow its binding came in on).
    pub calls: bool,
    /// Asterisk's habits to reproduce (see [`AsteriskHabits`]).
    pub asterisk: AsteriskHabits,
    /// When set, every user without a stored password has the password
    /// [`derived_password`]`(key, user)`: thousands of users with nothing to install.
    pub derived_password_key: Option<String>,
    /// Kamailio's shared memory (MiB): bindings and transactions live there.
    pub shared_memory_mib: u32,
    /// TCP/TLS connections Kamailio accepts at once; `None` keeps its default (2048).
    pub max_tcp_connections: Option<u32>,
}

impl Default for RegistrarOptions {
    fn default() -> Self {
        Self {
            max_contacts: None,
            min_expires: 5,
            ipv6: false,
            realm: "vicifast.test".to_owned(),
            calls: false,
            asterisk: AsteriskHabits::default(),
            derived_password_key: None,
            shared_memory_mib: 48,
            max_tcp_connections: None,
        }
    }
}

/// What an Asterisk PBX does that Kamailio does not by default, switched on per registrar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AsteriskHabits {
    /// A new binding replaces every other of the extension (chan_sip; res_pjsip
    /// `max_contacts=1`, `remove_existing=yes`): Kamailio's `save()` flag 0x04.
    pub replace_existing: bool,
    /// Credentials that do not match get 403, not a new challenge (chan_sip `alwaysauthreject`).
    pub forbid_bad_credentials: bool,
}

impl AsteriskHabits {
    /// The `#!define` lines that switch the habits on in the config template.
    fn defines(self) -> String {
        let mut lines = String::new();
        if self.replace_existing {
            lines.push_str("#!define REPLACE_EXISTING\n");
        }
        if self.forbid_bad_credentials {
            lines.push_str("#!define FORBID_BAD_CREDENTIALS\n");
        }
        lines
    }
}

/// One binding as Kamailio's `ul.lookup` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI as registered.
    pub uri: String,
    /// Seconds left; `None` when Kamailio shows no number (permanent or deleted).
    pub expires: Option<i64>,
    /// Where the REGISTER came from (`sip:ip:port;transport=..`), set by `fix_nated_register`.
    pub received: Option<String>,
    /// The registrar socket the REGISTER arrived on (`udp:127.0.0.1:port`).
    pub socket: Option<String>,
    /// RFC 5626 `+sip.instance`, when the client sent one.
    pub instance: Option<String>,
    /// RFC 5626 `reg-id` (0 when absent).
    pub reg_id: Option<u32>,
    pub user_agent: Option<String>,
}

/// One REGISTER as the config's `VFREG` log line records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterAttempt {
    /// `udp:127.0.0.1:40000`
    pub source: String,
    /// Whether it carried an Authorization header.
    pub authorized: bool,
    /// The Expires header value, if any.
    pub expires: Option<String>,
    /// The Contact header value(s) as received.
    pub contact: String,
}

impl RegisterAttempt {
    /// Whether this REGISTER asked to remove bindings (Expires: 0 or a contact with expires=0).
    pub fn is_removal(&self) -> bool {
        self.expires.as_deref() == Some("0") || self.contact.replace(' ', "").contains("expires=0")
    }
}

/// What went wrong in the harness (not in the code under test).
#[derive(thiserror::Error)]
pub enum HarnessError {
    #[error("{0} not found: run `make test`, which installs it")]
    NotInstalled(&'static str),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not make the test TLS certificate: {0}")]
    Certificate(String),
    #[error("no free port pair found on loopback")]
    NoFreePort,
    #[error("kamailio did not become ready within {waited:?}: {reason}\n--- kamailio log tail ---\n{log_tail}")]
    NotReady {
        waited: Duration,
        reason: String,
        log_tail: String,
    },
    #[error("kamcmd {method}: {message}")]
    Rpc { method: String, message: String },
    #[error("kamcmd {method}: unexpected reply: {reply}")]
    BadReply { method: String, reply: String },
    #[error("no binding with contact {0} at the registrar")]
    NoSuchBinding(String),
}

/// Debug shows the message: tests `unwrap()` these, and the panic should read as prose (with
/// the Kamailio log tail), not as a struct dump.
impl std::fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let context = context.into();
    move |source| HarnessError::Io { context, source }
}

/// A running Kamailio registrar. Dropping it stops Kamailio.
pub struct Registrar {
    options: RegistrarOptions,
    dir: tempfile::TempDir,
    kamailio: PathBuf,
    kamcmd: PathBuf,
    sip_port: u16,
    tls_port: u16,
    child: Option<Child>,
    /// Users and passwords, re-installed after [`Registrar::restart`] (the htable is in memory).
    users: Mutex<Vec<(String, String)>>,
    /// The network namespace Kamailio runs in (`None`: this process's own).
    netns: Option<String>,
    /// The address it listens on (loopback unless placed in a namespace).
    listen_host: String,
}

impl Registrar {
    /// Starts a registrar and waits until its control socket answers.
    ///
    /// # Panics
    /// When kamailio, kamcmd or openssl is not installed: that is a machine setup problem, and the
    /// message says how to fix it.
    pub fn start(options: RegistrarOptions) -> Result<Registrar, HarnessError> {
        Self::start_placed(options, None, "127.0.0.1")
    }

    /// Starts a registrar inside the network namespace `netns` (made by the test), listening on
    /// `host`, an address of that namespace. Its control socket is a file, so it is managed from
    /// here as usual. IPv6 and TLS certificates stay loopback-only.
    pub fn start_in_netns(
        options: RegistrarOptions,
        netns: &str,
        host: &str,
    ) -> Result<Registrar, HarnessError> {
        Self::start_placed(options, Some(netns.to_owned()), host)
    }

    fn start_placed(
        options: RegistrarOptions,
        netns: Option<String>,
        listen_host: &str,
    ) -> Result<Registrar, HarnessError> {
        let kamailio = require("kamailio");
        let kamcmd = require("kamcmd");
        let dir = tempfile::Builder::new()
            .prefix("vicifast-kamailio-")
            .tempdir()
            .map_err(io("creating the registrar temp dir"))?;
        make_certificates(dir.path())?;
        write_tls_config(dir.path())?;
        let mut registrar = Registrar {
            options,
            dir,
            kamailio,
            kamcmd,
            sip_port: 0,
            tls_port: 0,
            child: None,
            users: Mutex::new(Vec::new()),
            netns,
            listen_host: listen_host.to_owned(),
        };
        let mut attempts = 0;
        loop {
            (registrar.sip_port, registrar.tls_port) = pick_ports(registrar.options.ipv6)?;
            registrar.write_config()?;
            match registrar.launch() {
                Ok(()) => return Ok(registrar),
                // A port picked as free can be taken by another process before Kamailio binds it.
                Err(_)
                    if attempts < 2 && registrar.log_text().contains("Address already in use") =>
                {
                    attempts += 1;
                    registrar.stop();
                    let _ = File::create(registrar.log_path());
                }
                Err(err) => return Err(err),
            }
        }
    }

    pub fn options(&self) -> &RegistrarOptions {
        &self.options
    }

    /// The address it listens on.
    pub fn host(&self) -> &str {
        &self.listen_host
    }

    /// UDP and TCP share one port number.
    pub fn udp_port(&self) -> u16 {
        self.sip_port
    }

    pub fn tcp_port(&self) -> u16 {
        self.sip_port
    }

    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    pub fn port(&self, transport: Transport) -> u16 {
        match transport {
            Transport::Udp | Transport::Tcp => self.sip_port,
            Transport::Tls => self.tls_port,
        }
    }

    /// The CA certificate (PEM) that signed the registrar's TLS certificate: give it to the client
    /// as `--ca-file`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join(TEST_CA_FILE)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("kamailio.log")
    }

    fn ctl_socket(&self) -> PathBuf {
        self.dir.path().join("kamailio_ctl")
    }

    /// Creates (or replaces) user `ext` with a freshly generated password, which it returns.
    pub fn add_user(&self, ext: &str) -> Result<String, HarnessError> {
        let password = crate::random_password();
        self.set_password(ext, &password)?;
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users.retain(|(u, _)| u != ext);
        users.push((ext.to_owned(), password.clone()));
        Ok(password)
    }

    fn set_password(&self, ext: &str, password: &str) -> Result<(), HarnessError> {
        // "s:" keeps kamcmd from sending digit-only values as integers, which htable refuses.
        let reply = self.rpc(&[
            "htable.sets",
            "auth",
            &format!("s:{ext}"),
            &format!("s:{password}"),
        ])?;
        if reply.contains("Key set") {
            Ok(())
        } else {
            Err(HarnessError::BadReply {
                method: "htable.sets".to_owned(),
                reply,
            })
        }
    }

    /// The bindings Kamailio holds for `ext` (empty when it has none).
    /// The extension's one binding, which must be `contact`: what a test checks after the
    /// client reports `registered`. Panics with the bindings seen otherwise.
    #[track_caller]
    pub fn sole_binding(&self, ext: &str, contact: &str) -> Binding {
        let mut bindings = match self.bindings(ext) {
            Ok(b) => b,
            Err(err) => panic!("cannot list the bindings of {ext}: {err}"),
        };
        assert_eq!(bindings.len(), 1, "{bindings:?}");
        let binding = bindings.remove(0);
        assert_eq!(
            binding.uri, contact,
            "Kamailio's binding is not the reported contact"
        );
        binding
    }

    pub fn bindings(&self, ext: &str) -> Result<Vec<Binding>, HarnessError> {
        match self.rpc(&["ul.lookup", "location", &format!("s:{ext}")]) {
            Ok(reply) => Ok(parse_bindings(&reply)),
            Err(HarnessError::Rpc { message, .. }) if message.contains("AOR not found") => {
                Ok(Vec::new())
            }
            Err(err) => Err(err),
        }
    }

    /// Every binding Kamailio holds, of any AOR.
    pub fn all_bindings(&self) -> Result<Vec<Binding>, HarnessError> {
        Ok(parse_bindings(&self.rpc(&["ul.dump"])?))
    }

    /// Sends `method` (OPTIONS, INVITE, …) from the registrar to the registered contact
    /// `contact_uri`, over the flow its REGISTER came in on, and returns the final status code
    /// (408 when the contact stays silent).
    pub fn send_request(&self, method: &str, contact_uri: &str) -> Result<u16, HarnessError> {
        self.send_request_routed(method, contact_uri, true)
    }

    /// Like [`Registrar::send_request`], but to the Contact address itself rather than to the
    /// REGISTER's source (they differ for a client that registers from another port).
    pub fn send_request_to_contact(
        &self,
        method: &str,
        contact_uri: &str,
    ) -> Result<u16, HarnessError> {
        self.send_request_routed(method, contact_uri, false)
    }

    fn send_request_routed(
        &self,
        method: &str,
        contact_uri: &str,
        via_source: bool,
    ) -> Result<u16, HarnessError> {
        let binding = self
            .all_bindings()?
            .into_iter()
            .find(|b| b.uri == contact_uri)
            .ok_or_else(|| HarnessError::NoSuchBinding(contact_uri.to_owned()))?;
        // Next hop = where the REGISTER came from, as a NAT-aware registrar does: for TCP/TLS this
        // reuses the client's own connection.
        let next_hop = match (&binding.received, via_source) {
            (Some(received), true) => received.clone(),
            _ => ".".to_owned(),
        };
        // Send from the socket the REGISTER arrived on: the client answers only the registrar.
        let socket = binding.socket.clone().unwrap_or_else(|| ".".to_owned());
        let realm = &self.options.realm;
        let mut headers = format!("From: <sip:registrar@{realm}>\r\nTo: <{contact_uri}>\r\n");
        // kamcmd sends no body unless given one, and tm then sends a junk body: always pass one.
        let mut body = "s:".to_owned();
        if method.eq_ignore_ascii_case("INVITE") {
            let host = socket.split_once(':').map_or("127.0.0.1", |(_, h)| h);
            headers.push_str(&format!("Contact: <sip:registrar@{host}>\r\n"));
            headers.push_str("Content-Type: application/sdp\r\n");
            body.push_str(&sdp_offer(host));
        }
        let reply = self.rpc_with_deadline(
            &[
                "tm.t_uac_wait_block",
                method,
                contact_uri,
                &next_hop,
                &socket,
                &headers,
                &body,
            ],
            REQUEST_DEADLINE,
        )?;
        field(&reply, "code")
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| HarnessError::BadReply {
                method: "tm.t_uac_wait_block".to_owned(),
                reply,
            })
    }

    /// REGISTER requests Kamailio received for `ext`, in order, from the instance log.
    pub fn register_attempts(&self, ext: &str) -> Vec<RegisterAttempt> {
        let marker = format!("VFREG aor={ext} ");
        self.log_text()
            .lines()
            .filter_map(|line| line.split_once(&marker).map(|(_, rest)| rest))
            .map(|rest| {
                let word = |key: &str| {
                    rest.split_whitespace()
                        .find_map(|w| w.strip_prefix(key))
                        .map(str::to_owned)
                };
                RegisterAttempt {
                    source: word("src=").unwrap_or_default(),
                    authorized: word("auth=").as_deref() == Some("yes"),
                    expires: word("expires=").filter(|e| e != "<null>"),
                    // Last on the line, and may hold spaces.
                    contact: rest
                        .split_once(" contact=")
                        .map(|(_, c)| c.trim().to_owned())
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    /// How many REGISTERs Kamailio received for `ext`.
    pub fn register_count(&self, ext: &str) -> usize {
        self.register_attempts(ext).len()
    }

    /// One of Kamailio's counters, e.g. `usrloc:location_contacts` (bindings held now).
    pub fn statistic(&self, name: &str) -> Result<u64, HarnessError> {
        // Asked by group (`usrloc:`): kamcmd answers nothing for some full names.
        let group = name.split_once(':').map_or(name, |(g, _)| g);
        let reply = self.rpc(&["stats.get_statistics", &format!("{group}:")])?;
        reply
            .lines()
            .find_map(|line| {
                let (key, value) = line.trim().trim_matches('"').split_once(" = ")?;
                (key.trim() == name).then(|| value.trim().parse().ok())?
            })
            .ok_or_else(|| HarnessError::BadReply {
                method: "stats.get_statistics".to_owned(),
                reply,
            })
    }

    /// The last lines of the Kamailio log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log_text(), 40)
    }

    pub fn log_text(&self) -> String {
        std::fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Stops and starts Kamailio on the same ports: every binding is lost (usrloc is in memory);
    /// users and passwords are installed again.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.start_again()
    }

    /// Starts a stopped Kamailio again on the same ports, with its users and passwords.
    pub fn start_again(&mut self) -> Result<(), HarnessError> {
        self.launch()?;
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (ext, password) in users {
            self.set_password(&ext, &password)?;
        }
        Ok(())
    }

    /// Stops Kamailio (SIGTERM, then SIGKILL to its process group after a deadline).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::park_timeout(POLL);
        }
        // The children share the main process's group (process_group(0) at spawn).
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        let _ = std::fs::remove_file(self.ctl_socket());
    }

    fn write_config(&self) -> Result<(), HarnessError> {
        let mut listen = String::new();
        let mut hosts = vec![self.listen_host.as_str()];
        if self.options.ipv6 && self.netns.is_none() {
            hosts.push("[::1]");
        }
        for host in hosts {
            listen.push_str(&format!("listen=udp:{host}:{}\n", self.sip_port));
            listen.push_str(&format!("listen=tcp:{host}:{}\n", self.sip_port));
            listen.push_str(&format!("listen=tls:{host}:{}\n", self.tls_port));
        }
        let config = TEMPLATE
            .replace("@@LISTEN@@", &listen)
            .replace("@@DIR@@", &self.dir.path().display().to_string())
            .replace("@@MODULES@@", &module_dir().display().to_string())
            .replace("@@MIN_EXPIRES@@", &self.options.min_expires.to_string())
            .replace(
                "@@MAX_CONTACTS@@",
                &self.options.max_contacts.unwrap_or(0).to_string(),
            )
            .replace("@@REALM@@", &self.options.realm)
            .replace("@@DEFINES@@", &self.options.asterisk.defines());
        std::fs::write(self.dir.path().join("kamailio.cfg"), config)
            .map_err(io("writing kamailio.cfg"))
    }

    fn launch(&mut self) -> Result<(), HarnessError> {
        use std::os::unix::process::CommandExt;
        let dir = self.dir.path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(io("opening kamailio.log"))?;
        let log2 = log.try_clone().map_err(io("opening kamailio.log"))?;
        let mut command = match &self.netns {
            // `ip netns exec` execs Kamailio: the child's pid is Kamailio's.
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns]).arg(&self.kamailio);
                command
            }
            None => Command::new(&self.kamailio),
        };
        let child = command
            .arg("-f")
            .arg(dir.join("kamailio.cfg"))
            // Foreground, log to stderr (our log file), runtime files in the temp dir.
            .args(["-DD", "-E"])
            .arg("-Y")
            .arg(dir)
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .arg("-w")
            .arg(dir)
            // Small memory pools: several registrars run at once on a small machine.
            .arg("-m")
            .arg(self.options.shared_memory_mib.to_string())
            .args(["-M", "8"])
            .args(
                self.options
                    .derived_password_key
                    .iter()
                    .flat_map(|key| ["-A".to_owned(), format!("DERIVED_PASSWORD_KEY=\"{key}\"")]),
            )
            .args(
                self.options
                    .max_tcp_connections
                    .iter()
                    .flat_map(|max| ["-A".to_owned(), format!("MAX_TCP_CONNECTIONS={max}")]),
            )
            .args(if self.options.calls {
                &["-A", "WITH_CALLS"][..]
            } else {
                &[]
            })
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Own process group, so stop() can kill Kamailio's children too.
            .process_group(0)
            .spawn()
            .map_err(io("starting kamailio"))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let start = Instant::now();
        let mut last = String::from("control socket never appeared");
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(self.not_ready(start, format!("kamailio exited early ({status})")));
                }
            }
            if self.ctl_socket().exists() {
                match self.rpc(&["core.version"]) {
                    Ok(reply) if reply.contains("kamailio") => return Ok(()),
                    Ok(reply) => last = format!("core.version answered {reply:?}"),
                    Err(err) => last = err.to_string(),
                }
            }
            if start.elapsed() > READY_DEADLINE {
                return Err(self.not_ready(start, last));
            }
            std::thread::park_timeout(POLL);
        }
    }

    fn not_ready(&self, start: Instant, reason: String) -> HarnessError {
        HarnessError::NotReady {
            waited: start.elapsed(),
            reason,
            log_tail: self.log_tail(),
        }
    }

    fn rpc(&self, args: &[&str]) -> Result<String, HarnessError> {
        self.rpc_with_deadline(args, RPC_DEADLINE)
    }

    fn rpc_with_deadline(&self, args: &[&str], deadline: Duration) -> Result<String, HarnessError> {
        let method = args.first().copied().unwrap_or_default().to_owned();
        let output = run_with_deadline(
            Command::new(&self.kamcmd)
                .arg("-s")
                .arg(format!("unix:{}", self.ctl_socket().display()))
                .args(args),
            deadline,
        )
        .map_err(|e| HarnessError::Rpc {
            method: method.clone(),
            message: e.to_string(),
        })?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        // kamcmd exits 0 even on an RPC fault; the fault is a line starting "error:".
        let fault = stdout
            .lines()
            .chain(stderr.lines())
            .find(|l| l.starts_with("error:"));
        match fault {
            Some(line) => Err(HarnessError::Rpc {
                method,
                message: line.to_owned(),
            }),
            None if !output.status.success() => Err(HarnessError::Rpc {
                method,
                message: format!("{}: {stdout}{stderr}", output.status),
            }),
            None => Ok(stdout),
        }
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The password a registrar started with `derived_password_key: Some(key)` expects of `user`:
/// the hex MD5 of `key:user`.
pub fn derived_password(key: &str, user: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(format!("{key}:{user}"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn require(tool: &'static str) -> PathBuf {
    find_program(tool).unwrap_or_else(|| panic!("{}", HarnessError::NotInstalled(tool)))
}

/// Kamailio's module dir: $KAMAILIO_MODULES, else the first lib dir holding registrar.so.
fn module_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KAMAILIO_MODULES") {
        return PathBuf::from(dir);
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("kamailio/modules"))
        .collect();
    candidates.extend(
        [
            "/usr/lib/kamailio/modules",
            "/usr/lib64/kamailio/modules",
            "/usr/local/lib64/kamailio/modules",
            "/usr/local/lib/kamailio/modules",
        ]
        .map(PathBuf::from),
    );
    candidates
        .into_iter()
        .find(|d| d.join("registrar.so").exists())
        .unwrap_or_else(|| PathBuf::from("/usr/lib/x86_64-linux-gnu/kamailio/modules"))
}

/// Ports handed out in this process, so parallel tests never pick the same one.
fn taken_ports() -> &'static Mutex<HashSet<u16>> {
    static TAKEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    TAKEN.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A port free for both UDP and TCP (the SIP port) and another free for TCP (TLS).
fn pick_ports(ipv6: bool) -> Result<(u16, u16), HarnessError> {
    let sip = pick_port(ipv6, true)?;
    let tls = pick_port(ipv6, false)?;
    Ok((sip, tls))
}

fn pick_port(ipv6: bool, udp_too: bool) -> Result<u16, HarnessError> {
    let v4: SocketAddr = ([127, 0, 0, 1], 0).into();
    let v6 = |port| SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    for _ in 0..100 {
        let Ok(tcp) = TcpListener::bind(v4) else {
            continue;
        };
        let Ok(port) = tcp.local_addr().map(|a| a.port()) else {
            continue;
        };
        let mut free = !udp_too || UdpSocket::bind((v4.ip(), port)).is_ok();
        if ipv6 {
            free = free && TcpListener::bind(v6(port)).is_ok();
            free = free && (!udp_too || UdpSocket::bind(v6(port)).is_ok());
        }
        if free
            && taken_ports()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(port)
        {
            return Ok(port);
        }
    }
    Err(HarnessError::NoFreePort)
}

/// A throwaway CA and a server certificate it signed, valid for 127.0.0.1, ::1 and localhost.
fn make_certificates(dir: &Path) -> Result<(), HarnessError> {
    make_test_certificates(dir, "IP:127.0.0.1,IP:::1,DNS:localhost")
        .map_err(HarnessError::Certificate)
}

fn write_tls_config(dir: &Path) -> Result<(), HarnessError> {
    let d = dir.display();
    let config = format!(
        "[server:default]\n\
         method = TLSv1.2+\n\
         verify_certificate = no\n\
         require_certificate = no\n\
         private_key = {d}/{TEST_SERVER_KEY}\n\
         certificate = {d}/{TEST_SERVER_CERT}\n\
         \n\
         [client:default]\n\
         method = TLSv1.2+\n\
         verify_certificate = no\n\
         require_certificate = no\n"
    );
    std::fs::write(dir.join("tls.cfg"), config).map_err(io("writing tls.cfg"))
}

fn sdp_offer(host_port: &str) -> String {
    let host = host_port
        .rsplit_once(':')
        .map_or(host_port, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let family = if host.contains(':') { "IP6" } else { "IP4" };
    format!(
        "v=0\r\no=registrar 1 1 IN {family} {host}\r\ns=-\r\nc=IN {family} {host}\r\nt=0 0\r\n\
         m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
}

/// The value of the first `key: value` line in a kamcmd reply.
fn field(reply: &str, key: &str) -> Option<String> {
    reply.lines().find_map(|line| {
        let (k, v) = line.trim().split_once(':')?;
        (k == key).then(|| v.trim().to_owned())
    })
}

/// Contacts in a `ul.lookup`/`ul.dump` reply: each starts at its `Address:` line.
fn parse_bindings(reply: &str) -> Vec<Binding> {
    let mut bindings: Vec<Binding> = Vec::new();
    for line in reply.lines() {
        let Some((key, value)) = line.trim().split_once(": ") else {
            continue;
        };
        let value = value.trim();
        let set = (value != "[not set]").then(|| value.to_owned());
        if key == "Address" {
            bindings.push(Binding {
                uri: value.to_owned(),
                expires: None,
                received: None,
                socket: None,
                instance: None,
                reg_id: None,
                user_agent: None,
            });
            continue;
        }
        let Some(b) = bindings.last_mut() else {
            continue;
        };
        match key {
            "Expires" => b.expires = value.parse().ok(),
            "Received" => b.received = set,
            "Socket" => b.socket = set,
            "Instance" => b.instance = set,
            "Reg-Id" => b.reg_id = value.parse().ok(),
            "User-Agent" => b.user_agent = set,
            _ => {}
        }
    }
    bindings
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOKUP: &str = "{\n\tAoR: 101\n\tContacts: {\n\t\tContact: {\n\t\t\tAddress: sip:101@127.0.0.1:45999\n\t\t\tExpires: 60\n\t\t\tReceived: sip:127.0.0.1:44126\n\t\t\tPath: [not set]\n\t\t\tSocket: udp:127.0.0.1:25060\n\t\t\tInstance: [not set]\n\t\t\tReg-Id: 0\n\t\t}\n\t\tContact: {\n\t\t\tAddress: sip:101@127.0.0.1:45997;transport=tcp\n\t\t\tExpires: permanent\n\t\t\tReceived: [not set]\n\t\t}\n\t}\n}\n";

    #[test]
    fn parses_ul_lookup() {
        let b = parse_bindings(LOOKUP);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].uri, "sip:101@127.0.0.1:45999");
        assert_eq!(b[0].expires, Some(60));
        assert_eq!(b[0].received.as_deref(), Some("sip:127.0.0.1:44126"));
        assert_eq!(b[0].socket.as_deref(), Some("udp:127.0.0.1:25060"));
        assert_eq!(b[0].instance, None);
        assert_eq!(b[1].uri, "sip:101@127.0.0.1:45997;transport=tcp");
        assert_eq!(b[1].expires, None);
        assert_eq!(b[1].received, None);
    }

    #[test]
    fn reads_reply_code() {
        assert_eq!(
            field(
                "{\n\tcode: 480\n\ttext: Temporarily Unavailable\n}\n",
                "code"
            )
            .as_deref(),
            Some("480")
        );
    }

    #[test]
    fn sdp_uses_the_socket_family() {
        assert!(sdp_offer("[::1]:5060").contains("IN IP6 ::1"));
        assert!(sdp_offer("127.0.0.1:5060").contains("IN IP4 127.0.0.1"));
    }
}
