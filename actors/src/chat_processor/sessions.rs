//! The v1.1 methods of assistant sessions, each answered once. Store work
//! runs on the blocking pool, never on the processor's thread. A method
//! that starts a reply checks the player's text first (crisis detection
//! before any model sees it), asks the assistant for a reply stream (which
//! may refuse when too many model requests are in flight), records the
//! turn, and hands the stream to a reply task (`reply.rs`).

use std::collections::HashSet;

use tokio::sync::oneshot;

use super::approvals::{relay_key, Decision};
use super::reply::{self, ReplyJob};
use super::views::{message_view, raw_json, session_view, store_error};
use super::ChatShared;
use crate::assistant::{tools, Busy, ReplyStream, Speaker, Turn};
use crate::model::channel_name::ChannelName;
use crate::model::ids::{MessageId, PlayerId, SessionId};
use crate::protocol::agents::{AgentResult, AgentsResult, DecisionResult, ToolsResult};
use crate::protocol::calls::Call;
use crate::protocol::sessions::{
    CancelResult, MessagesPage, RetryResult, SentResult, SessionDetail, SessionsPage,
};
use crate::protocol::{ErrorCode, ErrorFrame, ResponseResult, SessionResult};
use crate::store::conversations::{
    ConversationError, ConversationQuery, ConversationStore, MessageQuery, MessageStatus,
    NewConversation, NewUserMessage, Role, StoredMessage,
};

/// The most characters of earlier turns a model is given, newest kept: a
/// budget that fits small local models' context beside the system prompt.
const HISTORY_CHAR_BUDGET: usize = 8_000;

/// What a request answers, and the session channel the asking connection
/// joins when the request started (or repeated) a reply.
pub struct CallOutcome {
    pub result: ResponseResult,
    pub join: Option<JoinSession>,
}

impl CallOutcome {
    fn answer(result: ResponseResult) -> Self {
        CallOutcome { result, join: None }
    }
}

/// The connection that asked joins `channel` before the reply's first
/// event is published: the reply task waits for `go` (or for it to be
/// dropped), so that the asker sees every event live.
pub struct JoinSession {
    pub channel: ChannelName,
    go: Option<oneshot::Sender<()>>,
}

impl JoinSession {
    /// Lets the reply publish; call once the join has been sent.
    pub fn go(mut self) {
        if let Some(go) = self.go.take() {
            // The reply task may already be gone (cancelled): nothing waits.
            let _ = go.send(());
        }
    }

    /// The signal itself, for whoever completes the join (the broadcaster,
    /// once the connection is in the channel's room); dropping it also lets
    /// the reply go.
    pub fn into_signal(mut self) -> Option<oneshot::Sender<()>> {
        self.go.take()
    }
}

fn join(session: &SessionId) -> (JoinSession, oneshot::Receiver<()>) {
    let (go, wait) = oneshot::channel();
    let join = JoinSession {
        channel: ChannelName::session(session),
        go: Some(go),
    };
    (join, wait)
}

/// Runs `work` on the store, on the blocking pool.
async fn blocking<T, F>(shared: &ChatShared, work: F) -> Result<T, ErrorFrame>
where
    T: Send + 'static,
    F: FnOnce(&dyn ConversationStore) -> Result<T, ConversationError> + Send + 'static,
{
    let store = shared.conversations.store.clone();
    match actix_rt::task::spawn_blocking(move || work(&*store)).await {
        Ok(result) => result.map_err(store_error),
        Err(err) => {
            log::error!(error:% = err; "conversation_task_failed");
            Err(ErrorFrame::new(
                ErrorCode::Unavailable,
                "the conversation store cannot answer now; retry",
            ))
        }
    }
}

fn busy_error(busy: Busy) -> ErrorFrame {
    ErrorFrame {
        retry_after_ms: Some(u64::try_from(busy.retry_after.as_millis()).unwrap_or(u64::MAX)),
        ..ErrorFrame::new(
            ErrorCode::Unavailable,
            "the assistant is answering as many messages as it can; retry shortly",
        )
    }
}

fn not_found() -> ErrorFrame {
    ErrorFrame::new(ErrorCode::NotFound, "no such session or message")
}

/// A message id a client named: one that cannot be an id names nothing.
fn message_id(text: &str) -> Result<MessageId, ErrorFrame> {
    MessageId::parse(text).map_err(|_| not_found())
}

pub(super) async fn answer(
    shared: ChatShared,
    player: PlayerId,
    call: Call,
    default_agent: Option<std::sync::Arc<str>>,
) -> Result<CallOutcome, ErrorFrame> {
    let method = call.method();
    let outcome = match call {
        Call::SessionsCreate {
            title,
            agent,
            pillar,
        } => {
            let asker = player.clone();
            let (agent, pillar) = shared
                .agents
                .bind(
                    agent.as_deref(),
                    pillar.as_deref(),
                    default_agent.as_deref(),
                )
                .map_err(|problem| ErrorFrame::new(ErrorCode::BadRequest, problem))?;
            let new = NewConversation {
                title,
                agent: Some(agent.id.clone()),
                pillar,
            };
            let created = blocking(&shared, move |s| s.create_conversation(&asker, new)).await?;
            // A title is words the player wrote, sometimes the first ones:
            // it is checked like a message, and a crisis in it is answered
            // with help in the result itself.
            let mut result = SessionResult::plain(session_view(created));
            if let Some(title) = &result.session.title {
                let assessed = shared.assess(title, &player);
                if assessed.crisis.is_crisis() {
                    result.safety = Some(assessed.safety);
                    result.elements = assessed.elements;
                }
            }
            Ok(CallOutcome::answer(ResponseResult::Session(result)))
        }
        Call::AgentsList => Ok(CallOutcome::answer(ResponseResult::Agents(AgentsResult {
            agents: shared.agents.all().to_vec(),
        }))),
        Call::AgentsGet { agent_id } => match shared.agents.get(&agent_id) {
            Some(agent) => Ok(CallOutcome::answer(ResponseResult::Agent(AgentResult {
                agent: agent.clone(),
            }))),
            None => Err(ErrorFrame::new(ErrorCode::NotFound, "no such agent")),
        },
        Call::ToolsList => Ok(CallOutcome::answer(ResponseResult::Tools(ToolsResult {
            tools: tools::TOOLS.to_vec(),
        }))),
        Call::ToolsDecide {
            session_id,
            call_id,
            approve,
        } => {
            let decision = if approve {
                Decision::Approved
            } else {
                Decision::Rejected
            };
            let approvals = &shared.conversations.approvals;
            let decided = approvals.decide(&player, &session_id, &call_id, decision)
                || (approvals.relay().is_shared()
                    && approvals
                        .relay()
                        .forward(&relay_key(&session_id, &call_id), &player, approve)
                        .await
                        .map_err(|_| {
                            ErrorFrame::new(
                                ErrorCode::Unavailable,
                                "the decision cannot reach the other servers now; retry",
                            )
                        })?);
            if decided {
                Ok(CallOutcome::answer(ResponseResult::Decided(
                    DecisionResult {
                        call_id,
                        approved: approve,
                    },
                )))
            } else {
                Err(ErrorFrame::new(
                    ErrorCode::NotFound,
                    "no call of this session waits for approval",
                ))
            }
        }
        Call::SessionsList {
            include_archived,
            limit,
            before,
        } => {
            let query = ConversationQuery {
                include_archived,
                limit,
                before,
            };
            let page = blocking(&shared, move |s| s.conversations(&player, &query)).await?;
            Ok(CallOutcome::answer(ResponseResult::Sessions(
                SessionsPage {
                    sessions: page.items.into_iter().map(session_view).collect(),
                    next: page.next,
                },
            )))
        }
        Call::SessionsGet {
            session_id,
            messages,
        } => {
            let (conversation, recent) = blocking(&shared, move |s| {
                let conversation = s
                    .conversation(&player, &session_id)?
                    .ok_or(ConversationError::NotFound)?;
                let recent = s.recent_messages(&player, &session_id, messages)?;
                Ok((conversation, recent))
            })
            .await?;
            Ok(CallOutcome::answer(ResponseResult::SessionDetail(
                SessionDetail {
                    session: session_view(conversation),
                    messages: recent.into_iter().map(message_view).collect(),
                },
            )))
        }
        Call::SessionsArchive { session_id } => {
            let archived = blocking(&shared, move |s| {
                s.archive_conversation(&player, &session_id)?
                    .ok_or(ConversationError::NotFound)
            })
            .await?;
            Ok(CallOutcome::answer(ResponseResult::Session(
                SessionResult::plain(session_view(archived)),
            )))
        }
        Call::MessagesList {
            session_id,
            limit,
            before,
        } => {
            let query = MessageQuery { limit, before };
            let page = blocking(&shared, move |s| s.messages(&player, &session_id, &query)).await?;
            Ok(CallOutcome::answer(ResponseResult::Messages(
                MessagesPage {
                    messages: page.items.into_iter().map(message_view).collect(),
                    next: page.next,
                },
            )))
        }
        Call::MessagesSend {
            session_id,
            text,
            client_message_id,
        } => send(shared, player, session_id, text, client_message_id).await,
        Call::MessagesCancel {
            session_id,
            message_id: reply,
        } => cancel(shared, player, session_id, message_id(&reply)?).await,
        Call::MessagesRetry {
            session_id,
            message_id: reply,
        } => retry(shared, player, session_id, message_id(&reply)?).await,
    };
    if let Err(error) = &outcome {
        log::debug!(method:%, code:? = error.code; "request_refused");
    }
    outcome
}

/// The turns before `until` (all of `recent` when `None`) that a model
/// reads, oldest first, within the turn count and the character budget.
fn prompt_history(
    recent: &[StoredMessage],
    until: Option<&MessageId>,
    turns: usize,
) -> Vec<(Speaker, String)> {
    let end = match until {
        Some(id) => recent.iter().position(|m| &m.id == id).unwrap_or(0),
        None => recent.len(),
    };
    let mut picked = Vec::new();
    let mut chars = 0;
    for message in recent[..end].iter().rev() {
        // A reply cut off before it said anything is not a turn.
        if message.text.is_empty() {
            continue;
        }
        chars += message.text.chars().count();
        if picked.len() >= turns || chars > HISTORY_CHAR_BUDGET {
            break;
        }
        let speaker = match message.role {
            Role::User => Speaker::User,
            Role::Assistant => Speaker::Assistant,
        };
        picked.push((speaker, message.text.clone()));
    }
    picked.reverse();
    picked
}

/// The reply stream for `text`, or `unavailable` when the model is at its
/// limit. Nothing is stored before this answers, so a refused send leaves
/// no trace.
fn ask_assistant(
    shared: &ChatShared,
    player: &PlayerId,
    raw: &str,
    assessed: &super::Assessed,
    history: &[(Speaker, String)],
    agent: &str,
) -> Result<ReplyStream, ErrorFrame> {
    let agent = shared.agents.get(agent);
    shared
        .assistant
        .try_reply(&Turn {
            player,
            raw,
            text: &assessed.text,
            crisis: &assessed.crisis,
            anxious: assessed.anxious,
            history,
            // A session of an agent no longer configured keeps Hearth's
            // own prompt and is offered no tool.
            instructions: agent.map_or("", |agent| agent.instructions.as_str()),
            tools: agent.map_or(&[], |agent| agent.tools.as_slice()),
        })
        .map_err(busy_error)
}

async fn send(
    shared: ChatShared,
    player: PlayerId,
    session_id: SessionId,
    text: String,
    client_message_id: Option<String>,
) -> Result<CallOutcome, ErrorFrame> {
    let turns = shared.conversations.settings.history_turns;
    let (conversation, recent) = {
        let (player, session_id) = (player.clone(), session_id.clone());
        blocking(&shared, move |s| {
            let conversation = s
                .conversation(&player, &session_id)?
                .ok_or(ConversationError::NotFound)?;
            let recent = s.recent_messages(&player, &session_id, turns)?;
            Ok((conversation, recent))
        })
        .await?
    };
    if conversation.archived {
        return Err(ErrorFrame::new(
            ErrorCode::Conflict,
            "the session is archived; start a new one",
        ));
    }
    let assessed = shared.assess_with_opinion(&text, &player).await;
    let history = prompt_history(&recent, None, turns);
    let stream = ask_assistant(
        &shared,
        &player,
        &text,
        &assessed,
        &history,
        &conversation.agent,
    )?;

    let new = NewUserMessage {
        text,
        client_message_id,
        safety: raw_json(&assessed.safety),
        character_id: None,
        world_id: None,
    };
    let (user, started) = {
        let (player, session_id) = (player.clone(), session_id.clone());
        blocking(&shared, move |s| {
            let appended = s.append_user_message(&player, &session_id, new)?;
            if appended.repeated {
                let earlier = s.latest_reply_to(&player, &session_id, &appended.message.id)?;
                return Ok((appended.message, Err(earlier)));
            }
            let reply = s.start_reply(&player, &session_id, &appended.message.id)?;
            Ok((appended.message, Ok(reply)))
        })
        .await?
    };
    let (join, go) = join(&session_id);
    let reply = match started {
        Ok(reply) => reply,
        // The same client_message_id again: the first send's answer, and
        // nothing started; the asker still joins the session's channel.
        Err(earlier) => {
            let reply = earlier.ok_or_else(|| {
                ErrorFrame::new(
                    ErrorCode::Conflict,
                    "this message was sent before and its reply is no longer at hand",
                )
            })?;
            return Ok(CallOutcome {
                result: ResponseResult::Sent(SentResult {
                    message_id: user.id,
                    reply_id: reply.id,
                }),
                join: Some(join),
            });
        }
    };
    let result = ResponseResult::Sent(SentResult {
        message_id: user.id,
        reply_id: reply.id,
    });
    reply::spawn(ReplyJob {
        shared,
        player,
        session: session_id,
        agent: conversation.agent,
        user_message: Some(user),
        reply,
        stream,
        elements: assessed.elements.clone(),
        safety: raw_json(&assessed.safety),
        go,
    });
    Ok(CallOutcome {
        result,
        join: Some(join),
    })
}

async fn cancel(
    shared: ChatShared,
    player: PlayerId,
    session_id: SessionId,
    reply: MessageId,
) -> Result<CallOutcome, ErrorFrame> {
    if shared
        .conversations
        .active
        .cancel(&player, &session_id, &reply)
    {
        return Ok(CallOutcome::answer(ResponseResult::Cancelled(
            CancelResult { cancelled: true },
        )));
    }
    // Not running here: the store says whether it ended or is elsewhere.
    let found = blocking(&shared, move |s| s.message(&player, &session_id, &reply)).await?;
    match found {
        Some(message) if message.role == Role::Assistant => {
            if message.status == MessageStatus::Streaming {
                // Streamed by another node of the cluster (or by one that
                // stopped and has not restarted to mark it failed).
                Err(ErrorFrame::new(
                    ErrorCode::Unavailable,
                    "the reply is streaming from another node and cannot be cancelled from this one",
                ))
            } else {
                Err(ErrorFrame::new(
                    ErrorCode::Conflict,
                    format!("the reply is {}, no longer streaming", message.status),
                ))
            }
        }
        _ => Err(not_found()),
    }
}

async fn retry(
    shared: ChatShared,
    player: PlayerId,
    session_id: SessionId,
    earlier_reply: MessageId,
) -> Result<CallOutcome, ErrorFrame> {
    let turns = shared.conversations.settings.history_turns;
    let (conversation, earlier, asked, recent) = {
        let (player, session_id) = (player.clone(), session_id.clone());
        blocking(&shared, move |s| {
            let conversation = s
                .conversation(&player, &session_id)?
                .ok_or(ConversationError::NotFound)?;
            let earlier = s
                .message(&player, &session_id, &earlier_reply)?
                .filter(|m| m.role == Role::Assistant)
                .ok_or(ConversationError::NotFound)?;
            let asked_id = earlier.reply_to.ok_or(ConversationError::NotFound)?;
            let asked = s
                .message(&player, &session_id, &asked_id)?
                .ok_or(ConversationError::NotFound)?;
            // Enough to reach back past the replies given since.
            let recent = s.recent_messages(&player, &session_id, turns + 50)?;
            Ok((conversation, earlier, asked, recent))
        })
        .await?
    };
    if earlier.status == MessageStatus::Streaming {
        return Err(ErrorFrame::new(
            ErrorCode::Conflict,
            "the reply is still streaming; cancel it first",
        ));
    }
    if conversation.archived {
        return Err(ErrorFrame::new(
            ErrorCode::Conflict,
            "the session is archived; start a new one",
        ));
    }
    let assessed = shared.reassess(&asked.text);
    let history = prompt_history(&recent, Some(&asked.id), turns);
    let stream = ask_assistant(
        &shared,
        &player,
        &asked.text,
        &assessed,
        &history,
        &conversation.agent,
    )?;
    let reply = {
        let (player, session_id, asked_id) = (player.clone(), session_id.clone(), asked.id);
        blocking(&shared, move |s| {
            s.start_reply(&player, &session_id, &asked_id)
        })
        .await?
    };
    let (join, go) = join(&session_id);
    let result = ResponseResult::Retried(RetryResult { reply_id: reply.id });
    reply::spawn(ReplyJob {
        shared,
        player,
        session: session_id,
        agent: conversation.agent,
        user_message: None,
        reply,
        stream,
        elements: assessed.elements.clone(),
        safety: raw_json(&assessed.safety),
        go,
    });
    Ok(CallOutcome {
        result,
        join: Some(join),
    })
}

/// Which of `sessions` belong to `player`; none when the store cannot say.
pub(super) async fn owned(
    shared: ChatShared,
    player: PlayerId,
    sessions: Vec<SessionId>,
) -> HashSet<SessionId> {
    let owned = blocking(&shared, move |s| {
        let mut owned = HashSet::new();
        for id in sessions {
            if s.conversation(&player, &id)?.is_some() {
                owned.insert(id);
            }
        }
        Ok(owned)
    })
    .await;
    owned.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::Timestamp;

    fn message(role: Role, text: &str) -> StoredMessage {
        StoredMessage {
            id: MessageId::generate(),
            session_id: SessionId::parse("s1").unwrap(),
            role,
            text: text.into(),
            status: MessageStatus::Complete,
            created_at: Timestamp::now(),
            completed_at: None,
            elements: Box::default(),
            safety: Box::default(),
            usage: None,
            fallback: false,
            finish_reason: None,
            client_message_id: None,
            reply_to: None,
            character_id: None,
            world_id: None,
        }
    }

    #[test]
    fn history_keeps_the_latest_turns_before_the_message_answered() {
        let recent = vec![
            message(Role::User, "one"),
            message(Role::Assistant, "two"),
            message(Role::User, "three"),
            message(Role::Assistant, ""),
            message(Role::Assistant, "four"),
        ];
        let all = prompt_history(&recent, None, 10);
        let texts: Vec<&str> = all.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            ["one", "two", "three", "four"],
            "empty replies skipped"
        );
        assert_eq!(all[0].0, Speaker::User);
        let last_two = prompt_history(&recent, None, 2);
        assert_eq!(last_two.len(), 2);
        assert_eq!(last_two[1].1, "four");
        let before_three = prompt_history(&recent, Some(&recent[2].id), 10);
        assert_eq!(before_three.len(), 2);
        assert!(prompt_history(&recent, Some(&MessageId::generate()), 10).is_empty());
    }

    #[test]
    fn history_stays_within_its_character_budget() {
        let long = "x".repeat(HISTORY_CHAR_BUDGET / 2 + 1);
        let recent = vec![
            message(Role::User, &long),
            message(Role::Assistant, &long),
            message(Role::User, "short"),
        ];
        let picked = prompt_history(&recent, None, 10);
        assert_eq!(picked.len(), 2, "the oldest turn is dropped");
        assert_eq!(picked[1].1, "short");
    }
}
