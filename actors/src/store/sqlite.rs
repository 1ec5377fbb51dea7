//! How every embedded store opens its SQLite file: the folder created if
//! missing, a WAL journal with full fsync on commit (a write the caller was
//! told about survives a crash), and a wait instead of an error while
//! another connection holds the lock.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

#[derive(Debug)]
pub(crate) enum OpenError {
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for OpenError {
    fn from(err: rusqlite::Error) -> Self {
        OpenError::Sqlite(err)
    }
}

pub(crate) fn open_durable(path: &Path) -> Result<Connection, OpenError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.busy_timeout(Duration::from_secs(5))?;
    Ok(connection)
}
