//! Hardware specs, and the specs each runner offers.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::audit::{Actor, record};
use super::items::{self, Common, CommonChanges, Item, is_unique_violation};
use super::model::{
    AuditAction, Kind, NewSpec, RunnerRef, Runners, SpecChanges, SpecRef, SpecRow, Specs,
};
use super::{Store, StoreError, now, opt_time_at, time_at, to_text, uuid_at};
use crate::validate::ListQuery;

/// A column of an integer that is never negative (the table's CHECK).
fn unsigned_at<T: TryFrom<i64>>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T::Error: std::error::Error + Send + Sync + 'static,
{
    T::try_from(row.get::<_, i64>(idx)?).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Integer, e.into())
    })
}

impl Item for Specs {
    type Row = SpecRow;
    const KIND: Kind = Kind::Spec;
    const TABLE: &'static str = "specs";
    const COLUMNS: &'static str = "uuid, name, slug, architecture, os, cpu, memory, disk, \
                                   network, sandbox, fallback, archived, created, modified";
    const CREATED: AuditAction = AuditAction::SpecCreate;
    const UPDATED: AuditAction = AuditAction::SpecUpdate;

    fn row_at(row: &Row<'_>, at: usize) -> rusqlite::Result<SpecRow> {
        Ok(SpecRow {
            uuid: uuid_at(row, at)?,
            name: row.get(at + 1)?,
            slug: row.get(at + 2)?,
            architecture: row.get(at + 3)?,
            os: row.get(at + 4)?,
            cpu: unsigned_at(row, at + 5)?,
            memory: unsigned_at(row, at + 6)?,
            disk: unsigned_at(row, at + 7)?,
            network: row.get(at + 8)?,
            sandbox: row.get(at + 9)?,
            fallback: opt_time_at(row, at + 10)?,
            archived: opt_time_at(row, at + 11)?,
            created: time_at(row, at + 12)?,
            modified: time_at(row, at + 13)?,
        })
    }

    fn common(row: &mut SpecRow) -> Common<'_> {
        items::common_fields!(row)
    }

    fn own_columns(row: &SpecRow) -> Vec<(&'static str, Value)> {
        vec![("fallback", row.fallback.map(to_text).into())]
    }
}

/// Clears the fallback of every spec but `except`, with an audit row for
/// each spec whose fallback it clears (at most one: a unique index), so
/// that the fallback moving from one spec to another is recorded on both.
fn clear_fallback(conn: &Connection, except: i64, actor: &Actor) -> Result<(), StoreError> {
    let cleared = conn
        .prepare_cached(
            "UPDATE specs SET fallback = NULL, modified = ? WHERE fallback IS NOT NULL AND id != ?
             RETURNING uuid, slug",
        )?
        .query_map(params![to_text(now()), except], |r| {
            Ok((uuid_at(r, 0)?, r.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (uuid, slug) in cleared {
        record(
            conn,
            actor,
            AuditAction::SpecUpdate,
            Some(uuid),
            Some(&slug),
            serde_json::json!({ "fallback": null }),
        )?;
    }
    Ok(())
}

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

impl Store {
    /// One spec, by slug or UUID.
    pub async fn spec(&self, r: &SpecRef) -> Result<SpecRow, StoreError> {
        let r = r.clone();
        self.read(move |c| items::find(c, &r).map(|(_, spec)| spec))
            .await
    }

    /// One page of specs matching `q`, and how many match in all.
    pub async fn list_specs(&self, q: ListQuery) -> Result<(Vec<SpecRow>, u64), StoreError> {
        self.scan(move |c| items::list::<Specs>(c, &q)).await
    }

    /// Creates a spec; with `fallback`, it becomes the fallback and no other
    /// spec is.
    pub async fn create_spec(&self, new: NewSpec, actor: &Actor) -> Result<SpecRow, StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let created = to_text(now());
            if new.fallback {
                clear_fallback(tx, 0, &actor)?;
            }
            let columns = Specs::COLUMNS;
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO specs (uuid, name, name_folded, slug, architecture, os, cpu, memory,
                                    disk, network, sandbox, fallback, created, modified)
                 VALUES (?1, ?2, fold(?2), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)
                 RETURNING {columns}"
            ))?;
            // Memory and disk are at most i64::MAX by their rule (Bytes).
            let (memory, disk) = (new.memory.get() as i64, new.disk.get() as i64);
            let attempt = |slug: &str| {
                insert.query_row(
                    params![
                        Uuid::new_v4().to_string(),
                        &*new.name,
                        slug,
                        new.architecture,
                        new.os,
                        new.cpu.get(),
                        memory,
                        disk,
                        new.network,
                        new.sandbox,
                        new.fallback.then_some(created.as_str()),
                        created,
                    ],
                    |r| Specs::row_at(r, 0),
                )
            };
            items::create::<Specs>(tx, &actor, new.slug.as_deref(), &new.name, attempt)
        })
        .await
    }

    /// Applies `changes` to a spec in one transaction. Archiving clears the
    /// fallback (and wins over `fallback: true` in the same update); making
    /// a spec the fallback clears it on every other.
    pub async fn update_spec(
        &self,
        r: SpecRef,
        changes: SpecChanges,
        actor: &Actor,
    ) -> Result<SpecRow, StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let common = CommonChanges {
                name: changes.name,
                slug: changes.slug,
                archived: changes.archived,
            };
            let fallback = |id, current: &SpecRow, next: &mut SpecRow, stamp| {
                match changes.fallback {
                    Some(true) if changes.archived == Some(true) => {
                        // Archived, and so no fallback at all: clear the others.
                        clear_fallback(tx, id, &actor)?;
                    }
                    Some(true) if next.archived.is_some() => {
                        return Err(StoreError::SpecArchived(current.slug.clone()));
                    }
                    Some(true) => {
                        clear_fallback(tx, id, &actor)?;
                        next.fallback = current.fallback.or(Some(stamp));
                    }
                    Some(false) => next.fallback = None,
                    None => {}
                }
                if next.archived.is_some() {
                    next.fallback = None;
                }
                Ok(())
            };
            items::update(tx, &actor, &r, common, fallback)
        })
        .await
    }

    /// Deletes a spec that no runner has.
    pub async fn delete_spec(&self, r: SpecRef, actor: &Actor) -> Result<(), StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let (id, spec) = items::find(tx, &r)?;
            let user: Option<String> = tx
                .prepare_cached(
                    "SELECT r.slug FROM runner_specs rs JOIN runners r ON r.id = rs.runner_id
                     WHERE rs.spec_id = ? ORDER BY rs.id LIMIT 1",
                )?
                .query_row([id], |r| r.get(0))
                .optional()?;
            if let Some(runner) = user {
                return Err(StoreError::SpecInUse {
                    spec: spec.slug,
                    runner,
                });
            }
            tx.prepare_cached("DELETE FROM specs WHERE id = ?")?
                .execute([id])?;
            record(
                tx,
                &actor,
                AuditAction::SpecDelete,
                Some(spec.uuid),
                Some(&spec.slug),
                serde_json::json!({}),
            )?;
            Ok(())
        })
        .await
    }

    /// The specs of a runner, in the order they were added.
    pub async fn runner_specs(&self, r: &RunnerRef) -> Result<Vec<SpecRow>, StoreError> {
        let r = r.clone();
        self.read(move |c| {
            let tx = c.unchecked_transaction()?;
            let (id, _) = items::find(&tx, &r)?;
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
    pub async fn add_runner_spec(
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
            Ok(spec)
        })
        .await
    }

    /// Removes a spec from a runner.
    pub async fn remove_runner_spec(
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
            Ok(())
        })
        .await
    }
}
