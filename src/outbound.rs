//! The WebSocket transport of one connection, on actix-http's frame codec:
//! [`accept`] completes the upgrade and returns the incoming frames as a
//! stream and the outgoing side as a bounded queue, which the response body
//! drains. The session actor never waits on the socket: it queues and moves
//! on; each time the socket can take more, everything queued is encoded
//! into one buffer, so a busy connection costs one write for many frames.
//! A client that stops reading fills its own queue, not the server's
//! memory; overflow is reported to the caller, which closes it 4002.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use actix_codec::{Decoder, Encoder};
use actix_http::ws::{CloseReason, Codec, Frame, Message, ProtocolError};
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{web, HttpRequest, HttpResponse};
use bytestring::ByteString;
use futures_core::Stream;

#[derive(Debug, Clone, Copy)]
pub struct OutboundLimits {
    pub max_frames: usize,
    pub max_bytes: usize,
}

/// The queue is full: the client is not reading fast enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// How much one write gathers before handing it to the socket.
const WRITE_CHUNK: usize = 64 * 1024;

enum Outgoing {
    Text(ByteString),
    Ping,
    Pong(Bytes),
    Close(Option<CloseReason>),
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Outgoing>,
    bytes: usize,
    /// A close is queued: nothing may follow it.
    closing: bool,
    /// The response body, waiting for something to write.
    writer: Option<Waker>,
}

impl Queue {
    fn push(&mut self, item: Outgoing) {
        self.items.push_back(item);
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
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
        if queue.items.len() >= self.limits.max_frames
            || queue.bytes + text.len() > self.limits.max_bytes
        {
            return Err(Overflow);
        }
        queue.bytes += text.len();
        queue.push(Outgoing::Text(text));
        Ok(())
    }

    pub fn ping(&self) -> Result<(), Overflow> {
        self.control(Outgoing::Ping)
    }

    pub fn pong(&self, payload: Bytes) -> Result<(), Overflow> {
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
        queue.push(item);
        Ok(())
    }

    /// Queues the close frame after everything already queued, and ends the
    /// connection once it is written. With `discard_pending`, what the
    /// client has not taken yet is dropped first, so the close is not stuck
    /// behind it.
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
        queue.push(Outgoing::Close(reason));
    }

    /// Frames queued and not yet handed to the socket.
    pub fn backlog(&self) -> usize {
        self.shared.borrow().items.len()
    }
}

/// Completes the WebSocket upgrade: the response to return, the client's
/// frames (none larger than `max_frame_bytes`), and the outgoing queue.
pub fn accept(
    req: &HttpRequest,
    payload: web::Payload,
    max_frame_bytes: usize,
    limits: OutboundLimits,
) -> Result<(HttpResponse, Inbound, OutboundQueue), actix_web::Error> {
    // actix-http checks the upgrade request and computes the accept key; the
    // response is rebuilt as actix-web's so that its body can be ours.
    let handshake = actix_http::ws::handshake(req.head())?.finish();
    let mut response = HttpResponse::build(handshake.status());
    response.upgrade("websocket");
    for (name, value) in handshake.headers() {
        if name != header::UPGRADE && name != header::CONNECTION {
            response.insert_header((name.clone(), value.clone()));
        }
    }
    let queue = OutboundQueue {
        shared: Rc::new(RefCell::new(Queue::default())),
        limits,
    };
    let body = OutboundBody {
        queue: queue.shared.clone(),
        codec: Codec::new(),
        finished: false,
    };
    let inbound = Inbound {
        payload,
        buf: BytesMut::new(),
        codec: Codec::new().max_size(max_frame_bytes),
        ended: false,
    };
    let mut response = response.streaming(body);
    // A streaming body gets a default content type; a 101 carries none.
    response.headers_mut().remove(header::CONTENT_TYPE);
    Ok((response, inbound, queue))
}

/// The response body: whatever is queued, encoded, each time the socket can
/// take more.
struct OutboundBody {
    queue: Rc<RefCell<Queue>>,
    codec: Codec,
    finished: bool,
}

impl Stream for OutboundBody {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        let mut queue = this.queue.borrow_mut();
        if queue.items.is_empty() {
            queue.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut out = BytesMut::new();
        while out.len() < WRITE_CHUNK {
            let Some(item) = queue.items.pop_front() else {
                break;
            };
            let message = match item {
                Outgoing::Text(text) => {
                    queue.bytes -= text.len();
                    Message::Text(text)
                }
                Outgoing::Ping => Message::Ping(Bytes::new()),
                Outgoing::Pong(payload) => Message::Pong(payload),
                Outgoing::Close(reason) => {
                    this.finished = true;
                    Message::Close(reason)
                }
            };
            if let Err(err) = this.codec.encode(message, &mut out) {
                return Poll::Ready(Some(Err(actix_web::error::ErrorInternalServerError(err))));
            }
            if this.finished {
                queue.items.clear();
                break;
            }
        }
        Poll::Ready(Some(Ok(out.freeze())))
    }
}

/// The client's frames, decoded from the request payload.
pub struct Inbound {
    payload: web::Payload,
    buf: BytesMut,
    codec: Codec,
    ended: bool,
}

impl Stream for Inbound {
    type Item = Result<Message, ProtocolError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match this.codec.decode(&mut this.buf) {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(message_of(frame)?))),
                Ok(None) if this.ended => return Poll::Ready(None),
                Ok(None) => {}
                Err(err) => return Poll::Ready(Some(Err(err))),
            }
            match Pin::new(&mut this.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.buf.extend_from_slice(&chunk),
                Poll::Ready(Some(Err(err))) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(ProtocolError::Io(std::io::Error::other(
                        err.to_string(),
                    )))));
                }
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

fn message_of(frame: Frame) -> Result<Message, ProtocolError> {
    Ok(match frame {
        Frame::Text(bytes) => Message::Text(ByteString::try_from(bytes).map_err(|err| {
            ProtocolError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, err))
        })?),
        Frame::Binary(bytes) => Message::Binary(bytes),
        Frame::Continuation(item) => Message::Continuation(item),
        Frame::Ping(bytes) => Message::Ping(bytes),
        Frame::Pong(bytes) => Message::Pong(bytes),
        Frame::Close(reason) => Message::Close(reason),
    })
}
