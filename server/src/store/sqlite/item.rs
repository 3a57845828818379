//! SQLite's half of an item ([`SqliteItem`]), beside the model's
//! ([`Item`]): what `items.rs` needs of a resource to do for it what every
//! item has.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, Row};

use crate::store::error::StoreError;
use crate::store::model::{Actor, Item};
use crate::validate::ListQuery;

/// SQLite's half of an item: its columns, its row reader, and what its
/// update does besides the common fields. Its table has a trigram index
/// `{table}_search` and its queue.
pub trait SqliteItem: Item {
    /// The columns [`SqliteItem::row_at`] reads, in order.
    const COLUMNS: &'static str;
    /// An item from the columns of [`SqliteItem::COLUMNS`], from `at` on.
    fn row_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Self::Row>;
    /// What else `changes` does to `next` (the row to be), given `current`
    /// (the row as it is), its row id and the time; nothing by default.
    fn apply_more(
        _conn: &Connection,
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
    /// The SQL condition of a list's `status` filter (runners only).
    fn status_filter(_status: &str) -> Option<&'static str> {
        None
    }
}
