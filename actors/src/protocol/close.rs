//! The close catalogue: every way the server ends a connection, each with
//! the close code and the reason text the client receives
//! (docs/protocol.md, sections 2 and 6). A client decides from the code
//! whether to reconnect, to get a new token first, or to stop.

/// Why the server closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// 1000: nothing heard from the client for `client_timeout_s`.
    IdleTimeout,
    /// 1001: the server is stopping; reconnect (to another node).
    ServerShutdown,
    /// 1002: a continuation frame with no message begun.
    ContinuationWithoutStart,
    /// 1002: a new message began inside a fragmented one.
    NewMessageInsideFragmented,
    /// 1002: any other breach of RFC 6455 framing.
    ProtocolError,
    /// 1007: a text message that is not UTF-8.
    InvalidUtf8,
    /// 1008: the upgrade carried no token.
    MissingToken,
    /// 1008: the token's `exp` had passed when it connected.
    ExpiredToken,
    /// 1008: the token failed verification (signature, algorithm, claims).
    InvalidToken,
    /// 1008: the player already has the most connections allowed.
    TooManyConnections,
    /// 1008: a run of rate-limited messages.
    RateLimitExceeded,
    /// 1009: a message over `limits.max_message_bytes`.
    MessageTooBig,
    /// 1011: an actor the connection depends on is gone.
    Internal,
    /// 1013: the server holds `limits.max_connections`; retry later.
    ServerFull,
    /// 4001: the token's time ran out on a live connection; refresh the
    /// token, then reconnect.
    TokenExpired,
    /// 4002: the client did not read fast enough and its queue overflowed;
    /// reconnect and recover.
    SlowConsumer,
}

impl Close {
    pub const fn code(self) -> u16 {
        match self {
            Close::IdleTimeout => 1000,
            Close::ServerShutdown => 1001,
            Close::ContinuationWithoutStart
            | Close::NewMessageInsideFragmented
            | Close::ProtocolError => 1002,
            Close::InvalidUtf8 => 1007,
            Close::MissingToken
            | Close::ExpiredToken
            | Close::InvalidToken
            | Close::TooManyConnections
            | Close::RateLimitExceeded => 1008,
            Close::MessageTooBig => 1009,
            Close::Internal => 1011,
            Close::ServerFull => 1013,
            Close::TokenExpired => 4001,
            Close::SlowConsumer => 4002,
        }
    }

    pub const fn reason(self) -> &'static str {
        match self {
            Close::IdleTimeout => "idle timeout",
            Close::ServerShutdown => "server shutting down",
            Close::ContinuationWithoutStart => "continuation without a first frame",
            Close::NewMessageInsideFragmented => "new message inside a fragmented one",
            Close::ProtocolError => "protocol error",
            Close::InvalidUtf8 => "invalid utf-8",
            Close::MissingToken => "missing token",
            Close::ExpiredToken | Close::TokenExpired => "token expired",
            Close::InvalidToken => "invalid token",
            Close::TooManyConnections => "too many connections",
            Close::RateLimitExceeded => "rate limit exceeded",
            Close::MessageTooBig => "message too big",
            Close::Internal => "internal error",
            Close::ServerFull => "try again later",
            Close::SlowConsumer => "slow consumer",
        }
    }
}

/// How a connection ended, for its log line and the close-code metric: one
/// of ours, the client's own close, or the socket lost without a close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Server(Close),
    Client { code: u16, reason: String },
    Lost,
}

impl Ending {
    /// 1005 is "no code given" and 1006 "closed without a close frame"
    /// (RFC 6455, 7.1.5): codes that are recorded, never sent.
    pub fn code(&self) -> u16 {
        match self {
            Ending::Server(close) => close.code(),
            Ending::Client { code, .. } => *code,
            Ending::Lost => 1006,
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Ending::Server(close) => close.reason().to_string(),
            Ending::Client { reason, .. } => format!("client: {reason}"),
            Ending::Lost => "connection lost".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fit_a_close_frame() {
        // A close frame's payload is at most 125 bytes, 2 of them the code.
        let all = [
            Close::IdleTimeout,
            Close::ServerShutdown,
            Close::ContinuationWithoutStart,
            Close::NewMessageInsideFragmented,
            Close::ProtocolError,
            Close::InvalidUtf8,
            Close::MissingToken,
            Close::ExpiredToken,
            Close::InvalidToken,
            Close::TooManyConnections,
            Close::RateLimitExceeded,
            Close::MessageTooBig,
            Close::Internal,
            Close::ServerFull,
            Close::TokenExpired,
            Close::SlowConsumer,
        ];
        for close in all {
            assert!(close.reason().len() <= 123, "{close:?}");
            assert!((1000..5000).contains(&close.code()), "{close:?}");
        }
    }
}
