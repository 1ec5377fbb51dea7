//! One reply as it streams: a task on the processor's thread takes the
//! assistant's pieces and publishes them on the session's channel as
//! `message.delta` events (the first at once, later ones coalesced), keeps
//! the text so far in the store now and then, and ends the reply exactly
//! once: completed, cancelled or failed, in the store first and then on
//! the channel, so that a client that reads the session after an end event
//! finds the same end.
//!
//! The task does not belong to any connection: the sender may go, the
//! reply goes on. `messages.cancel` reaches it through [`ActiveReplies`]
//! from any thread; dropping the stream closes the model's request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::oneshot;

use super::approvals::{self, Decision};
use super::tools::{self, ToolContext};
use super::views::{message_view, raw_json};
use super::ChatShared;
use crate::assistant::{
    AssistantError, ReplyDone, ReplyEvent, ReplyStream, ToolOutcome, ToolRequest,
};
use crate::broadcaster::Publish;
use crate::channels::broker::ApprovalRelay;
use crate::channels::stream::{Payload, Publisher};
use crate::model::channel_name::ChannelName;
use crate::model::ids::{MessageId, PlayerId, SessionId};
use crate::model::time::Timestamp;
use crate::protocol::sessions::{
    AssistantActivity, Delta, EndCode, ReplyEnded, SessionEvent, StatusUpdate, SuggestedAction,
    ToolCompleted, ToolStarted,
};
use crate::protocol::Element;
use crate::store::conversations::{FinalStatus, MessageStatus, ReplyEnd, StoredMessage};

/// How often the text so far is written to the store while a reply
/// streams: what a restart keeps, at a few writes per reply.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The replies streaming on this node, by id, so that a cancel from any
/// connection on any thread reaches the task that runs one.
#[derive(Clone, Default)]
pub struct ActiveReplies(Arc<Mutex<HashMap<MessageId, Running>>>);

struct Running {
    player: PlayerId,
    session: SessionId,
    cancel: Option<oneshot::Sender<()>>,
}

impl ActiveReplies {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, Running>> {
        // Entries are added and removed whole: a panic elsewhere leaves
        // the map consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(
        &self,
        player: &PlayerId,
        session: &SessionId,
        reply: MessageId,
    ) -> oneshot::Receiver<()> {
        let (cancel, cancelled) = oneshot::channel();
        self.lock().insert(
            reply,
            Running {
                player: player.clone(),
                session: session.clone(),
                cancel: Some(cancel),
            },
        );
        cancelled
    }

    /// Asks the reply to stop; true when it is running on this node (a
    /// second cancel of a reply still stopping is true too).
    pub fn cancel(&self, player: &PlayerId, session: &SessionId, reply: &MessageId) -> bool {
        let mut running = self.lock();
        match running.get_mut(reply) {
            Some(entry) if &entry.player == player && &entry.session == session => {
                if let Some(cancel) = entry.cancel.take() {
                    let _ = cancel.send(());
                }
                true
            }
            _ => false,
        }
    }

    fn finished(&self, reply: &MessageId) {
        self.lock().remove(reply);
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }
}

/// Everything a reply task needs.
pub(super) struct ReplyJob {
    pub shared: ChatShared,
    pub player: PlayerId,
    pub session: SessionId,
    pub agent: String,
    /// Published first; `None` for a retry, whose question is already out.
    pub user_message: Option<StoredMessage>,
    /// As the store started it: streaming, empty.
    pub reply: StoredMessage,
    pub stream: ReplyStream,
    /// What the reply offers; tools may add to it while it runs.
    pub elements: Vec<Element>,
    pub safety: Box<RawValue>,
    /// Fires (or is dropped) once the asker has joined the channel.
    pub go: oneshot::Receiver<()>,
}

pub(super) fn spawn(job: ReplyJob) {
    let cancelled =
        job.shared
            .conversations
            .active
            .register(&job.player, &job.session, job.reply.id);
    job.shared.metrics.assistant.reply_started();
    actix_rt::spawn(drive(job, cancelled));
}

/// `usage` of a stored reply.
#[derive(Serialize)]
struct UsageView {
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens: Option<u32>,
    response_time_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_token_ms: Option<u64>,
    /// The tools called, in order (a tool called twice is named twice).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools_used: Vec<String>,
}

enum End {
    Completed(ReplyDone),
    Cancelled,
    Failed(AssistantError),
}

impl End {
    fn outcome(&self) -> &'static str {
        match self {
            End::Completed(_) => "completed",
            End::Cancelled => "cancelled",
            End::Failed(_) => "failed",
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A reply's publications and the text they have carried.
struct Outlet {
    /// The tools called so far, in order.
    tools_used: Vec<String>,
    shared: ChatShared,
    channel: ChannelName,
    reply: MessageId,
    text: String,
    /// Arrived and not yet published.
    pending: String,
    next_index: u32,
    last_delta: Option<Instant>,
    last_saved: Instant,
    /// The write of the text so far, while it runs: at most one at a time,
    /// and never awaited between deltas (a durable write waits on the
    /// disk, which the next delta must not).
    saving: Option<tokio::task::JoinHandle<()>>,
}

impl Outlet {
    async fn publish(&self, event: SessionEvent) {
        let name = event.name();
        let data = Payload::from_raw(raw_json(&event));
        let publish = Publish {
            channel: self.channel.clone(),
            publisher: Publisher::Server,
            data,
        };
        match self.shared.conversations.broadcaster.send(publish).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                log::warn!(channel:% = self.channel, event:% = name, error:% = err; "reply_publish_failed")
            }
            Err(err) => {
                log::warn!(channel:% = self.channel, event:% = name, error:% = err; "reply_publish_failed")
            }
        }
    }

    /// Publishes what is pending as the next delta, and now and then
    /// keeps the text so far.
    async fn flush(&mut self, job: &ReplyJob) {
        if self.pending.is_empty() {
            return;
        }
        let delta = Delta {
            message_id: self.reply,
            index: self.next_index,
            text: std::mem::take(&mut self.pending),
        };
        self.next_index += 1;
        self.last_delta = Some(Instant::now());
        self.shared.metrics.assistant.delta();
        self.publish(SessionEvent::MessageDelta(delta)).await;
        let idle = self.saving.as_ref().is_none_or(|save| save.is_finished());
        if idle && self.last_saved.elapsed() >= SAVE_EVERY {
            self.last_saved = Instant::now();
            let store = self.shared.conversations.store.clone();
            let (player, session, reply, text) = (
                job.player.clone(),
                job.session.clone(),
                self.reply,
                self.text.clone(),
            );
            self.saving = Some(actix_rt::task::spawn_blocking(move || {
                if let Err(err) = store.save_partial(&player, &session, &reply, &text) {
                    log::warn!(reply_id:% = reply, error:% = err; "reply_save_failed");
                }
            }));
        }
    }

    /// Waits for a write of the text so far, so that the end is written
    /// after it.
    async fn saved(&mut self) {
        if let Some(save) = self.saving.take() {
            let _ = save.await;
        }
    }
}

async fn drive(mut job: ReplyJob, mut cancelled: oneshot::Receiver<()>) {
    let started = Instant::now();
    // Sent or dropped: either way the asker is as joined as it will be.
    let _ = (&mut job.go).await;
    let shared = job.shared.clone();
    let coalesce = shared.conversations.settings.coalesce;
    let mut out = Outlet {
        tools_used: Vec::new(),
        shared: shared.clone(),
        channel: ChannelName::session(&job.session),
        reply: job.reply.id,
        text: String::new(),
        pending: String::new(),
        next_index: 0,
        last_delta: None,
        last_saved: Instant::now(),
        saving: None,
    };
    if let Some(user) = job.user_message.take() {
        out.publish(SessionEvent::MessageCreated(message_view(user)))
            .await;
    }
    out.publish(SessionEvent::MessageCreated(message_view(
        job.reply.clone(),
    )))
    .await;

    let mut stream =
        std::mem::replace(&mut job.stream, Box::pin(futures_util::stream::empty())).peekable();
    // A reply that is not ready at once (a model's) says it is thinking.
    if std::pin::Pin::new(&mut stream)
        .peek()
        .now_or_never()
        .is_none()
    {
        out.publish(SessionEvent::AssistantStatus(StatusUpdate {
            message_id: job.reply.id,
            status: AssistantActivity::Thinking,
            activity: "composing a reply",
        }))
        .await;
    }
    let mut first_token: Option<Duration> = None;
    let mut flush_at: Option<tokio::time::Instant> = None;
    let end = loop {
        let next = tokio::select! {
            biased;
            _ = &mut cancelled => break End::Cancelled,
            _ = tokio::time::sleep_until(flush_at.unwrap_or_else(tokio::time::Instant::now)),
                if flush_at.is_some() =>
            {
                flush_at = None;
                out.flush(&job).await;
                continue;
            }
            next = stream.next() => next,
        };
        match next {
            Some(ReplyEvent::Text(piece)) => {
                if first_token.is_none() {
                    let after = started.elapsed();
                    first_token = Some(after);
                    shared.metrics.assistant.first_token(&job.agent, after);
                }
                out.text.push_str(&piece);
                out.pending.push_str(&piece);
                match out.last_delta {
                    Some(last) if last.elapsed() < coalesce => {
                        flush_at
                            .get_or_insert_with(|| tokio::time::Instant::from_std(last + coalesce));
                    }
                    _ => {
                        flush_at = None;
                        out.flush(&job).await;
                    }
                }
            }
            Some(ReplyEvent::Tool(call)) => {
                // The words before the call are seen before it.
                flush_at = None;
                out.flush(&job).await;
                let ran = tokio::select! {
                    biased;
                    _ = &mut cancelled => None,
                    outcome = run_tool(&mut job, &mut out, &call) => Some(outcome),
                };
                match ran {
                    // Nobody may wait for it any more (the built-in engine).
                    Some(outcome) => {
                        let _ = call.respond.send(outcome);
                    }
                    None => break End::Cancelled,
                }
            }
            Some(ReplyEvent::Done(done)) => break End::Completed(done),
            Some(ReplyEvent::Failed(err)) => break End::Failed(err),
            None => break End::Failed(AssistantError::Incomplete),
        }
    };
    // Dropping the stream closes the model's connection at once.
    drop(stream);
    out.flush(&job).await;
    out.saved().await;
    let outcome = end.outcome();
    finish(&job, &out, end, started, first_token).await;
    log::debug!(reply_id:% = job.reply.id, outcome:%, deltas:% = out.next_index, ms:% = started.elapsed().as_millis(); "reply_ended");
}

/// Runs one tool call between `tool.started` and `tool.completed`.
async fn run_tool(job: &mut ReplyJob, out: &mut Outlet, call: &ToolRequest) -> ToolOutcome {
    let shared = job.shared.clone();
    let arguments = arguments_for_event(&call.arguments);
    out.publish(SessionEvent::AssistantStatus(StatusUpdate {
        message_id: job.reply.id,
        status: AssistantActivity::Tool,
        activity: "using a tool",
    }))
    .await;
    out.publish(SessionEvent::ToolStarted(ToolStarted {
        message_id: job.reply.id,
        call_id: call.call_id.clone(),
        tool: call.name.clone(),
        arguments: arguments.clone(),
    }))
    .await;
    let allowed = shared
        .agents
        .get(&job.agent)
        .map_or(&[][..], |agent| agent.tools.as_slice());
    let checked = tools::check(allowed, &call.name, &call.arguments);
    // Only a call that could run is put to the player.
    let approved = match &checked {
        Ok(checked) if checked.tool.requires_approval => {
            let asked = Instant::now();
            match approval(job, out, call, arguments).await {
                Ok(()) => true,
                Err(refusal) => return finish_tool(job, out, call, refusal, asked).await,
            }
        }
        _ => false,
    };
    let started = Instant::now();
    let outcome = match checked {
        Ok(checked) => {
            let context = ToolContext {
                shared: &shared,
                player: &job.player,
                session: &job.session,
                approved,
            };
            tools::run(&context, checked, &mut job.elements).await
        }
        Err(refusal) => refusal,
    };
    finish_tool(job, out, call, outcome, started).await
}

/// The arguments for an event: as JSON when they parse, else as the text
/// the assistant wrote.
fn arguments_for_event(arguments: &str) -> Box<RawValue> {
    RawValue::from_string(arguments.to_string())
        .ok()
        .filter(|raw| serde_json::from_str::<serde::de::IgnoredAny>(raw.get()).is_ok())
        .unwrap_or_else(|| raw_json(&arguments))
}

/// Asks the player (`tool.approval_required`) and waits for the decision
/// from any of their connections on this node, at most the approval
/// timeout; `Err` is the outcome of a call that will not run.
async fn approval(
    job: &ReplyJob,
    out: &Outlet,
    call: &ToolRequest,
    arguments: Box<RawValue>,
) -> Result<(), ToolOutcome> {
    let conversations = &job.shared.conversations;
    let Some((waiting, decision)) =
        conversations
            .approvals
            .wait(&job.player, &job.session, &call.call_id)
    else {
        return Err(tools::failed(
            "another call with this id waits for approval",
        ));
    };
    let limit = conversations.settings.approval_timeout;
    let relay = conversations.approvals.relay().clone();
    let relay_key = approvals::relay_key(&job.session, &call.call_id);
    if relay.is_shared() {
        // A little longer than the wait: a decision on its way still lands.
        let ttl = limit + Duration::from_secs(5);
        if let Err(err) = relay.waiting(&relay_key, &job.player, ttl).await {
            log::warn!(reply_id:% = job.reply.id, error:% = err; "approval_relay_failed");
        }
    }
    out.publish(SessionEvent::ToolApprovalRequired(ToolStarted {
        message_id: job.reply.id,
        call_id: call.call_id.clone(),
        tool: call.name.clone(),
        arguments,
    }))
    .await;
    let decided = tokio::time::timeout(
        limit,
        decided_here_or_elsewhere(decision, &*relay, &relay_key),
    )
    .await;
    drop(waiting);
    if relay.is_shared() {
        let _ = relay.done(&relay_key).await;
    }
    let meters = &job.shared.metrics.assistant;
    match decided {
        Ok(Ok(Decision::Approved)) => {
            meters.tool_decision(&call.name, "approved");
            Ok(())
        }
        Ok(Ok(Decision::Rejected)) | Ok(Err(_)) => {
            meters.tool_decision(&call.name, "rejected");
            Err(tools::failed("the player declined; not run"))
        }
        Err(_) => {
            meters.tool_decision(&call.name, "timed_out");
            Err(tools::failed(format!(
                "no answer within {} s; not run",
                limit.as_secs()
            )))
        }
    }
}

/// How often a call waiting in a cluster looks for a decision made on
/// another node.
const RELAYED_DECISION_EVERY: Duration = Duration::from_millis(200);

/// The decision made on this node, or, in a cluster, one passed on from
/// another node.
async fn decided_here_or_elsewhere(
    mut here: oneshot::Receiver<Decision>,
    relay: &dyn ApprovalRelay,
    key: &str,
) -> Result<Decision, oneshot::error::RecvError> {
    if !relay.is_shared() {
        return here.await;
    }
    let mut every = tokio::time::interval(RELAYED_DECISION_EVERY);
    loop {
        tokio::select! {
            decided = &mut here => return decided,
            _ = every.tick() => {
                if let Ok(Some(approved)) = relay.take(key).await {
                    return Ok(if approved { Decision::Approved } else { Decision::Rejected });
                }
            }
        }
    }
}

/// Counts the call, names it in `tools_used` and publishes `tool.completed`.
async fn finish_tool(
    job: &ReplyJob,
    out: &mut Outlet,
    call: &ToolRequest,
    outcome: ToolOutcome,
    started: Instant,
) -> ToolOutcome {
    let shared = &job.shared;
    shared
        .metrics
        .assistant
        .tool_call(&call.name, outcome.ok, started.elapsed());
    out.tools_used.push(call.name.clone());
    out.publish(SessionEvent::ToolCompleted(ToolCompleted {
        message_id: job.reply.id,
        call_id: call.call_id.clone(),
        tool: call.name.clone(),
        ok: outcome.ok,
        summary: outcome.summary.clone(),
    }))
    .await;
    outcome
}

/// Ends the reply in the store, then on the channel.
async fn finish(
    job: &ReplyJob,
    out: &Outlet,
    end: End,
    started: Instant,
    first_token: Option<Duration>,
) {
    let shared = &job.shared;
    let end_outcome = end.outcome();
    let (status, usage, fallback, finish_reason) = match &end {
        End::Completed(done) => {
            if let Some(tokens) = done.usage.completion_tokens {
                shared.metrics.assistant.tokens(tokens);
            }
            let usage = UsageView {
                prompt_tokens: done.usage.prompt_tokens,
                completion_tokens: done.usage.completion_tokens,
                response_time_ms: millis(started.elapsed()),
                first_token_ms: first_token.map(millis),
                tools_used: out.tools_used.clone(),
            };
            (
                FinalStatus::Complete,
                Some(raw_json(&usage)),
                done.fallback,
                done.finish_reason.as_ref().map(|r| r.as_str().to_string()),
            )
        }
        End::Cancelled => (
            FinalStatus::Cancelled,
            None,
            false,
            Some("cancelled".into()),
        ),
        End::Failed(_) => (FinalStatus::Failed, None, false, Some("error".into())),
    };
    let completed_at = Timestamp::now();
    let elements = raw_json(&job.elements);
    let record = ReplyEnd {
        status,
        text: out.text.clone(),
        elements: elements.clone(),
        safety: job.safety.clone(),
        usage: usage.clone(),
        fallback,
        finish_reason: finish_reason.clone(),
        completed_at,
    };
    let store = shared.conversations.store.clone();
    let (player, session, reply) = (job.player.clone(), job.session.clone(), job.reply.id);
    let stored = actix_rt::task::spawn_blocking(move || {
        store.finish_reply(&player, &session, &reply, record)
    })
    .await;
    let stored = match stored {
        Ok(Ok(stored)) => Some(stored),
        Ok(Err(err)) => {
            log::warn!(reply_id:% = job.reply.id, error:% = err; "reply_finish_failed");
            None
        }
        Err(err) => {
            log::warn!(reply_id:% = job.reply.id, error:% = err; "reply_finish_failed");
            None
        }
    };
    let event = match end {
        End::Completed(_) => {
            // What the store now holds; built here if it could not say.
            let message = stored.unwrap_or_else(|| StoredMessage {
                text: out.text.clone(),
                status: MessageStatus::Complete,
                completed_at: Some(completed_at),
                elements,
                safety: job.safety.clone(),
                usage,
                fallback,
                finish_reason,
                ..job.reply.clone()
            });
            SessionEvent::MessageCompleted(message_view(message))
        }
        End::Cancelled => {
            shared.metrics.assistant.cancelled();
            SessionEvent::MessageCancelled(ReplyEnded {
                message_id: job.reply.id,
                text_so_far: out.text.clone(),
                code: EndCode::Cancelled,
                message: "the reply was cancelled".into(),
                is_recoverable: true,
                suggested_action: SuggestedAction::Retry,
            })
        }
        End::Failed(err) => SessionEvent::MessageFailed(ReplyEnded {
            message_id: job.reply.id,
            text_so_far: out.text.clone(),
            code: EndCode::ModelFailed,
            message: err.to_string(),
            is_recoverable: true,
            suggested_action: SuggestedAction::Retry,
        }),
    };
    // Over before it is seen to be over: a cancel that reads the end
    // finds the reply ended, and so do the figures.
    shared
        .metrics
        .assistant
        .reply_ended(&job.agent, end_outcome, started.elapsed());
    shared.conversations.active.finished(&job.reply.id);
    out.publish(event).await;
}
