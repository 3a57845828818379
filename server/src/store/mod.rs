//! The store: one SQLite file, with one async surface. Callers say what they
//! want (`store.runner(&r).await`, `store.list_runners(q).await`); how a call
//! reaches SQLite (inline on a read connection, or on the blocking pool
//! behind this process's write turn) is decided here, never by a caller.
//!
//! - [`schema`]: migrations and connection settings.
//! - [`runners`]: runners and their keys.
//! - [`specs`]: hardware specs, and the specs of each runner.
//! - [`tokens`]: the signing key, users and API tokens.
//! - [`audit`]: the audit trail, written in each write's transaction.

mod audit;
mod runners;
mod schema;
mod specs;
mod tokens;
mod writer;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, Row, Transaction};
use uuid::Uuid;

use crate::validate::{
    Direction, ListQuery, ResourceName, RunnerRef, Slug, Sort, SpecRef, generated_slug,
    slug_from_name,
};

pub use audit::{Actor, AuditRow};
pub use runners::KeyedRunner;
pub use schema::{BUSY_TIMEOUT, POOL_SIZE};

/// Writes that may wait for the writer thread at once, unless told
/// otherwise: at the writer's pace (thousands a second, in batches of up to
/// 128) a full queue drains well within the busy timeout.
pub const WRITE_QUEUE_DEFAULT: usize = 1024;
pub use tokens::{ApiTokenRow, SIGNING_KEY_BYTES, Sign, SigningSecret, TokenPrincipal};
pub use writer::WriteStats;

/// What can go wrong in the store. Each variant carries the facts; the
/// wording is in its `#[error]`, and the HTTP edge picks the status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no runner has {0}")]
    RunnerNotFound(RunnerRef),
    #[error("no spec has {0}")]
    SpecNotFound(SpecRef),
    /// `kind` is `runner` or `spec`.
    #[error("slug: `{slug}` is already taken by another {kind}")]
    SlugTaken { kind: &'static str, slug: String },
    #[error("slug: no free slug could be generated from the name in {0} attempts")]
    NoFreeSlug(usize),
    /// A runner that must be active for this is archived.
    #[error("runner `{0}` is archived: unarchive it first")]
    RunnerArchived(String),
    #[error("spec `{0}` is archived: unarchive it before making it the fallback")]
    SpecArchived(String),
    #[error("runner `{runner}` has spec `{spec}` already")]
    RunnerHasSpec { runner: String, spec: String },
    #[error("runner `{runner}` does not have spec `{spec}`")]
    RunnerLacksSpec { runner: String, spec: String },
    #[error("spec `{spec}` is in use by runner `{runner}`: remove it from the runner first")]
    SpecInUse { spec: String, runner: String },
    #[error("no API token has the UUID `{0}`")]
    ApiTokenNotFound(Uuid),
    /// The database stayed locked by another writer past the busy timeout,
    /// or no connection came free in that time.
    #[error("the database is busy")]
    Busy,
    /// The write queue is full: more writes are waiting than it holds.
    #[error("too many writes are waiting: nothing was written")]
    Overloaded,
    /// The disk (or the file system's quota) is full: nothing was written.
    #[error("the disk is full: nothing was written")]
    DiskFull,
    /// The writer thread has died: no write can be done any more.
    #[error("the database writer has stopped")]
    WriterStopped,
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("store task failed: {0}")]
    Task(String),
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

/// The database. Cloning is cheap: clones share the pools.
#[derive(Clone)]
pub struct Store {
    pool: Pool<SqliteConnectionManager>,
    /// Read-only connections for short reads run on the async workers
    /// themselves; see [`Store::read`].
    readers: Pool<SqliteConnectionManager>,
    /// The writer thread and its bounded queue: every write of this process
    /// goes through it (group commit, see [`writer`]), so its writers queue
    /// here instead of in SQLite's busy handler. Other processes (the
    /// `token` commands, `sqlite3`) still meet the busy timeout.
    writer: Arc<writer::Writer>,
    stats: Arc<WriteStats>,
    /// Files of the database that were readable by others, made owner-only
    /// when it was opened.
    tightened: Arc<[std::path::PathBuf]>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`, and
    /// makes sure it holds a signing key. Blocking: call it before serving,
    /// or from a blocking context.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Self::open_with(path, WRITE_QUEUE_DEFAULT)
    }

    /// [`Store::open`], with room for `write_queue` writes waiting for the
    /// writer (more are refused at once with [`StoreError::Overloaded`]).
    pub fn open_with(path: &Path, write_queue: usize) -> anyhow::Result<Self> {
        let pools = schema::open(path, tokens::ensure_signing_key)?;
        let stats = Arc::new(WriteStats::default());
        let writer = pools
            .pool
            .get()
            .context("cannot open database for writing")?;
        let writer = writer::start(writer, write_queue, Arc::clone(&stats))
            .context("cannot start the database writer")?;
        Ok(Self {
            pool: pools.pool,
            readers: pools.readers,
            writer: Arc::new(writer),
            stats,
            tightened: pools.tightened.into(),
        })
    }

    /// The database's files that were readable by group or others and were
    /// made owner-only (0600) when it was opened.
    pub fn tightened(&self) -> &[std::path::PathBuf] {
        &self.tightened
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

    /// Finishes the writes queued so far and closes the writer's connection;
    /// writes after this fail. For a clean shutdown.
    pub async fn close_writer(&self) {
        let writer = Arc::clone(&self.writer);
        let _ = tokio::task::spawn_blocking(move || {
            let (done, closed) = std::sync::mpsc::channel();
            if writer.jobs.send(writer::Msg::Stop(done)).is_ok() {
                let _ = closed.recv();
            }
        })
        .await;
    }

    /// Resolves if the writer thread dies (a panic outside any write): from
    /// then on every write fails, so a server should exit and be restarted
    /// rather than go on serving reads only. Never resolves otherwise.
    pub async fn writer_stopped(&self) {
        self.writer.stopped().await
    }

    /// Makes the writer thread panic outside any write (tests only).
    #[cfg(test)]
    pub(crate) fn kill_writer(&self) {
        let _ = self.writer.jobs.send(writer::Msg::Panic);
    }

    /// Writes and commits of this store so far.
    pub fn write_stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.stats.writes.load(Relaxed),
            self.stats.commits.load(Relaxed),
        )
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

/// Shortest `search` the trigram index serves; shorter ones scan.
pub const SEARCH_INDEX_MIN_CHARS: usize = 3;

/// The `WHERE` and `ORDER BY` of a list of `table` (`runners` or `specs`,
/// which share the columns filtered on, and each have a trigram index
/// `{table}_search`), and the parameters of the `WHERE`.
struct ListSql {
    table: &'static str,
    where_sql: String,
    args: Vec<Value>,
    order: &'static str,
}

impl ListSql {
    fn new(table: &'static str, q: &ListQuery) -> Self {
        let mut filters = Vec::new();
        let mut args = Vec::new();
        if !q.archived {
            filters.push("archived IS NULL".to_owned());
        }
        if let Some(name) = &q.name {
            filters.push("name = ?".to_owned());
            args.push(Value::Text(name.clone()));
        }
        if let Some(search) = &q.search {
            if search.chars().count() >= SEARCH_INDEX_MIN_CHARS {
                // The trigram index finds the rows that can match (it folds
                // case itself, so it finds a superset); instr() below keeps
                // exactly the ones that do. A phrase in double quotes is
                // taken literally (quotes doubled), `%` and `_` included.
                filters.push(format!(
                    "id IN (SELECT rowid FROM {table}_search WHERE {table}_search MATCH ?)"
                ));
                args.push(Value::Text(format!("\"{}\"", search.replace('"', "\"\""))));
            }
            // instr() matches literally, so `%` and `_` need no escaping.
            filters.push(
                "(instr(name_folded, ?) > 0 OR instr(slug, ?) > 0 OR instr(uuid, ?) > 0)"
                    .to_owned(),
            );
            args.extend(std::iter::repeat_n(Value::Text(search.clone()), 3));
        }
        let mut where_sql = String::new();
        for (i, filter) in filters.iter().enumerate() {
            where_sql.push_str(if i == 0 { " WHERE " } else { " AND " });
            where_sql.push_str(filter);
        }
        let order = match (q.sort, q.direction) {
            (Sort::Name, Direction::Asc) => "name ASC, slug ASC",
            (Sort::Name, Direction::Desc) => "name DESC, slug DESC",
            (Sort::Created, Direction::Asc) => "id ASC",
            (Sort::Created, Direction::Desc) => "id DESC",
        };
        Self {
            table,
            where_sql,
            args,
            order,
        }
    }

    /// One page and the number of matches in all, in one read transaction
    /// (one snapshot, one WAL read lock). `count_sql` is a cheap count to
    /// use (the trigger-kept one); without it the matches are counted by
    /// the page's own statement (`count(*) OVER ()`), so a search reads its
    /// matches once, not twice. The page's ids are chosen first, along the
    /// index that serves the sort (which holds the id), and only the rows
    /// of the page are read whole: a deep page skips index entries, not rows.
    fn run<T>(
        self,
        conn: &Connection,
        q: &ListQuery,
        count_sql: Option<&str>,
        columns: &str,
        mut item: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<(Vec<T>, u64), StoreError> {
        let tx = conn.unchecked_transaction()?;
        let count = |sql: &str| -> Result<i64, StoreError> {
            Ok(tx
                .prepare_cached(sql)?
                .query_row(rusqlite::params_from_iter(&self.args), |r| r.get(0))?)
        };
        let cheap_total = count_sql.map(count).transpose()?;
        let limit = i64::from(q.per_page);
        let offset = i64::try_from(q.offset()).unwrap_or(i64::MAX);
        let mut args = self.args.clone();
        args.extend([Value::Integer(limit), Value::Integer(offset)]);
        let (table, order, where_sql) = (self.table, self.order, &self.where_sql);
        let mut counted = None;
        // The window counts every match before LIMIT: only when there is no
        // cheap count (it would walk the whole index of an unfiltered list).
        let total = if cheap_total.is_some() {
            "NULL"
        } else {
            "count(*) OVER ()"
        };
        let items = tx
            .prepare_cached(&format!(
                "WITH page (page_id, total) AS (
                     SELECT id, {total} FROM {table}{where_sql}
                     ORDER BY {order} LIMIT ? OFFSET ?)
                 SELECT {columns}, total FROM {table} JOIN page ON page_id = id
                 ORDER BY {order}"
            ))?
            .query_map(rusqlite::params_from_iter(&args), |row| {
                counted = row.get::<_, Option<i64>>(row.as_ref().column_count() - 1)?;
                item(row)
            })?
            .collect::<Result<Vec<T>, _>>()?;
        let total = match (cheap_total, counted) {
            (Some(total), _) | (None, Some(total)) => total,
            // A page past the end has no row to carry the count.
            (None, None) => count(&format!("SELECT count(*) FROM {table}{where_sql}"))?,
        };
        tx.commit()?;
        Ok((items, u64::try_from(total).unwrap_or(0)))
    }
}

/// Tries to find a free generated slug before giving up with a 409.
const GENERATED_SLUG_ATTEMPTS: usize = 8;

/// A runner's or a spec's table: the words its errors use.
#[derive(Clone, Copy)]
struct Kind {
    /// `runner` or `spec`: in messages, and the fallback of a generated slug.
    name: &'static str,
    /// The unique slug column, as SQLite names it in a violation.
    slug_column: &'static str,
}

const RUNNER: Kind = Kind {
    name: "runner",
    slug_column: "runners.slug",
};
const SPEC: Kind = Kind {
    name: "spec",
    slug_column: "specs.slug",
};

impl Kind {
    /// Maps a failed write of `slug` to [`StoreError::SlugTaken`] if the
    /// slug is taken.
    fn slug_conflict(self, slug: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |e| {
            if is_unique_violation(&e, self.slug_column) {
                StoreError::SlugTaken {
                    kind: self.name,
                    slug: slug.to_owned(),
                }
            } else {
                e.into()
            }
        }
    }

    /// Runs `insert` with the slug given (taken: 409), or else with slugs
    /// generated from `name` until one is free.
    fn insert<T>(
        self,
        given: Option<&str>,
        name: &str,
        mut insert: impl FnMut(&str) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        if let Some(slug) = given {
            return insert(slug).map_err(self.slug_conflict(slug));
        }
        let base = slug_from_name(name);
        for i in 0..GENERATED_SLUG_ATTEMPTS {
            match insert(&generated_slug(base.as_deref(), self.name, i)) {
                Err(e) if is_unique_violation(&e, self.slug_column) => continue,
                result => return Ok(result?),
            }
        }
        Err(StoreError::NoFreeSlug(GENERATED_SLUG_ATTEMPTS))
    }
}

/// What an update of a runner or a spec changes in every item: `name`,
/// `slug` and `archived` (archiving an archived item keeps its first time),
/// applied to the item's fields.
struct CommonFields<'a> {
    name: &'a mut String,
    slug: &'a mut String,
    archived: &'a mut Option<DateTime<Utc>>,
}

impl CommonFields<'_> {
    fn apply(
        self,
        name: Option<ResourceName>,
        slug: Option<Slug>,
        archive: Option<bool>,
        stamp: DateTime<Utc>,
    ) {
        if let Some(name) = name {
            *self.name = name.into();
        }
        if let Some(slug) = slug {
            *self.slug = slug.into();
        }
        match archive {
            Some(true) => *self.archived = self.archived.or(Some(stamp)),
            Some(false) => *self.archived = None,
            None => {}
        }
    }
}

/// Whether `e` is a violation of the unique index on `column`
/// (`table.column`).
fn is_unique_violation(e: &rusqlite::Error, column: &str) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, Some(msg))
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE && msg.ends_with(column))
}

#[cfg(test)]
mod tests;
