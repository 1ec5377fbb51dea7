//! The values a channel's stream is made of: publications with their
//! offset and epoch, the position a client recovers from, and presence
//! entries. Both brokers and the protocol speak in these.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::model::channel_name::ChannelName;
use crate::model::ids::PlayerId;
use crate::model::time::Timestamp;

/// Where a client asks to recover from: the last offset it saw, in the
/// epoch it saw it in.
#[derive(Debug, Clone, Deserialize)]
pub struct RecoverFrom {
    pub offset: u64,
    pub epoch: String,
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
