//! The WebSocket transport of one connection, on actix-http's frame codec:
//! [`accept`] takes the upgraded socket and returns the client's messages
//! as a stream and the outgoing side as a bounded queue, which a writer
//! task drains into the socket. It moves frames and nothing else: fragments are reassembled and
//! text checked for UTF-8 here, so the session receives whole messages and
//! never touches bytes; a breach of the framing rules arrives as the
//! [`Close`] that answers it.
//!
//! The session actor never waits on the socket: it queues and moves on;
//! each time the socket can take more, everything queued is encoded into
//! one buffer, so a busy connection costs one write for many frames. A
//! client that stops reading fills its own queue, not the server's memory;
//! overflow is reported to the caller, which closes it 4002.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use actix_codec::{Decoder, Encoder};
use actix_http::ws::{CloseCode, CloseReason, Codec, Frame, Item, Message, ProtocolError};
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_core::Stream;
use hearth_actors::protocol::Close;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::socket::Socket;
use crate::state::{OutboundLimits, QueuedTotal};

/// The queue is full: the client is not reading fast enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// How much one write gathers before handing it to the socket.
const WRITE_CHUNK: usize = 64 * 1024;

/// A read buffer larger than this is given back once it is empty.
const IDLE_READ_CAPACITY: usize = 16 * 1024;

/// While every queue together is over the server's total, a connection
/// whose queue holds this much is closed when given more: those holding
/// the most go first, and a client that keeps up is never touched.
const PRESSURE_SHARE: usize = 64 * 1024;

enum Outgoing {
    Text(ByteString),
    Ping,
    Pong(Bytes),
    Close(Option<CloseReason>),
}

impl Outgoing {
    /// What the item counts against the queue's byte limit.
    fn payload_len(&self) -> usize {
        match self {
            Outgoing::Text(text) => text.len(),
            Outgoing::Pong(payload) => payload.len(),
            Outgoing::Ping | Outgoing::Close(_) => 0,
        }
    }
}

struct Queue {
    items: VecDeque<Outgoing>,
    /// When each item of `items` was queued, in the same order: the oldest
    /// tells how long the client has not been reading.
    queued_at: VecDeque<Instant>,
    bytes: usize,
    /// A close is queued: nothing may follow it.
    closing: bool,
    /// Nothing more will be read from the client: it sent its close, its
    /// stream ended, or the lingering read after our close has finished.
    /// Until then, the socket stays open after our close frame is written.
    reading_done: bool,
    /// The writer, waiting for something to write (or, after the close,
    /// for the reading to be done).
    writer: Option<Waker>,
    /// When our close frame reached the socket: the lingering read ends
    /// `close_linger` after it.
    close_sent_at: Option<Instant>,
    /// The lingering read, waiting for the client or for our close to go.
    reader: Option<Waker>,
    /// The server-wide count `bytes` is part of.
    total: Arc<QueuedTotal>,
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.total.bytes.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl Queue {
    fn new(total: Arc<QueuedTotal>) -> Self {
        Queue {
            items: VecDeque::new(),
            queued_at: VecDeque::new(),
            bytes: 0,
            closing: false,
            reading_done: false,
            writer: None,
            close_sent_at: None,
            reader: None,
            total,
        }
    }

    fn push(&mut self, item: Outgoing) {
        self.items.push_back(item);
        self.queued_at.push_back(Instant::now());
        self.wake_writer();
    }

    fn pop(&mut self) -> Option<Outgoing> {
        self.queued_at.pop_front();
        let item = self.items.pop_front()?;
        self.count_out(item.payload_len());
        Some(item)
    }

    fn clear(&mut self) {
        self.items.clear();
        self.queued_at.clear();
        self.count_out(self.bytes);
    }

    fn count_in(&mut self, bytes: usize) {
        self.bytes += bytes;
        self.total.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn count_out(&mut self, bytes: usize) {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        self.total.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Whether taking `more` bytes would put this queue past a limit: its
    /// own, the age of its oldest frame, or (when every queue together is
    /// over the server's total) holding more than its share.
    fn refuses(&self, limits: &OutboundLimits, more: usize) -> bool {
        let over_total = self.total.bytes.load(Ordering::Relaxed) + more > self.total.max;
        self.items.len() >= limits.max_frames
            || self.bytes + more > limits.max_bytes
            || self.stale(limits.max_age)
            || (over_total && self.bytes >= PRESSURE_SHARE)
    }

    /// The client has left a frame unread for longer than `max_age`.
    fn stale(&self, max_age: Duration) -> bool {
        self.queued_at
            .front()
            .is_some_and(|at| at.elapsed() > max_age)
    }

    fn wake_writer(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
    }

    fn close_sent(&mut self) {
        self.close_sent_at = Some(Instant::now());
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
    }

    fn finish_reading(&mut self) {
        self.reading_done = true;
        self.wake_writer();
    }
}

/// The outgoing side of one connection; cheap to clone, for the session and
/// its worker's hub, which live on the same thread.
#[derive(Clone)]
pub struct OutboundQueue {
    shared: Rc<RefCell<Queue>>,
    limits: OutboundLimits,
}

impl OutboundQueue {
    /// Queues a text frame, or reports that the queue is full.
    pub fn text(&self, text: ByteString) -> Result<(), Overflow> {
        let mut queue = self.shared.borrow_mut();
        if queue.closing {
            return Ok(());
        }
        if queue.refuses(&self.limits, text.len()) {
            return Err(Overflow);
        }
        queue.count_in(text.len());
        queue.push(Outgoing::Text(text));
        Ok(())
    }

    pub fn ping(&self) -> Result<(), Overflow> {
        self.control(Outgoing::Ping)
    }

    pub fn pong(&self, payload: Bytes) -> Result<(), Overflow> {
        self.control(Outgoing::Pong(payload))
    }

    /// Control frames count like any other: a client that pings but never
    /// reads fills its queue with pongs and is closed as a slow consumer.
    fn control(&self, item: Outgoing) -> Result<(), Overflow> {
        let mut queue = self.shared.borrow_mut();
        if queue.closing {
            return Ok(());
        }
        let bytes = item.payload_len();
        if queue.refuses(&self.limits, bytes) {
            return Err(Overflow);
        }
        queue.count_in(bytes);
        queue.push(item);
        Ok(())
    }

    /// Whether the oldest frame has waited longer than the limit allows: a
    /// client that stopped reading, even one that still pings.
    pub fn is_stale(&self) -> bool {
        let queue = self.shared.borrow();
        !queue.closing && queue.stale(self.limits.max_age)
    }

    /// Queues `close` after everything already queued, and ends the
    /// connection once it is written. With `discard_pending`, what the
    /// client has not taken yet is dropped first, so the close is not stuck
    /// behind it.
    pub fn close_with(&self, close: Close, discard_pending: bool) {
        let reason = CloseReason {
            code: CloseCode::from(close.code()),
            description: Some(close.reason().to_string()),
        };
        self.close(Some(reason), discard_pending);
    }

    /// Queues a close frame (`None`: one without a code, or the client's
    /// own echoed back) after everything already queued.
    pub fn close(&self, reason: Option<CloseReason>, discard_pending: bool) {
        let mut queue = self.shared.borrow_mut();
        if queue.closing {
            return;
        }
        if discard_pending {
            queue.clear();
        }
        queue.closing = true;
        queue.push(Outgoing::Close(reason));
    }

    /// Frames queued and not yet handed to the socket.
    pub fn backlog(&self) -> usize {
        self.shared.borrow().items.len()
    }
}

/// Starts the transport on an upgraded socket: the client's messages (none
/// larger than `max_message_bytes`, fragments included), and the outgoing
/// queue, which a writer task on this thread drains. `read` holds what the
/// client sent right after its upgrade request.
pub fn accept(
    socket: Rc<Socket>,
    read: BytesMut,
    max_message_bytes: usize,
    limits: OutboundLimits,
) -> (Inbound, OutboundQueue) {
    let close_linger = limits.close_linger;
    let queue = OutboundQueue {
        shared: Rc::new(RefCell::new(Queue::new(limits.total.clone()))),
        limits,
    };
    let body = OutboundBody {
        queue: queue.shared.clone(),
        codec: Codec::new(),
        close_written: false,
        finished: false,
    };
    let inbound = Inbound {
        socket: Some(socket.clone()),
        buf: read,
        codec: Codec::new().max_size(max_message_bytes),
        max_message_bytes,
        partial: None,
        ended: false,
        queue: queue.shared.clone(),
        close_linger,
    };
    actix_rt::spawn(write_out(socket, body, queue.limits.max_age));
    (inbound, queue)
}

/// Drains the queue into the socket. After our close frame it half-closes
/// and waits until reading is done, so the socket is never dropped with
/// the client's data unread. A close that cannot be written within
/// `max_age` (a client that stopped reading for good) gives up on it.
async fn write_out(socket: Rc<Socket>, mut body: OutboundBody, max_age: Duration) {
    let mut deadline: Option<Pin<Box<actix_rt::time::Sleep>>> = None;
    'writing: while let Some(chunk) =
        std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await
    {
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            let written = std::future::poll_fn(|cx| {
                let mut queue = body.queue.borrow_mut();
                if deadline.is_none() && queue.closing {
                    deadline = Some(Box::pin(actix_rt::time::sleep(max_age)));
                }
                if let Some(deadline) = deadline.as_mut() {
                    if deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(std::io::ErrorKind::TimedOut.into()));
                    }
                }
                // A close queued while the client is not reading wakes this
                // wait, which then starts the deadline.
                queue.writer = Some(cx.waker().clone());
                drop(queue);
                socket.poll_write_ready(cx)
            })
            .await
            .and_then(|()| socket.try_write(rest));
            match written {
                Ok(count) => rest = &rest[count..],
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(err) => {
                    log::debug!("ws_write_ended error={err}");
                    // The reading side sees the end at once and stops the
                    // session, or the lingering read, if it has not already.
                    socket.shut_down();
                    break 'writing;
                }
            }
        }
        if body.close_written && body.queue.borrow().close_sent_at.is_none() {
            socket.half_close();
            body.queue.borrow_mut().close_sent();
        }
    }
    body.queue.borrow_mut().clear();
}

/// What the writer takes from the queue: everything queued, encoded into
/// one buffer each time the socket can take more. After the close frame it
/// ends only once reading is done.
struct OutboundBody {
    queue: Rc<RefCell<Queue>>,
    codec: Codec,
    close_written: bool,
    finished: bool,
}

impl Stream for OutboundBody {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        let mut queue = this.queue.borrow_mut();
        if this.close_written {
            if queue.reading_done {
                this.finished = true;
                return Poll::Ready(None);
            }
            queue.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if queue.items.is_empty() {
            queue.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut out = BytesMut::new();
        while out.len() < WRITE_CHUNK {
            let Some(item) = queue.pop() else {
                break;
            };
            let message = match item {
                Outgoing::Text(text) => Message::Text(text),
                Outgoing::Ping => Message::Ping(Bytes::new()),
                Outgoing::Pong(payload) => Message::Pong(payload),
                Outgoing::Close(reason) => {
                    this.close_written = true;
                    Message::Close(reason)
                }
            };
            if let Err(err) = this.codec.encode(message, &mut out) {
                // Only an oversized control frame fails, and ours are small.
                log::error!("ws_encode_failed error={err}");
            }
            if this.close_written {
                queue.clear();
                break;
            }
        }
        Poll::Ready(Some(out.freeze()))
    }
}

/// One whole message from the client, or a sign of life.
#[derive(Debug)]
pub enum Incoming {
    Text(ByteString),
    /// Binary messages are refused, so their bytes are not kept.
    Binary,
    Ping(Bytes),
    Pong,
    /// A fragment of a message arrived; the message is not whole yet.
    Fragment,
    Close(Option<CloseReason>),
}

/// Why the client's side of the connection cannot go on.
#[derive(Debug)]
pub enum InboundError {
    /// The client broke the framing rules; the server closes with this.
    Refused { close: Close, detail: String },
    /// The socket failed or the peer left without a close frame.
    Lost(String),
}

impl InboundError {
    fn refused(close: Close) -> Self {
        InboundError::Refused {
            close,
            detail: close.reason().to_string(),
        }
    }
}

/// A fragmented message being reassembled.
struct Partial {
    is_text: bool,
    bytes: BytesMut,
}

/// The client's messages, decoded from what the socket reads and
/// reassembled from their fragments.
pub struct Inbound {
    /// Taken by the lingering read when the session drops this stream
    /// after a close of the server's.
    socket: Option<Rc<Socket>>,
    buf: BytesMut,
    codec: Codec,
    max_message_bytes: usize,
    partial: Option<Partial>,
    ended: bool,
    queue: Rc<RefCell<Queue>>,
    close_linger: std::time::Duration,
}

impl Inbound {
    /// Reassembles fragments; a frame that completes nothing yields
    /// [`Incoming::Fragment`].
    fn message_of(&mut self, frame: Frame) -> Result<Incoming, InboundError> {
        let (first, is_text, bytes, last) = match frame {
            Frame::Text(bytes) if self.partial.is_none() => return text_of(bytes),
            Frame::Text(_) => return Err(InboundError::refused(Close::NewMessageInsideFragmented)),
            Frame::Binary(_) => return Ok(Incoming::Binary),
            Frame::Ping(bytes) => return Ok(Incoming::Ping(bytes)),
            Frame::Pong(_) => return Ok(Incoming::Pong),
            Frame::Close(reason) => return Ok(Incoming::Close(reason)),
            Frame::Continuation(Item::FirstText(bytes)) => (true, true, bytes, false),
            Frame::Continuation(Item::FirstBinary(bytes)) => (true, false, bytes, false),
            Frame::Continuation(Item::Continue(bytes)) => (false, false, bytes, false),
            Frame::Continuation(Item::Last(bytes)) => (false, false, bytes, true),
        };
        if first && self.partial.is_some() {
            return Err(InboundError::refused(Close::NewMessageInsideFragmented));
        }
        if first {
            self.partial = Some(Partial {
                is_text,
                bytes: BytesMut::with_capacity(bytes.len() * 2),
            });
        }
        let Some(partial) = self.partial.as_mut() else {
            return Err(InboundError::refused(Close::ContinuationWithoutStart));
        };
        if partial.bytes.len() + bytes.len() > self.max_message_bytes {
            return Err(InboundError::refused(Close::MessageTooBig));
        }
        partial.bytes.extend_from_slice(&bytes);
        if !last {
            return Ok(Incoming::Fragment);
        }
        match self.partial.take() {
            Some(whole) if whole.is_text => text_of(whole.bytes.freeze()),
            _ => Ok(Incoming::Binary),
        }
    }
}

fn text_of(bytes: Bytes) -> Result<Incoming, InboundError> {
    ByteString::try_from(bytes)
        .map(Incoming::Text)
        .map_err(|_| InboundError::refused(Close::InvalidUtf8))
}

/// What the next frame's header announces, read before its payload.
#[derive(Debug, PartialEq, Eq)]
struct Announced {
    reserved_bits: bool,
    control: bool,
    /// Continues a fragmented message.
    continuation: bool,
    length: u64,
}

/// Reads the header at the front of `buf` (RFC 6455 section 5.2), once
/// enough of it has arrived. By hand, because actix-http's codec checks a
/// frame's length only once the whole payload is buffered: a header that
/// announces gigabytes must be refused as it arrives, not after.
fn announced(buf: &[u8]) -> Option<Announced> {
    let (&first, &second) = (buf.first()?, buf.get(1)?);
    let opcode = first & 0x0F;
    let length = match second & 0x7F {
        126 => u64::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            u64::from_be_bytes(bytes)
        }
        short => u64::from(short),
    };
    Some(Announced {
        reserved_bits: first & 0x70 != 0,
        control: opcode & 0x08 != 0,
        continuation: opcode == 0,
        length,
    })
}

impl Inbound {
    /// Refuses the next frame on its header alone: reserved bits no
    /// extension was agreed for (1002), or a data frame whose payload would
    /// take the message past the limit (1009).
    fn check_header(&self) -> Result<(), InboundError> {
        let Some(header) = announced(&self.buf) else {
            return Ok(());
        };
        if header.reserved_bits {
            return Err(InboundError::Refused {
                close: Close::ProtocolError,
                detail: "a frame with reserved bits set".into(),
            });
        }
        if header.control {
            // The codec refuses control frames over 125 bytes itself.
            return Ok(());
        }
        let so_far = match (&self.partial, header.continuation) {
            (Some(partial), true) => partial.bytes.len() as u64,
            _ => 0,
        };
        if so_far.saturating_add(header.length) > self.max_message_bytes as u64 {
            return Err(InboundError::refused(Close::MessageTooBig));
        }
        Ok(())
    }
}

impl Stream for Inbound {
    type Item = Result<Incoming, InboundError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Err(refused) = this.check_header() {
                return Poll::Ready(Some(Err(refused)));
            }
            match this.codec.decode(&mut this.buf) {
                Ok(Some(Frame::Close(reason))) => {
                    // The client said its last word: our close (its echo)
                    // may end the connection as soon as it is written.
                    this.queue.borrow_mut().finish_reading();
                    return Poll::Ready(Some(Ok(Incoming::Close(reason))));
                }
                Ok(Some(frame)) => return Poll::Ready(Some(this.message_of(frame))),
                Ok(None) if this.ended => {
                    this.queue.borrow_mut().finish_reading();
                    return Poll::Ready(None);
                }
                Ok(None) => {}
                Err(ProtocolError::Overflow) => {
                    return Poll::Ready(Some(Err(InboundError::refused(Close::MessageTooBig))))
                }
                Err(ProtocolError::Io(err)) if err.kind() != std::io::ErrorKind::InvalidData => {
                    return Poll::Ready(Some(Err(InboundError::Lost(err.to_string()))))
                }
                Err(err) => {
                    return Poll::Ready(Some(Err(InboundError::Refused {
                        close: Close::ProtocolError,
                        detail: err.to_string(),
                    })))
                }
            }
            let Some(socket) = this.socket.as_ref() else {
                return Poll::Ready(None);
            };
            if this.buf.is_empty() && this.buf.capacity() > IDLE_READ_CAPACITY {
                // A burst is over: an idle connection gives its buffer back.
                this.buf = BytesMut::new();
            }
            match socket.poll_read_into(cx, &mut this.buf) {
                Poll::Ready(Ok(0)) => this.ended = true,
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(err)) => {
                    this.ended = true;
                    this.queue.borrow_mut().finish_reading();
                    return Poll::Ready(Some(Err(InboundError::Lost(err.to_string()))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for Inbound {
    /// The session is gone. If the server closed the connection and the
    /// client has not answered yet, what it still sends is read and thrown
    /// away until its close, its end of stream or the linger time: closing
    /// a socket with unread data makes the kernel reset it, and a reset
    /// destroys the frames (our close among them) the client has not read.
    fn drop(&mut self) {
        let mut queue = self.queue.borrow_mut();
        let socket = self.socket.take();
        match socket {
            Some(socket) if queue.closing && !queue.reading_done && !self.ended => {
                drop(queue);
                let linger = Linger {
                    socket,
                    buf: std::mem::take(&mut self.buf),
                    codec: Codec::new().max_size(self.max_message_bytes),
                    queue: self.queue.clone(),
                };
                // Outside a running system (the process is stopping) there is
                // nothing to linger for: the socket goes with it.
                if actix_rt::System::try_current().is_some() {
                    actix_rt::spawn(linger.run(self.close_linger));
                } else {
                    self.queue.borrow_mut().finish_reading();
                }
            }
            _ => queue.finish_reading(),
        }
    }
}

/// The reading that goes on after the server's close, discarding.
struct Linger {
    socket: Rc<Socket>,
    buf: BytesMut,
    codec: Codec,
    queue: Rc<RefCell<Queue>>,
}

impl Linger {
    /// Reads until the client's close frame or end of stream, or until
    /// `limit` after our close frame was written (however long writing it
    /// takes: until then the client may be blocked sending to us).
    async fn run(mut self, limit: std::time::Duration) {
        let mut deadline: Option<Pin<Box<actix_rt::time::Sleep>>> = None;
        'reading: loop {
            loop {
                match self.codec.decode(&mut self.buf) {
                    Ok(Some(Frame::Close(_))) | Err(_) => break 'reading,
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                }
            }
            // What is left undecodable (an oversized frame) is dropped as
            // it comes; only the client's close matters now.
            if self.buf.len() > 1 << 20 {
                self.buf.clear();
            }
            let socket = self.socket.clone();
            let queue = self.queue.clone();
            let buf = &mut self.buf;
            let read = std::future::poll_fn(|cx| {
                let mut queue = queue.borrow_mut();
                if let (None, Some(sent)) = (deadline.as_ref(), queue.close_sent_at) {
                    let until = actix_rt::time::Instant::from_std(sent + limit);
                    deadline = Some(Box::pin(actix_rt::time::sleep_until(until)));
                }
                if let Some(deadline) = deadline.as_mut() {
                    if deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Ok(0));
                    }
                }
                queue.reader = Some(cx.waker().clone());
                drop(queue);
                socket.poll_read_into(cx, buf)
            })
            .await;
            match read {
                Ok(read) if read > 0 => {}
                Ok(_) | Err(_) => break,
            }
        }
        self.queue.borrow_mut().finish_reading();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_before_their_payload() {
        assert_eq!(announced(&[0x81]), None);
        let short = announced(&[0x81, 0x85]).unwrap();
        assert_eq!(
            (short.length, short.control, short.reserved_bits),
            (5, false, false)
        );
        assert_eq!(
            announced(&[0x82, 0xFE, 0x01]),
            None,
            "16-bit length not here yet"
        );
        assert_eq!(announced(&[0x82, 0xFE, 0x01, 0x00]).unwrap().length, 256);
        let huge = [0x81, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(announced(&huge).unwrap().length, 1 << 32);
        assert!(announced(&[0xC1, 0x80]).unwrap().reserved_bits);
        assert!(announced(&[0x89, 0x80]).unwrap().control);
        assert!(announced(&[0x00, 0x80]).unwrap().continuation);
    }
}
