//! The audit trail: who changed what, written in the transaction of the
//! change itself, so that an acknowledged write always has its row and a
//! failed one never does.

use chrono::Datelike as _;
use rusqlite::{Connection, params};
use uuid::Uuid;

use super::{SqliteStore, to_text};
use crate::store::error::StoreError;
use crate::store::model::now;
use crate::store::model::{Actor, AuditAction, AuditQuery, AuditRow};
use crate::store::operations::AuditOps;

/// Appends one row by `actor`, in the caller's transaction: what was done,
/// to what, and the fields of the store's row that changed, with their new
/// values (never a secret).
pub(super) fn record(
    conn: &Connection,
    actor: &Actor,
    action: AuditAction,
    target_uuid: Option<Uuid>,
    target_slug: Option<&str>,
    changes: serde_json::Value,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (time, user_uuid, user_name, token_uuid, action, target_uuid,
                            target_slug, changes)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        to_text(now()),
        actor.user.map(|u| u.to_string()),
        actor.user_name,
        actor.token.map(|t| t.to_string()),
        action,
        target_uuid.map(|u| u.to_string()),
        target_slug,
        changes.to_string(),
    ])
    .map(drop)
}

/// The audit row of an item deleted (its UUID and slug; no fields).
pub(super) fn record_delete(
    conn: &Connection,
    actor: &Actor,
    action: AuditAction,
    (uuid, slug): (Uuid, &str),
) -> rusqlite::Result<()> {
    record(
        conn,
        actor,
        action,
        Some(uuid),
        Some(slug),
        serde_json::json!({}),
    )
}

impl AuditOps for SqliteStore {
    async fn audit(&self, q: AuditQuery) -> Result<(Vec<AuditRow>, u64), StoreError> {
        // Stored times are text with four-digit years, compared as text: a
        // bound past the year 9999 (`+10000-…`, which sorts before `2`)
        // matches no row. (A bound before the year 0 is none: AuditQuery.)
        let since = match q.since {
            Some(t) if t.year() > 9999 => return Ok((Vec::new(), 0)),
            Some(t) => to_text(t),
            None => String::new(),
        };
        self.scan(move |c| {
            let about_runners = AuditAction::ALL
                .iter()
                .filter(|a| a.is_about_a_runner())
                .map(|a| format!("'{}'", a.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            let filter = format!(
                "FROM audit
                 WHERE time >= ?1 AND (?2 IS NULL OR (action IN ({about_runners})
                     AND target_uuid IN (
                         SELECT target_uuid FROM audit WHERE target_uuid = ?2 OR target_slug = ?2
                         UNION SELECT uuid FROM runners WHERE slug = ?2)))
                   AND (?3 IS NULL OR action = ?3 OR substr(action, 1, length(?3) + 1) = ?3 || '.')"
            );
            let (offset, limit) = q.offset_limit();
            let mut stmt = c.prepare(&format!(
                "SELECT time, user_name, user_uuid, token_uuid, action, target_uuid, target_slug,
                        changes
                 {filter} ORDER BY id {} LIMIT ?4 OFFSET ?5",
                q.order()
            ))?;
            let (runner, action) = (&q.runner, &q.action);
            let rows = stmt.query_map(
                params![since, runner, action, limit.unwrap_or(-1), offset],
                |r| AuditRow::read(r),
            )?;
            let rows: Vec<AuditRow> = rows.collect::<Result<_, _>>()?;
            let total: i64 = c.query_row(
                &format!("SELECT count(*) {filter}"),
                params![since, runner, action],
                |r| r.get(0),
            )?;
            Ok((rows, u64::try_from(total).unwrap_or(0)))
        })
        .await
    }
}
