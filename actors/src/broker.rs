//! The broker seam: where publications get their offsets, where history and
//! presence live, and where live events come from. The in-memory broker
//! (`broker_memory.rs`) serves one process; a Redis broker makes several
//! nodes act as one by implementing the same trait.
//!
//! Methods return futures so that a networked broker never blocks the
//! broadcaster; the in-memory one answers with ready futures. Live events
//! (publications, joins, leaves) are not returned by `publish`: every
//! broker pushes them to the sink, in per-channel offset order, so that the
//! broadcaster sees local and remote events the same way.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use thiserror::Error;

use crate::channels::{ChannelName, NamespaceRules};
use crate::ids::PlayerId;
use crate::metrics::{ActorKind, Metrics};
use crate::protocol::{RecoverFrom, Timestamp};

pub type BrokerFuture<T> = Pin<Box<dyn Future<Output = Result<T, BrokerError>>>>;

#[derive(Debug, Clone, Error)]
pub enum BrokerError {
    #[error("the broker is unavailable: {0}")]
    Unavailable(String),
}

/// A channel's history generation. A new epoch means earlier offsets are
/// meaningless: the stream was reset (for example a restart of the
/// in-memory broker).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Epoch(Arc<str>);

impl Epoch {
    pub fn generate() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Epoch(Arc::from(&id[..16]))
    }

    pub fn from_string(text: String) -> Self {
        Epoch(Arc::from(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The published JSON value, kept as the exact text it serialized to, so
/// it is never parsed again and is shared, not copied, by history and
/// fan-out.
#[derive(Debug, Clone)]
pub struct Payload(Arc<RawValue>);

impl Payload {
    pub fn from_value(value: &serde_json::Value) -> Result<Self, serde_json::Error> {
        let raw = serde_json::value::to_raw_value(value)?;
        Ok(Payload(Arc::from(raw)))
    }

    /// A payload read back from a remote broker, already validated JSON.
    pub fn from_raw(raw: Box<RawValue>) -> Self {
        Payload(Arc::from(raw))
    }

    pub fn as_raw(&self) -> &RawValue {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.get().len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.get().is_empty()
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Who published: a player, or the server API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publisher {
    Player(PlayerId),
    Server,
}

impl Serialize for Publisher {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Publisher::Player(player) => serializer.serialize_str(player.as_str()),
            Publisher::Server => serializer.serialize_str("server"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Publication {
    pub channel: ChannelName,
    pub offset: u64,
    pub epoch: Epoch,
    pub publisher: Publisher,
    pub data: Payload,
    pub timestamp: Timestamp,
}

/// Where a channel's stream stands: the latest offset (0 before the first
/// publication) and its epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPosition {
    pub offset: u64,
    pub epoch: Epoch,
}

/// The answer to a subscribe: the position, and the publications after the
/// client's offset when they could all be recovered.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub position: StreamPosition,
    pub recovered: bool,
    pub publications: Vec<Publication>,
}

impl Recovery {
    /// The answer to a subscribe at `position`, given `after`: the
    /// publications the history still holds after the client's offset,
    /// oldest first. Recovered only when they are all there, in the
    /// client's epoch; otherwise nothing old is sent.
    pub fn settle(
        position: StreamPosition,
        since: Option<&RecoverFrom>,
        mut after: Vec<Publication>,
    ) -> Recovery {
        let recovered = since.is_some_and(|since| {
            since.epoch == position.epoch.as_str()
                && since.offset <= position.offset
                && after.len() as u64 == position.offset - since.offset
        });
        if !recovered {
            after.clear();
        }
        Recovery {
            position,
            recovered,
            publications: after,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresenceEntry {
    pub player_id: PlayerId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub connections: u32,
}

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
    /// it: all of them (`recovered`), or none when the epoch differs or the
    /// history no longer reaches back.
    fn recover(
        &mut self,
        channel: &ChannelName,
        since: Option<&RecoverFrom>,
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

    /// Admits one more connection of `player` unless the player already
    /// has the per-player limit on all nodes together. A single node's
    /// `ChatServer` counts its own connections, so the embedded broker
    /// admits everyone.
    fn admit(&mut self, _player: &PlayerId) -> BrokerFuture<bool> {
        Box::pin(std::future::ready(Ok(true)))
    }

    /// A connection that `admit` let in has closed.
    fn release(&mut self, _player: &PlayerId) {}

    /// Whether publishes can succeed now (`/readyz`).
    fn is_ready(&self) -> bool;

    /// Periodic housekeeping: drops expired history and idle channels; a
    /// networked broker also proves here that this node is alive.
    fn maintain(&mut self) {}

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
