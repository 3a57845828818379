//! Hardware specs on SQLite.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};

use super::audit::{record, record_delete};
use super::item::SqliteItem;
use super::items;
use super::{SqliteStore, to_text, uuid_at};
use crate::store::error::StoreError;
use crate::store::model::{
    Actor, AuditAction, Change, NewSpec, SpecChanges, SpecRef, SpecRow, Specs,
};
use crate::store::model::{new_uuid, now};
use crate::store::operations::SpecOps;
use crate::validate::ListQuery;

impl SqliteItem for Specs {
    const COLUMNS: &'static str = "uuid, name, slug, architecture, os, cpu, memory, disk, \
                                   network, sandbox, fallback, archived, created, modified";

    /// The fallback's rule ([`SpecChanges::apply_fallback`]); making a
    /// spec the fallback clears it on every other.
    fn apply_more(
        conn: &Connection,
        actor: &Actor,
        mut change: Change<'_, Specs>,
    ) -> Result<(), StoreError> {
        if SpecChanges::apply_fallback(&mut change)? {
            clear_fallback(conn, change.id, actor)?;
        }
        Ok(())
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

impl SpecOps for SqliteStore {
    /// One page of specs matching `q`, and how many match in all.
    async fn list_specs(&self, q: ListQuery) -> Result<(Vec<SpecRow>, u64), StoreError> {
        self.scan(move |c| items::list::<Specs>(c, &q)).await
    }

    /// Creates a spec; with `fallback`, it becomes the fallback and no other
    /// spec is.
    async fn create_spec(&self, new: NewSpec, actor: &Actor) -> Result<SpecRow, StoreError> {
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
                        new_uuid().to_string(),
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

    /// Deletes a spec that no runner has.
    async fn delete_spec(&self, r: SpecRef, actor: &Actor) -> Result<(), StoreError> {
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
            let job: Option<String> = tx
                .prepare_cached("SELECT uuid FROM jobs WHERE spec_id = ? ORDER BY id LIMIT 1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            if let Some(job) = job {
                return Err(StoreError::SpecHasJobs {
                    spec: spec.slug,
                    job: uuid::Uuid::try_parse(&job).unwrap_or_default(),
                });
            }
            tx.prepare_cached("DELETE FROM specs WHERE id = ?")?
                .execute([id])?;
            record_delete(tx, &actor, AuditAction::SpecDelete, (spec.uuid, &spec.slug))?;
            Ok(())
        })
        .await
    }
}
