//! The window's connection to VICIfast in the tray (`vicifast-tray`), which runs the
//! registration. If it is not running, the window starts it (it keeps running after the window
//! closes). Events it pushes go to the page as Tauri events; when it quits, so does the window.

use crate::window;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tauri::{AppHandle, Emitter, Runtime};
use tokio::sync::{oneshot, Mutex, OnceCell};
use vicifast_ipc::process::{NO_WINDOW_FLAG, TRAY_BINARY};
use vicifast_ipc::{self as ipc, Call, CommandError, IpcError, LineWriter, Request, ToWindow};

/// How long a tray process just started may take to answer.
const START_DEADLINE: Duration = Duration::from_secs(15);
const START_POLL: Duration = Duration::from_millis(50);

type Pending =
    Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Result<serde_json::Value, CommandError>>>>>;

/// Managed by Tauri; connects on first use.
#[derive(Default)]
pub struct TrayLink {
    connection: OnceCell<Result<Connection, CommandError>>,
}

struct Connection {
    writer: Mutex<LineWriter>,
    pending: Pending,
    next_id: AtomicU64,
}

impl TrayLink {
    /// Sends `call` and waits for the answer.
    pub async fn call<R: Runtime>(
        &self,
        app: &AppHandle<R>,
        call: Call,
    ) -> Result<serde_json::Value, CommandError> {
        let connection = self
            .connection
            .get_or_init(|| connect(app.clone()))
            .await
            .as_ref()
            .map_err(Clone::clone)?;
        connection.call(call).await
    }
}

impl Connection {
    async fn call(&self, call: Call) -> Result<serde_json::Value, CommandError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        lock(&self.pending).insert(id, answer);
        let sent = self.writer.lock().await.send(&Request { id, call }).await;
        if let Err(e) = sent {
            lock(&self.pending).remove(&id);
            return Err(unreachable(&e));
        }
        answered.await.map_err(|_| unreachable(&IpcError::Closed))?
    }
}

fn unreachable(e: &IpcError) -> CommandError {
    CommandError::new(
        "unreachable",
        format!("The window could not reach VICIfast in the tray: {e}. Close this window and start VICIfast again."),
    )
}

/// Connects (starting the tray process if needed), subscribes to events and starts reading.
async fn connect<R: Runtime>(app: AppHandle<R>) -> Result<Connection, CommandError> {
    let (mut reader, writer) = match ipc::connect().await {
        Ok(halves) => halves,
        Err(_) => start_tray_process().await?,
    };
    let pending: Pending = Arc::default();
    let connection = Connection {
        writer: Mutex::new(writer),
        pending: Arc::clone(&pending),
        next_id: AtomicU64::new(1),
    };
    tauri::async_runtime::spawn(async move {
        loop {
            match reader.next::<ToWindow>().await {
                Ok(Some(ToWindow::Reply { id, result })) => {
                    if let Some(answer) = lock(&pending).remove(&id) {
                        let _ = answer.send(result);
                    }
                }
                Ok(Some(ToWindow::Event { event, payload })) => {
                    if event == "focus" {
                        window::show(&app);
                    } else if let Err(e) = app.emit(&event, payload) {
                        tracing::warn!("event `{event}` not passed to the page: {e}");
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("{e}");
                    break;
                }
            }
        }
        // VICIfast in the tray quit (or died): the window has nothing left to show.
        tracing::info!("VICIfast in the tray has gone; closing the window");
        app.exit(0);
    });
    connection.call(Call::Subscribe).await?;
    Ok(connection)
}

/// Starts `vicifast-tray --no-window` (it stays after this window closes) and waits until it
/// answers on the local socket.
async fn start_tray_process() -> Result<(ipc::LineReader, LineWriter), CommandError> {
    let binary = tray_binary();
    tracing::info!("starting {}", binary.display());
    let mut command = std::process::Command::new(&binary);
    command
        .arg(NO_WINDOW_FLAG)
        .stdin(std::process::Stdio::null());
    detach(&mut command);
    let mut child = command.spawn().map_err(|e| {
        CommandError::new(
            "unreachable",
            format!(
                "VICIfast could not start its tray process ({}): {e}. Reinstalling VICIfast should fix this.",
                binary.display()
            ),
        )
    })?;
    let deadline = tokio::time::Instant::now() + START_DEADLINE;
    loop {
        if let Ok(halves) = ipc::connect().await {
            // It runs on its own from now on; a thread reaps it if it ends while we live.
            std::thread::spawn(move || child.wait());
            return Ok(halves);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(CommandError::new(
                "unreachable",
                format!("VICIfast's tray process stopped at once ({status}). Start VICIfast from a terminal to see why."),
            ));
        }
        if tokio::time::Instant::now() > deadline {
            return Err(CommandError::new(
                "unreachable",
                "VICIfast's tray process did not answer in time. Close this window and start VICIfast again.",
            ));
        }
        tokio::time::sleep(START_POLL).await;
    }
}

fn tray_binary() -> PathBuf {
    let name = format!("{TRAY_BINARY}{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .map(|exe| exe.with_file_name(&name))
        .unwrap_or_else(|_| PathBuf::from(name))
}

/// Its own process group, so a Ctrl+C meant for the window does not stop the registration.
#[cfg(unix)]
fn detach(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
}

#[cfg(not(unix))]
fn detach(_command: &mut std::process::Command) {}

/// Locks `mutex`; a panic while it was held does not make it unusable.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
