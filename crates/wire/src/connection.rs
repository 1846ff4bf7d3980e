//! Buffered frame I/O over any async byte stream.
//!
//! Reading and writing are split because both ends of a link read and write
//! at once: the reader is owned by one receive loop, while many tasks send
//! through an [`Outbox`]. The outbox's writer task always drains control
//! messages before bulk ones, and the bulk queue is bounded, so a large
//! transfer applies back-pressure to its producer while heartbeats and kills
//! still get through.

use bytes::{Buf, BytesMut};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::frame::{self, Parsed};
use crate::{Message, WireError};

/// Reads whole messages from a byte stream.
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        Self::with_prefix(inner, &[])
    }

    /// Starts with bytes already read from the stream (for example while
    /// looking for the agent's start marker).
    pub fn with_prefix(inner: R, prefix: &[u8]) -> Self {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        buf.extend_from_slice(prefix);
        FrameReader { inner, buf }
    }

    /// The next message; `Ok(None)` on a clean EOF between frames.
    pub async fn read_message(&mut self) -> Result<Option<Message>, WireError> {
        self.read_as().await
    }

    /// The next frame decoded as `T` (another protocol on the same
    /// framing, like the executor's); `Ok(None)` on a clean EOF.
    pub async fn read_as<T: DeserializeOwned>(&mut self) -> Result<Option<T>, WireError> {
        loop {
            if let Some(msg) = self.parse_one()? {
                return Ok(Some(msg));
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() { Ok(None) } else { Err(WireError::Closed("in the middle of a frame")) };
            }
        }
    }

    /// The next frame if a whole one is already buffered; never reads.
    pub fn try_read_as<T: DeserializeOwned>(&mut self) -> Result<Option<T>, WireError> {
        self.parse_one()
    }

    fn parse_one<T: DeserializeOwned>(&mut self) -> Result<Option<T>, WireError> {
        let (msg, used) = match frame::parse(&self.buf)? {
            Parsed::Incomplete => return Ok(None),
            Parsed::Frame { payload, used } => (postcard::from_bytes(payload)?, used),
        };
        self.buf.advance(used);
        Ok(Some(msg))
    }
}

/// Sends messages to the writer task of one link. Cheap to clone.
///
/// Every message is encoded here, by its sender, before it is queued: a
/// message too large for a frame fails its sender with
/// [`WireError::Unsendable`], and the writer (and with it the link and
/// every other message on it) never sees it.
#[derive(Clone)]
pub struct Outbox {
    control: mpsc::UnboundedSender<Vec<u8>>,
    bulk: mpsc::Sender<Vec<u8>>,
    close: std::sync::Arc<tokio::sync::Notify>,
}

/// How many bulk messages (about 1 MiB each) may wait in memory.
const BULK_QUEUE: usize = 4;

fn closed() -> WireError {
    WireError::Closed("while sending")
}

impl Outbox {
    /// Queues a message; bulk messages wait when the queue is full.
    pub async fn send(&self, msg: Message) -> Result<(), WireError> {
        let frame = msg.to_frame()?;
        if msg.is_bulk() {
            self.bulk.send(frame).await.map_err(|_| closed())
        } else {
            self.control.send(frame).map_err(|_| closed())
        }
    }

    /// Ends the link: the writer flushes what is queued for control, then
    /// shuts the stream down so that the peer sees a clean EOF, even while
    /// clones of this outbox are still alive.
    pub fn close(&self) {
        self.close.notify_one();
    }

    /// Queues a message behind the bulk messages already queued, waiting
    /// when that queue is full: for a message that must not overtake
    /// them (a task's report after its log).
    pub async fn send_after_bulk(&self, msg: Message) -> Result<(), WireError> {
        let frame = msg.to_frame()?;
        self.bulk.send(frame).await.map_err(|_| closed())
    }

    /// Queues a control message without waiting. Bulk messages are refused.
    pub fn send_now(&self, msg: Message) -> Result<(), WireError> {
        debug_assert!(!msg.is_bulk());
        self.control.send(msg.to_frame()?).map_err(|_| closed())
    }
}

/// Starts the writer task for `w`. The task ends when every [`Outbox`] is
/// dropped (after flushing) or when a write fails.
pub fn spawn_writer<W>(w: W) -> (Outbox, JoinHandle<Result<(), WireError>>)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (bulk_tx, bulk_rx) = mpsc::channel(BULK_QUEUE);
    let close = std::sync::Arc::new(tokio::sync::Notify::new());
    let handle = tokio::spawn(write_loop(w, control_rx, bulk_rx, close.clone()));
    let outbox = Outbox { control: control_tx, bulk: bulk_tx, close };
    (outbox, handle)
}

/// Writes encoded frames, control ones first. Only a failed write ends it:
/// nothing it is given can fail to encode.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut w: W,
    mut control: mpsc::UnboundedReceiver<Vec<u8>>,
    mut bulk: mpsc::Receiver<Vec<u8>>,
    close: std::sync::Arc<tokio::sync::Notify>,
) -> Result<(), WireError> {
    let mut out = Vec::with_capacity(frame::CHUNK + 64);
    let (mut control_open, mut bulk_open) = (true, true);
    while control_open || bulk_open {
        let next = tokio::select! {
            biased;
            m = control.recv(), if control_open => m.ok_or(&mut control_open),
            m = bulk.recv(), if bulk_open => m.ok_or(&mut bulk_open),
            _ = close.notified() => break,
        };
        let first = match next {
            Ok(f) => f,
            Err(open) => {
                *open = false;
                continue;
            }
        };
        // Control frames queued meanwhile share the write: at thousands
        // of small task messages a second, one write per message is what
        // the link would spend its time on.
        out.clear();
        out.extend_from_slice(&first);
        while out.len() < frame::CHUNK {
            match control.try_recv() {
                Ok(f) => out.extend_from_slice(&f),
                Err(_) => break,
            }
        }
        w.write_all(&out).await?;
        if control.is_empty() && bulk.is_empty() {
            w.flush().await?;
        }
    }
    w.flush().await?;
    w.shutdown().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_cross_a_pipe_and_eof_is_clean() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (outbox, writer) = spawn_writer(a);
        outbox.send(Message::Heartbeat).await.unwrap();
        outbox.send(Message::Exec { id: 1, command: "true".into() }).await.unwrap();
        drop(outbox);
        writer.await.unwrap().unwrap();
        let mut r = FrameReader::new(b);
        assert_eq!(r.read_message().await.unwrap(), Some(Message::Heartbeat));
        assert!(matches!(r.read_message().await.unwrap(), Some(Message::Exec { id: 1, .. })));
        assert_eq!(r.read_message().await.unwrap(), None);
    }

    #[tokio::test]
    async fn eof_inside_a_frame_is_an_error() {
        let mut buf = Vec::new();
        Message::Heartbeat.encode_frame(&mut buf).unwrap();
        buf.pop();
        let mut r = FrameReader::new(&buf[..]);
        let err = r.read_message().await.unwrap_err();
        assert_eq!(err.to_string(), "the connection closed in the middle of a frame");
    }

    #[tokio::test]
    async fn an_oversized_message_fails_its_sender_and_the_link_goes_on() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (outbox, writer) = spawn_writer(a);
        let big = Message::ExecDone {
            id: 9,
            status: crate::ExitStatus::Code(0),
            stdout: vec![b'x'; frame::MAX_FRAME],
            stderr: vec![],
            stdout_cut: 0,
            stderr_cut: 0,
        };
        let err = outbox.send_now(big.clone()).unwrap_err();
        assert_eq!(err.to_string(), "the ExecDone message is 4194315 bytes, over the link's limit of 4194304 bytes");
        assert!(matches!(outbox.send(big.clone()).await, Err(WireError::Unsendable { what: "ExecDone", .. })));
        assert!(matches!(outbox.send_after_bulk(big).await, Err(WireError::Unsendable { .. })));
        outbox.send_now(Message::Heartbeat).unwrap();
        drop(outbox);
        writer.await.unwrap().unwrap();
        let mut r = FrameReader::new(b);
        assert_eq!(r.read_message().await.unwrap(), Some(Message::Heartbeat));
        assert_eq!(r.read_message().await.unwrap(), None);
    }

    #[test]
    fn a_message_of_exactly_the_limit_is_sent() {
        // The largest payload that fits: a Chunk's data plus its fields.
        let overhead = Message::Chunk { stream: 1, hash: [0; 32], data: vec![], last: true }.to_frame().unwrap().len() - 4 - 1;
        let data = vec![7u8; frame::MAX_FRAME - overhead - 4];
        let frame = Message::Chunk { stream: 1, hash: [0; 32], data, last: true }.to_frame().unwrap();
        assert_eq!(frame.len(), frame::MAX_FRAME + 4);
    }

    #[tokio::test]
    async fn garbage_is_invalid_not_a_hang() {
        let mut r = FrameReader::new(&b"Welcome to my server!\n"[..]);
        assert!(matches!(r.read_message().await, Err(WireError::Frame(_)) | Err(WireError::Decode(_)) | Err(WireError::Closed(_))));
    }
}
