//! The store's own types in SQLite's columns: enums as their text
//! (`as_str`, read back by `parse`), a key hash as a blob, row ids as
//! integers; and a row as the model reads it ([`StoredRow`]).

use chrono::{DateTime, Utc};
use rusqlite::Row;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, Type, ValueRef};
use uuid::Uuid;

use super::{opt_time_at, text_at, time_at, uuid_at};
use crate::store::model::read::StoredRow;
use crate::store::model::{
    Architecture, AuditAction, JobId, JobStatus, OperatingSystem, RunnerId, RunnerKeyHash,
    RunnerStatus, Sandbox, SpecId,
};

/// A stored enum in a text column.
macro_rules! text_column {
    ($($ty:ty),*) => {$(
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.as_str().as_bytes())))
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                <$ty>::parse(text).ok_or_else(|| {
                    FromSqlError::Other(
                        format!("`{text}` is no {}", stringify!($ty)).into(),
                    )
                })
            }
        }
    )*};
}

text_column!(
    Architecture,
    OperatingSystem,
    Sandbox,
    JobStatus,
    RunnerStatus,
    AuditAction
);

/// A row id in an integer column.
macro_rules! id_column {
    ($($ty:ident),*) => {$(
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                self.0.to_sql()
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                i64::column_result(value).map($ty)
            }
        }
    )*};
}

id_column!(RunnerId, SpecId, JobId);

impl ToSql for RunnerKeyHash {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Blob(&self.0)))
    }
}

/// A row of SQLite's, as the model reads it: times, UUIDs and JSON kept
/// as text, a runner's specs as their UUIDs joined by commas.
impl StoredRow for Row<'_> {
    type Error = rusqlite::Error;

    fn uuid(&self, at: usize) -> rusqlite::Result<Uuid> {
        uuid_at(self, at)
    }

    fn opt_uuid(&self, at: usize) -> rusqlite::Result<Option<Uuid>> {
        match self.get_ref(at)? {
            ValueRef::Null => Ok(None),
            _ => uuid_at(self, at).map(Some),
        }
    }

    fn text(&self, at: usize) -> rusqlite::Result<String> {
        self.get(at)
    }

    fn opt_text(&self, at: usize) -> rusqlite::Result<Option<String>> {
        self.get(at)
    }

    fn time(&self, at: usize) -> rusqlite::Result<DateTime<Utc>> {
        time_at(self, at)
    }

    fn opt_time(&self, at: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
        opt_time_at(self, at)
    }

    fn uuids(&self, at: usize) -> rusqlite::Result<Vec<Uuid>> {
        let Some(joined) = self.get_ref(at)?.as_str_or_null()? else {
            return Ok(Vec::new());
        };
        joined
            .split(',')
            .map(|uuid| Uuid::try_parse(uuid).map_err(|e| self.invalid(at, e.to_string())))
            .collect()
    }

    fn int(&self, at: usize) -> rusqlite::Result<i64> {
        self.get(at)
    }

    fn boolean(&self, at: usize) -> rusqlite::Result<bool> {
        self.get(at)
    }

    fn json(&self, at: usize) -> rusqlite::Result<serde_json::Value> {
        serde_json::from_str(text_at(self, at)?).map_err(|e| self.invalid(at, e.to_string()))
    }

    fn invalid(&self, at: usize, what: String) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(at, Type::Text, what.into())
    }
}
