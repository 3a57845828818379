//! The specs each runner offers: a runner's specs, adding one, removing one
//! (recorded under the runner).

use rusqlite::Connection;

use super::SqliteStore;
use super::audit::record;
use super::item::SqliteItem;
use super::items::{self, is_unique_violation};
use crate::store::error::StoreError;
use crate::store::model::events::Event;
use crate::store::model::{Actor, AuditAction, RunnerRef, Runners, SpecRef, SpecRow, Specs};
use crate::store::operations::RunnerSpecOps;
use crate::store::rules::Pairing;

/// The runner's and the spec's row ids, and the pairing of the two.
fn pairing(
    conn: &Connection,
    runner: &RunnerRef,
    spec: &SpecRef,
) -> Result<([i64; 2], Pairing), StoreError> {
    let runner = items::identify::<Runners>(conn, runner)?;
    let (spec_id, spec) = items::find::<Specs>(conn, spec)?;
    let pairing = Pairing {
        runner: runner.uuid,
        runner_slug: runner.slug,
        spec,
    };
    Ok(([runner.id, spec_id], pairing))
}

impl RunnerSpecOps for SqliteStore {
    /// The specs of a runner, in the order they were added.
    async fn runner_specs(&self, r: &RunnerRef) -> Result<Vec<SpecRow>, StoreError> {
        let r = r.clone();
        self.read(move |c| {
            let tx = c.unchecked_transaction()?;
            let id = items::identify(&tx, &r)?.id;
            let columns = Specs::COLUMNS;
            let specs = tx
                .prepare_cached(&format!(
                    "SELECT {columns} FROM specs JOIN runner_specs rs ON rs.spec_id = specs.id
                     WHERE rs.runner_id = ? ORDER BY rs.id"
                ))?
                .query_map([id], |r| Specs::row_at(r, 0))?
                .collect::<Result<_, _>>()?;
            tx.commit()?;
            Ok(specs)
        })
        .await
    }

    /// Adds a spec to a runner (archived or not, both of them).
    async fn add_runner_spec(
        &self,
        (runner, spec): (RunnerRef, SpecRef),
        actor: &Actor,
    ) -> Result<SpecRow, StoreError> {
        let actor = actor.clone();
        let pairing = self
            .write(move |tx| {
                let (ids, pairing) = pairing(tx, &runner, &spec)?;
                tx.prepare_cached("INSERT INTO runner_specs (runner_id, spec_id) VALUES (?, ?)")?
                    .execute(ids)
                    // The only unique index: (runner_id, spec_id).
                    .map_err(|e| match is_unique_violation(&e) {
                        true => pairing.taken(),
                        false => e.into(),
                    })?;
                let (uuid, slug) = (Some(pairing.runner), Some(pairing.runner_slug.as_str()));
                record(
                    tx,
                    &actor,
                    AuditAction::RunnerSpecAdd,
                    uuid,
                    slug,
                    pairing.audited(),
                )?;
                Ok(pairing)
            })
            .await?;
        let Pairing { runner, spec, .. } = pairing;
        self.publish(Event::RunnerSpecsChanged { runner });
        Ok(spec)
    }

    async fn remove_runner_spec(
        &self,
        (runner, spec): (RunnerRef, SpecRef),
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let actor = actor.clone();
        let runner = self
            .write(move |tx| {
                let (ids, pairing) = pairing(tx, &runner, &spec)?;
                let removed = tx
                    .prepare_cached("DELETE FROM runner_specs WHERE runner_id = ? AND spec_id = ?")?
                    .execute(ids)?;
                if removed == 0 {
                    return Err(pairing.missing());
                }
                let (uuid, slug) = (Some(pairing.runner), Some(pairing.runner_slug.as_str()));
                record(
                    tx,
                    &actor,
                    AuditAction::RunnerSpecRemove,
                    uuid,
                    slug,
                    pairing.audited(),
                )?;
                Ok(pairing.runner)
            })
            .await?;
        self.publish(Event::RunnerSpecsChanged { runner });
        Ok(())
    }
}
