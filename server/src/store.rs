//! The store: one SQLite file through an r2d2 pool of rusqlite connections.
//! Every SQL statement of the server is in this file, next to the schema it
//! runs against.
//!
//! Storage rules: WAL journal, foreign keys on, a busy timeout, versioned
//! migrations applied at open. Times are RFC 3339 UTC text with microseconds
//! (readable with `sqlite3`, and they sort as text). UUIDs are lowercase
//! hyphenated text, so that a uuid fragment can be searched for.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::functions::FunctionFlags;
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior, params,
};
use rusqlite_migration::{M, Migrations};
use uuid::Uuid;

use crate::auth::{SIGNING_KEY_BYTES, random_bytes};
use crate::types::{JsonDirection, JsonRunner, JsonUpdateRunner, RunnersSort};
use crate::validate::{ListQuery, RunnerRef, slug_from_name, slug_with_suffix};

/// Version 1 of the schema.
const SCHEMA_V1: &str = r#"
CREATE TABLE users (
    id      INTEGER PRIMARY KEY,
    uuid    TEXT NOT NULL UNIQUE,
    name    TEXT NOT NULL UNIQUE,
    admin   INTEGER NOT NULL CHECK (admin IN (0, 1)),
    created TEXT NOT NULL
) STRICT;

-- One row per API token. The token itself (a JWT) is never stored: its row
-- holds the `jti`, so that it can be listed and revoked.
CREATE TABLE api_tokens (
    id      INTEGER PRIMARY KEY,
    uuid    TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users (id),
    created TEXT NOT NULL,
    expires TEXT NOT NULL,
    revoked TEXT
) STRICT;

-- The HS256 secret that signs API tokens, generated on first start.
CREATE TABLE signing_key (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    secret  BLOB NOT NULL,
    created TEXT NOT NULL
) STRICT;

CREATE TABLE runners (
    -- Insertion order: the `created` sort, total and stable.
    id             INTEGER PRIMARY KEY,
    -- Unique indexes serve the lookups by uuid, by slug and by token.
    uuid           TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    slug           TEXT NOT NULL UNIQUE,
    -- SHA-256 of the runner token; the token itself is never stored.
    token_hash     BLOB NOT NULL UNIQUE,
    archived       TEXT,
    last_heartbeat TEXT,
    created        TEXT NOT NULL,
    modified       TEXT NOT NULL
) STRICT;

-- Serves the default `name` sort (ties broken by the unique slug) and the
-- exact `name` filter.
CREATE INDEX runners_name_slug ON runners (name, slug);
"#;

/// The schema, one entry per version. Never edit a released entry: add one.
/// Version 2: constant-time counts and an index for the default list.
const SCHEMA_V2: &str = r#"
-- How many runners there are, and how many are active. Triggers keep it in
-- the same transaction as every insert, delete, archive and unarchive, so
-- the X-Total-Count of an unfiltered list is one row read instead of a
-- count(*) that scans the table (102 ms at 100,000 runners).
CREATE TABLE runner_counts (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    total  INTEGER NOT NULL,
    active INTEGER NOT NULL
) STRICT;
INSERT INTO runner_counts (id, total, active)
    SELECT 1, count(*), count(*) FILTER (WHERE archived IS NULL) FROM runners;
CREATE TRIGGER runner_counts_insert AFTER INSERT ON runners BEGIN
    UPDATE runner_counts
    SET total = total + 1, active = active + (NEW.archived IS NULL) WHERE id = 1;
END;
CREATE TRIGGER runner_counts_delete AFTER DELETE ON runners BEGIN
    UPDATE runner_counts
    SET total = total - 1, active = active - (OLD.archived IS NULL) WHERE id = 1;
END;
CREATE TRIGGER runner_counts_archive AFTER UPDATE OF archived ON runners
WHEN (OLD.archived IS NULL) != (NEW.archived IS NULL) BEGIN
    UPDATE runner_counts
    SET active = active + (NEW.archived IS NULL) - (OLD.archived IS NULL) WHERE id = 1;
END;

-- The runner's name case-folded (Rust's Unicode to_lowercase, through the
-- `fold` SQL function), kept beside it so that `search` compares stored text
-- instead of folding every name of the table again on every query.
ALTER TABLE runners ADD COLUMN name_folded TEXT NOT NULL DEFAULT '';
UPDATE runners SET name_folded = fold(name);

-- The default list (active runners by name, ties by slug) walks this index
-- from its first entry: page 1 reads 8 entries and never meets an archived
-- runner, whatever the size of the registry. `runners_name_slug` still
-- serves `archived=true` and the exact `name` filter.
CREATE INDEX runners_active_name_slug ON runners (name, slug) WHERE archived IS NULL;
"#;

/// The schema's migrations, in order: version N is the first N applied.
const MIGRATIONS: &[&str] = &[SCHEMA_V1, SCHEMA_V2];

fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

/// How long a statement waits for another writer before giving up (503).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections for work on the blocking pool (writes, long reads).
pub const POOL_SIZE: u32 = 8;
/// Connections for short reads on the async workers: one per worker of a
/// 2-core machine; when both are busy, a read takes the blocking path.
const READERS: u32 = 2;
const RUNNER_COLUMNS: &str = "uuid, name, slug, archived, last_heartbeat, created, modified";
/// Tries to find a free generated slug before giving up with a 409.
const GENERATED_SLUG_ATTEMPTS: usize = 8;

/// The store layer's error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The database stayed locked by another writer past the busy timeout.
    #[error("the database is busy")]
    Busy,
    #[error("{0}")]
    Internal(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::Busy,
            _ => Self::Internal(e.to_string()),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    /// The pool had no free connection within its timeout.
    fn from(_: r2d2::Error) -> Self {
        Self::Busy
    }
}

/// The identity behind an API token's `jti`.
#[derive(Clone, Debug)]
pub struct TokenPrincipal {
    pub user: Uuid,
    pub user_name: String,
    pub admin: bool,
    pub revoked: bool,
}

/// The runner a runner token belongs to.
#[derive(Clone, Debug)]
pub struct TokenRunner {
    pub id: i64,
    pub uuid: Uuid,
    pub slug: String,
    pub archived: bool,
}

/// An API token's row, for `token list`.
#[derive(Clone, Debug)]
pub struct ApiTokenRow {
    pub uuid: Uuid,
    pub user_name: String,
    pub admin: bool,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub revoked: Option<DateTime<Utc>>,
}

/// The database. Cloning is cheap: clones share one pool.
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

/// A runner from the columns of [`RUNNER_COLUMNS`], starting at `at`.
fn runner_at(row: &Row<'_>, at: usize) -> rusqlite::Result<JsonRunner> {
    Ok(JsonRunner {
        uuid: uuid_at(row, at)?,
        name: row.get(at + 1)?,
        slug: row.get(at + 2)?,
        archived: opt_time_at(row, at + 3)?,
        last_heartbeat: opt_time_at(row, at + 4)?,
        created: time_at(row, at + 5)?,
        modified: time_at(row, at + 6)?,
    })
}

fn is_unique_violation(e: &rusqlite::Error, column: &str) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, Some(msg))
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE && msg.ends_with(column))
}

fn slug_taken(slug: &str) -> StoreError {
    StoreError::Conflict(format!(
        "slug: `{slug}` is already taken by another runner; choose another slug"
    ))
}

fn runner_not_found(r: &RunnerRef) -> StoreError {
    StoreError::NotFound(match r {
        RunnerRef::Uuid(uuid) => format!("no runner has the UUID `{uuid}`"),
        RunnerRef::Slug(slug) => format!("no runner has the slug `{slug}`"),
    })
}

/// The `WHERE` clause and its parameter for one runner reference.
fn runner_ref_sql(r: &RunnerRef) -> (&'static str, String) {
    match r {
        RunnerRef::Uuid(uuid) => ("uuid = ?", uuid.to_string()),
        RunnerRef::Slug(slug) => ("slug = ?", slug.clone()),
    }
}

/// A runner's row id and fields, by UUID or slug.
fn runner_row(conn: &Connection, r: &RunnerRef) -> Result<(i64, JsonRunner), StoreError> {
    let (filter, arg) = runner_ref_sql(r);
    conn.prepare_cached(&format!(
        "SELECT id, {RUNNER_COLUMNS} FROM runners WHERE {filter}"
    ))?
    .query_row([arg], |row| Ok((row.get(0)?, runner_at(row, 1)?)))
    .optional()?
    .ok_or_else(|| runner_not_found(r))
}

/// One runner.
pub fn get_runner(conn: &Connection, r: &RunnerRef) -> Result<JsonRunner, StoreError> {
    runner_row(conn, r).map(|(_, runner)| runner)
}

/// The user behind an API token's `jti`, if the token is known.
pub fn token_principal(conn: &Connection, jti: Uuid) -> Result<Option<TokenPrincipal>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.uuid, u.name, u.admin, t.revoked IS NOT NULL
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.uuid = ?",
    )?;
    Ok(stmt
        .query_row([jti.to_string()], |r| {
            Ok(TokenPrincipal {
                user: uuid_at(r, 0)?,
                user_name: r.get(1)?,
                admin: r.get(2)?,
                revoked: r.get(3)?,
            })
        })
        .optional()?)
}

/// Deepest offset a list may start at and still count as a short read.
const SHORT_LIST_OFFSET: u64 = 1024;

/// Whether listing `q` is a short read (see [`Store::read`]) whatever the
/// size of the registry: no `search` (a scan) and no `name` filter (it may
/// match many), so the count is one row of `runner_counts`, and a page that
/// starts near the beginning of its index.
pub fn list_is_short(q: &ListQuery) -> bool {
    q.search.is_none() && q.name.is_none() && q.offset() <= SHORT_LIST_OFFSET
}

/// One page of runners matching `q`, and how many match in all.
pub fn list_runners(
    conn: &Connection,
    q: &ListQuery,
) -> Result<(Vec<JsonRunner>, u64), StoreError> {
    let mut filters = Vec::new();
    let mut args: Vec<&dyn rusqlite::ToSql> = Vec::new();
    if !q.archived {
        filters.push("archived IS NULL");
    }
    if let Some(name) = &q.name {
        filters.push("name = ?");
        args.push(name);
    }
    if let Some(search) = &q.search {
        // instr() matches literally, so `%` and `_` need no escaping.
        filters.push("(instr(name_folded, ?) > 0 OR instr(slug, ?) > 0 OR instr(uuid, ?) > 0)");
        args.extend([search as &dyn rusqlite::ToSql; 3]);
    }
    let mut where_sql = String::new();
    for (i, filter) in filters.iter().enumerate() {
        where_sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        where_sql.push_str(filter);
    }
    let order = match (q.sort, q.direction) {
        (RunnersSort::Name, JsonDirection::Asc) => "name ASC, slug ASC",
        (RunnersSort::Name, JsonDirection::Desc) => "name DESC, slug DESC",
        (RunnersSort::Created, JsonDirection::Asc) => "id ASC",
        (RunnersSort::Created, JsonDirection::Desc) => "id DESC",
    };

    let count_sql = match (&q.name, &q.search, q.archived) {
        (None, None, false) => "SELECT active FROM runner_counts".to_owned(),
        (None, None, true) => "SELECT total FROM runner_counts".to_owned(),
        _ => format!("SELECT count(*) FROM runners{where_sql}"),
    };
    // One read transaction for both statements: the count and the page come
    // from the same snapshot, and the WAL read lock is taken once.
    let tx = conn.unchecked_transaction()?;
    let total: i64 = tx
        .prepare_cached(&count_sql)?
        .query_row(args.as_slice(), |r| r.get(0))?;
    let limit = i64::from(q.per_page);
    let offset = i64::try_from(q.offset()).unwrap_or(i64::MAX);
    args.extend([&limit as &dyn rusqlite::ToSql, &offset]);
    let runners = tx
        .prepare_cached(&format!(
            "SELECT {RUNNER_COLUMNS} FROM runners{where_sql} ORDER BY {order} LIMIT ? OFFSET ?"
        ))?
        .query_map(args.as_slice(), |r| runner_at(r, 0))?
        .collect::<Result<_, _>>()?;
    tx.commit()?;
    Ok((runners, u64::try_from(total).unwrap_or(0)))
}

/// Maps a failed write of `slug` to a 409 if the slug is taken.
fn slug_conflict(slug: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| {
        if is_unique_violation(&e, "runners.slug") {
            slug_taken(slug)
        } else {
            e.into()
        }
    }
}

/// Settings of every pooled connection.
fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Query planner stability: a cached statement keeps its plan whatever
    // values are bound. Without it SQLite re-prepared the list statement on
    // every run (the bound LIMIT and OFFSET), a quarter of a list's cost.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    // FULL: a commit is fsynced before it is acknowledged, so an acknowledged
    // write survives a crash of the process and a power loss.
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA cache_size = -512;",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    // Unicode-aware lowercase for the case-insensitive `search` filter
    // (SQLite's own lower() folds ASCII only).
    conn.create_scalar_function(
        "fold",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(ctx.get::<String>(0)?.to_lowercase()),
    )
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`, and
    /// makes sure it holds a signing key.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let shown = path.display();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            bail!(
                "cannot open database {shown}: directory {} does not exist",
                dir.display()
            );
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(|e| {
            if e.sqlite_error_code() == Some(ErrorCode::CannotOpen) {
                anyhow::anyhow!(
                    "cannot open database {shown}: the file cannot be created or opened there \
                     (is its directory writable?)"
                )
            } else {
                anyhow::Error::new(e).context(format!("cannot open database {shown}"))
            }
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let unusable = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => {
                anyhow::anyhow!("cannot open database {shown}: the file is not a SQLite database")
            }
            Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen) => {
                anyhow::anyhow!("cannot open database {shown}: it is not writable")
            }
            _ => anyhow::Error::new(e).context(format!("cannot open database {shown}")),
        };
        let newer = || {
            anyhow::anyhow!(
                "cannot open database {shown}: its schema is newer than this server understands; \
                 run a newer runners-server"
            )
        };
        // Checked before anything writes to the file (switching to WAL
        // does), so a file this server cannot use is left as it was.
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(unusable)?;
        if usize::try_from(version).map_or(true, |v| v > MIGRATIONS.len()) {
            return Err(newer());
        }
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(unusable)?;
        // Migrations may call `fold`.
        configure(&mut conn)?;
        migrations().to_latest(&mut conn).map_err(|e| match e {
            rusqlite_migration::Error::MigrationDefinition(
                rusqlite_migration::MigrationDefinitionError::DatabaseTooFarAhead,
            ) => newer(),
            e => anyhow::Error::new(e).context(format!("cannot migrate database {shown}")),
        })?;
        conn.execute(
            "INSERT OR IGNORE INTO signing_key (id, secret, created) VALUES (1, ?, ?)",
            params![random_bytes::<SIGNING_KEY_BYTES>().to_vec(), to_text(now())],
        )?;
        drop(conn);

        let manager = SqliteConnectionManager::file(path)
            .with_flags(flags)
            .with_init(configure);
        // No health check on checkout: the connections are to a local file,
        // and r2d2's check runs the SQL parser on every request.
        let pool = Pool::builder()
            .test_on_check_out(false)
            .max_size(POOL_SIZE)
            .connection_timeout(BUSY_TIMEOUT)
            .build(manager)
            .with_context(|| format!("cannot open database {shown}"))?;
        let readers = Pool::builder()
            .test_on_check_out(false)
            .max_size(READERS)
            .min_idle(Some(READERS))
            .build(
                SqliteConnectionManager::file(path)
                    .with_flags(flags)
                    .with_init(|conn| {
                        configure(conn)?;
                        // The short reads walk the indexes' upper levels
                        // again and again: a larger cache keeps them.
                        conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -4096")
                    }),
            )
            .with_context(|| format!("cannot open database {shown}"))?;
        Ok(Self {
            pool,
            readers,
            write_gate: Arc::default(),
        })
    }

    fn conn(&self) -> Result<PooledConnection<SqliteConnectionManager>, StoreError> {
        Ok(self.pool.get()?)
    }

    /// A connection for a write transaction, with this process's write turn.
    fn writer(
        &self,
    ) -> Result<
        (
            MutexGuard<'_, ()>,
            PooledConnection<SqliteConnectionManager>,
        ),
        StoreError,
    > {
        // A writer that panicked left no transaction open (rusqlite rolls
        // back on drop), so a poisoned gate is still a valid turn.
        let turn = self.write_gate.lock().unwrap_or_else(|e| e.into_inner());
        Ok((turn, self.conn()?))
    }

    /// Runs a short read, inline on the calling async worker when a reader
    /// connection is free (saving two thread hand-offs, most of the cost of
    /// such a request), else on the blocking pool. Only for statements of
    /// small, bounded cost: a lookup by a unique index, a page read along an
    /// index from near its start. In WAL mode a reader never waits for a
    /// writer, so these cannot stall the worker behind a lock.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Some(conn) = self.readers.try_get() {
            return f(&conn);
        }
        self.run(move |s| f(&*s.conn()?)).await
    }

    /// Runs blocking store work off the async workers.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Internal(format!("store task failed: {e}")))?
    }

    // ---- signing key, users and API tokens ----

    /// The HS256 secret that signs API tokens.
    pub fn signing_secret(&self) -> Result<Vec<u8>, StoreError> {
        Ok(self
            .conn()?
            .query_row("SELECT secret FROM signing_key WHERE id = 1", [], |r| {
                r.get(0)
            })?)
    }

    /// Whether any admin user exists.
    pub fn has_admin(&self) -> Result<bool, StoreError> {
        Ok(self.conn()?.query_row(
            "SELECT EXISTS (SELECT 1 FROM users WHERE admin = 1)",
            [],
            |r| r.get(0),
        )?)
    }

    /// Creates user `name` if needed and returns its UUID. `admin` promotes
    /// an existing user; an admin is never demoted here.
    pub fn ensure_user(&self, name: &str, admin: bool) -> Result<Uuid, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "INSERT INTO users (uuid, name, admin, created) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET admin = max(admin, excluded.admin)
             RETURNING uuid",
        )?;
        Ok(stmt.query_row(
            params![Uuid::new_v4().to_string(), name, admin, to_text(now())],
            |r| uuid_at(r, 0),
        )?)
    }

    /// Records a new API token's `jti` for `user`.
    pub fn insert_api_token(
        &self,
        jti: Uuid,
        user: Uuid,
        issued: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let conn = self.conn()?;
        let inserted = conn.execute(
            "INSERT INTO api_tokens (uuid, user_id, created, expires)
             SELECT ?, id, ?, ? FROM users WHERE uuid = ?",
            params![
                jti.to_string(),
                to_text(issued),
                to_text(expires),
                user.to_string()
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::NotFound(format!(
                "no user has the UUID `{user}`"
            )));
        }
        Ok(())
    }

    /// Every API token, oldest first.
    pub fn list_api_tokens(&self) -> Result<Vec<ApiTokenRow>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT t.uuid, u.name, u.admin, t.created, t.expires, t.revoked
             FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ApiTokenRow {
                uuid: uuid_at(r, 0)?,
                user_name: r.get(1)?,
                admin: r.get(2)?,
                created: time_at(r, 3)?,
                expires: time_at(r, 4)?,
                revoked: opt_time_at(r, 5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes an API token. Revoking a revoked token is a no-op.
    pub fn revoke_api_token(&self, jti: Uuid) -> Result<(), StoreError> {
        let conn = self.conn()?;
        let found = conn.execute(
            "UPDATE api_tokens SET revoked = coalesce(revoked, ?) WHERE uuid = ?",
            params![to_text(now()), jti.to_string()],
        )?;
        if found == 0 {
            return Err(StoreError::NotFound(format!(
                "no API token has the UUID `{jti}`"
            )));
        }
        Ok(())
    }

    // ---- runners ----

    /// One page of runners matching `q`, and how many match in all.
    pub fn list_runners(&self, q: &ListQuery) -> Result<(Vec<JsonRunner>, u64), StoreError> {
        list_runners(&*self.conn()?, q)
    }

    /// Inserts runners in one transaction, as given: for seeding a
    /// database (the benchmark) and bulk imports. Each entry is a name, a
    /// slug (both already valid) and the SHA-256 of the runner's token.
    pub fn import_runners<'a>(
        &self,
        runners: impl IntoIterator<Item = (&'a str, &'a str, [u8; 32])>,
    ) -> Result<usize, StoreError> {
        let (_turn, mut conn) = self.writer()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut count = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO runners (uuid, name, name_folded, slug, token_hash, created, modified)
                 VALUES (?1, ?2, fold(?2), ?3, ?4, ?5, ?5)",
            )?;
            for (name, slug, token_hash) in runners {
                insert
                    .execute(params![
                        Uuid::new_v4().to_string(),
                        name,
                        slug,
                        &token_hash[..],
                        to_text(now())
                    ])
                    .map_err(slug_conflict(slug))?;
                count += 1;
            }
        }
        tx.commit()?;
        Ok(count)
    }

    /// Creates a runner. An explicit `slug` that is taken is a conflict; a
    /// slug generated from the name gets a random suffix until it is free.
    pub fn create_runner(
        &self,
        name: &str,
        slug: Option<&str>,
        token_hash: [u8; 32],
    ) -> Result<JsonRunner, StoreError> {
        let (_turn, conn) = self.writer()?;
        let mut insert = conn.prepare_cached(&format!(
            "INSERT INTO runners (uuid, name, name_folded, slug, token_hash, created, modified)
             VALUES (?1, ?2, fold(?2), ?3, ?4, ?5, ?5) RETURNING {RUNNER_COLUMNS}"
        ))?;
        let created = to_text(now());
        let mut attempt = |slug: &str| {
            insert.query_row(
                params![
                    Uuid::new_v4().to_string(),
                    name,
                    slug,
                    &token_hash[..],
                    created
                ],
                |r| runner_at(r, 0),
            )
        };
        if let Some(slug) = slug {
            return attempt(slug).map_err(slug_conflict(slug));
        }
        let base = slug_from_name(name);
        for i in 0..GENERATED_SLUG_ATTEMPTS {
            let candidate = match (&base, i) {
                (Some(base), 0) => base.clone(),
                (Some(base), _) => slug_with_suffix(base, &hex::encode(random_bytes::<4>())),
                (None, _) => slug_with_suffix("runner", &hex::encode(random_bytes::<4>())),
            };
            if Uuid::try_parse(&candidate).is_ok() {
                continue;
            }
            match attempt(&candidate) {
                Err(e) if is_unique_violation(&e, "runners.slug") => continue,
                result => return Ok(result?),
            }
        }
        Err(StoreError::Conflict(
            "slug: could not generate a free slug from the name; give a slug explicitly".into(),
        ))
    }

    /// Applies `update` (already validated) to a runner in one transaction.
    pub fn update_runner(
        &self,
        r: &RunnerRef,
        update: &JsonUpdateRunner,
    ) -> Result<JsonRunner, StoreError> {
        let (_turn, mut conn) = self.writer()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (id, current) = runner_row(&tx, r)?;
        let mut next = current.clone();
        if let Some(name) = &update.name {
            next.name = name.clone();
        }
        if let Some(slug) = &update.slug {
            next.slug = slug.clone();
        }
        let stamp = now();
        match update.archived {
            Some(true) => next.archived = current.archived.or(Some(stamp)),
            Some(false) => next.archived = None,
            None => {}
        }
        if next == current {
            return Ok(current);
        }
        next.modified = stamp;
        tx.prepare_cached(
            "UPDATE runners SET name = ?1, name_folded = fold(?1), slug = ?2, archived = ?3,
             modified = ?4 WHERE id = ?5",
        )?
        .execute(params![
            next.name,
            next.slug,
            next.archived.map(to_text),
            to_text(next.modified),
            id
        ])
        .map_err(slug_conflict(&next.slug))?;
        tx.commit()?;
        Ok(next)
    }

    /// Replaces a runner's token hash in one transaction: the old token
    /// stops working at once. Archived runners cannot be rotated.
    pub fn rotate_runner_token(
        &self,
        r: &RunnerRef,
        token_hash: [u8; 32],
    ) -> Result<Uuid, StoreError> {
        let (_turn, mut conn) = self.writer()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (id, runner) = runner_row(&tx, r)?;
        if runner.archived.is_some() {
            return Err(StoreError::Conflict(format!(
                "runner `{}` is archived: unarchive it before rotating its token",
                runner.slug
            )));
        }
        tx.prepare_cached("UPDATE runners SET token_hash = ?, modified = ? WHERE id = ?")?
            .execute(params![&token_hash[..], to_text(now()), id])?;
        tx.commit()?;
        Ok(runner.uuid)
    }

    /// The runner whose token has this hash.
    pub fn runner_by_token_hash(
        &self,
        token_hash: [u8; 32],
    ) -> Result<Option<TokenRunner>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, uuid, slug, archived IS NOT NULL FROM runners WHERE token_hash = ?",
        )?;
        Ok(stmt
            .query_row([&token_hash[..]], |r| {
                Ok(TokenRunner {
                    id: r.get(0)?,
                    uuid: uuid_at(r, 1)?,
                    slug: r.get(2)?,
                    archived: r.get(3)?,
                })
            })
            .optional()?)
    }

    /// Records a heartbeat of runner `id`, provided its token is still
    /// `token_hash` and it is active. `None` if either no longer holds.
    pub fn heartbeat(
        &self,
        id: i64,
        token_hash: [u8; 32],
    ) -> Result<Option<JsonRunner>, StoreError> {
        let (_turn, conn) = self.writer()?;
        let mut stmt = conn.prepare_cached(&format!(
            "UPDATE runners SET last_heartbeat = ?
             WHERE id = ? AND token_hash = ? AND archived IS NULL RETURNING {RUNNER_COLUMNS}"
        ))?;
        Ok(stmt
            .query_row(params![to_text(now()), id, &token_hash[..]], |r| {
                runner_at(r, 0)
            })
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::ListQuery;

    fn query(archived: bool, search: Option<&str>) -> ListQuery {
        ListQuery {
            sort: RunnersSort::Name,
            direction: JsonDirection::Asc,
            per_page: 255,
            page: 1,
            name: None,
            search: search.map(str::to_owned),
            archived,
        }
    }

    /// What the list says, and what a full count says, must agree.
    fn assert_counts(store: &Store, active: u64, total: u64) {
        assert_eq!(store.list_runners(&query(false, None)).unwrap().1, active);
        assert_eq!(store.list_runners(&query(true, None)).unwrap().1, total);
        let conn = store.conn().unwrap();
        let counted: (i64, i64) = conn
            .query_row(
                "SELECT count(*) FILTER (WHERE archived IS NULL), count(*) FROM runners",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(counted, (active as i64, total as i64));
    }

    #[test]
    fn a_version_1_database_migrates_and_counts_stay_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        // A database as version 1 left it, with runners in it.
        let mut conn = Connection::open(&path).unwrap();
        Migrations::new(vec![M::up(SCHEMA_V1)])
            .to_latest(&mut conn)
            .unwrap();
        for (i, (name, archived)) in [
            ("Ärger Box", None),
            ("old", Some("2026-01-01T00:00:00.000000Z")),
        ]
        .into_iter()
        .enumerate()
        {
            conn.execute(
                "INSERT INTO runners (uuid, name, slug, token_hash, archived, created, modified)
                 VALUES (?, ?, ?, ?, ?, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')",
                params![Uuid::new_v4().to_string(), name, format!("r{i}"), vec![i as u8; 32], archived],
            )
            .unwrap();
        }
        drop(conn);

        let store = Store::open(&path).unwrap();
        assert_counts(&store, 1, 2);
        // The folded names were filled in: a search is case-insensitive
        // beyond ASCII.
        let found = store.list_runners(&query(false, Some("ärger"))).unwrap();
        assert_eq!((found.0.len(), found.1), (1, 1));

        let created = store.create_runner("New One", None, [9; 32]).unwrap();
        assert_counts(&store, 2, 3);
        let slug = RunnerRef::Slug(created.slug.clone());
        let archive = |archived| JsonUpdateRunner {
            name: None,
            slug: None,
            archived: Some(archived),
        };
        store.update_runner(&slug, &archive(true)).unwrap();
        assert_counts(&store, 1, 3);
        // Archiving again changes nothing, and is not counted twice.
        store.update_runner(&slug, &archive(true)).unwrap();
        assert_counts(&store, 1, 3);
        store.update_runner(&slug, &archive(false)).unwrap();
        assert_counts(&store, 2, 3);
        // A rename re-folds the searchable name.
        let rename = JsonUpdateRunner {
            name: Some("ÉCLAIR".into()),
            slug: None,
            archived: None,
        };
        store.update_runner(&slug, &rename).unwrap();
        assert_eq!(
            store.list_runners(&query(false, Some("éclair"))).unwrap().1,
            1
        );
        assert_eq!(
            store
                .list_runners(&query(false, Some("new one")))
                .unwrap()
                .1,
            0
        );
    }
}
