//! The audit trail on PostgreSQL: written in each write's transaction
//! ([`record`]), read oldest first. The twin of `../sqlite/audit.rs`.

use uuid::Uuid;

use super::{PgStore, StoreError, Tx, now};
use crate::store::model::{Actor, AuditAction, AuditQuery, AuditRow};
use crate::store::operations::AuditOps;

/// Appends one audit row by `actor`, in the caller's transaction (the
/// twin of `audit::record`).
pub(super) async fn record(
    tx: &Tx<'_>,
    actor: &Actor,
    action: AuditAction,
    target_uuid: Option<Uuid>,
    target_slug: Option<&str>,
    changes: serde_json::Value,
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO audit (time, user_uuid, user_name, token_uuid, action, target_uuid,
                                target_slug, changes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &now(),
            &actor.user,
            &actor.user_name,
            &actor.token,
            &action.as_str(),
            &target_uuid,
            &target_slug,
            &changes,
        ],
    )
    .await?;
    Ok(())
}

impl AuditOps for PgStore {
    async fn audit(&self, q: AuditQuery) -> Result<(Vec<AuditRow>, u64), StoreError> {
        let about_runners: Vec<&str> = AuditAction::ALL
            .iter()
            .filter(|a| a.is_about_a_runner())
            .map(|a| a.as_str())
            .collect();
        let client = self.client().await?;
        let filter = "FROM audit
             WHERE ($1::timestamptz IS NULL OR time >= $1) AND ($2::text IS NULL OR (action = ANY($3)
                 AND target_uuid IN (
                     SELECT target_uuid FROM audit
                     WHERE target_uuid::text = $2 OR target_slug = $2
                     UNION SELECT uuid FROM runners WHERE slug = $2)))
               AND ($4::text IS NULL OR action = $4 OR left(action, length($4) + 1) = $4 || '.')";
        let (offset, limit) = q.offset_limit();
        let rows = client
            .query(
                &format!(
                    "SELECT time, user_name, user_uuid::text, token_uuid::text, action,
                            target_uuid::text, target_slug, changes
                     {filter} ORDER BY id {} LIMIT $5 OFFSET $6",
                    q.order()
                ),
                &[
                    &q.since,
                    &q.runner,
                    &about_runners,
                    &q.action,
                    &limit,
                    &offset,
                ],
            )
            .await?;
        let rows = rows.iter().map(AuditRow::read).collect::<Result<_, _>>()?;
        let total: i64 = client
            .query_one(
                &format!("SELECT count(*) {filter}"),
                &[&q.since, &q.runner, &about_runners, &q.action],
            )
            .await?
            .get(0);
        Ok((rows, u64::try_from(total).unwrap_or(0)))
    }
}
