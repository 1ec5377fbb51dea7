//! `WsSession`: one actix actor per WebSocket connection, and the logic of
//! that connection. The transport hands it whole messages and takes its
//! frames; the session parses, answers what it can itself (`ping`,
//! `refresh`, errors), forwards the rest to the actor that owns it, and
//! writes every reply. It holds no domain rules.
//!
//! - `mod.rs`: the actor: its state, connecting, the message stream,
//!   writing and closing.
//! - `heartbeat.rs`: heartbeats, the token's expiry and `refresh`.
//! - `dispatch.rs`: the rate limit, parsing, and routing each frame.
//! - `channels.rs`: subscribe, unsubscribe, publish, presence.
//! - `chat.rs`: chat, feedback and interactions, and the reply's pieces
//!   for a client that streams.
//! - `requests.rs`: v1.1 requests (assistant sessions).

mod channels;
mod chat;
mod dispatch;
mod heartbeat;
mod requests;

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use hearth_actors::chat_server::{Connect, ConnectRefused, Disconnect, Evict};
use hearth_actors::model::channel_name::ChannelName;
use hearth_actors::model::ids::{ConnId, SessionId};
use hearth_actors::model::time::Timestamp;
use hearth_actors::protocol::{
    ChatMessage, Close, EncodedFrame, Ending, ErrorFrame, MessageContent, MessageMetadata, Role,
    Safety, ServerFrame, WelcomeMetadata,
};
use hearth_actors::support::metrics::ActorKind;
use hearth_actors::support::rate_limit::TokenBucket;

use crate::auth::Identity;
use crate::state::AppState;
use crate::ws::inbound::{InboundError, Incoming};
use crate::ws::queue::OutboundQueue;
use crate::ws::worker::{self, LocalConn, Overflowed};

type Ctx = Context<WsSession>;

/// What the client asked for in the query string, and the agent of the
/// path it connected on.
#[derive(Debug, Clone, Default)]
pub struct ConnOptions {
    pub typing: bool,
    pub stream: bool,
    /// `/api/ws/guide` or `/api/ws/liaison/{pillar}`: the agent a session
    /// created on this connection gets unless it names one.
    pub agent: Option<std::sync::Arc<str>>,
}

/// The server's capabilities, announced in the welcome.
const FEATURES: &[&str] = &[
    "chat",
    "crisis_detection",
    "exercises",
    "feedback",
    "typing",
    "streaming",
    "refresh",
    "channels",
    "presence",
    "recovery",
    "requests",
    "assistant_sessions",
];

pub struct WsSession {
    conn: ConnId,
    identity: Identity,
    options: ConnOptions,
    state: Arc<AppState>,
    /// When the client's upgrade request arrived.
    opened_at: Instant,
    last_heard: Instant,
    /// The therapeutic session used when a frame names none.
    active_session: Option<SessionId>,
    registered: bool,
    /// Counted by the broker's cluster-wide per-player limit.
    admitted: bool,
    outbound: OutboundQueue,
    rate: TokenBucket,
    /// Messages refused by the rate limit since the last one accepted.
    limited_in_a_row: u32,
    /// Channels this connection is in, its personal channel included.
    subscriptions: Rc<RefCell<HashSet<ChannelName>>>,
    /// Fires when this connection's subscribe in flight is done: the next
    /// one waits for it, so that a connection has at most one subscribe at
    /// the broadcaster and its answers come in request order.
    subscribe_in_flight: Option<tokio::sync::oneshot::Receiver<()>>,
    expiry: Option<SpawnHandle>,
    /// Why the connection ended, for the disconnect log line.
    ending: Option<Ending>,
}

/// Enough about a frame to log it once its reply is written.
#[derive(Clone, Copy)]
struct FrameLog {
    kind: &'static str,
    bytes: usize,
    received: Instant,
}

impl WsSession {
    pub(super) fn new(
        identity: Identity,
        options: ConnOptions,
        state: Arc<AppState>,
        outbound: OutboundQueue,
        requested_at: Instant,
    ) -> Self {
        let now = Instant::now();
        let limits = &state.session.rate;
        let rate = TokenBucket::new(limits.burst, limits.per_second, now);
        WsSession {
            outbound,
            rate,
            limited_in_a_row: 0,
            conn: ConnId::generate(),
            identity,
            options,
            state,
            opened_at: requested_at,
            last_heard: now,
            active_session: None,
            registered: false,
            admitted: false,
            subscriptions: Rc::default(),
            subscribe_in_flight: None,
            expiry: None,
            ending: None,
        }
    }

    fn write(&mut self, ctx: &mut Ctx, frame: EncodedFrame) {
        match self.outbound.text(frame.into_inner()) {
            Ok(()) => self.state.metrics.message_out(),
            Err(_) => self.slow_consumer(ctx),
        }
    }

    /// The client is not reading: what it has not taken is dropped and the
    /// connection closes 4002, so its backlog cannot grow past the bound.
    fn slow_consumer(&mut self, ctx: &mut Ctx) {
        if self.ending.is_some() {
            return;
        }
        log::warn!(player_id:% = self.identity.player, conn_id:% = self.conn, backlog:% = self.outbound.backlog(); "ws_slow_consumer");
        self.state.metrics.slow_consumer_closed();
        self.ending = Some(Ending::Server(Close::SlowConsumer));
        self.outbound.close_with(Close::SlowConsumer, true);
        ctx.stop();
    }

    fn send(&mut self, ctx: &mut Ctx, frame: &ServerFrame) {
        self.write(ctx, EncodedFrame::encode(frame));
    }

    fn send_error(&mut self, ctx: &mut Ctx, error: ErrorFrame) {
        self.send(ctx, &ServerFrame::Error(error));
    }

    fn close(&mut self, ctx: &mut Ctx, close: Close) {
        if self.ending.is_none() {
            self.ending = Some(Ending::Server(close));
        }
        self.outbound.close_with(close, false);
        ctx.stop();
    }

    fn log_frame(&self, frame: FrameLog, outcome: &str) {
        log::info!(target: "hearth::frame", player_id:% = self.identity.player, conn_id:% = self.conn, type:% = frame.kind, bytes:% = frame.bytes, latency_us:% = frame.received.elapsed().as_micros(), outcome:%; "ws_frame");
    }

    fn send_welcome(&mut self, ctx: &mut Ctx) {
        let welcome = ChatMessage::new(
            Role::System,
            None,
            None,
            MessageContent::new(
                "Connected to therapeutic chat. You're safe here.",
                Vec::new(),
            ),
            MessageMetadata::Welcome(WelcomeMetadata {
                event: "connected",
                player_id: self.identity.player.clone(),
                connection_id: self.conn,
                server_time: Timestamp::now(),
                heartbeat_interval_s: self.state.session.heartbeat_interval.as_secs(),
                features: FEATURES.to_vec(),
                safety: Safety::default(),
            }),
        );
        self.send(ctx, &ServerFrame::Message(welcome));
        self.state
            .metrics
            .connection
            .welcomed_after(self.opened_at.elapsed());
    }
}

impl WsSession {
    /// In a cluster the per-player limit counts the player's connections on
    /// every node, which only the broker knows. When the broker cannot
    /// answer, the connection is let in on this node's count alone: chat
    /// and exercises do not need the broker, and an outage must not lock
    /// players out of them.
    fn admit_then_register(&mut self, ctx: &mut Ctx) {
        actix::fut::wrap_future::<_, Self>(self.state.gate.admit(&self.identity.player))
            .map(|answer, act, ctx| match answer {
                Ok(true) => {
                    act.admitted = true;
                    act.register(ctx);
                }
                Ok(false) => {
                    act.state.metrics.connection.refused("too_many_connections");
                    act.state.metrics.connection.refused("too_many_connections");
                    act.close(ctx, Close::TooManyConnections)
                }
                Err(err) => {
                    log::warn!(player_id:% = act.identity.player, conn_id:% = act.conn, error:% = err; "admission_unchecked");
                    act.register(ctx);
                }
            })
            .wait(ctx);
    }

    fn register(&mut self, ctx: &mut Ctx) {
        worker::register(
            self.conn,
            LocalConn {
                outbound: self.outbound.clone(),
                session: ctx.address().recipient(),
                wanted: self.subscriptions.clone(),
            },
        );
        let connect = Connect {
            conn: self.conn,
            player: self.identity.player.clone(),
            name: self.identity.name.clone(),
            hub: worker::this_thread_hub(&self.state.metrics),
            evict: ctx.address().recipient(),
        };
        // The welcome must be the first frame, so nothing else is handled
        // until the registry has answered.
        self.state
            .chat_server
            .send(connect)
            .into_actor(self)
            .map(|result, act, ctx| match result {
                Ok(Ok(())) => {
                    act.registered = true;
                    act.send_welcome(ctx);
                    act.join_personal_channel();
                }
                Ok(Err(ConnectRefused::TooManyForPlayer)) => {
                    act.close(ctx, Close::TooManyConnections)
                }
                Err(_) => act.close(ctx, Close::Internal),
            })
            .wait(ctx);
    }
}

impl Actor for WsSession {
    type Context = Ctx;

    fn started(&mut self, ctx: &mut Ctx) {
        self.state.metrics.connection_opened();
        log::info!(player_id:% = self.identity.player, conn_id:% = self.conn, typing:% = self.options.typing, stream:% = self.options.stream; "ws_connect");
        self.start_heartbeat(ctx);
        self.schedule_expiry(ctx);
        if self.state.cluster {
            self.admit_then_register(ctx);
        } else {
            self.register(ctx);
        }
    }

    fn stopped(&mut self, _: &mut Ctx) {
        let channels: Vec<ChannelName> = self.subscriptions.borrow().iter().cloned().collect();
        worker::unregister(self.conn, &channels);
        // Whatever is queued goes first; the close frame ends the connection.
        self.outbound.close(None, false);
        if self.admitted {
            self.state.gate.release(&self.identity.player);
        }
        if self.registered {
            self.state
                .chat_server
                .do_send(Disconnect { conn: self.conn });
        }
        let ending = self.ending.take().unwrap_or(Ending::Lost);
        let (code, reason) = (ending.code(), ending.reason());
        let lasted = self.opened_at.elapsed();
        if self.registered {
            self.state.metrics.connection.closed_after(lasted);
        }
        self.state.metrics.connection_closed(code);
        log::info!(
            player_id:% = self.identity.player,
            conn_id:% = self.conn,
            duration_ms:% = lasted.as_millis(),
            close_code:% = code,
            close_reason:? = reason;
            "ws_disconnect"
        );
    }
}

impl Handler<Overflowed> for WsSession {
    type Result = ();

    fn handle(&mut self, _: Overflowed, ctx: &mut Ctx) {
        let _timer = self.state.metrics.handling(ActorKind::Session);
        self.slow_consumer(ctx);
    }
}

impl Handler<Evict> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: Evict, ctx: &mut Ctx) {
        let _timer = self.state.metrics.handling(ActorKind::Session);
        self.close(ctx, msg.close);
    }
}

impl StreamHandler<Result<Incoming, InboundError>> for WsSession {
    fn handle(&mut self, item: Result<Incoming, InboundError>, ctx: &mut Ctx) {
        // Socket reads are this actor's work too; counted as queued and
        // handled at once so they never show as backlog.
        self.state.metrics.actor(ActorKind::Session).queued(1);
        let _timer = self.state.metrics.handling(ActorKind::Session);
        self.last_heard = Instant::now();
        let incoming = match item {
            Ok(incoming) => incoming,
            Err(InboundError::Refused { close, detail }) => {
                if close == Close::ProtocolError {
                    log::info!(player_id:% = self.identity.player, conn_id:% = self.conn, error:% = detail; "ws_protocol_error");
                }
                return self.close(ctx, close);
            }
            Err(InboundError::Lost(err)) => {
                // The peer went away without a close frame.
                log::debug!(conn_id:% = self.conn, error:% = err; "ws_io_error");
                self.ending.get_or_insert(Ending::Lost);
                return ctx.stop();
            }
        };
        match incoming {
            Incoming::Text(text) => self.on_text(&text, ctx),
            Incoming::Binary => self.on_binary(ctx),
            Incoming::Ping(payload) => {
                if self.outbound.pong(payload).is_err() {
                    self.slow_consumer(ctx);
                }
            }
            Incoming::Pong | Incoming::Fragment => {}
            Incoming::Close(reason) => {
                self.ending = Some(match &reason {
                    Some(reason) => Ending::Client {
                        code: u16::from(reason.code),
                        reason: reason.description.clone().unwrap_or_default(),
                    },
                    // The close frame carried no code (RFC 6455, 7.1.5).
                    None => Ending::Client {
                        code: 1005,
                        reason: String::new(),
                    },
                });
                self.outbound.close(reason, false);
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Ctx) {
        ctx.stop();
    }
}
