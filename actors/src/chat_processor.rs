//! `ChatProcessor`: turns a user's message into the assistant's reply, and
//! feedback into adjusted recommendations. Crisis detection runs on every
//! message here, before the assistant is asked; the words come from the
//! assistant as a stream of pieces, which the reply keeps for clients that
//! asked for streaming.

use std::sync::Arc;

use actix::prelude::*;
use futures_util::{FutureExt, StreamExt};

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
    /// The client streams replies: keep the pieces for it.
    pub stream: bool,
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

/// The assistant's whole reply, and, for a client that streams, the pieces
/// it came in (their concatenation is the reply's text).
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
    type Result = Response<Result<AssistantReply, AssistantError>>;

    fn handle(&mut self, msg: HandleUserMessage, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.shared.metrics.handling(ActorKind::ChatProcessor);
        let text = NormalizedText::new(&msg.text);
        let crisis = detect_crisis_in(&text);
        let anxious = detect_anxiety_in(&text);
        let mut reply = self.shared.assistant.reply(&Turn {
            player: &msg.player,
            raw: &msg.text,
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
        let mut draft = Draft {
            text: String::new(),
            pieces: msg.stream.then(Vec::new),
            elements,
            safety,
            session_id: Some(msg.session_id),
            reply_to: msg.reply_to,
        };
        // What the assistant has ready is taken now: a reply that is ready
        // at once (the built-in assistant's) is answered in this handler,
        // with no task spawned for it; the rest is awaited.
        while let Some(next) = reply.next().now_or_never() {
            let Some(event) = next else {
                return Response::reply(Err(AssistantError::Incomplete));
            };
            if let Some(outcome) = draft.take(event) {
                return Response::reply(outcome);
            }
        }
        Response::fut(async move {
            while let Some(event) = reply.next().await {
                if let Some(outcome) = draft.take(event) {
                    return outcome;
                }
            }
            Err(AssistantError::Incomplete)
        })
    }
}

/// A reply being put together from the assistant's events.
struct Draft {
    text: String,
    /// Only for a client that streams.
    pieces: Option<Vec<String>>,
    elements: Vec<Element>,
    safety: Safety,
    /// Taken when the reply is finished.
    session_id: Option<SessionId>,
    reply_to: Option<ClientRef>,
}

impl Draft {
    /// Takes one event; once the assistant is done or has failed, the
    /// outcome.
    fn take(&mut self, event: ReplyEvent) -> Option<Result<AssistantReply, AssistantError>> {
        let done = match event {
            ReplyEvent::Text(piece) => {
                if self.text.is_empty() && self.pieces.is_none() {
                    // The first piece becomes the text: no copy.
                    self.text = piece;
                } else {
                    self.text.push_str(&piece);
                    if let Some(pieces) = &mut self.pieces {
                        pieces.push(piece);
                    }
                }
                return None;
            }
            ReplyEvent::Done(done) => done,
            ReplyEvent::Failed(err) => return Some(Err(err)),
        };
        let message = ChatMessage::new(
            Role::Assistant,
            self.session_id.take(),
            self.reply_to.take(),
            MessageContent::new(
                std::mem::take(&mut self.text),
                std::mem::take(&mut self.elements),
            ),
            MessageMetadata::Assistant(AssistantMetadata {
                recommendations: done.recommendations,
                safety: std::mem::take(&mut self.safety),
            }),
        );
        Some(Ok(AssistantReply {
            message,
            pieces: self.pieces.take().unwrap_or_default(),
        }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::{FeedbackOutcome, ReplyDone, ReplyStream};

    /// Replies "Hello. There." but makes the processor wait before each
    /// event, as a model streaming over the network would.
    struct SlowAssistant;

    impl Assistant for SlowAssistant {
        fn reply(&self, _: &Turn<'_>) -> ReplyStream {
            let events = vec![
                ReplyEvent::Text("Hello. ".into()),
                ReplyEvent::Text("There.".into()),
                ReplyEvent::Done(ReplyDone::default()),
            ];
            Box::pin(futures_util::stream::unfold(
                events.into_iter(),
                |mut events| async move {
                    tokio::task::yield_now().await;
                    events.next().map(|event| (event, events))
                },
            ))
        }

        fn feedback(&self, _: &FeedbackInput<'_>) -> FeedbackOutcome {
            FeedbackOutcome {
                adjustments: Vec::new(),
                recommendations: Vec::new(),
            }
        }
    }

    #[test]
    fn a_reply_that_is_not_ready_at_once_is_awaited_whole() {
        let reply = System::new().block_on(async {
            let processor = ChatProcessor::new(ChatShared {
                assistant: Arc::new(SlowAssistant),
                resources: Arc::new(Vec::new()),
                exercises: Arc::new(Catalogue::default()),
                metrics: Arc::new(Metrics::default()),
            })
            .start();
            processor
                .send(HandleUserMessage {
                    player: PlayerId::parse("slow").unwrap(),
                    session_id: SessionId::generate(),
                    text: "hi".into(),
                    reply_to: None,
                    stream: true,
                })
                .await
        });
        let reply = reply.unwrap().unwrap();
        assert_eq!(reply.pieces, ["Hello. ", "There."]);
        assert_eq!(reply.message.text(), Some("Hello. There."));
    }
}
