//! What every item (a runner, a spec, and the resources after them) is to
//! the store, whichever engine keeps it: its row, its change set, its
//! audit actions, and the name/slug/archive fields every item has. Each
//! engine adds its own half (its columns and row reader): `SqliteItem` in
//! `sqlite/items.rs`, `PgItem` in `pg/items.rs`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::events::Event;
use super::{AuditAction, Kind};
use crate::validate::{ResourceName, Slug};

/// A resource kept in a table with the columns every item has: `id`,
/// `uuid`, `name`, `name_folded`, `slug` (unique), `archived`, `created`,
/// `modified`.
pub trait Item: Sized + Send + Sync + 'static {
    /// The store's row of one item.
    type Row: Clone + PartialEq + Serialize + Send + Sync + 'static;
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
}

/// [`Item::common`], [`Item::identity`] and [`Item::common_changes`] of a
/// resource whose row and change set have the common fields under their
/// usual names.
macro_rules! common_fields {
    ($row:ty, $changes:ty) => {
        fn common(row: &mut $row) -> $crate::store::model::Common<'_> {
            $crate::store::model::Common {
                uuid: row.uuid,
                name: &mut row.name,
                slug: &mut row.slug,
                archived: &mut row.archived,
                modified: &mut row.modified,
            }
        }

        fn identity(row: &$row) -> (uuid::Uuid, &str) {
            (row.uuid, &row.slug)
        }

        fn common_changes(changes: &$changes) -> $crate::store::model::CommonChanges {
            $crate::store::model::CommonChanges {
                name: changes.name.clone(),
                slug: changes.slug.clone(),
                archived: changes.archived,
            }
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

impl Item for super::Runners {
    type Row = super::RunnerRow;
    type Changes = super::RunnerChanges;
    const KIND: Kind = Kind::Runner;
    const TABLE: &'static str = "runners";
    const CREATED: AuditAction = AuditAction::RunnerCreate;
    const UPDATED: AuditAction = AuditAction::RunnerUpdate;

    common_fields!(super::RunnerRow, super::RunnerChanges);

    fn revoked(row: &super::RunnerRow) -> Option<Event> {
        row.archived
            .is_some()
            .then_some(Event::RunnerRevoked { runner: row.uuid })
    }
}

impl Item for super::Specs {
    type Row = super::SpecRow;
    type Changes = super::SpecChanges;
    const KIND: Kind = Kind::Spec;
    const TABLE: &'static str = "specs";
    const CREATED: AuditAction = AuditAction::SpecCreate;
    const UPDATED: AuditAction = AuditAction::SpecUpdate;

    common_fields!(super::SpecRow, super::SpecChanges);
}

impl super::SpecChanges {
    /// The fallback part of this change, applied to `next` (the spec to
    /// be, its common fields changed), given `current` (as it is):
    /// archiving clears the fallback (and wins over `fallback: true` in the
    /// same update); making an archived spec the fallback is refused.
    /// Whether every other spec's fallback must be cleared.
    pub fn apply_fallback(
        &self,
        current: &super::SpecRow,
        next: &mut super::SpecRow,
        stamp: DateTime<Utc>,
    ) -> Result<bool, crate::store::error::StoreError> {
        let clear_others = match self.fallback {
            // Archived, and so no fallback at all: clear the others.
            Some(true) if self.archived == Some(true) => true,
            Some(true) if next.archived.is_some() => {
                return Err(crate::store::error::StoreError::SpecArchived(
                    current.slug.clone(),
                ));
            }
            Some(true) => {
                next.fallback = current.fallback.or(Some(stamp));
                true
            }
            Some(false) => {
                next.fallback = None;
                false
            }
            None => false,
        };
        if next.archived.is_some() {
            next.fallback = None;
        }
        Ok(clear_others)
    }
}
