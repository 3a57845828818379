//! What every item (a runner, a spec, and the resources after them) is to
//! the store, whichever engine keeps it: its row, its change set, its
//! audit actions, and the name/slug/archive fields every item has. Each
//! engine adds its own half (its columns and row reader): `SqliteItem` in
//! `sqlite/items.rs`, `PgItem` in `pg/items.rs`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::events::Event;
use super::read::ReadRow;
use super::{AuditAction, Kind};
use crate::validate::{ResourceName, Slug};

/// A resource kept in a table with the columns every item has: `id`,
/// `uuid`, `name`, `name_folded`, `slug` (unique), `archived`, `created`,
/// `modified`.
pub trait Item: Sized + Send + Sync + 'static {
    /// The store's row of one item.
    type Row: ReadRow + Clone + PartialEq + Serialize + Send + Sync + 'static;
    /// A change to one item.
    type Changes: Send + 'static;
    const KIND: Kind;
    const TABLE: &'static str;
    const CREATED: AuditAction;
    const UPDATED: AuditAction;
    /// The fields every item has, to read and change.
    fn common(row: &mut Self::Row) -> Common<'_>;
    /// The UUID and slug of `row`, as its audit rows name it.
    fn identity(row: &Self::Row) -> (Uuid, &str);
    /// The name, slug and archive part of `changes`.
    fn common_changes(changes: &Self::Changes) -> CommonChanges;
    /// What other parts of the server must hear of a change to `row`
    /// (a runner archived: its channel closes).
    fn revoked(_row: &Self::Row) -> Option<Event> {
        None
    }
    /// The SQL condition of a list's `status` filter (runners only; the
    /// same on both engines).
    fn status_filter(_status: &str) -> Option<&'static str> {
        None
    }
}

/// `current` with the common part of `asked` (name, slug, archive)
/// applied at `stamp`: the row an update starts from, on either engine.
pub fn with_common_changes<T: Item>(
    current: &T::Row,
    asked: &T::Changes,
    stamp: DateTime<Utc>,
) -> T::Row {
    let mut next = current.clone();
    let common = T::common_changes(asked);
    T::common(&mut next).apply(common.name, common.slug, common.archived, stamp);
    next
}

impl<'a, T: Item> Change<'a, T> {
    /// The change `asked` of row `id`, from `current` to `next`, at `stamp`.
    pub fn new(
        asked: T::Changes,
        id: i64,
        current: &'a T::Row,
        next: &'a mut T::Row,
        stamp: DateTime<Utc>,
    ) -> Self {
        Self {
            asked,
            id,
            current,
            next,
            stamp,
        }
    }
}

/// An update under way: the change asked, the item's row id, its row as
/// it is and as it will be, and the time. What an item's own update does
/// besides the common fields is given one (`apply_more` of each engine).
pub struct Change<'a, T: Item> {
    pub asked: T::Changes,
    pub id: i64,
    pub current: &'a T::Row,
    pub next: &'a mut T::Row,
    pub stamp: DateTime<Utc>,
}

/// The `Item` of a resource whose row and change set have the common
/// fields under their usual names: its types, kind, table and audit
/// actions, and what else it says (`$more`).
macro_rules! item {
    ($marker:ident {
        row: $row:ident, changes: $changes:ident, kind: $kind:ident, table: $table:literal,
        audit: ($created:ident, $updated:ident) $(,)?
    } $($more:item)*) => {
        impl Item for super::$marker {
            type Row = super::$row;
            type Changes = super::$changes;
            const KIND: Kind = Kind::$kind;
            const TABLE: &'static str = $table;
            const CREATED: AuditAction = AuditAction::$created;
            const UPDATED: AuditAction = AuditAction::$updated;

            fn common(row: &mut super::$row) -> Common<'_> {
                Common {
                    uuid: row.uuid,
                    name: &mut row.name,
                    slug: &mut row.slug,
                    archived: &mut row.archived,
                    modified: &mut row.modified,
                }
            }

            fn identity(row: &super::$row) -> (Uuid, &str) {
                (row.uuid, &row.slug)
            }

            fn common_changes(changes: &super::$changes) -> CommonChanges {
                CommonChanges {
                    name: changes.name.clone(),
                    slug: changes.slug.clone(),
                    archived: changes.archived,
                }
            }

            $($more)*
        }
    };
}

/// The fields every item has.
pub struct Common<'a> {
    pub uuid: Uuid,
    pub name: &'a mut String,
    pub slug: &'a mut String,
    pub archived: &'a mut Option<DateTime<Utc>>,
    pub modified: &'a mut DateTime<Utc>,
}

impl Common<'_> {
    /// Applies a change of name, slug and archived (archiving an archived
    /// item keeps its first time). Both engines' updates use it.
    pub fn apply(
        self,
        name: Option<ResourceName>,
        slug: Option<Slug>,
        archive: Option<bool>,
        stamp: DateTime<Utc>,
    ) {
        if let Some(name) = name {
            *self.name = name.into();
        }
        if let Some(slug) = slug {
            *self.slug = slug.into();
        }
        match archive {
            Some(true) => *self.archived = self.archived.or(Some(stamp)),
            Some(false) => *self.archived = None,
            None => {}
        }
    }
}

/// The name, slug and archive part of an update.
pub struct CommonChanges {
    pub name: Option<ResourceName>,
    pub slug: Option<Slug>,
    pub archived: Option<bool>,
}

item!(Runners {
    row: RunnerRow, changes: RunnerChanges, kind: Runner, table: "runners",
    audit: (RunnerCreate, RunnerUpdate),
}
    fn revoked(row: &super::RunnerRow) -> Option<Event> {
        row.archived.is_some().then_some(Event::RunnerRevoked { runner: row.uuid })
    }

    fn status_filter(status: &str) -> Option<&'static str> {
        crate::store::sql::runner_status_filter(status)
    }
);

item!(Specs {
    row: SpecRow,
    changes: SpecChanges,
    kind: Spec,
    table: "specs",
    audit: (SpecCreate, SpecUpdate),
});

item!(Projects {
    row: ProjectRow,
    changes: ProjectChanges,
    kind: Project,
    table: "projects",
    audit: (ProjectCreate, ProjectUpdate),
});
