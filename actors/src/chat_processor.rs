//! `ChatProcessor`: turns a user's message into the assistant's reply, and
//! feedback into adjusted recommendations. Crisis detection runs on every
//! message here, before the assistant is asked; the words come from the
//! assistant as a stream of pieces, which the reply keeps for clients that
//! asked for streaming.

use std::sync::Arc;

use actix::prelude::*;
use futures_util::StreamExt;

use crate::assistant::{Assistant, AssistantError, FeedbackInput, ReplyEvent, Turn};
use crate::model::ids::{ClientRef, PlayerId, SessionId};
use crate::protocol::{
    AssistantMetadata, ChatMessage, Element, FeedbackMetadata, MessageContent, MessageMetadata,
    Role, Safety,
};
use crate::support::metrics::{ActorKind, Metrics};
use crate::therapy::crisis::{detect_anxiety_in, detect_crisis_in};
use crate::therapy::exercises::Catalogue;
use crate::therapy::resources::{resources_for, CrisisResource};
use crate::therapy::text::NormalizedText;

/// A validated `user_message`; answered with the assistant's reply.
#[derive(Message)]
#[rtype(result = "Result<AssistantReply, AssistantError>")]
pub struct HandleUserMessage {
    pub player: PlayerId,
    pub session_id: SessionId,
    pub text: String,
    pub reply_to: Option<ClientRef>,
}

/// A validated `feedback`; answered with a system message.
#[derive(Message)]
#[rtype(result = "ChatMessage")]
pub struct HandleFeedback {
    pub player: PlayerId,
    pub session_id: SessionId,
    pub rating: Option<u8>,
    pub text: Option<String>,
    pub reply_to: Option<ClientRef>,
}

/// The assistant's whole reply, and the pieces it came in (their
/// concatenation is the reply's text), for a client that streams.
#[derive(Debug)]
pub struct AssistantReply {
    pub message: ChatMessage,
    pub pieces: Vec<String>,
}

/// What every chat processor shares. The server runs one `ChatProcessor`
/// per worker thread, so a chat message is answered on the thread that
/// read it; player state lives in the shared assistant.
#[derive(Clone)]
pub struct ChatShared {
    pub assistant: Arc<dyn Assistant>,
    pub resources: Arc<Vec<CrisisResource>>,
    pub exercises: Arc<Catalogue>,
    pub metrics: Arc<Metrics>,
}

pub struct ChatProcessor {
    shared: ChatShared,
}

impl ChatProcessor {
    pub fn new(shared: ChatShared) -> Self {
        ChatProcessor { shared }
    }
}

impl Actor for ChatProcessor {
    type Context = Context<Self>;
}

impl Handler<HandleUserMessage> for ChatProcessor {
    type Result = ResponseFuture<Result<AssistantReply, AssistantError>>;

    fn handle(&mut self, msg: HandleUserMessage, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.shared.metrics.handling(ActorKind::ChatProcessor);
        let text = NormalizedText::new(&msg.text);
        let crisis = detect_crisis_in(&text);
        let anxious = detect_anxiety_in(&text);
        let mut reply = self.shared.assistant.reply(&Turn {
            player: &msg.player,
            text: &text,
            crisis: &crisis,
            anxious,
        });

        let mut elements: Vec<Element> = Vec::new();
        if crisis.is_crisis() {
            self.shared.metrics.crisis_detected();
            let types: Vec<&str> = crisis.types.iter().map(|t| t.as_str()).collect();
            log::info!(
                "crisis_detected player_id={} session_id={} types={}",
                msg.player,
                msg.session_id,
                types.join(",")
            );
            let resources = resources_for(&self.shared.resources, &crisis.types);
            elements.extend(resources.into_iter().map(Element::resource));
        }
        if anxious || crisis.is_crisis() {
            elements.extend(self.shared.exercises.all().iter().map(Element::offer));
        }
        let safety = Safety {
            crisis: crisis.is_crisis(),
            types: crisis.types,
        };
        Box::pin(async move {
            let mut pieces = Vec::new();
            while let Some(event) = reply.next().await {
                let done = match event {
                    ReplyEvent::Text(piece) => {
                        pieces.push(piece);
                        continue;
                    }
                    ReplyEvent::Done(done) => done,
                    ReplyEvent::Failed(err) => return Err(err),
                };
                let message = ChatMessage::new(
                    Role::Assistant,
                    Some(msg.session_id),
                    msg.reply_to,
                    MessageContent::new(pieces.concat(), elements),
                    MessageMetadata::Assistant(AssistantMetadata {
                        recommendations: done.recommendations,
                        safety,
                    }),
                );
                return Ok(AssistantReply { message, pieces });
            }
            Err(AssistantError::Incomplete)
        })
    }
}

impl Handler<HandleFeedback> for ChatProcessor {
    type Result = MessageResult<HandleFeedback>;

    fn handle(&mut self, msg: HandleFeedback, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.shared.metrics.handling(ActorKind::ChatProcessor);
        let outcome = self.shared.assistant.feedback(&FeedbackInput {
            player: &msg.player,
            rating: msg.rating,
            text: msg.text.as_deref(),
        });
        let elements = outcome
            .recommendations
            .iter()
            .map(Element::recommendation)
            .collect();
        let text = if outcome.recommendations.is_empty() {
            "Feedback processed. Thank you: it helps shape your sessions."
        } else {
            "Feedback processed. Thank you: here is what we suggest next."
        };
        MessageResult(ChatMessage::new(
            Role::System,
            Some(msg.session_id),
            msg.reply_to,
            MessageContent::new(text, elements),
            MessageMetadata::Feedback(FeedbackMetadata {
                event: "feedback_processed",
                adjustments: outcome.adjustments,
                recommendations: outcome.recommendations,
            }),
        ))
    }
}
