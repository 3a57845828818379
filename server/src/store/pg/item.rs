//! PostgreSQL's half of an item ([`PgItem`]), beside the model's
//! ([`Item`]): what `items.rs` needs of a resource to do for it what every
//! item has.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::Tx;
use crate::store::error::StoreError;
use crate::store::model::{Actor, Item};
use crate::validate::ListQuery;

/// A statement parameter of a column of an item's own.
pub type Param = Box<dyn ToSql + Sync + Send>;

/// PostgreSQL's half of an item: its columns, its row reader, and what
/// its update does besides the common fields.
// Only this crate implements and calls it, on concrete items (whose
// futures are Send), so the lint's Send bound is not needed.
#[allow(async_fn_in_trait)]
pub trait PgItem: Item {
    /// The columns [`PgItem::row_at`] reads, in order.
    const COLUMNS: &'static str;
    /// An item from the columns of [`PgItem::COLUMNS`], from `at` on.
    fn row_at(row: &Row, at: usize) -> Result<Self::Row, StoreError>;
    /// What an update of `changes` takes before the item's row lock (the
    /// order every such write takes); nothing by default.
    async fn before_lock(_tx: &Tx<'_>, _changes: &Self::Changes) -> Result<(), StoreError> {
        Ok(())
    }
    /// What else `changes` does to `next` (the row to be), given `current`
    /// (the row as it is), its row id and the time; nothing by default.
    #[allow(clippy::too_many_arguments)]
    async fn apply_more(
        _tx: &Tx<'_>,
        _actor: &Actor,
        _id: i64,
        _changes: Self::Changes,
        _current: &Self::Row,
        _next: &mut Self::Row,
        _stamp: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    /// Columns of its own that an update may change besides the common
    /// ones, with their values in `row`.
    fn own_columns(_row: &Self::Row) -> Vec<(&'static str, Param)> {
        Vec::new()
    }
    /// A cheap count of the items `q` lists (one `bigint`), if there is one.
    fn count_sql(_q: &ListQuery) -> Option<&'static str> {
        None
    }
    /// The SQL condition of a list's `status` filter (runners only).
    fn status_filter(_status: &str) -> Option<&'static str> {
        None
    }
}
