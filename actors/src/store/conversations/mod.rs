//! Where assistant conversations are kept: a player's sessions and the
//! messages in them, including replies still being streamed, so that a
//! reconnect, another device or a restart reads what was said.
//!
//! A session here is the same thing as the `session_id` of a v1 chat
//! message, so any valid `SessionId` names one, not only generated ones.
//! Every operation is scoped by the owning player: another player's session
//! or message answers exactly as an unknown one does.
//!
//! The store keeps `elements`, `safety` and `usage` as the JSON text the
//! caller gives and never looks inside. Like the progress store it is
//! blocking; callers run it on a blocking thread pool, never inside an
//! actor's handler.

#[cfg(test)]
pub(crate) mod conformance;
pub mod postgres;
pub mod sqlite;

use std::fmt;
use std::sync::Arc;

use chrono::SubsecRound;
use serde_json::value::RawValue;
use thiserror::Error;

use crate::model::ids::{MessageId, PlayerId, SessionId};
use crate::model::time::Timestamp;

/// The agent of a session created without naming one.
pub const DEFAULT_AGENT: &str = "guide";
/// The most items one page holds, whatever the caller asks for.
pub const MAX_PAGE: usize = 100;
/// A listing's page size when the caller names none.
pub const DEFAULT_SESSION_PAGE: usize = 20;
pub const DEFAULT_MESSAGE_PAGE: usize = 50;
/// `finish_reason` of a reply that recovery marked failed after a restart.
pub const INTERRUPTED: &str = "interrupted";
/// How far back `latest_reply_to` looks, in pages of `MAX_PAGE`.
pub const REPLY_SEARCH_PAGES: usize = 5;

/// The most sessions one player keeps: each new session id a client names
/// (a v1 `session_id`, `sessions.create`) adds one, and nothing else bounds
/// them. Past it, `sessions.create` is refused and v1 chat in a new session
/// is answered but not recorded.
pub const MAX_CONVERSATIONS_PER_PLAYER: i64 = 10_000;

#[derive(Debug, Error)]
pub enum ConversationError {
    /// No such session or message for this player: also the answer for one
    /// that belongs to someone else.
    #[error("conversation store: no such session or message")]
    NotFound,
    /// The reply has already ended, so it can be neither changed nor ended
    /// again.
    #[error("conversation store: the reply is {status}, not streaming")]
    NotStreaming { status: MessageStatus },
    /// A `before` cursor this store did not make (or made for the other
    /// kind of listing).
    #[error("conversation store: unreadable cursor")]
    BadCursor,
    /// The player has [`MAX_CONVERSATIONS_PER_PLAYER`] sessions already.
    #[error("conversation store: too many sessions for one player")]
    TooMany,
    #[error("conversation store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("conversation store: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("conversation store: could not create {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("conversation store: a stored row is unreadable: {0}")]
    Corrupt(String),
    #[error("conversation store: the connection lock was poisoned")]
    Poisoned,
    #[error("conversation store: {0}")]
    Unavailable(String),
}

impl From<crate::store::postgres_link::PoolUnavailable> for ConversationError {
    fn from(err: crate::store::postgres_link::PoolUnavailable) -> Self {
        ConversationError::Unavailable(err.0)
    }
}

/// One session of a player with the assistant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: SessionId,
    pub player: PlayerId,
    pub title: Option<String>,
    pub agent: String,
    pub pillar: Option<String>,
    pub created_at: Timestamp,
    /// Moves each time a message is added.
    pub updated_at: Timestamp,
    pub archived: bool,
    pub message_count: u64,
}

impl Conversation {
    /// A new session of `player`, as every store creates it.
    pub(crate) fn begin(player: &PlayerId, new: NewConversation, at: Timestamp) -> Self {
        Conversation {
            id: SessionId::generate(),
            player: player.clone(),
            title: new.title,
            agent: new.agent.unwrap_or_else(|| DEFAULT_AGENT.to_string()),
            pillar: new.pillar,
            created_at: at,
            updated_at: at,
            archived: false,
            message_count: 0,
        }
    }
}

/// Why a reply could not be changed, from what the store found under its
/// id in the player's session: an ended reply is `NotStreaming`; no reply
/// at all (or a user message) is `NotFound`.
pub(crate) fn refusal_for(found: Option<StoredMessage>) -> ConversationError {
    match found {
        Some(message) if message.role == Role::Assistant => ConversationError::NotStreaming {
            status: message.status,
        },
        _ => ConversationError::NotFound,
    }
}

/// What `create_conversation` takes; the store makes the id.
#[derive(Debug, Clone, Default)]
pub struct NewConversation {
    pub title: Option<String>,
    /// `DEFAULT_AGENT` when `None`.
    pub agent: Option<String>,
    pub pillar: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Role::User, Role::Assistant]
            .into_iter()
            .find(|role| role.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    Streaming,
    Complete,
    Cancelled,
    Failed,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Streaming => "streaming",
            MessageStatus::Complete => "complete",
            MessageStatus::Cancelled => "cancelled",
            MessageStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            MessageStatus::Streaming,
            MessageStatus::Complete,
            MessageStatus::Cancelled,
            MessageStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a reply ends: a status a reply can be finished with, so that
/// "finish as streaming" cannot be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalStatus {
    Complete,
    Cancelled,
    Failed,
}

impl FinalStatus {
    pub fn status(self) -> MessageStatus {
        match self {
            FinalStatus::Complete => MessageStatus::Complete,
            FinalStatus::Cancelled => MessageStatus::Cancelled,
            FinalStatus::Failed => MessageStatus::Failed,
        }
    }
}

/// A message as stored. `elements` is `[]` and `safety` is `null` until the
/// caller sets them.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: MessageId,
    pub session_id: SessionId,
    pub role: Role,
    pub text: String,
    pub status: MessageStatus,
    pub created_at: Timestamp,
    /// When the message reached its final status: a user message at once.
    pub completed_at: Option<Timestamp>,
    pub elements: Box<RawValue>,
    pub safety: Box<RawValue>,
    pub usage: Option<Box<RawValue>>,
    pub fallback: bool,
    pub finish_reason: Option<String>,
    /// The sender's idempotency key (user messages only).
    pub client_message_id: Option<String>,
    /// On a reply: the user message it answers.
    pub reply_to: Option<MessageId>,
    /// The v1 `metadata` of a user message.
    pub character_id: Option<String>,
    pub world_id: Option<String>,
}

/// A user message to add.
#[derive(Debug, Clone)]
pub struct NewUserMessage {
    pub text: String,
    /// A repeat with the same key in the same session adds nothing.
    pub client_message_id: Option<String>,
    /// The crisis check's outcome on this text.
    pub safety: Box<RawValue>,
    pub character_id: Option<String>,
    pub world_id: Option<String>,
}

/// The outcome of `append_user_message`.
#[derive(Debug, Clone)]
pub struct Appended {
    pub message: StoredMessage,
    /// True when `client_message_id` named a message already there, which is
    /// the one answered; nothing was added.
    pub repeated: bool,
}

/// Everything a reply is finished with.
#[derive(Debug, Clone)]
pub struct ReplyEnd {
    pub status: FinalStatus,
    pub text: String,
    pub elements: Box<RawValue>,
    pub safety: Box<RawValue>,
    pub usage: Option<Box<RawValue>>,
    pub fallback: bool,
    pub finish_reason: Option<String>,
    pub completed_at: Timestamp,
}

/// A v1 chat message and the reply it was given, recorded once the reply
/// has gone out (docs/protocol.md, section 10: a v1 session is a v1.1
/// session).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub player: PlayerId,
    /// Created with the defaults when the player has none of this id; an
    /// exchange in another player's session is not recorded.
    pub session: SessionId,
    /// The agent a session made by this exchange gets (`DEFAULT_AGENT`
    /// when `None`): the connection's, for a client on an agent's path.
    pub agent: Option<String>,
    pub user: NewUserMessage,
    /// The id the client saw on the reply.
    pub reply_id: MessageId,
    pub reply: ReplyEnd,
}

impl Exchange {
    /// The agent of a session this exchange makes.
    pub fn agent_or_default(&self) -> &str {
        self.agent.as_deref().unwrap_or(DEFAULT_AGENT)
    }
}

#[derive(Debug, Clone)]
pub struct ConversationQuery {
    pub include_archived: bool,
    /// At most `MAX_PAGE`; at least 1.
    pub limit: usize,
    /// The `next` of the page before.
    pub before: Option<String>,
}

impl Default for ConversationQuery {
    fn default() -> Self {
        ConversationQuery {
            include_archived: false,
            limit: DEFAULT_SESSION_PAGE,
            before: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MessageQuery {
    /// At most `MAX_PAGE`; at least 1.
    pub limit: usize,
    /// The `next` of the page before.
    pub before: Option<String>,
}

impl Default for MessageQuery {
    fn default() -> Self {
        MessageQuery {
            limit: DEFAULT_MESSAGE_PAGE,
            before: None,
        }
    }
}

/// One page of a listing; `next` is there when more remain and is the
/// `before` that asks for them.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Durable storage of conversations: SQLite embedded (`sqlite.rs`),
/// PostgreSQL when several nodes share one store (`postgres.rs`).
pub trait ConversationStore: Send + Sync + 'static {
    /// A new session of `player` with a generated id.
    fn create_conversation(
        &self,
        player: &PlayerId,
        new: NewConversation,
    ) -> Result<Conversation, ConversationError>;

    fn conversation(
        &self,
        player: &PlayerId,
        id: &SessionId,
    ) -> Result<Option<Conversation>, ConversationError>;

    /// The session `id` of `player`, created with the defaults if there is
    /// none (a v1 session becomes a conversation on first use). `None` when
    /// the id is another player's: it is never taken over.
    fn ensure_conversation(
        &self,
        player: &PlayerId,
        id: &SessionId,
    ) -> Result<Option<Conversation>, ConversationError>;

    /// The player's sessions, newest created first.
    fn conversations(
        &self,
        player: &PlayerId,
        query: &ConversationQuery,
    ) -> Result<Page<Conversation>, ConversationError>;

    /// Archives the session (again is harmless); `None` when there is none.
    fn archive_conversation(
        &self,
        player: &PlayerId,
        id: &SessionId,
    ) -> Result<Option<Conversation>, ConversationError>;

    /// Adds a complete user message, or answers the one its
    /// `client_message_id` already names in this session.
    fn append_user_message(
        &self,
        player: &PlayerId,
        session: &SessionId,
        message: NewUserMessage,
    ) -> Result<Appended, ConversationError>;

    /// Adds an assistant reply to the user message `answering`: streaming,
    /// with empty text. `NotFound` when `answering` is not a user message of
    /// the session.
    fn start_reply(
        &self,
        player: &PlayerId,
        session: &SessionId,
        answering: &MessageId,
    ) -> Result<StoredMessage, ConversationError>;

    /// Replaces the text of a streaming reply with what has arrived so far,
    /// so that a restart keeps it. `NotStreaming` once the reply has ended.
    fn save_partial(
        &self,
        player: &PlayerId,
        session: &SessionId,
        reply: &MessageId,
        text: &str,
    ) -> Result<(), ConversationError>;

    /// Ends a streaming reply; `NotStreaming` when it has already ended.
    fn finish_reply(
        &self,
        player: &PlayerId,
        session: &SessionId,
        reply: &MessageId,
        end: ReplyEnd,
    ) -> Result<StoredMessage, ConversationError>;

    fn message(
        &self,
        player: &PlayerId,
        session: &SessionId,
        id: &MessageId,
    ) -> Result<Option<StoredMessage>, ConversationError>;

    /// A page of the session's messages, oldest first: the latest ones
    /// before `before` (all when it is `None`); `next` goes further back.
    fn messages(
        &self,
        player: &PlayerId,
        session: &SessionId,
        query: &MessageQuery,
    ) -> Result<Page<StoredMessage>, ConversationError>;

    /// The session's last `count` messages, oldest first.
    fn recent_messages(
        &self,
        player: &PlayerId,
        session: &SessionId,
        count: usize,
    ) -> Result<Vec<StoredMessage>, ConversationError>;

    /// The latest reply to the user message `answering`, looked for among
    /// the session's last `REPLY_SEARCH_PAGES` pages of messages: a repeated
    /// send finds its reply here, which follows it closely.
    fn latest_reply_to(
        &self,
        player: &PlayerId,
        session: &SessionId,
        answering: &MessageId,
    ) -> Result<Option<StoredMessage>, ConversationError> {
        let mut query = MessageQuery {
            limit: MAX_PAGE,
            before: None,
        };
        for _ in 0..REPLY_SEARCH_PAGES {
            let page = self.messages(player, session, &query)?;
            let found = page
                .items
                .iter()
                .rev()
                .find(|message| message.reply_to.as_ref() == Some(answering));
            if let Some(found) = found {
                return Ok(Some(found.clone()));
            }
            match page.next {
                Some(next) => query.before = Some(next),
                None => break,
            }
        }
        Ok(None)
    }

    /// Records v1 exchanges, all in one transaction; returns how many were
    /// recorded (those in another player's session are not).
    fn record_exchanges(&self, exchanges: &[Exchange]) -> Result<usize, ConversationError>;

    /// At start-up: every reply still streaming was cut off by a stop, so
    /// it becomes `failed` (its text so far kept, `finish_reason`
    /// `INTERRUPTED`). Returns how many. It touches every session in the
    /// store, so on a store that several nodes share it must run only when
    /// no node is streaming.
    fn fail_interrupted_replies(&self) -> Result<u64, ConversationError>;
}

pub type SharedConversationStore = Arc<dyn ConversationStore>;

/// Timestamps are kept to the millisecond, as the wire shows them; cutting
/// them here makes what a write returns equal to what a read gives back, in
/// either backend.
pub(crate) fn stamp(at: Timestamp) -> Timestamp {
    Timestamp(at.0.trunc_subsecs(3))
}

pub(crate) fn now() -> Timestamp {
    stamp(Timestamp::now())
}

/// One message row to add, as both backends take it.
pub(crate) struct MessageInsert<'a> {
    pub id: MessageId,
    pub role: Role,
    pub status: MessageStatus,
    pub text: &'a str,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    pub safety: &'a str,
    pub client_message_id: Option<&'a str>,
    pub reply_to: Option<MessageId>,
    pub character_id: Option<&'a str>,
    pub world_id: Option<&'a str>,
}

impl<'a> MessageInsert<'a> {
    /// A user message: complete as soon as it is stored.
    pub fn user(message: &'a NewUserMessage) -> Self {
        let at = now();
        MessageInsert {
            id: MessageId::generate(),
            role: Role::User,
            status: MessageStatus::Complete,
            text: &message.text,
            created_at: at,
            completed_at: Some(at),
            safety: message.safety.get(),
            client_message_id: message.client_message_id.as_deref(),
            reply_to: None,
            character_id: message.character_id.as_deref(),
            world_id: message.world_id.as_deref(),
        }
    }

    /// A reply as it starts: streaming, nothing said yet, safety unknown.
    pub fn reply(answering: MessageId) -> Self {
        Self::reply_with_id(MessageId::generate(), answering)
    }

    /// As `reply`, under an id already shown to the client.
    pub fn reply_with_id(id: MessageId, answering: MessageId) -> Self {
        MessageInsert {
            id,
            role: Role::Assistant,
            status: MessageStatus::Streaming,
            text: "",
            created_at: now(),
            completed_at: None,
            safety: "null",
            client_message_id: None,
            reply_to: Some(answering),
            character_id: None,
            world_id: None,
        }
    }
}

/// The size of a page, within the bounds every listing shares; a page of
/// nothing would never move.
pub(crate) fn page_size(limit: usize) -> usize {
    limit.clamp(1, MAX_PAGE)
}

/// Which listing a cursor belongs to, so that one is not taken for the
/// other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CursorKind {
    Conversations,
    Messages,
}

impl CursorKind {
    fn tag(self) -> &'static str {
        match self {
            CursorKind::Conversations => "c",
            CursorKind::Messages => "m",
        }
    }
}

/// A cursor is the row sequence number the next page stops before: rows
/// added later have higher numbers, so they never shift a page.
pub(crate) fn cursor(kind: CursorKind, seq: i64) -> String {
    format!("{}{seq}", kind.tag())
}

pub(crate) fn parse_cursor(kind: CursorKind, text: &str) -> Result<i64, ConversationError> {
    let digits = text
        .strip_prefix(kind.tag())
        .ok_or(ConversationError::BadCursor)?;
    // Digits only: no sign, no spaces, so one cursor has one spelling.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConversationError::BadCursor);
    }
    match digits.parse::<i64>() {
        Ok(seq) if seq > 0 => Ok(seq),
        _ => Err(ConversationError::BadCursor),
    }
}

/// The upper bound a listing reads below: the cursor's, or past every row.
pub(crate) fn before_seq(kind: CursorKind, before: Option<&str>) -> Result<i64, ConversationError> {
    before.map_or(Ok(i64::MAX), |text| parse_cursor(kind, text))
}

/// Turns rows read newest first, one more than the page holds, into a page:
/// the extra row only says that more remain.
pub(crate) fn page_newest_first<T>(
    kind: CursorKind,
    mut rows: Vec<(i64, T)>,
    size: usize,
) -> Page<T> {
    let more = rows.len() > size;
    rows.truncate(size);
    let next = match rows.last() {
        Some((seq, _)) if more => Some(cursor(kind, *seq)),
        _ => None,
    };
    Page {
        items: rows.into_iter().map(|(_, item)| item).collect(),
        next,
    }
}

/// As `page_newest_first`, then turned round: message pages read back from
/// the latest but show oldest first.
pub(crate) fn page_oldest_first<T>(kind: CursorKind, rows: Vec<(i64, T)>, size: usize) -> Page<T> {
    let mut page = page_newest_first(kind, rows, size);
    page.items.reverse();
    page
}

/// Text read back from a JSON column; the store wrote it from a `RawValue`,
/// so anything else means the row was changed behind its back.
pub(crate) fn stored_json(
    message: &str,
    column: &str,
    text: String,
) -> Result<Box<RawValue>, ConversationError> {
    RawValue::from_string(text)
        .map_err(|err| ConversationError::Corrupt(format!("message {message} {column}: {err}")))
}

pub(crate) fn stored_message_id(text: &str) -> Result<MessageId, ConversationError> {
    MessageId::parse(text)
        .map_err(|err| ConversationError::Corrupt(format!("message id {text:?}: {err}")))
}

pub(crate) fn stored_session_id(text: &str) -> Result<SessionId, ConversationError> {
    SessionId::parse(text)
        .map_err(|err| ConversationError::Corrupt(format!("session id {text:?}: {err}")))
}

pub(crate) fn stored_player_id(text: &str) -> Result<PlayerId, ConversationError> {
    PlayerId::parse(text)
        .map_err(|err| ConversationError::Corrupt(format!("player id {text:?}: {err}")))
}

pub(crate) fn stored_role(message: &str, text: &str) -> Result<Role, ConversationError> {
    Role::parse(text)
        .ok_or_else(|| ConversationError::Corrupt(format!("message {message} has role {text:?}")))
}

pub(crate) fn stored_status(message: &str, text: &str) -> Result<MessageStatus, ConversationError> {
    MessageStatus::parse(text)
        .ok_or_else(|| ConversationError::Corrupt(format!("message {message} has status {text:?}")))
}

pub(crate) fn stored_count(session: &str, count: i64) -> Result<u64, ConversationError> {
    u64::try_from(count).map_err(|_| {
        ConversationError::Corrupt(format!("session {session} has message_count {count}"))
    })
}

impl From<crate::store::sqlite::OpenError> for ConversationError {
    fn from(err: crate::store::sqlite::OpenError) -> Self {
        match err {
            crate::store::sqlite::OpenError::CreateDir { path, source } => {
                ConversationError::CreateDir { path, source }
            }
            crate::store::sqlite::OpenError::Sqlite(err) => ConversationError::Sqlite(err),
        }
    }
}
