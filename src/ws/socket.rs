//! The socket of one WebSocket connection, owned by Hearth once the upgrade
//! is answered: the HTTP dispatcher hands it over (`http/upgrade.rs`) and
//! is done with it. Reading and writing are two halves over one shared
//! stream. Owning the socket is what lets a close the server starts
//! half-close it (RFC 6455 section 7.1.1: the close frame, then our FIN)
//! while the client's last frames are still read and discarded, so that
//! the kernel never answers unread data with a reset that would destroy
//! the close before the client reads it.

use std::io;
use std::net::Shutdown;
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
/// last of them lets go.
pub struct Socket {
    stream: TcpStream,
    open: Arc<OpenSockets>,
}

impl Socket {
    pub fn new(stream: TcpStream, open: Arc<OpenSockets>) -> Rc<Socket> {
        open.0.fetch_add(1, Ordering::Relaxed);
        Rc::new(Socket { stream, open })
    }

    /// Sends our FIN: the client reads everything written so far, then
    /// the end of the stream, while we can still read what it sends.
    pub fn half_close(&self) {
        if let Err(err) = socket2::SockRef::from(&self.stream).shutdown(Shutdown::Write) {
            log::debug!(error:% = err; "ws_half_close_failed");
        }
    }

    /// Ends both directions, so that the reading half sees the end at once
    /// (the writing half failed: the connection is gone).
    pub fn shut_down(&self) {
        let _ = socket2::SockRef::from(&self.stream).shutdown(Shutdown::Both);
    }

    /// Reads what the client sent into `buf`, growing it by
    /// [`READ_CHUNK`] when it is full; `Ok(0)` is the end of its stream.
    pub fn poll_read_into(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.stream.poll_read_ready(cx))?;
            buf.reserve(READ_CHUNK);
            match self.stream.try_read_buf(buf) {
                Ok(read) => return Poll::Ready(Ok(read)),
                // Readiness was stale: poll_read_ready registers again.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }

    /// Whether the kernel can take more of what we write.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.poll_write_ready(cx)
    }

    /// Writes what the kernel takes now; `WouldBlock` when it takes none.
    pub fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        self.stream.try_write(bytes)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.open.0.fetch_sub(1, Ordering::Relaxed);
    }
}
