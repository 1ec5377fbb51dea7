//! From a whole text message to the handler of its frame: the rate limit,
//! parsing, routing by type, and writing an actor's answer.

use std::time::Instant;

use actix::prelude::*;
use hearth_actors::model::ids::ClientRef;
use hearth_actors::protocol::{
    frame_id, parse_request, ChatMessage, Close, ErrorCode, ErrorFrame, Pong, Request, RequestBody,
    Response, ResponseResult, ServerFrame, UnsubscribeResult,
};

use super::{Ctx, FrameLog, WsSession};

/// Channels one rate-limit token pays for in a subscribe or unsubscribe.
const CHANNELS_PER_TOKEN: usize = 16;

impl WsSession {
    /// Applies the per-connection rate limit to one client message: true
    /// when it may be handled. A refused one gets `rate_limited`; a run of
    /// them closes the connection 1008.
    pub(super) fn admit(&mut self, ctx: &mut Ctx, text: Option<&str>) -> bool {
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
                    log::warn!(player_id:% = self.identity.player, conn_id:% = self.conn, refused_in_a_row:% = self.limited_in_a_row; "ws_rate_limit_close");
                    self.close(ctx, Close::RateLimitExceeded);
                } else {
                    let retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
                    let error = ErrorFrame {
                        retry_after_ms: Some(retry_after_ms),
                        ..ErrorFrame::new(ErrorCode::RateLimited, "too many messages; slow down")
                            .replying_to(text.and_then(frame_id))
                    };
                    self.send_error(ctx, error);
                }
                false
            }
        }
    }

    /// A subscribe or unsubscribe naming many channels is many operations:
    /// past the first [`CHANNELS_PER_TOKEN`], each started group of that
    /// many takes one more token from the bucket. Refused, it is answered
    /// `rate_limited` and not handled.
    pub(super) fn charge_channels(
        &mut self,
        channels: usize,
        reply_to: &Option<ClientRef>,
        ctx: &mut Ctx,
    ) -> bool {
        let extra = channels.saturating_sub(1) / CHANNELS_PER_TOKEN;
        let Ok(extra) = u32::try_from(extra) else {
            return false;
        };
        if extra == 0 {
            return true;
        }
        match self.rate.try_take_n(Instant::now(), extra) {
            Ok(()) => true,
            Err(wait) => {
                self.state.metrics.rate_limited();
                let retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
                let error = ErrorFrame {
                    retry_after_ms: Some(retry_after_ms),
                    ..ErrorFrame::new(
                        ErrorCode::RateLimited,
                        "too many channels at once; slow down",
                    )
                    .replying_to(reply_to.clone())
                };
                self.send_error(ctx, error);
                false
            }
        }
    }

    pub(super) fn on_text(&mut self, text: &str, ctx: &mut Ctx) {
        let received = Instant::now();
        if !self.admit(ctx, Some(text)) {
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

    pub(super) fn dispatch(&mut self, request: Request, frame: FrameLog, ctx: &mut Ctx) {
        let reply_to = request.reply_to;
        match request.body {
            RequestBody::Ping => {
                self.send(ctx, &ServerFrame::Pong(Pong { reply_to }));
                self.log_frame(frame, "ok");
            }
            RequestBody::UserMessage(mut message) => {
                let session = message.session_id.take();
                self.with_session(session, ctx, move |act, ctx, session| {
                    act.chat(session, message, reply_to, frame, ctx)
                });
            }
            RequestBody::Feedback(feedback) => self.feedback(feedback, reply_to, frame, ctx),
            RequestBody::Interaction(interaction) => {
                self.interaction(interaction, reply_to, frame, ctx)
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
                // Charged by `subscribe` itself, after any earlier subscribe
                // of this connection, so that answers keep request order.
                self.subscribe(subscribe, reply_to, ctx);
                self.log_frame(frame, "ok");
            }
            RequestBody::Unsubscribe(unsubscribe) => {
                if !self.charge_channels(unsubscribe.channels.len(), &reply_to, ctx) {
                    return self.log_frame(frame, "rate_limited");
                }
                let channels = self.unsubscribe(&unsubscribe.channels);
                let result = ResponseResult::Unsubscribed(UnsubscribeResult { channels });
                self.send(ctx, &ServerFrame::Response(Response { reply_to, result }));
                self.log_frame(frame, "ok");
            }
            RequestBody::Publish(publish) => self.publish(publish, reply_to, frame, ctx),
            RequestBody::Presence(query) => self.presence(&query.channel, reply_to, frame, ctx),
            RequestBody::Call(call) => self.call(call, reply_to, frame, ctx),
        }
    }

    pub(super) fn on_binary(&mut self, ctx: &mut Ctx) {
        if !self.admit(ctx, None) {
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

    /// Writes an actor's answer, or its error (`internal` when the actor
    /// is gone).
    pub(super) fn reply_with(
        &mut self,
        ctx: &mut Ctx,
        result: Result<Result<ChatMessage, ErrorFrame>, MailboxError>,
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
                log::error!(player_id:% = self.identity.player, conn_id:% = self.conn, type:% = frame.kind, error:% = err; "actor_unavailable");
                ErrorFrame::new(
                    ErrorCode::Internal,
                    "the server could not handle this request",
                )
            }
        };
        self.send_error(ctx, failure.replying_to(reply_to));
        self.log_frame(frame, "error");
    }
}
