//! The specs each runner offers: a runner's specs, adding one, removing one
//! (recorded under the runner).

use rusqlite::Connection;
use uuid::Uuid;

use super::SqliteStore;
use super::audit::record;
use super::item::SqliteItem;
use super::items::{self, is_unique_violation};
use crate::store::error::StoreError;
use crate::store::model::events::Event;
use crate::store::model::{Actor, AuditAction, RunnerRef, Runners, SpecRef, SpecRow, Specs};
use crate::store::operations::RunnerSpecOps;

/// A runner (its row id, UUID and slug: what an audit row of the pair
/// names) and a spec (its row id and row), both by reference.
type RunnerAndSpec = ((i64, Uuid, String), (i64, SpecRow));

fn runner_and_spec(
    conn: &Connection,
    runner: &RunnerRef,
    spec: &SpecRef,
) -> Result<RunnerAndSpec, StoreError> {
    let (runner_id, runner) = items::find::<Runners>(conn, runner)?;
    let spec = items::find::<Specs>(conn, spec)?;
    Ok(((runner_id, runner.uuid, runner.slug), spec))
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
        runner: RunnerRef,
        spec: SpecRef,
        actor: &Actor,
    ) -> Result<SpecRow, StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let ((runner_id, runner, slug), (spec_id, spec)) = runner_and_spec(tx, &runner, &spec)?;
            tx.prepare_cached("INSERT INTO runner_specs (runner_id, spec_id) VALUES (?, ?)")?
                .execute([runner_id, spec_id])
                .map_err(|e| {
                    // The only unique index: (runner_id, spec_id).
                    if is_unique_violation(&e) {
                        StoreError::RunnerHasSpec {
                            runner: slug.clone(),
                            spec: spec.slug.clone(),
                        }
                    } else {
                        e.into()
                    }
                })?;
            let pair = serde_json::json!({"spec": spec.uuid, "spec_slug": spec.slug});
            record(
                tx,
                &actor,
                AuditAction::RunnerSpecAdd,
                Some(runner),
                Some(&slug),
                pair,
            )?;
            Ok((runner, spec))
        })
        .await
        .map(|(runner, spec)| {
            self.publish(Event::RunnerSpecsChanged { runner });
            spec
        })
    }

    /// Removes a spec from a runner.
    async fn remove_runner_spec(
        &self,
        runner: RunnerRef,
        spec: SpecRef,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let ((runner_id, runner, slug), (spec_id, spec)) = runner_and_spec(tx, &runner, &spec)?;
            let removed = tx
                .prepare_cached("DELETE FROM runner_specs WHERE runner_id = ? AND spec_id = ?")?
                .execute([runner_id, spec_id])?;
            if removed == 0 {
                return Err(StoreError::RunnerLacksSpec {
                    runner: slug,
                    spec: spec.slug,
                });
            }
            let pair = serde_json::json!({"spec": spec.uuid, "spec_slug": spec.slug});
            record(
                tx,
                &actor,
                AuditAction::RunnerSpecRemove,
                Some(runner),
                Some(&slug),
                pair,
            )?;
            Ok(runner)
        })
        .await
        .map(|runner| self.publish(Event::RunnerSpecsChanged { runner }))
    }
}
