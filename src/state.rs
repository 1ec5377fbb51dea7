//! What every HTTP handler and WebSocket session shares: the actors'
//! addresses, the authenticator, the progress store and the settings that
//! shape a connection.

use std::sync::Arc;
use std::time::Duration;

use hearth_actors::broadcaster::Broadcaster;
use hearth_actors::channels::broker::Gate;
use hearth_actors::channels::rules::ChannelRules;
use hearth_actors::chat_processor::ChatShared;
use hearth_actors::chat_server::ChatServer;
use hearth_actors::exercise_flow::ExerciseFlow;
use hearth_actors::protocol::RequestLimits;
use hearth_actors::store::progress::SharedProgressStore;
use hearth_actors::support::metered::Metered;
use hearth_actors::support::metrics::Metrics;

use crate::auth::Authenticator;
use crate::ws::socket::OpenSockets;

/// What waits in every connection's queue together, and the most it may
/// be: past it, the connections holding the most are closed as slow
/// consumers first (see `transport.rs`).
#[derive(Debug, Default)]
pub struct QueuedTotal {
    pub bytes: std::sync::atomic::AtomicUsize,
    pub max: usize,
}

/// How much may wait for one client before it counts as a slow consumer.
#[derive(Debug, Clone)]
pub struct OutboundLimits {
    pub max_frames: usize,
    pub max_bytes: usize,
    /// A frame left unread this long marks a client that stopped reading.
    pub max_age: Duration,
    /// After a close the server starts, how long what the client still
    /// sends is read and discarded, waiting for its close.
    pub close_linger: Duration,
    /// How long a close may wait to be written to a client that takes
    /// nothing (`server.client_timeout_s`): then the socket is dropped.
    pub close_write_limit: Duration,
    /// Shared by every connection of the server.
    pub total: std::sync::Arc<QueuedTotal>,
}

#[derive(Debug, Clone, Copy)]
pub struct RateSettings {
    pub burst: u32,
    pub per_second: f64,
    /// Refused messages in a row that close the connection 1008.
    pub close_after: u32,
}

pub struct AppState {
    pub chat_server: Metered<ChatServer>,
    /// For this thread's chat processor (see `ws::worker::chat_processor`).
    pub chat: ChatShared,
    pub exercise_flow: Metered<ExerciseFlow>,
    pub broadcaster: Metered<Broadcaster>,
    /// Admission to the cluster and readiness, off the broadcaster's path.
    pub gate: Arc<dyn Gate>,
    /// The development sign-in (`POST /dev/token`) exists: the shipped
    /// development secret is in use.
    pub dev_sign_in: bool,
    /// Upgraded sockets not closed yet, for a graceful stop to wait on.
    pub open_sockets: Arc<OpenSockets>,
    pub channel_rules: Arc<ChannelRules>,
    pub metrics: Arc<Metrics>,
    pub auth: Authenticator,
    pub progress: SharedProgressStore,
    pub session: SessionSettings,
    /// `None`: the server API is off and answers 403.
    pub api_key: Option<String>,
    pub allowed_origins: Vec<String>,
    pub max_connections: usize,
    /// Several nodes share one broker: the per-player connection limit is
    /// counted by the broker across them, not only by this node.
    pub cluster: bool,
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub rate: RateSettings,
    pub outbound: OutboundLimits,
    pub heartbeat_interval: Duration,
    pub client_timeout: Duration,
    pub max_message_bytes: usize,
    pub auth_leeway: Duration,
    pub request_limits: RequestLimits,
}
