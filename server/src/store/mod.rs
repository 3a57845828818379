//! The store: one SQLite file, with one async surface. Callers say what they
//! want (`store.runner(&r).await`, `store.list_runners(q).await`); how a call
//! reaches SQLite (inline on a read connection, or on the blocking pool
//! behind this process's write turn) is decided here, never by a caller.
//!
//! - [`schema`]: migrations and connection settings.
//! - [`runners`]: runners and their keys.
//! - [`tokens`]: the signing key, users and API tokens.

mod runners;
mod schema;
mod tokens;

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, Row, Transaction, TransactionBehavior};
use uuid::Uuid;

use crate::validate::RunnerRef;

pub use runners::KeyedRunner;
pub use schema::{BUSY_TIMEOUT, POOL_SIZE};
pub use tokens::{ApiTokenRow, SIGNING_KEY_BYTES, TokenPrincipal};

/// What can go wrong in the store. Each variant carries the facts; the
/// wording is in its `#[error]`, and the HTTP edge picks the status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no runner has {0}")]
    RunnerNotFound(RunnerRef),
    #[error("slug: `{0}` is already taken by another runner")]
    SlugTaken(String),
    #[error("slug: no free slug could be generated from the name in {0} attempts")]
    NoFreeSlug(usize),
    /// A runner that must be active for this is archived.
    #[error("runner `{0}` is archived: unarchive it first")]
    RunnerArchived(String),
    #[error("no user has the UUID `{0}`")]
    UserNotFound(Uuid),
    #[error("no API token has the UUID `{0}`")]
    ApiTokenNotFound(Uuid),
    /// The database stayed locked by another writer past the busy timeout,
    /// or no connection came free in that time.
    #[error("the database is busy")]
    Busy,
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("store task failed: {0}")]
    Task(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::Busy,
            _ => Self::Sqlite(e),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    /// The pool had no free connection within its timeout.
    fn from(_: r2d2::Error) -> Self {
        Self::Busy
    }
}

/// The database. Cloning is cheap: clones share the pools.
#[derive(Clone)]
pub struct Store {
    pool: Pool<SqliteConnectionManager>,
    /// Read-only connections for short reads run on the async workers
    /// themselves; see [`Store::read`].
    readers: Pool<SqliteConnectionManager>,
    /// Held for the length of every write transaction of this process, so
    /// that its writers queue here instead of in SQLite's busy handler,
    /// which sleeps whole milliseconds between retries. Other processes
    /// (the `token` commands, `sqlite3`) still meet the busy timeout.
    write_gate: Arc<Mutex<()>>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`, and
    /// makes sure it holds a signing key. Blocking: call it before serving,
    /// or from a blocking context.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let pools = schema::open(path, tokens::ensure_signing_key)?;
        Ok(Self {
            pool: pools.pool,
            readers: pools.readers,
            write_gate: Arc::default(),
        })
    }

    fn conn(&self) -> Result<PooledConnection<SqliteConnectionManager>, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Runs a short read, inline on the calling async worker when a reader
    /// connection is free (saving two thread hand-offs, most of the cost of
    /// such a request), else on the blocking pool. Only for statements of
    /// small, bounded cost: a lookup by a unique index, a page read along an
    /// index from near its start. In WAL mode a reader never waits for a
    /// writer, so these cannot stall the worker behind a lock.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Some(conn) = self.readers.try_get() {
            return f(&conn);
        }
        self.scan(f).await
    }

    /// Runs a read of any length on the blocking pool.
    async fn scan<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.blocking(move |s| f(&*s.conn()?)).await
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`) on the blocking
    /// pool, with this process's write turn; commits if `f` succeeds, rolls
    /// back if it fails.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.blocking(move |s| {
            // A writer that panicked left no transaction open (rusqlite rolls
            // back on drop), so a poisoned gate is still a valid turn.
            let _turn = s.write_gate.lock().unwrap_or_else(|e| e.into_inner());
            let mut conn = s.conn()?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

/// The current time, at the precision the store keeps.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn to_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The text of a column, borrowed from the row (no allocation).
fn text_at<'r>(row: &'r Row<'_>, idx: usize) -> rusqlite::Result<&'r str> {
    Ok(row.get_ref(idx)?.as_str()?)
}

fn time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text_at(row, idx)?)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
        })
}

fn opt_time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get_ref(idx)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => time_at(row, idx).map(Some),
    }
}

fn uuid_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
    Uuid::try_parse(text_at(row, idx)?).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
    })
}

/// Whether `e` is a violation of the unique index on `column`
/// (`table.column`).
fn is_unique_violation(e: &rusqlite::Error, column: &str) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, Some(msg))
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE && msg.ends_with(column))
}

#[cfg(test)]
mod tests;
