//! The outgoing queue of one connection: what the session and its worker's
//! hub queue, bounded in frames, bytes and age, with the server's total
//! counted too. The writer (`transport.rs`) drains it into the socket; the
//! reading side (`inbound.rs`) tells it when the client's last frame has
//! been read.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use actix_http::ws::{CloseCode, CloseReason};
use actix_web::web::Bytes;
use bytestring::ByteString;
use hearth_actors::protocol::Close;

use crate::state::{OutboundLimits, QueuedTotal};

/// The queue is full: the client is not reading fast enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// While every queue together is over the server's total, a connection
/// whose queue holds this much is closed when given more: those holding
/// the most go first, and a client that keeps up is never touched.
const PRESSURE_SHARE: usize = 64 * 1024;

pub(super) enum Outgoing {
    Text(ByteString),
    Ping,
    Pong(Bytes),
    Close(Option<CloseReason>),
}

impl Outgoing {
    /// What the item counts against the queue's byte limit.
    pub(super) fn payload_len(&self) -> usize {
        match self {
            Outgoing::Text(text) => text.len(),
            Outgoing::Pong(payload) => payload.len(),
            Outgoing::Ping | Outgoing::Close(_) => 0,
        }
    }
}

/// Room for this many frames is kept in an empty queue; a backlog's larger
/// room is given back once it drains.
const IDLE_QUEUE_CAPACITY: usize = 16;

pub(super) struct Queue {
    pub(super) items: VecDeque<Outgoing>,
    /// When each item of `items` was queued, in the same order: the oldest
    /// tells how long the client has not been reading.
    pub(super) queued_at: VecDeque<Instant>,
    pub(super) bytes: usize,
    /// A close is queued: nothing may follow it.
    pub(super) closing: bool,
    /// Nothing more will be read from the client: it sent its close, its
    /// stream ended, or the lingering read after our close has finished.
    /// Until then, the socket stays open after our close frame is written.
    pub(super) reading_done: bool,
    /// The writer, waiting for something to write (or, after the close,
    /// for the reading to be done).
    pub(super) writer: Option<Waker>,
    /// When our close frame reached the socket: the lingering read ends
    /// `close_linger` after it.
    pub(super) close_sent_at: Option<Instant>,
    /// The lingering read, waiting for the client or for our close to go.
    pub(super) reader: Option<Waker>,
    /// The server-wide count `bytes` is part of.
    pub(super) total: Arc<QueuedTotal>,
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.total.bytes.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl Queue {
    pub(super) fn new(total: Arc<QueuedTotal>) -> Self {
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

    pub(super) fn push(&mut self, item: Outgoing) {
        self.items.push_back(item);
        self.queued_at.push_back(Instant::now());
        self.wake_writer();
    }

    pub(super) fn pop(&mut self) -> Option<Outgoing> {
        self.queued_at.pop_front();
        let item = self.items.pop_front()?;
        self.count_out(item.payload_len());
        if self.items.is_empty() && self.items.capacity() > IDLE_QUEUE_CAPACITY {
            // A backlog has drained: a quiet connection keeps no room for
            // the next one.
            self.items = VecDeque::new();
            self.queued_at = VecDeque::new();
        }
        Some(item)
    }

    /// Bytes the queued frames take on the wire, headers included, at most.
    pub(super) fn wire_bytes(&self) -> usize {
        // A frame header from the server is at most 10 bytes (no mask).
        self.bytes + 10 * self.items.len()
    }

    pub(super) fn clear(&mut self) {
        self.items.clear();
        self.queued_at.clear();
        self.count_out(self.bytes);
    }

    pub(super) fn count_in(&mut self, bytes: usize) {
        self.bytes += bytes;
        self.total.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn count_out(&mut self, bytes: usize) {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        self.total.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Whether taking `more` bytes would put this queue past a limit: its
    /// own, the age of its oldest frame, or (when every queue together is
    /// over the server's total) holding more than its share.
    pub(super) fn refuses(&self, limits: &OutboundLimits, more: usize) -> bool {
        let over_total = self.total.bytes.load(Ordering::Relaxed) + more > self.total.max;
        self.items.len() >= limits.max_frames
            || self.bytes + more > limits.max_bytes
            || self.stale(limits.max_age)
            || (over_total && self.bytes >= PRESSURE_SHARE)
    }

    /// The client has left a frame unread for longer than `max_age`.
    pub(super) fn stale(&self, max_age: Duration) -> bool {
        self.queued_at
            .front()
            .is_some_and(|at| at.elapsed() > max_age)
    }

    pub(super) fn wake_writer(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
    }

    pub(super) fn close_sent(&mut self) {
        self.close_sent_at = Some(Instant::now());
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
    }

    pub(super) fn finish_reading(&mut self) {
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
    pub(super) fn new(limits: OutboundLimits) -> Self {
        OutboundQueue {
            shared: Rc::new(RefCell::new(Queue::new(limits.total.clone()))),
            limits,
        }
    }

    /// The queue itself, for the writer and the reading side.
    pub(super) fn shared(&self) -> Rc<RefCell<Queue>> {
        self.shared.clone()
    }

    pub(super) fn limits(&self) -> &OutboundLimits {
        &self.limits
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drained_backlog_gives_its_room_back() {
        let total = Arc::new(QueuedTotal {
            bytes: Default::default(),
            max: usize::MAX,
        });
        let mut queue = Queue::new(total.clone());
        for _ in 0..1000 {
            queue.count_in(5);
            queue.push(Outgoing::Text(ByteString::from_static("hello")));
        }
        assert_eq!(queue.wire_bytes(), 1000 * (5 + 10));
        while queue.pop().is_some() {}
        assert_eq!(queue.items.capacity(), 0);
        assert_eq!(queue.queued_at.capacity(), 0);
        assert_eq!(total.bytes.load(Ordering::Relaxed), 0);
        // A short exchange keeps its small room.
        queue.count_in(5);
        queue.push(Outgoing::Text(ByteString::from_static("hello")));
        queue.pop();
        assert!(queue.items.capacity() > 0);
    }
}
