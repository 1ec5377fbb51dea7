//! `ChatProcessor`: turns a user's message into the assistant's reply, and
//! feedback into adjusted recommendations. Crisis detection runs on every
//! message here, before the assistant is asked; the words come from the
//! assistant as a stream of pieces, which the reply keeps for clients that
//! asked for streaming.
//!
//! It also answers the v1.1 requests of assistant sessions
//! (`sessions.rs`): conversations kept in the conversation store, whose
//! replies stream as publications on the session's channel (`reply.rs`),
//! shown to clients as `views.rs` builds them.

pub mod approvals;
mod record;
mod reply;
mod sessions;
mod tools;
mod views;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;

pub use self::record::Recorder;
pub use self::reply::ActiveReplies;
pub use self::sessions::{CallOutcome, JoinSession};
use crate::assistant::agents::{Agents, DEFAULT_AGENT};
use crate::assistant::opinion::ModelOpinion;
use crate::assistant::{
    Assistant, AssistantError, FeedbackInput, ModelError, ReplyEvent, ReplyStream, Turn,
};
use crate::broadcaster::Broadcaster;
use crate::model::ids::{ClientRef, MessageId, PlayerId, SessionId};
use crate::protocol::calls::Call;
use crate::protocol::{
    AssistantMetadata, ChatMessage, Element, ErrorFrame, FeedbackMetadata, MessageContent,
    MessageMetadata, Role, Safety,
};
use crate::store::conversations::{
    Exchange, FinalStatus, NewUserMessage, ReplyEnd, SharedConversationStore,
};
use crate::store::progress::SharedProgressStore;
use crate::support::metered::Metered;
use crate::support::metrics::{ActorKind, Metrics};
use crate::support::pseudonym;
use crate::therapy::crisis::{detect_anxiety_in, detect_crisis_in, CrisisAssessment};
use crate::therapy::exercises::Catalogue;
use crate::therapy::language::detect_language;
use crate::therapy::resources::{resources_for, CrisisResource};
use crate::therapy::text::NormalizedText;
use approvals::PendingApprovals;

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
    /// The v1 `metadata`, kept on the recorded user message.
    pub character_id: Option<String>,
    pub world_id: Option<String>,
    /// For a client that streams: where pieces go as they arrive when the
    /// reply is not ready at once (a model's), so that its chunks are not
    /// held back until the end. Bounded: a slow reader slows the reply.
    pub live: Option<mpsc::Sender<LivePiece>>,
    /// The connection's agent (an agent's path), else the default one.
    pub agent: Option<Arc<str>>,
}

/// One piece of a v1 reply, sent while the reply is still coming.
#[derive(Debug)]
pub struct LivePiece {
    /// The id the whole message will have.
    pub message_id: MessageId,
    pub text: String,
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

/// A v1.1 `request` of the assistant sessions, its params checked.
#[derive(Message)]
#[rtype(result = "Result<CallOutcome, ErrorFrame>")]
pub struct HandleCall {
    pub player: PlayerId,
    pub call: Call,
    /// The agent of the connection's path (`/api/ws/guide`,
    /// `/api/ws/liaison/{pillar}`): a session created without naming an
    /// agent or pillar gets it.
    pub default_agent: Option<Arc<str>>,
}

/// Which of `sessions` the player owns: a connection may subscribe to the
/// channel of its own sessions only.
#[derive(Message)]
#[rtype(result = "HashSet<SessionId>")]
pub struct OwnedSessions {
    pub player: PlayerId,
    pub sessions: Vec<SessionId>,
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
    /// The configured agents a session is bound to.
    pub agents: Arc<Agents>,
    /// Progress markers, which the `list_progress` tool reads.
    pub progress: SharedProgressStore,
    pub exercises: Arc<Catalogue>,
    pub metrics: Arc<Metrics>,
    pub conversations: Arc<Conversations>,
    /// The model's second opinion on chat messages (`[safety]
    /// model_check`); `None` when it is off.
    pub opinion: Option<Arc<ModelOpinion>>,
}

/// What the assistant sessions need: where conversations are kept, where
/// replies are published, the replies running now (on any thread) and how
/// replies are shaped.
pub struct Conversations {
    pub store: SharedConversationStore,
    /// Where v1 chat goes into the store; `None` when it is not recorded
    /// (`[conversations] record_v1 = false`).
    pub recorder: Option<Recorder>,
    pub broadcaster: Metered<Broadcaster>,
    pub active: ActiveReplies,
    /// Tool calls waiting for the player's approval.
    pub approvals: PendingApprovals,
    pub settings: ConversationSettings,
}

#[derive(Debug, Clone)]
pub struct ConversationSettings {
    /// Deltas after the first are published at most this often.
    pub coalesce: std::time::Duration,
    /// Earlier turns (a user message or a reply each) a model reads.
    pub history_turns: usize,
    /// How long a tool call waits for the player's approval.
    pub approval_timeout: std::time::Duration,
}

/// What Hearth finds in a user's text before any assistant is asked: the
/// crisis check, anxiety cues, and the elements a reply carries for them.
pub(crate) struct Assessed {
    pub text: NormalizedText,
    pub crisis: CrisisAssessment,
    pub anxious: bool,
    pub elements: Vec<Element>,
    pub safety: Safety,
}

impl ChatShared {
    /// Checks `raw`: a crisis is counted and logged (never the text), and
    /// the reply's elements hold the crisis resources, emergency first,
    /// then the exercise offers.
    pub(crate) fn assess(&self, raw: &str, player: &PlayerId) -> Assessed {
        let assessed = self.reassess(raw);
        self.record_crisis(&assessed, player);
        assessed
    }

    /// As `assess`, with the model's second opinion when one is configured
    /// and could still raise the verdict (it is not already imminent). The
    /// opinion is waited for no longer than its deadline; without it, the
    /// rules' verdict stands.
    pub(crate) async fn assess_with_opinion(&self, raw: &str, player: &PlayerId) -> Assessed {
        let mut assessed = self.reassess(raw);
        if let Some(opinion) = self.opinion.as_ref().filter(|_| !assessed.crisis.imminent) {
            let meters = &self.metrics.assistant;
            match opinion.judge(raw).await {
                Ok(said) => {
                    let mut crisis = assessed.crisis.clone();
                    if crisis.raise_to(said) {
                        meters.opinion("raised");
                        assessed = self.verdict(assessed.text, crisis);
                    } else {
                        meters.opinion("agreed");
                    }
                }
                Err(ModelError::Timeout(_)) => meters.opinion("timeout"),
                Err(err) => {
                    meters.opinion("error");
                    log::warn!(player_id:% = player, error:% = err; "safety_opinion_failed");
                }
            }
        }
        self.record_crisis(&assessed, player);
        assessed
    }

    /// A crisis is counted by category and logged, never with the text
    /// or the player's id.
    fn record_crisis(&self, assessed: &Assessed, player: &PlayerId) {
        if !assessed.crisis.is_crisis() {
            return;
        }
        let categories = assessed.crisis.categories.iter().map(|c| c.as_str());
        self.metrics.crisis_detected(categories.clone());
        let types: Vec<&str> = assessed.crisis.types.iter().map(|t| t.as_str()).collect();
        let severity = if assessed.crisis.imminent {
            "crisis"
        } else {
            "concern"
        };
        // Health data: the player appears only as a keyed pseudonym, and
        // the session (which the store ties to the player) not at all.
        log::info!(
            player:% = pseudonym::of(player),
            types:% = types.join(","),
            categories:% = categories.collect::<Vec<_>>().join(","),
            severity;
            "crisis_detected"
        );
    }

    /// As `assess`, for a text checked before (a retried question): the
    /// crisis is not counted again.
    pub(crate) fn reassess(&self, raw: &str) -> Assessed {
        let text = NormalizedText::new(raw);
        let crisis = detect_crisis_in(&text);
        self.verdict(text, crisis)
    }

    /// The elements and the safety verdict a reply carries for `crisis`.
    fn verdict(&self, text: NormalizedText, crisis: CrisisAssessment) -> Assessed {
        let anxious = detect_anxiety_in(&text);
        let mut elements: Vec<Element> = Vec::new();
        if crisis.is_crisis() {
            // Only a crisis needs the language: which lines to list first.
            let language = detect_language(&text);
            let resources = resources_for(&self.resources, &crisis.types, language);
            elements.extend(resources.into_iter().map(Element::resource));
        }
        if anxious || crisis.is_crisis() {
            elements.extend(self.exercises.all().iter().map(Element::offer));
        }
        let safety = Safety {
            crisis: crisis.is_crisis(),
            types: crisis.types.clone(),
            categories: crisis.categories.clone(),
            severity: crisis.severity(),
        };
        Assessed {
            text,
            crisis,
            anxious,
            elements,
            safety,
        }
    }
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
        if self.shared.opinion.is_some() {
            // The second opinion is awaited first, within its deadline.
            let shared = self.shared.clone();
            return Response::fut(async move {
                let assessed = shared.assess_with_opinion(&msg.text, &msg.player).await;
                let started = start_v1_reply(&shared, msg, assessed);
                started.finish().await
            });
        }
        let assessed = self.shared.assess(&msg.text, &msg.player);
        let mut started = start_v1_reply(&self.shared, msg, assessed);
        // What the assistant has ready is taken now: a reply that is ready
        // at once (the built-in assistant's) is answered in this handler,
        // with no task spawned for it; the rest is awaited.
        while let Some(next) = started.reply.next().now_or_never() {
            let Some(event) = next else {
                return Response::reply(Err(AssistantError::Incomplete));
            };
            if let Some((outcome, exchange)) = started.draft.take(event) {
                return match exchange.and_then(|exchange| record(&started.recorder, exchange)) {
                    None => Response::reply(outcome),
                    // The writer is behind: the reply waits for room.
                    Some(queued) => Response::fut(async move {
                        queued.await;
                        outcome
                    }),
                };
            }
        }
        Response::fut(started.finish())
    }
}

/// A v1 reply under way: the assistant's stream and the message it fills.
struct StartedReply {
    reply: ReplyStream,
    draft: Draft,
    live: Option<mpsc::Sender<LivePiece>>,
    recorder: Option<Recorder>,
}

fn start_v1_reply(shared: &ChatShared, msg: HandleUserMessage, assessed: Assessed) -> StartedReply {
    let reply = shared.assistant.reply(&Turn {
        player: &msg.player,
        raw: &msg.text,
        text: &assessed.text,
        crisis: &assessed.crisis,
        anxious: assessed.anxious,
        history: &[],
        // The connection's agent, as a session it makes is recorded with.
        instructions: shared
            .agents
            .get(msg.agent.as_deref().unwrap_or(DEFAULT_AGENT))
            .map_or("", |agent| agent.instructions.as_str()),
        // A v1 reply runs no tool: none is offered.
        tools: &[],
    });
    let recorder = shared.conversations.recorder.clone();
    let draft = Draft {
        message_id: MessageId::generate(),
        text: String::new(),
        pieces: msg.stream.then(Vec::new),
        elements: assessed.elements,
        safety: assessed.safety,
        session_id: Some(msg.session_id.clone()),
        reply_to: msg.reply_to,
        asked: recorder.is_some().then(|| Asked {
            agent: msg.agent.as_deref().map(str::to_owned),
            player: msg.player,
            session: msg.session_id,
            text: msg.text,
            character_id: msg.character_id,
            world_id: msg.world_id,
            started: Instant::now(),
        }),
    };
    StartedReply {
        reply,
        draft,
        live: msg.live,
        recorder,
    }
}

impl StartedReply {
    /// Reads the rest of the reply, sending pieces live to a streaming
    /// client as they come.
    async fn finish(self) -> Result<AssistantReply, AssistantError> {
        let StartedReply {
            mut reply,
            mut draft,
            live,
            recorder,
        } = self;
        if let Some(live) = &live {
            // What was ready goes first; the rest as it comes.
            for text in draft.pieces.take().unwrap_or_default() {
                draft.send_live(live, text).await;
            }
        }
        while let Some(event) = reply.next().await {
            if let (Some(live), ReplyEvent::Text(piece)) = (&live, &event) {
                draft.text.push_str(piece);
                if let ReplyEvent::Text(piece) = event {
                    draft.send_live(live, piece).await;
                }
                continue;
            }
            if let Some((outcome, exchange)) = draft.take(event) {
                if let Some(queued) = exchange.and_then(|exchange| record(&recorder, exchange)) {
                    queued.await;
                }
                return outcome;
            }
        }
        Err(AssistantError::Incomplete)
    }
}

/// Queues an exchange; a future when the reply must wait for room.
fn record(
    recorder: &Option<Recorder>,
    exchange: Exchange,
) -> Option<impl std::future::Future<Output = ()>> {
    recorder.as_ref()?.record(exchange)
}

/// The question of a v1 reply, kept to record the exchange.
struct Asked {
    agent: Option<String>,
    player: PlayerId,
    session: SessionId,
    text: String,
    character_id: Option<String>,
    world_id: Option<String>,
    started: Instant,
}

/// `usage` of a recorded v1 reply.
#[derive(serde::Serialize)]
struct RecordedUsage {
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens: Option<u32>,
    response_time_ms: u64,
}

/// A reply being put together from the assistant's events.
struct Draft {
    /// Made first, so that pieces sent live carry it.
    message_id: MessageId,
    text: String,
    /// Only for a client that streams.
    pieces: Option<Vec<String>>,
    elements: Vec<Element>,
    safety: Safety,
    /// Taken when the reply is finished.
    session_id: Option<SessionId>,
    reply_to: Option<ClientRef>,
    asked: Option<Asked>,
}

type Outcome = Result<AssistantReply, AssistantError>;

impl Draft {
    async fn send_live(&self, live: &mpsc::Sender<LivePiece>, text: String) {
        let piece = LivePiece {
            message_id: self.message_id,
            text,
        };
        // A client gone before its reply still gets the reply recorded.
        let _ = live.send(piece).await;
    }

    /// Takes one event; once the assistant is done or has failed, the
    /// outcome, and for a reply the exchange to record.
    fn take(&mut self, event: ReplyEvent) -> Option<(Outcome, Option<Exchange>)> {
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
            // A v1 reply carries no tool events: the call is not run (its
            // answer channel dropped), and the reply's elements already
            // hold what the built-in engine would offer through it.
            ReplyEvent::Tool(_) => return None,
            ReplyEvent::Done(done) => done,
            ReplyEvent::Failed(err) => return Some((Err(err), None)),
        };
        // Only a reply that is recorded needs them as stored JSON.
        let stored = self.asked.is_some().then(|| {
            (
                views::raw_json(&self.elements),
                views::raw_json(&self.safety),
            )
        });
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
                fallback: done.fallback,
            }),
        );
        let mut message = message;
        message.id = self.message_id;
        let exchange = self
            .asked
            .take()
            .zip(stored)
            .map(|(asked, (elements, safety))| {
                let usage = RecordedUsage {
                    prompt_tokens: done.usage.prompt_tokens,
                    completion_tokens: done.usage.completion_tokens,
                    response_time_ms: u64::try_from(asked.started.elapsed().as_millis())
                        .unwrap_or(u64::MAX),
                };
                Exchange {
                    player: asked.player,
                    session: asked.session,
                    agent: asked.agent,
                    user: NewUserMessage {
                        text: asked.text,
                        client_message_id: None,
                        safety: safety.clone(),
                        character_id: asked.character_id,
                        world_id: asked.world_id,
                    },
                    reply_id: message.id,
                    reply: ReplyEnd {
                        status: FinalStatus::Complete,
                        text: message.text().unwrap_or_default().to_string(),
                        elements,
                        safety,
                        usage: Some(views::raw_json(&usage)),
                        fallback: done.fallback,
                        finish_reason: done.finish_reason.as_ref().map(|r| r.as_str().to_string()),
                        completed_at: message.timestamp,
                    },
                }
            });
        let reply = AssistantReply {
            message,
            pieces: self.pieces.take().unwrap_or_default(),
        };
        Some((Ok(reply), exchange))
    }
}

impl Handler<HandleFeedback> for ChatProcessor {
    type Result = MessageResult<HandleFeedback>;

    fn handle(&mut self, msg: HandleFeedback, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.shared.metrics.handling(ActorKind::ChatProcessor);
        // Feedback is words a person wrote too: a crisis in it is answered
        // like one in a chat message (docs/domain.md, "Feedback").
        let assessed = msg
            .text
            .as_deref()
            .map(|text| self.shared.assess(text, &msg.player));
        let mut outcome = self.shared.assistant.feedback(&FeedbackInput {
            player: &msg.player,
            rating: msg.rating,
            text: msg.text.as_deref(),
        });
        let crisis = assessed.as_ref().is_some_and(|a| a.crisis.is_crisis());
        let mut elements: Vec<Element> = Vec::new();
        let mut safety = Safety::default();
        if let Some(assessed) = assessed.filter(|_| crisis) {
            for adjustment in [
                "enable_crisis_monitoring",
                "reduce_intensity",
                "provide_support_resources",
            ] {
                if !outcome.adjustments.contains(&adjustment) {
                    outcome.adjustments.push(adjustment);
                }
            }
            elements.extend(assessed.elements);
            safety = assessed.safety;
        }
        elements.extend(outcome.recommendations.iter().map(Element::recommendation));
        let text = if crisis {
            "Thank you for telling us. You don't have to carry this alone: the people below can help right now."
        } else if outcome.recommendations.is_empty() {
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
                safety,
            }),
        ))
    }
}

impl Handler<HandleCall> for ChatProcessor {
    type Result = ResponseFuture<Result<CallOutcome, ErrorFrame>>;

    fn handle(&mut self, msg: HandleCall, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.shared.metrics.handling(ActorKind::ChatProcessor);
        Box::pin(sessions::answer(
            self.shared.clone(),
            msg.player,
            msg.call,
            msg.default_agent,
        ))
    }
}

impl Handler<OwnedSessions> for ChatProcessor {
    type Result = ResponseFuture<HashSet<SessionId>>;

    fn handle(&mut self, msg: OwnedSessions, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.shared.metrics.handling(ActorKind::ChatProcessor);
        Box::pin(sessions::owned(
            self.shared.clone(),
            msg.player,
            msg.sessions,
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

    /// What a processor needs, with a conversation store in `dir` and a
    /// broadcaster on the memory broker. Must run inside an actix system.
    pub(super) fn shared_for_tests(
        assistant: Arc<dyn Assistant>,
        dir: &std::path::Path,
    ) -> ChatShared {
        use crate::channels::memory::MemoryBroker;
        use crate::chat_server::ChatServer;
        use crate::store::conversations::sqlite::SqliteConversationStore;

        let metrics = Arc::new(Metrics::default());
        let chat_server_ctx = actix::Context::<ChatServer>::new();
        let chat_server = Metered::new(
            chat_server_ctx.address(),
            metrics.clone(),
            ActorKind::ChatServer,
        );
        let broadcaster = Broadcaster::new(
            Box::new(MemoryBroker::new(std::time::Duration::from_secs(60))),
            Arc::default(),
            chat_server,
            metrics.clone(),
        )
        .start();
        chat_server_ctx.run(ChatServer::new(
            16,
            Broadcaster::observer(&broadcaster),
            metrics.clone(),
        ));
        let store: SharedConversationStore =
            Arc::new(SqliteConversationStore::open(&dir.join("conversations.db")).unwrap());
        ChatShared {
            assistant,
            resources: Arc::new(Vec::new()),
            agents: Arc::new(Agents::new(Agents::defaults()).unwrap()),
            progress: Arc::new(
                crate::store::progress::sqlite::SqliteProgressStore::open(&dir.join("progress.db"))
                    .unwrap(),
            ),
            exercises: Arc::new(Catalogue::default()),
            metrics: metrics.clone(),
            conversations: Arc::new(Conversations {
                recorder: Some(Recorder::start(store.clone()).unwrap()),
                store,
                broadcaster: Metered::new(broadcaster, metrics, ActorKind::Broadcaster),
                active: ActiveReplies::default(),
                approvals: PendingApprovals::default(),
                settings: ConversationSettings {
                    coalesce: std::time::Duration::from_millis(40),
                    history_turns: 12,
                    approval_timeout: std::time::Duration::from_secs(120),
                },
            }),
            opinion: None,
        }
    }

    #[test]
    fn a_reply_that_is_not_ready_at_once_is_awaited_whole() {
        let reply = System::new().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let processor =
                ChatProcessor::new(shared_for_tests(Arc::new(SlowAssistant), dir.path())).start();
            processor
                .send(HandleUserMessage {
                    player: PlayerId::parse("slow").unwrap(),
                    session_id: SessionId::generate(),
                    text: "hi".into(),
                    reply_to: None,
                    stream: true,
                    character_id: None,
                    world_id: None,
                    live: None,
                    agent: None,
                })
                .await
        });
        let reply = reply.unwrap().unwrap();
        assert_eq!(reply.pieces, ["Hello. ", "There."]);
        assert_eq!(reply.message.text(), Some("Hello. There."));
    }
}
