//! Where progress markers are kept (the markers themselves are
//! `model::progress`). Downstream analytics
//! read them, so a marker is acknowledged to the player only after the store
//! has committed it. The store is blocking by nature; callers run it on a
//! blocking thread pool, never inside an actor's handler.

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use thiserror::Error;

use crate::model::ids::PlayerId;
use crate::model::progress::ProgressMarker;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("progress store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("progress store: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("progress store: could not create {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("progress store: a stored marker is unreadable: {0}")]
    Corrupt(String),
    #[error("progress store: the connection lock was poisoned")]
    Poisoned,
    #[error("progress store: {0}")]
    Unavailable(String),
    /// The player holds as many markers as one may keep.
    #[error("progress store: the player has reached the marker limit")]
    LimitReached,
}

/// Markers kept per player unless configured otherwise
/// (`limits.progress_markers_per_player`): ten a day for almost three
/// years, while one token cannot fill the disk.
pub const MAX_MARKERS_PER_PLAYER: i64 = 10_000;

/// Durable storage of progress markers: SQLite embedded (`sqlite.rs`),
/// PostgreSQL when several nodes share one store (`postgres.rs`).
pub trait ProgressStore: Send + Sync + 'static {
    /// Records `marker` as the outcome of `run_key` (one exercise run of the
    /// player) unless that run already has a marker; returns the run's marker
    /// either way, so repeating a completion is harmless. A new run of a
    /// player who holds the store's maximum of markers is refused with
    /// [`StoreError::LimitReached`]; nothing is dropped to make room.
    fn record(
        &self,
        player: &PlayerId,
        run_key: &str,
        marker: ProgressMarker,
    ) -> Result<ProgressMarker, StoreError>;

    /// One page of the player's markers, oldest first: at most `limit`
    /// after the cursor `after`, and the cursor of the next page when there
    /// is one.
    fn markers_after(
        &self,
        player: &PlayerId,
        after: Option<i64>,
        limit: usize,
    ) -> Result<MarkerPage, StoreError>;

    /// All the player's markers, oldest first, read page by page.
    fn markers(&self, player: &PlayerId) -> Result<Vec<ProgressMarker>, StoreError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self.markers_after(player, after, 1000)?;
            all.extend(page.markers);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }
}

/// A page of markers and the cursor after it.
#[derive(Debug, Clone, Default)]
pub struct MarkerPage {
    pub markers: Vec<ProgressMarker>,
    pub next: Option<i64>,
}

impl MarkerPage {
    /// From up to `limit + 1` rows of (marker, cursor): the extra row only
    /// says that another page follows.
    pub(crate) fn from_rows(mut rows: Vec<(ProgressMarker, i64)>, limit: usize) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(|(_, seq)| *seq)
        } else {
            None
        };
        MarkerPage {
            markers: rows.into_iter().map(|(marker, _)| marker).collect(),
            next,
        }
    }
}

pub type SharedProgressStore = Arc<dyn ProgressStore>;

impl From<crate::store::postgres_link::PoolUnavailable> for StoreError {
    fn from(err: crate::store::postgres_link::PoolUnavailable) -> Self {
        StoreError::Unavailable(err.0)
    }
}

impl From<crate::store::sqlite::OpenError> for StoreError {
    fn from(err: crate::store::sqlite::OpenError) -> Self {
        match err {
            crate::store::sqlite::OpenError::CreateDir { path, source } => {
                StoreError::CreateDir { path, source }
            }
            crate::store::sqlite::OpenError::Sqlite(err) => StoreError::Sqlite(err),
        }
    }
}

/// One suite of behaviour, run against every store.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;
    use crate::model::progress::{MarkerId, MarkerType};
    use crate::model::time::Timestamp;

    pub fn marker(description: &str) -> ProgressMarker {
        ProgressMarker {
            marker_id: MarkerId::generate(),
            marker_type: MarkerType::SkillAcquired,
            description: description.into(),
            achieved_at: Timestamp::now(),
            therapeutic_value: 0.2,
            related_goal_id: None,
            session_id: Some(crate::model::ids::SessionId::parse("sess-earned-in").unwrap()),
        }
    }

    /// `prefix` makes the players unique to this run, so stores shared with
    /// other runs (a PostgreSQL database) do not mix results. The store
    /// keeps at most 3 markers per player.
    pub fn run(store: &dyn ProgressStore, prefix: &str) {
        let alice = PlayerId::parse(&format!("{prefix}alice")).unwrap();
        let bob = PlayerId::parse(&format!("{prefix}bob")).unwrap();
        let first = marker("Completed guided exercise: ex_breathing");
        let stored = store.record(&alice, "run-1", first.clone()).unwrap();
        assert_eq!(stored.marker_id, first.marker_id);
        assert_eq!(stored.description, first.description);
        assert_eq!(stored.marker_type, MarkerType::SkillAcquired);
        assert_eq!(stored.therapeutic_value, 0.2);
        assert_eq!(
            stored.session_id, first.session_id,
            "the session it was earned in"
        );
        // The same run again keeps the first marker.
        let again = store.record(&alice, "run-1", marker("other")).unwrap();
        assert_eq!(again.marker_id, first.marker_id);
        store.record(&alice, "run-2", marker("second")).unwrap();
        let markers = store.markers(&alice).unwrap();
        assert_eq!(markers.len(), 2);
        assert_eq!(markers[0].marker_id, first.marker_id, "oldest first");
        assert_eq!(
            markers[0].achieved_at.0.timestamp_millis(),
            first.achieved_at.0.timestamp_millis()
        );
        assert_eq!(markers[1].description, "second");
        assert!(store.markers(&bob).unwrap().is_empty());

        // At the bound, a new run is refused and nothing old is dropped;
        // a run already recorded still answers, and others are unaffected.
        store.record(&alice, "run-3", marker("third")).unwrap();
        let refused = store.record(&alice, "run-4", marker("fourth"));
        assert!(
            matches!(refused, Err(StoreError::LimitReached)),
            "{refused:?}"
        );
        assert_eq!(store.markers(&alice).unwrap().len(), 3);
        let repeat = store.record(&alice, "run-1", marker("again")).unwrap();
        assert_eq!(repeat.marker_id, first.marker_id);
        store.record(&bob, "run-1", marker("bob's")).unwrap();
    }
}
