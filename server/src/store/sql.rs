//! SQL text both dialects share: a list's order, a runner's status, and
//! when a search may use the trigram indexes.

use crate::validate::{Direction, ListQuery, Sort};

/// Shortest `search` the trigram indexes serve; shorter ones scan.
pub const SEARCH_INDEX_MIN_CHARS: usize = 3;

/// Whether `search` (case-folded) can be part of a UUID's text: only
/// lowercase hexadecimal digits and hyphens. Any other search cannot match
/// a UUID, so neither engine looks at UUIDs for it.
pub fn could_be_in_uuid(search: &str) -> bool {
    search
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
}

/// The `ORDER BY` of a list of items (`name`, then `slug`; or `id`, the
/// order of creation).
pub fn list_order(q: &ListQuery) -> &'static str {
    match (q.sort, q.direction) {
        (Sort::Name, Direction::Asc) => "name ASC, slug ASC",
        (Sort::Name, Direction::Desc) => "name DESC, slug DESC",
        (Sort::Created, Direction::Asc) => "id ASC",
        (Sort::Created, Direction::Desc) => "id DESC",
    }
}

/// The condition of a runners list's `status` filter (a runner is busy
/// with a job claimed or running, else idle with its channel open, else
/// offline), over the `runners` table.
pub fn runner_status_filter(status: &str) -> Option<&'static str> {
    const BUSY: &str = "EXISTS (SELECT 1 FROM jobs WHERE jobs.runner_id = runners.id \
                        AND jobs.status IN ('claimed', 'running'))";
    Some(match status {
        "busy" => BUSY,
        "idle" => {
            "channel IS NOT NULL AND NOT EXISTS (SELECT 1 FROM jobs \
                   WHERE jobs.runner_id = runners.id AND jobs.status IN ('claimed', 'running'))"
        }
        "offline" => {
            "channel IS NULL AND NOT EXISTS (SELECT 1 FROM jobs \
                      WHERE jobs.runner_id = runners.id AND jobs.status IN ('claimed', 'running'))"
        }
        _ => return None,
    })
}

/// The `WHERE` of a list, from its filters (none: empty).
pub fn where_clause(filters: &[String]) -> String {
    let mut sql = String::new();
    for (i, filter) in filters.iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        sql.push_str(filter);
    }
    sql
}

/// A user's columns as [`crate::store::model::UserRow`] reads them (table
/// alias `u`).
pub const USER_COLUMNS: &str = "u.uuid, u.name, u.admin";

/// A key's columns as [`crate::store::model::KeyRow`] reads them (table
/// alias `k`; its owner's UUID from its project or its user).
pub const KEY_COLUMNS: &str = "k.uuid, coalesce((SELECT uuid FROM projects WHERE id = k.project_id), \
     (SELECT uuid FROM users WHERE id = k.user_id)), k.name, k.creator, k.created, k.expires, \
     k.revoked";

/// A report's columns as [`crate::store::model::ReportRow`] reads them,
/// over [`REPORT_FROM`].
pub const REPORT_COLUMNS: &str = "r.uuid, r.adapter, r.start_time, r.end_time, \
     (SELECT uuid FROM jobs WHERE jobs.id = r.job_id), r.results, r.created, u.uuid, u.name, \
     u.admin, p.uuid, p.name, p.slug, p.url, p.visibility, p.archived, p.created, p.modified, \
     b.uuid, b.name, b.slug, b.units, b.created, t.uuid, t.name, t.slug, t.units, t.created";

/// [`REPORT_COLUMNS`], or without the results (`null`, the dialect's typed
/// NULL, in their place) for a list that does not expand them: a page
/// never even reads them.
pub fn report_columns(results: bool, null: &str) -> String {
    if results {
        REPORT_COLUMNS.to_owned()
    } else {
        REPORT_COLUMNS.replacen("r.results", null, 1)
    }
}

/// The tables a report is read from (`r`, its project `p`, user `u`,
/// branch `b` and testbed `t`).
pub const REPORT_FROM: &str = "reports r JOIN projects p ON p.id = r.project_id \
     LEFT JOIN users u ON u.id = r.user_id JOIN project_names b ON b.id = r.branch_id \
     JOIN project_names t ON t.id = r.testbed_id";
