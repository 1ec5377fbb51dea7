//! `Broadcaster`: channel semantics. It asks the broker for offsets,
//! history, recovery and presence, encodes each publication once, and has
//! `ChatServer` deliver it to the channel's members. Permission checks that
//! depend on the connection happen in the session before a request gets
//! here; this actor trusts the requests it receives.
//!
//! Ordering: `ChatServer` receives this actor's messages in the order they
//! were sent, so a subscriber's response and missed publications (sent as
//! one `JoinChannels`) and the live publications (`FanOut`) interleave
//! correctly; the watermark in `JoinChannels` drops a live publication the
//! backlog already carried. Subscribe handling is atomic (no other message
//! is handled while the broker answers), so no live publication can be
//! fanned out between reading history and joining.

mod frame_cache;

use frame_cache::{FrameCache, FRAME_CACHE_BYTES};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;

use crate::channels::broker::{Broker, BrokerError, BrokerEvent, BrokerSink, FromBroker};
use crate::channels::rules::ChannelRules;
use crate::channels::stream::{
    Payload, PresenceEntry, Publication, Publisher, RecoverFrom, Recovery,
};
use crate::chat_server::{
    ChatServer, FanOut, JoinChannel, JoinChannels, LeaveCluster, PresenceChanged, RoomObserver,
    RoomsChanged,
};
use crate::model::channel_name::ChannelName;
use crate::model::ids::{ClientRef, ConnId};
use crate::protocol::{
    ChannelEvent, ChannelPosition, EncodedFrame, ErrorCode, ErrorFrame, PresencePlayer, Refusal,
    Response, ResponseResult, ServerFrame, SubscribeResult,
};
use crate::support::metered::Metered;
use crate::support::metrics::{ActorKind, Metrics};

/// One channel of a `subscribe` that the session found allowed.
#[derive(Debug, Clone)]
pub struct SubscribeRequest {
    pub channel: ChannelName,
    pub recover: Option<RecoverFrom>,
}

/// Join channels and answer the client through `ChatServer`, so that the
/// response comes before the missed publications and those before live
/// ones. With `reply_to_client` false (the automatic personal channel)
/// nothing is sent to the client.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub conn: ConnId,
    pub requests: Vec<SubscribeRequest>,
    pub refused: BTreeMap<String, Refusal>,
    /// The first of `refused` in request order: what a subscribe that
    /// grants nothing answers with.
    pub first_refused: Option<Refusal>,
    pub reply_to: Option<ClientRef>,
    pub reply_to_client: bool,
    /// Fired once the connection is in the rooms: a reply waiting to
    /// publish into a channel its asker is joining waits for this.
    pub joined: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A publication from a client or the server API; answers with the
/// publication's offset and epoch.
#[derive(Message, Debug)]
#[rtype(result = "Result<Publication, BrokerError>")]
pub struct Publish {
    pub channel: ChannelName,
    pub publisher: Publisher,
    pub data: Payload,
}

#[derive(Message, Debug)]
#[rtype(result = "Result<Vec<PresenceEntry>, BrokerError>")]
pub struct GetPresence {
    pub channel: ChannelName,
}

pub struct Broadcaster {
    broker: Box<dyn Broker>,
    rules: Arc<ChannelRules>,
    chat_server: Metered<ChatServer>,
    metrics: Arc<Metrics>,
    /// Channels whose live events this node receives.
    watched: HashSet<ChannelName>,
    /// Joins sent to `ChatServer` and not yet applied, per channel: while
    /// any is in flight, a room that just closed is about to reopen.
    pending_joins: HashMap<ChannelName, u32>,
    /// Live publications of channels whose subscribes are still reading
    /// history. A subscribe no longer holds this actor while it waits for
    /// the broker; what is published meanwhile is fanned out to the room
    /// as usual and kept here too, so that the joining connections get it
    /// right after their backlog (see `finish_subscribe`).
    held: HashMap<ChannelName, Held>,
    /// Recent publications' frames, shared by the subscribes that recover
    /// them.
    frames: FrameCache,
}

/// What one channel's live publications were while subscribes to it were
/// reading history.
#[derive(Default)]
struct Held {
    /// Subscribes of this channel not finished yet.
    readers: u32,
    frames: Vec<(u64, EncodedFrame)>,
    /// More arrived than [`MAX_HELD`]: the joins of this round are refused
    /// (retry), since they could not be given every publication.
    overflowed: bool,
}

/// The most live publications kept for one channel while its subscribes
/// read history.
const MAX_HELD: usize = 10_000;

impl Broadcaster {
    pub fn new(
        broker: Box<dyn Broker>,
        rules: Arc<ChannelRules>,
        chat_server: Metered<ChatServer>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Broadcaster {
            broker,
            rules,
            chat_server,
            metrics,
            watched: HashSet::new(),
            pending_joins: HashMap::new(),
            held: HashMap::new(),
            frames: FrameCache::new(FRAME_CACHE_BYTES),
        }
    }

    /// One subscribe of `channel` finished reading: its held publications
    /// go once no other is reading.
    fn release_held(&mut self, channel: &ChannelName) {
        if let Some(held) = self.held.get_mut(channel) {
            held.readers = held.readers.saturating_sub(1);
            if held.readers == 0 {
                self.held.remove(channel);
            }
        }
    }

    /// The port through which `ChatServer` reports to a broadcaster at
    /// `addr`.
    pub fn observer(addr: &Addr<Broadcaster>) -> RoomObserver {
        RoomObserver {
            presence: addr.clone().recipient(),
            rooms: addr.clone().recipient(),
            departure: addr.clone().recipient(),
        }
    }

    fn unwatch(&mut self, channel: &ChannelName) {
        if self.watched.remove(channel) {
            self.broker.unwatch(channel);
        }
    }

    /// One pending join of `channel` is settled; with none left and the
    /// room closed, the node stops listening.
    fn join_settled(&mut self, channel: &ChannelName, room_open: bool) {
        self.release_pending(channel);
        if !room_open && !self.pending_joins.contains_key(channel) {
            self.unwatch(channel);
        }
    }

    fn release_pending(&mut self, channel: &ChannelName) {
        if let Some(count) = self.pending_joins.get_mut(channel) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.pending_joins.remove(channel);
            }
        }
    }

    fn event_frame(event: ChannelEvent) -> EncodedFrame {
        EncodedFrame::encode(&ServerFrame::Event(event))
    }

    /// Builds the client's one reply and the join, once every channel's
    /// recovery is known.
    fn finish_subscribe(
        &mut self,
        msg: Subscribe,
        outcomes: Vec<(SubscribeRequest, Result<Recovery, BrokerError>)>,
    ) {
        let mut refused = msg.refused;
        let mut positions = BTreeMap::new();
        let mut backlog: Vec<EncodedFrame> = Vec::new();
        let mut backlog_bytes = 0usize;
        let mut joins = Vec::new();
        // One request must not move an unbounded amount of history.
        let (max_publications, max_bytes) = (
            self.rules.recovery_max_publications,
            self.rules.recovery_max_bytes,
        );
        for (request, outcome) in outcomes {
            // Published while this subscribe read history: fanned out to
            // the room already, and owed to this connection after its
            // backlog.
            let held = self.held.get(&request.channel);
            let overflowed = held.is_some_and(|held| held.overflowed);
            let mut since_read: Vec<(u64, EncodedFrame)> =
                held.map(|held| held.frames.clone()).unwrap_or_default();
            self.release_held(&request.channel);
            let outcome = match outcome {
                Ok(_) if overflowed => Err(BrokerError::Unavailable(
                    "the channel was too busy to join".into(),
                )),
                other => other,
            };
            let mut recovery = match outcome {
                Ok(recovery) => recovery,
                Err(err) => {
                    log::warn!(channel:% = request.channel, error:% = err; "subscribe_failed");
                    // Not joined; whether others keep the room open is for
                    // ChatServer's next report to say.
                    self.release_pending(&request.channel);
                    refused.insert(
                        request.channel.to_string(),
                        Refusal::new(ErrorCode::Internal, "the broker is unavailable; retry"),
                    );
                    continue;
                }
            };
            let frames: Vec<EncodedFrame> = recovery
                .publications
                .drain(..)
                .map(|p| self.frames.frame_of(p))
                .collect();
            let bytes: usize = frames.iter().map(EncodedFrame::len).sum();
            let within = backlog.len() + frames.len() <= max_publications
                && backlog_bytes + bytes <= max_bytes;
            if within {
                backlog_bytes += bytes;
            } else {
                // Over the budget: this channel is not recovered, and says
                // so; the client falls back to reading state afresh.
                recovery.recovered = false;
            }
            let missed = if within { frames.len() } else { 0 };
            positions.insert(
                request.channel.clone(),
                ChannelPosition {
                    offset: recovery.position.offset,
                    epoch: recovery.position.epoch.clone(),
                    recovered: recovery.recovered,
                    missed,
                },
            );
            if within {
                backlog.extend(frames);
            }
            since_read.retain(|(offset, _)| *offset > recovery.position.offset);
            let watermark = since_read
                .last()
                .map_or(recovery.position.offset, |(offset, _)| *offset);
            backlog.extend(since_read.into_iter().map(|(_, frame)| frame));
            let presence = self.rules.for_channel(&request.channel).presence;
            joins.push(JoinChannel {
                channel: request.channel,
                watermark,
                presence,
            });
        }

        let mut frames = Vec::with_capacity(backlog.len() + 1);
        if msg.reply_to_client {
            let reply = if positions.is_empty() {
                let (code, message) = msg
                    .first_refused
                    .as_ref()
                    .or_else(|| refused.values().next())
                    .map(|r| (r.code, r.message.clone()))
                    .unwrap_or((ErrorCode::BadRequest, "no channel was given".into()));
                ServerFrame::Error(ErrorFrame {
                    refused: Some(refused),
                    ..ErrorFrame::new(code, message).replying_to(msg.reply_to)
                })
            } else {
                ServerFrame::Response(Response {
                    reply_to: msg.reply_to,
                    result: ResponseResult::Subscribed(SubscribeResult {
                        channels: positions,
                        refused,
                    }),
                })
            };
            frames.push(EncodedFrame::encode(&reply));
        }
        frames.extend(backlog);
        // Fired by the connection's hub once the frames are queued and the
        // memberships in place: whatever is published after that reaches
        // the room, and whatever the session sends after it comes after
        // this subscribe's answer.
        self.chat_server.do_send(JoinChannels {
            conn: msg.conn,
            frames,
            channels: joins,
            done: msg.joined,
        });
    }
}

impl Actor for Broadcaster {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let sink = BrokerSink::new(ctx.address().recipient(), self.metrics.clone());
        self.broker.set_sink(sink);
        self.broker.maintain(&self.rules);
        ctx.run_interval(self.broker.maintenance_interval(), |act, _| {
            act.broker.maintain(&act.rules)
        });
    }
}

impl Handler<Subscribe> for Broadcaster {
    /// Not atomic: while one subscribe waits for the broker, publishes,
    /// presence and other subscribes go on (live publications of its
    /// channels are held for it meanwhile).
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.metrics.handling(ActorKind::Broadcaster);
        // Listen first, read history second: a publication in between is
        // both in the backlog and live, and the watermark drops the repeat.
        let mut watches = Vec::new();
        for request in &msg.requests {
            *self
                .pending_joins
                .entry(request.channel.clone())
                .or_default() += 1;
            self.held
                .entry(request.channel.clone())
                .or_default()
                .readers += 1;
            if self.watched.insert(request.channel.clone()) {
                watches.push(self.broker.watch(&request.channel));
            }
        }
        let pending: Vec<_> = msg
            .requests
            .iter()
            .map(|request| {
                let rules = self.rules.for_channel(&request.channel).clone();
                // A channel that missed more than one subscribe may recover
                // is not read at all.
                let recovery = self.broker.recover(
                    &request.channel,
                    request.recover.as_ref(),
                    self.rules.recovery_max_publications,
                    &rules,
                );
                (request.clone(), recovery)
            })
            .collect();
        // Every watch at once, then every history read at once: a
        // subscribe naming many channels waits about two round trips to
        // Redis, not two per channel.
        let recoveries = async move {
            for watched in futures_util::future::join_all(watches).await {
                if let Err(err) = watched {
                    log::warn!(error:% = err; "watch_failed");
                }
            }
            let (requests, reads): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
            let outcomes = futures_util::future::join_all(reads).await;
            requests.into_iter().zip(outcomes).collect::<Vec<_>>()
        };
        Box::pin(
            recoveries
                .into_actor(self)
                .map(move |outcomes, act, _| act.finish_subscribe(msg, outcomes)),
        )
    }
}

impl Handler<Publish> for Broadcaster {
    type Result = ResponseFuture<Result<Publication, BrokerError>>;

    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.metrics.handling(ActorKind::Broadcaster);
        let rules = self.rules.for_channel(&msg.channel).clone();
        self.broker
            .publish(&msg.channel, msg.publisher, msg.data, &rules)
    }
}

impl Handler<GetPresence> for Broadcaster {
    type Result = ResponseFuture<Result<Vec<PresenceEntry>, BrokerError>>;

    fn handle(&mut self, msg: GetPresence, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.metrics.handling(ActorKind::Broadcaster);
        self.broker.presence(&msg.channel)
    }
}

impl Handler<PresenceChanged> for Broadcaster {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: PresenceChanged, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.metrics.handling(ActorKind::Broadcaster);
        let update = self.broker.set_presence(
            &msg.channel,
            &msg.player,
            msg.name.as_deref(),
            msg.connections,
        );
        AtomicResponse::new(Box::pin(update.into_actor(self).map(
            move |result, _, _| {
                if let Err(err) = result {
                    log::warn!(channel:% = msg.channel, player_id:% = msg.player, error:% = err; "presence_update_failed");
                }
            },
        )))
    }
}

impl Handler<FromBroker> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: FromBroker, _: &mut Context<Self>) {
        let _timer = self.metrics.handling(ActorKind::Broadcaster);
        let (channel, offset, event) = match msg.event {
            BrokerEvent::Publication(publication) => {
                self.metrics.published();
                (
                    publication.channel.clone(),
                    Some((publication.offset, publication.epoch.clone())),
                    ChannelEvent::publication(publication),
                )
            }
            BrokerEvent::Join { channel, player } => (
                channel.clone(),
                None,
                ChannelEvent::Join {
                    channel,
                    data: PresencePlayer { player_id: player },
                },
            ),
            BrokerEvent::Leave { channel, player } => (
                channel.clone(),
                None,
                ChannelEvent::Leave {
                    channel,
                    data: PresencePlayer { player_id: player },
                },
            ),
        };
        // Serialized once here; every member gets the same bytes.
        let frame = Self::event_frame(event);
        if let Some((offset, epoch)) = &offset {
            self.frames.keep(&channel, *offset, epoch, &frame);
        }
        if let (Some((offset, _)), Some(held)) = (&offset, self.held.get_mut(&channel)) {
            if held.frames.len() < MAX_HELD {
                held.frames.push((*offset, frame.clone()));
            } else if !held.overflowed {
                held.overflowed = true;
                log::warn!(channel:%; "subscribe_held_overflow");
            }
        }
        self.chat_server.do_send(FanOut {
            channel,
            offset: offset.map(|(offset, _)| offset),
            frame,
        });
    }
}

impl Handler<RoomsChanged> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: RoomsChanged, _: &mut Context<Self>) {
        let _timer = self.metrics.handling(ActorKind::Broadcaster);
        match msg {
            RoomsChanged::Closed(channel) => {
                if !self.pending_joins.contains_key(&channel) {
                    self.unwatch(&channel);
                }
            }
            RoomsChanged::JoinsDone(channels) => {
                for (channel, open) in channels {
                    self.join_settled(&channel, open);
                }
            }
        }
    }
}

impl Handler<LeaveCluster> for Broadcaster {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: LeaveCluster, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.metrics.handling(ActorKind::Broadcaster);
        let departure = self.broker.depart();
        Box::pin(async move {
            if let Err(err) = departure.await {
                log::warn!(error:% = err; "leave_cluster_failed");
            }
        })
    }
}
