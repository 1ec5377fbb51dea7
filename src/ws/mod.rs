//! One WebSocket connection: [`serve`] starts the session actor of an
//! upgraded socket; [`refuse`] closes it at once. The socket
//! (`socket.rs`) is owned here once the upgrade is answered; the transport
//! (`transport.rs`) moves whole messages over it: in through `inbound.rs`,
//! out through the bounded queue of `queue.rs` and a writer task. The
//! worker's hub (`worker.rs`) delivers fan-out, and the session
//! (`session/`) holds the logic.

pub mod inbound;
pub mod queue;
pub mod session;
pub mod socket;
pub mod transport;
pub mod worker;

use std::sync::Arc;

use std::rc::Rc;

use actix::prelude::*;
use actix_web::web::BytesMut;
use hearth_actors::protocol::Close;

use crate::auth::Identity;
use crate::state::{AppState, OutboundLimits};
pub use session::ConnOptions;
use session::WsSession;

/// Starts a session actor for an upgraded socket. The actor runs on this
/// worker's arbiter, apart from the socket: messages arrive as a stream,
/// writes go through a bounded outbound queue. `read` is what the client
/// sent right after its upgrade request.
pub fn serve(
    socket: Rc<socket::Socket>,
    read: BytesMut,
    identity: Identity,
    options: ConnOptions,
    state: Arc<AppState>,
    requested_at: std::time::Instant,
) {
    let settings = &state.session;
    let (messages, outbound) = transport::accept(
        socket,
        read,
        settings.max_message_bytes,
        settings.outbound.clone(),
    );
    WsSession::create(move |ctx| {
        ctx.add_stream(messages);
        WsSession::new(identity, options, state, outbound, requested_at)
    });
}

/// Closes an upgraded socket at once with `close`, sending nothing else
/// (docs/protocol.md, section 2).
pub fn refuse(socket: Rc<socket::Socket>, read: BytesMut, close: Close, limits: &OutboundLimits) {
    let limits = OutboundLimits {
        max_frames: 1,
        max_bytes: 0,
        max_age: std::time::Duration::MAX,
        total: Default::default(),
        ..limits.clone()
    };
    let (_messages, outbound) = transport::accept(socket, read, 0, limits);
    outbound.close_with(close, false);
}
