//! A SIP message the edge proxy can edit and send on (RFC 3261 §16.6 step 1: "copy request").
//!
//! Parsing is `message.rs`'s (start line, folded and compact header fields, canonical names);
//! this adds what a proxy needs on top: the Request-URI, the body, header fields kept in their
//! order so they can be pushed and popped (Via, Route, Record-Route), and serialisation with a
//! Content-Length that always matches the body.

use crate::message::{
    find_subslice, parse_cseq, split_list, MessageError, NameAddr, SipMessage, Via,
};
use std::borrow::Cow;

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

/// A SIP message as a list of header fields (canonical lower-case names) and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EditableMessage {
    pub start: StartLine,
    fields: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl EditableMessage {
    /// Parses one message: a UDP datagram or one framed from a stream. A body longer than
    /// Content-Length is cut to it (RFC 3261 §18.3); a shorter one is an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, MessageError> {
        let parsed = SipMessage::parse(bytes)?;
        let body_start = find_subslice(bytes, b"\r\n\r\n")
            .map(|at| at + 4)
            .or_else(|| find_subslice(bytes, b"\n\n").map(|at| at + 2))
            .unwrap_or(bytes.len());
        let (start, headers) = match parsed {
            SipMessage::Request(request) => {
                // `SipMessage::parse` checked the start line has exactly three parts.
                let first_line = bytes
                    .split(|&b| b == b'\n')
                    .next()
                    .and_then(|line| std::str::from_utf8(line).ok())
                    .unwrap_or_default();
                let uri = first_line.split(' ').nth(1).unwrap_or_default().to_owned();
                let method = request.method;
                (StartLine::Request { method, uri }, request.headers)
            }
            SipMessage::Response(response) => (
                StartLine::Response {
                    code: response.code,
                    reason: response.reason,
                },
                response.headers,
            ),
        };
        let fields = headers.0;
        // A bare CR or a NUL inside a value could split a header line at the next hop.
        if fields
            .iter()
            .any(|(_, value)| value.contains(['\r', '\n', '\0']))
        {
            return Err(MessageError::Unparsable(
                "control character inside a header value".into(),
            ));
        }
        let mut body = bytes.get(body_start..).unwrap_or_default().to_vec();
        if let Some(length) = fields
            .iter()
            .find(|(name, _)| name == "content-length")
            .map(|(_, value)| value)
        {
            let length: usize = length
                .trim()
                .parse()
                .map_err(|_| MessageError::BadHeader("Content-Length"))?;
            if length > body.len() {
                return Err(MessageError::Unparsable(
                    "body shorter than Content-Length".into(),
                ));
            }
            body.truncate(length);
        }
        Ok(Self {
            start,
            fields,
            body,
        })
    }

    /// A request with no header fields yet.
    pub fn request(method: &str, uri: &str) -> Self {
        Self {
            start: StartLine::Request {
                method: method.to_owned(),
                uri: uri.to_owned(),
            },
            fields: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response to `request` with the fields RFC 3261 §8.2.6.2 copies (all Vias, From, To,
    /// Call-ID, CSeq); `to_tag` is added to To when it has none.
    pub fn response_to(request: &Self, code: u16, reason: &str, to_tag: Option<&str>) -> Self {
        let mut response = Self {
            start: StartLine::Response {
                code,
                reason: reason.to_owned(),
            },
            fields: Vec::new(),
            body: Vec::new(),
        };
        for (name, value) in &request.fields {
            if matches!(name.as_str(), "via" | "from" | "call-id" | "cseq") {
                response.fields.push((name.clone(), value.clone()));
            } else if name == "to" {
                let value = match to_tag {
                    Some(tag) if request.tag_in_to().is_none() => format!("{value};tag={tag}"),
                    _ => value.clone(),
                };
                response.fields.push((name.clone(), value));
            }
        }
        response
    }

    // ---- start line ----

    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn is_method(&self, name: &str) -> bool {
        self.method().is_some_and(|m| m.eq_ignore_ascii_case(name))
    }

    pub fn uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    pub fn set_uri(&mut self, new: &str) {
        if let StartLine::Request { uri, .. } = &mut self.start {
            *uri = new.to_owned();
        }
    }

    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    pub fn set_status(&mut self, new_code: u16, new_reason: &str) {
        if let StartLine::Response { code, reason } = &mut self.start {
            *code = new_code;
            *reason = new_reason.to_owned();
        }
    }

    // ---- header fields ----

    /// The first field of a header, as it came.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every field line of a header, unsplit.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every element of a comma-separated header, across its field lines, in order.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get_all(name).flat_map(split_list).collect()
    }

    /// The first element of a comma-separated header.
    pub fn top(&self, name: &str) -> Option<String> {
        self.get_all(name).flat_map(split_list).next()
    }

    /// Removes and returns the first element of a comma-separated header.
    pub fn pop_top(&mut self, name: &str) -> Option<String> {
        let index = self.fields.iter().position(|(n, _)| n == name)?;
        let mut elements = split_list(&self.fields[index].1);
        if elements.is_empty() {
            self.fields.remove(index);
            return self.pop_top(name);
        }
        let top = elements.remove(0);
        if elements.is_empty() {
            self.fields.remove(index);
        } else {
            self.fields[index].1 = elements.join(", ");
        }
        Some(top)
    }

    /// Adds a value above every existing value of the header (a Via, a Record-Route).
    pub fn push_top(&mut self, name: &str, value: String) {
        let at = self
            .fields
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or(if name == "via" { 0 } else { self.fields.len() });
        self.fields.insert(at, (name.to_owned(), value));
    }

    pub fn append(&mut self, name: &str, value: impl Into<String>) {
        self.fields.push((name.to_owned(), value.into()));
    }

    /// Replaces every field of the header with one (appended when there was none).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.fields.iter().position(|(n, _)| n == name) {
            Some(at) => {
                self.fields[at].1 = value;
                let mut seen = 0;
                self.fields.retain(|(n, _)| {
                    if n == name {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.fields.push((name.to_owned(), value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.fields.retain(|(n, _)| n != name);
    }

    // ---- what transactions and dialogs are identified by ----

    pub fn call_id(&self) -> Option<&str> {
        self.get("call-id")
    }

    pub fn cseq(&self) -> Option<(u32, String)> {
        self.get("cseq").and_then(parse_cseq)
    }

    pub fn top_via(&self) -> Option<Via> {
        self.top("via").and_then(|v| Via::parse(&v))
    }

    pub fn tag_in_from(&self) -> Option<String> {
        self.get("from")
            .and_then(NameAddr::parse)
            .and_then(|f| f.tag().map(str::to_owned))
    }

    pub fn tag_in_to(&self) -> Option<String> {
        self.get("to")
            .and_then(NameAddr::parse)
            .and_then(|t| t.tag().map(str::to_owned))
    }

    /// A request inside a dialog: its To carries the remote tag.
    pub fn in_dialog(&self) -> bool {
        self.tag_in_to().is_some()
    }

    /// Whether the fields a transaction and a response need are all present and well formed.
    pub fn has_transaction_fields(&self) -> bool {
        self.top_via().is_some()
            && self.get("from").and_then(NameAddr::parse).is_some()
            && self.get("to").and_then(NameAddr::parse).is_some()
            && self.call_id().is_some_and(|c| !c.is_empty())
            && self.cseq().is_some()
    }

    pub fn content_type(&self) -> Option<String> {
        self.get("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// The message on the wire, Content-Length set to the body's length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = match &self.start {
            StartLine::Request { method, uri } => format!("{method} {uri} SIP/2.0\r\n"),
            StartLine::Response { code, reason } => format!("SIP/2.0 {code} {reason}\r\n"),
        };
        for (name, value) in &self.fields {
            if name == "content-length" {
                continue;
            }
            text.push_str(&display_name(name));
            text.push_str(": ");
            text.push_str(value);
            text.push_str("\r\n");
        }
        text.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// How a canonical (lower-case, long-form) header name is written on the wire.
fn display_name(name: &str) -> Cow<'_, str> {
    let special = match name {
        "call-id" => "Call-ID",
        "cseq" => "CSeq",
        "www-authenticate" => "WWW-Authenticate",
        "mime-version" => "MIME-Version",
        "rseq" => "RSeq",
        "rack" => "RAck",
        "sip-etag" => "SIP-ETag",
        "sip-if-match" => "SIP-If-Match",
        _ => "",
    };
    if !special.is_empty() {
        return Cow::Borrowed(special);
    }
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for ch in name.chars() {
        if upper {
            out.extend(ch.to_uppercase());
        } else {
            out.push(ch);
        }
        upper = ch == '-';
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:101@198.18.1.2:40000;transport=udp SIP/2.0\r\n\
v: SIP/2.0/UDP 198.18.0.1:5060;branch=z9hG4bKa, SIP/2.0/UDP 198.18.0.9;branch=z9hG4bKb\r\n\
Route: <sip:p1;lr>, <sip:p2;lr>\r\n\
f: <sip:200@example.test>;tag=f1\r\n\
t: <sip:101@example.test>\r\n\
i: call-1\r\n\
CSeq: 1 INVITE\r\n\
c: application/sdp\r\n\
l: 4\r\n\
\r\n\
v=0\r\nextra";

    #[test]
    fn parses_uri_body_and_compact_names() {
        let m = EditableMessage::parse(INVITE.as_bytes()).unwrap();
        assert_eq!(m.uri(), Some("sip:101@198.18.1.2:40000;transport=udp"));
        assert_eq!(m.body, b"v=0\r");
        assert_eq!(m.content_type().as_deref(), Some("application/sdp"));
        assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bKa"));
        assert_eq!(m.cseq(), Some((1, "INVITE".into())));
        assert!(!m.in_dialog());
        assert!(m.has_transaction_fields());
    }

    #[test]
    fn pops_and_pushes_list_elements_in_order() {
        let mut m = EditableMessage::parse(INVITE.as_bytes()).unwrap();
        assert_eq!(m.pop_top("route").as_deref(), Some("<sip:p1;lr>"));
        assert_eq!(m.list("route"), vec!["<sip:p2;lr>"]);
        assert_eq!(m.pop_top("route").as_deref(), Some("<sip:p2;lr>"));
        assert_eq!(m.pop_top("route"), None);
        m.push_top("via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKc".into());
        assert_eq!(m.list("via").len(), 3);
        assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bKc"));
        assert!(m.pop_top("via").unwrap().contains("z9hG4bKc"));
        assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bKa"));
        m.push_top("record-route", "<sip:a;lr>".into());
        m.push_top("record-route", "<sip:b;lr>".into());
        assert_eq!(m.list("record-route"), vec!["<sip:b;lr>", "<sip:a;lr>"]);
    }

    #[test]
    fn serialises_with_long_names_and_a_matching_content_length() {
        let mut m = EditableMessage::parse(INVITE.as_bytes()).unwrap();
        m.body = b"v=0\r\no=x\r\n".to_vec();
        let text = String::from_utf8(m.to_bytes()).unwrap();
        assert!(text.starts_with("INVITE sip:101@198.18.1.2:40000;transport=udp SIP/2.0\r\n"));
        assert!(text.contains("\r\nVia: SIP/2.0/UDP 198.18.0.1:5060"));
        assert!(text.contains("\r\nCall-ID: call-1\r\n"));
        assert!(text.contains("\r\nCSeq: 1 INVITE\r\n"));
        assert!(text.contains("\r\nContent-Type: application/sdp\r\n"));
        assert!(text.ends_with("Content-Length: 10\r\n\r\nv=0\r\no=x\r\n"));
        assert_eq!(text.matches("Content-Length").count(), 1);
        let again = EditableMessage::parse(text.as_bytes()).unwrap();
        assert_eq!(again.body, m.body);
    }

    #[test]
    fn response_copies_the_transaction_fields_and_tags_to() {
        let m = EditableMessage::parse(INVITE.as_bytes()).unwrap();
        let r = EditableMessage::response_to(&m, 480, "Temporarily Unavailable", Some("t9"));
        assert_eq!(r.code(), Some(480));
        assert_eq!(r.list("via").len(), 2);
        assert_eq!(r.tag_in_to().as_deref(), Some("t9"));
        assert_eq!(r.get("route"), None);
        assert_eq!(r.get("content-type"), None);
    }

    #[test]
    fn rejects_short_bodies_bad_lengths_and_control_characters() {
        let short = INVITE.replace("l: 4", "l: 400");
        assert!(EditableMessage::parse(short.as_bytes()).is_err());
        let bad = INVITE.replace("l: 4", "l: four");
        assert!(EditableMessage::parse(bad.as_bytes()).is_err());
        let cr = INVITE.replace("i: call-1", "i: call\r-1");
        assert!(EditableMessage::parse(cr.as_bytes()).is_err());
        let nul = INVITE.replace("i: call-1", "i: call\0-1");
        assert!(EditableMessage::parse(nul.as_bytes()).is_err());
    }

    #[test]
    fn display_names_follow_rfc_spelling() {
        assert_eq!(display_name("max-forwards"), "Max-Forwards");
        assert_eq!(display_name("www-authenticate"), "WWW-Authenticate");
        assert_eq!(display_name("p-asserted-identity"), "P-Asserted-Identity");
        assert_eq!(display_name("x"), "X");
    }
}
