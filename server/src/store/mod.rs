//! The store: one SQLite file, with one async surface. Callers say what they
//! want (`store.item(&r).await`, `store.list_runners(q).await`); how a call
//! reaches SQLite (inline on a read connection, or on the blocking pool
//! behind this process's write turn) is decided here, never by a caller.
//!
//! - [`schema`]: migrations and connection settings.
//! - [`model`]: what the store takes and returns (rows, new items, change
//!   sets, references, audit actions).
//! - [`items`]: what runners and specs share, written once.
//! - [`runners`]: runners and their keys.
//! - [`specs`]: hardware specs.
//! - [`runner_specs`]: the specs of each runner.
//! - [`tokens`]: the signing key, users and API tokens.
//! - [`audit`]: the audit trail, written in each write's transaction.
//! - [`files`]: the SQLite file's owner rule and the one-server lock.

mod audit;
mod claims;
pub mod events;
pub mod files;
mod items;
pub mod jobs;
pub mod model;
/// The PostgreSQL engine, a first slice (issue 19; see `ENGINES.md`).
pub mod pg;
mod principal;
mod rules;
mod runner_specs;
mod runners;
mod schema;
mod specs;
mod tokens;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, Row, Transaction};
use uuid::Uuid;

use crate::validate::Ref;
use model::Kind;

pub use audit::AuditRow;
pub use items::{Item, SEARCH_INDEX_MIN_CHARS};
pub use model::{
    AuditAction, NewRunner, NewSpec, RunnerChanges, RunnerKeyHash, RunnerRef, RunnerRow,
    SpecChanges, SpecRef, SpecRow,
};
pub use runners::KeyedRunner;
pub use schema::{BUSY_TIMEOUT, POOL_SIZE};

/// Writes that may wait for the writer thread at once, unless told
/// otherwise: at the writer's pace (thousands a second, in batches of up to
/// 128) a full queue drains well within the busy timeout.
pub const WRITE_QUEUE_DEFAULT: usize = 1024;
pub use principal::{Actor, ApiTokenRow, SIGNING_KEY_BYTES, Sign, SigningSecret, TokenPrincipal};
pub use writer::WriteStats;

/// What can go wrong in the store. Each variant carries the facts; the
/// wording is in its `#[error]`, and the HTTP edge picks the status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no {kind} has {by}")]
    NotFound { kind: Kind, by: Ref },
    #[error("slug: `{slug}` is already taken by another {kind}")]
    SlugTaken { kind: Kind, slug: String },
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
    #[error(
        "spec: none was given and no fallback spec exists: name one in `spec`, or make a spec the fallback (`fallback: true` on POST /v0/specs or PATCH /v0/specs/{{spec}})"
    )]
    NoFallbackSpec,
    #[error("spec `{0}` is archived: unarchive it or choose another")]
    SpecArchivedForJob(String),
    #[error("spec `{spec}` is used by job `{job}`: specs of jobs cannot be deleted")]
    SpecHasJobs { spec: String, job: Uuid },
    #[error(
        "job `{job}` has already ended ({status}): only a pending, claimed or running job can be canceled"
    )]
    JobEnded { job: Uuid, status: &'static str },
    #[error("job `{0}` is not this runner's")]
    NotRunnersJob(Uuid),
    /// The runner was archived or re-keyed since its channel opened.
    #[error("the runner was archived or its key was rotated")]
    RunnerRevoked,
    #[error("another channel of this runner opened: this one is no longer its channel")]
    ChannelNotCurrent,
    #[error("no API token has the UUID `{0}`")]
    ApiTokenNotFound(Uuid),
    /// The database stayed locked by another writer past the busy timeout,
    /// or no connection came free in that time.
    #[error("the database is busy")]
    Busy,
    /// The database cannot be reached (PostgreSQL down or restarting), or
    /// gave no answer within [`BUSY_TIMEOUT`].
    #[error("the database cannot be reached")]
    Unavailable,
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
    /// PostgreSQL's error (the PostgreSQL engine), other than the ones
    /// mapped to `Busy` and `DiskFull`.
    #[error("database error: {0}")]
    Pg(tokio_postgres::Error),
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
///
/// Two engines answer behind it (`ENGINES.md`): the SQLite file (the
/// default), or PostgreSQL (`--db postgres://…`). Each operation starts
/// with the PostgreSQL case, [`Store::pg`], and goes on with SQLite's.
#[derive(Clone)]
pub struct Store {
    engine: Engine,
    /// Who hears of committed changes ([`events`]).
    events: events::Listener,
    /// Statements run for reads, for the benchmark's count.
    reads: Arc<std::sync::atomic::AtomicU64>,
}

/// The engine behind a [`Store`].
#[derive(Clone)]
enum Engine {
    Sqlite(Arc<SqliteParts>),
    Pg(Arc<pg::PgStore>),
}

/// The SQLite engine's parts.
struct SqliteParts {
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
    tightened: Vec<std::path::PathBuf>,
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
        let DbName::Sqlite(path) = DbName::parse(path)? else {
            anyhow::bail!(
                "a PostgreSQL URL is opened with Store::open_db (async), not Store::open"
            );
        };
        let pools = schema::open(&path, tokens::ensure_signing_key)?;
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
            .context("cannot set up the database writer")?;
        let writer = writer::start(
            writer,
            write_queue,
            Arc::clone(&stats),
            items::drain_search_queues,
        )
        .context("cannot start the database writer")?;
        Ok(Self {
            engine: Engine::Sqlite(Arc::new(SqliteParts {
                pool: pools.pool,
                readers: pools.readers,
                writer: Arc::new(writer),
                stats,
                tightened: pools.tightened,
            })),
            events: Arc::default(),
            reads: Arc::default(),
        })
    }

    /// Opens the database `db` names: a `postgres://` (or `postgresql://`)
    /// URL selects PostgreSQL; a path (or `sqlite://PATH`) the SQLite file,
    /// as [`Store::open_with`] (on the blocking pool).
    pub async fn open_db(db: &Path, write_queue: usize) -> anyhow::Result<Self> {
        if let DbName::Postgres(url) = DbName::parse(db)? {
            return Ok(Self {
                engine: Engine::Pg(Arc::new(pg::PgStore::open(&url).await?)),
                events: Arc::default(),
                reads: Arc::default(),
            });
        }
        let db = db.to_owned();
        tokio::task::spawn_blocking(move || Self::open_with(&db, write_queue)).await?
    }

    /// The PostgreSQL engine, if it is the one: each operation asks first.
    fn pg(&self) -> Option<&pg::PgStore> {
        match &self.engine {
            Engine::Pg(pg) => Some(pg),
            Engine::Sqlite(_) => None,
        }
    }

    /// The SQLite engine's parts (an operation without its PostgreSQL case
    /// is a fault of this code: an error, never a panic).
    fn sqlite(&self) -> Result<&SqliteParts, StoreError> {
        match &self.engine {
            Engine::Sqlite(parts) => Ok(parts),
            Engine::Pg(_) => Err(StoreError::Task(
                "this operation is not implemented on PostgreSQL".into(),
            )),
        }
    }

    /// The database's files that were readable by group or others and were
    /// made owner-only (0600) when it was opened.
    pub fn tightened(&self) -> &[std::path::PathBuf] {
        match &self.engine {
            Engine::Sqlite(parts) => &parts.tightened,
            Engine::Pg(_) => &[],
        }
    }

    fn conn(&self) -> Result<PooledConnection<SqliteConnectionManager>, StoreError> {
        Ok(self.sqlite()?.pool.get()?)
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
        if let Some(conn) = self.sqlite()?.readers.try_get() {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        let sqlite = self.sqlite()?;
        let slot = sqlite.writer.reserve().ok_or(StoreError::Overloaded)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        let job = writer::Msg::Write(writer::job(f, reply, deadline, slot));
        sqlite
            .writer
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
        let sqlite = match &self.engine {
            Engine::Sqlite(parts) => parts,
            // Each write committed before it was answered; the lease (if
            // this process served) ends, and the pool's connections close
            // as they drop.
            Engine::Pg(pg) => {
                let _ = pg.end_lease().await;
                return pg.close();
            }
        };
        let writer = Arc::clone(&sqlite.writer);
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
        match &self.engine {
            Engine::Sqlite(parts) => parts.writer.stopped().await,
            // No writer thread: PostgreSQL's own processes do the writing.
            Engine::Pg(_) => std::future::pending().await,
        }
    }

    /// Makes the writer thread panic outside any write (tests only).
    #[cfg(test)]
    pub(crate) fn kill_writer(&self) {
        if let Ok(sqlite) = self.sqlite() {
            let _ = sqlite.writer.jobs.send(writer::Msg::Panic);
        }
    }

    /// Database calls of this store so far: reads and writes (each a
    /// transaction of a few statements), for the benchmark's count of what
    /// an idle runner costs.
    pub fn calls(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let writes = self.sqlite().map_or(0, |s| s.stats.writes.load(Relaxed));
        self.reads.load(Relaxed) + writes
    }

    /// Writes and commits of this store so far.
    pub fn write_stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.sqlite().map_or((0, 0), |s| {
            (s.stats.writes.load(Relaxed), s.stats.commits.load(Relaxed))
        })
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

/// The database a `--db` value names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbName {
    /// A SQLite file: a path, or `sqlite://PATH`.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://` or `postgresql://`, in any case;
    /// here with its scheme in lower case, and no surrounding spaces).
    Postgres(String),
}

impl DbName {
    /// Reads a `--db` value. A value that is a URL of another kind
    /// (`mysql://…`, `postgres:host` without `//`), or a PostgreSQL
    /// connection string in libpq's `key=value` form, is refused rather
    /// than taken for a file name (which would start a new, empty registry
    /// named after it); the error never repeats the value, which may hold
    /// a password.
    pub fn parse(db: &Path) -> anyhow::Result<Self> {
        let Some(text) = db.to_str() else {
            return Ok(Self::Sqlite(db.to_owned()));
        };
        let trimmed = text.trim();
        let lower = trimmed.to_ascii_lowercase();
        for scheme in ["postgres://", "postgresql://"] {
            if lower.starts_with(scheme) {
                return Ok(Self::Postgres(format!(
                    "{scheme}{}",
                    &trimmed[scheme.len()..]
                )));
            }
        }
        if lower.starts_with("sqlite://") {
            return Ok(Self::Sqlite(PathBuf::from(&trimmed["sqlite://".len()..])));
        }
        // A scheme whose `://` lost a character.
        let mangled = ["sqlite:", "postgres//", "postgresql//"];
        if let Some(near) = mangled.iter().find(|m| lower.starts_with(*m)) {
            let near = near.trim_end_matches(['/', ':']);
            anyhow::bail!(
                "the database starts like a {near}:// URL but is not one: give a file path, \
                 sqlite://PATH, or postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            );
        }
        const USE: &str = "give a file path, sqlite://PATH, or \
                           postgres://USER:PASSWORD@HOST:PORT/DATABASE";
        if let Some((scheme, _)) = trimmed.split_once(':')
            && (trimmed.contains("://")
                || scheme.eq_ignore_ascii_case("postgres")
                || scheme.eq_ignore_ascii_case("postgresql"))
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            anyhow::bail!(
                "the database is a URL of a kind this server does not take ({scheme}:…): {USE}"
            );
        }
        let libpq = [
            "host", "hostaddr", "port", "dbname", "user", "password", "sslmode",
        ];
        if trimmed.split_whitespace().any(|word| {
            word.split_once('=')
                .is_some_and(|(key, _)| libpq.contains(&key.to_ascii_lowercase().as_str()))
        }) {
            anyhow::bail!(
                "the database looks like a PostgreSQL key=value connection string, which this \
                 server does not take: {USE}"
            );
        }
        Ok(Self::Sqlite(db.to_owned()))
    }
}

/// Whether `db` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(db: &Path) -> bool {
    matches!(DbName::parse(db), Ok(DbName::Postgres(_)))
}

/// `db` as it may be shown (logged, printed): a PostgreSQL URL without its
/// password, wherever it was written (`user:PASSWORD@`, `?password=`).
pub fn db_shown(db: &Path) -> String {
    let url = match DbName::parse(db) {
        Ok(DbName::Postgres(url)) => url,
        Ok(DbName::Sqlite(_)) => return db.display().to_string(),
        // Refused (not shown: it may hold a password).
        Err(_) => return "(a database value that is refused)".to_owned(),
    };
    let Some(mut url) = url::Url::parse(&url).ok() else {
        return "postgres://(a URL that does not parse)".to_owned();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("REDACTED"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "REDACTED".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// The UUID of a new row (a runner, spec, job, user or token): version 7,
/// time-ordered, so that consecutive rows' entries sit side by side in the
/// UUID indexes (and in the audit trail's index of targets) and a group
/// commit writes a few index pages rather than one page a row.
pub fn new_uuid() -> Uuid {
    Uuid::now_v7()
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

#[cfg(test)]
mod tests;

#[cfg(test)]
mod shown {
    use std::path::Path;

    #[test]
    fn passwords_are_never_shown() {
        for (db, shown) in [
            ("runners.db", "runners.db"),
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:REDACTED@h:5432/db",
            ),
            (
                "postgresql://u@h/db?password=secret&sslmode=require",
                "postgresql://u@h/db?password=REDACTED&sslmode=require",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            // Any case, and spaces around: still PostgreSQL.
            (" POSTGRES://u:secret@h/db", "postgres://u:REDACTED@h/db"),
            // Refused values are not shown at all.
            ("postgres:u:secret@h", "(a database value that is refused)"),
            (
                "host=h password=secret dbname=d",
                "(a database value that is refused)",
            ),
        ] {
            assert_eq!(super::db_shown(Path::new(db)), shown);
        }
    }

    /// A value that is neither a path nor a URL this server takes is
    /// refused, never taken for a file name, and the refusal does not
    /// repeat it.
    #[test]
    fn a_mistyped_database_is_refused_not_made_a_file() {
        use super::DbName;
        let parse = |db: &str| DbName::parse(Path::new(db));
        for (db, engine) in [
            ("runners.db", DbName::Sqlite("runners.db".into())),
            (
                "./a=b/runners.db",
                DbName::Sqlite("./a=b/runners.db".into()),
            ),
            ("sqlite:///tmp/r.db", DbName::Sqlite("/tmp/r.db".into())),
            ("postgres://h/d", DbName::Postgres("postgres://h/d".into())),
            (
                "PostgreSQL://h/d",
                DbName::Postgres("postgresql://h/d".into()),
            ),
        ] {
            assert_eq!(parse(db).unwrap(), engine, "{db}");
        }
        for db in [
            "postgres:u:S3cret@h",
            "postgres//u:S3cret@h/d",
            "sqlite:u:S3cret@h",
            "postgress://u:S3cret@h/d",
            "pg://u:S3cret@h/d",
            "mysql://u:S3cret@h/d",
            "host=h password=S3cret dbname=d",
            "dbname=d user=u password=S3cret",
        ] {
            let refused = format!("{:#}", parse(db).unwrap_err());
            assert!(!refused.contains("S3cret"), "{db}: {refused}");
            assert!(refused.contains("postgres://USER"), "{db}: {refused}");
        }
    }
}
