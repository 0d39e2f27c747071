//! Captures real SIP messages for the fuzzers' seed corpora: `vicifast-cli register --trace`
//! against a real Kamailio (over UDP and TCP) registers, is refreshed, receives an OPTIONS and an
//! INVITE from Kamailio, and unregisters on SIGINT. Every message traced (credentials already
//! redacted by the CLI) is written to the output directory as `<transport>-<nn>-<sent|received>-
//! <method or code>.sip`; `cargo run -p vicifast-core --example fuzz_seeds` turns them into seeds.
//!
//! Usage: `sip_captures <output dir>`. The CLI is $VICIFAST_CLI or the `vicifast-cli` beside
//! this binary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use vicifast_e2e::{register_args, registrar_with_user, Cli, RegistrarOptions, Transport, WAIT};

fn main() -> ExitCode {
    let Some(out) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: sip_captures <output dir>");
        return ExitCode::from(2);
    };
    if let Err(err) = std::fs::create_dir_all(&out) {
        eprintln!("sip_captures: {}: {err}", out.display());
        return ExitCode::FAILURE;
    }
    for transport in [Transport::Udp, Transport::Tcp] {
        match capture(transport, &out) {
            Ok(n) => println!("{transport}: {n} messages written to {}", out.display()),
            Err(err) => {
                eprintln!("sip_captures: {transport}: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn capture(transport: Transport, out: &Path) -> Result<usize, String> {
    let (registrar, ext, password) = registrar_with_user(RegistrarOptions {
        min_expires: 1,
        ..RegistrarOptions::default()
    });
    let args = register_args(&registrar, transport, &ext, &["--trace", "--expires", "4"]);
    let mut cli = Cli::spawn(&args, &password).map_err(|e| e.to_string())?;
    let registered = cli.wait_for_state("registered", WAIT)?;
    cli.wait_for(|s| s["cause"] == "refreshed", WAIT)?;
    let contact = registered["contact"]
        .as_str()
        .ok_or("no contact in the registered status")?
        .to_owned();
    for method in ["OPTIONS", "INVITE"] {
        registrar
            .send_request(method, &contact)
            .map_err(|e| format!("{method} from Kamailio: {e}"))?;
    }
    cli.interrupt()?;
    cli.wait_exit(WAIT)?;
    // The stderr reader may still hold the last lines: wait for the unregister's answer.
    cli.wait_for_stderr("Expires: 0", Duration::from_secs(5))
        .or_else(|_| cli.wait_for_stderr("expires=0", Duration::from_secs(5)))?;
    let messages = traced_messages(&cli.stderr());
    for (n, (direction, text)) in messages.iter().enumerate() {
        let first = text.split_whitespace().next().unwrap_or("message");
        let label = if first == "SIP/2.0" {
            text.split_whitespace().nth(1).unwrap_or("response")
        } else {
            first
        };
        let name = format!("{transport}-{n:02}-{direction}-{label}.sip");
        std::fs::write(out.join(&name), text).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(messages.len())
}

/// The messages in the CLI's `--trace` output: blocks that start with a `--- <time> sent to|
/// received from <address> (<transport>)` line, rebuilt with CRLF line ends.
fn traced_messages(stderr: &str) -> Vec<(&'static str, String)> {
    let mut messages = Vec::new();
    let mut current: Option<(&'static str, Vec<&str>)> = None;
    let mut finish = |current: Option<(&'static str, Vec<&str>)>| {
        if let Some((direction, lines)) = current {
            let head_end = lines
                .iter()
                .position(|l| l.is_empty())
                .unwrap_or(lines.len());
            let mut text = lines[..head_end].join("\r\n");
            text.push_str("\r\n\r\n");
            for line in lines.iter().skip(head_end + 1) {
                text.push_str(line);
                text.push_str("\r\n");
            }
            if head_end > 0 {
                messages.push((direction, text));
            }
        }
    };
    for line in stderr.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(header) = line.strip_prefix("--- ") {
            finish(current.take());
            let direction = if header.contains(" sent to ") {
                "sent"
            } else {
                "received"
            };
            current = Some((direction, Vec::new()));
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line);
        }
    }
    finish(current);
    messages
}
