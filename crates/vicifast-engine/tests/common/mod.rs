//! Shared by the driver's loopback tests: a scripted registrar's answers and bounded waits on the
//! engine's events.

// Each test file uses its own subset of these.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;
use tokio::sync::mpsc;
use vicifast_engine::EngineEvent;

/// Every wait is bounded so a broken driver fails the test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(20);

/// The value of header `name` in a SIP message's text, if present.
pub fn header(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// 200 OK to a REGISTER, listing its Contact (if any) as the one binding.
pub fn ok(req: &str) -> String {
    let via = format!("Via: {}", header(req, "Via").unwrap_or_default());
    let contact = header(req, "Contact").filter(|c| !c.contains("expires=0"));
    response(req, "200 OK", &[via.as_str()], "t", contact.as_deref())
}

/// A response to `req`: `status`, the `vias` lines as given, From, Call-ID and CSeq copied, To
/// with `to_tag`, and `contact` if any.
pub fn response(
    req: &str,
    status: &str,
    vias: &[&str],
    to_tag: &str,
    contact: Option<&str>,
) -> String {
    let mut text = format!("SIP/2.0 {status}\r\n");
    for via in vias {
        text.push_str(via);
        text.push_str("\r\n");
    }
    for name in ["From", "Call-ID", "CSeq"] {
        text.push_str(&format!(
            "{name}: {}\r\n",
            header(req, name).unwrap_or_default()
        ));
    }
    text.push_str(&format!(
        "To: {};tag={to_tag}\r\n",
        header(req, "To").unwrap_or_default()
    ));
    if let Some(contact) = contact {
        text.push_str(&format!("Contact: {contact}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    text
}

/// The first event `pick` takes, within [`WAIT`].
pub async fn wait_for<T>(
    events: &mut mpsc::UnboundedReceiver<EngineEvent>,
    mut pick: impl FnMut(&EngineEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("event stream ended");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .expect("event within the bound")
}
