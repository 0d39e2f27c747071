//! Cutting a byte stream (TCP, TLS) into SIP messages and RFC 5626 keep-alives, and telling
//! keep-alives from messages in UDP datagrams.
//!
//! Written by hand because no maintained crate frames SIP over streams: rsip parses one complete
//! message but cannot say where it ends. RFC 3261 §18.3: on a stream, Content-Length is what
//! delimits the body. RFC 5626 §4.4.1: a CRLFCRLF "ping" between messages is answered with a
//! CRLF "pong".

use thiserror::Error;

/// Headers longer than this are not SIP from a sane peer.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The largest body we accept (registrar answers carry at most a few hundred bytes).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// One unit cut from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A complete SIP message, headers and body.
    Message(Vec<u8>),
    /// CRLFCRLF: the peer asks us to answer with a pong.
    Ping,
    /// A lone CRLF: the answer to our ping.
    Pong,
}

/// Why the stream cannot be framed; the connection must be dropped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum FramingError {
    #[error("message headers exceed {MAX_HEADER_BYTES} bytes")]
    HeadersTooLong,
    #[error("Content-Length `{0}` is not a number")]
    BadContentLength(String),
    #[error("body of {0} bytes exceeds {MAX_BODY_BYTES} bytes")]
    BodyTooLong(usize),
}

/// Accumulates stream bytes and yields frames.
#[derive(Debug, Default)]
pub(crate) struct StreamFramer {
    buffer: Vec<u8>,
}

impl StreamFramer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame, `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Frame, FramingError>> {
        if self.buffer.starts_with(b"\r\n\r\n") {
            self.buffer.drain(..4);
            return Some(Ok(Frame::Ping));
        }
        if self.buffer.starts_with(b"\r\n") {
            // A CRLF that is not followed by a second one is a pong. If the second CRLF of a
            // ping has not arrived yet we would misread a server's ping as a pong; clients
            // rarely get pinged, and a pong arriving unasked is harmless.
            if self.buffer.len() == 2 || !self.buffer[2..].starts_with(b"\r") {
                self.buffer.drain(..2);
                return Some(Ok(Frame::Pong));
            }
            if self.buffer.len() < 4 {
                return None;
            }
        }
        let header_end = match find(&self.buffer, b"\r\n\r\n") {
            Some(at) => at + 4,
            None if self.buffer.len() > MAX_HEADER_BYTES => {
                return Some(Err(FramingError::HeadersTooLong))
            }
            None => return None,
        };
        if header_end > MAX_HEADER_BYTES {
            return Some(Err(FramingError::HeadersTooLong));
        }
        let body_len = match content_length(&self.buffer[..header_end]) {
            Ok(n) => n.unwrap_or(0),
            Err(err) => return Some(Err(err)),
        };
        if body_len > MAX_BODY_BYTES {
            return Some(Err(FramingError::BodyTooLong(body_len)));
        }
        let total = header_end + body_len;
        if self.buffer.len() < total {
            return None;
        }
        let message: Vec<u8> = self.buffer.drain(..total).collect();
        Some(Ok(Frame::Message(message)))
    }
}

/// What a UDP datagram holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Datagram {
    Message,
    Ping,
    Pong,
    /// Whitespace only, or nothing: a NAT keep-alive to ignore.
    Empty,
}

pub(crate) fn classify_datagram(bytes: &[u8]) -> Datagram {
    match bytes {
        b"\r\n\r\n" => Datagram::Ping,
        b"\r\n" => Datagram::Pong,
        _ if bytes.iter().all(|b| b.is_ascii_whitespace() || *b == 0) => Datagram::Empty,
        _ => Datagram::Message,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The Content-Length (or compact `l`) header's value, if present.
fn content_length(headers: &[u8]) -> Result<Option<usize>, FramingError> {
    let text = String::from_utf8_lossy(headers);
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            let value = value.trim();
            return value
                .parse::<usize>()
                .map(Some)
                .map_err(|_| FramingError::BadContentLength(value.chars().take(20).collect()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:a@198.18.0.2 SIP/2.0\r\nVia: SIP/2.0/TCP 198.18.0.1\r\nContent-Length: 4\r\n\r\nbody";

    fn frames(chunks: &[&[u8]]) -> Vec<Result<Frame, FramingError>> {
        let mut framer = StreamFramer::default();
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk);
            while let Some(frame) = framer.next_frame() {
                let failed = frame.is_err();
                out.push(frame);
                // The connection is dropped on the first error; the framer is not reused.
                if failed {
                    return out;
                }
            }
        }
        out
    }

    #[test]
    fn message_split_at_every_byte_comes_out_whole() {
        for cut in 1..OPTIONS.len() {
            let got = frames(&[&OPTIONS[..cut], &OPTIONS[cut..]]);
            assert_eq!(
                got,
                vec![Ok(Frame::Message(OPTIONS.to_vec()))],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn two_messages_in_one_read() {
        let both = [OPTIONS, OPTIONS].concat();
        let got = frames(&[&both]);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn compact_content_length_and_spaces() {
        let msg = b"SIP/2.0 200 OK\r\nl :  2\r\n\r\nok";
        assert_eq!(frames(&[msg]), vec![Ok(Frame::Message(msg.to_vec()))]);
    }

    #[test]
    fn missing_content_length_means_no_body() {
        let msg = b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n";
        assert_eq!(frames(&[msg]), vec![Ok(Frame::Message(msg.to_vec()))]);
    }

    #[test]
    fn ping_and_pong_between_messages() {
        let stream = [b"\r\n".as_slice(), OPTIONS, b"\r\n\r\n", OPTIONS].concat();
        let got = frames(&[&stream]);
        assert_eq!(
            got,
            vec![
                Ok(Frame::Pong),
                Ok(Frame::Message(OPTIONS.to_vec())),
                Ok(Frame::Ping),
                Ok(Frame::Message(OPTIONS.to_vec())),
            ]
        );
    }

    #[test]
    fn bad_content_length_is_an_error() {
        let got = frames(&[b"SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n"]);
        assert_eq!(got, vec![Err(FramingError::BadContentLength("-1".into()))]);
    }

    #[test]
    fn huge_body_is_refused_before_buffering_it() {
        let got = frames(&[b"SIP/2.0 200 OK\r\nContent-Length: 99999999\r\n\r\n"]);
        assert_eq!(got, vec![Err(FramingError::BodyTooLong(99_999_999))]);
    }

    #[test]
    fn endless_headers_are_refused() {
        let junk = vec![b'a'; MAX_HEADER_BYTES + 1];
        assert_eq!(frames(&[&junk]), vec![Err(FramingError::HeadersTooLong)]);
    }

    #[test]
    fn datagrams() {
        assert_eq!(classify_datagram(b"\r\n\r\n"), Datagram::Ping);
        assert_eq!(classify_datagram(b"\r\n"), Datagram::Pong);
        assert_eq!(classify_datagram(b"\0"), Datagram::Empty);
        assert_eq!(classify_datagram(b""), Datagram::Empty);
        assert_eq!(classify_datagram(OPTIONS), Datagram::Message);
    }
}
