//! What runners and specs share on PostgreSQL: the paged, filtered list
//! with its count and search, and statement parameters.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::StoreError;
use crate::validate::{Direction, ListQuery, Sort};

/// Shortest `search` the trigram indexes serve (as SQLite's).
const SEARCH_INDEX_MIN_CHARS: usize = super::super::SEARCH_INDEX_MIN_CHARS;

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
pub(super) async fn list<R>(
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
        let uuids = if super::super::items::could_be_in_uuid(search) {
            format!(" OR uuid::text LIKE ${p}")
        } else {
            String::new()
        };
        filters.push(format!("(name_folded LIKE ${p} OR slug LIKE ${p}{uuids})"));
    }
    let mut where_sql = String::new();
    for (i, filter) in filters.iter().enumerate() {
        where_sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        where_sql.push_str(filter);
    }
    let order = match (q.sort, q.direction) {
        (Sort::Name, Direction::Asc) => "name ASC, slug ASC",
        (Sort::Name, Direction::Desc) => "name DESC, slug DESC",
        (Sort::Created, Direction::Asc) => "id ASC",
        (Sort::Created, Direction::Desc) => "id DESC",
    };
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
