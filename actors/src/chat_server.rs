//! `ChatServer`: the registry of live connections. It knows which player owns
//! which connections and each player's active therapeutic session, and it
//! delivers frames to one connection or to all of a player's. It holds no
//! domain rules and never touches a socket: each connection is a
//! `Recipient<Deliver>`, and only the session actor turns that into bytes.

use std::collections::HashMap;

use actix::prelude::*;

use crate::ids::{ConnId, PlayerId, SessionId};
use crate::protocol::{EncodedFrame, ServerFrame};

/// A frame for one connection, already serialized so that fan-out to many
/// connections serializes once.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Deliver {
    pub frame: EncodedFrame,
}

/// A session announces itself. Refused when the player already has the
/// maximum number of connections.
#[derive(Message)]
#[rtype(result = "Result<(), ConnectRefused>")]
pub struct Connect {
    pub conn: ConnId,
    pub player: PlayerId,
    pub recipient: Recipient<Deliver>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectRefused {
    #[error("too many connections")]
    TooManyForPlayer,
}

/// A session is gone. Idempotent: a second `Disconnect` changes nothing.
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

/// Registry sizes, for metrics and for tests that check nothing leaked.
#[derive(Message, Debug)]
#[rtype(result = "RegistryStats")]
pub struct GetRegistryStats;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, MessageResponse)]
pub struct RegistryStats {
    pub players: usize,
    pub connections: usize,
}

pub struct ChatServer {
    connections: HashMap<ConnId, Connection>,
    players: HashMap<PlayerId, Vec<ConnId>>,
    active_sessions: HashMap<PlayerId, SessionId>,
    max_connections_per_player: usize,
    max_remembered_sessions: usize,
}

struct Connection {
    player: PlayerId,
    recipient: Recipient<Deliver>,
}

impl ChatServer {
    pub fn new(max_connections_per_player: usize) -> Self {
        ChatServer {
            connections: HashMap::new(),
            players: HashMap::new(),
            active_sessions: HashMap::new(),
            max_connections_per_player: max_connections_per_player.max(1),
            max_remembered_sessions: 100_000,
        }
    }

    /// Both indexes agree: every connection is listed under its player and
    /// no player entry is empty.
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
        }
    }
}

impl Actor for ChatServer {
    type Context = Context<Self>;
}

impl Handler<Connect> for ChatServer {
    type Result = Result<(), ConnectRefused>;

    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) -> Self::Result {
        let conns = self.players.entry(msg.player.clone()).or_default();
        if conns.len() >= self.max_connections_per_player {
            if conns.is_empty() {
                self.players.remove(&msg.player);
            }
            return Err(ConnectRefused::TooManyForPlayer);
        }
        conns.push(msg.conn);
        self.connections.insert(
            msg.conn,
            Connection {
                player: msg.player,
                recipient: msg.recipient,
            },
        );
        self.check_invariants();
        Ok(())
    }
}

impl Handler<Disconnect> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        if self.connections.remove(&msg.conn).is_none() {
            return;
        }
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
        let Some(conns) = self.players.get(&msg.player) else {
            return 0;
        };
        let frame = EncodedFrame::encode(&msg.frame);
        let mut reached = 0;
        for conn in conns.iter().filter(|conn| Some(**conn) != msg.except) {
            if let Some(connection) = self.connections.get(conn) {
                connection.recipient.do_send(Deliver {
                    frame: frame.clone(),
                });
                reached += 1;
            }
        }
        reached
    }
}

impl Handler<ResolveSession> for ChatServer {
    type Result = MessageResult<ResolveSession>;

    fn handle(&mut self, msg: ResolveSession, _: &mut Context<Self>) -> Self::Result {
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

impl Handler<GetRegistryStats> for ChatServer {
    type Result = RegistryStats;

    fn handle(&mut self, _: GetRegistryStats, _: &mut Context<Self>) -> RegistryStats {
        RegistryStats {
            players: self.players.len(),
            connections: self.connections.len(),
        }
    }
}
