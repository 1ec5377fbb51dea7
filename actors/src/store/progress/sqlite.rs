//! The embedded progress store: one SQLite file, WAL journal, full fsync on
//! commit. The default for a single node.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::model::ids::{PlayerId, SessionId};
use crate::model::progress::{MarkerId, MarkerType, ProgressMarker};
use crate::model::time::Timestamp;
use crate::store::progress::{MarkerPage, ProgressStore, StoreError, MAX_MARKERS_PER_PLAYER};
use crate::store::sqlite::open_durable;

pub struct SqliteProgressStore {
    connection: Mutex<Connection>,
    max_per_player: i64,
}

impl SqliteProgressStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = open_durable(path)?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS progress_markers (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                marker_id TEXT NOT NULL UNIQUE,
                player_id TEXT NOT NULL,
                run_key TEXT NOT NULL,
                marker_type TEXT NOT NULL,
                description TEXT NOT NULL,
                achieved_at TEXT NOT NULL,
                therapeutic_value REAL NOT NULL,
                related_goal_id TEXT,
                UNIQUE (player_id, run_key)
            );
            CREATE INDEX IF NOT EXISTS progress_markers_by_player
                ON progress_markers (player_id, seq);",
        )?;
        // Files made before markers carried their session get the column.
        let has_session: bool = connection.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('progress_markers')
             WHERE name = 'session_id'",
            [],
            |row| row.get(0),
        )?;
        if !has_session {
            connection.execute_batch("ALTER TABLE progress_markers ADD COLUMN session_id TEXT")?;
        }
        Ok(SqliteProgressStore {
            connection: Mutex::new(connection),
            max_per_player: MAX_MARKERS_PER_PLAYER,
        })
    }

    /// Keeps at most `max` markers per player instead of the default.
    pub fn with_max_per_player(mut self, max: i64) -> Self {
        self.max_per_player = max;
        self
    }

    fn with_connection<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        work(&connection)
    }
}

const MARKER_COLUMNS: &str = "marker_id, marker_type, description, achieved_at, therapeutic_value,
    related_goal_id, session_id";

fn marker_from_row(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<ProgressMarker, StoreError>> {
    let marker_id: String = row.get(0)?;
    let marker_type: String = row.get(1)?;
    let description: String = row.get(2)?;
    let achieved_at: String = row.get(3)?;
    let therapeutic_value: f64 = row.get(4)?;
    let related_goal_id: Option<String> = row.get(5)?;
    let session_id: Option<String> = row.get(6)?;
    let Some(marker_type) = MarkerType::parse(&marker_type) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "marker {marker_id} has type {marker_type:?}"
        ))));
    };
    let achieved_at = match DateTime::parse_from_rfc3339(&achieved_at) {
        Ok(at) => Timestamp(at.with_timezone(&Utc)),
        Err(err) => {
            return Ok(Err(StoreError::Corrupt(format!(
                "marker {marker_id} achieved_at: {err}"
            ))))
        }
    };
    Ok(Ok(ProgressMarker {
        marker_id: MarkerId::from_stored(marker_id),
        marker_type,
        description,
        achieved_at,
        therapeutic_value,
        related_goal_id,
        session_id: session_id.and_then(|id| SessionId::parse(&id).ok()),
    }))
}

impl ProgressStore for SqliteProgressStore {
    fn record(
        &self,
        player: &PlayerId,
        run_key: &str,
        marker: ProgressMarker,
    ) -> Result<ProgressMarker, StoreError> {
        let max_per_player = self.max_per_player;
        self.with_connection(|connection| {
            // Not past the player's bound: counted in the same statement.
            connection.execute(
                "INSERT INTO progress_markers (marker_id, player_id, run_key, marker_type,
                    description, achieved_at, therapeutic_value, related_goal_id, session_id)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
                 WHERE (SELECT COUNT(*) FROM progress_markers WHERE player_id = ?2) < ?10
                 ON CONFLICT (player_id, run_key) DO NOTHING",
                params![
                    marker.marker_id.as_str(),
                    player.as_str(),
                    run_key,
                    marker.marker_type.as_str(),
                    marker.description,
                    marker
                        .achieved_at
                        .0
                        .to_rfc3339_opts(SecondsFormat::Millis, true),
                    marker.therapeutic_value,
                    marker.related_goal_id,
                    marker.session_id.as_ref().map(SessionId::as_str),
                    max_per_player,
                ],
            )?;
            let stored = connection
                .query_row(
                    &format!(
                        "SELECT {MARKER_COLUMNS} FROM progress_markers
                         WHERE player_id = ?1 AND run_key = ?2"
                    ),
                    params![player.as_str(), run_key],
                    marker_from_row,
                )
                .optional()?;
            // Neither recorded now nor before: the bound refused it.
            stored.unwrap_or(Err(StoreError::LimitReached))
        })
    }

    fn markers_after(
        &self,
        player: &PlayerId,
        after: Option<i64>,
        limit: usize,
    ) -> Result<MarkerPage, StoreError> {
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        self.with_connection(|connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {MARKER_COLUMNS}, seq FROM progress_markers
                 WHERE player_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
            ))?;
            let rows = statement
                .query_map(params![player.as_str(), after.unwrap_or(0), fetch], |row| {
                    Ok((marker_from_row(row)?, row.get::<_, i64>(7)?))
                })?;
            let mut found = Vec::new();
            for row in rows {
                let (marker, seq) = row?;
                found.push((marker?, seq));
            }
            Ok(MarkerPage::from_rows(found, limit))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::progress::conformance::marker;

    #[test]
    fn the_shared_suite_passes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteProgressStore::open(&dir.path().join("p.db"))
            .unwrap()
            .with_max_per_player(3);
        crate::store::progress::conformance::run(&store, "");
    }

    #[test]
    fn a_run_records_one_marker_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/progress.db");
        let alice = PlayerId::parse("alice").unwrap();
        let first = marker("Completed guided exercise: ex_breathing");
        {
            let store = SqliteProgressStore::open(&path).unwrap();
            let stored = store.record(&alice, "run-1", first.clone()).unwrap();
            assert_eq!(stored.marker_id, first.marker_id);
            // The same run again keeps the first marker.
            let again = store.record(&alice, "run-1", marker("other")).unwrap();
            assert_eq!(again.marker_id, first.marker_id);
            store.record(&alice, "run-2", marker("second")).unwrap();
        }
        let store = SqliteProgressStore::open(&path).unwrap();
        let markers = store.markers(&alice).unwrap();
        assert_eq!(markers.len(), 2);
        assert_eq!(markers[0].marker_id, first.marker_id);
        assert_eq!(markers[0].description, first.description);
        assert_eq!(markers[1].description, "second");
        let bob = PlayerId::parse("bob").unwrap();
        assert!(store.markers(&bob).unwrap().is_empty());
    }

    #[test]
    fn a_file_from_before_markers_had_a_session_is_read_and_extended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE progress_markers (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    marker_id TEXT NOT NULL UNIQUE,
                    player_id TEXT NOT NULL,
                    run_key TEXT NOT NULL,
                    marker_type TEXT NOT NULL,
                    description TEXT NOT NULL,
                    achieved_at TEXT NOT NULL,
                    therapeutic_value REAL NOT NULL,
                    related_goal_id TEXT,
                    UNIQUE (player_id, run_key)
                );
                INSERT INTO progress_markers (marker_id, player_id, run_key, marker_type,
                    description, achieved_at, therapeutic_value)
                VALUES ('pm_old', 'alice', 'run-0', 'SKILL_ACQUIRED', 'before',
                    '2026-11-01T10:00:00.000Z', 0.2);",
            )
            .unwrap();
        }
        let store = SqliteProgressStore::open(&path).unwrap();
        let alice = PlayerId::parse("alice").unwrap();
        store.record(&alice, "run-1", marker("after")).unwrap();
        let markers = store.markers(&alice).unwrap();
        assert_eq!(markers.len(), 2);
        assert_eq!(markers[0].session_id, None);
        assert!(markers[1].session_id.is_some());
        drop(store);
        SqliteProgressStore::open(&path).expect("opened again, the column is there");
    }
}
