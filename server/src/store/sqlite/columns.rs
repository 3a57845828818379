//! The store's own types in SQLite's columns: enums as their text
//! (`as_str`, read back by `parse`), a key hash as a blob, row ids as
//! integers.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

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
