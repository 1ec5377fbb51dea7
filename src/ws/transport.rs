//! The WebSocket transport of one connection, on actix-http's frame codec:
//! [`accept`] takes the upgraded socket and returns the client's messages
//! (`inbound.rs`) as a stream and the outgoing side as a bounded queue
//! (`queue.rs`), which a writer task drains into the socket. It moves
//! frames and nothing else: fragments are reassembled and text checked for
//! UTF-8 on the way in, so the session receives whole messages and never
//! touches bytes; a breach of the framing rules arrives as the close that
//! answers it.
//!
//! The session actor never waits on the socket: it queues and moves on;
//! each time the socket can take more, everything queued is encoded into
//! one buffer, so a busy connection costs one write for many frames. A
//! client that stops reading fills its own queue, not the server's memory;
//! overflow is reported to the caller, which closes it 4002.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_codec::Encoder;
use actix_http::ws::{Codec, Message};
use actix_web::web::{Bytes, BytesMut};
use futures_core::Stream;

use super::inbound::Inbound;
use super::queue::{OutboundQueue, Outgoing, Queue};
use super::socket::Socket;
use crate::state::OutboundLimits;

/// How much one write gathers before handing it to the socket.
const WRITE_CHUNK: usize = 64 * 1024;

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
    let queue = OutboundQueue::new(limits);
    let body = OutboundBody {
        queue: queue.shared(),
        codec: Codec::new(),
        close_written: false,
        finished: false,
    };
    let inbound = Inbound::new(
        socket.clone(),
        read,
        max_message_bytes,
        queue.shared(),
        close_linger,
    );
    actix_rt::spawn(write_out(socket, body, queue.limits().close_write_limit));
    (inbound, queue)
}

/// Drains the queue into the socket. After our close frame it half-closes
/// and waits until reading is done, so the socket is never dropped with
/// the client's data unread. A close that cannot be written within
/// `limit` (a client that stopped reading for good) is given up.
async fn write_out(socket: Rc<Socket>, mut body: OutboundBody, limit: Duration) {
    let mut deadline: Option<Pin<Box<actix_rt::time::Sleep>>> = None;
    'writing: while let Some(chunk) =
        std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await
    {
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            let written = std::future::poll_fn(|cx| {
                let mut queue = body.queue.borrow_mut();
                if deadline.is_none() && queue.closing {
                    deadline = Some(Box::pin(actix_rt::time::sleep(limit)));
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
                    log::debug!(error:% = err; "ws_write_ended");
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
        // Sized once for what is queued (up to one chunk and the frame
        // that crosses it), rather than grown frame by frame.
        let mut out = BytesMut::with_capacity(queue.wire_bytes().min(2 * WRITE_CHUNK));
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
                log::error!(error:% = err; "ws_encode_failed");
            }
            if this.close_written {
                queue.clear();
                break;
            }
        }
        Poll::Ready(Some(out.freeze()))
    }
}
