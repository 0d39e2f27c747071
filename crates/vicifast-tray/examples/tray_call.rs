//! Sends one call to the running VICIfast tray process over its local socket (a named pipe on
//! Windows) and prints the answer as JSON: a helper for the tests, which run it under Wine beside
//! `vicifast-tray.exe`. Not shipped.
//!
//!     tray_call <call>      e.g. `tray_call get_state`, `tray_call quit`
//!     tray_call --access    (Windows) the pipe's access list and this user's SID, as JSON
//!     tray_call --resume    (Windows) the notice Windows broadcasts when the computer wakes
//!
//! Exit status: 0 with the result on stdout; 1 when the tray process answered with an error
//! (printed on stderr); 2 when it could not be asked.

use std::process::ExitCode;
use vicifast_ipc::{self as ipc, Request, ToWindow};

fn main() -> ExitCode {
    let Some(call) = std::env::args().nth(1) else {
        eprintln!("usage: tray_call <call> | --access | --resume");
        return ExitCode::from(2);
    };
    if call == "--access" {
        return access();
    }
    if call == "--resume" {
        return resume();
    }
    // Only the calls the tray process knows (and that need no arguments) get through.
    let request: Request = match serde_json::from_value(serde_json::json!({"id": 1, "call": call}))
    {
        Ok(request) => request,
        Err(e) => {
            eprintln!("tray_call: `{call}` is not a call: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tray_call: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let (mut reader, mut writer) = match ipc::connect().await {
            Ok(link) => link,
            Err(e) => {
                eprintln!("tray_call: {e}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = writer.send(&request).await {
            eprintln!("tray_call: {e}");
            return ExitCode::from(2);
        }
        loop {
            match reader.next::<ToWindow>().await {
                Ok(Some(ToWindow::Reply { id, result })) if id == request.id => {
                    return match result {
                        Ok(value) => {
                            println!("{value}");
                            ExitCode::SUCCESS
                        }
                        Err(e) => {
                            eprintln!("tray_call: {}: {}", e.code, e.message);
                            ExitCode::from(1)
                        }
                    };
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    eprintln!("tray_call: the tray process hung up without answering");
                    return ExitCode::from(2);
                }
                Err(e) => {
                    eprintln!("tray_call: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    })
}

/// Opens the running tray process's pipe as any client would and reads back its access list.
#[cfg(windows)]
fn access() -> ExitCode {
    use std::os::windows::io::AsHandle;
    let path = format!(r"\\.\pipe\{}", ipc::endpoint::pipe_name());
    let read = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .and_then(|pipe| {
            let dacl = vicifast_win32::dacl_sddl(pipe.as_handle())?;
            Ok((vicifast_win32::current_user_sid()?, dacl))
        });
    match read {
        Ok((user, dacl)) => {
            println!("{}", serde_json::json!({"user": user, "dacl": dacl}));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tray_call: {path}: {e}");
            ExitCode::from(2)
        }
    }
}

/// Sends the tray process's hidden window the WM_POWERBROADCAST Windows sends on waking.
#[cfg(windows)]
fn resume() -> ExitCode {
    match vicifast_win32::send_resume() {
        Ok(()) => {
            println!("null");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tray_call: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(not(windows))]
fn resume() -> ExitCode {
    eprintln!("tray_call: --resume sends a Windows power notification");
    ExitCode::from(2)
}

#[cfg(not(windows))]
fn access() -> ExitCode {
    eprintln!("tray_call: --access reads a Windows named pipe's access list");
    ExitCode::from(2)
}
