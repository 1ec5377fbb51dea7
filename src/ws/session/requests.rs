//! v1.1 requests: each `request` frame goes to this thread's chat
//! processor and is answered exactly once, by a `response` or an `error`
//! naming its `id`. A request that starts a reply (`messages.send`,
//! `messages.retry`) also puts this connection in the session's channel,
//! before the reply's first event is published, so that it sees them all.

use actix::prelude::*;
use hearth_actors::chat_processor::HandleCall;
use hearth_actors::chat_processor::JoinSession;
use hearth_actors::model::ids::ClientRef;
use hearth_actors::protocol::calls::Call;
use hearth_actors::protocol::{ErrorCode, ErrorFrame, Response, ServerFrame};

use super::{Ctx, FrameLog, WsSession};
use crate::ws::worker;

impl WsSession {
    pub(super) fn call(
        &mut self,
        call: Call,
        reply_to: Option<ClientRef>,
        frame: FrameLog,
        ctx: &mut Ctx,
    ) {
        let ask = HandleCall {
            player: self.identity.player.clone(),
            call,
            default_agent: self.options.agent.clone(),
        };
        worker::chat_processor(&self.state.chat)
            .send(ask)
            .into_actor(self)
            .map(move |result, act, ctx| {
                let outcome = match result {
                    Ok(outcome) => outcome,
                    Err(err) => {
                        log::error!(player_id:% = act.identity.player, conn_id:% = act.conn, type = "request", error:% = err; "actor_unavailable");
                        Err(ErrorFrame::new(
                            ErrorCode::Internal,
                            "the server could not handle this request",
                        ))
                    }
                };
                match outcome {
                    Ok(outcome) => {
                        let response = Response {
                            reply_to,
                            result: outcome.result,
                        };
                        act.send(ctx, &ServerFrame::Response(response));
                        // The reply publishes once this connection is in
                        // the session's room, so it sees every event live.
                        if let Some(join) = outcome.join {
                            act.join_session_channel(join);
                        }
                        act.log_frame(frame, "ok");
                    }
                    Err(error) => {
                        act.send_error(ctx, error.replying_to(reply_to));
                        act.log_frame(frame, "error");
                    }
                }
            })
            .spawn(ctx);
    }
}

impl WsSession {
    /// Joins the session's channel unless that would pass the connection's
    /// subscription limit: a client cannot collect channels by sending in
    /// many sessions. Past it, the reply still streams and is stored; the
    /// client may subscribe once it has room.
    fn join_session_channel(&mut self, join: JoinSession) {
        let channel = join.channel.clone();
        let rules = &self.state.channel_rules;
        let player = &self.identity.player;
        let subscriptions = self.subscriptions.borrow();
        let counted = subscriptions
            .iter()
            .filter(|c| rules.counts_against_limit(c, player))
            .count();
        let full = counted >= rules.max_subscriptions_per_connection;
        let already = subscriptions.contains(&channel);
        drop(subscriptions);
        if !already && full {
            log::debug!(player_id:% = self.identity.player, conn_id:% = self.conn, reason = "subscription_limit"; "session_channel_not_joined");
            return join.go();
        }
        self.join_quietly(channel, join.into_signal());
    }
}
