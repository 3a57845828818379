//! The schema's versions applied at open (their SQL is `migrations.rs`),
//! and the settings of every connection.
//!
//! Storage rules: WAL journal, foreign keys on, a busy timeout, versioned
//! migrations applied at open (`PRAGMA user_version`). Times are RFC 3339
//! UTC text with microseconds (readable with `sqlite3`, and they sort as
//! text). UUIDs are lowercase hyphenated text, so that a uuid fragment can
//! be searched for.

use crate::store::error::BUSY_TIMEOUT;
use std::path::Path;

use anyhow::Context as _;
use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use rusqlite_migration::{M, Migrations};

pub(super) use super::migrations::MIGRATIONS;

fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

/// Connections for work on the blocking pool (writes, long reads).
pub const POOL_SIZE: u32 = 8;
/// Connections for short reads on the async workers: one per worker of a
/// 2-core machine; when both are busy, a read takes the blocking path.
const READERS: u32 = 2;

/// Settings of every connection.
fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Query planner stability: a cached statement keeps its plan whatever
    // values are bound. Without it SQLite re-prepares the list statement on
    // every run (the bound LIMIT and OFFSET).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    // FULL: a commit is fsynced before it is acknowledged, so an acknowledged
    // write survives a crash of the process and a power loss.
    // Reads through a memory map of up to 256 MiB: a page already in the
    // OS page cache costs no read() call and no copy into SQLite's own cache,
    // and counts as file-backed memory, not as the process's own.
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA cache_size = -512;
         PRAGMA mmap_size = 268435456;",
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

const FLAGS: OpenFlags = OpenFlags::SQLITE_OPEN_READ_WRITE
    .union(OpenFlags::SQLITE_OPEN_CREATE)
    .union(OpenFlags::SQLITE_OPEN_NO_MUTEX);

/// The two pools of a store: `pool` for the blocking pool's work, `readers`
/// (read-only, with a larger page cache) for short reads on async workers.
pub(super) struct Pools {
    pub pool: Pool<SqliteConnectionManager>,
    pub readers: Pool<SqliteConnectionManager>,
    /// Files whose group or other permissions were taken off at open.
    pub tightened: Vec<std::path::PathBuf>,
}

/// Opens (creating if needed) and migrates the database at `path`; `init`
/// runs once on the migrated database before the pools open.
pub(super) fn open(
    path: &Path,
    init: impl FnOnce(&Connection) -> rusqlite::Result<()>,
) -> anyhow::Result<Pools> {
    let shown = path.display();
    // Before anything is written: its directory exists, and its files (if
    // any) are this user's.
    super::files::check(path)?;
    // Created owner-only before SQLite opens it: the file holds the signing
    // secret. SQLite gives the -wal and -shm files the main file's mode.
    create_owner_only(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot open database {shown}: the file cannot be created or opened there \
             (is its directory writable?): {e}"
        )
    })?;
    let mut conn = Connection::open_with_flags(path, FLAGS).map_err(|e| {
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
    // Checked before anything writes to the file (switching to WAL does), so
    // a file this server cannot use is left as it was.
    let version: i64 =
        while_busy(|| conn.query_row("PRAGMA user_version", [], |r| r.get(0))).map_err(unusable)?;
    if usize::try_from(version).map_or(true, |v| v > MIGRATIONS.len()) {
        return Err(newer());
    }
    while_busy(|| conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))).map_err(unusable)?;
    // Migrations may call `fold`.
    configure(&mut conn)?;
    // Another process (a second server, `token create`) may be migrating
    // the same new file at this very moment: each migration runs in one
    // transaction, so if ours fails and the file is now at the latest
    // version, the other one did the work.
    let migrated = migrations().to_latest(&mut conn);
    let current =
        || -> rusqlite::Result<i64> { conn.query_row("PRAGMA user_version", [], |r| r.get(0)) };
    if let Err(e) = migrated
        && current().ok() != i64::try_from(MIGRATIONS.len()).ok()
    {
        return Err(match e {
            rusqlite_migration::Error::MigrationDefinition(
                rusqlite_migration::MigrationDefinitionError::DatabaseTooFarAhead,
            ) => newer(),
            // Its error's text holds the whole migration's SQL: only the
            // error itself is worth a line.
            rusqlite_migration::Error::RusqliteError { err, .. } => {
                anyhow::anyhow!("cannot migrate database {shown}: {err}")
            }
            e => anyhow::Error::new(e).context(format!("cannot migrate database {shown}")),
        });
    }
    init(&conn)?;
    let tightened =
        tighten(path).with_context(|| format!("cannot make database {shown} owner-only"))?;
    drop(conn);

    // No health check on checkout: the connections are to a local file, and
    // r2d2's check runs the SQL parser on every request.
    let pool = Pool::builder()
        .test_on_check_out(false)
        .max_size(POOL_SIZE)
        .connection_timeout(BUSY_TIMEOUT)
        .build(
            SqliteConnectionManager::file(path)
                .with_flags(FLAGS)
                .with_init(configure),
        )
        .with_context(|| format!("cannot open database {shown}"))?;
    let readers = Pool::builder()
        .test_on_check_out(false)
        .max_size(READERS)
        .min_idle(Some(READERS))
        .build(
            SqliteConnectionManager::file(path)
                .with_flags(FLAGS)
                .with_init(|conn| {
                    configure(conn)?;
                    // The short reads walk the indexes' upper levels again
                    // and again: a larger cache keeps them.
                    conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -4096")
                }),
        )
        .with_context(|| format!("cannot open database {shown}"))?;
    Ok(Pools {
        pool,
        readers,
        tightened,
    })
}

/// Creates `path` empty with mode 0600 (whatever the umask) if it does not
/// exist; SQLite takes an empty file for an empty database.
fn create_owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            result => result.map(drop),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Takes group and other permissions off the database and its -wal and
/// -shm files: the files it changed.
fn tighten(path: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut tightened = Vec::new();
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = std::path::PathBuf::from(file);
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700))?;
            tightened.push(file);
        }
    }
    Ok(tightened)
}

#[cfg(test)]
/// A database as schema version `version` left it, for migration tests.
pub(super) fn at_version(path: &Path, version: usize) -> Connection {
    let mut conn = Connection::open(path).unwrap();
    configure(&mut conn).unwrap();
    Migrations::new(MIGRATIONS[..version].iter().map(|sql| M::up(sql)).collect())
        .to_latest(&mut conn)
        .unwrap();
    conn
}

/// `op`, again while SQLite answers it busy, for at most [`BUSY_TIMEOUT`]:
/// when processes open one new file at once (a server and `token
/// create`), switching it to WAL needs a lock that SQLite refuses at once
/// rather than wait for with the busy handler.
fn while_busy<T>(mut op: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let started = std::time::Instant::now();
    loop {
        match op() {
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            done => return done,
        }
    }
}
