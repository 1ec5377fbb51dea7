//! The bookkeeping behind `ChatServer`, as a plain struct: which player owns
//! which connections, which connections are in which channel room (and on
//! which worker thread's hub each lives), who is present in each presence
//! room, and each player's active therapeutic session. It sends nothing:
//! each change returns what it means for the rooms ([`RoomChange`]), and the
//! actor passes that on. Being plain data, its invariants are checked after
//! every change by unit and property tests, and in debug builds by the actor.

use std::collections::{HashMap, HashSet};

use crate::model::channel_name::ChannelName;
use crate::model::ids::{ConnId, PlayerId, SessionId};
use crate::support::metrics::RegistrySizes;

/// What a change to the rooms means for the layer that tracks presence and
/// listens to channels (the Broadcaster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomChange {
    /// How many of this node's connections of `player` are now in
    /// `channel`, a presence room.
    Presence {
        channel: ChannelName,
        player: PlayerId,
        name: Option<String>,
        connections: u32,
    },
    /// The room lost its last connection.
    Closed(ChannelName),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectRefused {
    #[error("too many connections")]
    TooManyForPlayer,
}

/// One live connection. `link` is whatever the owner needs to reach it
/// (the actor keeps its hub's and its session's mailboxes there).
pub struct Connection<L> {
    pub player: PlayerId,
    /// Display name from the token, shown in presence.
    pub name: Option<String>,
    /// The worker thread's hub the connection lives on.
    pub hub: usize,
    pub link: L,
    channels: HashSet<ChannelName>,
}

#[derive(Default)]
struct Room {
    /// Member connections and the hub each lives on.
    members: HashMap<ConnId, usize>,
    /// The hubs with members here, and how many each has.
    hubs: HashMap<usize, u32>,
    presence: bool,
    /// Connections per player, kept only for presence rooms.
    players: HashMap<PlayerId, u32>,
}

pub struct Registry<L> {
    connections: HashMap<ConnId, Connection<L>>,
    players: HashMap<PlayerId, Vec<ConnId>>,
    rooms: HashMap<ChannelName, Room>,
    active_sessions: HashMap<PlayerId, SessionId>,
    max_connections_per_player: usize,
    max_remembered_sessions: usize,
    /// Room memberships and presence entries, counted as they change so
    /// that reading the sizes walks nothing.
    subscription_count: usize,
    presence_count: usize,
}

impl<L> Registry<L> {
    pub fn new(max_connections_per_player: usize, max_remembered_sessions: usize) -> Self {
        Registry {
            connections: HashMap::new(),
            players: HashMap::new(),
            rooms: HashMap::new(),
            active_sessions: HashMap::new(),
            max_connections_per_player: max_connections_per_player.max(1),
            max_remembered_sessions: max_remembered_sessions.max(1),
            subscription_count: 0,
            presence_count: 0,
        }
    }

    /// Adds a connection, unless its player already has the maximum. A
    /// connection id already registered changes nothing: ids are unique
    /// per connection, so a repeat is the same connection announcing itself
    /// twice.
    pub fn connect(
        &mut self,
        conn: ConnId,
        player: PlayerId,
        name: Option<String>,
        hub: usize,
        link: L,
    ) -> Result<(), ConnectRefused> {
        if self.connections.contains_key(&conn) {
            return Ok(());
        }
        let conns = self.players.entry(player.clone()).or_default();
        if conns.len() >= self.max_connections_per_player {
            return Err(ConnectRefused::TooManyForPlayer);
        }
        conns.push(conn);
        self.connections.insert(
            conn,
            Connection {
                player,
                name,
                hub,
                link,
                channels: HashSet::new(),
            },
        );
        Ok(())
    }

    /// Removes a connection from every room and from its player. Idempotent.
    pub fn disconnect(&mut self, conn: ConnId, changes: &mut Vec<RoomChange>) {
        let channels: Vec<ChannelName> = match self.connections.get(&conn) {
            Some(connection) => connection.channels.iter().cloned().collect(),
            None => return,
        };
        for channel in &channels {
            self.leave(conn, channel, changes);
        }
        let Some(connection) = self.connections.remove(&conn) else {
            return;
        };
        if let Some(conns) = self.players.get_mut(&connection.player) {
            conns.retain(|c| *c != conn);
            if conns.is_empty() {
                self.players.remove(&connection.player);
            }
        }
    }

    pub fn connection(&self, conn: ConnId) -> Option<&Connection<L>> {
        self.connections.get(&conn)
    }

    /// The player's open connections.
    pub fn connections_of<'a>(
        &'a self,
        player: &PlayerId,
    ) -> impl Iterator<Item = (ConnId, &'a Connection<L>)> + 'a {
        let conns = self.players.get(player).map_or(&[][..], Vec::as_slice);
        conns
            .iter()
            .filter_map(|conn| Some((*conn, self.connections.get(conn)?)))
    }

    pub fn all_connections(&self) -> impl Iterator<Item = &Connection<L>> {
        self.connections.values()
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Puts the connection in `channel`'s room; false when it is gone or
    /// already there.
    pub fn join(
        &mut self,
        conn: ConnId,
        channel: &ChannelName,
        presence: bool,
        changes: &mut Vec<RoomChange>,
    ) -> bool {
        let Some(connection) = self.connections.get_mut(&conn) else {
            return false;
        };
        if !connection.channels.insert(channel.clone()) {
            return false;
        }
        let room = self.rooms.entry(channel.clone()).or_default();
        room.presence = presence;
        if room.members.insert(conn, connection.hub).is_none() {
            self.subscription_count += 1;
        }
        *room.hubs.entry(connection.hub).or_default() += 1;
        if presence {
            let count = room.players.entry(connection.player.clone()).or_default();
            if *count == 0 {
                self.presence_count += 1;
            }
            *count += 1;
            changes.push(RoomChange::Presence {
                channel: channel.clone(),
                player: connection.player.clone(),
                name: connection.name.clone(),
                connections: *count,
            });
        }
        true
    }

    /// Takes the connection out of `channel`'s room, closing the room when
    /// it was the last one. Idempotent.
    pub fn leave(&mut self, conn: ConnId, channel: &ChannelName, changes: &mut Vec<RoomChange>) {
        let Some(connection) = self.connections.get_mut(&conn) else {
            return;
        };
        if !connection.channels.remove(channel) {
            return;
        }
        let Some(room) = self.rooms.get_mut(channel) else {
            return;
        };
        if let Some(hub) = room.members.remove(&conn) {
            self.subscription_count -= 1;
            if let Some(count) = room.hubs.get_mut(&hub) {
                *count -= 1;
                if *count == 0 {
                    room.hubs.remove(&hub);
                }
            }
        }
        if room.presence {
            let count = room.players.get_mut(&connection.player).map(|count| {
                *count = count.saturating_sub(1);
                *count
            });
            if count == Some(0) && room.players.remove(&connection.player).is_some() {
                self.presence_count -= 1;
            }
            changes.push(RoomChange::Presence {
                channel: channel.clone(),
                player: connection.player.clone(),
                name: connection.name.clone(),
                connections: count.unwrap_or(0),
            });
        }
        if room.members.is_empty() {
            self.rooms.remove(channel);
            changes.push(RoomChange::Closed(channel.clone()));
        }
    }

    pub fn is_open(&self, channel: &ChannelName) -> bool {
        self.rooms.contains_key(channel)
    }

    /// The hubs with members in `channel`'s room: a fan-out is one message
    /// to each.
    pub fn room_hubs<'a>(&'a self, channel: &ChannelName) -> impl Iterator<Item = usize> + 'a {
        self.rooms
            .get(channel)
            .into_iter()
            .flat_map(|room| room.hubs.keys().copied())
    }

    /// The therapeutic session a frame belongs to: the one it names (which
    /// becomes the player's active one), or the player's active one,
    /// created on first use.
    pub fn resolve_session(&mut self, player: PlayerId, requested: Option<SessionId>) -> SessionId {
        if !self.active_sessions.contains_key(&player)
            && self.active_sessions.len() >= self.max_remembered_sessions
        {
            // Forget the sessions of players who are not connected; a client
            // that wants to continue one later names it.
            let players = &self.players;
            self.active_sessions
                .retain(|player, _| players.contains_key(player));
        }
        match requested {
            Some(requested) => {
                self.active_sessions.insert(player, requested.clone());
                requested
            }
            None => self
                .active_sessions
                .entry(player)
                .or_insert_with(SessionId::generate)
                .clone(),
        }
    }

    pub fn sizes(&self) -> RegistrySizes {
        RegistrySizes {
            players: self.players.len(),
            connections: self.connections.len(),
            channels: self.rooms.len(),
            subscriptions: self.subscription_count,
            presence_entries: self.presence_count,
        }
    }

    /// Every index agrees with every other, and nothing empty is kept.
    pub fn check_invariants(&self) -> Result<(), String> {
        let members: usize = self.rooms.values().map(|r| r.members.len()).sum();
        let present: usize = self.rooms.values().map(|r| r.players.len()).sum();
        if (members, present) != (self.subscription_count, self.presence_count) {
            return Err(format!(
                "counted {} subscriptions and {} presence entries, hold {members} and {present}",
                self.subscription_count, self.presence_count
            ));
        }
        let listed: usize = self.players.values().map(Vec::len).sum();
        if listed != self.connections.len() {
            return Err(format!(
                "{listed} connections listed by player, {} known",
                self.connections.len()
            ));
        }
        for (player, conns) in &self.players {
            if conns.is_empty() || conns.len() > self.max_connections_per_player {
                return Err(format!("{player} has {} connections", conns.len()));
            }
            for conn in conns {
                if self
                    .connections
                    .get(conn)
                    .is_none_or(|c| &c.player != player)
                {
                    return Err(format!("{conn} is listed for {player} but not theirs"));
                }
            }
        }
        let memberships: usize = self.connections.values().map(|c| c.channels.len()).sum();
        let members: usize = self.rooms.values().map(|r| r.members.len()).sum();
        if memberships != members {
            return Err(format!("{memberships} memberships, {members} room members"));
        }
        for (channel, room) in &self.rooms {
            if room.members.is_empty() {
                return Err(format!("{channel} is open with no members"));
            }
            let mut per_hub: HashMap<usize, u32> = HashMap::new();
            let mut per_player: HashMap<&PlayerId, u32> = HashMap::new();
            for (conn, hub) in &room.members {
                let Some(connection) = self.connections.get(conn) else {
                    return Err(format!("{conn} is in {channel} but not connected"));
                };
                if !connection.channels.contains(channel) || connection.hub != *hub {
                    return Err(format!("{conn} in {channel} disagrees with its connection"));
                }
                *per_hub.entry(*hub).or_default() += 1;
                *per_player.entry(&connection.player).or_default() += 1;
            }
            if per_hub != room.hubs {
                return Err(format!("{channel}'s hub counts are wrong"));
            }
            let present: HashMap<&PlayerId, u32> =
                room.players.iter().map(|(p, n)| (p, *n)).collect();
            if room.presence && present != per_player {
                return Err(format!("{channel}'s presence counts are wrong"));
            }
            if !room.presence && !room.players.is_empty() {
                return Err(format!("{channel} keeps presence it should not"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type TestRegistry = Registry<()>;

    fn conn_ids() -> Vec<ConnId> {
        (0..6).map(|_| ConnId::generate()).collect()
    }

    fn player(n: usize) -> PlayerId {
        PlayerId::parse(&format!("p{n}")).unwrap()
    }

    fn channel(n: usize) -> ChannelName {
        ChannelName::parse(&format!("room:c{n}")).unwrap()
    }

    #[test]
    fn a_player_is_refused_past_the_limit_and_nothing_is_left_behind() {
        let mut registry = TestRegistry::new(2, 10);
        let conns = conn_ids();
        let alice = player(0);
        for conn in &conns[..2] {
            assert!(registry.connect(*conn, alice.clone(), None, 0, ()).is_ok());
        }
        assert_eq!(
            registry.connect(conns[2], alice.clone(), None, 0, ()),
            Err(ConnectRefused::TooManyForPlayer)
        );
        assert_eq!(registry.connections_of(&alice).count(), 2);
        registry.check_invariants().unwrap();
    }

    #[test]
    fn presence_counts_connections_and_the_last_leave_closes_the_room() {
        let mut registry = TestRegistry::new(4, 10);
        let conns = conn_ids();
        let alice = player(0);
        let lobby = channel(0);
        let mut changes = Vec::new();
        registry
            .connect(conns[0], alice.clone(), None, 0, ())
            .unwrap();
        registry
            .connect(conns[1], alice.clone(), None, 1, ())
            .unwrap();
        assert!(registry.join(conns[0], &lobby, true, &mut changes));
        assert!(registry.join(conns[1], &lobby, true, &mut changes));
        assert!(!registry.join(conns[1], &lobby, true, &mut changes));
        let counts: Vec<u32> = changes
            .iter()
            .map(|change| match change {
                RoomChange::Presence { connections, .. } => *connections,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(counts, [1, 2]);
        let mut hubs: Vec<usize> = registry.room_hubs(&lobby).collect();
        hubs.sort();
        assert_eq!(hubs, [0, 1]);

        changes.clear();
        registry.disconnect(conns[0], &mut changes);
        registry.disconnect(conns[0], &mut changes);
        registry.leave(conns[1], &lobby, &mut changes);
        assert!(matches!(
            changes.as_slice(),
            [
                RoomChange::Presence { connections: 1, .. },
                RoomChange::Presence { connections: 0, .. },
                RoomChange::Closed(closed),
            ] if *closed == lobby
        ));
        assert!(!registry.is_open(&lobby));
        registry.check_invariants().unwrap();
    }

    #[test]
    fn a_named_session_becomes_the_active_one() {
        let mut registry = TestRegistry::new(4, 10);
        let alice = player(0);
        let first = registry.resolve_session(alice.clone(), None);
        assert_eq!(registry.resolve_session(alice.clone(), None), first);
        let named = SessionId::parse("s-named").unwrap();
        assert_eq!(
            registry.resolve_session(alice.clone(), Some(named.clone())),
            named
        );
        assert_eq!(registry.resolve_session(alice, None), named);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Connect {
            conn: usize,
            player: usize,
            hub: usize,
        },
        Disconnect {
            conn: usize,
        },
        Join {
            conn: usize,
            channel: usize,
        },
        Leave {
            conn: usize,
            channel: usize,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..6usize, 0..3usize, 0..2usize).prop_map(|(conn, player, hub)| Op::Connect {
                conn,
                player,
                hub
            }),
            (0..6usize).prop_map(|conn| Op::Disconnect { conn }),
            (0..6usize, 0..3usize).prop_map(|(conn, channel)| Op::Join { conn, channel }),
            (0..6usize, 0..3usize).prop_map(|(conn, channel)| Op::Leave { conn, channel }),
        ]
    }

    proptest! {
        /// Whatever the order of connects, joins, leaves and disconnects,
        /// the indexes agree after every step, a room closes exactly when
        /// its last member goes, and the last presence count reported for a
        /// player in a room is the number of its connections there.
        #[test]
        fn invariants_hold_after_every_change(ops in proptest::collection::vec(op(), 1..80)) {
            let conns = conn_ids();
            let mut registry = TestRegistry::new(2, 10);
            let mut reported: HashMap<(ChannelName, PlayerId), u32> = HashMap::new();
            for op in ops {
                let mut changes = Vec::new();
                let open_before: Vec<bool> = (0..3).map(|c| registry.is_open(&channel(c))).collect();
                match op {
                    Op::Connect { conn, player: p, hub } => {
                        let _ = registry.connect(conns[conn], player(p), None, hub, ());
                    }
                    Op::Disconnect { conn } => registry.disconnect(conns[conn], &mut changes),
                    Op::Join { conn, channel: c } => {
                        // Channel 2 keeps no presence.
                        registry.join(conns[conn], &channel(c), c != 2, &mut changes);
                    }
                    Op::Leave { conn, channel: c } => {
                        registry.leave(conns[conn], &channel(c), &mut changes)
                    }
                }
                if let Err(violation) = registry.check_invariants() {
                    prop_assert!(false, "{}", violation);
                }
                for (c, was_open) in open_before.into_iter().enumerate() {
                    let closed = changes.contains(&RoomChange::Closed(channel(c)));
                    let closes = was_open && !registry.is_open(&channel(c));
                    prop_assert_eq!(closed, closes, "room {}", c);
                }
                for change in changes {
                    if let RoomChange::Presence { channel, player, connections, .. } = change {
                        reported.insert((channel, player), connections);
                    }
                }
            }
            for ((channel, player), count) in reported {
                let actual = registry
                    .connections_of(&player)
                    .filter(|(conn, _)| registry.connection(*conn).is_some_and(|c| c.channels.contains(&channel)))
                    .count() as u32;
                prop_assert_eq!(count, actual, "{} in {}", player, channel);
            }
        }
    }
}
