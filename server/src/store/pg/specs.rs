//! Hardware specs on PostgreSQL (the twin of `../sqlite/specs.rs`). The
//! fallback: every write that sets it takes [`FALLBACK_LOCK`] first, so
//! that clearing the others and setting one run one after the other across
//! replicas; the unique index `specs_one_fallback` stays the backstop.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::item::{Param, PgItem};
use super::items::{find, list_items};
use super::{PgStore, StoreError, Tx, now, record};
use crate::store::model::new_uuid;
use crate::store::model::{
    Actor, AuditAction, Change, Kind, NewSpec, SpecChanges, SpecRef, SpecRow, Specs, changes,
};
use crate::store::operations::SpecOps;
use crate::validate::{ListQuery, generated_slug, slug_from_name};

/// The advisory lock of every change of the fallback spec.
pub const FALLBACK_LOCK: i64 = 0x7275_6e6e_6572_7302;

pub(super) const COLUMNS: &str = "uuid, name, slug, architecture, os, cpu, memory, disk, \
                       network, sandbox, fallback, archived, created, modified";

/// Tries to find a free generated slug before giving up (as SQLite).
const GENERATED_SLUG_ATTEMPTS: usize = 8;

impl PgItem for Specs {
    const COLUMNS: &'static str = COLUMNS;

    /// Every change of the fallback takes [`FALLBACK_LOCK`] before any row
    /// lock.
    async fn before_lock(tx: &Tx<'_>, changes: &SpecChanges) -> Result<(), StoreError> {
        if changes.fallback == Some(true) {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FALLBACK_LOCK])
                .await?;
        }
        Ok(())
    }

    /// The fallback's rule ([`SpecChanges::apply_fallback`]).
    async fn apply_more(
        tx: &Tx<'_>,
        actor: &Actor,
        mut change: Change<'_, Specs>,
    ) -> Result<(), StoreError> {
        if SpecChanges::apply_fallback(&mut change)? {
            clear_fallback(tx, change.id, actor).await?;
        }
        Ok(())
    }

    fn own_columns(row: &SpecRow) -> Vec<(&'static str, Param)> {
        vec![("fallback", Box::new(row.fallback))]
    }
}

/// Clears the fallback of every spec but `except`, with an audit row for
/// each (at most one), under [`FALLBACK_LOCK`].
async fn clear_fallback(tx: &Tx<'_>, except: i64, actor: &Actor) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FALLBACK_LOCK])
        .await?;
    let cleared = tx
        .query(
            "UPDATE specs SET fallback = NULL, modified = $1
             WHERE fallback IS NOT NULL AND id <> $2 RETURNING uuid, slug",
            &[&now(), &except],
        )
        .await?;
    for row in cleared {
        let (uuid, slug): (Uuid, String) = (row.try_get(0)?, row.try_get(1)?);
        record(
            tx,
            actor,
            AuditAction::SpecUpdate,
            Some(uuid),
            Some(&slug),
            serde_json::json!({ "fallback": null }),
        )
        .await?;
    }
    Ok(())
}

impl SpecOps for PgStore {
    /// One page of specs matching `q`, and how many match in all (one
    /// statement: one snapshot for both).
    async fn list_specs(&self, q: ListQuery) -> Result<(Vec<SpecRow>, u64), StoreError> {
        let client = self.client().await?;
        list_items::<Specs>(&client, &q).await
    }

    /// Creates a spec; with `fallback`, it becomes the fallback and no other
    /// spec is.
    async fn create_spec(&self, new: NewSpec, actor: &Actor) -> Result<SpecRow, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let created = now();
        if new.fallback {
            clear_fallback(&tx, 0, actor).await?;
        }
        let stmt = tx
            .prepare_cached(&format!(
                "INSERT INTO specs (uuid, name, name_folded, slug, architecture, os, cpu, memory,
                                    disk, network, sandbox, fallback, created, modified)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
                 ON CONFLICT (slug) DO NOTHING
                 RETURNING {COLUMNS}"
            ))
            .await?;
        let name: &str = &new.name;
        let folded = name.to_lowercase();
        let (architecture, os) = (new.architecture.as_str(), new.os.as_str());
        let sandbox = new.sandbox.map(|s| s.as_str());
        let cpu = i32::try_from(new.cpu.get()).unwrap_or(i32::MAX);
        // Memory and disk are at most i64::MAX by their rule (Bytes).
        let (memory, disk) = (new.memory.get() as i64, new.disk.get() as i64);
        let fallback: Option<DateTime<Utc>> = new.fallback.then_some(created);
        let insert = async |slug: String| -> Result<Option<SpecRow>, StoreError> {
            let row = tx
                .query_opt(
                    &stmt,
                    &[
                        &new_uuid(),
                        &name,
                        &folded,
                        &slug,
                        &architecture,
                        &os,
                        &cpu,
                        &memory,
                        &disk,
                        &new.network,
                        &sandbox,
                        &fallback,
                        &created,
                    ],
                )
                .await?;
            row.map(|r| Specs::row_at(&r, 0)).transpose()
        };
        let row = match new.slug.as_deref() {
            Some(slug) => insert(slug.to_owned())
                .await?
                .ok_or_else(|| StoreError::SlugTaken {
                    kind: Kind::Spec,
                    slug: slug.to_owned(),
                })?,
            None => {
                let base = slug_from_name(name);
                let mut found = None;
                for i in 0..GENERATED_SLUG_ATTEMPTS {
                    let slug = generated_slug(base.as_deref(), Kind::Spec.name(), i);
                    if let Some(row) = insert(slug).await? {
                        found = Some(row);
                        break;
                    }
                }
                found.ok_or(StoreError::NoFreeSlug(GENERATED_SLUG_ATTEMPTS))?
            }
        };
        record(
            &tx,
            actor,
            AuditAction::SpecCreate,
            Some(row.uuid),
            Some(&row.slug),
            changes(None, &row),
        )
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Deletes a spec that no runner has and no job names.
    async fn delete_spec(&self, r: SpecRef, actor: &Actor) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let (id, spec) = find::<Specs>(&tx, &r, true).await?;
        let user = tx
            .query_opt(
                "SELECT r.slug FROM runner_specs rs JOIN runners r ON r.id = rs.runner_id
                 WHERE rs.spec_id = $1 ORDER BY rs.id LIMIT 1",
                &[&id],
            )
            .await?;
        if let Some(user) = user {
            return Err(StoreError::SpecInUse {
                spec: spec.slug,
                runner: user.try_get(0)?,
            });
        }
        let job = tx
            .query_opt(
                "SELECT uuid FROM jobs WHERE spec_id = $1 ORDER BY id LIMIT 1",
                &[&id],
            )
            .await?;
        if let Some(job) = job {
            return Err(StoreError::SpecHasJobs {
                spec: spec.slug,
                job: job.try_get(0)?,
            });
        }
        tx.execute("DELETE FROM specs WHERE id = $1", &[&id])
            .await?;
        record(
            &tx,
            actor,
            AuditAction::SpecDelete,
            Some(spec.uuid),
            Some(&spec.slug),
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
