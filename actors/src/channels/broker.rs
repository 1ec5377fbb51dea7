//! The broker seam: where publications get their offsets, where history and
//! presence live, and where live events come from. The in-memory broker
//! (`channels/memory.rs`) serves one process; a Redis broker makes several
//! nodes act as one by implementing the same trait.
//!
//! Methods return futures so that a networked broker never blocks the
//! broadcaster; the in-memory one answers with ready futures. Live events
//! (publications, joins, leaves) are not returned by `publish`: every
//! broker pushes them to the sink, in per-channel offset order, so that the
//! broadcaster sees local and remote events the same way.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use thiserror::Error;

use crate::channels::rules::{ChannelRules, NamespaceRules};
use crate::channels::stream::{
    Payload, PresenceEntry, Publication, Publisher, RecoverFrom, Recovery,
};
use crate::model::channel_name::ChannelName;
use crate::model::ids::PlayerId;
use crate::support::metrics::{ActorKind, Metrics};

pub type BrokerFuture<T> = Pin<Box<dyn Future<Output = Result<T, BrokerError>>>>;

#[derive(Debug, Clone, Error)]
pub enum BrokerError {
    #[error("the broker is unavailable: {0}")]
    Unavailable(String),
    /// A budget refused the request (history bytes, new channels); the
    /// text says which, and is meant for the client.
    #[error("{0}")]
    LimitExceeded(&'static str),
}

impl BrokerError {
    /// What a client is told: the broker's own words (a Redis error, an
    /// address) stay in the server's log.
    pub fn client_message(&self) -> &'static str {
        match self {
            BrokerError::Unavailable(_) => "the message broker is unavailable; retry shortly",
            BrokerError::LimitExceeded(why) => why,
        }
    }
}

/// What history may hold, in all and per player, and how fast one player
/// may create channels by publishing to new names: without these, one
/// token could pin memory (or fill Redis) without bound. Players'
/// publications only: the server's own (the API's, the assistant's) are
/// bounded by the server, so a full budget never fails a reply.
#[derive(Debug, Clone, Copy)]
pub struct HistoryBudget {
    pub max_bytes: usize,
    pub max_bytes_per_player: usize,
    pub new_channels_per_minute: u32,
}

impl Default for HistoryBudget {
    fn default() -> Self {
        HistoryBudget {
            max_bytes: 256 << 20,
            max_bytes_per_player: 16 << 20,
            new_channels_per_minute: 60,
        }
    }
}

/// What a client is told when a budget refuses its publish.
pub const HISTORY_FULL: &str = "the server's history is full; retry later";
pub const PLAYER_HISTORY_FULL: &str = "your publications fill your share of history; retry later";
pub const TOO_MANY_NEW_CHANNELS: &str = "too many new channels; publish to fewer new names";

/// A live event from the broker, for the broadcaster to fan out.
#[derive(Debug, Clone)]
pub enum BrokerEvent {
    Publication(Publication),
    Join {
        channel: ChannelName,
        player: PlayerId,
    },
    Leave {
        channel: ChannelName,
        player: PlayerId,
    },
}

#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct FromBroker {
    pub event: BrokerEvent,
}

/// Where a broker delivers live events: the broadcaster's mailbox, counted.
#[derive(Clone)]
pub struct BrokerSink {
    recipient: Recipient<FromBroker>,
    metrics: Arc<Metrics>,
}

impl BrokerSink {
    pub fn new(recipient: Recipient<FromBroker>, metrics: Arc<Metrics>) -> Self {
        BrokerSink { recipient, metrics }
    }

    pub fn emit(&self, event: BrokerEvent) {
        self.metrics.actor(ActorKind::Broadcaster).queued(1);
        self.recipient.do_send(FromBroker { event });
    }
}

/// Admission and readiness, apart from the broker's channel work.
pub trait Gate: Send + Sync + 'static {
    /// Admits one more connection of `player` unless the player already
    /// has the per-player limit on all nodes together. A single node's
    /// `ChatServer` counts its own connections, so the embedded broker
    /// admits everyone.
    fn admit(&self, player: &PlayerId) -> BrokerFuture<bool>;

    /// A connection that `admit` let in has closed.
    fn release(&self, player: &PlayerId);

    /// Whether publishes can succeed now (`/readyz`).
    fn is_ready(&self) -> bool;
}

/// The gate of a broker with no cluster to ask: everyone is admitted (the
/// `ChatServer` applies the per-player limit) and it is always ready.
pub struct OpenGate;

impl Gate for OpenGate {
    fn admit(&self, _player: &PlayerId) -> BrokerFuture<bool> {
        Box::pin(std::future::ready(Ok(true)))
    }

    fn release(&self, _player: &PlayerId) {}

    fn is_ready(&self) -> bool {
        true
    }
}

/// Decisions on tool calls that wait for a player's approval, across the
/// nodes of a cluster: the node that runs a reply says a call waits, and a
/// node that receives the decision for a call it does not hold passes it
/// on, for the waiting node to take. `call` is `<session>:<call id>`.
/// Callable from any thread.
pub trait ApprovalRelay: Send + Sync + 'static {
    /// Whether other nodes can decide at all (one node alone: no).
    fn is_shared(&self) -> bool;

    /// `call` waits on this node for `player`, at most `ttl`.
    fn waiting(&self, call: &str, player: &PlayerId, ttl: Duration) -> BrokerFuture<()>;

    /// Passes the decision on: true when the call waits on some node for
    /// this player and was not decided yet.
    fn forward(&self, call: &str, player: &PlayerId, approved: bool) -> BrokerFuture<bool>;

    /// The decision passed on for a call waiting here, once there is one.
    fn take(&self, call: &str) -> BrokerFuture<Option<bool>>;

    /// The call no longer waits.
    fn done(&self, call: &str) -> BrokerFuture<()>;
}

/// The relay of a node alone: every decision is made where the call waits.
pub struct LocalApprovals;

impl ApprovalRelay for LocalApprovals {
    fn is_shared(&self) -> bool {
        false
    }

    fn waiting(&self, _: &str, _: &PlayerId, _: Duration) -> BrokerFuture<()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn forward(&self, _: &str, _: &PlayerId, _: bool) -> BrokerFuture<bool> {
        Box::pin(std::future::ready(Ok(false)))
    }

    fn take(&self, _: &str) -> BrokerFuture<Option<bool>> {
        Box::pin(std::future::ready(Ok(None)))
    }

    fn done(&self, _: &str) -> BrokerFuture<()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

pub trait Broker: 'static {
    /// Where live events go. Called once, before anything else.
    fn set_sink(&mut self, sink: BrokerSink);

    /// Starts delivering the channel's live events (publications, joins,
    /// leaves) to the sink; the broadcaster calls it before reading the
    /// channel's history, so nothing falls between the two. Idempotent.
    fn watch(&mut self, channel: &ChannelName) -> BrokerFuture<()>;

    /// Stops delivering them: no connection of this node is in the channel
    /// any more, and a channel nobody here listens to costs nothing.
    fn unwatch(&mut self, channel: &ChannelName);

    /// Assigns the next offset, appends to history (bounded by `rules`),
    /// and emits the publication to the sink if the channel is watched.
    fn publish(
        &mut self,
        channel: &ChannelName,
        publisher: Publisher,
        data: Payload,
        rules: &NamespaceRules,
    ) -> BrokerFuture<Publication>;

    /// The channel's position, and with `since` the publications after
    /// it: all of them (`recovered`), or none when the epoch differs, the
    /// history no longer reaches back, or more than `limit` were missed (so
    /// a long tail is never read only to be refused).
    fn recover(
        &mut self,
        channel: &ChannelName,
        since: Option<&RecoverFrom>,
        limit: usize,
        rules: &NamespaceRules,
    ) -> BrokerFuture<Recovery>;

    /// Sets how many connections `player` has in `channel` on this node;
    /// emits `Join` when the player's count goes from zero and `Leave`
    /// when it returns to zero.
    fn set_presence(
        &mut self,
        channel: &ChannelName,
        player: &PlayerId,
        name: Option<&str>,
        connections: u32,
    ) -> BrokerFuture<()>;

    fn presence(&mut self, channel: &ChannelName) -> BrokerFuture<Vec<PresenceEntry>>;

    /// What connections ask when they open and close, and `/readyz` asks:
    /// callable from any thread, so neither waits behind the broadcaster's
    /// mailbox (publishes, fan-out, subscribes).
    fn gate(&self) -> Arc<dyn Gate>;

    /// How decisions on tool calls reach the node where a call waits.
    fn approvals(&self) -> Arc<dyn ApprovalRelay> {
        Arc::new(LocalApprovals)
    }

    /// Periodic housekeeping: drops expired history (by each channel's
    /// `rules`) and idle channels; a networked broker also proves here that
    /// this node is alive.
    fn maintain(&mut self, rules: &ChannelRules) {
        let _ = rules;
    }

    /// The node is stopping gracefully: a networked broker removes what
    /// the node left in the cluster at once, instead of after its expiry.
    fn depart(&mut self) -> BrokerFuture<()> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// How often `maintain` runs.
    fn maintenance_interval(&self) -> Duration {
        Duration::from_secs(10)
    }
}
