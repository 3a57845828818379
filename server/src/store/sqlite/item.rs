//! SQLite's half of an item ([`SqliteItem`]), beside the model's
//! ([`Item`]): what `items.rs` needs of a resource to do for it what every
//! item has.

use rusqlite::types::Value;
use rusqlite::{Connection, Row};

use crate::store::error::StoreError;
use crate::store::model::read::ReadRow;
use crate::store::model::{Actor, Change, Item};
use crate::validate::ListQuery;

/// SQLite's half of an item: its columns, its row reader, and what its
/// update does besides the common fields. Its table has a trigram index
/// `{table}_search` and its queue.
pub trait SqliteItem: Item {
    /// The columns [`SqliteItem::row_at`] reads, in order.
    const COLUMNS: &'static str;
    /// An item from the columns of [`SqliteItem::COLUMNS`], from `at` on.
    fn row_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Self::Row> {
        Self::Row::read(row, at)
    }
    /// What else the update does (an item's own fields), in its
    /// transaction; nothing by default.
    fn apply_more(
        _conn: &Connection,
        _actor: &Actor,
        _change: Change<'_, Self>,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    /// Columns of its own that an update may change besides the common
    /// ones, with their values in `row` (written in the same statement, so
    /// that a CHECK across columns holds).
    fn own_columns(_row: &Self::Row) -> Vec<(&'static str, Value)> {
        Vec::new()
    }
    /// A cheap count of the items `q` lists, if there is one (kept by
    /// triggers); else the list counts its matches itself.
    fn count_sql(_q: &ListQuery) -> Option<&'static str> {
        None
    }
}
