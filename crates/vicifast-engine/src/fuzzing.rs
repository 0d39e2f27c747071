//! The entry point of the `stream` fuzz target (`fuzz/` at the repository root), and of the
//! regression test that replays what it found (`tests/fuzz_regressions.rs`).
//!
//! [`stream`] cuts arbitrary bytes, arriving in arbitrary reads, into frames with the driver's
//! [`StreamFramer`], and checks it against a plain reference that searches its whole buffer again
//! for every frame (slow, but obviously right): both must yield the same frames and the same
//! error for the same reads. It also checks the framer's bound on what it holds, and hands every
//! message frame to the core's parser.

use crate::framing::{Frame, StreamFramer, MAX_BUFFERED_BYTES, READ_CHUNK_BYTES};

/// Reads of a stream: each a length byte (a read of 0 to 255 bytes; 255 means a full read of
/// [`READ_CHUNK_BYTES`] repeating the bytes given) then its bytes, to the end of `data`.
pub fn stream(data: &[u8]) {
    let mut framer = StreamFramer::default();
    let mut reference = Reference::default();
    let mut rest = data;
    while let Some((&len, after)) = rest.split_first() {
        let take = usize::from(len).min(after.len());
        let (bytes, after) = after.split_at(take);
        rest = after;
        let read: Vec<u8> = if len == u8::MAX && !bytes.is_empty() {
            bytes
                .iter()
                .copied()
                .cycle()
                .take(READ_CHUNK_BYTES)
                .collect()
        } else {
            bytes.to_vec()
        };
        framer.read_buffer().extend_from_slice(&read);
        reference.buffer.extend_from_slice(&read);
        loop {
            let got = framer.next_frame().map(|f| f.map_err(|_| ()));
            let expected = reference.next_frame();
            if got != expected {
                panic!(
                    "the framer and the reference disagree: {} against {}",
                    describe(got.as_ref()),
                    describe(expected.as_ref())
                );
            }
            match got {
                None => break,
                // The driver drops the connection on the first error.
                Some(Err(_)) => return,
                Some(Ok(Frame::Message(message))) => vicifast_core::fuzzing::message(&message),
                Some(Ok(_)) => {}
            }
        }
        assert!(
            framer.buffered() <= MAX_BUFFERED_BYTES + READ_CHUNK_BYTES,
            "the framer holds {} bytes",
            framer.buffered()
        );
    }
}

fn describe(frame: Option<&Result<Frame, ()>>) -> String {
    match frame {
        None => "more bytes needed".into(),
        Some(Ok(Frame::Message(m))) => format!("message {:?}", String::from_utf8_lossy(m)),
        Some(Ok(Frame::Ping)) => "ping".into(),
        Some(Ok(Frame::Pong)) => "pong".into(),
        Some(Err(())) => "an error".into(),
    }
}

/// Framing as RFC 3261 §18.3 and RFC 5626 §4.4.1 say, with the framer's limits, written for
/// clarity: the whole buffer is searched again for every frame.
#[derive(Default)]
struct Reference {
    buffer: Vec<u8>,
}

impl Reference {
    const MAX_HEADER_BYTES: usize = 64 * 1024;
    const MAX_BODY_BYTES: usize = 64 * 1024;

    fn next_frame(&mut self) -> Option<Result<Frame, ()>> {
        if self.buffer.starts_with(b"\r\n\r\n") {
            self.buffer.drain(..4);
            return Some(Ok(Frame::Ping));
        }
        if self.buffer.starts_with(b"\r\n") {
            if self.buffer.len() == 2 || self.buffer[2] != b'\r' {
                self.buffer.drain(..2);
                return Some(Ok(Frame::Pong));
            }
            if self.buffer.len() < 4 {
                return None;
            }
        }
        let Some(at) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            return (self.buffer.len() > Self::MAX_HEADER_BYTES).then_some(Err(()));
        };
        let header_end = at + 4;
        if header_end > Self::MAX_HEADER_BYTES {
            return Some(Err(()));
        }
        let head = String::from_utf8_lossy(&self.buffer[..header_end]).into_owned();
        let mut body_len = 0;
        for line in head.split("\r\n").skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                let name = name.trim();
                if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
                    match value.trim().parse::<usize>() {
                        Ok(n) => body_len = n,
                        Err(_) => return Some(Err(())),
                    }
                    break;
                }
            }
        }
        if body_len > Self::MAX_BODY_BYTES {
            return Some(Err(()));
        }
        let total = header_end + body_len;
        if self.buffer.len() < total {
            return None;
        }
        let message: Vec<u8> = self.buffer.drain(..total).collect();
        Some(Ok(Frame::Message(message.into())))
    }
}
