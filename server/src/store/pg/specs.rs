//! Hardware specs and the specs of each runner on PostgreSQL (the twin of
//! `../specs.rs` and `../runner_specs.rs`). The fallback: every write that
//! sets it takes [`FALLBACK_LOCK`] first, so that clearing the others and
//! setting one run one after the other across replicas; the unique index
//! `specs_one_fallback` stays the backstop.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use super::super::events::Event;
use super::super::items::Item as _;
use super::super::model::{
    AuditAction, Kind, NewSpec, RunnerRef, SpecChanges, SpecRef, SpecRow, Specs,
};
use super::super::principal::{Actor, changes};
use super::{PgStore, StoreError, Tx, now, record, text_enum, unique_violation};
use crate::validate::{ListQuery, Ref, generated_slug, slug_from_name};

/// The advisory lock of every change of the fallback spec.
pub const FALLBACK_LOCK: i64 = 0x7275_6e6e_6572_7302;

pub(super) const COLUMNS: &str = "uuid, name, slug, architecture, os, cpu, memory, disk, \
                       network, sandbox, fallback, archived, created, modified";

/// Tries to find a free generated slug before giving up (as SQLite).
const GENERATED_SLUG_ATTEMPTS: usize = 8;

fn unsigned<T: TryFrom<i64>>(value: i64) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Task(format!("stored value {value} is negative")))
}

pub(super) fn spec_at(row: &Row, at: usize) -> Result<SpecRow, StoreError> {
    let required = |at: usize| -> Result<Option<String>, StoreError> {
        let text: Option<String> = row.try_get(at)?;
        text.map(Some)
            .ok_or_else(|| StoreError::Task("a spec's enum column is null".into()))
    };
    let missing = || StoreError::Task("a spec's enum column is null".into());
    Ok(SpecRow {
        uuid: row.try_get(at)?,
        name: row.try_get(at + 1)?,
        slug: row.try_get(at + 2)?,
        architecture: text_enum(required(at + 3)?)?.ok_or_else(missing)?,
        os: text_enum(required(at + 4)?)?.ok_or_else(missing)?,
        cpu: unsigned(i64::from(row.try_get::<_, i32>(at + 5)?))?,
        memory: unsigned(row.try_get(at + 6)?)?,
        disk: unsigned(row.try_get(at + 7)?)?,
        network: row.try_get(at + 8)?,
        sandbox: text_enum(row.try_get(at + 9)?)?,
        fallback: row.try_get(at + 10)?,
        archived: row.try_get(at + 11)?,
        created: row.try_get(at + 12)?,
        modified: row.try_get(at + 13)?,
    })
}

/// A spec's row id and row, by UUID or slug; `lock`: its row locked until
/// the transaction ends.
pub(super) async fn find(
    tx: &impl GenericClient,
    r: &SpecRef,
    lock: bool,
) -> Result<(i64, SpecRow), StoreError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row = match r.by() {
        Ref::Uuid(uuid) => {
            let sql = format!("SELECT id, {COLUMNS} FROM specs WHERE uuid = $1{lock}");
            tx.query_opt(&tx.prepare_cached(&sql).await?, &[uuid])
                .await?
        }
        Ref::Slug(slug) => {
            let sql = format!("SELECT id, {COLUMNS} FROM specs WHERE slug = $1{lock}");
            tx.query_opt(&tx.prepare_cached(&sql).await?, &[slug])
                .await?
        }
    };
    match row {
        Some(row) => Ok((row.try_get(0)?, spec_at(&row, 1)?)),
        None => Err(StoreError::NotFound {
            kind: Kind::Spec,
            by: r.by().clone(),
        }),
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

/// The text of a wire enum, as its column keeps it.
fn enum_text<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => String::new(),
    }
}

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

impl PgStore {
    /// One spec, by UUID or slug.
    pub async fn spec(&self, r: &SpecRef) -> Result<SpecRow, StoreError> {
        // One statement: no transaction, one round trip.
        let client = self.client().await?;
        Ok(find(&client, r, false).await?.1)
    }

    /// One page of specs matching `q`, and how many match in all (one
    /// statement: one snapshot for both).
    pub async fn list_specs(&self, q: ListQuery) -> Result<(Vec<SpecRow>, u64), StoreError> {
        let client = self.client().await?;
        super::items::list(&client, &q, "specs", COLUMNS, None, None, spec_at).await
    }

    /// Creates a spec; with `fallback`, it becomes the fallback and no other
    /// spec is.
    pub async fn create_spec(&self, new: NewSpec, actor: &Actor) -> Result<SpecRow, StoreError> {
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
        let (architecture, os) = (enum_text(&new.architecture), enum_text(&new.os));
        let sandbox = new.sandbox.as_ref().map(enum_text);
        let cpu = i32::try_from(new.cpu.get()).unwrap_or(i32::MAX);
        // Memory and disk are at most i64::MAX by their rule (Bytes).
        let (memory, disk) = (new.memory.get() as i64, new.disk.get() as i64);
        let fallback: Option<DateTime<Utc>> = new.fallback.then_some(created);
        let insert = async |slug: String| -> Result<Option<SpecRow>, StoreError> {
            let row = tx
                .query_opt(
                    &stmt,
                    &[
                        &super::super::new_uuid(),
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
            row.map(|r| spec_at(&r, 0)).transpose()
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

    /// Applies `changes` to a spec (the twin of `Store::update::<Specs>`):
    /// archiving clears its fallback (and wins over `fallback: true`);
    /// making it the fallback clears every other's.
    pub async fn update_spec(
        &self,
        r: SpecRef,
        changes_asked: SpecChanges,
        actor: &Actor,
    ) -> Result<SpecRow, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if changes_asked.fallback == Some(true) {
            // Before the row lock: the order every fallback write takes.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FALLBACK_LOCK])
                .await?;
        }
        let (id, current) = find(&tx, &r, true).await?;
        let mut next = current.clone();
        let stamp = now();
        let common = Specs::common_changes(&changes_asked);
        Specs::common(&mut next).apply(common.name, common.slug, common.archived, stamp);
        match changes_asked.fallback {
            Some(true) if changes_asked.archived == Some(true) => {
                clear_fallback(&tx, id, actor).await?;
            }
            Some(true) if next.archived.is_some() => {
                return Err(StoreError::SpecArchived(current.slug));
            }
            Some(true) => {
                clear_fallback(&tx, id, actor).await?;
                next.fallback = current.fallback.or(Some(stamp));
            }
            Some(false) => next.fallback = None,
            None => {}
        }
        if next.archived.is_some() {
            next.fallback = None;
        }
        if next != current {
            next.modified = stamp;
            let folded = next.name.to_lowercase();
            tx.execute(
                "UPDATE specs SET name = $1, name_folded = $2, slug = $3, archived = $4,
                                  modified = $5, fallback = $6
                 WHERE id = $7",
                &[
                    &next.name,
                    &folded,
                    &next.slug,
                    &next.archived,
                    &stamp,
                    &next.fallback,
                    &id,
                ],
            )
            .await
            .map_err(|e| {
                if unique_violation(&e) == Some("specs_slug_key") {
                    StoreError::SlugTaken {
                        kind: Kind::Spec,
                        slug: next.slug.clone(),
                    }
                } else {
                    e.into()
                }
            })?;
            record(
                &tx,
                actor,
                AuditAction::SpecUpdate,
                Some(next.uuid),
                Some(&next.slug),
                changes(Some(&current), &next),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(next)
    }

    /// Deletes a spec that no runner has and no job names.
    pub async fn delete_spec(&self, r: SpecRef, actor: &Actor) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let (id, spec) = find(&tx, &r, true).await?;
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

    /// The specs of a runner, in the order they were added.
    pub async fn runner_specs(&self, r: &RunnerRef) -> Result<Vec<SpecRow>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.build_transaction().read_only(true).start().await?;
        let (id, _, _) = find_runner(&tx, r).await?;
        let rows = tx
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM specs JOIN runner_specs rs ON rs.spec_id = specs.id
                     WHERE rs.runner_id = $1 ORDER BY rs.id"
                ),
                &[&id],
            )
            .await?;
        tx.commit().await?;
        rows.iter().map(|r| spec_at(r, 0)).collect()
    }

    /// Adds a spec to a runner (archived or not, both of them); waiting
    /// runners on every replica hear of it.
    pub async fn add_runner_spec(
        &self,
        runner: RunnerRef,
        spec: SpecRef,
        actor: &Actor,
    ) -> Result<SpecRow, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let (runner_id, runner, slug) = find_runner(&tx, &runner).await?;
        let (spec_id, spec) = find(&tx, &spec, false).await?;
        tx.execute(
            "INSERT INTO runner_specs (runner_id, spec_id) VALUES ($1, $2)",
            &[&runner_id, &spec_id],
        )
        .await
        .map_err(|e| {
            if unique_violation(&e) == Some("runner_specs_runner_id_spec_id_key") {
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
            &tx,
            actor,
            AuditAction::RunnerSpecAdd,
            Some(runner),
            Some(&slug),
            pair,
        )
        .await?;
        super::events::notify(&tx, &Event::RunnerSpecsChanged { runner }).await?;
        tx.commit().await?;
        Ok(spec)
    }

    /// Removes a spec from a runner.
    pub async fn remove_runner_spec(
        &self,
        runner: RunnerRef,
        spec: SpecRef,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let (runner_id, runner, slug) = find_runner(&tx, &runner).await?;
        let (spec_id, spec) = find(&tx, &spec, false).await?;
        let removed = tx
            .execute(
                "DELETE FROM runner_specs WHERE runner_id = $1 AND spec_id = $2",
                &[&runner_id, &spec_id],
            )
            .await?;
        if removed == 0 {
            return Err(StoreError::RunnerLacksSpec {
                runner: slug,
                spec: spec.slug,
            });
        }
        let pair = serde_json::json!({"spec": spec.uuid, "spec_slug": spec.slug});
        record(
            &tx,
            actor,
            AuditAction::RunnerSpecRemove,
            Some(runner),
            Some(&slug),
            pair,
        )
        .await?;
        super::events::notify(&tx, &Event::RunnerSpecsChanged { runner }).await?;
        tx.commit().await?;
        Ok(())
    }
}
