//! `runners-server migrate --from runners.db --to postgres://…`: copies a
//! SQLite registry into an empty PostgreSQL database (`../ENGINES.md`).
//!
//! 1. The SQLite file must exist (never created here); [`Store::open`]
//!    migrates it to the latest version (a newer one is refused).
//! 2. The target is connected to, migrated, and refused unless every data
//!    table is empty (`signing_key` may hold the row a started server
//!    created: it is replaced).
//! 3. In one PostgreSQL transaction, every table is copied in foreign-key
//!    order with its ids, by binary `COPY … FROM STDIN`, from one SQLite
//!    read transaction (on a blocking thread, handing rows over in batches
//!    through a bounded channel: memory stays bounded whatever the size).
//!    Times become `timestamptz`, UUIDs `uuid`, JSON text `jsonb`; runner
//!    key hashes and the signing secret are copied byte for byte, so every
//!    runner key and API token keeps working. `runners.channel` (an open
//!    channel of the old server) is left NULL.
//! 4. Each identity sequence is set past its table's largest id, the
//!    runner counts are recomputed, and the transaction commits.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use super::pg::{self, describe, schema};
use super::{BUSY_TIMEOUT, DbName, Store};

/// The SQLite schema versions whose tables [`TABLES`] lists: version 8
/// adds `runners.channel_replica` and `replicas`, which a SQLite file
/// leaves empty and which are not copied; version 9 changes indexes and
/// adds the trigram indexes' queues, which are not copied either
/// (PostgreSQL's search indexes are its own). A later SQLite version must
/// update [`TABLES`] (and this) before its files can be copied. Version 10
/// adds `job_releases` (copied when the file has it).
const SQLITE_VERSIONS: std::ops::RangeInclusive<i64> = 7..=10;

/// Rows handed from the SQLite reader to the copy at a time.
const BATCH: usize = 1024;

/// What a column holds on PostgreSQL, and how SQLite's value becomes it.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `bigint` from an integer.
    I64,
    /// `integer` from an integer.
    I32,
    Text,
    /// `boolean` from 0 or 1.
    Bool,
    /// `bytea` from a blob, byte for byte.
    Bytes,
    /// `uuid` from its text.
    Uuid,
    /// `timestamptz` from RFC 3339 text.
    Time,
    /// `jsonb` from JSON text.
    Json,
    /// A `timestamptz` that is not copied: always NULL.
    ClearedTime,
}

impl Kind {
    fn pg_type(self) -> Type {
        match self {
            Kind::I64 => Type::INT8,
            Kind::I32 => Type::INT4,
            Kind::Text => Type::TEXT,
            Kind::Bool => Type::BOOL,
            Kind::Bytes => Type::BYTEA,
            Kind::Uuid => Type::UUID,
            Kind::Time | Kind::ClearedTime => Type::TIMESTAMPTZ,
            Kind::Json => Type::JSONB,
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Kind::I64 | Kind::I32 => "an integer",
            Kind::Text => "text",
            Kind::Bool => "0 or 1",
            Kind::Bytes => "a blob",
            Kind::Uuid => "a UUID",
            Kind::Time | Kind::ClearedTime => "an RFC 3339 time",
            Kind::Json => "JSON text",
        }
    }
}

/// One table to copy: its columns (the same names on both engines).
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// Whether its `id` is an identity column (its sequence is set after).
    identity: bool,
    /// The first SQLite version that has it: an older file has no rows of it.
    since: i64,
}

/// Every table of the schema but `runner_counts` (recomputed),
/// `runners_schema` (the target's own) and `replicas` (the leases of
/// PostgreSQL's server processes: none on SQLite), in foreign-key order.
const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ("id", Kind::I64),
            ("uuid", Kind::Uuid),
            ("name", Kind::Text),
            ("admin", Kind::Bool),
            ("created", Kind::Time),
        ],
        identity: true,
        since: 7,
    },
    Table {
        name: "api_tokens",
        columns: &[
            ("id", Kind::I64),
            ("uuid", Kind::Uuid),
            ("user_id", Kind::I64),
            ("created", Kind::Time),
            ("expires", Kind::Time),
            ("revoked", Kind::Time),
        ],
        identity: true,
        since: 7,
    },
    Table {
        name: "signing_key",
        columns: &[
            ("id", Kind::I32),
            ("secret", Kind::Bytes),
            ("created", Kind::Time),
            ("generation", Kind::I64),
        ],
        identity: false,
        since: 7,
    },
    Table {
        name: "specs",
        columns: &[
            ("id", Kind::I64),
            ("uuid", Kind::Uuid),
            ("name", Kind::Text),
            ("name_folded", Kind::Text),
            ("slug", Kind::Text),
            ("architecture", Kind::Text),
            ("os", Kind::Text),
            ("cpu", Kind::I32),
            ("memory", Kind::I64),
            ("disk", Kind::I64),
            ("network", Kind::Bool),
            ("sandbox", Kind::Text),
            ("fallback", Kind::Time),
            ("archived", Kind::Time),
            ("created", Kind::Time),
            ("modified", Kind::Time),
        ],
        identity: true,
        since: 7,
    },
    Table {
        name: "runners",
        columns: &[
            ("id", Kind::I64),
            ("uuid", Kind::Uuid),
            ("name", Kind::Text),
            ("name_folded", Kind::Text),
            ("slug", Kind::Text),
            ("token_hash", Kind::Bytes),
            ("archived", Kind::Time),
            ("last_heartbeat", Kind::Time),
            ("created", Kind::Time),
            ("modified", Kind::Time),
            ("os", Kind::Text),
            ("arch", Kind::Text),
            ("version", Kind::Text),
            // When the old server's channel of the runner opened: no
            // channel is open on the new database.
            ("channel", Kind::ClearedTime),
        ],
        identity: true,
        since: 7,
    },
    Table {
        name: "runner_specs",
        columns: &[
            ("id", Kind::I64),
            ("runner_id", Kind::I64),
            ("spec_id", Kind::I64),
        ],
        identity: true,
        since: 7,
    },
    Table {
        name: "jobs",
        columns: &[
            ("id", Kind::I64),
            ("uuid", Kind::Uuid),
            ("status", Kind::Text),
            ("spec_id", Kind::I64),
            ("runner_id", Kind::I64),
            ("priority", Kind::I32),
            ("config", Kind::Json),
            ("timeout", Kind::I64),
            // JSON text on both engines (`jsonb` refuses U+0000).
            ("output", Kind::Text),
            ("claimed", Kind::Time),
            ("started", Kind::Time),
            ("completed", Kind::Time),
            ("last_heartbeat", Kind::Time),
            ("created", Kind::Time),
            ("modified", Kind::Time),
        ],
        identity: true,
        since: 7,
    },
    Table {
        name: "job_releases",
        columns: &[("job_id", Kind::I64), ("runner_id", Kind::I64)],
        identity: false,
        since: 10,
    },
    Table {
        name: "audit",
        columns: &[
            ("id", Kind::I64),
            ("time", Kind::Time),
            ("user_uuid", Kind::Uuid),
            ("user_name", Kind::Text),
            ("token_uuid", Kind::Uuid),
            ("action", Kind::Text),
            ("target_uuid", Kind::Uuid),
            ("target_slug", Kind::Text),
            ("changes", Kind::Json),
        ],
        identity: true,
        since: 7,
    },
];

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

/// One value, ready for the binary copy.
type Cell = Box<dyn ToSql + Sync + Send>;

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
    for table in TABLES.iter().filter(|t| t.name != "signing_key") {
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
    // The counts' trigger would update one row once per runner copied (in
    // one transaction, a chain of 100 000 versions of that row): off while
    // copying, the counts recomputed after.
    tx.batch_execute(
        "DELETE FROM signing_key;
         ALTER TABLE runners DISABLE TRIGGER runner_counts_keep;",
    )
    .await
    .map_err(pg("preparing the target's tables"))?;

    let (rows, mut batches) = mpsc::channel::<Msg>(4);
    let path = from.to_owned();
    let reader = tokio::task::spawn_blocking(move || read(&path, &rows));
    let mut tables = Vec::with_capacity(TABLES.len());
    for table in TABLES {
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
        "ALTER TABLE runners ENABLE TRIGGER runner_counts_keep; {}",
        pg::RECOUNT
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
    for table in TABLES {
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

/// SQLite's `value` as PostgreSQL's `kind`, or the value back if it is not
/// one.
fn cell(kind: Kind, value: Value) -> Result<Cell, Value> {
    fn boxed<T: ToSql + Sync + Send + 'static>(v: Option<T>) -> Cell {
        Box::new(v)
    }
    if let Value::Null = value {
        return Ok(match kind {
            Kind::I64 => boxed::<i64>(None),
            Kind::I32 => boxed::<i32>(None),
            Kind::Text => boxed::<String>(None),
            Kind::Bool => boxed::<bool>(None),
            Kind::Bytes => boxed::<Vec<u8>>(None),
            Kind::Uuid => boxed::<Uuid>(None),
            Kind::Time | Kind::ClearedTime => boxed::<DateTime<Utc>>(None),
            Kind::Json => boxed::<serde_json::Value>(None),
        });
    }
    match (kind, value) {
        (Kind::I64, Value::Integer(i)) => Ok(boxed(Some(i))),
        (Kind::I32, Value::Integer(i)) => i32::try_from(i)
            .map(|i| boxed(Some(i)))
            .map_err(|_| Value::Integer(i)),
        (Kind::Text, Value::Text(t)) => Ok(boxed(Some(t))),
        (Kind::Bool, Value::Integer(i @ (0 | 1))) => Ok(boxed(Some(i == 1))),
        (Kind::Bytes, Value::Blob(b)) => Ok(boxed(Some(b))),
        (Kind::Uuid, Value::Text(t)) => match Uuid::try_parse(&t) {
            Ok(u) => Ok(boxed(Some(u))),
            Err(_) => Err(Value::Text(t)),
        },
        (Kind::Time, Value::Text(t)) => match DateTime::parse_from_rfc3339(&t) {
            Ok(time) => Ok(boxed(Some(time.with_timezone(&Utc)))),
            Err(_) => Err(Value::Text(t)),
        },
        (Kind::Json, Value::Text(t)) => match serde_json::from_str::<serde_json::Value>(&t) {
            Ok(json) => Ok(boxed(Some(json))),
            Err(_) => Err(Value::Text(t)),
        },
        (_, value) => Err(value),
    }
}

/// A SQLite value for a message (a blob by its length only: it may be a
/// secret).
fn shown(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(r) => r.to_string(),
        Value::Text(t) => t.chars().take(80).collect(),
        Value::Blob(b) => format!("({} bytes)", b.len()),
    }
}
