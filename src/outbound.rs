//! The outbound side of one WebSocket: a queue bounded in frames and bytes,
//! drained into the socket by a writer task. The session actor never waits
//! on the socket: it queues and moves on, and a client that stops reading
//! fills its own queue, not the server's memory. Overflow is reported to
//! the session, which closes the connection 4002.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use actix_http::ws::CloseReason;
use bytestring::ByteString;
use tokio::sync::Notify;

#[derive(Debug, Clone, Copy)]
pub struct OutboundLimits {
    pub max_frames: usize,
    pub max_bytes: usize,
}

/// The queue is full: the client is not reading fast enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

enum Outgoing {
    Text(ByteString),
    Ping,
    Pong(actix_web::web::Bytes),
    Close(Option<CloseReason>),
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Outgoing>,
    bytes: usize,
    /// A close is queued: nothing may follow it.
    closing: bool,
}

/// The queue of one connection; cheap to clone, for the session and its
/// worker's hub, which live on the same thread.
#[derive(Clone)]
pub struct OutboundQueue {
    shared: Rc<RefCell<Queue>>,
    wake: Rc<Notify>,
    limits: OutboundLimits,
}

impl OutboundQueue {
    /// Queues a text frame, or reports that the queue is full.
    pub fn text(&self, text: ByteString) -> Result<(), Overflow> {
        let mut queue = self.shared.borrow_mut();
        if queue.closing {
            return Ok(());
        }
        if queue.items.len() >= self.limits.max_frames
            || queue.bytes + text.len() > self.limits.max_bytes
        {
            return Err(Overflow);
        }
        queue.bytes += text.len();
        queue.items.push_back(Outgoing::Text(text));
        drop(queue);
        self.wake.notify_one();
        Ok(())
    }

    pub fn ping(&self) -> Result<(), Overflow> {
        self.control(Outgoing::Ping)
    }

    pub fn pong(&self, payload: actix_web::web::Bytes) -> Result<(), Overflow> {
        self.control(Outgoing::Pong(payload))
    }

    fn control(&self, item: Outgoing) -> Result<(), Overflow> {
        let mut queue = self.shared.borrow_mut();
        if queue.closing {
            return Ok(());
        }
        if queue.items.len() >= self.limits.max_frames {
            return Err(Overflow);
        }
        queue.items.push_back(item);
        drop(queue);
        self.wake.notify_one();
        Ok(())
    }

    /// Queues the close frame after everything already queued. With
    /// `discard_pending`, what the client has not taken yet is dropped
    /// first, so the close is not stuck behind it.
    pub fn close(&self, reason: Option<CloseReason>, discard_pending: bool) {
        let mut queue = self.shared.borrow_mut();
        if queue.closing {
            return;
        }
        if discard_pending {
            queue.items.clear();
            queue.bytes = 0;
        }
        queue.closing = true;
        queue.items.push_back(Outgoing::Close(reason));
        drop(queue);
        self.wake.notify_one();
    }

    /// Frames queued and not yet handed to the socket.
    pub fn backlog(&self) -> usize {
        self.shared.borrow().items.len()
    }
}

/// A connection's queue and the task that drains it into the socket.
pub struct Outbound {
    pub queue: OutboundQueue,
    writer: Option<actix_rt::task::JoinHandle<()>>,
}

impl Outbound {
    /// Starts the writer task on the current arbiter.
    pub fn start(session: actix_ws::Session, limits: OutboundLimits) -> Self {
        let queue = OutboundQueue {
            shared: Rc::new(RefCell::new(Queue::default())),
            wake: Rc::new(Notify::new()),
            limits,
        };
        let writer = actix_rt::spawn(write_all(session, queue.shared.clone(), queue.wake.clone()));
        Outbound {
            queue,
            writer: Some(writer),
        }
    }

    /// Gives the writer `grace` to deliver what is queued (the close frame
    /// last), then stops it: a peer that never reads cannot hold it.
    pub fn finish(&mut self, grace: Duration) {
        self.queue.close(None, false);
        if let Some(writer) = self.writer.take() {
            actix_rt::spawn(async move {
                actix_rt::time::sleep(grace).await;
                writer.abort();
            });
        }
    }
}

async fn write_all(mut session: actix_ws::Session, queue: Rc<RefCell<Queue>>, wake: Rc<Notify>) {
    loop {
        let next = {
            let mut queue = queue.borrow_mut();
            let item = queue.items.pop_front();
            if let Some(Outgoing::Text(text)) = &item {
                queue.bytes -= text.len();
            }
            item
        };
        let Some(item) = next else {
            wake.notified().await;
            continue;
        };
        let sent = match item {
            Outgoing::Text(text) => session.text(text).await,
            Outgoing::Ping => session.ping(b"").await,
            Outgoing::Pong(payload) => session.pong(&payload).await,
            Outgoing::Close(reason) => {
                let _ = session.close(reason).await;
                return;
            }
        };
        if sent.is_err() {
            // The connection is gone; nothing more can be written.
            return;
        }
    }
}
