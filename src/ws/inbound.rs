//! The client's side of one connection: frames read from the socket,
//! checked on their header before their payload is buffered, reassembled
//! into whole messages; and, after a close of the server's, the lingering
//! read that discards what the client still sends until it is done.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_codec::Decoder;
use actix_http::ws::{CloseReason, Codec, Frame, Item, ProtocolError};
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_core::Stream;
use hearth_actors::protocol::Close;

use super::queue::Queue;
use super::socket::Socket;

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
    /// Reads `socket`, starting with `read` (what arrived with the
    /// upgrade request), for the connection whose queue is `queue`.
    pub(super) fn new(
        socket: Rc<Socket>,
        read: BytesMut,
        max_message_bytes: usize,
        queue: Rc<RefCell<Queue>>,
        close_linger: std::time::Duration,
    ) -> Self {
        // What the HTTP dispatcher read ahead is usually nothing, in a
        // buffer sized for a request: an idle connection keeps none of it.
        let buf = if read.is_empty() {
            BytesMut::new()
        } else {
            read
        };
        Inbound {
            socket: Some(socket),
            buf,
            codec: Codec::new().max_size(max_message_bytes),
            max_message_bytes,
            partial: None,
            ended: false,
            queue,
            close_linger,
        }
    }

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
