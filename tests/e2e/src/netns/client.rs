//! `vicifast-cli register --json` running inside the client namespace, read line by line.

use super::{io_err, Namespace, NetnsError, Result, REGISTRAR_ADDR};
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to start the client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub cli: PathBuf,
    pub user: String,
    /// udp, tcp or tls.
    pub transport: String,
    pub expires: Option<u32>,
    pub ca_file: Option<PathBuf>,
    /// The password travels in this child's environment only, never on a command line.
    pub password: String,
    pub registrar: String,
    pub extra_args: Vec<String>,
}

impl ClientOptions {
    pub fn new(cli: PathBuf, user: &str, password: &str) -> Self {
        ClientOptions {
            cli,
            user: user.into(),
            transport: "udp".into(),
            expires: None,
            ca_file: None,
            password: password.into(),
            registrar: REGISTRAR_ADDR.into(),
            extra_args: Vec::new(),
        }
    }
}

/// One status line of `--json` output, with the fields the tests look at pulled out.
#[derive(Debug, Clone)]
pub struct CliStatus {
    pub at: String,
    pub state: String,
    pub cause: String,
    pub contact: Option<String>,
    pub local_address: Option<String>,
    pub problem_code: Option<String>,
    /// When the line was read: only for ordering and diagnostics, never for assertions.
    pub read_at: Instant,
    pub raw: Value,
}

impl CliStatus {
    fn parse(line: &str) -> Option<CliStatus> {
        let raw: Value = serde_json::from_str(line).ok()?;
        let text = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(CliStatus {
            at: text("at").unwrap_or_default(),
            state: text("state")?,
            cause: text("cause").unwrap_or_default(),
            contact: text("contact"),
            local_address: text("local_address"),
            problem_code: raw
                .get("problem")
                .and_then(|p| p.get("code"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            read_at: Instant::now(),
            raw,
        })
    }

    pub fn is_registered(&self) -> bool {
        self.state == "registered"
    }

    /// True when the contact the client reports carries `addr` (an IP or ip:port).
    pub fn contact_has(&self, addr: &str) -> bool {
        self.contact
            .as_deref()
            .is_some_and(|c| contains_host(c, addr))
    }
}

/// `sip:101@198.18.1.10:5060;transport=udp` contains host `198.18.1.10` (not `198.18.1.1`).
pub fn contains_host(uri: &str, addr: &str) -> bool {
    uri.match_indices(addr).any(|(i, m)| {
        let before = uri[..i].chars().last();
        let after = uri[i + m.len()..].chars().next();
        matches!(before, Some('@' | ':' | '[' | '=')) && !matches!(after, Some('0'..='9' | '.'))
    })
}

/// A running `vicifast-cli register --json`. Dropping it stops the client with SIGTERM (it
/// unregisters, as a user quitting would) and kills it if it does not exit within 5 s.
#[derive(Debug)]
pub struct CliClient {
    child: Child,
    lines: Receiver<CliStatus>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    history: Vec<CliStatus>,
}

const STDERR_TAIL: usize = 60;

impl CliClient {
    pub fn start(ns: &Namespace, opts: &ClientOptions) -> Result<CliClient> {
        if !opts.cli.exists() {
            return Err(NetnsError::Io {
                context: format!("client binary {}", opts.cli.display()),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not built: run `cargo build -p vicifast-cli` (or set VICIFAST_CLI)",
                ),
            });
        }
        let mut cmd: Command = ns.command(&opts.cli);
        cmd.args([
            "register",
            "--registrar",
            &opts.registrar,
            "--user",
            &opts.user,
        ])
        .args([
            "--transport",
            &opts.transport,
            "--password-env",
            "VF_E2E_PASSWORD",
            "--json",
        ])
        .env("VF_E2E_PASSWORD", &opts.password);
        if let Some(e) = opts.expires {
            cmd.arg("--expires").arg(e.to_string());
        }
        if let Some(ca) = &opts.ca_file {
            cmd.arg("--ca-file").arg(ca);
        }
        cmd.args(&opts.extra_args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(io_err("starting vicifast-cli in the client namespace"))?;

        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take();
        std::thread::spawn(move || {
            let Some(stdout) = stdout else { return };
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(status) = CliStatus::parse(&line) {
                    if tx.send(status).is_err() {
                        break;
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr);
        let err_pipe = child.stderr.take();
        std::thread::spawn(move || {
            let Some(pipe) = err_pipe else { return };
            keep_tail(pipe, &tail);
        });
        Ok(CliClient {
            child,
            lines,
            stderr,
            history: Vec::new(),
        })
    }

    /// Waits at most `limit` for the next status (not yet returned by an earlier wait) that
    /// satisfies `pred`, returning it. Statuses that arrived before this call count: the client
    /// may well have reacted before the test got here.
    pub fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        mut pred: impl FnMut(&CliStatus) -> bool,
    ) -> Result<CliStatus> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(status) => {
                    self.history.push(status.clone());
                    if pred(&status) {
                        return Ok(status);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(NetnsError::Timeout {
                        what: format!("client status: {what}"),
                        waited: limit,
                        last: self.describe_last(),
                    })
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self
                        .child
                        .try_wait()
                        .ok()
                        .flatten()
                        .map_or("output closed".to_owned(), |s| s.to_string());
                    return Err(NetnsError::Exited {
                        what: format!("vicifast-cli (waiting for {what})"),
                        status,
                        stderr: self.stderr_tail(),
                    });
                }
            }
        }
    }

    /// Takes every status already printed, without waiting.
    pub fn drain(&mut self) -> &[CliStatus] {
        let start = self.history.len();
        while let Ok(status) = self.lines.try_recv() {
            self.history.push(status);
        }
        &self.history[start..]
    }

    /// Every status read so far, oldest first.
    pub fn history(&self) -> &[CliStatus] {
        &self.history
    }

    pub fn latest(&mut self) -> Option<&CliStatus> {
        self.drain();
        self.history.last()
    }

    pub fn stderr_tail(&self) -> String {
        self.stderr
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    fn describe_last(&self) -> String {
        let last: Vec<String> = self
            .history
            .iter()
            .rev()
            .take(4)
            .rev()
            .map(|s| {
                format!(
                    "{} {}/{} contact={} problem={}",
                    s.at,
                    s.state,
                    s.cause,
                    s.contact.as_deref().unwrap_or("-"),
                    s.problem_code.as_deref().unwrap_or("-")
                )
            })
            .collect();
        if last.is_empty() {
            format!("no status yet; stderr tail:\n{}", self.stderr_tail())
        } else {
            last.join(" | ")
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

pub(crate) fn keep_tail(pipe: impl Read, tail: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        if let Ok(mut t) = tail.lock() {
            if t.len() == STDERR_TAIL {
                t.pop_front();
            }
            t.push_back(line);
        }
    }
}

/// Sends SIGTERM, waits up to `grace`, then SIGKILL. For processes we started, by pid.
pub(crate) fn terminate(child: &mut Child, grace: Duration) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stderr(Stdio::null())
        .status();
    let exited = super::wait_until(grace, Duration::from_millis(20), || {
        child.try_wait().ok().flatten()
    });
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for CliClient {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_match_is_exact() {
        assert!(contains_host(
            "sip:101@198.18.1.10:5060;transport=udp",
            "198.18.1.10"
        ));
        assert!(!contains_host("sip:101@198.18.1.100:5060", "198.18.1.10"));
        assert!(!contains_host("sip:101@198.18.1.1:5060", "198.18.1.10"));
        assert!(contains_host("sip:101@198.18.1.10", "198.18.1.10"));
        assert!(contains_host(
            "sip:101@198.18.3.1:41000;ob",
            "198.18.3.1:41000"
        ));
    }

    #[test]
    fn status_line_parses() {
        let s = CliStatus::parse(
            r#"{"at":"2026-11-24T06:10:00.123Z","state":"offline","cause":"network_changed","contact":null,
            "problem":{"code":"network_down","message":"m","action":"a","detail":"d"},"bindings":[]}"#,
        )
        .expect("parses");
        assert_eq!(s.state, "offline");
        assert_eq!(s.problem_code.as_deref(), Some("network_down"));
        assert_eq!(s.contact, None);
    }
}
