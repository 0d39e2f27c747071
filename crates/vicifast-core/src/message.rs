//! SIP messages as the rest of the core sees them.
//!
//! The start line and header fields are parsed here, by hand: rsip 0.4 rejects every request
//! whose Request-URI has an IPv6 host (`OPTIONS sip:101@[::1]:5060 SIP/2.0` fails with "invalid
//! digit found in string"), which is exactly what a registrar sends to an IPv6 contact. The core
//! reads header values as text anyway, so it needs only `(name, value)` pairs with canonical names
//! (compact forms like `v:` and `m:` read the same as `Via:` and `Contact:`). On top of that this
//! module adds what a registrar client needs: comma-separated header values split with quotes and
//! angle brackets respected (Kamailio lists every binding in one Contact header), name-addr and
//! Via parameters, and message building.

use std::fmt::Write as _;

/// A parsed SIP message.
#[derive(Debug, Clone)]
pub(crate) enum SipMessage {
    Request(Request),
    Response(Response),
}

#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    pub headers: Headers,
}

#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub code: u16,
    pub reason: String,
    pub headers: Headers,
}

/// Why bytes from the network were not a usable SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("not a SIP message: {0}")]
    Unparsable(String),
    #[error("missing or malformed {0} header")]
    BadHeader(&'static str),
}

impl SipMessage {
    pub fn parse(bytes: &[u8]) -> Result<Self, MessageError> {
        let head_len = find_subslice(bytes, b"\r\n\r\n")
            .or_else(|| find_subslice(bytes, b"\n\n"))
            .ok_or_else(|| unparsable("no end of headers"))?;
        let head = std::str::from_utf8(&bytes[..head_len])
            .map_err(|_| unparsable("header section is not UTF-8"))?;
        // RFC 3261 §25.1 allows no control character in the start line or a header field but
        // HTAB (and the CRLF that ends each line). A bare CR or a NUL kept in a value could be
        // echoed into our own requests (a nonce into Authorization) and split a line there.
        if head.split('\n').any(|line| {
            line.strip_suffix('\r')
                .unwrap_or(line)
                .chars()
                .any(|c| c.is_control() && c != '\t')
        }) {
            return Err(unparsable("control character in the header section"));
        }
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let start = lines.next().unwrap_or_default();
        let headers = Headers::parse(lines)?;
        if let Some(status) = start.strip_prefix("SIP/2.0 ") {
            let (code, reason) = status.split_once(' ').unwrap_or((status, ""));
            let code: u16 = code
                .parse()
                .ok()
                .filter(|c| (100..700).contains(c))
                .ok_or_else(|| unparsable(&format!("bad status code `{code}`")))?;
            return Ok(SipMessage::Response(Response {
                code,
                reason: reason.trim().to_owned(),
                headers,
            }));
        }
        let mut parts = start.split(' ');
        let (Some(method), Some(uri), Some("SIP/2.0"), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(unparsable(&format!("bad start line `{start}`")));
        };
        if method.is_empty() || !method.bytes().all(is_token_byte) || !uri.contains(':') {
            return Err(unparsable(&format!("bad start line `{start}`")));
        }
        Ok(SipMessage::Request(Request {
            method: method.to_owned(),
            headers,
        }))
    }
}

fn unparsable(why: &str) -> MessageError {
    MessageError::Unparsable(truncate(why, 120))
}

pub(crate) fn find_subslice(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// RFC 3261 §25.1 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((idx, _)) => format!("{}…", &s[..idx]),
        None => s.to_owned(),
    }
}

/// Header fields in order, with canonical lower-case names.
#[derive(Debug, Clone, Default)]
pub(crate) struct Headers(pub(crate) Vec<(String, String)>);

impl Headers {
    /// Header field lines; a line starting with white space continues the previous one.
    fn parse<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Self, MessageError> {
        const MAX_FIELDS: usize = 256;
        let mut out: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                let (_, value) = out
                    .last_mut()
                    .ok_or_else(|| unparsable("continuation line before any header"))?;
                value.push(' ');
                value.push_str(line.trim());
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| unparsable(&format!("header line without a colon: `{line}`")))?;
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(unparsable(&format!("bad header name `{name}`")));
            }
            if out.len() == MAX_FIELDS {
                return Err(unparsable("too many header fields"));
            }
            out.push((canonical_name(name), value.trim().to_owned()));
        }
        Ok(Headers(out))
    }

    /// The first value of a header.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every field line of a header, unsplit.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every element of a comma-separated header, across all its field lines.
    #[cfg(test)]
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get_all(name).flat_map(split_list).collect()
    }
}

fn canonical_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let long = match lower.as_str() {
        "i" => "call-id",
        "m" => "contact",
        "e" => "content-encoding",
        "l" => "content-length",
        "c" => "content-type",
        "f" => "from",
        "s" => "subject",
        "k" => "supported",
        "t" => "to",
        "v" => "via",
        "o" => "event",
        "u" => "allow-events",
        _ => return lower,
    };
    long.to_owned()
}

/// Splits a header value at top-level commas: not inside quotes or angle brackets.
pub(crate) fn split_list(value: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut in_angle = false;
    for ch in value.chars() {
        if escaped {
            escaped = false;
            current.push(ch);
            continue;
        }
        match ch {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => in_angle = true,
            '>' if !in_quotes => in_angle = false,
            ',' if !in_quotes && !in_angle => {
                let part = current.trim();
                if !part.is_empty() {
                    parts.push(part.to_owned());
                }
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    let part = current.trim();
    if !part.is_empty() {
        parts.push(part.to_owned());
    }
    parts
}

/// `;name=value;flag` parameters, names lower-cased, quoted values unquoted.
pub(crate) type Params = Vec<(String, Option<String>)>;

pub(crate) fn parse_params(input: &str) -> Params {
    let mut params = Vec::new();
    for raw in split_outside_quotes(input, ';') {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        match raw.split_once('=') {
            Some((name, value)) => params.push((
                name.trim().to_ascii_lowercase(),
                Some(unquote(value.trim()).to_owned()),
            )),
            None => params.push((raw.to_ascii_lowercase(), None)),
        }
    }
    params
}

pub(crate) fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
}

fn split_outside_quotes(input: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    for (idx, ch) in input.char_indices() {
        match ch {
            '"' => in_quotes = !in_quotes,
            c if c == sep && !in_quotes => {
                parts.push(&input[start..idx]);
                start = idx + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&input[start..]);
    parts
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// `"Display" <uri>;params` or `uri;params` (RFC 3261 §20.10: without brackets, parameters after
/// the URI belong to the header, not the URI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameAddr {
    pub uri: String,
    pub params: Params,
}

impl NameAddr {
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if let Some(open) = find_outside_quotes(value, '<') {
            let rest = &value[open + 1..];
            let close = rest.find('>')?;
            let uri = rest[..close].trim().to_owned();
            let params = parse_params(&rest[close + 1..]);
            if uri.is_empty() {
                return None;
            }
            Some(Self { uri, params })
        } else {
            let (uri, params) = match value.split_once(';') {
                Some((uri, params)) => (uri, parse_params(params)),
                None => (value, Vec::new()),
            };
            if uri.is_empty() || uri.contains(' ') {
                return None;
            }
            Some(Self {
                uri: uri.to_owned(),
                params,
            })
        }
    }

    pub fn tag(&self) -> Option<&str> {
        param(&self.params, "tag")
    }
}

fn find_outside_quotes(value: &str, target: char) -> Option<usize> {
    let mut in_quotes = false;
    for (idx, ch) in value.char_indices() {
        match ch {
            '"' => in_quotes = !in_quotes,
            c if c == target && !in_quotes => return Some(idx),
            _ => {}
        }
    }
    None
}

/// The parts of a SIP URI that identify where it points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UriParts {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl UriParts {
    pub fn parse(uri: &str) -> Option<Self> {
        let lower = uri.to_ascii_lowercase();
        let rest = if lower.starts_with("sips:") {
            &uri[5..]
        } else if lower.starts_with("sip:") {
            &uri[4..]
        } else {
            return None;
        };
        let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
        let (userinfo, hostpart) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (hostport, params) = match hostpart.split_once(';') {
            Some((hp, p)) => (hp, parse_params(p)),
            None => (hostpart, Vec::new()),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse().ok()?),
                None => None,
            };
            (h.to_ascii_lowercase(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_ascii_lowercase(), Some(p.parse().ok()?)),
                None => (hostport.to_ascii_lowercase(), None),
            }
        };
        if host.is_empty() {
            return None;
        }
        let user = userinfo.map(|u| u.split_once(':').map_or(u, |(user, _)| user).to_owned());
        Some(Self {
            user,
            host,
            port,
            params,
        })
    }

    /// Whether two URIs name the same contact point: user, host, port and transport.
    pub fn same_contact(&self, other: &Self) -> bool {
        let transport = |p: &Params| param(p, "transport").map(|t| t.to_ascii_lowercase());
        self.user == other.user
            && self.host == other.host
            && self.port.unwrap_or(5060) == other.port.unwrap_or(5060)
            && transport(&self.params).unwrap_or_else(|| "udp".into())
                == transport(&other.params).unwrap_or_else(|| "udp".into())
    }
}

/// The parts of a Via header value we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Via {
    pub transport: String,
    pub sent_by: String,
    pub params: Params,
}

impl Via {
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let (protocol, rest) = value.split_once(char::is_whitespace)?;
        let mut proto = protocol.split('/');
        let (name, version, transport) = (proto.next()?, proto.next()?, proto.next()?);
        if !name.trim().eq_ignore_ascii_case("SIP") || version.trim() != "2.0" {
            return None;
        }
        let rest = rest.trim();
        let (sent_by, params) = match rest.split_once(';') {
            Some((s, p)) => (s.trim(), parse_params(p)),
            None => (rest, Vec::new()),
        };
        if sent_by.is_empty() {
            return None;
        }
        Some(Self {
            transport: transport.trim().to_ascii_uppercase(),
            sent_by: sent_by.to_owned(),
            params,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        param(&self.params, "branch")
    }
}

/// `CSeq: <number> <method>`.
pub(crate) fn parse_cseq(value: &str) -> Option<(u32, String)> {
    let mut parts = value.split_whitespace();
    let number = parts.next()?.parse().ok()?;
    let method = parts.next()?.to_owned();
    if parts.next().is_some() {
        return None;
    }
    Some((number, method))
}

/// Builds a message as text, always with Content-Length (stream transports need it).
#[derive(Debug, Default)]
pub(crate) struct MessageBuilder {
    text: String,
}

impl MessageBuilder {
    pub fn request(method: &str, uri: &str) -> Self {
        Self {
            text: format!("{method} {uri} SIP/2.0\r\n"),
        }
    }

    pub fn response(code: u16, reason: &str) -> Self {
        Self {
            text: format!("SIP/2.0 {code} {reason}\r\n"),
        }
    }

    pub fn header(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        let _ = write!(self.text, "{name}: {value}\r\n");
        self
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.text.push_str("Content-Length: 0\r\n\r\n");
        self.text.into_bytes()
    }
}

/// The message text for a support trace: credentials in Authorization and Proxy-Authorization
/// replaced by `<redacted>` (the response hash can be attacked offline; nothing else is secret).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut redacting = false;
    for line in text.split_inclusive('\n') {
        let is_continuation = line.starts_with(' ') || line.starts_with('\t');
        if redacting && is_continuation {
            continue;
        }
        redacting = false;
        if let Some((name, _)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("authorization")
                || name.eq_ignore_ascii_case("proxy-authorization")
            {
                out.push_str(name);
                out.push_str(": <redacted>");
                out.push_str(if line.ends_with("\r\n") { "\r\n" } else { "\n" });
                redacting = true;
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_method(bytes: &[u8]) -> String {
        match SipMessage::parse(bytes).unwrap() {
            SipMessage::Request(r) => r.method,
            SipMessage::Response(_) => panic!("a response"),
        }
    }

    #[test]
    fn request_to_an_ipv6_contact_parses() {
        let msg = b"OPTIONS sip:101@[::1]:5060;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1\r\nCall-ID: a\r\n\r\n";
        assert_eq!(request_method(msg), "OPTIONS");
    }

    #[test]
    fn folded_and_compact_headers_read_as_one_canonical_field() {
        let msg = b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 198.18.0.2;branch=z9hG4bK1\r\nContact: <sip:a@198.18.0.2>,\r\n <sip:b@198.18.0.3>\r\n\r\n";
        let SipMessage::Response(resp) = SipMessage::parse(msg).unwrap() else {
            panic!("a request");
        };
        assert_eq!((resp.code, resp.reason.as_str()), (200, "OK"));
        assert!(resp.headers.get("via").unwrap().starts_with("SIP/2.0/UDP"));
        assert_eq!(resp.headers.list("contact").len(), 2);
    }

    #[test]
    fn malformed_start_lines_and_headers_are_errors() {
        for bad in [
            &b""[..],
            b"\r\n\r\n",
            b"HELLO\r\n\r\n",
            b"SIP/2.0 99 Low\r\n\r\n",
            b"SIP/2.0 abc OK\r\n\r\n",
            b"INVITE sip:a@b SIP/3.0\r\n\r\n",
            b"INVITE sip:a@b SIP/2.0\r\nno colon here\r\n\r\n",
            b"INVITE sip:a@b SIP/2.0\r\n continuation first\r\n\r\n",
            b"INVITE sip:a@b SIP/2.0\r\nVia: \xff\r\n\r\n",
            b"INVITE sip:a@b SIP/2.0\r\nVia: x",
        ] {
            assert!(
                SipMessage::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn splits_kamailio_contact_lists_with_quoted_commas() {
        let value = r#""Desk, 1" <sip:101@198.18.0.2:5060>;expires=300, <sip:101@198.18.0.3:5062;transport=tcp>;expires=120;+sip.instance="<urn:uuid:a,b>""#;
        let parts = split_list(value);
        assert_eq!(parts.len(), 2);
        let first = NameAddr::parse(&parts[0]).unwrap();
        assert_eq!(first.uri, "sip:101@198.18.0.2:5060");
        assert_eq!(param(&first.params, "expires"), Some("300"));
        let second = NameAddr::parse(&parts[1]).unwrap();
        assert_eq!(second.uri, "sip:101@198.18.0.3:5062;transport=tcp");
        assert_eq!(
            param(&second.params, "+sip.instance"),
            Some("<urn:uuid:a,b>")
        );
    }

    #[test]
    fn parses_compact_headers_like_long_ones() {
        let raw = b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 198.18.0.2:5060;branch=z9hG4bKabc;rport=5060;received=198.18.0.9\r\nf: <sip:101@example.com>;tag=1\r\nt: <sip:101@example.com>;tag=2\r\ni: call-1\r\nCSeq: 2 REGISTER\r\nm: <sip:101@198.18.0.2:5060>;expires=60\r\nl: 0\r\n\r\n";
        let SipMessage::Response(resp) = SipMessage::parse(raw).unwrap() else {
            panic!("expected a response")
        };
        assert_eq!(resp.code, 200);
        assert_eq!(resp.headers.get("call-id"), Some("call-1"));
        let via = Via::parse(resp.headers.get("via").unwrap()).unwrap();
        assert_eq!(via.branch(), Some("z9hG4bKabc"));
        assert_eq!(param(&via.params, "received"), Some("198.18.0.9"));
        assert_eq!(resp.headers.list("contact").len(), 1);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for input in [
            &b""[..],
            b"\r\n",
            b"HELLO",
            b"SIP/2.0 abc\r\n\r\n",
            &[0xff, 0xfe, 0x00],
        ] {
            assert!(SipMessage::parse(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn uri_parts_compare_contact_points() {
        let a = UriParts::parse("sip:101@198.18.0.2:5060;transport=UDP").unwrap();
        let b = UriParts::parse("sip:101@198.18.0.2").unwrap();
        assert!(a.same_contact(&b));
        let c = UriParts::parse("sip:101@198.18.0.2:5060;transport=tcp").unwrap();
        assert!(!a.same_contact(&c));
        let v6 = UriParts::parse("sip:101@[2001:db8::1]:5070").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::1", Some(5070)));
        assert!(UriParts::parse("tel:+123").is_none());
        assert!(UriParts::parse("sip:101@host:notaport").is_none());
    }

    #[test]
    fn rejects_control_characters_in_the_header_section() {
        // Found by the message fuzz target: a bare CR stayed inside the Contact value.
        for bad in [
            &b"SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"a\", nonce=\"x\ry\"\r\n\r\n"[..],
            b"SIP/2.0 200 OK\r\nContact: <sip:a@b>\0;expires=60\r\n\r\n",
            b"OPTIONS sip:a@b\r SIP/2.0\r\nVia: SIP/2.0/UDP b\r\n\r\n",
            b"SIP/2.0 200 OK\r\nCall-ID: a\x1bb\r\n\r\n",
        ] {
            assert!(SipMessage::parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let tab = b"SIP/2.0 200 OK\r\nCall-ID:\ta\r\n\r\n";
        assert!(SipMessage::parse(tab).is_ok());
    }

    #[test]
    fn redacts_credentials_including_folded_lines() {
        let text = "REGISTER sip:x SIP/2.0\r\nAuthorization: Digest username=\"101\",\r\n response=\"abc\"\r\nproxy-authorization: Digest x\r\nCall-ID: 1\r\n\r\n";
        let red = redact(text);
        assert!(!red.contains("abc"));
        assert!(!red.contains("username"));
        assert!(red.contains("Authorization: <redacted>\r\n"));
        assert!(red.contains("proxy-authorization: <redacted>\r\n"));
        assert!(red.contains("Call-ID: 1"));
    }

    #[test]
    fn cseq_and_via_reject_malformed_values() {
        assert_eq!(parse_cseq("7 REGISTER"), Some((7, "REGISTER".into())));
        assert_eq!(parse_cseq("x REGISTER"), None);
        assert_eq!(parse_cseq("7"), None);
        assert!(Via::parse("SIP/2.0/UDP").is_none());
        assert!(Via::parse("HTTP/1.1/TCP host").is_none());
    }
}
