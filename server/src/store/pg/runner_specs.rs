//! The specs of each runner on PostgreSQL; the twin of
//! `../sqlite/runner_specs.rs`.

use uuid::Uuid;

use super::item::PgItem;
use super::items::find;
use super::{PgStore, StoreError, Tx, record, unique_violation};
use crate::store::model::events::Event;
use crate::store::model::{Actor, AuditAction, Kind, RunnerRef, SpecRef, SpecRow, Specs};
use crate::store::operations::RunnerSpecOps;
use crate::store::rules::Pairing;
use crate::validate::Ref;

/// A runner's row id, UUID and slug.
async fn find_runner(tx: &Tx<'_>, r: &RunnerRef) -> Result<(i64, Uuid, String), StoreError> {
    let row = match r.by() {
        Ref::Uuid(uuid) => {
            tx.query_opt(
                "SELECT id, uuid, slug FROM runners WHERE uuid = $1",
                &[uuid],
            )
            .await?
        }
        Ref::Slug(slug) => {
            tx.query_opt(
                "SELECT id, uuid, slug FROM runners WHERE slug = $1",
                &[slug],
            )
            .await?
        }
    };
    let row = row.ok_or_else(|| StoreError::NotFound {
        kind: Kind::Runner,
        by: r.by().clone(),
    })?;
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}

impl RunnerSpecOps for PgStore {
    /// The specs of a runner, in the order they were added.
    async fn runner_specs(&self, r: &RunnerRef) -> Result<Vec<SpecRow>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.build_transaction().read_only(true).start().await?;
        let (id, _, _) = find_runner(&tx, r).await?;
        let rows = tx
            .query(
                &format!(
                    "SELECT {} FROM specs JOIN runner_specs rs ON rs.spec_id = specs.id
                     WHERE rs.runner_id = $1 ORDER BY rs.id",
                    Specs::COLUMNS
                ),
                &[&id],
            )
            .await?;
        tx.commit().await?;
        rows.iter().map(|r| Specs::row_at(r, 0)).collect()
    }

    /// Adds a spec to a runner (archived or not, both of them); waiting
    /// runners on every replica hear of it.
    async fn add_runner_spec(
        &self,
        (runner, spec): (RunnerRef, SpecRef),
        actor: &Actor,
    ) -> Result<SpecRow, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let (ids, pairing) = pairing(&tx, &runner, &spec).await?;
        tx.execute(
            "INSERT INTO runner_specs (runner_id, spec_id) VALUES ($1, $2)",
            &[&ids.0, &ids.1],
        )
        .await
        .map_err(|e| match unique_violation(&e) {
            Some("runner_specs_runner_id_spec_id_key") => pairing.taken(),
            _ => e.into(),
        })?;
        paired(tx, actor, AuditAction::RunnerSpecAdd, &pairing).await?;
        Ok(pairing.spec)
    }

    async fn remove_runner_spec(
        &self,
        (runner, spec): (RunnerRef, SpecRef),
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let (ids, pairing) = pairing(&tx, &runner, &spec).await?;
        let removed = tx
            .execute(
                "DELETE FROM runner_specs WHERE runner_id = $1 AND spec_id = $2",
                &[&ids.0, &ids.1],
            )
            .await?;
        if removed == 0 {
            return Err(pairing.missing());
        }
        paired(tx, actor, AuditAction::RunnerSpecRemove, &pairing).await
    }
}

/// The runner's and the spec's row ids, and the pairing of the two.
async fn pairing(
    tx: &Tx<'_>,
    runner: &RunnerRef,
    spec: &SpecRef,
) -> Result<((i64, i64), Pairing), StoreError> {
    let (runner_id, runner, runner_slug) = find_runner(tx, runner).await?;
    let (spec_id, spec) = find::<Specs>(tx, spec, false).await?;
    let pairing = Pairing {
        runner,
        runner_slug,
        spec,
    };
    Ok(((runner_id, spec_id), pairing))
}

/// Records the pairing's audit row, tells every replica, and commits.
async fn paired(
    tx: Tx<'_>,
    actor: &Actor,
    action: AuditAction,
    pairing: &Pairing,
) -> Result<(), StoreError> {
    let (runner, slug) = (pairing.runner, &pairing.runner_slug);
    record(
        &tx,
        actor,
        action,
        Some(runner),
        Some(slug),
        pairing.audited(),
    )
    .await?;
    super::events::notify(&tx, &Event::RunnerSpecsChanged { runner }).await?;
    tx.commit().await?;
    Ok(())
}
