//! `WsSession`: one actix actor per WebSocket connection. It owns the
//! socket: it reassembles and parses frames, answers what it can itself
//! (`ping`, `refresh`, errors), forwards the rest to the actor that owns it,
//! and writes every reply. It holds no domain rules.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::{CloseCode, CloseReason, Item, Message, ProtocolError};
use actix_web::{web, HttpRequest, HttpResponse};
use hearth_actors::broadcaster::{
    AdmitConnection, GetPresence, Publish, ReleaseConnection, Subscribe, SubscribeRequest,
};
use hearth_actors::broker::{Payload, Publisher};
use hearth_actors::channels::{ChannelName, Refusal};
use hearth_actors::chat_processor::{HandleFeedback, HandleUserMessage};
use hearth_actors::chat_server::{
    Connect, ConnectRefused, Disconnect, Evict, LeaveChannels, ResolveSession,
};
use hearth_actors::exercise_flow::HandleInteraction;
use hearth_actors::ids::{ClientRef, ConnId, SessionId};
use hearth_actors::protocol::{
    parse_request, ChatMessage, Chunk, EncodedFrame, ErrorCode, ErrorFrame, MessageContent,
    MessageMetadata, Pong, PresenceResult, PublishResult, RefreshResult, Request, RequestBody,
    Response, ResponseResult, Role, Safety, ServerFrame, Timestamp, TypingStatus,
    UnsubscribeResult, WelcomeMetadata,
};

use hearth_actors::metrics::ActorKind;
use hearth_actors::rate_limit::TokenBucket;

use crate::auth::{AuthError, Identity};
use crate::local_hub::{self, LocalConn, Overflowed};
use crate::outbound::{self, OutboundLimits, OutboundQueue};
use crate::state::AppState;

type Ctx = Context<WsSession>;

/// Completes the upgrade and starts a session actor for it. The actor runs
/// on this worker's arbiter, apart from the socket: reads arrive as a
/// stream, writes go through a bounded [`Outbound`] queue.
pub fn serve(
    req: &HttpRequest,
    body: web::Payload,
    identity: Identity,
    options: ConnOptions,
    state: Arc<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let settings = &state.session;
    let (response, messages, outbound) =
        outbound::accept(req, body, settings.max_message_bytes, settings.outbound)?;
    WsSession::create(move |ctx| {
        ctx.add_stream(messages);
        WsSession::new(identity, options, state, outbound)
    });
    Ok(response)
}

/// Completes the upgrade and closes at once with `code` and `reason`,
/// sending nothing else (PROTOCOL.md section 2).
pub fn refuse(
    req: &HttpRequest,
    body: web::Payload,
    code: CloseCode,
    reason: &'static str,
) -> Result<HttpResponse, actix_web::Error> {
    let limits = OutboundLimits {
        max_frames: 1,
        max_bytes: 0,
    };
    let (response, _messages, outbound) = outbound::accept(req, body, 0, limits)?;
    outbound.close(
        Some(CloseReason {
            code,
            description: Some(reason.to_string()),
        }),
        false,
    );
    Ok(response)
}

/// What the client asked for in the query string.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnOptions {
    pub typing: bool,
    pub stream: bool,
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
];

pub struct WsSession {
    conn: ConnId,
    identity: Identity,
    options: ConnOptions,
    state: Arc<AppState>,
    opened_at: Instant,
    last_heard: Instant,
    /// The therapeutic session used when a frame names none.
    active_session: Option<SessionId>,
    partial: Option<PartialMessage>,
    registered: bool,
    /// Counted by the broker's cluster-wide per-player limit.
    admitted: bool,
    outbound: OutboundQueue,
    rate: TokenBucket,
    /// Messages refused by the rate limit since the last one accepted.
    limited_in_a_row: u32,
    /// Channels this connection is in, its personal channel included.
    subscriptions: Rc<RefCell<HashSet<ChannelName>>>,
    expiry: Option<SpawnHandle>,
    /// Why the connection ended, for the disconnect log line.
    close: Option<(u16, String)>,
}

/// A fragmented message being reassembled.
struct PartialMessage {
    is_text: bool,
    bytes: Vec<u8>,
}

/// Enough about a frame to log it once its reply is written.
#[derive(Clone, Copy)]
struct FrameLog {
    kind: &'static str,
    bytes: usize,
    received: Instant,
}

impl WsSession {
    fn new(
        identity: Identity,
        options: ConnOptions,
        state: Arc<AppState>,
        outbound: OutboundQueue,
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
            opened_at: now,
            last_heard: now,
            active_session: None,
            partial: None,
            registered: false,
            admitted: false,
            subscriptions: Rc::default(),
            expiry: None,
            close: None,
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
        if self.close.is_some() {
            return;
        }
        log::warn!(
            "ws_slow_consumer player_id={} conn_id={} backlog={}",
            self.identity.player,
            self.conn,
            self.outbound.backlog()
        );
        self.state.metrics.slow_consumer_closed();
        self.close = Some((4002, "slow consumer".to_string()));
        self.outbound.close(
            Some(CloseReason {
                code: CloseCode::Other(4002),
                description: Some("slow consumer".into()),
            }),
            true,
        );
        ctx.stop();
    }

    fn send(&mut self, ctx: &mut Ctx, frame: &ServerFrame) {
        self.write(ctx, EncodedFrame::encode(frame));
    }

    fn send_error(&mut self, ctx: &mut Ctx, error: ErrorFrame) {
        self.send(ctx, &ServerFrame::Error(error));
    }

    fn close(&mut self, ctx: &mut Ctx, code: CloseCode, reason: &str) {
        if self.close.is_none() {
            self.close = Some((u16::from(code), reason.to_string()));
        }
        self.outbound.close(
            Some(CloseReason {
                code,
                description: Some(reason.to_string()),
            }),
            false,
        );
        ctx.stop();
    }

    fn log_frame(&self, frame: FrameLog, outcome: &str) {
        log::info!(
            target: "hearth::frame",
            "ws_frame player_id={} conn_id={} type={} bytes={} latency_us={} outcome={}",
            self.identity.player,
            self.conn,
            frame.kind,
            frame.bytes,
            frame.received.elapsed().as_micros(),
            outcome
        );
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
    }

    /// Every connection is in its player's `user:<player>` channel: that is
    /// how a broadcast to the player reaches it.
    fn join_personal_channel(&mut self) {
        let channel = ChannelName::personal(&self.identity.player);
        self.subscriptions.borrow_mut().insert(channel.clone());
        self.state.broadcaster.do_send(Subscribe {
            conn: self.conn,
            requests: vec![SubscribeRequest {
                channel,
                recover: None,
            }],
            refused: BTreeMap::new(),
            reply_to: None,
            reply_to_client: false,
        });
    }

    /// Pings every heartbeat interval and closes a silent connection. The
    /// first ping comes after a random part of the interval, so that
    /// connections opened together do not all ping at once.
    fn start_heartbeat(&self, ctx: &mut Ctx) {
        let interval = self.state.session.heartbeat_interval;
        let spread = u64::try_from(interval.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| u64::from(since.subsec_nanos()));
        ctx.run_later(Duration::from_nanos(nanos % spread), move |act, ctx| {
            act.heartbeat(ctx);
            ctx.run_interval(interval, |act, ctx| act.heartbeat(ctx));
        });
    }

    fn heartbeat(&mut self, ctx: &mut Ctx) {
        if self.last_heard.elapsed() > self.state.session.client_timeout {
            log::info!(
                "ws_idle_timeout player_id={} conn_id={} silent_ms={}",
                self.identity.player,
                self.conn,
                self.last_heard.elapsed().as_millis()
            );
            self.close(ctx, CloseCode::Normal, "idle timeout");
        } else if self.outbound.ping().is_err() {
            self.slow_consumer(ctx);
        }
    }

    /// Closes with 4001 when the token's `exp` (plus the leeway that let it
    /// in) passes, unless a `refresh` replaced the timer first.
    fn schedule_expiry(&mut self, ctx: &mut Ctx) {
        if let Some(previous) = self.expiry.take() {
            ctx.cancel_future(previous);
        }
        let now = jsonwebtoken::get_current_timestamp();
        let left = Duration::from_secs(self.identity.expires_at.saturating_sub(now))
            + self.state.session.auth_leeway;
        self.expiry = Some(ctx.run_later(left, |act, ctx| {
            log::info!(
                "ws_token_expired player_id={} conn_id={}",
                act.identity.player,
                act.conn
            );
            act.send_error(
                ctx,
                ErrorFrame::new(
                    ErrorCode::TokenExpired,
                    "token expired; refresh it and reconnect",
                ),
            );
            act.close(ctx, CloseCode::Other(4001), "token expired");
        }));
    }

    /// Runs `then` with the therapeutic session a frame belongs to: the one
    /// it names, or the player's active one (asked of `ChatServer` once per
    /// connection, then remembered here).
    fn with_session<F>(&mut self, requested: Option<SessionId>, ctx: &mut Ctx, then: F)
    where
        F: FnOnce(&mut Self, &mut Ctx, SessionId) + 'static,
    {
        let known = match requested {
            Some(requested) if self.active_session.as_ref() == Some(&requested) => Some(requested),
            Some(requested) => {
                self.state.chat_server.do_send(ResolveSession {
                    player: self.identity.player.clone(),
                    requested: Some(requested.clone()),
                });
                self.active_session = Some(requested.clone());
                Some(requested)
            }
            None => self.active_session.clone(),
        };
        if let Some(session) = known {
            then(self, ctx, session);
            return;
        }
        let resolve = ResolveSession {
            player: self.identity.player.clone(),
            requested: None,
        };
        self.state
            .chat_server
            .send(resolve)
            .into_actor(self)
            .map(|resolved, act, ctx| match resolved {
                Ok(session) => {
                    act.active_session = Some(session.clone());
                    then(act, ctx, session);
                }
                Err(_) => act.send_error(
                    ctx,
                    ErrorFrame::new(ErrorCode::Internal, "the session registry is unavailable"),
                ),
            })
            .spawn(ctx);
    }

    /// Applies the per-connection rate limit to one client message: true
    /// when it may be handled. A refused one gets `rate_limited`; a run of
    /// them closes the connection 1008.
    fn admit(&mut self, ctx: &mut Ctx) -> bool {
        self.state.metrics.message_in();
        match self.rate.try_take(Instant::now()) {
            Ok(()) => {
                self.limited_in_a_row = 0;
                true
            }
            Err(wait) => {
                self.limited_in_a_row += 1;
                self.state.metrics.rate_limited();
                if self.limited_in_a_row >= self.state.session.rate.close_after {
                    log::warn!(
                        "ws_rate_limit_close player_id={} conn_id={} refused_in_a_row={}",
                        self.identity.player,
                        self.conn,
                        self.limited_in_a_row
                    );
                    self.close(ctx, CloseCode::Policy, "rate limit exceeded");
                } else {
                    let retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
                    let error = ErrorFrame {
                        retry_after_ms: Some(retry_after_ms),
                        ..ErrorFrame::new(ErrorCode::RateLimited, "too many messages; slow down")
                    };
                    self.send_error(ctx, error);
                }
                false
            }
        }
    }

    fn on_text(&mut self, text: &str, ctx: &mut Ctx) {
        let received = Instant::now();
        if !self.admit(ctx) {
            return;
        }
        let request = match parse_request(text, &self.state.session.request_limits) {
            Ok(request) => request,
            Err(error) => {
                let frame = FrameLog {
                    kind: "invalid",
                    bytes: text.len(),
                    received,
                };
                self.send_error(ctx, error);
                self.log_frame(frame, "error");
                return;
            }
        };
        let frame = FrameLog {
            kind: request.body.kind(),
            bytes: text.len(),
            received,
        };
        self.dispatch(request, frame, ctx);
    }

    fn dispatch(&mut self, request: Request, frame: FrameLog, ctx: &mut Ctx) {
        let reply_to = request.reply_to;
        match request.body {
            RequestBody::Ping => {
                self.send(ctx, &ServerFrame::Pong(Pong { reply_to }));
                self.log_frame(frame, "ok");
            }
            RequestBody::UserMessage(message) => {
                let text = message.content.text;
                self.with_session(message.session_id, ctx, move |act, ctx, session| {
                    act.chat(session, text, reply_to, frame, ctx)
                });
            }
            RequestBody::Feedback(feedback) => {
                self.with_session(feedback.session_id, ctx, move |act, ctx, session| {
                    let ask = HandleFeedback {
                        player: act.identity.player.clone(),
                        session_id: session,
                        rating: feedback.content.rating,
                        text: feedback.content.text,
                        reply_to: reply_to.clone(),
                    };
                    local_hub::chat_processor(&act.state.chat)
                        .send(ask)
                        .into_actor(act)
                        .map(move |result, act, ctx| {
                            act.reply_with(ctx, result.map(Ok), reply_to, frame)
                        })
                        .spawn(ctx);
                });
            }
            RequestBody::Interaction(interaction) => {
                self.with_session(interaction.session_id, ctx, move |act, ctx, session| {
                    let ask = HandleInteraction {
                        player: act.identity.player.clone(),
                        conn: act.conn,
                        session_id: session,
                        button_id: interaction.content.id,
                        reply_to: reply_to.clone(),
                    };
                    act.state
                        .exercise_flow
                        .send(ask)
                        .into_actor(act)
                        .map(move |result, act, ctx| {
                            let result = result.map(|flow| flow.map_err(|err| err.to_string()));
                            act.reply_with(ctx, result, reply_to, frame)
                        })
                        .spawn(ctx);
                });
            }
            RequestBody::Refresh(refresh) => {
                let outcome = self.refresh(&refresh.token, ctx);
                let ok = outcome.is_ok();
                let frame_out = match outcome {
                    Ok(result) => ServerFrame::Response(Response {
                        reply_to,
                        result: ResponseResult::Refreshed(result),
                    }),
                    Err(error) => ServerFrame::Error(error.replying_to(reply_to)),
                };
                self.send(ctx, &frame_out);
                self.log_frame(frame, if ok { "ok" } else { "error" });
            }
            RequestBody::Subscribe(subscribe) => {
                self.subscribe(subscribe, reply_to, ctx);
                self.log_frame(frame, "ok");
            }
            RequestBody::Unsubscribe(unsubscribe) => {
                let channels = self.unsubscribe(&unsubscribe.channels);
                let result = ResponseResult::Unsubscribed(UnsubscribeResult { channels });
                self.send(ctx, &ServerFrame::Response(Response { reply_to, result }));
                self.log_frame(frame, "ok");
            }
            RequestBody::Publish(publish) => self.publish(publish, reply_to, frame, ctx),
            RequestBody::Presence(query) => self.presence(&query.channel, reply_to, frame, ctx),
        }
    }

    /// Checks what depends on this connection (name, permission, the
    /// subscription limit), then hands the allowed channels to the
    /// broadcaster, whose single reply arrives through this thread's hub.
    fn subscribe(
        &mut self,
        request: hearth_actors::protocol::Subscribe,
        reply_to: Option<ClientRef>,
        ctx: &mut Ctx,
    ) {
        let rules = &self.state.channel_rules;
        // One request may not name more channels than a connection may
        // hold (plus its own): the reply, refusals included, stays small.
        let most = rules.max_subscriptions_per_connection + 1;
        if request.channels.len() > most {
            let error = ErrorFrame::new(
                ErrorCode::LimitExceeded,
                format!("at most {most} channels in one subscribe"),
            );
            return self.send_error(ctx, error.replying_to(reply_to));
        }
        let player = &self.identity.player;
        let mut recover = request.recover.unwrap_or_default();
        let mut refused = BTreeMap::new();
        let mut requests = Vec::new();
        let subscriptions = self.subscriptions.borrow();
        let mut counted = subscriptions
            .iter()
            .filter(|c| rules.counts_against_limit(c, player))
            .count();
        let mut seen = HashSet::new();
        for name in request.channels {
            if !seen.insert(name.clone()) {
                continue;
            }
            let channel = match ChannelName::parse(&name) {
                Ok(channel) => channel,
                Err(err) => {
                    refused.insert(name, Refusal::new(ErrorCode::BadChannel, err.to_string()));
                    continue;
                }
            };
            if let Err(refusal) = rules.check_subscribe(&channel, player, &self.identity.channels) {
                refused.insert(name, refusal);
                continue;
            }
            let already = subscriptions.contains(&channel);
            if !already && rules.counts_against_limit(&channel, player) {
                if counted >= rules.max_subscriptions_per_connection {
                    refused.insert(
                        name,
                        Refusal::new(
                            ErrorCode::LimitExceeded,
                            format!(
                                "at most {} subscriptions per connection",
                                rules.max_subscriptions_per_connection
                            ),
                        ),
                    );
                    continue;
                }
                counted += 1;
            }
            // Re-subscribing reports the position; recovery applies to a new
            // subscription only, or it would repeat delivered publications.
            let recover = if already { None } else { recover.remove(&name) };
            requests.push(SubscribeRequest { channel, recover });
        }
        drop(subscriptions);
        if requests.is_empty() {
            let (code, message) = refused
                .values()
                .next()
                .map(|r| (r.code, r.message.clone()))
                .unwrap_or((ErrorCode::BadRequest, "channels must not be empty".into()));
            let error = ErrorFrame {
                refused: Some(refused).filter(|r| !r.is_empty()),
                ..ErrorFrame::new(code, message).replying_to(reply_to)
            };
            return self.send_error(ctx, error);
        }
        let mut subscriptions = self.subscriptions.borrow_mut();
        for request in &requests {
            subscriptions.insert(request.channel.clone());
        }
        drop(subscriptions);
        self.state.broadcaster.do_send(Subscribe {
            conn: self.conn,
            requests,
            refused,
            reply_to,
            reply_to_client: true,
        });
    }

    /// Leaves the named channels it is in (never its personal one) and
    /// returns them.
    fn unsubscribe(&mut self, names: &[String]) -> Vec<ChannelName> {
        let personal = ChannelName::personal(&self.identity.player);
        let mut subscriptions = self.subscriptions.borrow_mut();
        let left: Vec<ChannelName> = names
            .iter()
            .filter_map(|name| ChannelName::parse(name).ok())
            .filter(|channel| *channel != personal && subscriptions.remove(channel))
            .collect();
        drop(subscriptions);
        if !left.is_empty() {
            // Out of the local rooms before the reply is queued: nothing
            // of these channels follows it.
            local_hub::leave(self.conn, &left);
            self.state.chat_server.do_send(LeaveChannels {
                conn: self.conn,
                channels: left.clone(),
            });
        }
        left
    }

    fn publish(
        &mut self,
        publish: hearth_actors::protocol::Publish,
        reply_to: Option<ClientRef>,
        frame: FrameLog,
        ctx: &mut Ctx,
    ) {
        let checked = ChannelName::parse(&publish.channel)
            .map_err(|err| ErrorFrame::new(ErrorCode::BadChannel, err.to_string()))
            .and_then(|channel| {
                let member = self.subscriptions.borrow().contains(&channel);
                self.state
                    .channel_rules
                    .check_client_publish(&channel, member)
                    .map_err(|r| ErrorFrame::new(r.code, r.message))?;
                let data = Payload::from_value(&publish.data)
                    .map_err(|err| ErrorFrame::new(ErrorCode::BadRequest, err.to_string()))?;
                Ok((channel, data))
            });
        let (channel, data) = match checked {
            Ok(checked) => checked,
            Err(error) => {
                self.send_error(ctx, error.replying_to(reply_to));
                return self.log_frame(frame, "error");
            }
        };
        let ask = Publish {
            channel,
            publisher: Publisher::Player(self.identity.player.clone()),
            data,
        };
        self.state
            .broadcaster
            .send(ask)
            .into_actor(self)
            .map(move |result, act, ctx| {
                let reply = match result {
                    Ok(Ok(publication)) => ServerFrame::Response(Response {
                        reply_to,
                        result: ResponseResult::Published(PublishResult {
                            offset: publication.offset,
                        }),
                    }),
                    Ok(Err(err)) => ServerFrame::Error(
                        ErrorFrame::new(ErrorCode::Internal, err.to_string()).replying_to(reply_to),
                    ),
                    Err(_) => ServerFrame::Error(
                        ErrorFrame::new(ErrorCode::Internal, "publishing is unavailable")
                            .replying_to(reply_to),
                    ),
                };
                let ok = matches!(reply, ServerFrame::Response(_));
                act.send(ctx, &reply);
                act.log_frame(frame, if ok { "ok" } else { "error" });
            })
            // One publish at a time per connection: with a remote broker
            // the offsets are assigned there, and a player's messages must
            // keep the order they were sent in.
            .wait(ctx);
    }

    fn presence(
        &mut self,
        name: &str,
        reply_to: Option<ClientRef>,
        frame: FrameLog,
        ctx: &mut Ctx,
    ) {
        let rules = &self.state.channel_rules;
        let checked = ChannelName::parse(name)
            .map_err(|err| ErrorFrame::new(ErrorCode::BadChannel, err.to_string()))
            .and_then(|channel| {
                if !rules.for_channel(&channel).presence {
                    return Err(ErrorFrame::new(
                        ErrorCode::NotAvailable,
                        format!("{channel} keeps no presence"),
                    ));
                }
                rules
                    .check_subscribe(&channel, &self.identity.player, &self.identity.channels)
                    .map_err(|r| ErrorFrame::new(r.code, r.message))?;
                Ok(channel)
            });
        let channel = match checked {
            Ok(channel) => channel,
            Err(error) => {
                self.send_error(ctx, error.replying_to(reply_to));
                return self.log_frame(frame, "error");
            }
        };
        self.state
            .broadcaster
            .send(GetPresence { channel })
            .into_actor(self)
            .map(move |result, act, ctx| {
                let reply = match result {
                    Ok(Ok(players)) => ServerFrame::Response(Response {
                        reply_to,
                        result: ResponseResult::Presence(PresenceResult { players }),
                    }),
                    _ => ServerFrame::Error(
                        ErrorFrame::new(ErrorCode::Internal, "presence is unavailable")
                            .replying_to(reply_to),
                    ),
                };
                act.send(ctx, &reply);
                act.log_frame(frame, "ok");
            })
            .spawn(ctx);
    }

    fn chat(
        &mut self,
        session: SessionId,
        text: String,
        reply_to: Option<ClientRef>,
        frame: FrameLog,
        ctx: &mut Ctx,
    ) {
        let typing = self.options.typing;
        if typing {
            let start =
                ChatMessage::typing(TypingStatus::Start, Some(session.clone()), reply_to.clone());
            self.send(ctx, &ServerFrame::Message(start));
        }
        let ask = HandleUserMessage {
            player: self.identity.player.clone(),
            session_id: session.clone(),
            text,
            reply_to: reply_to.clone(),
        };
        local_hub::chat_processor(&self.state.chat)
            .send(ask)
            .into_actor(self)
            .map(move |result, act, ctx| {
                if let Ok(message) = &result {
                    if act.options.stream {
                        act.send_chunks(ctx, message);
                    }
                }
                act.reply_with(ctx, result.map(Ok), reply_to.clone(), frame);
                if typing {
                    let stop = ChatMessage::typing(TypingStatus::Stop, Some(session), reply_to);
                    act.send(ctx, &ServerFrame::Message(stop));
                }
            })
            .spawn(ctx);
    }

    /// Writes an actor's answer, or an `internal` error when the actor
    /// failed or is gone.
    fn reply_with(
        &mut self,
        ctx: &mut Ctx,
        result: Result<Result<ChatMessage, String>, MailboxError>,
        reply_to: Option<ClientRef>,
        frame: FrameLog,
    ) {
        let failure = match result {
            Ok(Ok(message)) => {
                self.send(ctx, &ServerFrame::Message(message));
                self.log_frame(frame, "ok");
                return;
            }
            Ok(Err(why)) => why,
            Err(err) => {
                log::error!(
                    "actor_unavailable player_id={} conn_id={} type={} error={err}",
                    self.identity.player,
                    self.conn,
                    frame.kind
                );
                "the server could not handle this request".to_string()
            }
        };
        self.send_error(
            ctx,
            ErrorFrame::new(ErrorCode::Internal, failure).replying_to(reply_to),
        );
        self.log_frame(frame, "error");
    }

    /// Streams the reply text as chunks whose concatenation is the full
    /// text, one sentence each (section 4.5).
    fn send_chunks(&mut self, ctx: &mut Ctx, message: &ChatMessage) {
        let Some(text) = message.text() else {
            return;
        };
        let pieces = sentence_pieces(text);
        let last = pieces.len().saturating_sub(1);
        for (index, piece) in pieces.into_iter().enumerate() {
            let chunk = Chunk {
                message_id: message.id,
                reply_to: message.reply_to.clone(),
                index: u32::try_from(index).unwrap_or(u32::MAX),
                text: piece.to_string(),
                is_final: index == last,
            };
            self.send(ctx, &ServerFrame::Chunk(chunk));
        }
    }

    fn refresh(&mut self, token: &str, ctx: &mut Ctx) -> Result<RefreshResult, ErrorFrame> {
        let identity = self.state.auth.verify(Some(token)).map_err(|err| {
            let message = match err {
                AuthError::Expired => "the new token has expired",
                _ => "the new token is invalid",
            };
            ErrorFrame::new(ErrorCode::BadRequest, message)
        })?;
        if identity.player != self.identity.player {
            log::warn!(
                "ws_refresh_refused player_id={} conn_id={} reason=other_player",
                self.identity.player,
                self.conn
            );
            return Err(ErrorFrame::new(
                ErrorCode::Forbidden,
                "a refresh token must be for the same player",
            ));
        }
        self.identity = identity;
        self.schedule_expiry(ctx);
        let expires_at = i64::try_from(self.identity.expires_at)
            .ok()
            .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
            .map(Timestamp)
            .unwrap_or_else(Timestamp::now);
        Ok(RefreshResult { expires_at })
    }

    fn on_fragment(&mut self, item: Item, ctx: &mut Ctx) {
        let (first, is_text, bytes) = match item {
            Item::FirstText(bytes) => (true, true, bytes),
            Item::FirstBinary(bytes) => (true, false, bytes),
            Item::Continue(_) | Item::Last(_) if self.partial.is_none() => {
                return self.close(
                    ctx,
                    CloseCode::Protocol,
                    "continuation without a first frame",
                );
            }
            Item::Continue(bytes) => (false, false, bytes),
            Item::Last(bytes) => {
                let Some(mut partial) = self.partial.take() else {
                    return;
                };
                if partial.bytes.len() + bytes.len() > self.state.session.max_message_bytes {
                    return self.close(ctx, CloseCode::Size, "message too big");
                }
                partial.bytes.extend_from_slice(&bytes);
                return self.on_message(partial, ctx);
            }
        };
        if first {
            if self.partial.is_some() {
                return self.close(
                    ctx,
                    CloseCode::Protocol,
                    "new message inside a fragmented one",
                );
            }
            self.partial = Some(PartialMessage {
                is_text,
                bytes: Vec::with_capacity(bytes.len() * 2),
            });
        }
        let limit = self.state.session.max_message_bytes;
        let Some(partial) = self.partial.as_mut() else {
            return;
        };
        if partial.bytes.len() + bytes.len() > limit {
            return self.close(ctx, CloseCode::Size, "message too big");
        }
        partial.bytes.extend_from_slice(&bytes);
    }

    fn on_message(&mut self, message: PartialMessage, ctx: &mut Ctx) {
        if !message.is_text {
            return self.on_binary(ctx);
        }
        match std::str::from_utf8(&message.bytes) {
            Ok(text) => self.on_text(text, ctx),
            Err(_) => self.close(ctx, CloseCode::Invalid, "invalid utf-8"),
        }
    }

    fn on_binary(&mut self, ctx: &mut Ctx) {
        if !self.admit(ctx) {
            return;
        }
        self.send_error(
            ctx,
            ErrorFrame::new(
                ErrorCode::UnsupportedFrame,
                "binary frames are not supported; send JSON text frames",
            ),
        );
    }
}

/// Splits after each sentence end (". ", "! ", "? "), keeping every byte.
fn sentence_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (index, byte) in bytes.iter().enumerate() {
        let ends_sentence = matches!(byte, b'.' | b'!' | b'?')
            && bytes.get(index + 1) == Some(&b' ')
            && index + 2 < bytes.len();
        if ends_sentence {
            pieces.push(&text[start..index + 2]);
            start = index + 2;
        }
    }
    if start < text.len() || pieces.is_empty() {
        pieces.push(&text[start..]);
    }
    pieces
}

impl WsSession {
    /// In a cluster the per-player limit counts the player's connections on
    /// every node, which only the broker knows. When the broker cannot
    /// answer, the connection is let in on this node's count alone: chat
    /// and exercises do not need the broker, and an outage must not lock
    /// players out of them.
    fn admit_then_register(&mut self, ctx: &mut Ctx) {
        let admit = AdmitConnection {
            player: self.identity.player.clone(),
        };
        self.state
            .broadcaster
            .send(admit)
            .into_actor(self)
            .map(|answer, act, ctx| match answer {
                Ok(Ok(true)) => {
                    act.admitted = true;
                    act.register(ctx);
                }
                Ok(Ok(false)) => act.close(ctx, CloseCode::Policy, "too many connections"),
                Ok(Err(err)) => {
                    log::warn!(
                        "admission_unchecked player_id={} conn_id={} error={err}",
                        act.identity.player,
                        act.conn
                    );
                    act.register(ctx);
                }
                Err(_) => act.close(ctx, CloseCode::Error, "internal error"),
            })
            .wait(ctx);
    }

    fn register(&mut self, ctx: &mut Ctx) {
        local_hub::register(
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
            hub: local_hub::this_thread_hub(&self.state.metrics),
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
                    act.close(ctx, CloseCode::Policy, "too many connections")
                }
                Err(_) => act.close(ctx, CloseCode::Error, "internal error"),
            })
            .wait(ctx);
    }
}

impl Actor for WsSession {
    type Context = Ctx;

    fn started(&mut self, ctx: &mut Ctx) {
        self.state.metrics.connection_opened();
        log::info!(
            "ws_connect player_id={} conn_id={} typing={} stream={}",
            self.identity.player,
            self.conn,
            self.options.typing,
            self.options.stream
        );
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
        local_hub::unregister(self.conn, &channels);
        // Whatever is queued goes first; the close frame ends the connection.
        self.outbound.close(None, false);
        if self.admitted {
            self.state.broadcaster.do_send(ReleaseConnection {
                player: self.identity.player.clone(),
            });
        }
        if self.registered {
            self.state.chat_server.do_send(Disconnect {
                conn: self.conn,
                player: self.identity.player.clone(),
            });
        }
        let (code, reason) = self
            .close
            .take()
            .unwrap_or((1006, "connection lost".to_string()));
        self.state.metrics.connection_closed(code);
        log::info!(
            "ws_disconnect player_id={} conn_id={} duration_ms={} close_code={} close_reason={:?}",
            self.identity.player,
            self.conn,
            self.opened_at.elapsed().as_millis(),
            code,
            reason
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
        self.close(ctx, CloseCode::Other(msg.code), &msg.reason);
    }
}

impl StreamHandler<Result<Message, ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<Message, ProtocolError>, ctx: &mut Ctx) {
        // Socket reads are this actor's work too; counted as queued and
        // handled at once so they never show as backlog.
        self.state.metrics.actor(ActorKind::Session).queued(1);
        let _timer = self.state.metrics.handling(ActorKind::Session);
        self.last_heard = Instant::now();
        let message = match item {
            Ok(message) => message,
            Err(ProtocolError::Overflow) => {
                return self.close(ctx, CloseCode::Size, "message too big")
            }
            Err(ProtocolError::Io(err)) if err.kind() == std::io::ErrorKind::InvalidData => {
                return self.close(ctx, CloseCode::Invalid, "invalid utf-8")
            }
            Err(ProtocolError::Io(err)) => {
                // The peer went away without a close frame.
                log::debug!("ws_io_error conn_id={} error={err}", self.conn);
                self.close
                    .get_or_insert((1006, "connection lost".to_string()));
                return ctx.stop();
            }
            Err(err) => {
                log::info!(
                    "ws_protocol_error player_id={} conn_id={} error={err}",
                    self.identity.player,
                    self.conn
                );
                return self.close(ctx, CloseCode::Protocol, "protocol error");
            }
        };
        match message {
            Message::Text(text) => {
                if self.partial.is_some() {
                    return self.close(
                        ctx,
                        CloseCode::Protocol,
                        "new message inside a fragmented one",
                    );
                }
                self.on_text(&text, ctx)
            }
            Message::Binary(_) => self.on_binary(ctx),
            Message::Continuation(item) => self.on_fragment(item, ctx),
            Message::Ping(payload) => {
                if self.outbound.pong(payload).is_err() {
                    self.slow_consumer(ctx);
                }
            }
            Message::Pong(_) | Message::Nop => {}
            Message::Close(reason) => {
                let (code, text) = match &reason {
                    Some(reason) => (
                        u16::from(reason.code),
                        reason.description.clone().unwrap_or_default(),
                    ),
                    None => (1005, String::new()),
                };
                self.close = Some((code, format!("client: {text}")));
                self.outbound.close(reason, false);
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Ctx) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::sentence_pieces;

    #[test]
    fn sentence_pieces_keep_every_byte() {
        for text in [
            "One. Two! Three? Four",
            "No end",
            "Ends with a dot.",
            "",
            "Trailing space. ",
            "Émoji 😊. Next",
        ] {
            let pieces = sentence_pieces(text);
            assert_eq!(pieces.concat(), text);
            assert!(!pieces.is_empty());
        }
        assert_eq!(sentence_pieces("A. B. C").len(), 3);
    }
}
