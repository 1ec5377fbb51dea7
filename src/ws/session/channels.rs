//! Channels as one connection sees them: the automatic personal channel,
//! and `subscribe`, `unsubscribe`, `publish` and `presence` with the checks
//! that depend on the connection (name, permission, limits) before the
//! Broadcaster is asked.

use std::collections::{BTreeMap, HashSet};

use actix::prelude::*;
use hearth_actors::broadcaster::{GetPresence, Publish, Subscribe, SubscribeRequest};
use hearth_actors::channels::stream::{Payload, Publisher};
use hearth_actors::chat_processor::OwnedSessions;
use hearth_actors::chat_server::LeaveChannels;
use hearth_actors::model::channel_name::ChannelName;
use hearth_actors::model::ids::{ClientRef, SessionId};
use hearth_actors::protocol::{
    ErrorCode, ErrorFrame, PresenceResult, PublishResult, Refusal, Response, ResponseResult,
    ServerFrame,
};

use super::{Ctx, FrameLog, WsSession};
use crate::ws::worker;
use hearth_actors::channels::broker::BrokerError;

impl WsSession {
    /// Every connection is in its player's `user:<player>` channel: that is
    /// how a broadcast to the player reaches it.
    pub(super) fn join_personal_channel(&mut self) {
        self.join_quietly(ChannelName::personal(&self.identity.player), None);
    }

    /// Joins `channel` on the server's initiative, with no reply to the
    /// client; a channel it is in already is left as it is. `joined` fires
    /// once the connection is in the room (at once when it was already).
    pub(super) fn join_quietly(
        &mut self,
        channel: ChannelName,
        joined: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        if !self.subscriptions.borrow_mut().insert(channel.clone()) {
            if let Some(joined) = joined {
                let _ = joined.send(());
            }
            return;
        }
        self.state.broadcaster.do_send(Subscribe {
            conn: self.conn,
            requests: vec![SubscribeRequest {
                channel,
                recover: None,
            }],
            refused: BTreeMap::new(),
            first_refused: None,
            reply_to: None,
            reply_to_client: false,
            joined,
        });
    }

    /// Checks what depends on this connection (name, permission, the
    /// subscription limit), then hands the allowed channels to the
    /// broadcaster, whose single reply arrives through this thread's hub.
    pub(super) fn subscribe(
        &mut self,
        request: hearth_actors::protocol::Subscribe,
        reply_to: Option<ClientRef>,
        ctx: &mut Ctx,
    ) {
        if let Some(earlier) = self.subscribe_in_flight.take() {
            // The earlier one first; nothing else from this client is
            // handled meanwhile, as for any subscribe that must wait.
            return actix::fut::wrap_future::<_, Self>(earlier)
                .map(move |_, act, ctx| act.subscribe(request, reply_to, ctx))
                .wait(ctx);
        }
        if !self.charge_channels(request.channels.len(), &reply_to, ctx) {
            return;
        }
        // Channels only their owner may join (an assistant session's) are
        // checked against the conversation store first, unless this
        // connection is in them already.
        let rules = &self.state.channel_rules;
        let to_check: Vec<SessionId> = request
            .channels
            .iter()
            .filter_map(|name| ChannelName::parse(name).ok())
            .filter(|channel| {
                rules.needs_owner(channel) && !self.subscriptions.borrow().contains(channel)
            })
            .filter_map(|channel| channel.session_id())
            .take(rules.max_subscriptions_per_connection + 1)
            .collect();
        if to_check.is_empty() {
            return self.subscribe_checked(request, reply_to, &HashSet::new(), ctx);
        }
        let ask = OwnedSessions {
            player: self.identity.player.clone(),
            sessions: to_check,
        };
        worker::chat_processor(&self.state.chat)
            .send(ask)
            .into_actor(self)
            .map(move |owned, act, ctx| {
                let owned = owned.unwrap_or_default();
                act.subscribe_checked(request, reply_to, &owned, ctx)
            })
            // Frames after this subscribe are handled after it, as for any
            // other subscribe.
            .wait(ctx);
    }

    /// The rest of `subscribe`, once the sessions the player owns among
    /// those named are known.
    fn subscribe_checked(
        &mut self,
        request: hearth_actors::protocol::Subscribe,
        reply_to: Option<ClientRef>,
        owned: &HashSet<SessionId>,
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
        // The answer to a subscribe that grants nothing is the first
        // refusal in request order, which the map (by name) does not keep.
        let mut first_refused: Option<Refusal> = None;
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
                    refuse(
                        &mut refused,
                        &mut first_refused,
                        name,
                        Refusal::new(ErrorCode::BadChannel, err.to_string()),
                    );
                    continue;
                }
            };
            let already = subscriptions.contains(&channel);
            if rules.needs_owner(&channel) {
                let mine = already || channel.session_id().is_some_and(|id| owned.contains(&id));
                if !mine {
                    // Another player's session answers as a missing one.
                    let refusal = Refusal::new(ErrorCode::NotFound, "no such session");
                    refuse(&mut refused, &mut first_refused, name, refusal);
                    continue;
                }
            } else if let Err(denied) =
                rules.check_subscribe(&channel, player, &self.identity.channels)
            {
                refuse(
                    &mut refused,
                    &mut first_refused,
                    name,
                    Refusal::from(denied),
                );
                continue;
            }
            if !already && rules.counts_against_limit(&channel, player) {
                if counted >= rules.max_subscriptions_per_connection {
                    refuse(
                        &mut refused,
                        &mut first_refused,
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
            let (code, message) = first_refused
                .map(|r| (r.code, r.message))
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
        let (joined, done) = tokio::sync::oneshot::channel();
        self.subscribe_in_flight = Some(done);
        self.state.broadcaster.do_send(Subscribe {
            conn: self.conn,
            requests,
            refused,
            first_refused,
            reply_to,
            reply_to_client: true,
            joined: Some(joined),
        });
    }

    /// Leaves the named channels it is in (never its personal one) and
    /// returns them.
    pub(super) fn unsubscribe(&mut self, names: &[String]) -> Vec<ChannelName> {
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
            worker::leave(self.conn, &left);
            self.state.chat_server.do_send(LeaveChannels {
                conn: self.conn,
                channels: left.clone(),
            });
        }
        left
    }

    pub(super) fn publish(
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
                    .map_err(ErrorFrame::from)?;
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
                    Ok(Err(err)) => {
                        let code = match err {
                            BrokerError::LimitExceeded(_) => ErrorCode::LimitExceeded,
                            BrokerError::Unavailable(_) => {
                                log::warn!(conn_id:% = act.conn, error:% = err; "publish_failed");
                                ErrorCode::Internal
                            }
                        };
                        ServerFrame::Error(
                            ErrorFrame::new(code, err.client_message()).replying_to(reply_to),
                        )
                    }
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

    pub(super) fn presence(
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
                // Only a member sees who else is there: reading a room's
                // members without joining it would be invisible to them.
                if !self.subscriptions.borrow().contains(&channel) {
                    return Err(ErrorFrame::new(
                        ErrorCode::Forbidden,
                        format!("subscribe to {channel} to see who is there"),
                    ));
                }
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
                        result: ResponseResult::Presence(PresenceResult::capped(players)),
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
}

/// Notes a refused channel, remembering which came first in the request.
fn refuse(
    refused: &mut BTreeMap<String, Refusal>,
    first: &mut Option<Refusal>,
    name: String,
    refusal: Refusal,
) {
    if first.is_none() {
        *first = Some(refusal.clone());
    }
    refused.insert(name, refusal);
}
