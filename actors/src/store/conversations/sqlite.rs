//! The embedded conversation store: one SQLite file, WAL journal, full
//! fsync on commit. The default for a single node. One connection behind a
//! lock, so each operation runs alone; a message and its session's counters
//! change in one transaction.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::model::ids::{MessageId, PlayerId, SessionId};
use crate::model::time::Timestamp;
use crate::store::conversations::{
    before_seq, now, page_newest_first, page_oldest_first, page_size, refusal_for, stamp,
    stored_count, stored_json, stored_message_id, stored_player_id, stored_role, stored_session_id,
    stored_status, Appended, Conversation, ConversationError, ConversationQuery, ConversationStore,
    CursorKind, Exchange, MessageInsert, MessageQuery, MessageStatus, NewConversation,
    NewUserMessage, Page, ReplyEnd, Role, StoredMessage, DEFAULT_AGENT, INTERRUPTED,
    MAX_CONVERSATIONS_PER_PLAYER,
};
use crate::store::sqlite::open_durable;

pub struct SqliteConversationStore {
    connection: Mutex<Connection>,
    max_per_player: i64,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS conversations (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        player_id TEXT NOT NULL,
        title TEXT,
        agent TEXT NOT NULL,
        pillar TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        archived INTEGER NOT NULL DEFAULT 0,
        message_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS conversations_by_player
        ON conversations (player_id, seq);
    CREATE TABLE IF NOT EXISTS conversation_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        session_id TEXT NOT NULL REFERENCES conversations (id),
        role TEXT NOT NULL,
        text TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        completed_at TEXT,
        elements TEXT NOT NULL DEFAULT '[]',
        safety TEXT NOT NULL DEFAULT 'null',
        usage TEXT,
        fallback INTEGER NOT NULL DEFAULT 0,
        finish_reason TEXT,
        client_message_id TEXT,
        reply_to TEXT,
        character_id TEXT,
        world_id TEXT,
        UNIQUE (session_id, client_message_id)
    );
    CREATE INDEX IF NOT EXISTS conversation_messages_by_session
        ON conversation_messages (session_id, seq);
    CREATE INDEX IF NOT EXISTS conversation_messages_streaming
        ON conversation_messages (seq) WHERE status = 'streaming';";

impl SqliteConversationStore {
    pub fn open(path: &Path) -> Result<Self, ConversationError> {
        let connection = open_durable(path)?;
        // Every statement this store runs stays compiled.
        connection.set_prepared_statement_cache_capacity(64);
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.execute_batch(SCHEMA)?;
        Ok(SqliteConversationStore {
            connection: Mutex::new(connection),
            max_per_player: MAX_CONVERSATIONS_PER_PLAYER,
        })
    }

    /// Keeps at most `max` sessions per player instead of the default.
    pub fn with_max_per_player(mut self, max: i64) -> Self {
        self.max_per_player = max;
        self
    }

    fn with_connection<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, ConversationError>,
    ) -> Result<T, ConversationError> {
        let mut connection = self
            .connection
            .lock()
            .map_err(|_| ConversationError::Poisoned)?;
        work(&mut connection)
    }
}

fn text_of(at: Timestamp) -> String {
    at.0.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn timestamp_of(what: &str, column: &str, text: &str) -> Result<Timestamp, ConversationError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| Timestamp(at.with_timezone(&Utc)))
        .map_err(|err| ConversationError::Corrupt(format!("{what} {column}: {err}")))
}

const CONVERSATION_COLUMNS: &str =
    "seq, id, player_id, title, agent, pillar, created_at, updated_at, archived, message_count";

/// Rows come out as plain values first and are checked after, so that a
/// damaged row is a `Corrupt` error rather than a driver one.
struct ConversationRow {
    seq: i64,
    id: String,
    player_id: String,
    title: Option<String>,
    agent: String,
    pillar: Option<String>,
    created_at: String,
    updated_at: String,
    archived: bool,
    message_count: i64,
}

impl ConversationRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(ConversationRow {
            seq: row.get(0)?,
            id: row.get(1)?,
            player_id: row.get(2)?,
            title: row.get(3)?,
            agent: row.get(4)?,
            pillar: row.get(5)?,
            created_at: row.get(6)?,
            updated_at: row.get(7)?,
            archived: row.get(8)?,
            message_count: row.get(9)?,
        })
    }

    fn into_conversation(self) -> Result<(i64, Conversation), ConversationError> {
        let what = format!("session {}", self.id);
        Ok((
            self.seq,
            Conversation {
                id: stored_session_id(&self.id)?,
                player: stored_player_id(&self.player_id)?,
                title: self.title,
                agent: self.agent,
                pillar: self.pillar,
                created_at: timestamp_of(&what, "created_at", &self.created_at)?,
                updated_at: timestamp_of(&what, "updated_at", &self.updated_at)?,
                archived: self.archived,
                message_count: stored_count(&self.id, self.message_count)?,
            },
        ))
    }
}

const MESSAGE_COLUMNS: &str = "m.seq, m.id, m.session_id, m.role, m.text, m.status, m.created_at,
    m.completed_at, m.elements, m.safety, m.usage, m.fallback, m.finish_reason,
    m.client_message_id, m.reply_to, m.character_id, m.world_id";

/// Every message read joins its session, so that the owner check is part
/// of the same statement.
const MESSAGE_FROM: &str = "conversation_messages m JOIN conversations c ON c.id = m.session_id";

struct MessageRow {
    seq: i64,
    id: String,
    session_id: String,
    role: String,
    text: String,
    status: String,
    created_at: String,
    completed_at: Option<String>,
    elements: String,
    safety: String,
    usage: Option<String>,
    fallback: bool,
    finish_reason: Option<String>,
    client_message_id: Option<String>,
    reply_to: Option<String>,
    character_id: Option<String>,
    world_id: Option<String>,
}

impl MessageRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(MessageRow {
            seq: row.get(0)?,
            id: row.get(1)?,
            session_id: row.get(2)?,
            role: row.get(3)?,
            text: row.get(4)?,
            status: row.get(5)?,
            created_at: row.get(6)?,
            completed_at: row.get(7)?,
            elements: row.get(8)?,
            safety: row.get(9)?,
            usage: row.get(10)?,
            fallback: row.get(11)?,
            finish_reason: row.get(12)?,
            client_message_id: row.get(13)?,
            reply_to: row.get(14)?,
            character_id: row.get(15)?,
            world_id: row.get(16)?,
        })
    }

    fn into_message(self) -> Result<(i64, StoredMessage), ConversationError> {
        let id = &self.id;
        let what = format!("message {id}");
        Ok((
            self.seq,
            StoredMessage {
                id: stored_message_id(id)?,
                session_id: stored_session_id(&self.session_id)?,
                role: stored_role(id, &self.role)?,
                text: self.text,
                status: stored_status(id, &self.status)?,
                created_at: timestamp_of(&what, "created_at", &self.created_at)?,
                completed_at: self
                    .completed_at
                    .map(|text| timestamp_of(&what, "completed_at", &text))
                    .transpose()?,
                elements: stored_json(id, "elements", self.elements)?,
                safety: stored_json(id, "safety", self.safety)?,
                usage: self
                    .usage
                    .map(|text| stored_json(id, "usage", text))
                    .transpose()?,
                fallback: self.fallback,
                finish_reason: self.finish_reason,
                client_message_id: self.client_message_id,
                reply_to: self
                    .reply_to
                    .as_deref()
                    .map(stored_message_id)
                    .transpose()?,
                character_id: self.character_id,
                world_id: self.world_id,
            },
        ))
    }
}

fn find_conversation(
    connection: &Connection,
    player: &PlayerId,
    id: &str,
) -> Result<Option<Conversation>, ConversationError> {
    let row = connection
        .query_row(
            &format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?1"),
            params![id],
            ConversationRow::read,
        )
        .optional()?;
    match row {
        // Compared here rather than in SQL so that `ensure` can tell a
        // foreign session from a missing one with the same read.
        Some(row) if row.player_id == player.as_str() => Ok(Some(row.into_conversation()?.1)),
        _ => Ok(None),
    }
}

fn owns(
    connection: &Connection,
    player: &PlayerId,
    session: &SessionId,
) -> Result<bool, ConversationError> {
    Ok(connection
        .prepare_cached("SELECT 1 FROM conversations WHERE id = ?1 AND player_id = ?2")?
        .query_row(params![session.as_str(), player.as_str()], |_| Ok(()))
        .optional()?
        .is_some())
}

fn find_message(
    connection: &Connection,
    player: &PlayerId,
    session: &SessionId,
    id: &str,
) -> Result<Option<StoredMessage>, ConversationError> {
    let row = connection
        .query_row(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM}
                 WHERE m.id = ?1 AND m.session_id = ?2 AND c.player_id = ?3"
            ),
            params![id, session.as_str(), player.as_str()],
            MessageRow::read,
        )
        .optional()?;
    row.map(|row| row.into_message().map(|(_, message)| message))
        .transpose()
}

/// Reads back a message the current operation has just written.
fn written_message(
    connection: &Connection,
    player: &PlayerId,
    session: &SessionId,
    id: &str,
) -> Result<StoredMessage, ConversationError> {
    find_message(connection, player, session, id)?.ok_or_else(|| {
        ConversationError::Corrupt(format!("message {id} is missing right after writing it"))
    })
}

/// Adds a message and counts it on its session, in the caller's
/// transaction.
fn insert_message(
    connection: &Connection,
    session: &SessionId,
    row: &MessageInsert<'_>,
) -> Result<(), ConversationError> {
    let at = text_of(row.created_at);
    connection
        .prepare_cached(
            "INSERT INTO conversation_messages (id, session_id, role, text, status, created_at,
            completed_at, safety, client_message_id, reply_to, character_id, world_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            row.id.to_string(),
            session.as_str(),
            row.role.as_str(),
            row.text,
            row.status.as_str(),
            at,
            row.completed_at.map(text_of),
            row.safety,
            row.client_message_id,
            row.reply_to.map(|id| id.to_string()),
            row.character_id,
            row.world_id,
        ])?;
    count_messages(connection, session.as_str(), 1, &at)
}

/// Counts `added` messages on the session and moves its `updated_at`;
/// MAX keeps it from going back if the clock does.
fn count_messages(
    connection: &Connection,
    session: &str,
    added: i64,
    at: &str,
) -> Result<(), ConversationError> {
    connection
        .prepare_cached(
            "UPDATE conversations SET message_count = message_count + ?2,
                updated_at = MAX(updated_at, ?3)
             WHERE id = ?1",
        )?
        .execute(params![session, added, at])?;
    Ok(())
}

/// Ends a streaming reply, in the caller's transaction; how many rows
/// changed (none: not this player's streaming reply).
fn end_reply(
    connection: &Connection,
    player: &PlayerId,
    session: &SessionId,
    id: &str,
    end: &ReplyEnd,
) -> Result<usize, ConversationError> {
    Ok(connection
        .prepare_cached(
            "UPDATE conversation_messages SET status = ?4, text = ?5, elements = ?6,
            safety = ?7, usage = ?8, fallback = ?9, finish_reason = ?10,
            completed_at = ?11
         WHERE id = ?1 AND session_id = ?2 AND role = 'assistant'
            AND status = 'streaming'
            AND session_id IN (SELECT id FROM conversations WHERE player_id = ?3)",
        )?
        .execute(params![
            id,
            session.as_str(),
            player.as_str(),
            end.status.status().as_str(),
            end.text,
            end.elements.get(),
            end.safety.get(),
            end.usage.as_deref().map(|usage| usage.get()),
            end.fallback,
            end.finish_reason,
            text_of(stamp(end.completed_at)),
        ])?)
}

/// A session of `player` under `id` unless there is one, in the caller's
/// transaction; another player's is left alone.
fn insert_conversation_if_new(
    connection: &Connection,
    player: &PlayerId,
    id: &SessionId,
    agent: &str,
    max_per_player: i64,
) -> Result<(), ConversationError> {
    // Not past the player's bound: a client cannot grow the store by
    // naming new session ids.
    connection
        .prepare_cached(
            "INSERT INTO conversations (id, player_id, agent, created_at, updated_at)
         SELECT ?1, ?2, ?3, ?4, ?4
         WHERE NOT EXISTS (SELECT 1 FROM conversations WHERE id = ?1)
           AND (SELECT COUNT(*) FROM conversations WHERE player_id = ?2) < ?5
         ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            id.as_str(),
            player.as_str(),
            agent,
            text_of(now()),
            max_per_player
        ])?;
    Ok(())
}

/// A v1 exchange: the user message and its reply, both complete, and
/// both counted on the session, in the caller's transaction.
fn insert_exchange(connection: &Connection, exchange: &Exchange) -> Result<(), ConversationError> {
    let asked = MessageInsert::user(&exchange.user);
    let reply = &exchange.reply;
    let session = exchange.session.as_str();
    let asked_at = text_of(asked.created_at);
    let done_at = text_of(stamp(reply.completed_at));
    let mut insert = connection.prepare_cached(
        "INSERT INTO conversation_messages (id, session_id, role, text, status, created_at,
            completed_at, elements, safety, usage, fallback, finish_reason,
            client_message_id, reply_to, character_id, world_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    insert.execute(params![
        asked.id.to_string(),
        session,
        Role::User.as_str(),
        asked.text,
        MessageStatus::Complete.as_str(),
        asked_at,
        asked_at,
        "[]",
        asked.safety,
        None::<&str>,
        false,
        None::<&str>,
        asked.client_message_id,
        None::<String>,
        asked.character_id,
        asked.world_id,
    ])?;
    insert.execute(params![
        exchange.reply_id.to_string(),
        session,
        Role::Assistant.as_str(),
        reply.text,
        reply.status.status().as_str(),
        asked_at,
        done_at,
        reply.elements.get(),
        reply.safety.get(),
        reply.usage.as_deref().map(|usage| usage.get()),
        reply.fallback,
        reply.finish_reason,
        None::<&str>,
        Some(asked.id.to_string()),
        None::<&str>,
        None::<&str>,
    ])?;
    count_messages(connection, session, 2, &done_at)
}

/// Why a reply could not be changed: it is not one of this player's
/// replies in this session, or it has ended.
fn refusal(
    connection: &Connection,
    player: &PlayerId,
    session: &SessionId,
    reply: &MessageId,
) -> Result<ConversationError, ConversationError> {
    Ok(refusal_for(find_message(
        connection,
        player,
        session,
        &reply.to_string(),
    )?))
}

impl ConversationStore for SqliteConversationStore {
    fn create_conversation(
        &self,
        player: &PlayerId,
        new: NewConversation,
    ) -> Result<Conversation, ConversationError> {
        let at = now();
        let conversation = Conversation::begin(player, new, at);
        self.with_connection(|connection| {
            let held: i64 = connection.query_row(
                "SELECT COUNT(*) FROM conversations WHERE player_id = ?1",
                params![player.as_str()],
                |row| row.get(0),
            )?;
            if held >= self.max_per_player {
                return Err(ConversationError::TooMany);
            }
            connection.execute(
                "INSERT INTO conversations (id, player_id, title, agent, pillar, created_at,
                    updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![
                    conversation.id.as_str(),
                    player.as_str(),
                    conversation.title,
                    conversation.agent,
                    conversation.pillar,
                    text_of(at),
                ],
            )?;
            Ok(())
        })?;
        Ok(conversation)
    }

    fn conversation(
        &self,
        player: &PlayerId,
        id: &SessionId,
    ) -> Result<Option<Conversation>, ConversationError> {
        self.with_connection(|connection| find_conversation(connection, player, id.as_str()))
    }

    fn ensure_conversation(
        &self,
        player: &PlayerId,
        id: &SessionId,
    ) -> Result<Option<Conversation>, ConversationError> {
        self.with_connection(|connection| {
            insert_conversation_if_new(connection, player, id, DEFAULT_AGENT, self.max_per_player)?;
            find_conversation(connection, player, id.as_str())
        })
    }

    fn conversations(
        &self,
        player: &PlayerId,
        query: &ConversationQuery,
    ) -> Result<Page<Conversation>, ConversationError> {
        let before = before_seq(CursorKind::Conversations, query.before.as_deref())?;
        let size = page_size(query.limit);
        let rows = self.with_connection(|connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations
                 WHERE player_id = ?1 AND seq < ?2 AND (?3 OR archived = 0)
                 ORDER BY seq DESC LIMIT ?4"
            ))?;
            let rows = statement.query_map(
                params![player.as_str(), before, query.include_archived, size + 1],
                ConversationRow::read,
            )?;
            let mut read = Vec::new();
            for row in rows {
                read.push(row?.into_conversation()?);
            }
            Ok(read)
        })?;
        Ok(page_newest_first(CursorKind::Conversations, rows, size))
    }

    fn archive_conversation(
        &self,
        player: &PlayerId,
        id: &SessionId,
    ) -> Result<Option<Conversation>, ConversationError> {
        self.with_connection(|connection| {
            connection.execute(
                "UPDATE conversations SET archived = 1 WHERE id = ?1 AND player_id = ?2",
                params![id.as_str(), player.as_str()],
            )?;
            find_conversation(connection, player, id.as_str())
        })
    }

    fn append_user_message(
        &self,
        player: &PlayerId,
        session: &SessionId,
        message: NewUserMessage,
    ) -> Result<Appended, ConversationError> {
        self.with_connection(|connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if !owns(&transaction, player, session)? {
                return Err(ConversationError::NotFound);
            }
            if let Some(key) = &message.client_message_id {
                let earlier: Option<String> = transaction
                    .query_row(
                        "SELECT id FROM conversation_messages
                         WHERE session_id = ?1 AND client_message_id = ?2",
                        params![session.as_str(), key],
                        |row| row.get(0),
                    )
                    .optional()?;
                if let Some(earlier) = earlier {
                    return Ok(Appended {
                        message: written_message(&transaction, player, session, &earlier)?,
                        repeated: true,
                    });
                }
            }
            let row = MessageInsert::user(&message);
            insert_message(&transaction, session, &row)?;
            let id = row.id.to_string();
            let message = written_message(&transaction, player, session, &id)?;
            transaction.commit()?;
            Ok(Appended {
                message,
                repeated: false,
            })
        })
    }

    fn start_reply(
        &self,
        player: &PlayerId,
        session: &SessionId,
        answering: &MessageId,
    ) -> Result<StoredMessage, ConversationError> {
        self.with_connection(|connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            match find_message(&transaction, player, session, &answering.to_string())? {
                Some(message) if message.role == Role::User => {}
                _ => return Err(ConversationError::NotFound),
            }
            let row = MessageInsert::reply(*answering);
            insert_message(&transaction, session, &row)?;
            let id = row.id.to_string();
            let message = written_message(&transaction, player, session, &id)?;
            transaction.commit()?;
            Ok(message)
        })
    }

    fn save_partial(
        &self,
        player: &PlayerId,
        session: &SessionId,
        reply: &MessageId,
        text: &str,
    ) -> Result<(), ConversationError> {
        self.with_connection(|connection| {
            let changed = connection.execute(
                "UPDATE conversation_messages SET text = ?4
                 WHERE id = ?1 AND session_id = ?2 AND role = 'assistant'
                    AND status = 'streaming'
                    AND session_id IN (SELECT id FROM conversations WHERE player_id = ?3)",
                params![reply.to_string(), session.as_str(), player.as_str(), text],
            )?;
            if changed == 0 {
                return Err(refusal(connection, player, session, reply)?);
            }
            Ok(())
        })
    }

    fn finish_reply(
        &self,
        player: &PlayerId,
        session: &SessionId,
        reply: &MessageId,
        end: ReplyEnd,
    ) -> Result<StoredMessage, ConversationError> {
        self.with_connection(|connection| {
            let id = reply.to_string();
            let changed = end_reply(connection, player, session, &id, &end)?;
            if changed == 0 {
                return Err(refusal(connection, player, session, reply)?);
            }
            written_message(connection, player, session, &id)
        })
    }

    fn message(
        &self,
        player: &PlayerId,
        session: &SessionId,
        id: &MessageId,
    ) -> Result<Option<StoredMessage>, ConversationError> {
        self.with_connection(|connection| {
            find_message(connection, player, session, &id.to_string())
        })
    }

    fn messages(
        &self,
        player: &PlayerId,
        session: &SessionId,
        query: &MessageQuery,
    ) -> Result<Page<StoredMessage>, ConversationError> {
        let before = before_seq(CursorKind::Messages, query.before.as_deref())?;
        let size = page_size(query.limit);
        let rows = self.with_connection(|connection| {
            latest_messages(connection, player, session, before, size + 1)
        })?;
        Ok(page_oldest_first(CursorKind::Messages, rows, size))
    }

    fn recent_messages(
        &self,
        player: &PlayerId,
        session: &SessionId,
        count: usize,
    ) -> Result<Vec<StoredMessage>, ConversationError> {
        let mut rows = self.with_connection(|connection| {
            latest_messages(connection, player, session, i64::MAX, count)
        })?;
        rows.reverse();
        Ok(rows.into_iter().map(|(_, message)| message).collect())
    }

    fn record_exchanges(&self, exchanges: &[Exchange]) -> Result<usize, ConversationError> {
        self.with_connection(|connection| {
            // One commit (one disk flush) for the whole batch; each session
            // is checked once per batch, and each exchange is two inserts
            // and one count: v1 chat can be this store's busiest writer.
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut owned: HashMap<(&PlayerId, &SessionId), bool> = HashMap::new();
            let mut recorded = 0;
            for exchange in exchanges {
                let (player, session) = (&exchange.player, &exchange.session);
                let mine = match owned.get(&(player, session)) {
                    Some(mine) => *mine,
                    None => {
                        insert_conversation_if_new(
                            &transaction,
                            player,
                            session,
                            exchange.agent_or_default(),
                            self.max_per_player,
                        )?;
                        let mine = owns(&transaction, player, session)?;
                        owned.insert((player, session), mine);
                        mine
                    }
                };
                if !mine {
                    continue;
                }
                insert_exchange(&transaction, exchange)?;
                recorded += 1;
            }
            transaction.commit()?;
            Ok(recorded)
        })
    }

    fn fail_interrupted_replies(&self) -> Result<u64, ConversationError> {
        self.with_connection(|connection| {
            let changed = connection.execute(
                "UPDATE conversation_messages SET status = 'failed', finish_reason = ?1,
                    completed_at = ?2
                 WHERE status = 'streaming'",
                params![INTERRUPTED, text_of(now())],
            )?;
            Ok(changed as u64)
        })
    }
}

/// The session's last `count` messages before `before`, newest first;
/// `NotFound` unless the player owns the session.
fn latest_messages(
    connection: &Connection,
    player: &PlayerId,
    session: &SessionId,
    before: i64,
    count: usize,
) -> Result<Vec<(i64, StoredMessage)>, ConversationError> {
    if !owns(connection, player, session)? {
        return Err(ConversationError::NotFound);
    }
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM}
         WHERE m.session_id = ?1 AND m.seq < ?2
         ORDER BY m.seq DESC LIMIT ?3"
    ))?;
    // SQLite's LIMIT is signed; a count past it means every row.
    let limit = i64::try_from(count).unwrap_or(i64::MAX);
    let rows = statement.query_map(params![session.as_str(), before, limit], MessageRow::read)?;
    let mut read = Vec::new();
    for row in rows {
        read.push(row?.into_message()?);
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::conversations::conformance;

    #[test]
    fn the_shared_suite_passes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteConversationStore::open(&dir.path().join("c.db")).unwrap();
        conformance::run(&store, "");
    }

    #[test]
    fn sessions_per_player_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteConversationStore::open(&dir.path().join("c.db"))
            .unwrap()
            .with_max_per_player(2);
        conformance::session_cap(&store, "");
    }

    #[test]
    fn conversations_survive_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/conversations.db");
        let written = {
            let store = SqliteConversationStore::open(&path).unwrap();
            conformance::before_reopen(&store, "")
        };
        let store = SqliteConversationStore::open(&path).unwrap();
        conformance::after_reopen(&store, &written);
    }

    #[test]
    fn recovery_counts_exactly_the_streaming_replies() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteConversationStore::open(&dir.path().join("c.db")).unwrap();
        assert_eq!(store.fail_interrupted_replies().unwrap(), 0);
        let alice = PlayerId::parse("alice").unwrap();
        let session = store
            .create_conversation(&alice, NewConversation::default())
            .unwrap();
        let asked = store
            .append_user_message(&alice, &session.id, conformance::user_message("hi", None))
            .unwrap()
            .message;
        for _ in 0..3 {
            store.start_reply(&alice, &session.id, &asked.id).unwrap();
        }
        assert_eq!(store.fail_interrupted_replies().unwrap(), 3);
        assert_eq!(store.fail_interrupted_replies().unwrap(), 0);
    }
}
