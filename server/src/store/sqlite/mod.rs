//! The SQLite engine (the default): one file, r2d2 pools of connections,
//! and one writer thread that commits this process's writes in groups
//! ([`writer`]). Each operation of [`super::operations`] is implemented in
//! the file of its topic; this file holds the engine's parts and how a call
//! reaches SQLite: inline on a read connection ([`SqliteStore::read`]), on
//! the blocking pool ([`SqliteStore::scan`]), or behind this process's
//! write turn ([`SqliteStore::write`]).
//!
//! - [`schema`]: opening, connection settings, and the versions of
//!   [`migrations`].
//! - [`item`] and [`items`]: what runners and specs share, written once.
//! - [`runners`], [`specs`], [`runner_specs`]: each resource's own.
//! - [`jobs`] (queue, reads, lists, cancel), [`claims`] (what runners do).
//! - [`tokens`]: the signing key, users and API tokens; [`audit`].
//! - [`columns`]: the store's types in SQLite's columns.
//! - [`files`]: the SQLite file's owner rule and the one-server lock.

mod audit;
mod changes;
mod claims;
mod columns;
pub mod files;
pub mod item;
mod items;
mod jobs;
mod keys;
mod migrations;
mod projects;
mod registry_keys;
mod reports;
mod runner_specs;
mod runners;
pub mod schema;
mod specs;
#[cfg(test)]
mod tests;
mod tokens;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, Row, Transaction};
use uuid::Uuid;

use super::error::{BUSY_TIMEOUT, StoreError};
use super::model::events::{Event, Listener};
use super::operations::EngineOps;

pub use schema::POOL_SIZE;
pub use writer::WriteStats;

/// The SQLite engine. Cloning is cheap: clones share the pools.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool<SqliteConnectionManager>,
    /// Read-only connections for short reads run on the async workers
    /// themselves; see [`SqliteStore::read`].
    readers: Pool<SqliteConnectionManager>,
    /// The writer thread and its bounded queue: every write of this process
    /// goes through it (group commit, see [`writer`]), so its writers queue
    /// here instead of in SQLite's busy handler. Other processes (the
    /// `token` commands, `sqlite3`) still meet the busy timeout.
    writer: Arc<writer::Writer>,
    stats: Arc<WriteStats>,
    /// Files of the database that were readable by others, made owner-only
    /// when it was opened.
    tightened: Arc<Vec<std::path::PathBuf>>,
    /// Who hears of committed changes: handed over in memory, right after
    /// the commit (one process, one file).
    events: Arc<OnceLock<Listener>>,
    /// Statements run for reads, for the benchmark's count.
    reads: Arc<AtomicU64>,
    /// The database file (readiness: it must still be there).
    path: Arc<std::path::PathBuf>,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the file at `path`, and
    /// makes sure it holds a signing key, with room for `write_queue`
    /// writes waiting for the writer. Blocking.
    pub fn open(path: &Path, write_queue: usize) -> anyhow::Result<Self> {
        let pools = schema::open(path, |c| {
            tokens::ensure_signing_key(c)?;
            registry_keys::ensure_registry_key(c)?;
            projects::ensure_organization(c)
        })?;
        let stats = Arc::new(WriteStats::default());
        let writer = pools
            .pool
            .get()
            .context("cannot open database for writing")?;
        // The writer's savepoints (one a write, one a statement with a
        // trigger) keep the pages they change in a statement journal,
        // which SQLite spills to a temporary file past 64 KiB: most of a
        // group commit's system calls. In memory instead (bounded by what
        // one batch changes).
        writer
            .execute_batch("PRAGMA temp_store = MEMORY")
            .and_then(|()| writer.execute_batch(changes::SETUP))
            .context("cannot set up the database writer")?;
        let events: Arc<OnceLock<Listener>> = Arc::default();
        let hooks = writer::Hooks {
            before_commit: items::drain_search_queues,
            publish: Arc::clone(&events),
        };
        let writer = writer::start(writer, write_queue, Arc::clone(&stats), hooks)
            .context("cannot start the database writer")?;
        Ok(Self {
            pool: pools.pool,
            readers: pools.readers,
            writer: Arc::new(writer),
            stats,
            tightened: Arc::new(pools.tightened),
            path: Arc::new(path.to_owned()),
            events,
            reads: Arc::default(),
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
            self.reads.fetch_add(1, Relaxed);
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
        self.reads.fetch_add(1, Relaxed);
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&*store.conn()?))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` as one write, in a savepoint of the writer's transaction
    /// (`BEGIN IMMEDIATE`), which it may share with other writes waiting at
    /// the same time (group commit): answered once that transaction is
    /// committed, with `f`'s result; `f` failing rolls back its own changes
    /// only. A write that finds the queue full is refused at once
    /// ([`StoreError::Overloaded`]); one that has not had the write lock
    /// within [`BUSY_TIMEOUT`] of being queued is [`StoreError::Busy`].
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let slot = self.writer.reserve().ok_or(StoreError::Overloaded)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        let job = writer::Msg::Write(writer::job(f, reply, deadline, slot));
        self.writer
            .jobs
            .send(job)
            .map_err(|_| StoreError::WriterStopped)?;
        // The writer answers every job it takes; a dropped answer means it
        // died with this job.
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Tells the listener, if any, of `event` (after its write committed).
    fn publish(&self, event: Event) {
        if let Some(listener) = self.events.get() {
            listener(event);
        }
    }

    /// Makes the writer thread panic outside any write (tests only).
    #[cfg(test)]
    pub(crate) fn kill_writer(&self) {
        let _ = self.writer.jobs.send(writer::Msg::Panic);
    }
}

impl EngineOps for SqliteStore {
    fn listen(&self, listener: Listener) {
        let _ = self.events.set(listener);
    }

    /// Finishes the writes queued so far and closes the writer's
    /// connection.
    async fn close(&self) {
        let writer = Arc::clone(&self.writer);
        let _ = tokio::task::spawn_blocking(move || {
            let (done, closed) = std::sync::mpsc::channel();
            if writer.jobs.send(writer::Msg::Stop(done)).is_ok() {
                let _ = closed.recv();
            }
        })
        .await;
    }

    /// Resolves if the writer thread dies (a panic outside any write).
    async fn writer_stopped(&self) {
        self.writer.stopped().await;
    }

    fn stats(&self) -> crate::store::model::gauges::EngineStats {
        let n = |a: &AtomicU64| a.load(Relaxed);
        crate::store::model::gauges::EngineStats::Sqlite {
            writes: n(&self.stats.writes),
            commits: n(&self.stats.commits),
            commit_nanos: n(&self.stats.commit_nanos),
            queued: u64::try_from(self.writer.queued()).unwrap_or(u64::MAX),
            drain_failures: n(&self.stats.drain_failures),
        }
    }

    async fn gauges(&self) -> Result<crate::store::model::gauges::Gauges, StoreError> {
        use crate::store::model::gauges::{self as g, Gauges};
        self.read(|c| {
            let one = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0));
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            let active = one("SELECT active FROM runner_counts WHERE id = 1")?;
            let online = one(g::ONLINE)?;
            let busy: (i64, i64) = c.query_row(g::BUSY, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
            static JOBS: std::sync::LazyLock<String> =
                std::sync::LazyLock::new(|| g::job_counts_sql(str::to_owned));
            let jobs = c.query_row(&JOBS, [], |r| {
                let mut jobs = [0; g::JOB_STATUSES];
                for (i, n) in jobs.iter_mut().enumerate() {
                    *n = count(r.get(i)?);
                }
                Ok(jobs)
            })?;
            let mut stmt = c.prepare_cached(g::PENDING_BY_SPEC)?;
            let by_spec = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, count(r.get(1)?))))?
                .collect::<Result<_, _>>()?;
            let busy = (count(busy.0), count(busy.1));
            Ok(Gauges::from_counts(
                count(active),
                count(online),
                busy,
                jobs,
                by_spec,
            ))
        })
        .await
    }

    async fn readiness(&self) -> Result<(), String> {
        if self.writer.has_died() {
            return Err("the database writer has stopped".into());
        }
        // A file deleted under the server takes writes that no restart
        // will find.
        if !self.path.exists() {
            return Err(format!("the database file {} is gone", self.path.display()));
        }
        let sql = "SELECT active FROM runner_counts WHERE id = 1";
        self.read(move |c| Ok(c.query_row(sql, [], |r| r.get::<_, i64>(0))?))
            .await
            .map(drop)
            .map_err(|e| format!("the database does not answer: {e}"))
    }

    fn calls(&self) -> u64 {
        self.reads.load(Relaxed) + self.stats.writes.load(Relaxed)
    }

    fn write_stats(&self) -> (u64, u64) {
        (
            self.stats.writes.load(Relaxed),
            self.stats.commits.load(Relaxed),
        )
    }

    fn tightened(&self) -> &[std::path::PathBuf] {
        &self.tightened
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::Busy,
            Some(ErrorCode::DiskFull) => Self::DiskFull,
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

use super::model::time_text as to_text;

/// The text of a column, borrowed from the row (no allocation).
fn text_at<'r>(row: &'r Row<'_>, idx: usize) -> rusqlite::Result<&'r str> {
    Ok(row.get_ref(idx)?.as_str()?)
}

fn time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text = text_at(row, idx)?;
    if let Some(t) = parse_stored_time(text) {
        return Ok(t);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
        })
}

/// A time as [`to_text`] writes it (`2026-12-02T10:00:00.123456Z`, the
/// only form the store writes), read without chrono's general RFC 3339
/// parser, which was a large part of reading a page of rows; `None` for
/// any other text (which chrono's parser then reads).
fn parse_stored_time(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() != 27 || [b[4], b[7], b[10], b[13], b[16], b[19], b[26]] != *b"--T::.Z" {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let date =
        chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0, 4)?).ok()?, num(5, 7)?, num(8, 10)?)?;
    let time = chrono::NaiveTime::from_hms_micro_opt(
        num(11, 13)?,
        num(14, 16)?,
        num(17, 19)?,
        num(20, 26)?,
    )?;
    Some(date.and_time(time).and_utc())
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
