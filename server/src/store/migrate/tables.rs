//! The tables `migrate` copies, their columns, and how a SQLite value
//! becomes PostgreSQL's.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

/// One value, ready for the binary copy.
pub(super) type Cell = Box<dyn ToSql + Sync + Send>;

/// What a column holds on PostgreSQL, and how SQLite's value becomes it.
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
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
    /// A kind by its name in [`TABLES`] (`i64`, `cleared_time`, …).
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "i64" => Kind::I64,
            "i32" => Kind::I32,
            "text" => Kind::Text,
            "bool" => Kind::Bool,
            "bytes" => Kind::Bytes,
            "uuid" => Kind::Uuid,
            "time" => Kind::Time,
            "json" => Kind::Json,
            "clearedtime" => Kind::ClearedTime,
            _ => return None,
        })
    }

    pub(super) fn pg_type(self) -> Type {
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

    pub(super) fn expected(self) -> &'static str {
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
pub(super) struct Table {
    pub(super) name: &'static str,
    pub(super) columns: Vec<(&'static str, Kind)>,
    /// Whether its `id` is an identity column (its sequence is set after).
    pub(super) identity: bool,
    /// The first SQLite version that has it: an older file has no rows of it.
    pub(super) since: i64,
}

/// Every table of the schema but `runner_counts` (recomputed),
/// `runners_schema` (the target's own) and `replicas` (the leases of
/// PostgreSQL's server processes: none on SQLite), in foreign-key order:
/// each its name, whether its `id` is an identity, the first SQLite
/// version that has it, and its columns (`name kind`, see [`Kind::parse`]).
/// `runners.channel` is `clearedtime`: when the old server's channel of
/// the runner opened, and no channel is open on the new database;
/// `jobs.output` and `reports.results` are JSON text on both engines
/// (`jsonb` refuses U+0000). `organization` is one row, as `signing_key`:
/// the file's replaces the one a started server made (and the file's
/// `registry_keys` the one it made). Version 11's columns
/// of `jobs` (`project_id`, `adapter`) are read from every file, which
/// [`crate::store::Store::open`] has brought to the latest version.
pub(super) static TABLES: LazyLock<Vec<Table>> = LazyLock::new(|| {
    #[rustfmt::skip]
    let tables = [
        ("users", true, 7, "id i64, uuid uuid, name text, admin bool, created time"),
        ("api_tokens", true, 7, "id i64, uuid uuid, user_id i64, created time, expires time, revoked time"),
        ("signing_key", false, 7, "id i32, secret bytes, created time, generation i64"),
        ("registry_keys", false, 12, "id i64, kid text, private_key bytes, certificate bytes, created time, retired time"),
        ("specs", true, 7, "id i64, uuid uuid, name text, name_folded text, slug text, architecture text, os text, cpu i32, memory i64, disk i64, network bool, sandbox text, fallback time, archived time, created time, modified time"),
        ("runners", true, 7, "id i64, uuid uuid, name text, name_folded text, slug text, token_hash bytes, archived time, last_heartbeat time, created time, modified time, os text, arch text, version text, channel clearedtime"),
        ("runner_specs", true, 7, "id i64, runner_id i64, spec_id i64"),
        ("organization", false, 11, "id i32, uuid uuid, created time"),
        ("projects", true, 11, "id i64, uuid uuid, name text, name_folded text, slug text, url text, visibility text, archived time, created time, modified time"),
        ("api_keys", true, 11, "id i64, uuid uuid, project_id i64, user_id i64, name text, key_hash bytes, creator uuid, created time, expires time, revoked time"),
        ("project_names", true, 11, "id i64, uuid uuid, project_id i64, kind text, name text, slug text, units text, created time"),
        ("jobs", true, 7, "id i64, uuid uuid, status text, spec_id i64, runner_id i64, priority i32, config json, timeout i64, output text, claimed time, started time, completed time, last_heartbeat time, created time, modified time, project_id i64, adapter text"),
        ("job_releases", false, 10, "job_id i64, runner_id i64"),
        ("reports", true, 11, "id i64, uuid uuid, project_id i64, user_id i64, branch_id i64, testbed_id i64, adapter text, start_time time, end_time time, job_id i64, idempotency_key uuid, results text, created time"),
        ("audit", true, 7, "id i64, time time, user_uuid uuid, user_name text, token_uuid uuid, action text, target_uuid uuid, target_slug text, changes json"),
    ];
    tables
        .into_iter()
        .map(|(name, identity, since, columns)| Table {
            name,
            identity,
            since,
            columns: columns
                .split(", ")
                .map(|column| {
                    let (name, kind) = column.split_once(' ').expect("`name kind`");
                    (name, Kind::parse(kind).expect("a kind of column"))
                })
                .collect(),
        })
        .collect()
});

/// SQLite's `value` as PostgreSQL's `kind`, or the value back if it is not
/// one.
pub(super) fn cell(kind: Kind, value: Value) -> Result<Cell, Value> {
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
pub(super) fn shown(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(r) => r.to_string(),
        Value::Text(t) => t.chars().take(80).collect(),
        Value::Blob(b) => format!("({} bytes)", b.len()),
    }
}

#[cfg(test)]
mod tests {
    /// Every column of every table names a kind, and every table has an
    /// `id` but the releases.
    #[test]
    fn every_table_reads() {
        for table in super::TABLES.iter() {
            assert!(!table.columns.is_empty(), "{}", table.name);
            let has_id = table.columns.iter().any(|&(c, _)| c == "id");
            assert_eq!(has_id, table.name != "job_releases", "{}", table.name);
            assert!(!table.identity || has_id, "{}", table.name);
        }
        assert_eq!(super::TABLES.len(), 15);
    }
}
