//! Hardware specs, and the specs each runner offers.

use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::audit::{Actor, changes, record};
use super::runners::runner_row;
use super::{
    CommonFields, ListSql, SPEC, Store, StoreError, is_unique_violation, now, opt_time_at, text_at,
    time_at, to_text, uuid_at,
};
use crate::types::{Architecture, JsonNewSpec, JsonSpec, JsonUpdateSpec, OperatingSystem, Sandbox};
use crate::validate::{ListQuery, RunnerRef, SpecRef};

const SPEC_COLUMNS: &str = "uuid, name, slug, architecture, os, cpu, memory, disk, network, \
                            sandbox, fallback, archived, created, modified";

fn architecture_text(a: Architecture) -> &'static str {
    match a {
        Architecture::X86_64 => "x86_64",
        Architecture::Aarch64 => "aarch64",
    }
}

fn os_text(os: OperatingSystem) -> &'static str {
    match os {
        OperatingSystem::Linux => "linux",
        OperatingSystem::Macos => "macos",
        OperatingSystem::Windows => "windows",
    }
}

fn sandbox_text(s: Sandbox) -> &'static str {
    match s {
        Sandbox::Firecracker => "firecracker",
    }
}

/// A column that holds one of `T`'s names (the table's CHECK keeps it so).
fn enum_at<T>(row: &Row<'_>, idx: usize, names: &[(&str, T)]) -> rusqlite::Result<T>
where
    T: Copy,
{
    let text = text_at(row, idx)?;
    names
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                idx,
                rusqlite::types::Type::Text,
                format!("unknown value `{text}`").into(),
            )
        })
}

fn unsigned_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(idx)?;
    u64::try_from(value).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Integer, e.into())
    })
}

/// A spec from the columns of [`SPEC_COLUMNS`], starting at `at`.
fn spec_at(row: &Row<'_>, at: usize) -> rusqlite::Result<JsonSpec> {
    use Architecture::*;
    use OperatingSystem::*;
    Ok(JsonSpec {
        uuid: uuid_at(row, at)?,
        name: row.get(at + 1)?,
        slug: row.get(at + 2)?,
        architecture: enum_at(row, at + 3, &[("x86_64", X86_64), ("aarch64", Aarch64)])?,
        os: enum_at(
            row,
            at + 4,
            &[("linux", Linux), ("macos", Macos), ("windows", Windows)],
        )?,
        cpu: u32::try_from(unsigned_at(row, at + 5)?).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                at + 5,
                rusqlite::types::Type::Integer,
                e.into(),
            )
        })?,
        memory: unsigned_at(row, at + 6)?,
        disk: unsigned_at(row, at + 7)?,
        network: row.get(at + 8)?,
        sandbox: match row.get_ref(at + 9)? {
            rusqlite::types::ValueRef::Null => None,
            _ => Some(enum_at(
                row,
                at + 9,
                &[("firecracker", Sandbox::Firecracker)],
            )?),
        },
        fallback: opt_time_at(row, at + 10)?,
        archived: opt_time_at(row, at + 11)?,
        created: time_at(row, at + 12)?,
        modified: time_at(row, at + 13)?,
    })
}

/// A spec's row id and fields, by UUID or slug.
fn spec_row(conn: &Connection, r: &SpecRef) -> Result<(i64, JsonSpec), StoreError> {
    let (filter, arg) = match r {
        SpecRef::Uuid(uuid) => ("uuid = ?", uuid.to_string()),
        SpecRef::Slug(slug) => ("slug = ?", slug.clone()),
    };
    conn.prepare_cached(&format!(
        "SELECT id, {SPEC_COLUMNS} FROM specs WHERE {filter}"
    ))?
    .query_row([arg], |row| Ok((row.get(0)?, spec_at(row, 1)?)))
    .optional()?
    .ok_or_else(|| StoreError::SpecNotFound(r.clone()))
}

/// Clears the fallback of every spec (but `except`), so that a spec can
/// become it: the unique index allows one.
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
            "spec.update",
            Some(uuid),
            Some(&slug),
            serde_json::json!({ "fallback": null }),
        )?;
    }
    Ok(())
}

fn list_specs(conn: &Connection, q: &ListQuery) -> Result<(Vec<JsonSpec>, u64), StoreError> {
    ListSql::new("specs", q).run(conn, q, None, SPEC_COLUMNS, |r| spec_at(r, 0))
}

impl Store {
    /// One spec, by slug or UUID.
    pub async fn spec(&self, r: &SpecRef) -> Result<JsonSpec, StoreError> {
        let r = r.clone();
        self.read(move |c| spec_row(c, &r).map(|(_, spec)| spec))
            .await
    }

    /// One page of specs matching `q`, and how many match in all.
    pub async fn list_specs(&self, q: ListQuery) -> Result<(Vec<JsonSpec>, u64), StoreError> {
        self.scan(move |c| list_specs(c, &q)).await
    }

    /// Creates a spec; with `fallback`, it becomes the fallback and no other
    /// spec is, in the same transaction.
    pub async fn create_spec(
        &self,
        new: JsonNewSpec,
        actor: &Actor,
    ) -> Result<JsonSpec, StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let created = to_text(now());
            if new.fallback {
                clear_fallback(tx, 0, &actor)?;
            }
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO specs (uuid, name, name_folded, slug, architecture, os, cpu, memory,
                                    disk, network, sandbox, fallback, created, modified)
                 VALUES (?1, ?2, fold(?2), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)
                 RETURNING {SPEC_COLUMNS}"
            ))?;
            let attempt = |slug: &str| {
                insert.query_row(
                    params![
                        Uuid::new_v4().to_string(),
                        &*new.name,
                        slug,
                        architecture_text(new.architecture),
                        os_text(new.os),
                        new.cpu.get(),
                        // Checked to fit in i64 by the rules.
                        i64::try_from(new.memory.get()).unwrap_or(i64::MAX),
                        i64::try_from(new.disk.get()).unwrap_or(i64::MAX),
                        new.network,
                        new.sandbox.map(sandbox_text),
                        new.fallback.then_some(created.as_str()),
                        created,
                    ],
                    |r| spec_at(r, 0),
                )
            };
            let spec = SPEC.insert(new.slug.as_deref(), &new.name, attempt)?;
            record(
                tx,
                &actor,
                "spec.create",
                Some(spec.uuid),
                Some(&spec.slug),
                changes(None, &spec),
            )?;
            Ok(spec)
        })
        .await
    }

    /// Applies `update` to a spec in one transaction. Archiving clears the
    /// fallback (and wins over `fallback: true` in the same update); making
    /// a spec the fallback clears it on every other.
    pub async fn update_spec(
        &self,
        r: SpecRef,
        update: JsonUpdateSpec,
        actor: &Actor,
    ) -> Result<JsonSpec, StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let (id, current) = spec_row(tx, &r)?;
            let mut next = current.clone();
            let stamp = now();
            CommonFields {
                name: &mut next.name,
                slug: &mut next.slug,
                archived: &mut next.archived,
            }
            .apply(update.name, update.slug, update.archived, stamp);
            match update.fallback {
                Some(true) if update.archived == Some(true) => {
                    // Archived, and so no fallback at all: clear the others.
                    clear_fallback(tx, id, &actor)?;
                }
                Some(true) if next.archived.is_some() => {
                    return Err(StoreError::SpecArchived(current.slug));
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
            if next == current {
                return Ok(current);
            }
            next.modified = stamp;
            tx.prepare_cached(
                "UPDATE specs SET name = ?1, name_folded = fold(?1), slug = ?2, fallback = ?3,
                 archived = ?4, modified = ?5 WHERE id = ?6",
            )?
            .execute(params![
                next.name,
                next.slug,
                next.fallback.map(to_text),
                next.archived.map(to_text),
                to_text(next.modified),
                id
            ])
            .map_err(SPEC.slug_conflict(&next.slug))?;
            record(
                tx,
                &actor,
                "spec.update",
                Some(next.uuid),
                Some(&next.slug),
                changes(Some(&current), &next),
            )?;
            Ok(next)
        })
        .await
    }

    /// Deletes a spec that no runner has.
    pub async fn delete_spec(&self, r: SpecRef, actor: &Actor) -> Result<(), StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let (id, spec) = spec_row(tx, &r)?;
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
                "spec.delete",
                Some(spec.uuid),
                Some(&spec.slug),
                serde_json::json!({}),
            )?;
            Ok(())
        })
        .await
    }

    /// The specs of a runner, in the order they were added.
    pub async fn runner_specs(&self, r: &RunnerRef) -> Result<Vec<JsonSpec>, StoreError> {
        let r = r.clone();
        self.read(move |c| {
            let tx = c.unchecked_transaction()?;
            let (id, _) = runner_row(&tx, &r)?;
            let specs = tx
                .prepare_cached(&format!(
                    "SELECT {SPEC_COLUMNS} FROM specs JOIN runner_specs rs ON rs.spec_id = specs.id
                     WHERE rs.runner_id = ? ORDER BY rs.id"
                ))?
                .query_map([id], |r| spec_at(r, 0))?
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
    ) -> Result<JsonSpec, StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let (runner_id, runner) = runner_row(tx, &runner)?;
            let (spec_id, spec) = spec_row(tx, &spec)?;
            tx.prepare_cached("INSERT INTO runner_specs (runner_id, spec_id) VALUES (?, ?)")?
                .execute([runner_id, spec_id])
                .map_err(|e| {
                    if is_unique_violation(&e, "runner_specs.spec_id") {
                        StoreError::RunnerHasSpec {
                            runner: runner.slug.clone(),
                            spec: spec.slug.clone(),
                        }
                    } else {
                        e.into()
                    }
                })?;
            record(
                tx,
                &actor,
                "runner.spec.add",
                Some(runner.uuid),
                Some(&runner.slug),
                serde_json::json!({"spec": spec.uuid, "spec_slug": spec.slug}),
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
            let (runner_id, runner) = runner_row(tx, &runner)?;
            let (spec_id, spec) = spec_row(tx, &spec)?;
            let removed = tx
                .prepare_cached("DELETE FROM runner_specs WHERE runner_id = ? AND spec_id = ?")?
                .execute([runner_id, spec_id])?;
            if removed == 0 {
                return Err(StoreError::RunnerLacksSpec {
                    runner: runner.slug,
                    spec: spec.slug,
                });
            }
            record(
                tx,
                &actor,
                "runner.spec.remove",
                Some(runner.uuid),
                Some(&runner.slug),
                serde_json::json!({"spec": spec.uuid, "spec_slug": spec.slug}),
            )?;
            Ok(())
        })
        .await
    }
}
