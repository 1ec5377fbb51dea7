//! Progress markers in PostgreSQL: the store every node of a cluster shares.
//! Async clients from a small pool (`store/postgres_link.rs`); the trait
//! is called from the blocking thread pool, which waits for them. A
//! connection that broke is replaced by the pool, so a database restart
//! costs the calls made during it, not the process.

use std::future::Future;

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use tokio_postgres::Row;

use crate::store::postgres_link::PgPool;

use crate::model::ids::{PlayerId, SessionId};
use crate::model::progress::{MarkerId, MarkerType, ProgressMarker};
use crate::model::time::Timestamp;
use crate::store::progress::{MarkerPage, ProgressStore, StoreError, MAX_MARKERS_PER_PLAYER};

pub struct PostgresProgressStore {
    pool: PgPool,
    max_per_player: i64,
}

/// The server's "already exists" notices would reach the log as unstructured
/// lines at every start; warnings still do.
const SCHEMA: &str = "
    SET client_min_messages TO WARNING;
    CREATE TABLE IF NOT EXISTS progress_markers (
        seq BIGSERIAL PRIMARY KEY,
        marker_id TEXT NOT NULL UNIQUE,
        player_id TEXT NOT NULL,
        run_key TEXT NOT NULL,
        marker_type TEXT NOT NULL,
        description TEXT NOT NULL,
        achieved_at TIMESTAMPTZ NOT NULL,
        therapeutic_value DOUBLE PRECISION NOT NULL,
        related_goal_id TEXT,
        UNIQUE (player_id, run_key)
    );
    CREATE INDEX IF NOT EXISTS progress_markers_by_player ON progress_markers (player_id, seq);
    ALTER TABLE progress_markers ADD COLUMN IF NOT EXISTS session_id TEXT;";

const MARKER_COLUMNS: &str = "marker_id, marker_type, description, achieved_at, therapeutic_value,
    related_goal_id, session_id";

impl PostgresProgressStore {
    /// Connects and creates the table if needed. Blocking: call it outside
    /// any async runtime (the server does so on a thread of its own).
    pub fn open(pool: PgPool) -> Result<Self, StoreError> {
        pool.create_schema::<StoreError>(SCHEMA)?;
        Ok(Self {
            pool,
            max_per_player: MAX_MARKERS_PER_PLAYER,
        })
    }

    /// Keeps at most `max` markers per player instead of the default.
    pub fn with_max_per_player(mut self, max: i64) -> Self {
        self.max_per_player = max;
        self
    }

    /// Runs `work` with a pooled connection; see [`PgPool::run`].
    fn with_client<T, Fut>(&self, work: impl FnOnce(Object) -> Fut) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        self.pool
            .run(|client| async move { Ok::<T, StoreError>(work(client).await?) })
    }
}

fn marker_from_row(row: &Row) -> Result<ProgressMarker, StoreError> {
    let marker_id: String = row.try_get(0)?;
    let marker_type: String = row.try_get(1)?;
    let achieved_at: DateTime<Utc> = row.try_get(3)?;
    let Some(marker_type) = MarkerType::parse(&marker_type) else {
        return Err(StoreError::Corrupt(format!(
            "marker {marker_id} has type {marker_type:?}"
        )));
    };
    Ok(ProgressMarker {
        marker_id: MarkerId::from_stored(marker_id),
        marker_type,
        description: row.try_get(2)?,
        achieved_at: Timestamp(achieved_at),
        therapeutic_value: row.try_get(4)?,
        related_goal_id: row.try_get(5)?,
        session_id: row
            .try_get::<_, Option<String>>(6)?
            .and_then(|id| SessionId::parse(&id).ok()),
    })
}

impl ProgressStore for PostgresProgressStore {
    fn record(
        &self,
        player: &PlayerId,
        run_key: &str,
        marker: ProgressMarker,
    ) -> Result<ProgressMarker, StoreError> {
        let max_per_player = self.max_per_player;
        let row = self.with_client(|client| async move {
            // Not past the player's bound: counted in the same statement
            // (nodes recording for one player at the same instant may pass
            // it by one each).
            client
                .execute(
                    "INSERT INTO progress_markers (marker_id, player_id, run_key, marker_type,
                    description, achieved_at, therapeutic_value, related_goal_id, session_id)
                 SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::timestamptz,
                    $7::float8, $8::text, $9::text
                 WHERE (SELECT COUNT(*) FROM progress_markers WHERE player_id = $2) < $10
                 ON CONFLICT (player_id, run_key) DO NOTHING",
                    &[
                        &marker.marker_id.as_str(),
                        &player.as_str(),
                        &run_key,
                        &marker.marker_type.as_str(),
                        &marker.description,
                        &marker.achieved_at.0,
                        &marker.therapeutic_value,
                        &marker.related_goal_id,
                        &marker.session_id.as_ref().map(SessionId::as_str),
                        &max_per_player,
                    ],
                )
                .await?;
            client
                .query_opt(
                    &format!(
                        "SELECT {MARKER_COLUMNS} FROM progress_markers
                     WHERE player_id = $1 AND run_key = $2"
                    ),
                    &[&player.as_str(), &run_key],
                )
                .await
        })?;
        // Neither recorded now nor before: the bound refused it.
        match row {
            Some(row) => marker_from_row(&row),
            None => Err(StoreError::LimitReached),
        }
    }

    fn markers_after(
        &self,
        player: &PlayerId,
        after: Option<i64>,
        limit: usize,
    ) -> Result<MarkerPage, StoreError> {
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let after = after.unwrap_or(0);
        let rows = self.with_client(|client| async move {
            client
                .query(
                    &format!(
                        "SELECT {MARKER_COLUMNS}, seq FROM progress_markers
                     WHERE player_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                    ),
                    &[&player.as_str(), &after, &fetch],
                )
                .await
        })?;
        let found = rows
            .iter()
            .map(|row| Ok((marker_from_row(row)?, row.try_get::<_, i64>(7)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(MarkerPage::from_rows(found, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::test_services::require_service;

    #[test]
    fn the_shared_suite_passes() {
        let url = require_service!(Postgres);
        let prefix = format!("t{}_", uuid::Uuid::new_v4().simple());
        // The pool blocks on its own runtime: not from inside another.
        let store =
            std::thread::spawn(move || PostgresProgressStore::open(PgPool::plain(&url).unwrap()))
                .join()
                .expect("connect thread")
                .expect("open the PostgreSQL store")
                .with_max_per_player(3);
        crate::store::progress::conformance::run(&store, &prefix);
        store
            .with_client(|client| async move {
                client
                    .execute(
                        "DELETE FROM progress_markers WHERE player_id LIKE $1",
                        &[&format!("{prefix}%")],
                    )
                    .await
            })
            .expect("clean up");
    }
}
