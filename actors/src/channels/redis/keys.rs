//! The key layout: every Redis key and pub/sub channel name the broker
//! uses, all under one `<prefix>:` so that several clusters can share a
//! Redis server. `scripts/sweep.lua` rebuilds some of these names from the
//! prefix alone (it finds dead nodes' keys itself), so a change here must
//! be made there too.

use crate::model::channel_name::ChannelName;
use crate::model::ids::PlayerId;

pub(super) struct Keys {
    /// `<prefix>:`
    root: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Self {
        Keys {
            root: format!("{prefix}:"),
        }
    }

    /// `<prefix>:`, for the scripts that build key names themselves.
    pub(super) fn root(&self) -> &str {
        &self.root
    }

    /// The channel's position hash: its epoch and latest offset.
    pub(super) fn position(&self, channel: &ChannelName) -> String {
        format!("{}stream:{channel}", self.root)
    }

    /// The channel's history stream; entry ids are `<offset>-0`.
    pub(super) fn history(&self, channel: &ChannelName) -> String {
        format!("{}history:{channel}", self.root)
    }

    /// The pub/sub channel carrying the channel's live events.
    pub(super) fn pubsub(&self, channel: &ChannelName) -> String {
        format!("{}channel:{channel}", self.root)
    }

    /// What `pubsub` puts before the channel name, to read it back.
    pub(super) fn pubsub_prefix(&self) -> String {
        format!("{}channel:", self.root)
    }

    /// player -> display name, for players present in `channel`.
    pub(super) fn members(&self, channel: &ChannelName) -> String {
        format!("{}presence:{channel}", self.root)
    }

    /// The entry naming `player` in `channel`, as a node lists the entries
    /// it holds. `#` cannot occur in channel names, so the split is exact.
    pub(super) fn presence_entry(channel: &ChannelName, player: &PlayerId) -> String {
        format!("{channel}#{player}")
    }

    /// The channel and player an entry from `presence_entry` names; `None`
    /// for text that is not one.
    pub(super) fn parse_presence_entry(entry: &str) -> Option<(ChannelName, PlayerId)> {
        let (channel, player) = entry.split_once('#')?;
        let channel = ChannelName::parse(channel).ok()?;
        let player = PlayerId::parse(player).ok()?;
        Some((channel, player))
    }

    /// node -> connections of one player in one channel; `entry` comes
    /// from `presence_entry`.
    pub(super) fn player_nodes(&self, entry: &str) -> String {
        format!("{}presence:{entry}", self.root)
    }

    /// `player_nodes` of the channel without the player: a script appends
    /// each member's id to reach that member's hash.
    pub(super) fn player_nodes_prefix(&self, channel: &ChannelName) -> String {
        self.player_nodes(&format!("{channel}#"))
    }

    /// What comes before a node id in its heartbeat key; a node is alive
    /// while `<node prefix><id>` exists.
    pub(super) fn node_prefix(&self) -> String {
        format!("{}node:", self.root)
    }

    /// Exists, with an expiry, while the node beats.
    pub(super) fn heartbeat(&self, node: &str) -> String {
        format!("{}node:{node}", self.root)
    }

    /// The presence entries the node holds, so a sweep can undo them.
    pub(super) fn node_presence(&self, node: &str) -> String {
        format!("{}node:{node}:presence", self.root)
    }

    /// The players the node counts connections of, for the same reason.
    pub(super) fn node_players(&self, node: &str) -> String {
        format!("{}node:{node}:players", self.root)
    }

    /// Every node that has beaten and not been swept.
    pub(super) fn nodes(&self) -> String {
        format!("{}nodes", self.root)
    }

    /// node -> connections of one player.
    pub(super) fn connections(&self, player: &PlayerId) -> String {
        format!("{}conns:{player}", self.root)
    }

    /// Bytes `player`'s publications added to history in the current
    /// budget window.
    pub(super) fn history_bytes_of(&self, player: &PlayerId) -> String {
        format!("{}history_bytes:{player}", self.root)
    }

    /// Bytes all players' publications added in the current window.
    pub(super) fn history_bytes(&self) -> String {
        format!("{}history_bytes", self.root)
    }

    /// Channels `player` created this minute by publishing to new names.
    pub(super) fn channels_created_by(&self, player: &PlayerId) -> String {
        format!("{}created:{player}", self.root)
    }
}
