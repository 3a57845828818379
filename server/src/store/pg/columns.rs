//! The store's row ids in PostgreSQL's `bigint` columns, and a row as the
//! model reads it ([`StoredRow`]); the twin of `../sqlite/columns.rs`
//! (enums are written by their `as_str`).

use std::error::Error;

use bytes::BytesMut;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use uuid::Uuid;

use crate::store::error::StoreError;
use crate::store::model::read::StoredRow;
use crate::store::model::{JobId, RunnerId, SpecId};

/// A row id in a `bigint` column.
macro_rules! id_column {
    ($($ty:ident),*) => {$(
        impl ToSql for $ty {
            fn to_sql(
                &self,
                ty: &Type,
                out: &mut BytesMut,
            ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
                self.0.to_sql(ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                <i64 as ToSql>::accepts(ty)
            }

            to_sql_checked!();
        }

        impl<'a> FromSql<'a> for $ty {
            fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
                i64::from_sql(ty, raw).map($ty)
            }

            fn accepts(ty: &Type) -> bool {
                <i64 as FromSql>::accepts(ty)
            }
        }
    )*};
}

id_column!(RunnerId, SpecId, JobId);

/// A row of PostgreSQL's, as the model reads it: its own types (`uuid`,
/// `timestamptz`, `uuid[]`, `jsonb`), an integer `bigint` or `integer`.
impl StoredRow for Row {
    type Error = StoreError;

    fn uuid(&self, at: usize) -> Result<Uuid, StoreError> {
        Ok(self.try_get(at)?)
    }

    fn opt_uuid(&self, at: usize) -> Result<Option<Uuid>, StoreError> {
        Ok(self.try_get(at)?)
    }

    fn text(&self, at: usize) -> Result<String, StoreError> {
        Ok(self.try_get(at)?)
    }

    fn opt_text(&self, at: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(at)?)
    }

    fn time(&self, at: usize) -> Result<DateTime<Utc>, StoreError> {
        Ok(self.try_get(at)?)
    }

    fn opt_time(&self, at: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.try_get(at)?)
    }

    fn uuids(&self, at: usize) -> Result<Vec<Uuid>, StoreError> {
        Ok(self.try_get(at)?)
    }

    fn int(&self, at: usize) -> Result<i64, StoreError> {
        match self.columns().get(at).map(|c| c.type_()) {
            Some(&Type::INT4) => Ok(i64::from(self.try_get::<_, i32>(at)?)),
            _ => Ok(self.try_get(at)?),
        }
    }

    fn boolean(&self, at: usize) -> Result<bool, StoreError> {
        Ok(self.try_get(at)?)
    }

    fn json(&self, at: usize) -> Result<serde_json::Value, StoreError> {
        Ok(self.try_get(at)?)
    }

    fn invalid(&self, at: usize, what: String) -> StoreError {
        StoreError::Task(format!(
            "column {at} holds {what}, which the store never writes"
        ))
    }
}
