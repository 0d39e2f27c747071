//! One JSON object per line, in both directions. A line longer than [`MAX_LINE`] is refused
//! without being read to its end, so a peer cannot make the other process buffer without bound.

use crate::IpcError;
use interprocess::local_socket::tokio::Stream;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf,
    WriteHalf,
};

/// The longest line either side accepts; anything longer ends the connection.
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// The reading and the writing half of a connection to the other process.
pub fn split(stream: Stream) -> (LineReader, LineWriter) {
    let (recv, send) = tokio::io::split(stream);
    (LineReader::new(recv), LineWriter::new(send))
}

/// Reads one JSON message per line.
pub struct LineReader<R = ReadHalf<Stream>> {
    inner: BufReader<R>,
    line: Vec<u8>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner: BufReader::new(inner),
            line: Vec::new(),
        }
    }

    /// The next message; `Ok(None)` when the other side closed the connection.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, IpcError> {
        self.line.clear();
        let read = (&mut self.inner)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut self.line)
            .await
            .map_err(IpcError::Broken)?;
        if read == 0 {
            return Ok(None);
        }
        if self.line.len() > MAX_LINE {
            return Err(IpcError::BadMessage(format!(
                "longer than {MAX_LINE} bytes"
            )));
        }
        serde_json::from_slice(&self.line)
            .map(Some)
            .map_err(|e| IpcError::BadMessage(e.to_string()))
    }
}

/// Writes one JSON message per line.
pub struct LineWriter<W = WriteHalf<Stream>> {
    inner: W,
}

impl<W: AsyncWrite + Unpin> LineWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner }
    }

    pub async fn send<T: Serialize>(&mut self, message: &T) -> Result<(), IpcError> {
        let mut bytes =
            serde_json::to_vec(message).map_err(|e| IpcError::BadMessage(e.to_string()))?;
        bytes.push(b'\n');
        self.inner
            .write_all(&bytes)
            .await
            .map_err(IpcError::Broken)?;
        self.inner.flush().await.map_err(IpcError::Broken)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test: a panic is the failure report

    use super::*;
    use crate::{Call, Request};
    use tokio::io::{duplex, AsyncWriteExt};

    #[tokio::test]
    async fn messages_arrive_whole_and_in_order_then_the_end() {
        let (ours, theirs) = duplex(64);
        let mut writer = LineWriter::new(ours);
        let mut reader = LineReader::new(theirs);
        let first = Request {
            id: 1,
            call: Call::Subscribe,
        };
        let second = Request {
            id: 2,
            call: Call::GetState,
        };
        let sending = async {
            writer.send(&first).await.unwrap();
            writer.send(&second).await.unwrap();
            drop(writer);
        };
        let receiving = async {
            let a = reader.next::<Request>().await.unwrap();
            let b = reader.next::<Request>().await.unwrap();
            let end = reader.next::<Request>().await.unwrap();
            (a, b, end)
        };
        let ((), (a, b, end)) = tokio::join!(sending, receiving);
        assert_eq!(a.as_ref(), Some(&first));
        assert_eq!(b.as_ref(), Some(&second));
        assert_eq!(end, None);
    }

    #[tokio::test]
    async fn a_line_that_is_not_a_message_is_refused() {
        let (mut ours, theirs) = duplex(1024);
        let mut reader = LineReader::new(theirs);
        ours.write_all(b"{\"id\":1,\"call\":\"format_disk\"}\n")
            .await
            .unwrap();
        ours.write_all(b"hello\n").await.unwrap();
        for _ in 0..2 {
            assert!(matches!(
                reader.next::<Request>().await,
                Err(IpcError::BadMessage(_))
            ));
        }
    }

    /// The reader stops at the cap: it neither waits for the rest of the line nor keeps it.
    #[tokio::test]
    async fn an_overlong_line_is_refused_at_the_cap() {
        let (mut ours, theirs) = duplex(64 * 1024);
        let mut reader = LineReader::new(theirs);
        let sending = async {
            // No newline, and the connection stays open: only the cap can end the read.
            let chunk = vec![b'x'; 64 * 1024];
            let mut sent = 0;
            while sent <= MAX_LINE {
                if ours.write_all(&chunk).await.is_err() {
                    break;
                }
                sent += chunk.len();
            }
            ours
        };
        let (_ours, refused) = tokio::join!(sending, reader.next::<Request>());
        assert!(
            matches!(&refused, Err(IpcError::BadMessage(m)) if m.contains("longer than")),
            "{refused:?}"
        );
    }
}
