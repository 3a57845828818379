//! PostgreSQL's half of an item ([`PgItem`]), beside the model's
//! ([`Item`]): what `items.rs` needs of a resource to do for it what every
//! item has.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::Tx;
use crate::store::error::StoreError;
use crate::store::model::read::ReadRow;
use crate::store::model::{Actor, Change, Item};
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
    fn row_at(row: &Row, at: usize) -> Result<Self::Row, StoreError> {
        Self::Row::read(row, at)
    }
    /// What an update of `changes` takes before the item's row lock (the
    /// order every such write takes); nothing by default.
    async fn before_lock(_tx: &Tx<'_>, _changes: &Self::Changes) -> Result<(), StoreError> {
        Ok(())
    }
    /// What else the update does (an item's own fields), in its
    /// transaction; nothing by default.
    async fn apply_more(
        _tx: &Tx<'_>,
        _actor: &Actor,
        _change: Change<'_, Self>,
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
}
