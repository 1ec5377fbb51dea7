//! The error catalogue: every code an `error` frame can carry, with what it
//! means, and the two shapes a refusal takes on the wire. An error is the
//! failure a connection survives; a failure that ends it is a close code
//! ([`crate::protocol::close`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::channels::rules::Denied;
use crate::model::ids::ClientRef;

/// Every code an `error` frame (or a refused channel) may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not a JSON object, or a field is missing, mistyped or
    /// out of range; also a refresh with an invalid or expired token.
    BadRequest,
    /// `type` is missing, not a string, or names no frame.
    UnknownType,
    /// A binary frame: the protocol is JSON text frames only.
    UnsupportedFrame,
    /// The connection's identity may not do this (subscribe, publish,
    /// refresh for another player).
    Forbidden,
    /// A channel name that breaks the naming rules.
    BadChannel,
    /// The channel keeps no presence.
    NotAvailable,
    /// A text or a publication over its size limit.
    TooLarge,
    /// The connection's rate limit refused the frame; `retry_after_ms` says
    /// when a token is back.
    RateLimited,
    /// A per-connection limit (subscriptions) would be passed.
    LimitExceeded,
    /// Sent just before the 4001 close when the token's time is up.
    TokenExpired,
    /// The server could not do it now (an actor or the broker is
    /// unavailable); the same request may succeed later.
    Internal,
    /// A request named a session or message that does not exist, or that
    /// belongs to another player (v1.1).
    NotFound,
    /// A request's `method` names nothing the server serves (v1.1).
    UnknownMethod,
    /// The request is valid but the state forbids it, e.g. cancelling a
    /// finished reply (v1.1).
    Conflict,
    /// The assistant or a store cannot answer now; `retry_after_ms` when
    /// known (v1.1).
    Unavailable,
}

/// A failure the connection survives (docs/protocol.md, section 6).
#[derive(Debug, Clone, Serialize)]
pub struct ErrorFrame {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ClientRef>,
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// On a `subscribe` that granted nothing: why each channel was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<BTreeMap<String, Refusal>>,
}

impl ErrorFrame {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorFrame {
            reply_to: None,
            code,
            message: message.into(),
            retry_after_ms: None,
            refused: None,
        }
    }

    pub fn replying_to(mut self, reply_to: Option<ClientRef>) -> Self {
        self.reply_to = reply_to;
        self
    }
}

/// A refusal of one channel of a `subscribe`: the code and a message for
/// the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// A permission the channel rules denied is `forbidden` on the wire.
impl From<Denied> for Refusal {
    fn from(denied: Denied) -> Self {
        Refusal::new(ErrorCode::Forbidden, denied.0)
    }
}

impl From<Denied> for ErrorFrame {
    fn from(denied: Denied) -> Self {
        ErrorFrame::new(ErrorCode::Forbidden, denied.0)
    }
}
