//! `runners-server migrate --from runners.db --to postgres://…`: copies a
//! SQLite registry into an empty PostgreSQL database (`../ENGINES.md`).
//!
//! 1. The SQLite file must exist (never created here); [`Store::open`]
//!    migrates it to the latest version (a newer one is refused).
//! 2. The target is connected to, migrated, and refused unless every data
//!    table is empty (`signing_key`, `organization` and `registry_keys`
//!    may hold the row a started server created: it is replaced).
//! 3. In one PostgreSQL transaction, every table is copied in foreign-key
//!    order with its ids, by binary `COPY … FROM STDIN`, from one SQLite
//!    read transaction (on a blocking thread, handing rows over in batches
//!    through a bounded channel: memory stays bounded whatever the size).
//!    Times become `timestamptz`, UUIDs `uuid`, JSON text `jsonb`; runner
//!    key hashes, the signing secret and the registry keys are copied byte
//!    for byte, so every runner key, API token and registry token keeps
//!    working. `runners.channel` (an open
//!    channel of the old server) is left NULL.
//! 4. Each identity sequence is set past its table's largest id, the
//!    runner counts are recomputed, and the transaction commits.

use std::path::{Path, PathBuf};

use rusqlite::types::Value;
use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::pg::{self, describe, schema};
use super::{BUSY_TIMEOUT, DbName, Store};
use tables::{Cell, Kind, TABLES, Table, cell, shown};

mod tables;

/// The SQLite schema versions whose tables [`TABLES`] lists: version 8
/// adds `runners.channel_replica` and `replicas`, which a SQLite file
/// leaves empty and which are not copied; version 9 changes indexes and
/// adds the trigram indexes' queues, which are not copied either
/// (PostgreSQL's search indexes are its own). A later SQLite version must
/// update [`TABLES`] (and this) before its files can be copied. Version 10
/// adds `job_releases` (copied when the file has it); version 11 the
/// submitter side's tables and two columns of `jobs`; version 12
/// `registry_keys`; version 13 an index only; version 14 `job_counts`,
/// which is not copied (the target counts its own).
const SQLITE_VERSIONS: std::ops::RangeInclusive<i64> = 7..=14;

/// Rows handed from the SQLite reader to the copy at a time.
const BATCH: usize = 1024;

/// What was copied: each table and its row count, in the order copied.
#[derive(Debug)]
pub struct Copied {
    pub tables: Vec<(&'static str, u64)>,
}

/// Why nothing (or, for a failed commit, nothing visible) was copied.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{0}")]
    BadUrl(String),
    #[error("--to must be a postgres:// or postgresql:// URL")]
    NotPostgres,
    #[error("{0:#}")]
    Tls(anyhow::Error),
    #[error("--from must be the SQLite file to copy (a PostgreSQL URL goes in --to)")]
    FromPostgres,
    #[error("--from: {0}")]
    BadFrom(String),
    #[error("cannot migrate from {}: there is no such file (nothing was created)", .0.display())]
    SqliteMissing(PathBuf),
    /// The file cannot be opened or migrated (newer schema, not a database…).
    #[error("{0:#}")]
    SqliteOpen(anyhow::Error),
    #[error(
        "cannot migrate from {}: its schema is at version {found}, and this migrate copies \
         versions up to {expected} only",
        path.display()
    )]
    SqliteVersion {
        path: PathBuf,
        found: i64,
        expected: i64,
    },
    #[error("cannot read table {table} of the SQLite database: {source}")]
    SqliteRead {
        table: &'static str,
        source: rusqlite::Error,
    },
    #[error("cannot copy row {id} of table {table}: its {column} `{value}` is not {expected}")]
    BadValue {
        table: &'static str,
        id: String,
        column: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("cannot connect to PostgreSQL: {}", describe(.0))]
    Connect(tokio_postgres::Error),
    /// The target's own migrations failed, or its schema is newer.
    #[error("{0:#}")]
    PgSchema(anyhow::Error),
    #[error(
        "the target database is not empty: table {table} has {rows} row(s); migrate copies \
         into an empty database only (nothing was copied)"
    )]
    NotEmpty { table: &'static str, rows: i64 },
    #[error("PostgreSQL failed while {step}: {} (nothing was copied)", describe(.source))]
    Pg {
        step: String,
        source: tokio_postgres::Error,
    },
    #[error("the SQLite reader failed: {0}")]
    Task(String),
}

/// A PostgreSQL error while doing `step`.
fn pg(step: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> MigrateError {
    let step = step.into();
    move |source| MigrateError::Pg { step, source }
}

/// What the reader hands over: rows of the current table, or its end.
enum Msg {
    Rows(Vec<Vec<Cell>>),
    End,
}

/// Copies the SQLite registry at `from` into the empty PostgreSQL
/// database at `to` (see the module's comment).
pub async fn migrate(from: &Path, to: &str) -> Result<Copied, MigrateError> {
    let Ok(DbName::Postgres(to)) = DbName::parse(Path::new(to)) else {
        return Err(MigrateError::NotPostgres);
    };
    // The URL's text is never in a message: it may hold a password.
    let mut config =
        pg::config_from_url(&to).map_err(|e| MigrateError::BadUrl(format!("{e:#}")))?;
    let from = match DbName::parse(from) {
        Ok(DbName::Sqlite(path)) => path,
        Ok(DbName::Postgres(_)) => return Err(MigrateError::FromPostgres),
        Err(e) => return Err(MigrateError::BadFrom(format!("{e:#}"))),
    };
    if !from.is_file() {
        return Err(MigrateError::SqliteMissing(from));
    }
    // Connected before the file is opened (migrated): an unreachable
    // server leaves the file as it was.
    let tls = pg::tls(&mut config).map_err(MigrateError::Tls)?;
    let (mut client, connection) = config.connect(tls).await.map_err(MigrateError::Connect)?;
    let driver = tokio::spawn(connection);

    let path = from.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&path))
        .await
        .map_err(|e| MigrateError::Task(e.to_string()))?
        .map_err(MigrateError::SqliteOpen)?;

    schema::migrate(&mut client)
        .await
        .map_err(MigrateError::PgSchema)?;
    let copied = copy(&mut client, &from).await;
    store.close_writer().await;
    drop(client);
    let _ = driver.await;
    copied
}

/// Step 3 and 4: everything but the connection and the migrations.
async fn copy(client: &mut tokio_postgres::Client, from: &Path) -> Result<Copied, MigrateError> {
    let tx = client
        .transaction()
        .await
        .map_err(pg("starting the transaction"))?;
    // No other writer may add a row between the check and the commit.
    let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
        names.join(", ")
    ))
    .await
    .map_err(pg("locking the target's tables"))?;
    // The one row of `signing_key`, `organization` and `registry_keys` a
    // started server made is replaced by the file's.
    let replaced = ["signing_key", "organization", "registry_keys"];
    for table in TABLES.iter().filter(|t| !replaced.contains(&t.name)) {
        let rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {}", table.name), &[])
            .await
            .map_err(pg(format!("counting the rows of {}", table.name)))?
            .get(0);
        if rows > 0 {
            return Err(MigrateError::NotEmpty {
                table: table.name,
                rows,
            });
        }
    }
    // The counts' triggers would update one row once per runner or job
    // copied (in one transaction, a chain of 100 000 versions of that
    // row): off while copying, the counts recomputed after. The live
    // stream's triggers would queue a notification a row: off too.
    tx.batch_execute(
        "DELETE FROM signing_key;
         DELETE FROM organization;
         DELETE FROM registry_keys;
         ALTER TABLE runners DISABLE TRIGGER runner_counts_keep;
         ALTER TABLE jobs DISABLE TRIGGER job_counts_keep;
         ALTER TABLE runners DISABLE TRIGGER runners_changed_insert;
         ALTER TABLE jobs DISABLE TRIGGER jobs_changed_insert;",
    )
    .await
    .map_err(pg("preparing the target's tables"))?;

    let (rows, mut batches) = mpsc::channel::<Msg>(4);
    let path = from.to_owned();
    let reader = tokio::task::spawn_blocking(move || read(&path, &rows));
    let mut tables = Vec::with_capacity(TABLES.len());
    for table in TABLES.iter() {
        match copy_table(&tx, table, &mut batches).await {
            Ok(Some(n)) => tables.push((table.name, n)),
            // The reader stopped: its error says why.
            Ok(None) => break,
            Err(e) => return Err(e),
        }
    }
    drop(batches);
    reader
        .await
        .map_err(|e| MigrateError::Task(e.to_string()))??;
    if tables.len() < TABLES.len() {
        return Err(MigrateError::Task("it stopped before the end".into()));
    }

    let mut finish = format!(
        "ALTER TABLE runners ENABLE TRIGGER runner_counts_keep;
         ALTER TABLE jobs ENABLE TRIGGER job_counts_keep;
         ALTER TABLE runners ENABLE TRIGGER runners_changed_insert;
         ALTER TABLE jobs ENABLE TRIGGER jobs_changed_insert; {} {}",
        pg::RECOUNT,
        pg::JOB_RECOUNT
    );
    for table in TABLES.iter().filter(|t| t.identity) {
        // The next id is one past the largest copied (1 on an empty table).
        finish.push_str(&format!(
            "SELECT setval(pg_get_serial_sequence('{t}', 'id'),
                           coalesce((SELECT max(id) FROM {t}), 0) + 1, false);",
            t = table.name
        ));
    }
    tx.batch_execute(&finish)
        .await
        .map_err(pg("setting the sequences and the runner counts"))?;
    tx.commit().await.map_err(pg("committing the copy"))?;
    // The planner's statistics for the copied rows, now rather than when
    // autovacuum comes round (the copy is committed: a failure here only
    // leaves that to autovacuum).
    let _ = client.batch_execute("ANALYZE").await;
    Ok(Copied { tables })
}

/// Copies one table's rows as the reader hands them over: how many, or
/// `None` if the reader stopped first.
async fn copy_table(
    tx: &tokio_postgres::Transaction<'_>,
    table: &Table,
    batches: &mut mpsc::Receiver<Msg>,
) -> Result<Option<u64>, MigrateError> {
    let columns: Vec<&str> = table.columns.iter().map(|&(c, _)| c).collect();
    let types: Vec<Type> = table.columns.iter().map(|&(_, k)| k.pg_type()).collect();
    let copying = format!("copying table {}", table.name);
    let sink = tx
        .copy_in(&format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            table.name,
            columns.join(", ")
        ))
        .await
        .map_err(pg(copying.clone()))?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    loop {
        match batches.recv().await {
            Some(Msg::Rows(rows)) => {
                for row in rows {
                    let values: Vec<&(dyn ToSql + Sync)> =
                        row.iter().map(|c| &**c as &(dyn ToSql + Sync)).collect();
                    writer
                        .as_mut()
                        .write(&values)
                        .await
                        .map_err(pg(copying.clone()))?;
                }
            }
            Some(Msg::End) => break,
            // Dropping the writer unfinished aborts the COPY.
            None => return Ok(None),
        }
    }
    let n = writer.as_mut().finish().await.map_err(pg(copying))?;
    Ok(Some(n))
}

/// Reads every table of [`TABLES`] from the SQLite file at `path`, in one
/// read transaction, handing the rows over in batches (a blocking thread's
/// work).
fn read(path: &Path, rows: &mpsc::Sender<Msg>) -> Result<(), MigrateError> {
    use rusqlite::OpenFlags;
    let read_error = |table| move |source| MigrateError::SqliteRead { table, source };
    let mut conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(read_error("(opening the file)"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(read_error("(opening the file)"))?;
    // One snapshot for every table.
    let tx = conn
        .transaction()
        .map_err(read_error("(starting a read)"))?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(read_error("(its version)"))?;
    if !SQLITE_VERSIONS.contains(&found) {
        return Err(MigrateError::SqliteVersion {
            path: path.to_owned(),
            found,
            expected: *SQLITE_VERSIONS.end(),
        });
    }
    for table in TABLES.iter() {
        if table.since > found {
            // Not in a file this old: no rows.
            if rows.blocking_send(Msg::End).is_err() {
                return Ok(());
            }
            continue;
        }
        let select: Vec<&str> = table
            .columns
            .iter()
            .map(|&(c, k)| match k {
                Kind::ClearedTime => "NULL",
                _ => c,
            })
            .collect();
        let mut stmt = tx
            .prepare(&format!(
                "SELECT {} FROM {} ORDER BY 1",
                select.join(", "),
                table.name
            ))
            .map_err(read_error(table.name))?;
        let mut found = stmt.query([]).map_err(read_error(table.name))?;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(row) = found.next().map_err(read_error(table.name))? {
            let mut cells = Vec::with_capacity(table.columns.len());
            for (i, &(column, kind)) in table.columns.iter().enumerate() {
                let value: Value = row.get(i).map_err(read_error(table.name))?;
                let bad = |value: &Value| MigrateError::BadValue {
                    table: table.name,
                    id: row
                        .get::<_, Value>(0)
                        .map(|v| shown(&v))
                        .unwrap_or_default(),
                    column,
                    value: shown(value),
                    expected: kind.expected(),
                };
                cells.push(cell(kind, value).map_err(|v| bad(&v))?);
            }
            batch.push(cells);
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if rows.blocking_send(Msg::Rows(full)).is_err() {
                    // The copy stopped: its own error says why.
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() && rows.blocking_send(Msg::Rows(batch)).is_err() {
            return Ok(());
        }
        if rows.blocking_send(Msg::End).is_err() {
            return Ok(());
        }
    }
    Ok(())
}
