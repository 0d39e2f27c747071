//! Cutting a byte stream (TCP, TLS) into SIP messages and RFC 5626 keep-alives, and telling
//! keep-alives from messages in UDP datagrams.
//!
//! Written by hand because no maintained crate frames SIP over streams: rsip parses one complete
//! message but cannot say where it ends. RFC 3261 §18.3: on a stream, Content-Length is what
//! delimits the body. RFC 5626 §4.4.1: a CRLFCRLF "ping" between messages is answered with a
//! CRLF "pong".

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

/// Headers longer than this are not SIP from a sane peer.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The largest body we accept (registrar answers carry at most a few hundred bytes).
const MAX_BODY_BYTES: usize = 64 * 1024;
/// The most a flow holds of a message not yet complete: the largest message we accept. The
/// reader adds at most one read's worth on top, then frames what it holds before reading again.
pub(crate) const MAX_BUFFERED_BYTES: usize = MAX_HEADER_BYTES + MAX_BODY_BYTES;
/// How much one read may add to the buffer.
pub(crate) const READ_CHUNK_BYTES: usize = 16 * 1024;

/// One unit cut from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A complete SIP message, headers and body.
    Message(Bytes),
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

/// Accumulates stream bytes and yields frames, in time linear in the bytes received: a frame
/// is cut off the front without moving the rest (`BytesMut::split_to`), the search for the end
/// of a message's headers resumes where it stopped, and a message's Content-Length is read once.
#[derive(Debug, Default)]
pub(crate) struct StreamFramer {
    buffer: BytesMut,
    /// `buffer[..scanned]` holds no CRLFCRLF (the headers' end), except in its last 3 bytes.
    scanned: usize,
    /// The length of the message at the front, once its headers are complete.
    message_len: Option<usize>,
}

impl StreamFramer {
    #[cfg(test)]
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The buffer to read into, with room for one more read. Call [`StreamFramer::next_frame`]
    /// until it returns `None` after every read, so the buffer never holds more than
    /// [`MAX_BUFFERED_BYTES`] plus one read.
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        self.buffer.reserve(READ_CHUNK_BYTES);
        &mut self.buffer
    }

    /// Bytes held that are not yet a frame.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next complete frame, `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Frame, FramingError>> {
        if self.message_len.is_none() {
            if let Some(keepalive) = self.keepalive() {
                return keepalive;
            }
        }
        let total = match self.message_len {
            Some(total) => total,
            None => match self.measure()? {
                Ok(total) => total,
                Err(err) => return Some(Err(err)),
            },
        };
        if self.buffer.len() < total {
            self.message_len = Some(total);
            return None;
        }
        self.message_len = None;
        self.scanned = 0;
        Some(Ok(Frame::Message(self.buffer.split_to(total).freeze())))
    }

    /// A ping or pong at the front; `Some(None)` when it cannot be told yet.
    fn keepalive(&mut self) -> Option<Option<Result<Frame, FramingError>>> {
        if self.buffer.starts_with(b"\r\n\r\n") {
            self.buffer.advance(4);
            self.scanned = 0;
            return Some(Some(Ok(Frame::Ping)));
        }
        if self.buffer.starts_with(b"\r\n") {
            // A CRLF that is not followed by a second one is a pong. If the second CRLF of a
            // ping has not arrived yet we would misread a server's ping as a pong; clients
            // rarely get pinged, and a pong arriving unasked is harmless.
            if self.buffer.len() == 2 || !self.buffer[2..].starts_with(b"\r") {
                self.buffer.advance(2);
                self.scanned = 0;
                return Some(Some(Ok(Frame::Pong)));
            }
            if self.buffer.len() < 4 {
                return Some(None);
            }
        }
        None
    }

    /// The length of the message at the front, once its headers are all there.
    fn measure(&mut self) -> Option<Result<usize, FramingError>> {
        let from = self.scanned.saturating_sub(3);
        let header_end = match find(&self.buffer[from..], b"\r\n\r\n") {
            Some(at) => from + at + 4,
            None => {
                self.scanned = self.buffer.len();
                if self.buffer.len() > MAX_HEADER_BYTES {
                    return Some(Err(FramingError::HeadersTooLong));
                }
                return None;
            }
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
        Some(Ok(header_end + body_len))
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

/// Remote text in a framing error, made safe to log and cut short.
fn quoted(value: &str) -> String {
    vicifast_core::drop_log::escape(&value.chars().take(20).collect::<String>())
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
                .map_err(|_| FramingError::BadContentLength(quoted(value)));
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
                vec![Ok(Frame::Message(Bytes::from_static(OPTIONS)))],
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
        assert_eq!(
            frames(&[msg]),
            vec![Ok(Frame::Message(Bytes::copy_from_slice(msg)))]
        );
    }

    #[test]
    fn missing_content_length_means_no_body() {
        let msg = b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n";
        assert_eq!(
            frames(&[msg]),
            vec![Ok(Frame::Message(Bytes::copy_from_slice(msg)))]
        );
    }

    #[test]
    fn ping_and_pong_between_messages() {
        let stream = [b"\r\n".as_slice(), OPTIONS, b"\r\n\r\n", OPTIONS].concat();
        let got = frames(&[&stream]);
        assert_eq!(
            got,
            vec![
                Ok(Frame::Pong),
                Ok(Frame::Message(Bytes::from_static(OPTIONS))),
                Ok(Frame::Ping),
                Ok(Frame::Message(Bytes::from_static(OPTIONS))),
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
    fn a_ping_flood_is_cut_without_moving_the_rest() {
        let mut flood = b"\r\n\r\n".repeat(10_000);
        flood.extend_from_slice(OPTIONS);
        let got = frames(&[&flood]);
        assert_eq!(got.len(), 10_001);
        assert!(got[..10_000].iter().all(|f| *f == Ok(Frame::Ping)));
        assert_eq!(got[10_000], Ok(Frame::Message(Bytes::from_static(OPTIONS))));
    }

    #[test]
    fn headers_trickling_in_byte_by_byte_come_out_whole() {
        let mut long = b"SIP/2.0 200 OK\r\n".to_vec();
        long.extend(b"X: ".iter().chain(&[b'a'; 30_000]));
        long.extend_from_slice(b"\r\nContent-Length: 2\r\n\r\nok");
        let chunks: Vec<&[u8]> = long.chunks(1).collect();
        assert_eq!(
            frames(&chunks),
            vec![Ok(Frame::Message(Bytes::from(long.clone())))]
        );
    }

    #[test]
    fn what_is_held_never_exceeds_the_largest_message() {
        let mut framer = StreamFramer::default();
        let headers = b"SIP/2.0 200 OK\r\nContent-Length: 65536\r\n\r\n";
        framer.push(headers);
        for _ in 0..10 {
            framer.push(&[b'x'; READ_CHUNK_BYTES]);
            match framer.next_frame() {
                None => assert!(framer.buffered() <= MAX_BUFFERED_BYTES),
                Some(frame) => {
                    let Ok(Frame::Message(m)) = frame else {
                        panic!("{frame:?}")
                    };
                    assert_eq!(m.len(), headers.len() + 65_536);
                    return;
                }
            }
        }
        panic!("the message never completed");
    }

    #[test]
    fn remote_bytes_in_errors_are_escaped() {
        let got = frames(&[b"SIP/2.0 200 OK\r\nContent-Length: \x1b[2J\x00\r\n\r\n"]);
        let Some(Err(err)) = got.into_iter().next() else {
            panic!()
        };
        assert!(!err.to_string().chars().any(|c| c.is_control()), "{err}");
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
