//! Harness for driving the real VICIfast app end to end on a headless Linux machine:
//!
//! - [`Desktop`]: a private X server (Xvfb), a private session bus with GNOME Keyring as the
//!   Secret Service (unlocked with a throwaway password) and a stand-in panel for tray icons
//!   ([`tray_host`]), and throwaway HOME/XDG directories, so nothing touches the real user's
//!   keychain, settings or autostart entries.
//! - [`WebDriver`]: WebKitWebDriver launching the window binary (`TAURI_WEBVIEW_AUTOMATION=true`)
//!   and a minimal W3C WebDriver client over HTTP.
//! - process helpers: the app's two processes (`vicifast-tray`, which registers and shows the
//!   tray icon, and `vicifast`, the window), their memory (PSS), signals, screenshots.
//!
//! Every wait is a poll under a deadline; nothing sleeps to synchronise.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod tray_host;
use tray_host::TrayHost;

pub use vicifast_e2e::{Registrar, RegistrarOptions, WAIT};

/// How often polls look again.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum AppTestError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    #[error("WebDriver {0}: {1}")]
    WebDriver(String, String),
    #[error("{0}")]
    Setup(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AppTestError {
    let what = what.into();
    move |source| AppTestError::Io { what, source }
}

/// Polls `check` until it returns `Some`, at most `deadline`.
pub fn wait_for<T>(
    deadline: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T, AppTestError> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            return Err(AppTestError::Timeout(deadline, what.to_owned()));
        }
        std::thread::sleep(POLL);
    }
}

/// Whether the real-app tests should run: only under `make app-e2e` (`VICIFAST_APP_E2E=1`),
/// so a plain `cargo test --workspace` does not start desktops, registrars and the app.
/// Prints why when they do not.
pub fn enabled(test: &str) -> bool {
    let on = std::env::var("VICIFAST_APP_E2E").is_ok_and(|v| v == "1");
    if !on {
        vicifast_e2e::skip::skipped(
            test,
            "the real-app tests run with VICIFAST_APP_E2E=1 (make app-e2e)",
        );
    }
    on
}

/// The tray process's binary, next to the window's.
pub fn tray_binary() -> PathBuf {
    app_binary().with_file_name("vicifast-tray")
}

/// The window binary: `$VICIFAST_APP`, else the debug build next to this test's target dir.
pub fn app_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("VICIFAST_APP") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("debug/vicifast")
}

/// Where screenshots go: `<repo>/test-output/app/`.
pub fn output_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-output/app")
}

/// The start of every real-app test: `None` (skipped, with a note) unless enabled; else checks
/// the app is built and returns the output directory, created.
pub fn prepare(test: &str) -> Option<PathBuf> {
    if !enabled(test) {
        return None;
    }
    for binary in [app_binary(), tray_binary()] {
        assert!(
            binary.exists(),
            "{} is missing: run `make app-build` first",
            binary.display()
        );
    }
    let logs = output_dir();
    if let Err(e) = std::fs::create_dir_all(&logs) {
        panic!("cannot create {}: {e}", logs.display());
    }
    Some(logs)
}

fn kill_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A private X display, session bus and unlocked Secret Service, with throwaway home dirs.
pub struct Desktop {
    dir: tempfile::TempDir,
    display: String,
    bus_address: String,
    xvfb: Child,
    bus: Child,
    keyring: Option<Child>,
    tray_host: TrayHost,
}

impl Desktop {
    /// A desktop with an unlocked Secret Service.
    pub fn start() -> Result<Desktop, AppTestError> {
        Self::start_with(true)
    }

    /// A desktop whose session bus has no Secret Service and cannot start one.
    pub fn without_keychain() -> Result<Desktop, AppTestError> {
        Self::start_with(false)
    }

    fn start_with(keychain: bool) -> Result<Desktop, AppTestError> {
        let dir = tempfile::Builder::new()
            .prefix("vicifast-app-e2e-")
            .tempdir()
            .map_err(io("creating a temp dir"))?;
        for sub in ["home", "data", "config", "cache", "run", "empty"] {
            std::fs::create_dir_all(dir.path().join(sub)).map_err(io("creating home dirs"))?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .map_err(io("chmod 700 XDG_RUNTIME_DIR"))?;

        // A free display number: no socket and no lock file.
        let n = (90..400)
            .find(|n| {
                !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                    && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .ok_or_else(|| AppTestError::Setup("no free X display number".to_owned()))?;
        let display = format!(":{n}");
        let mut xvfb = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("starting Xvfb (package xvfb)"))?;
        let ready = wait_for(WAIT, "Xvfb to accept connections", || {
            Command::new("xdpyinfo")
                .args(["-display", &display])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .ok()
                .filter(|s| s.success())
        });
        if let Err(e) = ready {
            kill_child(&mut xvfb);
            return Err(e);
        }

        let mut bus = Command::new("dbus-daemon");
        bus.args(["--session", "--nofork", "--print-address=1"])
            .env("XDG_DATA_HOME", dir.path().join("data"));
        if !keychain {
            // No service files: nothing can be activated as org.freedesktop.secrets.
            bus.env("XDG_DATA_DIRS", dir.path().join("empty"));
        }
        let mut bus = match bus.stdout(Stdio::piped()).stderr(Stdio::null()).spawn() {
            Ok(b) => b,
            Err(e) => {
                kill_child(&mut xvfb);
                return Err(io("starting dbus-daemon (package dbus)")(e));
            }
        };
        let mut line = String::new();
        if let Some(out) = bus.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let bus_address = line.trim().to_owned();
        if bus_address.is_empty() {
            kill_child(&mut bus);
            kill_child(&mut xvfb);
            return Err(AppTestError::Setup(
                "dbus-daemon printed no address".to_owned(),
            ));
        }

        let mut keyring = if keychain {
            match start_keyring(dir.path(), &display, &bus_address) {
                Ok(k) => Some(k),
                Err(e) => {
                    kill_child(&mut bus);
                    kill_child(&mut xvfb);
                    return Err(e);
                }
            }
        } else {
            None
        };
        let tray_host = match TrayHost::start(&bus_address) {
            Ok(host) => host,
            Err(e) => {
                if let Some(k) = keyring.as_mut() {
                    kill_child(k);
                }
                kill_child(&mut bus);
                kill_child(&mut xvfb);
                return Err(AppTestError::Setup(format!(
                    "the stand-in tray host could not start: {e}"
                )));
            }
        };
        let desktop = Desktop {
            dir,
            display,
            bus_address,
            xvfb,
            bus,
            keyring,
            tray_host,
        };
        if !keychain {
            return Ok(desktop);
        }
        wait_for(WAIT, "the Secret Service on the private bus", || {
            let out = desktop
                .command("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .contains("boolean true")
                .then_some(())
        })?;
        Ok(desktop)
    }

    pub fn display(&self) -> &str {
        &self.display
    }

    /// The throwaway HOME.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config/vicifast/settings.toml")
    }

    /// Writes the app's settings file as a test wants it (damaged, or made by hand).
    pub fn write_config(&self, text: &str) -> std::io::Result<()> {
        let path = self.config_path();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, text)
    }

    /// The environment every process of the test runs with.
    pub fn env(&self) -> Vec<(String, String)> {
        desktop_env(self.dir.path(), &self.display, &self.bus_address)
    }

    /// A command in this desktop's environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_remove("WAYLAND_DISPLAY");
        cmd.envs(self.env());
        cmd
    }

    /// `vicifast-cli account set NAME …` in this desktop: the account in the settings file and
    /// its password in this desktop's keychain (given on stdin, never on the command line).
    pub fn account_set(
        &self,
        name: &str,
        registrar: &Registrar,
        ext: &str,
        password: &str,
    ) -> Result<(), AppTestError> {
        let cli = vicifast_e2e::Cli::binary()
            .map_err(|e| AppTestError::Setup(format!("vicifast-cli: {e}")))?;
        let mut child = self
            .command(cli)
            .args(["account", "set", name, "--user", ext, "--registrar"])
            .arg(format!("127.0.0.1:{}", registrar.udp_port()))
            .arg("--password-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(io("starting vicifast-cli account set"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(format!("{password}\n").as_bytes())
                .map_err(io("giving vicifast-cli the password"))?;
        }
        let status = child.wait().map_err(io("waiting for vicifast-cli"))?;
        if !status.success() {
            return Err(AppTestError::Setup(format!("account set {name}: {status}")));
        }
        Ok(())
    }

    /// Saves a screenshot of the whole screen (`import -window root`); WebDriver's own come out
    /// blank with WebKitGTK under Xvfb. The X window may lag behind the page, so it shoots until
    /// two shots in a row are the same (at most 10 s).
    pub fn screenshot(&self, name: &str) -> Result<PathBuf, AppTestError> {
        let dir = output_dir();
        std::fs::create_dir_all(&dir).map_err(io("creating test-output/app"))?;
        let path = dir.join(format!("{name}.png"));
        let mut last: Option<Vec<u8>> = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.shoot(&path)?;
            let now = std::fs::read(&path).map_err(io("reading the screenshot"))?;
            if last.as_ref() == Some(&now) || Instant::now() > deadline {
                return Ok(path);
            }
            last = Some(now);
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn shoot(&self, path: &Path) -> Result<(), AppTestError> {
        let status = self
            .command("import")
            .args(["-window", "root"])
            .arg(path)
            .status()
            .map_err(io("running import (package imagemagick)"))?;
        if !status.success() {
            return Err(AppTestError::Setup(format!(
                "import failed for {}",
                path.display()
            )));
        }
        Ok(())
    }

    /// `xwininfo -root -tree`: every X window with its name.
    pub fn window_tree(&self) -> String {
        self.command("xwininfo")
            .args(["-root", "-tree"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The X id of the app's main window ("VICIfast"), if it exists.
    pub fn app_window(&self) -> Option<String> {
        self.window_tree()
            .lines()
            .find(|l| l.contains("\"VICIfast\": (\"vicifast\""))
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
    }

    pub fn has_app_window(&self) -> bool {
        self.app_window().is_some()
    }

    /// Closes the app's window and waits until it is gone. A window still being set up may miss
    /// the message, so it is sent again every 2 s until the deadline.
    pub fn close_app_window_and_wait(&self) -> Result<(), AppTestError> {
        let mut last_sent: Option<Instant> = None;
        wait_for(WAIT, "the window to close", || {
            if !self.has_app_window() {
                return Some(());
            }
            if last_sent.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
                let _ = self.close_app_window();
                last_sent = Some(Instant::now());
            }
            None
        })
    }

    /// Closes the app's window as a window manager's close button does: a WM_DELETE_WINDOW
    /// message (python3-xlib; Xvfb runs no window manager).
    pub fn close_app_window(&self) -> Result<(), AppTestError> {
        let id = self
            .app_window()
            .ok_or_else(|| AppTestError::Setup("no app window to close".to_owned()))?;
        let script = r#"
import sys
from Xlib import X, display, protocol
d = display.Display()
w = d.create_resource_object('window', int(sys.argv[1], 16))
proto = d.intern_atom('WM_PROTOCOLS')
delete = d.intern_atom('WM_DELETE_WINDOW')
w.send_event(protocol.event.ClientMessage(window=w, client_type=proto, data=(32, [delete, X.CurrentTime, 0, 0, 0])))
d.flush()
"#;
        let status = self
            .command("/usr/bin/python3")
            .args(["-c", script, &id])
            .status()
            .map_err(io("running /usr/bin/python3 (package python3-xlib)"))?;
        if status.success() {
            Ok(())
        } else {
            Err(AppTestError::Setup(
                "sending WM_DELETE_WINDOW failed".to_owned(),
            ))
        }
    }

    /// The stand-in panel the tray icon registers with.
    pub fn tray(&self) -> &TrayHost {
        &self.tray_host
    }

    /// Whether the tray shows the icon `look` (registered, working, failed, offline): the
    /// pixels the item gives the panel against icons/tray-<look>.png.
    pub fn tray_shows(&self, look: &str) -> bool {
        let expected =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../icons/tray-{look}.png"));
        match (self.tray().icon(), read_png_rgba(&expected)) {
            (Some((w, h, argb)), Some((ew, eh, rgba))) => {
                w as u32 == ew && h as u32 == eh && argb_to_rgba(&argb) == rgba
            }
            _ => false,
        }
    }

    /// Waits until the tray shows `look`, then keeps a copy as test-output/app/<name>.png.
    pub fn wait_tray(&self, look: &str, name: &str) -> Result<(), AppTestError> {
        wait_for(WAIT, &format!("the `{look}` tray icon"), || {
            self.tray_shows(look).then_some(())
        })?;
        if let Some((w, h, argb)) = self.tray().icon() {
            let path = output_dir().join(format!("{name}.png"));
            write_png_rgba(&path, w as u32, h as u32, &argb_to_rgba(&argb))?;
        }
        Ok(())
    }

    /// Waits until the tray menu has an enabled item labelled `label`, then clicks it.
    pub fn click_tray_menu(&self, label: &str) -> Result<(), AppTestError> {
        wait_for(
            WAIT,
            &format!("the tray menu item `{label}` (enabled)"),
            || self.tray().click(label).then_some(()),
        )
    }

    /// The processes running `binary` in this desktop (same XDG_RUNTIME_DIR).
    fn processes_of(&self, binary: &Path) -> Vec<u32> {
        let Ok(binary) = std::fs::canonicalize(binary) else {
            return Vec::new();
        };
        let marker = format!("XDG_RUNTIME_DIR={}", self.dir.path().join("run").display());
        all_pids()
            .into_iter()
            .filter(|p| {
                is_running(*p)
                    && std::fs::read_link(format!("/proc/{p}/exe")).ok().as_ref() == Some(&binary)
                    && std::fs::read(format!("/proc/{p}/environ"))
                        .map(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
                        .unwrap_or(false)
            })
            .collect()
    }

    /// The tray process of this desktop, if one runs.
    pub fn tray_pid(&self) -> Option<u32> {
        self.processes_of(&tray_binary()).into_iter().next()
    }

    /// The window processes of this desktop.
    pub fn window_pids(&self) -> Vec<u32> {
        self.processes_of(&app_binary())
    }

    /// Waits for the tray process (the one WebDriver's window started, or one started by hand).
    pub fn wait_tray_pid(&self) -> Result<u32, AppTestError> {
        wait_for(WAIT, "the vicifast-tray process", || self.tray_pid())
    }

    /// Quits the app as logout does: SIGTERM to the tray process (which unregisters first, like
    /// the tray's Quit), then waits until it and any window process have exited.
    pub fn quit_app(&self) -> Result<(), AppTestError> {
        let tray = self.wait_tray_pid()?;
        terminate(tray);
        wait_for(WAIT, "the tray process to quit", || {
            (!is_running(tray)).then_some(())
        })?;
        wait_for(WAIT, "the window to close with it", || {
            self.window_pids().is_empty().then_some(())
        })
    }

    /// `secret-tool lookup service vicifast username <account>`.
    pub fn keychain_secret(&self, account: &str) -> Option<String> {
        let out = self
            .command("secret-tool")
            .args(["lookup", "service", "vicifast", "username", account])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts the window binary directly (no WebDriver), with `args`.
    pub fn spawn_app(&self, args: &[&str], log: &Path) -> Result<Child, AppTestError> {
        self.spawn(&app_binary(), args, log)
    }

    /// Starts the tray process directly, as a login item does, with `args`.
    pub fn spawn_tray(&self, args: &[&str], log: &Path) -> Result<Child, AppTestError> {
        self.spawn(&tray_binary(), args, log)
    }

    fn spawn(&self, binary: &Path, args: &[&str], log: &Path) -> Result<Child, AppTestError> {
        let log = std::fs::File::create(log).map_err(io("creating the app log"))?;
        let err = log.try_clone().map_err(io("cloning the app log"))?;
        self.command(binary)
            .args(args)
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(io(format!("starting {}", binary.display())))
    }
}

fn start_keyring(dir: &Path, display: &str, bus_address: &str) -> Result<Child, AppTestError> {
    let mut keyring = Command::new("gnome-keyring-daemon")
        .env_remove("WAYLAND_DISPLAY")
        .envs(desktop_env(dir, display, bus_address))
        .args(["--foreground", "--unlock", "--components=secrets"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io("starting gnome-keyring-daemon (package gnome-keyring)"))?;
    if let Some(mut stdin) = keyring.stdin.take() {
        // The throwaway keyring's own password (not an account password).
        let _ = stdin.write_all(b"vicifast-e2e-keyring");
    }
    Ok(keyring)
}

fn desktop_env(dir: &Path, display: &str, bus_address: &str) -> Vec<(String, String)> {
    let p = |s: &str| dir.join(s).display().to_string();
    vec![
        ("HOME".into(), p("home")),
        ("XDG_DATA_HOME".into(), p("data")),
        ("XDG_CONFIG_HOME".into(), p("config")),
        ("XDG_CACHE_HOME".into(), p("cache")),
        ("XDG_RUNTIME_DIR".into(), p("run")),
        ("DISPLAY".into(), display.to_owned()),
        ("DBUS_SESSION_BUS_ADDRESS".into(), bus_address.to_owned()),
        ("VICIFAST_CONFIG".into(), p("config/vicifast/settings.toml")),
        ("NO_AT_BRIDGE".into(), "1".into()),
        ("GDK_BACKEND".into(), "x11".into()),
        ("TAURI_WEBVIEW_AUTOMATION".into(), "true".into()),
        // Software rendering under Xvfb: without these the X window lags behind the page.
        ("WEBKIT_DISABLE_COMPOSITING_MODE".into(), "1".into()),
        ("WEBKIT_DISABLE_DMABUF_RENDERER".into(), "1".into()),
        ("RUST_LOG".into(), "info".into()),
    ]
}

impl Drop for Desktop {
    fn drop(&mut self) {
        // A failed test may leave the app running: it must not outlive its desktop.
        for pid in self
            .processes_of(&tray_binary())
            .into_iter()
            .chain(self.window_pids())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(k) = self.keyring.as_mut() {
            kill_child(k);
        }
        kill_child(&mut self.bus);
        kill_child(&mut self.xvfb);
    }
}

// ----- processes -----

/// Parent pid of `pid`, from /proc.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `pid` and all its descendants (the app and its WebKit web/network processes).
pub fn process_tree(pid: u32) -> Vec<u32> {
    let pids = all_pids();
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(pids.iter().filter(|p| parent_of(**p) == Some(parent)));
        i += 1;
    }
    tree
}

/// The child of `parent` running the app binary.
pub fn app_child_of(parent: u32) -> Option<u32> {
    let app = std::fs::canonicalize(app_binary()).ok()?;
    all_pids().into_iter().find(|p| {
        parent_of(*p) == Some(parent)
            && std::fs::read_link(format!("/proc/{p}/exe")).ok().as_ref() == Some(&app)
    })
}

/// Proportional set size in KiB (smaps_rollup), 0 if the process is gone.
pub fn pss_kib(pid: u32) -> u64 {
    smaps_rollup_kib(pid, &["Pss:"])
}

/// Memory only this process uses (USS: private clean + private dirty), in KiB.
pub fn private_kib(pid: u32) -> u64 {
    smaps_rollup_kib(pid, &["Private_Clean:", "Private_Dirty:"])
}

/// PSS of anonymous memory only (heap, stacks, relocated library data): what the process really
/// allocated, as opposed to library code the kernel can drop and read again.
pub fn anon_pss_kib(pid: u32) -> u64 {
    smaps_rollup_kib(pid, &["Pss_Anon:", "Pss_Shmem:"])
}

fn smaps_rollup_kib(pid: u32, fields: &[&str]) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .map(|s| {
            s.lines()
                .filter(|l| fields.iter().any(|f| l.starts_with(f)))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

pub fn command_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

pub fn is_running(pid: u32) -> bool {
    // A zombie has exited; only its entry is left.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| !s[i + 2..].starts_with('Z')))
        .unwrap_or(false)
}

pub fn terminate(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
}

/// Decodes a PNG into 8-bit RGBA: (width, height, pixels).
pub fn read_png_rgba(path: &Path) -> Option<(u32, u32, Vec<u8>)> {
    let file = std::fs::File::open(path).ok()?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().ok()?;
    let mut buffer = vec![0; reader.output_buffer_size()?];
    let frame = reader.next_frame(&mut buffer).ok()?;
    buffer.truncate(frame.buffer_size());
    (frame.color_type == png::ColorType::Rgba).then_some((frame.width, frame.height, buffer))
}

fn write_png_rgba(path: &Path, width: u32, height: u32, rgba: &[u8]) -> Result<(), AppTestError> {
    let file = std::fs::File::create(path).map_err(io("creating a tray icon copy"))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(rgba))
        .map_err(|e| AppTestError::Setup(format!("writing {}: {e}", path.display())))
}

/// StatusNotifierItem pixels (ARGB32, network byte order) as RGBA.
pub fn argb_to_rgba(argb: &[u8]) -> Vec<u8> {
    argb.chunks_exact(4)
        .flat_map(|p| [p[1], p[2], p[3], p[0]])
        .collect()
}

// ----- WebDriver -----

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// WebKitWebDriver and one session on the app it launched.
pub struct WebDriver {
    process: Child,
    base: String,
    session: Option<String>,
    agent: ureq::Agent,
}

impl WebDriver {
    /// Starts WebKitWebDriver in `desktop`'s environment and a session that launches the app
    /// with `args`.
    pub fn launch(desktop: &Desktop, args: &[&str], log: &Path) -> Result<WebDriver, AppTestError> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(io("finding a free port"))?
            .port();
        let log = std::fs::File::create(log).map_err(io("creating the WebDriver log"))?;
        let err = log.try_clone().map_err(io("cloning the WebDriver log"))?;
        let process = desktop
            .command("WebKitWebDriver")
            .arg(format!("--port={port}"))
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(io("starting WebKitWebDriver (package webkit2gtk-driver)"))?;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        let mut driver = WebDriver {
            process,
            base: format!("http://127.0.0.1:{port}"),
            session: None,
            agent,
        };
        wait_for(WAIT, "WebKitWebDriver to listen", || {
            driver.get("/status").ok().map(|_| ())
        })?;
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "webkitgtk:browserOptions": {
                        "binary": app_binary().display().to_string(),
                        "args": args,
                    }
                }
            }
        });
        let created = driver.post("/session", &caps)?;
        let id = created["sessionId"]
            .as_str()
            .ok_or_else(|| AppTestError::WebDriver("new session".into(), created.to_string()))?;
        driver.session = Some(id.to_owned());
        Ok(driver)
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// The app process WebKitWebDriver started.
    pub fn app_pid(&self) -> Result<u32, AppTestError> {
        wait_for(WAIT, "the app process under WebKitWebDriver", || {
            app_child_of(self.pid())
        })
    }

    fn url(&self, path: &str) -> String {
        match &self.session {
            Some(s) => format!("{}/session/{s}{path}", self.base),
            None => format!("{}{path}", self.base),
        }
    }

    fn answer(what: &str, r: Result<ureq::Response, ureq::Error>) -> Result<Value, AppTestError> {
        match r {
            Ok(resp) => {
                let v: Value = resp
                    .into_json()
                    .map_err(|e| AppTestError::WebDriver(what.to_owned(), e.to_string()))?;
                Ok(v["value"].clone())
            }
            Err(ureq::Error::Status(code, resp)) => Err(AppTestError::WebDriver(
                what.to_owned(),
                format!("{code} {}", resp.into_string().unwrap_or_default()),
            )),
            Err(e) => Err(AppTestError::WebDriver(what.to_owned(), e.to_string())),
        }
    }

    fn get(&self, path: &str) -> Result<Value, AppTestError> {
        Self::answer(path, self.agent.get(&self.url(path)).call())
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, AppTestError> {
        Self::answer(
            path,
            self.agent.post(&self.url(path)).send_json(body.clone()),
        )
    }

    /// Runs `script` (a function body; `return` gives the result) in the window.
    pub fn exec(&self, script: &str) -> Result<Value, AppTestError> {
        self.post("/execute/sync", &json!({"script": script, "args": []}))
    }

    /// Polls `script` until it returns `true`.
    pub fn wait_true(
        &self,
        deadline: Duration,
        what: &str,
        script: &str,
    ) -> Result<(), AppTestError> {
        wait_for(deadline, what, || {
            self.exec(script)
                .ok()
                .filter(|v| v.as_bool() == Some(true))
                .map(|_| ())
        })
    }

    pub fn element(&self, css: &str) -> Result<String, AppTestError> {
        let v = self.post("/element", &json!({"using": "css selector", "value": css}))?;
        v[ELEMENT_KEY]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| AppTestError::WebDriver(format!("find {css}"), v.to_string()))
    }

    pub fn click(&self, css: &str) -> Result<(), AppTestError> {
        let id = self.element(css)?;
        self.post(&format!("/element/{id}/click"), &json!({}))?;
        Ok(())
    }

    /// Clears the input, then types `text` into it.
    pub fn type_into(&self, css: &str, text: &str) -> Result<(), AppTestError> {
        let id = self.element(css)?;
        self.post(&format!("/element/{id}/clear"), &json!({}))?;
        self.post(&format!("/element/{id}/value"), &json!({"text": text}))?;
        Ok(())
    }

    /// Closes the window as a user would (WebDriver "Close Window").
    pub fn close_window(&self) -> Result<(), AppTestError> {
        Self::answer(
            "close window",
            self.agent.delete(&self.url("/window")).call(),
        )?;
        Ok(())
    }

    /// The status card's state (`data-state`), e.g. "registered".
    pub fn shown_state(&self) -> Option<String> {
        self.exec("const c = document.getElementById('state-card'); return c && !document.getElementById('view-status').hidden ? c.dataset.state : null;")
            .ok()?
            .as_str()
            .map(str::to_owned)
    }

    pub fn wait_state(&self, state: &str, deadline: Duration) -> Result<(), AppTestError> {
        wait_for(deadline, &format!("the window to show `{state}`"), || {
            (self.shown_state().as_deref() == Some(state)).then_some(())
        })
    }

    /// Ends the session (WebKitWebDriver then closes what is left of the browser) and the driver.
    pub fn finish(mut self) {
        if self.session.is_some() {
            let url = self.url("");
            let _ = self.agent.delete(&url).call();
            self.session = None;
        }
        kill_child(&mut self.process);
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        kill_child(&mut self.process);
    }
}

/// Fills the settings form in the real window for `ext` at the registrar's UDP port and saves.
pub fn save_settings_in_ui(
    driver: &WebDriver,
    registrar: &Registrar,
    ext: &str,
    password: &str,
) -> Result<(), AppTestError> {
    save_settings_over(driver, registrar, "udp", ext, password)
}

/// Like [`save_settings_in_ui`], over `transport` ("udp" or "tcp").
pub fn save_settings_over(
    driver: &WebDriver,
    registrar: &Registrar,
    transport: &str,
    ext: &str,
    password: &str,
) -> Result<(), AppTestError> {
    let port = match transport {
        "tcp" => registrar.tcp_port(),
        _ => registrar.udp_port(),
    };
    driver.wait_true(
        WAIT,
        "the settings form",
        "return !document.getElementById('view-settings').hidden;",
    )?;
    driver.type_into("#f-server", "127.0.0.1")?;
    driver.type_into("#f-extension", ext)?;
    driver.type_into("#f-password", password)?;
    driver.exec(&format!(
        "document.getElementById('f-transport').value = '{transport}'; return true;"
    ))?;
    driver.type_into("#f-port", &port.to_string())?;
    driver.click("#btn-save")
}
