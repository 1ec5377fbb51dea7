//! Chat as one connection sees it: which therapeutic session a frame
//! belongs to, the typing indicator around the assistant's reply, the
//! reply's pieces for a client that streams, feedback and interactions.

use actix::prelude::*;
use hearth_actors::chat_processor::{AssistantReply, HandleFeedback, HandleUserMessage};
use hearth_actors::chat_server::ResolveSession;
use hearth_actors::exercise_flow::HandleInteraction;
use hearth_actors::model::ids::{ClientRef, SessionId};
use hearth_actors::protocol::{
    ChatMessage, Chunk, ErrorCode, ErrorFrame, Feedback, Interaction, ServerFrame, TypingStatus,
    UserMessage,
};

use super::{Ctx, FrameLog, WsSession};
use crate::ws::worker;

impl WsSession {
    /// Runs `then` with the therapeutic session a frame belongs to: the one
    /// it names, or the player's active one (asked of `ChatServer` once per
    /// connection, then remembered here).
    pub(super) fn with_session<F>(&mut self, requested: Option<SessionId>, ctx: &mut Ctx, then: F)
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

    pub(super) fn chat(
        &mut self,
        session: SessionId,
        message: UserMessage,
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
        let metadata = message.metadata.unwrap_or_default();
        let ask = HandleUserMessage {
            player: self.identity.player.clone(),
            session_id: session.clone(),
            text: message.content.text,
            reply_to: reply_to.clone(),
            stream: self.options.stream,
            character_id: metadata.character_id,
            world_id: metadata.world_id,
        };
        worker::chat_processor(&self.state.chat)
            .send(ask)
            .into_actor(self)
            .map(move |result, act, ctx| {
                if let Ok(Ok(reply)) = &result {
                    act.send_chunks(ctx, reply);
                }
                let result = result.map(|reply| {
                    reply
                        .map(|reply| reply.message)
                        .map_err(|err| err.to_string())
                });
                act.reply_with(ctx, result, reply_to.clone(), frame);
                if typing {
                    let stop = ChatMessage::typing(TypingStatus::Stop, Some(session), reply_to);
                    act.send(ctx, &ServerFrame::Message(stop));
                }
            })
            .spawn(ctx);
    }

    /// Sends the reply's pieces, kept only for a client that streams, as
    /// the assistant produced them: chunks whose concatenation is the
    /// reply's text (docs/protocol.md, section 4.4). The whole message
    /// follows.
    pub(super) fn send_chunks(&mut self, ctx: &mut Ctx, reply: &AssistantReply) {
        let message = &reply.message;
        let last = reply.pieces.len().saturating_sub(1);
        for (index, piece) in reply.pieces.iter().enumerate() {
            let chunk = Chunk {
                message_id: message.id,
                reply_to: message.reply_to.clone(),
                index: u32::try_from(index).unwrap_or(u32::MAX),
                text: piece.clone(),
                is_final: index == last,
            };
            self.send(ctx, &ServerFrame::Chunk(chunk));
        }
    }

    pub(super) fn feedback(
        &mut self,
        feedback: Feedback,
        reply_to: Option<ClientRef>,
        frame: FrameLog,
        ctx: &mut Ctx,
    ) {
        self.with_session(feedback.session_id, ctx, move |act, ctx, session| {
            let ask = HandleFeedback {
                player: act.identity.player.clone(),
                session_id: session,
                rating: feedback.content.rating,
                text: feedback.content.text,
                reply_to: reply_to.clone(),
            };
            worker::chat_processor(&act.state.chat)
                .send(ask)
                .into_actor(act)
                .map(move |result, act, ctx| act.reply_with(ctx, result.map(Ok), reply_to, frame))
                .spawn(ctx);
        });
    }

    pub(super) fn interaction(
        &mut self,
        interaction: Interaction,
        reply_to: Option<ClientRef>,
        frame: FrameLog,
        ctx: &mut Ctx,
    ) {
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
}
