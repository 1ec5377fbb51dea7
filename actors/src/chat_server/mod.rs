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
//!
//! The bookkeeping is [`registry::Registry`], a plain struct; this actor
//! adds the mailboxes and tells the Broadcaster, through its outbound port
//! ([`RoomObserver`]), of presence changes and of rooms closing.

pub mod registry;

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::model::channel_name::ChannelName;
use crate::model::ids::{ConnId, PlayerId, SessionId};
use crate::protocol::{Close, EncodedFrame, ServerFrame};
use crate::support::metrics::{ActorKind, Metrics};

pub use registry::ConnectRefused;
use registry::{Registry, RoomChange};

/// What `ChatServer` asks of the hub of the worker thread a connection
/// lives on. Messages to one hub are handled in the order sent, which is
/// what keeps a subscriber's backlog ahead of live publications.
#[derive(Message, Debug)]
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
        /// Fired once the frames are queued and the memberships in place.
        done: Option<oneshot::Sender<()>>,
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

/// Asks a connection to close (server shutdown).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Evict {
    pub close: Close,
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

/// A session is gone: it leaves every room. Idempotent.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub conn: ConnId,
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
    /// Fired once the frames are in the connection's queue and it is in the
    /// rooms (or dropped, when the connection is gone).
    pub done: Option<oneshot::Sender<()>>,
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

/// ChatServer's outbound port: what it tells the layer above (the
/// Broadcaster) about rooms, in the order it happened. Messages to one
/// actor through several recipients keep their order, so a `LeaveCluster`
/// arrives behind every presence change sent before it.
pub struct RoomObserver {
    pub presence: Recipient<PresenceChanged>,
    pub rooms: Recipient<RoomsChanged>,
    pub departure: Recipient<LeaveCluster>,
}

/// Out: how many of this node's connections of `player` are now in
/// `channel` (a presence channel).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct PresenceChanged {
    pub channel: ChannelName,
    pub player: PlayerId,
    pub name: Option<String>,
    pub connections: u32,
}

/// Out: what decides whether this node still listens to a channel's live
/// events.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum RoomsChanged {
    /// The channel's room lost its last connection.
    Closed(ChannelName),
    /// A `JoinChannels` was applied; for each channel, whether its room is
    /// open now.
    JoinsDone(Vec<(ChannelName, bool)>),
}

/// How ChatServer reaches one connection: its worker's hub, and its
/// session for an eviction.
struct Links {
    hub: Recipient<HubCommand>,
    evict: Recipient<Evict>,
}

pub struct ChatServer {
    registry: Registry<Links>,
    /// Every worker thread's hub, by id: a room knows only the ids.
    hubs: HashMap<usize, Recipient<HubCommand>>,
    observer: RoomObserver,
    metrics: Arc<Metrics>,
}

/// Players whose active session is remembered while they are away.
const MAX_REMEMBERED_SESSIONS: usize = 100_000;

impl ChatServer {
    pub fn new(
        max_connections_per_player: usize,
        observer: RoomObserver,
        metrics: Arc<Metrics>,
    ) -> Self {
        ChatServer {
            registry: Registry::new(max_connections_per_player, MAX_REMEMBERED_SESSIONS),
            hubs: HashMap::new(),
            observer,
            metrics,
        }
    }

    /// After every change to the registry: its sizes go to the metrics
    /// (so a scrape asks nothing of this actor), and debug builds check
    /// its invariants.
    fn registry_changed(&self) {
        self.metrics.set_registry_sizes(self.registry.sizes());
        if cfg!(debug_assertions) {
            if let Err(violation) = self.registry.check_invariants() {
                panic!("chat server registry: {violation}");
            }
        }
    }

    /// Passes the registry's room changes on to the observer.
    fn report(&self, changes: Vec<RoomChange>) {
        for change in changes {
            self.metrics.actor(ActorKind::Broadcaster).queued(1);
            match change {
                RoomChange::Presence {
                    channel,
                    player,
                    name,
                    connections,
                } => self.observer.presence.do_send(PresenceChanged {
                    channel,
                    player,
                    name,
                    connections,
                }),
                RoomChange::Closed(channel) => {
                    self.observer.rooms.do_send(RoomsChanged::Closed(channel))
                }
            }
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
        self.hubs
            .entry(msg.hub.id)
            .or_insert_with(|| msg.hub.recipient.clone());
        let links = Links {
            hub: msg.hub.recipient,
            evict: msg.evict,
        };
        let connected = self
            .registry
            .connect(msg.conn, msg.player, msg.name, msg.hub.id, links);
        self.registry_changed();
        connected
    }
}

impl Handler<Disconnect> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        let mut changes = Vec::new();
        self.registry.disconnect(msg.conn, &mut changes);
        self.report(changes);
        self.registry_changed();
    }
}

impl Handler<SendToPlayer> for ChatServer {
    type Result = usize;

    fn handle(&mut self, msg: SendToPlayer, _: &mut Context<Self>) -> usize {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        let frame = EncodedFrame::encode(&msg.frame);
        let mut reached = 0;
        for (conn, connection) in self.registry.connections_of(&msg.player) {
            if Some(conn) == msg.except {
                continue;
            }
            connection.link.hub.do_send(HubCommand::Deliver {
                conn,
                frames: vec![frame.clone()],
            });
            reached += 1;
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
        MessageResult(self.registry.resolve_session(msg.player, msg.requested))
    }
}

impl Handler<JoinChannels> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: JoinChannels, _: &mut Context<Self>) {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        let mut changes = Vec::new();
        let mut joined = Vec::with_capacity(msg.channels.len());
        for join in &msg.channels {
            if self
                .registry
                .join(msg.conn, &join.channel, join.presence, &mut changes)
            {
                joined.push((join.channel.clone(), join.watermark));
            }
        }
        self.report(changes);
        // A connection that closed while the broker answered gets nothing.
        if let Some(connection) = self.registry.connection(msg.conn) {
            self.metrics.actor(ActorKind::Session).queued(1);
            connection.link.hub.do_send(HubCommand::Join {
                conn: msg.conn,
                frames: msg.frames,
                channels: joined,
                done: msg.done,
            });
        }
        self.registry_changed();
        // Whatever happened, the broadcaster learns which rooms are open.
        let done = msg
            .channels
            .into_iter()
            .map(|join| {
                let open = self.registry.is_open(&join.channel);
                (join.channel, open)
            })
            .collect();
        self.metrics.actor(ActorKind::Broadcaster).queued(1);
        self.observer.rooms.do_send(RoomsChanged::JoinsDone(done));
    }
}

impl Handler<LeaveChannels> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: LeaveChannels, _: &mut Context<Self>) {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        let mut changes = Vec::new();
        for channel in &msg.channels {
            self.registry.leave(msg.conn, channel, &mut changes);
        }
        self.report(changes);
        self.registry_changed();
    }
}

impl Handler<FanOut> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: FanOut, _: &mut Context<Self>) {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        // One message per worker thread with members, whatever the room's size.
        let mut hubs = 0;
        for hub in self.registry.room_hubs(&msg.channel) {
            if let Some(hub) = self.hubs.get(&hub) {
                hub.do_send(HubCommand::FanOut {
                    channel: msg.channel.clone(),
                    offset: msg.offset,
                    frame: msg.frame.clone(),
                });
                hubs += 1;
            }
        }
        self.metrics.actor(ActorKind::Session).queued(hubs);
    }
}

impl Handler<EvictAll> for ChatServer {
    type Result = usize;

    fn handle(&mut self, msg: EvictAll, _: &mut Context<Self>) -> usize {
        let _timer = self.metrics.handling(ActorKind::ChatServer);
        for connection in self.registry.all_connections() {
            connection.link.evict.do_send(msg.evict);
        }
        self.registry.connection_count()
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
        let reply = self.observer.departure.send(msg);
        Box::pin(async move {
            let _ = reply.await;
        })
    }
}
