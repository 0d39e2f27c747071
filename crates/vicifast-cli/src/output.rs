//! What the CLI prints: JSON lines for scripts, a live status line for people.

use std::io::Write;
use std::process::ExitCode;
use vicifast_engine::{
    escape_uncut, BindingInfo, CallMoved, ExtensionInUse, Problem, RegistrationState,
    SoftphoneStatus, Stamped, Status, TraceEntry,
};

pub fn json_line<T: serde::Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
        Err(err) => eprintln!("vicifast-cli: cannot print status as JSON: {err}"),
    }
}

/// One line per status; redrawn in place on a terminal.
pub struct LiveLine {
    in_place: bool,
    drawn: bool,
}

impl LiveLine {
    pub fn new(in_place: bool) -> Self {
        Self {
            in_place,
            drawn: false,
        }
    }

    pub fn show(&mut self, status: &Stamped<Status>) {
        let text = describe(status);
        let mut out = std::io::stdout().lock();
        if self.in_place {
            let _ = write!(out, "\r\x1b[2K{text}");
            self.drawn = true;
        } else {
            let _ = writeln!(out, "{text}");
        }
        let _ = out.flush();
    }

    /// A message on stderr that does not garble the live line.
    pub fn message(&mut self, text: &str) {
        if self.drawn {
            println!();
            self.drawn = false;
        }
        eprintln!("{text}");
    }

    pub fn finish(&mut self) {
        if self.drawn {
            println!();
            self.drawn = false;
        }
    }
}

fn describe(stamped: &Stamped<Status>) -> String {
    let s = &stamped.inner;
    let time = stamped.at.get(11..19).unwrap_or(&stamped.at);
    let mut text = format!("{time} {} {}", s.account, s.state);
    if let Some(server) = &s.server {
        text.push_str(&format!(" via {} {server}", s.transport));
    }
    match s.state {
        RegistrationState::Registered => {
            if let Some(contact) = &s.contact {
                text.push_str(&format!(" as {contact}"));
            }
            if let Some(expires) = s.expires_in {
                text.push_str(&format!(", expires in {expires} s"));
            }
            if let Some(refresh) = s.next_refresh_in {
                text.push_str(&format!(", refresh in {refresh} s"));
            }
            if let Some(adjusted) = &s.expiry_adjusted {
                text.push_str(&format!(" — {}", adjusted.message));
            }
        }
        RegistrationState::Retrying => {
            if let Some(next) = s.next_attempt_in {
                text.push_str(&format!(", next attempt in {next} s"));
            }
        }
        _ => {}
    }
    if let Some(problem) = &s.problem {
        text.push_str(&format!(
            " — {} {} [{}: {}]",
            problem.message, problem.action, problem.code, problem.detail
        ));
    }
    text
}

pub fn trace(entry: &Stamped<TraceEntry>) {
    let e = &entry.inner;
    let arrow = match e.direction {
        vicifast_engine::Direction::Sent => "sent to",
        vicifast_engine::Direction::Received => "received from",
    };
    eprintln!(
        "--- {} {arrow} {} ({})\n{}",
        entry.at,
        e.remote,
        e.transport,
        e.text.trim_end()
    );
}

pub fn bindings(bindings: &[BindingInfo], json: bool) {
    if json {
        json_line(&serde_json::json!({ "bindings": bindings }));
        return;
    }
    if bindings.is_empty() {
        println!("no bindings");
    }
    for b in bindings {
        let expires = b
            .expires_in
            .map_or_else(|| "?".to_owned(), |e| e.to_string());
        let whose = match (b.ours, b.stale) {
            (true, false) => " (this computer)",
            (true, true) => " (this computer, old; being removed)",
            (false, _) => "",
        };
        // The registrar's text: printed so that it cannot steer the terminal.
        println!("{} expires_in={expires}{whose}", escape_uncut(&b.contact));
    }
}

pub fn removed(removed: &[String], json: bool) {
    if json {
        json_line(&serde_json::json!({ "removed": removed }));
        return;
    }
    println!("removed {} binding(s)", removed.len());
    for contact in removed {
        println!("{}", escape_uncut(contact));
    }
}

pub fn query_failed(problem: &Problem, json: bool) -> ExitCode {
    if json {
        json_line(&serde_json::json!({ "problem": problem }));
    }
    eprintln!(
        "vicifast-cli: {} {} ({}: {})",
        problem.message, problem.action, problem.code, problem.detail
    );
    ExitCode::from(1)
}

/// Where the softphone listener was bound (the port matters when 0 asked for a free one).
pub fn softphone_listener(listen: std::net::SocketAddr, json: bool) {
    if json {
        json_line(
            &serde_json::json!({ "event": "softphone_listener", "listen": listen.to_string() }),
        );
    } else {
        eprintln!("listening for the softphone on {listen} (UDP and TCP): set it as the softphone's outbound proxy");
    }
}

/// One line on the softphone: "softphone answering (baresip v1.0.0) at sip:…".
pub fn describe_softphone(stamped: &Stamped<SoftphoneStatus>) -> String {
    let s = &stamped.inner;
    let time = stamped.at.get(11..19).unwrap_or(&stamped.at);
    let mut text = format!("{time} {} softphone {}", s.account, s.state);
    // What the softphone sent (its User-Agent, Contact) is escaped: it is another program's text.
    if let Some(agent) = &s.user_agent {
        text.push_str(&format!(" ({})", vicifast_engine::escape(agent)));
    }
    if let Some(contact) = &s.contact {
        text.push_str(&format!(" at {}", vicifast_engine::escape(contact)));
    }
    if let Some(problem) = &s.problem {
        text.push_str(&format!(
            " — {} {} [{}: {}]",
            problem.message,
            problem.action,
            problem.code.as_str(),
            vicifast_engine::escape(&problem.detail)
        ));
    }
    text
}

/// One line when the network changed during a call: what the agent should do, the calls, and
/// the addresses.
pub fn call_moved(stamped: &Stamped<CallMoved>) -> String {
    let m = &stamped.inner;
    let time = stamped.at.get(11..19).unwrap_or(&stamped.at);
    // The other party's URI is the PBX's text.
    let with: Vec<String> = m
        .calls
        .iter()
        .map(|c| vicifast_engine::escape(&c.other_party))
        .collect();
    format!(
        "{time} {} {} [calls with {}; this computer moved from {} to {}]",
        m.account,
        m.message,
        with.join(", "),
        m.old_address,
        m.new_address
    )
}

/// The note printed (on stderr) when another device took the extension, with the two choices.
pub fn extension_in_use(info: &ExtensionInUse, pid: u32) -> String {
    let choice = if cfg!(unix) {
        format!("Use this computer: kill -USR1 {pid}. Stop here: Ctrl-C.")
    } else {
        "Stop here: Ctrl-C.".to_owned()
    };
    format!(
        "{} {} {choice} [extension_in_use]",
        info.message, info.take_over_note
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use vicifast_engine::{CallDirection, CallInProgress};

    #[test]
    fn a_call_across_a_network_change_is_one_line_in_words() {
        let moved = Stamped {
            at: "2026-12-04T08:30:12.000Z".to_owned(),
            inner: CallMoved::new(
                "office",
                vec![CallInProgress {
                    call_id: "c1".to_owned(),
                    direction: CallDirection::Incoming,
                    other_party: "sip:200@pbx\x1b[2J".to_owned(),
                }],
                [198, 18, 1, 10].into(),
                [198, 18, 2, 10].into(),
            ),
        };
        let line = call_moved(&moved);
        assert!(!line.contains('\n') && !line.contains('\x1b'), "{line:?}");
        assert!(line.starts_with("08:30:12 office The network changed during your call: if you cannot hear the caller, put the call on hold and take it off hold"), "{line}");
        assert!(line.contains("from 198.18.1.10 to 198.18.2.10"), "{line}");
    }
}
