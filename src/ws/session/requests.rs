//! v1.1 requests: each `request` frame goes to this thread's chat
//! processor and is answered exactly once, by a `response` or an `error`
//! naming its `id`. A request that starts a reply (`messages.send`,
//! `messages.retry`) also puts this connection in the session's channel,
//! before the reply's first event is published, so that it sees them all.

use actix::prelude::*;
use hearth_actors::chat_processor::HandleCall;
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
        };
        worker::chat_processor(&self.state.chat)
            .send(ask)
            .into_actor(self)
            .map(move |result, act, ctx| {
                let outcome = match result {
                    Ok(outcome) => outcome,
                    Err(err) => {
                        log::error!(
                            "actor_unavailable player_id={} conn_id={} type=request error={err}",
                            act.identity.player,
                            act.conn
                        );
                        Err(ErrorFrame::new(
                            ErrorCode::Internal,
                            "the server could not handle this request",
                        ))
                    }
                };
                match outcome {
                    Ok(outcome) => {
                        if let Some(join) = &outcome.join {
                            act.join_quietly(join.channel.clone());
                        }
                        let response = Response {
                            reply_to,
                            result: outcome.result,
                        };
                        act.send(ctx, &ServerFrame::Response(response));
                        if let Some(join) = outcome.join {
                            join.go();
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
