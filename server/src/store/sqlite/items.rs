//! What runners and specs (and the resources after them) share on SQLite,
//! written once over the [`SqliteItem`] trait: lookup by reference, insert with a given or
//! generated slug, the name/slug/archive update with its audit row, and the
//! filtered, paged list with its count. A resource is its own small file:
//! its row, its SQL, and its own operations.
//!
//! A trait rather than a macro or a table descriptor: the shared code is
//! ordinary generic functions that read and type-check as such, and each
//! resource states in one `impl` what differs (its table, columns, row
//! reader and audit actions).

use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row};
use uuid::Uuid;

use super::audit::record;
use super::item::SqliteItem;
use super::{SqliteStore, to_text, uuid_at, writer};
use crate::store::error::StoreError;
use crate::store::model::now;
use crate::store::model::{Actor, Change, RefTo, changes, with_common_changes};
use crate::store::operations::ItemOps;
use crate::store::operations::Stored;
use crate::store::sql::{SEARCH_INDEX_MIN_CHARS, could_be_in_uuid, list_order, where_clause};
use crate::validate::{ListQuery, Ref, generated_slug, slug_from_name};

/// The columns `columns` of item `r` (a runner or a spec, by UUID or
/// slug), read by `read`; [`StoreError::NotFound`] if there is none.
fn lookup<T: SqliteItem, R>(
    conn: &Connection,
    r: &RefTo<T>,
    columns: &str,
    read: impl FnOnce(&Row<'_>) -> rusqlite::Result<R>,
) -> Result<R, StoreError> {
    let (filter, arg) = match r.by() {
        Ref::Uuid(uuid) => ("uuid", uuid.to_string()),
        Ref::Slug(slug) => ("slug", slug.clone()),
    };
    let table = T::TABLE;
    conn.prepare_cached(&format!("SELECT {columns} FROM {table} WHERE {filter} = ?"))?
        .query_row([arg], read)
        .optional()?
        .ok_or_else(|| StoreError::NotFound {
            kind: T::KIND,
            by: r.by().clone(),
        })
}

/// An item's row id and row, by UUID or slug.
pub(super) fn find<T: SqliteItem>(
    conn: &Connection,
    r: &RefTo<T>,
) -> Result<(i64, T::Row), StoreError> {
    let columns = T::COLUMNS;
    lookup(conn, r, &format!("id, {columns}"), |row| {
        Ok((row.get(0)?, T::row_at(row, 1)?))
    })
}

/// Who item `r` is, without the rest of its row: for a write or a filter
/// that needs only that.
pub(super) struct Identity {
    pub id: i64,
    pub uuid: Uuid,
    pub slug: String,
    pub archived: bool,
}

/// The row id, UUID and slug of item `r` (a runner or a spec), and whether
/// it is archived: one lookup by a unique index, none of the row's other
/// columns (a runner's specs and status are subqueries).
pub(super) fn identify<T: SqliteItem>(
    conn: &Connection,
    r: &RefTo<T>,
) -> Result<Identity, StoreError> {
    lookup(conn, r, "id, uuid, slug, archived IS NOT NULL", |row| {
        Ok(Identity {
            id: row.get(0)?,
            uuid: uuid_at(row, 1)?,
            slug: row.get(2)?,
            archived: row.get(3)?,
        })
    })
}

/// One page of the items matching `q`, and how many match in all.
pub(super) fn list<T: SqliteItem>(
    conn: &Connection,
    q: &ListQuery,
) -> Result<(Vec<T::Row>, u64), StoreError> {
    let status = q.status.and_then(T::status_filter);
    ListSql::new(T::TABLE, q, status).run(conn, q, T::count_sql(q), T::COLUMNS, |r| T::row_at(r, 0))
}

/// Whether `e` is a violation of a unique index (by SQLite's extended
/// result code).
pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == ErrorCode::ConstraintViolation
            && f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// Whether an item of `T` has `slug`.
fn slug_exists<T: SqliteItem>(conn: &Connection, slug: &str) -> rusqlite::Result<bool> {
    let table = T::TABLE;
    conn.prepare_cached(&format!(
        "SELECT EXISTS (SELECT 1 FROM {table} WHERE slug = ?)"
    ))?
    .query_row([slug], |r| r.get(0))
}

/// Maps a failed write of `slug` to [`StoreError::SlugTaken`] if that is
/// what failed: a unique violation while an item has the slug (the other
/// unique columns hold random values).
pub(super) fn slug_conflict<T: SqliteItem>(
    conn: &Connection,
    slug: &str,
    e: rusqlite::Error,
) -> StoreError {
    if is_unique_violation(&e) && slug_exists::<T>(conn, slug).unwrap_or(false) {
        StoreError::SlugTaken {
            kind: T::KIND,
            slug: slug.to_owned(),
        }
    } else {
        e.into()
    }
}

/// Tries to find a free generated slug before giving up with a 409.
const GENERATED_SLUG_ATTEMPTS: usize = 8;

/// Runs `insert` with the slug given (taken: 409), or else with slugs
/// generated from `name` until one is free, and records the new item's
/// audit row.
pub(super) fn create<T: SqliteItem>(
    conn: &Connection,
    actor: &Actor,
    given: Option<&str>,
    name: &str,
    mut insert: impl FnMut(&str) -> rusqlite::Result<T::Row>,
) -> Result<T::Row, StoreError> {
    let row = match given {
        Some(slug) => insert(slug).map_err(|e| slug_conflict::<T>(conn, slug, e))?,
        None => {
            let base = slug_from_name(name);
            let mut attempts = 0..GENERATED_SLUG_ATTEMPTS;
            loop {
                let Some(i) = attempts.next() else {
                    return Err(StoreError::NoFreeSlug(GENERATED_SLUG_ATTEMPTS));
                };
                let slug = generated_slug(base.as_deref(), T::KIND.name(), i);
                match insert(&slug) {
                    Ok(row) => break row,
                    Err(e) => match slug_conflict::<T>(conn, &slug, e) {
                        StoreError::SlugTaken { .. } => continue,
                        e => return Err(e),
                    },
                }
            }
        }
    };
    let (uuid, slug) = T::identity(&row);
    record(
        conn,
        actor,
        T::CREATED,
        Some(uuid),
        Some(slug),
        changes(None, &row),
    )?;
    Ok(row)
}

/// Applies `changes` to the item `r`: the common fields, then
/// [`Item::apply_more`]; writes it (with [`Item::own_columns`]) and audits
/// it if anything changed.
fn update<T: SqliteItem>(
    conn: &Connection,
    actor: &Actor,
    r: &RefTo<T>,
    asked: T::Changes,
) -> Result<T::Row, StoreError> {
    let (id, current) = find(conn, r)?;
    let stamp = now();
    let mut next = with_common_changes::<T>(&current, &asked, stamp);
    let change = Change::new(asked, id, &current, &mut next, stamp);
    T::apply_more(conn, actor, change)?;
    if next == current {
        return Ok(current);
    }
    let fields = T::common(&mut next);
    *fields.modified = stamp;
    let (name, slug, archived) = (fields.name.clone(), fields.slug.clone(), *fields.archived);
    let mut args: Vec<Value> = vec![
        Value::Text(name),
        Value::Text(slug.clone()),
        archived.map(to_text).into(),
        Value::Text(to_text(stamp)),
        Value::Integer(id),
    ];
    let mut set = String::new();
    for (column, value) in T::own_columns(&next) {
        set.push_str(&format!(", {column} = ?{}", args.len() + 1));
        args.push(value);
    }
    let table = T::TABLE;
    conn.prepare_cached(&format!(
        "UPDATE {table} SET name = ?1, name_folded = fold(?1), slug = ?2, archived = ?3,
         modified = ?4{set} WHERE id = ?5"
    ))?
    .execute(rusqlite::params_from_iter(args))
    .map_err(|e| slug_conflict::<T>(conn, &slug, e))?;
    let (uuid, slug) = T::identity(&next);
    let diff = changes(Some(&current), &next);
    record(conn, actor, T::UPDATED, Some(uuid), Some(slug), diff)?;
    Ok(next)
}

/// The tables with a trigram index `{table}_search` and its queue.
const SEARCHED: [&str; 3] = ["runners", "specs", "projects"];

/// Moves the changes queued by the triggers into the trigram indexes, in
/// one statement a table, and empties the queues: the writer does this
/// once a group commit, just before committing, so that FTS5 writes one
/// segment a commit rather than one a write. In rowid order (and in the
/// order queued for one row), so that FTS5 need not flush between them.
/// If it fails, nothing of it is kept (a savepoint) and the queue stays,
/// which a search reads too: the index is only behind, never wrong.
pub(super) fn drain_search_queues(conn: &Connection) -> rusqlite::Result<()> {
    for table in SEARCHED {
        let queued: bool = conn
            .prepare_cached(&format!(
                "SELECT EXISTS (SELECT 1 FROM {table}_search_queue)"
            ))?
            .query_row([], |r| r.get(0))?;
        if !queued {
            continue;
        }
        writer::begin_savepoint(conn, "drain")?;
        let drained = conn
            .prepare_cached(&format!(
                "INSERT INTO {table}_search ({table}_search, rowid, name_folded, slug)
                 SELECT command, id, name_folded, slug FROM {table}_search_queue ORDER BY id, seq"
            ))
            .and_then(|mut s| s.execute([]))
            .and_then(|_| {
                conn.prepare_cached(&format!("DELETE FROM {table}_search_queue"))?
                    .execute([])
            });
        writer::end_savepoint(conn, "drain", drained.is_ok())?;
        drained?;
    }
    Ok(())
}

/// The `WHERE` and `ORDER BY` of a list of `table` (`runners` or `specs`,
/// which share the columns filtered on, and each have a trigram index
/// `{table}_search`), and the parameters of the `WHERE`.
struct ListSql {
    table: &'static str,
    where_sql: String,
    args: Vec<Value>,
    order: &'static str,
}

impl ListSql {
    fn new(table: &'static str, q: &ListQuery, status: Option<&str>) -> Self {
        let mut filters = Vec::new();
        if let Some(status) = status {
            filters.push(status.to_owned());
        }
        let mut args = Vec::new();
        if !q.archived {
            filters.push("archived IS NULL".to_owned());
        }
        if let Some(name) = &q.name {
            filters.push("name = ?".to_owned());
            args.push(Value::Text(name.clone()));
        }
        if let Some(search) = &q.search {
            if search.chars().count() >= SEARCH_INDEX_MIN_CHARS {
                // The trigram index finds the rows that can match (it folds
                // case itself, so it finds a superset); instr() below keeps
                // exactly the ones that do. A phrase in double quotes is
                // taken literally (quotes doubled), `%` and `_` included.
                // The index holds names and slugs, and the rows changed
                // since it was last brought up to date are queued (see
                // schema version 9); a search that could be part of a UUID
                // also reads the UUID index.
                let uuids = if could_be_in_uuid(search) {
                    format!(" UNION ALL SELECT id FROM {table} WHERE instr(uuid, ?) > 0")
                } else {
                    String::new()
                };
                filters.push(format!(
                    "id IN (SELECT rowid FROM {table}_search WHERE {table}_search MATCH ?
                            UNION ALL SELECT id FROM {table}_search_queue{uuids})"
                ));
                args.push(Value::Text(format!("\"{}\"", search.replace('"', "\"\""))));
                if !uuids.is_empty() {
                    args.push(Value::Text(search.clone()));
                }
            }
            // instr() matches literally, so `%` and `_` need no escaping.
            filters.push(
                "(instr(name_folded, ?) > 0 OR instr(slug, ?) > 0 OR instr(uuid, ?) > 0)"
                    .to_owned(),
            );
            args.extend(std::iter::repeat_n(Value::Text(search.clone()), 3));
        }
        let where_sql = where_clause(&filters);
        let order = list_order(q);
        Self {
            table,
            where_sql,
            args,
            order,
        }
    }

    /// One page and the number of matches in all, in one read transaction
    /// (one snapshot, one WAL read lock). `count_sql` is a cheap count to
    /// use (the trigger-kept one); without it the matches are counted by
    /// the page's own statement (`count(*) OVER ()`), so a search reads its
    /// matches once, not twice. The page's ids are chosen first, along the
    /// index that serves the sort (which holds the id), and only the rows
    /// of the page are read whole: a deep page skips index entries, not rows.
    fn run<T>(
        self,
        conn: &Connection,
        q: &ListQuery,
        count_sql: Option<&str>,
        columns: &str,
        mut item: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<(Vec<T>, u64), StoreError> {
        let tx = conn.unchecked_transaction()?;
        let count = |sql: &str| -> Result<i64, StoreError> {
            Ok(tx
                .prepare_cached(sql)?
                .query_row(rusqlite::params_from_iter(&self.args), |r| r.get(0))?)
        };
        let cheap_total = count_sql.map(count).transpose()?;
        let limit = i64::from(q.per_page);
        let offset = i64::try_from(q.offset()).unwrap_or(i64::MAX);
        let mut args = self.args.clone();
        args.extend([Value::Integer(limit), Value::Integer(offset)]);
        let (table, order, where_sql) = (self.table, self.order, &self.where_sql);
        let mut counted = None;
        // The window counts every match before LIMIT: only when there is no
        // cheap count (it would walk the whole index of an unfiltered list).
        let total = if cheap_total.is_some() {
            "NULL"
        } else {
            "count(*) OVER ()"
        };
        let items = tx
            .prepare_cached(&format!(
                "WITH page (page_id, total) AS (
                     SELECT id, {total} FROM {table}{where_sql}
                     ORDER BY {order} LIMIT ? OFFSET ?)
                 SELECT {columns}, total FROM {table} JOIN page ON page_id = id
                 ORDER BY {order}"
            ))?
            .query_map(rusqlite::params_from_iter(&args), |row| {
                counted = row.get::<_, Option<i64>>(row.as_ref().column_count() - 1)?;
                item(row)
            })?
            .collect::<Result<Vec<T>, _>>()?;
        let total = match (cheap_total, counted) {
            (Some(total), _) | (None, Some(total)) => total,
            // A page past the end has no row to carry the count.
            (None, None) => count(&format!("SELECT count(*) FROM {table}{where_sql}"))?,
        };
        tx.commit()?;
        Ok((items, u64::try_from(total).unwrap_or(0)))
    }
}

impl ItemOps for SqliteStore {
    async fn item<T: Stored>(&self, r: &RefTo<T>) -> Result<T::Row, StoreError> {
        let r = r.clone();
        self.read(move |c| find(c, &r).map(|(_, row)| row)).await
    }

    async fn update<T: Stored>(
        &self,
        r: RefTo<T>,
        changes: T::Changes,
        actor: &Actor,
    ) -> Result<T::Row, StoreError> {
        let actor = actor.clone();
        let row = self
            .write(move |tx| update(tx, &actor, &r, changes))
            .await?;
        if let Some(event) = T::revoked(&row) {
            self.publish(event);
        }
        Ok(row)
    }
}
