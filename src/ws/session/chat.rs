//! Chat as one connection sees it: which therapeutic session a frame
//! belongs to, the typing indicator around the assistant's reply, the
//! reply's pieces for a client that streams, feedback and interactions.

use actix::prelude::*;
use futures_util::StreamExt;
use hearth_actors::assistant::AssistantError;
use hearth_actors::chat_processor::{AssistantReply, HandleFeedback, HandleUserMessage, LivePiece};
use hearth_actors::chat_server::ResolveSession;
use hearth_actors::exercise_flow::HandleInteraction;
use hearth_actors::model::ids::{ClientRef, SessionId};
use hearth_actors::protocol::{
    ChatMessage, Chunk, ErrorCode, ErrorFrame, Feedback, Interaction, ServerFrame, TypingStatus,
    UserMessage,
};
use tokio::sync::mpsc;

use super::{Ctx, FrameLog, WsSession};
use crate::ws::worker;

/// Pieces of one streamed reply waiting to be written, at most.
const LIVE_PIECES: usize = 64;

/// What ending a chat reply needs to know.
struct ChatDone {
    session: SessionId,
    reply_to: Option<ClientRef>,
    typing: bool,
    frame: FrameLog,
}

/// What a chat message brings back, in order.
enum ChatStep {
    Piece(LivePiece),
    /// Boxed: a reply is much larger than a piece.
    Done(Box<Result<Result<AssistantReply, AssistantError>, MailboxError>>),
}

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
        let (live, pieces) = if self.options.stream {
            let (live, pieces) = mpsc::channel(LIVE_PIECES);
            (Some(live), Some(pieces))
        } else {
            (None, None)
        };
        let ask = HandleUserMessage {
            player: self.identity.player.clone(),
            session_id: session.clone(),
            text: message.content.text,
            reply_to: reply_to.clone(),
            stream: self.options.stream,
            character_id: metadata.character_id,
            world_id: metadata.world_id,
            live,
            agent: self.options.agent.clone(),
        };
        let answer = worker::chat_processor(&self.state.chat).send(ask);
        let done = ChatDone {
            session,
            reply_to,
            typing,
            frame,
        };
        let Some(pieces) = pieces else {
            // No streaming: one answer, nothing to interleave.
            let finish = answer
                .into_actor(self)
                .map(move |result, act, ctx| act.finish_chat(ctx, result, None, 0, done));
            ctx.spawn(finish);
            return;
        };
        // The pieces that come while the reply is being made, then the
        // reply, as one stream: the chunks are written in order and before
        // the message. The last piece is held back until the reply ends,
        // since only then is it known to be the final one.
        let pieces = futures_util::stream::unfold(pieces, |mut pieces| async move {
            let piece = pieces.recv().await?;
            Some((ChatStep::Piece(piece), pieces))
        });
        let steps = pieces
            .chain(futures_util::stream::once(answer).map(|done| ChatStep::Done(Box::new(done))));
        let mut held: Option<LivePiece> = None;
        let mut index: u32 = 0;
        let mut done = Some(done);
        let finish = actix::fut::wrap_stream::<_, Self>(steps)
            .map(move |step, act, ctx| match step {
                ChatStep::Piece(piece) => {
                    if let (Some(previous), Some(done)) = (held.replace(piece), &done) {
                        act.send_live_chunk(ctx, previous, &done.reply_to, index, false);
                        index += 1;
                    }
                }
                ChatStep::Done(result) => {
                    if let Some(done) = done.take() {
                        act.finish_chat(ctx, *result, held.take(), index, done);
                    }
                }
            })
            .finish();
        ctx.spawn(finish);
    }

    /// Writes the end of a chat reply: the last chunk (held back until the
    /// end, or every chunk for a reply that was ready at once), the
    /// message or the error, and `typing: stop`.
    fn finish_chat(
        &mut self,
        ctx: &mut Ctx,
        result: Result<Result<AssistantReply, AssistantError>, MailboxError>,
        last: Option<LivePiece>,
        index: u32,
        done: ChatDone,
    ) {
        match (&result, last) {
            (Ok(Ok(_)), Some(last)) => self.send_live_chunk(ctx, last, &done.reply_to, index, true),
            (Ok(Ok(reply)), None) => self.send_chunks(ctx, reply),
            _ => {}
        }
        let result = result.map(|reply| {
            reply
                .map(|reply| reply.message)
                .map_err(|err| ErrorFrame::new(ErrorCode::Internal, err.to_string()))
        });
        self.reply_with(ctx, result, done.reply_to.clone(), done.frame);
        if done.typing {
            let stop = ChatMessage::typing(TypingStatus::Stop, Some(done.session), done.reply_to);
            self.send(ctx, &ServerFrame::Message(stop));
        }
    }

    fn send_live_chunk(
        &mut self,
        ctx: &mut Ctx,
        piece: LivePiece,
        reply_to: &Option<ClientRef>,
        index: u32,
        is_final: bool,
    ) {
        let chunk = Chunk {
            message_id: piece.message_id,
            reply_to: reply_to.clone(),
            index,
            text: piece.text,
            is_final,
        };
        self.send(ctx, &ServerFrame::Chunk(chunk));
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
                    let result = result.map(|flow| flow.map_err(|err| err.error_frame()));
                    act.reply_with(ctx, result, reply_to, frame)
                })
                .spawn(ctx);
        });
    }
}
