//! `ChatServer`: the registry of live connections. It knows which player
//! owns which connections, each player's active therapeutic session, and
//! which connections are in which channel room; it delivers frames to one
//! connection, to all of a player's, or to a room. It holds no domain rules
//! and never touches a socket.
//!
//! Delivery goes through hubs: one per worker thread, which writes straight
//! into the queues of the connections living on that thread. A fan-out to
//! a room is one message per worker that has members in it, not one per
//! member; the frame is serialized once and shared by reference count.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;

use crate::broadcaster::{Broadcaster, PresenceChanged, RoomsChanged};
use crate::channels::ChannelName;
use crate::ids::{ConnId, PlayerId, SessionId};
use crate::metrics::{ActorKind, Metrics, RegistrySizes};
use crate::protocol::{EncodedFrame, ServerFrame};

/// What `ChatServer` asks of the hub of the worker thread a connection
/// lives on. Messages to one hub are handled in the order sent, which is
/// what keeps a subscriber's backlog ahead of live publications.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum HubCommand {
    /// Frames for one connection, in order.
    Deliver {
        conn: ConnId,
        frames: Vec<EncodedFrame>,
    },
    /// Frames for one connection (a subscribe reply and the publications it
    /// missed), then membership of `channels`: live publications at or
    /// below a channel's watermark were in the backlog and are skipped.
    Join {
        conn: ConnId,
        frames: Vec<EncodedFrame>,
        channels: Vec<(ChannelName, u64)>,
    },
    /// One frame for every member of the room on this hub's thread.
    FanOut {
        channel: ChannelName,
        offset: Option<u64>,
        frame: EncodedFrame,
    },
}

/// A worker thread's hub: its id and its mailbox.
#[derive(Clone)]
pub struct HubRef {
    pub id: usize,
    pub recipient: Recipient<HubCommand>,
}

/// Asks a connection to close with `code` and `reason` (server shutdown).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Evict {
    pub code: u16,
    pub reason: String,
}

/// A session announces itself. Refused when the player already has the
/// maximum number of connections.
#[derive(Message)]
#[rtype(result = "Result<(), ConnectRefused>")]
pub struct Connect {
    pub conn: ConnId,
    pub player: PlayerId,
    /// Display name from the token, shown in presence.
    pub name: Option<String>,
    pub hub: HubRef,
    pub evict: Recipient<Evict>,
}

/// Closes every connection with `evict`'s code and reason; answers how many
/// were asked.
#[derive(Message, Debug)]
#[rtype(result = "usize")]
pub struct EvictAll {
    pub evict: Evict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectRefused {
    #[error("too many connections")]
    TooManyForPlayer,
}

/// A session is gone: it leaves every room. Idempotent.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub conn: ConnId,
    pub player: PlayerId,
}

/// Every open connection of the player, but `except` (the connection the
/// news came from, which already has its own reply); answers how many were
/// reached.
#[derive(Message, Debug)]
#[rtype(result = "usize")]
pub struct SendToPlayer {
    pub player: PlayerId,
    pub frame: ServerFrame,
    pub except: Option<ConnId>,
}

/// Resolves the therapeutic session a frame belongs to: the one it names
/// (which then becomes the player's active session) or the player's active
/// one, created on first use.
#[derive(Message, Debug)]
#[rtype(result = "SessionId")]
pub struct ResolveSession {
    pub player: PlayerId,
    pub requested: Option<SessionId>,
}

/// From the broadcaster: deliver `frames` to `conn` (the subscribe reply,
/// then missed publications), then add it to the rooms. Live publications
/// at or below a room's `watermark` were in the backlog and are skipped.
/// A connection leaves rooms by `LeaveChannels` or `Disconnect`; its hub
/// has already stopped delivering to it by then.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct JoinChannels {
    pub conn: ConnId,
    pub frames: Vec<EncodedFrame>,
    pub channels: Vec<JoinChannel>,
}

#[derive(Debug, Clone)]
pub struct JoinChannel {
    pub channel: ChannelName,
    pub watermark: u64,
    /// Count this connection in the channel's presence.
    pub presence: bool,
}

#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct LeaveChannels {
    pub conn: ConnId,
    pub channels: Vec<ChannelName>,
}

/// One frame for every member of a room. `offset` is the publication's
/// offset; `None` for events without one (join, leave).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct FanOut {
    pub channel: ChannelName,
    pub offset: Option<u64>,
    pub frame: EncodedFrame,
}

/// Registry sizes, for metrics and for tests that check nothing leaked.
#[derive(Message, Debug)]
#[rtype(result = "RegistrySizes")]
pub struct GetRegistryStats;

pub struct ChatServer {
    connections: HashMap<ConnId, Connection>,
    players: HashMap<PlayerId, Vec<ConnId>>,
    rooms: HashMap<ChannelName, Room>,
    active_sessions: HashMap<PlayerId, SessionId>,
    /// Told of presence changes and of rooms opening and closing.
    broadcaster: Addr<Broadcaster>,
    metrics: Arc<Metrics>,
    max_connections_per_player: usize,
    max_remembered_sessions: usize,
}

struct Connection {
    player: PlayerId,
    name: Option<String>,
    hub: HubRef,
    evict: Recipient<Evict>,
    channels: HashSet<ChannelName>,
}

#[derive(Default)]
struct Room {
    /// Member connections and the hub each lives on.
    members: HashMap<ConnId, usize>,
    /// The hubs with members here, and how many each has.
    hubs: HashMap<usize, (Recipient<HubCommand>, u32)>,
    presence: bool,
    /// Connections per player, kept only for presence channels.
    players: HashMap<PlayerId, u32>,
}

impl ChatServer {
    pub fn new(
        max_connections_per_player: usize,
        broadcaster: Addr<Broadcaster>,
        metrics: Arc<Metrics>,
    ) -> Self {
        ChatServer {
            connections: HashMap::new(),
            players: HashMap::new(),
            rooms: HashMap::new(),
            active_sessions: HashMap::new(),
            broadcaster,
            metrics,
            max_connections_per_player: max_connections_per_player.max(1),
            max_remembered_sessions: 100_000,
        }
    }

    /// Both directions of each index agree, and no entry is empty.
    fn check_invariants(&self) {
        if cfg!(debug_assertions) {
            let listed: usize = self.players.values().map(Vec::len).sum();
            debug_assert_eq!(listed, self.connections.len());
            for (player, conns) in &self.players {
                debug_assert!(!conns.is_empty());
                for conn in conns {
                    debug_assert!(self
                        .connections
                        .get(conn)
                        .is_some_and(|c| &c.player == player));
                }
            }
            let memberships: usize = self.connections.values().map(|c| c.channels.len()).sum();
            let members: usize = self.rooms.values().map(|r| r.members.len()).sum();
            debug_assert_eq!(memberships, members);
            for (channel, room) in &self.rooms {
                debug_assert!(!room.members.is_empty());
                for conn in room.members.keys() {
                    debug_assert!(self
                        .connections
                        .get(conn)
                        .is_some_and(|c| c.channels.contains(channel)));
                }
            }
        }
    }

    fn leave(&mut self, conn: ConnId, channel: &ChannelName) {
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
            if let Some((_, count)) = room.hubs.get_mut(&hub) {
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
            if count == Some(0) {
                room.players.remove(&connection.player);
            }
            self.metrics.actor(ActorKind::Broadcaster).queued(1);
            self.broadcaster.do_send(PresenceChanged {
                channel: channel.clone(),
                player: connection.player.clone(),
                name: connection.name.clone(),
                connections: count.unwrap_or(0),
            });
        }
        if room.members.is_empty() {
            self.rooms.remove(channel);
            self.metrics.actor(ActorKind::Broadcaster).queued(1);
            self.broadcaster
                .do_send(RoomsChanged::Closed(channel.clone()));
        }
    }
}

impl Actor for ChatServer {
    type Context = Context<Self>;
}

impl Handler<Connect> for ChatServer {
    type Result = Result<(), ConnectRefused>;

    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        let conns = self.players.entry(msg.player.clone()).or_default();
        if conns.len() >= self.max_connections_per_player {
            return Err(ConnectRefused::TooManyForPlayer);
        }
        conns.push(msg.conn);
        self.connections.insert(
            msg.conn,
            Connection {
                player: msg.player,
                name: msg.name,
                hub: msg.hub,
                evict: msg.evict,
                channels: HashSet::new(),
            },
        );
        self.check_invariants();
        Ok(())
    }
}

impl Handler<Disconnect> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        let channels: Vec<ChannelName> = match self.connections.get(&msg.conn) {
            Some(connection) => connection.channels.iter().cloned().collect(),
            None => return,
        };
        for channel in &channels {
            self.leave(msg.conn, channel);
        }
        self.connections.remove(&msg.conn);
        if let Some(conns) = self.players.get_mut(&msg.player) {
            conns.retain(|conn| *conn != msg.conn);
            if conns.is_empty() {
                self.players.remove(&msg.player);
            }
        }
        self.check_invariants();
    }
}

impl Handler<SendToPlayer> for ChatServer {
    type Result = usize;

    fn handle(&mut self, msg: SendToPlayer, _: &mut Context<Self>) -> usize {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        let Some(conns) = self.players.get(&msg.player) else {
            return 0;
        };
        let frame = EncodedFrame::encode(&msg.frame);
        let mut reached = 0;
        for conn in conns.iter().filter(|conn| Some(**conn) != msg.except) {
            if let Some(connection) = self.connections.get(conn) {
                connection.hub.recipient.do_send(HubCommand::Deliver {
                    conn: *conn,
                    frames: vec![frame.clone()],
                });
                reached += 1;
            }
        }
        self.metrics
            .actor(ActorKind::Session)
            .queued(reached as u64);
        reached
    }
}

impl Handler<ResolveSession> for ChatServer {
    type Result = MessageResult<ResolveSession>;

    fn handle(&mut self, msg: ResolveSession, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        if !self.active_sessions.contains_key(&msg.player)
            && self.active_sessions.len() >= self.max_remembered_sessions
        {
            // Forget the sessions of players who are not connected; a client
            // that wants to continue one later names it.
            let players = &self.players;
            self.active_sessions
                .retain(|player, _| players.contains_key(player));
        }
        let session = match msg.requested {
            Some(requested) => {
                self.active_sessions.insert(msg.player, requested.clone());
                requested
            }
            None => self
                .active_sessions
                .entry(msg.player)
                .or_insert_with(SessionId::generate)
                .clone(),
        };
        MessageResult(session)
    }
}

impl Handler<JoinChannels> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: JoinChannels, _: &mut Context<Self>) {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        let requested: Vec<ChannelName> = msg.channels.iter().map(|j| j.channel.clone()).collect();
        self.join(msg);
        // Whatever happened, the broadcaster learns which rooms are open.
        let done = requested
            .into_iter()
            .map(|channel| {
                let open = self.rooms.contains_key(&channel);
                (channel, open)
            })
            .collect();
        self.metrics.actor(ActorKind::Broadcaster).queued(1);
        self.broadcaster.do_send(RoomsChanged::JoinsDone(done));
    }
}

impl ChatServer {
    fn join(&mut self, msg: JoinChannels) {
        let Some(connection) = self.connections.get_mut(&msg.conn) else {
            // The connection closed while the broker answered.
            return;
        };
        let mut joined = Vec::with_capacity(msg.channels.len());
        for join in msg.channels {
            if !connection.channels.insert(join.channel.clone()) {
                continue;
            }
            let room = self.rooms.entry(join.channel.clone()).or_default();
            room.presence = join.presence;
            room.members.insert(msg.conn, connection.hub.id);
            room.hubs
                .entry(connection.hub.id)
                .or_insert_with(|| (connection.hub.recipient.clone(), 0))
                .1 += 1;
            if join.presence {
                let count = room.players.entry(connection.player.clone()).or_default();
                *count += 1;
                self.metrics.actor(ActorKind::Broadcaster).queued(1);
                self.broadcaster.do_send(PresenceChanged {
                    channel: join.channel.clone(),
                    player: connection.player.clone(),
                    name: connection.name.clone(),
                    connections: *count,
                });
            }
            joined.push((join.channel, join.watermark));
        }
        self.metrics.actor(ActorKind::Session).queued(1);
        connection.hub.recipient.do_send(HubCommand::Join {
            conn: msg.conn,
            frames: msg.frames,
            channels: joined,
        });
        self.check_invariants();
    }
}

impl Handler<LeaveChannels> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: LeaveChannels, _: &mut Context<Self>) {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        for channel in &msg.channels {
            self.leave(msg.conn, channel);
        }
        self.check_invariants();
    }
}

impl Handler<FanOut> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: FanOut, _: &mut Context<Self>) {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        let Some(room) = self.rooms.get(&msg.channel) else {
            return;
        };
        // One message per worker thread with members, whatever the room's size.
        for (hub, _) in room.hubs.values() {
            hub.do_send(HubCommand::FanOut {
                channel: msg.channel.clone(),
                offset: msg.offset,
                frame: msg.frame.clone(),
            });
        }
        self.metrics
            .actor(ActorKind::Session)
            .queued(room.hubs.len() as u64);
    }
}

impl Handler<EvictAll> for ChatServer {
    type Result = usize;

    fn handle(&mut self, msg: EvictAll, _: &mut Context<Self>) -> usize {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        for connection in self.connections.values() {
            connection.evict.do_send(msg.evict.clone());
        }
        self.connections.len()
    }
}

/// The node is stopping and its connections are gone: passed on to the
/// broadcaster behind every presence change this actor has sent, so the
/// broker takes the node out of the cluster after its last update.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct LeaveCluster;

impl Handler<LeaveCluster> for ChatServer {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: LeaveCluster, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        let reply = self.broadcaster.send(msg);
        Box::pin(async move {
            let _ = reply.await;
        })
    }
}

impl Handler<GetRegistryStats> for ChatServer {
    type Result = MessageResult<GetRegistryStats>;

    fn handle(&mut self, _: GetRegistryStats, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        MessageResult(RegistrySizes {
            players: self.players.len(),
            connections: self.connections.len(),
            channels: self.rooms.len(),
            subscriptions: self.rooms.values().map(|r| r.members.len()).sum(),
            presence_entries: self.rooms.values().map(|r| r.players.len()).sum(),
        })
    }
}
