//! The socket of one WebSocket connection, owned by Hearth once the upgrade
//! is answered: the HTTP dispatcher hands it over (`http/upgrade.rs`) and
//! is done with it. Reading and writing are two halves over one shared
//! stream. Owning the socket is what lets a close the server starts
//! half-close it (RFC 6455 section 7.1.1: the close frame, then our FIN)
//! while the client's last frames are still read and discarded, so that
//! the kernel never answers unread data with a reset that would destroy
//! the close before the client reads it.

use std::cell::RefCell;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::rt::net::TcpStream;
use actix_web::web::BytesMut;

/// The room a read makes in the buffer when it has none left.
const READ_CHUNK: usize = 8 * 1024;

/// The sockets the server holds, upgraded ones included: a graceful stop
/// waits for them to be written out and closed.
#[derive(Debug, Default)]
pub struct OpenSockets(AtomicUsize);

impl OpenSockets {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// One socket shared by its reading and writing halves; closed when the
/// last of them lets go. Both halves run on one thread and borrow the
/// stream only inside a call that never calls back into the other, so the
/// cell is never borrowed twice.
pub struct Socket {
    stream: RefCell<TcpStream>,
    open: Arc<OpenSockets>,
}

impl Socket {
    pub fn new(stream: TcpStream, open: Arc<OpenSockets>) -> Rc<Socket> {
        open.0.fetch_add(1, Ordering::Relaxed);
        Rc::new(Socket {
            stream: RefCell::new(stream),
            open,
        })
    }

    /// Sends our FIN: the client reads everything written so far, then
    /// the end of the stream, while we can still read what it sends.
    pub fn half_close(&self) {
        if let Err(err) = socket2::SockRef::from(&*self.stream.borrow()).shutdown(Shutdown::Write) {
            log::debug!(error:% = err; "ws_half_close_failed");
        }
    }

    /// Ends both directions, so that the reading half sees the end at once
    /// (the writing half failed: the connection is gone).
    pub fn shut_down(&self) {
        let _ = socket2::SockRef::from(&*self.stream.borrow()).shutdown(Shutdown::Both);
    }

    /// Reads what the client sent into `buf`, growing it by
    /// [`READ_CHUNK`] when it is full; `Ok(0)` is the end of its stream.
    /// Through tokio's `AsyncRead`, which takes a read that did not fill
    /// the buffer as the socket drained: the next poll waits for the
    /// kernel instead of asking it again for nothing. A readiness check
    /// and `try_read` cost a second `recv` per message, answered EAGAIN
    /// (a third of the server's system calls in the request/reply profile).
    pub fn poll_read_into(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        let mut stream = self.stream.borrow_mut();
        // Room is made only once there is something to read, and given back
        // when all that was read has been taken and nothing more waits: a
        // connection between messages holds no read buffer, however busy
        // it was before.
        if stream.poll_read_ready(cx)?.is_pending() {
            if buf.is_empty() && buf.capacity() > 0 {
                *buf = BytesMut::new();
            }
            return Poll::Pending;
        }
        buf.reserve(READ_CHUNK);
        tokio_util::io::poll_read_buf(Pin::new(&mut *stream), cx, buf)
    }

    /// Whether the kernel can take more of what we write.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.borrow().poll_write_ready(cx)
    }

    /// Writes what the kernel takes now; `WouldBlock` when it takes none.
    pub fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        self.stream.borrow().try_write(bytes)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.open.0.fetch_sub(1, Ordering::Relaxed);
    }
}
