//! One WebSocket connection: [`serve`] completes the upgrade and starts its
//! session actor; [`refuse`] completes it and closes at once. The
//! transport (`transport.rs`) moves whole messages, the worker's hub
//! (`worker.rs`) delivers fan-out, and the session (`session/`) holds the
//! logic.

pub mod session;
pub mod transport;
pub mod worker;

use std::sync::Arc;

use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use hearth_actors::protocol::Close;

use crate::auth::Identity;
use crate::state::{AppState, OutboundLimits};
pub use session::ConnOptions;
use session::WsSession;

/// Completes the upgrade and starts a session actor for it. The actor runs
/// on this worker's arbiter, apart from the socket: messages arrive as a
/// stream, writes go through a bounded outbound queue.
pub fn serve(
    req: &HttpRequest,
    body: web::Payload,
    identity: Identity,
    options: ConnOptions,
    state: Arc<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let settings = &state.session;
    let (response, messages, outbound) = transport::accept(
        req,
        body,
        settings.max_message_bytes,
        settings.outbound.clone(),
    )?;
    WsSession::create(move |ctx| {
        ctx.add_stream(messages);
        WsSession::new(identity, options, state, outbound)
    });
    Ok(response)
}

/// Completes the upgrade and closes at once with `close`, sending nothing
/// else (docs/protocol.md, section 2).
pub fn refuse(
    req: &HttpRequest,
    body: web::Payload,
    close: Close,
    close_linger: std::time::Duration,
) -> Result<HttpResponse, actix_web::Error> {
    let limits = OutboundLimits {
        max_frames: 1,
        max_bytes: 0,
        max_age: std::time::Duration::MAX,
        close_linger,
        total: Default::default(),
    };
    let (response, _messages, outbound) = transport::accept(req, body, 0, limits)?;
    outbound.close_with(close, false);
    Ok(response)
}
