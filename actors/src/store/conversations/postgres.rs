//! Conversations in PostgreSQL: the store every node of a cluster shares.
//! Async clients from a small pool (`store/postgres_link.rs`); the trait
//! is called from the blocking thread pool, which waits for them. A
//! connection that broke is replaced by the pool. Adding a message locks its session's row for the transaction, so
//! the message and the session's counters change together and two writers
//! to one session take turns.

use std::future::Future;

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Object};
use tokio_postgres::Row;

use crate::store::postgres_link::PgPool;

use crate::model::ids::{MessageId, PlayerId, SessionId};
use crate::model::time::Timestamp;
use crate::store::conversations::{
    before_seq, now, page_newest_first, page_oldest_first, page_size, refusal_for, stamp,
    stored_count, stored_json, stored_message_id, stored_player_id, stored_role, stored_session_id,
    stored_status, Appended, Conversation, ConversationError, ConversationQuery, ConversationStore,
    CursorKind, Exchange, MessageInsert, MessageQuery, NewConversation, NewUserMessage, Page,
    ReplyEnd, Role, StoredMessage, DEFAULT_AGENT, INTERRUPTED, MAX_CONVERSATIONS_PER_PLAYER,
};

pub struct PostgresConversationStore {
    pool: PgPool,
    max_per_player: i64,
}

/// The server's "already exists" notices would reach the log as unstructured
/// lines at every start; warnings still do. JSON columns are TEXT, not
/// JSONB, because the store hands back exactly the text it was given.
const SCHEMA: &str = "
    SET client_min_messages TO WARNING;
    CREATE TABLE IF NOT EXISTS conversations (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        player_id TEXT NOT NULL,
        title TEXT,
        agent TEXT NOT NULL,
        pillar TEXT,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        archived BOOLEAN NOT NULL DEFAULT FALSE,
        message_count BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS conversations_by_player ON conversations (player_id, seq);
    CREATE TABLE IF NOT EXISTS conversation_messages (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        session_id TEXT NOT NULL REFERENCES conversations (id),
        role TEXT NOT NULL,
        text TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        completed_at TIMESTAMPTZ,
        elements TEXT NOT NULL DEFAULT '[]',
        safety TEXT NOT NULL DEFAULT 'null',
        usage TEXT,
        fallback BOOLEAN NOT NULL DEFAULT FALSE,
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

const CONVERSATION_COLUMNS: &str =
    "seq, id, player_id, title, agent, pillar, created_at, updated_at, archived, message_count";

const MESSAGE_COLUMNS: &str = "m.seq, m.id, m.session_id, m.role, m.text, m.status, m.created_at,
    m.completed_at, m.elements, m.safety, m.usage, m.fallback, m.finish_reason,
    m.client_message_id, m.reply_to, m.character_id, m.world_id";

/// Every message read joins its session, so that the owner check is part
/// of the same statement.
const MESSAGE_FROM: &str = "conversation_messages m JOIN conversations c ON c.id = m.session_id";

impl PostgresConversationStore {
    /// Connects and creates the tables if needed. Blocking: call it outside
    /// any async runtime (the server does so on a thread of its own).
    pub fn open(pool: PgPool) -> Result<Self, ConversationError> {
        pool.create_schema::<ConversationError>(SCHEMA)?;
        Ok(Self {
            pool,
            max_per_player: MAX_CONVERSATIONS_PER_PLAYER,
        })
    }

    /// Keeps at most `max` sessions per player instead of the default.
    pub fn with_max_per_player(mut self, max: i64) -> Self {
        self.max_per_player = max;
        self
    }

    /// Runs `work` with a pooled connection; see [`PgPool::run`].
    fn with_client<T, Fut>(&self, work: impl FnOnce(Object) -> Fut) -> Result<T, ConversationError>
    where
        Fut: Future<Output = Result<T, ConversationError>>,
    {
        self.pool.run(work)
    }
}

fn conversation_from_row(row: &Row) -> Result<(i64, Conversation), ConversationError> {
    let id: String = row.try_get(1)?;
    let player_id: String = row.try_get(2)?;
    let created_at: DateTime<Utc> = row.try_get(6)?;
    let updated_at: DateTime<Utc> = row.try_get(7)?;
    Ok((
        row.try_get(0)?,
        Conversation {
            id: stored_session_id(&id)?,
            player: stored_player_id(&player_id)?,
            title: row.try_get(3)?,
            agent: row.try_get(4)?,
            pillar: row.try_get(5)?,
            created_at: Timestamp(created_at),
            updated_at: Timestamp(updated_at),
            archived: row.try_get(8)?,
            message_count: stored_count(&id, row.try_get(9)?)?,
        },
    ))
}

fn message_from_row(row: &Row) -> Result<(i64, StoredMessage), ConversationError> {
    let id: String = row.try_get(1)?;
    let session_id: String = row.try_get(2)?;
    let role: String = row.try_get(3)?;
    let status: String = row.try_get(5)?;
    let created_at: DateTime<Utc> = row.try_get(6)?;
    let completed_at: Option<DateTime<Utc>> = row.try_get(7)?;
    let usage: Option<String> = row.try_get(10)?;
    let reply_to: Option<String> = row.try_get(14)?;
    Ok((
        row.try_get(0)?,
        StoredMessage {
            id: stored_message_id(&id)?,
            session_id: stored_session_id(&session_id)?,
            role: stored_role(&id, &role)?,
            text: row.try_get(4)?,
            status: stored_status(&id, &status)?,
            created_at: Timestamp(created_at),
            completed_at: completed_at.map(Timestamp),
            elements: stored_json(&id, "elements", row.try_get(8)?)?,
            safety: stored_json(&id, "safety", row.try_get(9)?)?,
            usage: usage
                .map(|text| stored_json(&id, "usage", text))
                .transpose()?,
            fallback: row.try_get(11)?,
            finish_reason: row.try_get(12)?,
            client_message_id: row.try_get(13)?,
            reply_to: reply_to.as_deref().map(stored_message_id).transpose()?,
            character_id: row.try_get(15)?,
            world_id: row.try_get(16)?,
        },
    ))
}

async fn find_conversation(
    client: &impl GenericClient,
    player: &PlayerId,
    id: &SessionId,
) -> Result<Option<Conversation>, ConversationError> {
    let row = client
        .query_opt(
            &format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1"),
            &[&id.as_str()],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    // Compared here rather than in SQL so that `ensure` can tell a foreign
    // session from a missing one with the same read.
    let (_, conversation) = conversation_from_row(&row)?;
    Ok(Some(conversation).filter(|conversation| &conversation.player == player))
}

/// Whether the player owns the session; with `lock`, the session's row
/// stays locked until the transaction ends.
async fn owns(
    client: &impl GenericClient,
    player: &PlayerId,
    session: &SessionId,
    lock: bool,
) -> Result<bool, ConversationError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    Ok(client
        .query_opt(
            &format!("SELECT 1 FROM conversations WHERE id = $1 AND player_id = $2{lock}"),
            &[&session.as_str(), &player.as_str()],
        )
        .await?
        .is_some())
}

async fn find_message(
    client: &impl GenericClient,
    player: &PlayerId,
    session: &SessionId,
    id: &str,
) -> Result<Option<StoredMessage>, ConversationError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM}
             WHERE m.id = $1 AND m.session_id = $2 AND c.player_id = $3"
            ),
            &[&id, &session.as_str(), &player.as_str()],
        )
        .await?;
    row.map(|row| message_from_row(&row).map(|(_, message)| message))
        .transpose()
}

/// Reads back a message the current operation has just written.
async fn written_message(
    client: &impl GenericClient,
    player: &PlayerId,
    session: &SessionId,
    id: &str,
) -> Result<StoredMessage, ConversationError> {
    find_message(client, player, session, id)
        .await?
        .ok_or_else(|| {
            ConversationError::Corrupt(format!("message {id} is missing right after writing it"))
        })
}

/// Ends a streaming reply, in the caller's transaction; how many rows
/// changed (none: not this player's streaming reply).
async fn end_reply(
    client: &impl GenericClient,
    player: &PlayerId,
    session: &SessionId,
    id: &str,
    end: &ReplyEnd,
) -> Result<u64, ConversationError> {
    Ok(client
        .execute(
            "UPDATE conversation_messages SET status = $4, text = $5, elements = $6,
            safety = $7, usage = $8, fallback = $9, finish_reason = $10,
            completed_at = $11
         WHERE id = $1 AND session_id = $2 AND role = 'assistant'
            AND status = 'streaming'
            AND session_id IN (SELECT id FROM conversations WHERE player_id = $3)",
            &[
                &id,
                &session.as_str(),
                &player.as_str(),
                &end.status.status().as_str(),
                &end.text,
                &end.elements.get(),
                &end.safety.get(),
                &end.usage.as_deref().map(|usage| usage.get()),
                &end.fallback,
                &end.finish_reason,
                &stamp(end.completed_at).0,
            ],
        )
        .await?)
}

/// A session of `player` under `id` unless there is one; another player's
/// is left alone. Two nodes inserting the same id at once: one insert
/// wins, the other does nothing.
async fn insert_conversation_if_new(
    client: &impl GenericClient,
    player: &PlayerId,
    id: &SessionId,
    agent: &str,
    max_per_player: i64,
) -> Result<(), ConversationError> {
    // Not past the player's bound: a client cannot grow the store by
    // naming new session ids.
    client
        .execute(
            "INSERT INTO conversations (id, player_id, agent, created_at, updated_at)
         SELECT $1, $2, $3, $4, $4
         WHERE NOT EXISTS (SELECT 1 FROM conversations WHERE id = $1)
           AND (SELECT COUNT(*) FROM conversations WHERE player_id = $2) < $5
         ON CONFLICT (id) DO NOTHING",
            &[
                &id.as_str(),
                &player.as_str(),
                &agent,
                &now().0,
                &max_per_player,
            ],
        )
        .await?;
    Ok(())
}

/// Adds a message and counts it on its session, in the caller's
/// transaction (which holds the session's row).
async fn insert_message(
    client: &impl GenericClient,
    session: &SessionId,
    row: &MessageInsert<'_>,
) -> Result<(), ConversationError> {
    client
        .execute(
            "INSERT INTO conversation_messages (id, session_id, role, text, status, created_at,
            completed_at, safety, client_message_id, reply_to, character_id, world_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                &row.id.to_string(),
                &session.as_str(),
                &row.role.as_str(),
                &row.text,
                &row.status.as_str(),
                &row.created_at.0,
                &row.completed_at.map(|at| at.0),
                &row.safety,
                &row.client_message_id,
                &row.reply_to.map(|id| id.to_string()),
                &row.character_id,
                &row.world_id,
            ],
        )
        .await?;
    // GREATEST keeps `updated_at` from going back when nodes' clocks differ.
    client
        .execute(
            "UPDATE conversations SET message_count = message_count + 1,
            updated_at = GREATEST(updated_at, $2)
         WHERE id = $1",
            &[&session.as_str(), &row.created_at.0],
        )
        .await?;
    Ok(())
}

/// Why a reply could not be changed: it is not one of this player's
/// replies in this session, or it has ended.
async fn refusal(
    client: &impl GenericClient,
    player: &PlayerId,
    session: &SessionId,
    reply: &MessageId,
) -> Result<ConversationError, ConversationError> {
    Ok(refusal_for(
        find_message(client, player, session, &reply.to_string()).await?,
    ))
}

/// The session's last `count` messages before `before`, newest first;
/// `NotFound` unless the player owns the session.
async fn latest_messages(
    client: &impl GenericClient,
    player: &PlayerId,
    session: &SessionId,
    before: i64,
    count: usize,
) -> Result<Vec<(i64, StoredMessage)>, ConversationError> {
    if !owns(client, player, session, false).await? {
        return Err(ConversationError::NotFound);
    }
    // LIMIT is signed; a count past it means every row.
    let limit = i64::try_from(count).unwrap_or(i64::MAX);
    let rows = client
        .query(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM}
             WHERE m.session_id = $1 AND m.seq < $2
             ORDER BY m.seq DESC LIMIT $3"
            ),
            &[&session.as_str(), &before, &limit],
        )
        .await?;
    rows.iter().map(message_from_row).collect()
}

impl ConversationStore for PostgresConversationStore {
    fn create_conversation(
        &self,
        player: &PlayerId,
        new: NewConversation,
    ) -> Result<Conversation, ConversationError> {
        let at = now();
        let conversation = Conversation::begin(player, new, at);
        let written = &conversation;
        self.with_client(|client| async move {
            let held: i64 = client
                .query_one(
                    "SELECT COUNT(*) FROM conversations WHERE player_id = $1",
                    &[&player.as_str()],
                )
                .await?
                .try_get(0)?;
            if held >= self.max_per_player {
                return Err(ConversationError::TooMany);
            }
            client
                .execute(
                    "INSERT INTO conversations (id, player_id, title, agent, pillar, created_at,
                    updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
                    &[
                        &written.id.as_str(),
                        &player.as_str(),
                        &written.title,
                        &written.agent,
                        &written.pillar,
                        &at.0,
                    ],
                )
                .await?;
            Ok(())
        })?;
        Ok(conversation)
    }

    fn conversation(
        &self,
        player: &PlayerId,
        id: &SessionId,
    ) -> Result<Option<Conversation>, ConversationError> {
        self.with_client(|client| async move { find_conversation(&client, player, id).await })
    }

    fn ensure_conversation(
        &self,
        player: &PlayerId,
        id: &SessionId,
    ) -> Result<Option<Conversation>, ConversationError> {
        self.with_client(|client| async move {
            // Both of two racing nodes read the winner's row.
            insert_conversation_if_new(&client, player, id, DEFAULT_AGENT, self.max_per_player)
                .await?;
            find_conversation(&client, player, id).await
        })
    }

    fn conversations(
        &self,
        player: &PlayerId,
        query: &ConversationQuery,
    ) -> Result<Page<Conversation>, ConversationError> {
        let before = before_seq(CursorKind::Conversations, query.before.as_deref())?;
        let size = page_size(query.limit);
        let limit = i64::try_from(size + 1).unwrap_or(i64::MAX);
        let rows = self.with_client(|client| async move {
            let rows = client
                .query(
                    &format!(
                        "SELECT {CONVERSATION_COLUMNS} FROM conversations
                     WHERE player_id = $1 AND seq < $2 AND ($3 OR NOT archived)
                     ORDER BY seq DESC LIMIT $4"
                    ),
                    &[&player.as_str(), &before, &query.include_archived, &limit],
                )
                .await?;
            rows.iter().map(conversation_from_row).collect()
        })?;
        Ok(page_newest_first(CursorKind::Conversations, rows, size))
    }

    fn archive_conversation(
        &self,
        player: &PlayerId,
        id: &SessionId,
    ) -> Result<Option<Conversation>, ConversationError> {
        self.with_client(|client| async move {
            client
                .execute(
                    "UPDATE conversations SET archived = TRUE WHERE id = $1 AND player_id = $2",
                    &[&id.as_str(), &player.as_str()],
                )
                .await?;
            find_conversation(&client, player, id).await
        })
    }

    fn append_user_message(
        &self,
        player: &PlayerId,
        session: &SessionId,
        message: NewUserMessage,
    ) -> Result<Appended, ConversationError> {
        self.with_client(|mut client| async move {
            let transaction = client.transaction().await?;
            // The lock makes the look-up of the key and the insert one step
            // against another sender to this session.
            if !owns(&transaction, player, session, true).await? {
                return Err(ConversationError::NotFound);
            }
            if let Some(key) = &message.client_message_id {
                let earlier = transaction
                    .query_opt(
                        "SELECT id FROM conversation_messages
                     WHERE session_id = $1 AND client_message_id = $2",
                        &[&session.as_str(), key],
                    )
                    .await?;
                if let Some(earlier) = earlier {
                    let earlier: String = earlier.try_get(0)?;
                    let message = written_message(&transaction, player, session, &earlier).await?;
                    return Ok(Appended {
                        message,
                        repeated: true,
                    });
                }
            }
            let row = MessageInsert::user(&message);
            insert_message(&transaction, session, &row).await?;
            let message =
                written_message(&transaction, player, session, &row.id.to_string()).await?;
            transaction.commit().await?;
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
        self.with_client(|mut client| async move {
            let transaction = client.transaction().await?;
            if !owns(&transaction, player, session, true).await? {
                return Err(ConversationError::NotFound);
            }
            match find_message(&transaction, player, session, &answering.to_string()).await? {
                Some(message) if message.role == Role::User => {}
                _ => return Err(ConversationError::NotFound),
            }
            let row = MessageInsert::reply(*answering);
            insert_message(&transaction, session, &row).await?;
            let message =
                written_message(&transaction, player, session, &row.id.to_string()).await?;
            transaction.commit().await?;
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
        self.with_client(|client| async move {
            let changed = client
                .execute(
                    "UPDATE conversation_messages SET text = $4
                 WHERE id = $1 AND session_id = $2 AND role = 'assistant'
                    AND status = 'streaming'
                    AND session_id IN (SELECT id FROM conversations WHERE player_id = $3)",
                    &[
                        &reply.to_string(),
                        &session.as_str(),
                        &player.as_str(),
                        &text,
                    ],
                )
                .await?;
            if changed == 0 {
                return Err(refusal(&client, player, session, reply).await?);
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
        self.with_client(|client| async move {
            let id = reply.to_string();
            // One conditional update: of two racing ends (a cancel and the
            // completion) exactly one changes the row.
            let changed = end_reply(&client, player, session, &id, &end).await?;
            if changed == 0 {
                return Err(refusal(&client, player, session, reply).await?);
            }
            written_message(&client, player, session, &id).await
        })
    }

    fn message(
        &self,
        player: &PlayerId,
        session: &SessionId,
        id: &MessageId,
    ) -> Result<Option<StoredMessage>, ConversationError> {
        self.with_client(|client| async move {
            find_message(&client, player, session, &id.to_string()).await
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
        let rows = self.with_client(|client| async move {
            latest_messages(&client, player, session, before, size + 1).await
        })?;
        Ok(page_oldest_first(CursorKind::Messages, rows, size))
    }

    fn recent_messages(
        &self,
        player: &PlayerId,
        session: &SessionId,
        count: usize,
    ) -> Result<Vec<StoredMessage>, ConversationError> {
        let mut rows = self.with_client(|client| async move {
            latest_messages(&client, player, session, i64::MAX, count).await
        })?;
        rows.reverse();
        Ok(rows.into_iter().map(|(_, message)| message).collect())
    }

    fn record_exchanges(&self, exchanges: &[Exchange]) -> Result<usize, ConversationError> {
        self.with_client(|mut client| async move {
            let transaction = client.transaction().await?;
            let mut recorded = 0;
            for exchange in exchanges {
                let (player, session) = (&exchange.player, &exchange.session);
                insert_conversation_if_new(
                    &transaction,
                    player,
                    session,
                    exchange.agent_or_default(),
                    self.max_per_player,
                )
                .await?;
                if !owns(&transaction, player, session, true).await? {
                    continue;
                }
                let asked = MessageInsert::user(&exchange.user);
                let asked_id = asked.id;
                insert_message(&transaction, session, &asked).await?;
                let reply = MessageInsert::reply_with_id(exchange.reply_id, asked_id);
                insert_message(&transaction, session, &reply).await?;
                let id = exchange.reply_id.to_string();
                end_reply(&transaction, player, session, &id, &exchange.reply).await?;
                recorded += 1;
            }
            transaction.commit().await?;
            Ok(recorded)
        })
    }

    fn fail_interrupted_replies(&self) -> Result<u64, ConversationError> {
        self.with_client(|client| async move {
            Ok(client
                .execute(
                    "UPDATE conversation_messages SET status = 'failed', finish_reason = $1,
                    completed_at = $2
                 WHERE status = 'streaming'",
                    &[&INTERRUPTED, &now().0],
                )
                .await?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conversations::conformance;
    use crate::support::test_services::require_service;

    fn open(url: &str) -> PostgresConversationStore {
        let url = url.to_string();
        // The pool blocks on its own runtime: not from inside another.
        std::thread::spawn(move || PostgresConversationStore::open(PgPool::plain(&url).unwrap()))
            .join()
            .expect("connect thread")
            .expect("open the PostgreSQL store")
    }

    /// Deletes the run's rows however the test ends, so a failed run leaves
    /// nothing behind in the shared database either.
    struct CleanUp<'a> {
        store: &'a PostgresConversationStore,
        prefix: String,
    }

    impl Drop for CleanUp<'_> {
        fn drop(&mut self) {
            let pattern = format!("{}%", self.prefix);
            let result = self.store.with_client(|mut client| async move {
                let transaction = client.transaction().await?;
                transaction
                    .execute(
                        "DELETE FROM conversation_messages WHERE session_id IN
                        (SELECT id FROM conversations WHERE player_id LIKE $1)",
                        &[&pattern],
                    )
                    .await?;
                transaction
                    .execute(
                        "DELETE FROM conversations WHERE player_id LIKE $1",
                        &[&pattern],
                    )
                    .await?;
                Ok(transaction.commit().await?)
            });
            if let Err(err) = result {
                eprintln!("clean up: {err}");
            }
        }
    }

    /// One test rather than several: recovery fails every streaming reply
    /// in the database, so parts run side by side would upset each other.
    #[test]
    fn sessions_per_player_are_bounded() {
        let url = require_service!(Postgres);
        let prefix = format!("t{}_", uuid::Uuid::new_v4().simple());
        let store = open(&url).with_max_per_player(2);
        let _clean_up = CleanUp {
            store: &store,
            prefix: prefix.clone(),
        };
        conformance::session_cap(&store, &prefix);
    }

    #[test]
    fn the_shared_suite_passes_and_survives_a_second_store() {
        let url = require_service!(Postgres);
        let prefix = format!("t{}_", uuid::Uuid::new_v4().simple());
        let store = open(&url);
        let _clean_up = CleanUp {
            store: &store,
            prefix: prefix.clone(),
        };
        conformance::run(&store, &prefix);
        let written = conformance::before_reopen(&store, &prefix);
        let second = open(&url);
        conformance::after_reopen(&second, &written);
    }
}
