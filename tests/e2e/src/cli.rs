//! `vicifast-cli` as a child process: JSON status lines in, signals out.

use serde_json::Value;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The environment variable that carries the password to the CLI (never an argument: arguments
/// are visible to every user of the machine).
pub const PASSWORD_ENV: &str = "VICIFAST_E2E_PASSWORD";

const POLL: Duration = Duration::from_millis(10);

#[derive(thiserror::Error)]
pub enum CliError {
    #[error(
        "vicifast-cli not found at {0}: build it with `cargo build -p vicifast-cli` \
         or set VICIFAST_CLI"
    )]
    NotBuilt(PathBuf),
    #[error("could not start {path}: {source}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Debug shows the message: tests `unwrap()` these.
impl std::fmt::Debug for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Text the child wrote on stderr, with a condvar so a test can wait for a phrase.
#[derive(Default)]
struct Stderr {
    text: Mutex<String>,
    grew: Condvar,
}

/// A running `vicifast-cli`. Dropping it kills the process.
pub struct Cli {
    child: Child,
    exit: Option<ExitStatus>,
    statuses: Receiver<Value>,
    /// Every status received so far, in order.
    seen: Vec<Value>,
    /// `seen[..cursor]` were already passed by a `wait_for` (matched or skipped).
    cursor: usize,
    /// Raw stdout lines, including any that are not JSON.
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Stderr>,
    /// The thread copying stderr into `stderr`; joined once the process has exited.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

/// A finished one-shot command (`bindings`, `unregister`, bad flags).
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: String,
}

impl Finished {
    /// The stdout lines that parse as JSON.
    pub fn json(&self) -> Vec<Value> {
        self.stdout
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Cli {
    /// The CLI binary: $VICIFAST_CLI, else `vicifast-cli` beside this executable or one dir up
    /// (test executables live in target/<profile>/deps).
    pub fn binary() -> Result<PathBuf, CliError> {
        if let Some(path) = std::env::var_os("VICIFAST_CLI") {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(CliError::NotBuilt(path))
            };
        }
        let exe = std::env::current_exe().unwrap_or_default();
        let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
        let beside = dir.join("vicifast-cli");
        if beside.is_file() {
            return Ok(beside);
        }
        let up = dir.join("../vicifast-cli");
        if up.is_file() {
            Ok(up)
        } else {
            Err(CliError::NotBuilt(up))
        }
    }

    /// Starts `vicifast-cli <args> --password-env VICIFAST_E2E_PASSWORD` with the password in
    /// that variable.
    pub fn spawn<S: AsRef<OsStr>>(args: &[S], password: &str) -> Result<Cli, CliError> {
        Self::spawn_program(Self::binary()?, args, password)
    }

    /// Like [`Cli::spawn`] with another program in the CLI's place (the runner's own tests use a
    /// stand-in script).
    pub fn spawn_program<S: AsRef<OsStr>>(
        path: PathBuf,
        args: &[S],
        password: &str,
    ) -> Result<Cli, CliError> {
        let mut child = Command::new(&path)
            .args(args)
            .args(["--password-env", PASSWORD_ENV])
            .env(PASSWORD_ENV, password)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| CliError::Spawn { path, source })?;
        let (tx, statuses) = mpsc::channel();
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Ok(value) = serde_json::from_str::<Value>(&line) {
                        let _ = tx.send(value);
                    }
                    lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
                // Dropping tx tells wait_for the CLI closed stdout (it exited).
            });
        }
        let stderr = Arc::new(Stderr::default());
        let mut stderr_reader = None;
        if let Some(mut err) = child.stderr.take() {
            let stderr = Arc::clone(&stderr);
            stderr_reader = Some(std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut text = stderr.text.lock().unwrap_or_else(|p| p.into_inner());
                    text.push_str(&String::from_utf8_lossy(&buf[..n]));
                    stderr.grew.notify_all();
                }
            }));
        }
        Ok(Cli {
            child,
            exit: None,
            statuses,
            seen: Vec::new(),
            cursor: 0,
            lines,
            stderr,
            stderr_reader,
        })
    }

    /// Runs a command that ends by itself (`bindings`, `unregister`, …) and collects its output.
    pub fn run<S: AsRef<OsStr>>(
        args: &[S],
        password: &str,
        timeout: Duration,
    ) -> Result<Finished, String> {
        Self::run_program(
            Self::binary().map_err(|e| e.to_string())?,
            args,
            password,
            timeout,
        )
    }

    /// Like [`Cli::run`] with another program in the CLI's place (e.g. Wine running the
    /// Windows build).
    pub fn run_program<S: AsRef<OsStr>>(
        path: PathBuf,
        args: &[S],
        password: &str,
        timeout: Duration,
    ) -> Result<Finished, String> {
        let mut cli = Cli::spawn_program(path, args, password).map_err(|e| e.to_string())?;
        let status = cli.wait_exit(timeout)?;
        // stdout is closed once the process exits; the reader thread may still be draining it.
        cli.drain_stdout(timeout);
        // Likewise stderr: its pipe is at EOF now that the process is gone (it starts no
        // children that could hold it open), so the reader ends; join it to read it all.
        if let Some(reader) = cli.stderr_reader.take() {
            let _ = reader.join();
        }
        Ok(Finished {
            status,
            stdout: cli.stdout_lines(),
            stderr: cli.stderr(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next status (after those earlier waits passed) for which `pred` holds.
    /// On timeout, or if the CLI exits first, the error lists every line it printed.
    pub fn wait_for(
        &mut self,
        mut pred: impl FnMut(&Value) -> bool,
        timeout: Duration,
    ) -> Result<Value, String> {
        while self.cursor < self.seen.len() {
            let candidate = &self.seen[self.cursor];
            self.cursor += 1;
            if pred(candidate) {
                return Ok(candidate.clone());
            }
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.statuses.recv_timeout(left) {
                Ok(value) => {
                    self.seen.push(value.clone());
                    self.cursor = self.seen.len();
                    if pred(&value) {
                        return Ok(value);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.report(&format!("no matching status within {timeout:?}")))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let exit = self.wait_exit(Duration::from_secs(5));
                    return Err(self.report(&format!(
                        "vicifast-cli closed stdout ({exit:?}) before a matching status"
                    )));
                }
            }
        }
    }

    /// Waits for a status whose `state` is `state`.
    pub fn wait_for_state(&mut self, state: &str, timeout: Duration) -> Result<Value, String> {
        self.wait_for(|s| s["state"] == state, timeout)
    }

    /// Every status received so far.
    pub fn statuses(&self) -> &[Value] {
        &self.seen
    }

    /// Sends SIGINT, as Ctrl-C would.
    pub fn interrupt(&self) -> Result<(), String> {
        self.signal(nix::sys::signal::Signal::SIGINT)
    }

    /// Sends SIGKILL: the CLI gets no chance to unregister (a crash or power loss).
    pub fn kill_hard(&mut self) -> Result<ExitStatus, String> {
        self.signal(nix::sys::signal::Signal::SIGKILL)?;
        self.wait_exit(Duration::from_secs(10))
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) -> Result<(), String> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).map_err(|e| format!("kill({pid}, {signal}): {e}"))
    }

    /// Waits for the process to end; on timeout the error lists what it printed.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.exit = Some(status);
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => std::thread::park_timeout(POLL),
                Ok(None) => {
                    return Err(
                        self.report(&format!("vicifast-cli still running after {timeout:?}"))
                    )
                }
                Err(e) => return Err(format!("waiting for vicifast-cli: {e}")),
            }
        }
    }

    /// Everything the CLI wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .text
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until stderr contains `needle` (case-insensitive).
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> Result<(), String> {
        let needle = needle.to_lowercase();
        let guard = self.stderr.text.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, result) = self
            .stderr
            .grew
            .wait_timeout_while(guard, timeout, |text| {
                !text.to_lowercase().contains(&needle)
            })
            .unwrap_or_else(|p| p.into_inner());
        if result.timed_out() {
            let text = guard.clone();
            drop(guard);
            return Err(format!(
                "stderr never mentioned {needle:?} within {timeout:?}; stderr was:\n{text}"
            ));
        }
        Ok(())
    }

    /// Every stdout line so far (JSON or not).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Pulls the statuses still in the channel into `seen` until stdout closes or `timeout`.
    fn drain_stdout(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.statuses.recv_timeout(left) {
                Ok(value) => self.seen.push(value),
                Err(_) => return,
            }
        }
    }

    fn report(&self, what: &str) -> String {
        format!(
            "{what}\n--- vicifast-cli stdout ---\n{}\n--- vicifast-cli stderr ---\n{}",
            self.stdout_lines().join("\n"),
            self.stderr()
        )
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
