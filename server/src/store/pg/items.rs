//! What runners and specs (and the resources after them) share on
//! PostgreSQL, written once over the [`PgItem`] trait: lookup by UUID or
//! slug, the name/slug/archive update with its audit row, and the paged,
//! filtered list with its count and search.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::item::{Param, PgItem};
use super::{PgStore, StoreError, Tx, now, record, unique_violation};
use crate::store::model::{Actor, Change, RefTo, changes, with_common_changes};
use crate::store::operations::ItemOps;
use crate::store::operations::Stored;
use crate::store::sql::{SEARCH_INDEX_MIN_CHARS, could_be_in_uuid, list_order, where_clause};
use crate::validate::{ListQuery, Ref};

/// An item's row id and row, by UUID or slug; `lock`: its row locked
/// until the transaction ends, so a write that reads, then changes it,
/// serialises with any other.
pub(super) async fn find<T: PgItem>(
    c: &impl GenericClient,
    r: &RefTo<T>,
    lock: bool,
) -> Result<(i64, T::Row), StoreError> {
    let (table, columns) = (T::TABLE, T::COLUMNS);
    let lock = if lock {
        format!(" FOR UPDATE OF {table}")
    } else {
        String::new()
    };
    let by = |column: &str| format!("SELECT id, {columns} FROM {table} WHERE {column} = $1{lock}");
    let row = match r.by() {
        Ref::Uuid(uuid) => {
            c.query_opt(&c.prepare_cached(&by("uuid")).await?, &[uuid])
                .await?
        }
        Ref::Slug(slug) => {
            c.query_opt(&c.prepare_cached(&by("slug")).await?, &[slug])
                .await?
        }
    };
    match row {
        Some(row) => Ok((row.try_get(0)?, T::row_at(&row, 1)?)),
        None => Err(StoreError::NotFound {
            kind: T::KIND,
            by: r.by().clone(),
        }),
    }
}

/// One page of the items matching `q`, and how many match in all.
pub(super) async fn list_items<T: PgItem>(
    client: &impl GenericClient,
    q: &ListQuery,
) -> Result<(Vec<T::Row>, u64), StoreError> {
    let status = q.status.and_then(T::status_filter);
    list(
        client,
        q,
        T::TABLE,
        T::COLUMNS,
        status,
        T::count_sql(q),
        T::row_at,
    )
    .await
}

impl ItemOps for PgStore {
    async fn item<T: Stored>(&self, r: &RefTo<T>) -> Result<T::Row, StoreError> {
        // One statement: no transaction, one round trip.
        let client = self.client().await?;
        Ok(find(&client, r, false).await?.1)
    }

    /// In one transaction, its row locked first (racing updates apply one
    /// after the other); what it revokes is notified in it.
    async fn update<T: Stored>(
        &self,
        r: RefTo<T>,
        asked: T::Changes,
        actor: &Actor,
    ) -> Result<T::Row, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        <T as PgItem>::before_lock(&tx, &asked).await?;
        let (id, current) = find(&tx, &r, true).await?;
        let stamp = now();
        let mut next = with_common_changes::<T>(&current, &asked, stamp);
        let change = Change::new(asked, id, &current, &mut next, stamp);
        <T as PgItem>::apply_more(&tx, actor, change).await?;
        if next != current {
            write_update::<T>(&tx, id, &mut next, stamp).await?;
            let (uuid, slug) = T::identity(&next);
            let diff = changes(Some(&current), &next);
            record(&tx, actor, T::UPDATED, Some(uuid), Some(slug), diff).await?;
        }
        if let Some(event) = T::revoked(&next) {
            super::events::notify(&tx, &event).await?;
        }
        tx.commit().await?;
        Ok(next)
    }
}

/// Writes the common fields of `next` (stamped `stamp`) and its own
/// columns to row `id`; its slug taken by another is
/// [`StoreError::SlugTaken`].
async fn write_update<T: PgItem>(
    tx: &Tx<'_>,
    id: i64,
    next: &mut T::Row,
    stamp: DateTime<Utc>,
) -> Result<(), StoreError> {
    let fields = T::common(next);
    *fields.modified = stamp;
    let folded = fields.name.to_lowercase();
    let (name, slug, archived) = (fields.name.clone(), fields.slug.clone(), *fields.archived);
    let mut args: Vec<Param> = vec![
        Box::new(name),
        Box::new(folded),
        Box::new(slug.clone()),
        Box::new(archived),
        Box::new(stamp),
        Box::new(id),
    ];
    let mut set = String::new();
    for (column, value) in T::own_columns(next) {
        args.push(value);
        set.push_str(&format!(", {column} = ${}", args.len()));
    }
    let table = T::TABLE;
    let sql = format!(
        "UPDATE {table} SET name = $1, name_folded = $2, slug = $3, archived = $4,
                            modified = $5{set}
         WHERE id = $6"
    );
    tx.execute(&sql, &params(&args)).await.map_err(|e| {
        if unique_violation(&e).is_some_and(|c| c == format!("{table}_slug_key")) {
            StoreError::SlugTaken {
                kind: T::KIND,
                slug,
            }
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// `text` as a `LIKE` pattern matching it anywhere, `\`, `%` and `_` taken
/// literally.
pub(super) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The parameters of a statement, as `tokio-postgres` takes them.
pub(super) fn params(args: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// One page of the items of `table` (`runners` or `specs`: they share the
/// columns filtered on) matching `q`, and how many match: the twin of
/// SQLite's `ListSql`, in **one statement** (one snapshot, one round trip,
/// no transaction). `columns` are read by `read`; `status` is a filter of
/// the table's own; `cheap` a cheap count of what `q` lists, if there is
/// one (a `SELECT` of one `bigint`), else the filtered rows are counted.
async fn list<R>(
    client: &impl GenericClient,
    q: &ListQuery,
    table: &str,
    columns: &str,
    status: Option<&str>,
    cheap: Option<&str>,
    read: fn(&Row, usize) -> Result<R, StoreError>,
) -> Result<(Vec<R>, u64), StoreError> {
    let mut filters: Vec<String> = Vec::new();
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    if let Some(status) = status {
        filters.push(status.to_owned());
    }
    if !q.archived {
        filters.push("archived IS NULL".to_owned());
    }
    if let Some(name) = &q.name {
        args.push(Box::new(name.clone()));
        filters.push(format!("name = ${}", args.len()));
    }
    if let Some(search) = &q.search {
        // Each LIKE is served by its column's trigram index (3 chars or
        // more); PostgreSQL ORs the bitmaps and rechecks exactly.
        let _ = SEARCH_INDEX_MIN_CHARS;
        args.push(Box::new(contains_pattern(search)));
        let p = args.len();
        // UUIDs have no trigram index since version 9: a search that
        // could be part of one scans them, any other cannot match one.
        let uuids = if could_be_in_uuid(search) {
            format!(" OR uuid::text LIKE ${p}")
        } else {
            String::new()
        };
        filters.push(format!("(name_folded LIKE ${p} OR slug LIKE ${p}{uuids})"));
    }
    let where_sql = where_clause(&filters);
    let order = list_order(q);
    let count = match cheap {
        Some(sql) => format!("({sql})"),
        None => format!("(SELECT count(*) FROM {table}{where_sql})"),
    };
    let n = args.len();
    let (limit, offset) = (n + 1, n + 2);
    // The count's one row, joined to the page's rows: a page past the end
    // is that row alone (its `page_id` NULL), and still carries the count.
    let sql = format!(
        "WITH page (page_id) AS (
             SELECT id FROM {table}{where_sql}
             ORDER BY {order} LIMIT ${limit} OFFSET ${offset})
         SELECT total.n, page_id, {columns}
           FROM (SELECT {count}) AS total (n)
           LEFT JOIN ({table} JOIN page ON page_id = id) ON true
          ORDER BY {order}"
    );
    let limit = i64::from(q.per_page);
    let offset = i64::try_from(q.offset()).unwrap_or(i64::MAX);
    let mut page_args = params(&args);
    page_args.push(&limit);
    page_args.push(&offset);
    let stmt = client.prepare_cached(&sql).await?;
    let rows = client.query(&stmt, &page_args).await?;
    let mut total = 0;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        total = row.try_get::<_, Option<i64>>(0)?.unwrap_or(0);
        if row.try_get::<_, Option<i64>>(1)?.is_some() {
            items.push(read(row, 2)?);
        }
    }
    Ok((items, u64::try_from(total).unwrap_or(0)))
}

#[cfg(test)]
mod unit {
    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(super::contains_pattern("a%b_c\\d"), "%a\\%b\\_c\\\\d%");
        assert_eq!(super::contains_pattern(""), "%%");
    }
}
