//! Hardware specs.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::audit::record;
use super::items::{self, Item};
use super::model::{AuditAction, Kind, NewSpec, SpecChanges, SpecRef, SpecRow, Specs};
use super::principal::Actor;
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
    type Changes = SpecChanges;
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

    items::common_fields!(SpecRow, SpecChanges);

    /// Archiving clears the fallback (and wins over `fallback: true` in
    /// the same update); making a spec the fallback clears it on every
    /// other.
    fn apply_more(
        conn: &Connection,
        actor: &Actor,
        id: i64,
        changes: SpecChanges,
        current: &SpecRow,
        next: &mut SpecRow,
        stamp: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match changes.fallback {
            Some(true) if changes.archived == Some(true) => {
                // Archived, and so no fallback at all: clear the others.
                clear_fallback(conn, id, actor)?;
            }
            Some(true) if next.archived.is_some() => {
                return Err(StoreError::SpecArchived(current.slug.clone()));
            }
            Some(true) => {
                clear_fallback(conn, id, actor)?;
                next.fallback = current.fallback.or(Some(stamp));
            }
            Some(false) => next.fallback = None,
            None => {}
        }
        if next.archived.is_some() {
            next.fallback = None;
        }
        Ok(())
    }

    fn own_columns(row: &SpecRow) -> Vec<(&'static str, Value)> {
        vec![("fallback", row.fallback.map(to_text).into())]
    }

    fn pg_item<'a>(
        pg: &'a super::pg::PgStore,
        r: &'a SpecRef,
    ) -> futures::future::BoxFuture<'a, Result<SpecRow, StoreError>> {
        Box::pin(pg.spec(r))
    }

    fn pg_update<'a>(
        pg: &'a super::pg::PgStore,
        r: SpecRef,
        changes: SpecChanges,
        actor: &'a Actor,
    ) -> futures::future::BoxFuture<'a, Result<SpecRow, StoreError>> {
        Box::pin(pg.update_spec(r, changes, actor))
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

impl Store {
    /// One page of specs matching `q`, and how many match in all.
    pub async fn list_specs(&self, q: ListQuery) -> Result<(Vec<SpecRow>, u64), StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.list_specs(q)).await;
        }
        self.scan(move |c| items::list::<Specs>(c, &q)).await
    }

    /// Creates a spec; with `fallback`, it becomes the fallback and no other
    /// spec is.
    pub async fn create_spec(&self, new: NewSpec, actor: &Actor) -> Result<SpecRow, StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.create_spec(new, actor)).await;
        }
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
                        super::new_uuid().to_string(),
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
    pub async fn delete_spec(&self, r: SpecRef, actor: &Actor) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.delete_spec(r, actor)).await;
        }
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
}
