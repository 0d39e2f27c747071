//! The tray process's side of the local socket (the protocol is `vicifast-ipc`'s): one task per
//! connection, one task per request (a save may wait on the keychain; a `get_state` need not
//! wait behind it).

use crate::app::{App, WindowEvent};
use interprocess::local_socket::tokio::{Listener, Stream};
use interprocess::local_socket::traits::tokio::Listener as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use vicifast_ipc::{split, Call, CommandError, IpcError, Request, ToWindow};

/// What a connection's writer task is given: a message to send, or a request to say when
/// everything queued before it has been written.
enum Outgoing {
    Message(ToWindow),
    Flush(oneshot::Sender<()>),
}

/// Accepts connections until the process ends.
pub async fn serve(listener: Listener, app: Arc<App>) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                tokio::spawn(connection(stream, Arc::clone(&app)));
            }
            Err(e) => {
                // Out of file descriptors and the like: do not spin on it.
                tracing::warn!("local socket: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn connection(stream: Stream, app: Arc<App>) {
    let (mut reader, mut writer) = split(stream);
    let (outgoing, mut queue) = mpsc::unbounded_channel::<Outgoing>();
    let sender = tokio::spawn(async move {
        while let Some(item) = queue.recv().await {
            match item {
                Outgoing::Message(message) => {
                    if writer.send(&message).await.is_err() {
                        break;
                    }
                }
                Outgoing::Flush(done) => drop(done.send(())),
            }
        }
    });
    let mut events: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let request = match reader.next::<Request>().await {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(IpcError::BadMessage(e)) => {
                // Not one of our processes, or a different version: say so and hang up.
                tracing::warn!("local socket: unreadable request ({e}); closing the connection");
                break;
            }
            Err(e) => {
                tracing::debug!("local socket: {e}");
                break;
            }
        };
        if request.call == Call::Quit {
            quit(&app, request.id, &outgoing).await;
            break;
        }
        if request.call == Call::Subscribe && events.is_none() {
            events = Some(tokio::spawn(forward_events(
                app.subscribe(),
                outgoing.clone(),
            )));
        }
        let app = Arc::clone(&app);
        let outgoing = outgoing.clone();
        tokio::spawn(async move {
            let result = answer(&app, request.call).await;
            let _ = outgoing.send(Outgoing::Message(ToWindow::Reply {
                id: request.id,
                result,
            }));
        });
    }
    if let Some(events) = events {
        events.abort();
    }
    drop(outgoing);
    let _ = sender.await;
}

/// Unregisters every account and answers once the bindings are gone; the process ends only after
/// the answer was written, so the caller learns the outcome before the connection closes.
async fn quit(app: &Arc<App>, id: u64, outgoing: &mpsc::UnboundedSender<Outgoing>) {
    tracing::info!("asked over the local socket to quit: unregistering, then quitting");
    app.quit_after(async {
        let (flushed, written) = oneshot::channel();
        let reply = ToWindow::Reply {
            id,
            result: Ok(serde_json::Value::Null),
        };
        if outgoing.send(Outgoing::Message(reply)).is_ok()
            && outgoing.send(Outgoing::Flush(flushed)).is_ok()
        {
            // An error here means the caller hung up first: nothing left to wait for.
            let _ = written.await;
        }
    })
    .await;
}

async fn answer(app: &Arc<App>, call: Call) -> Result<serde_json::Value, CommandError> {
    let value = match call {
        Call::Subscribe => serde_json::Value::Null,
        Call::GetState => to_value(app.get_state()?)?,
        Call::SaveSettings {
            settings,
            password_saved,
        } => to_value(app.save_settings(settings, password_saved).await?)?,
        Call::Register => {
            app.register().await?;
            serde_json::Value::Null
        }
        Call::Unregister => {
            app.unregister().await;
            serde_json::Value::Null
        }
        Call::TakeOver => {
            app.take_over().await;
            serde_json::Value::Null
        }
        Call::ClearTrace => {
            app.clear_trace();
            serde_json::Value::Null
        }
        Call::OpenWindow => {
            app.open_window();
            serde_json::Value::Null
        }
        // Handled by the connection itself (see `quit`), which must outlive the answer.
        Call::Quit => serde_json::Value::Null,
    };
    Ok(value)
}

fn to_value(value: impl serde::Serialize) -> Result<serde_json::Value, CommandError> {
    serde_json::to_value(value).map_err(|e| CommandError::new("internal", e.to_string()))
}

async fn forward_events(
    mut events: broadcast::Receiver<WindowEvent>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
) {
    loop {
        match events.recv().await {
            Ok(WindowEvent { name, payload }) => {
                let event = ToWindow::Event {
                    event: name.to_owned(),
                    payload,
                };
                if outgoing.send(Outgoing::Message(event)).is_err() {
                    break;
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!("the window missed {missed} events");
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}
