//! Runners and their keys.

use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::audit::{Actor, changes, record};
use super::{
    CommonFields, ListSql, RUNNER, Store, StoreError, now, opt_time_at, text_at, time_at, to_text,
    uuid_at,
};
use crate::types::{JsonNewRunner, JsonRunner, JsonUpdateRunner};
use crate::validate::{ListQuery, RunnerRef};

/// A runner's fields, for [`runner_at`]. Its specs come in the same
/// statement: the UUIDs in the order added, comma-separated (one walk of
/// the `runner_specs (runner_id, spec_id)` index per runner, never a query
/// per runner).
const RUNNER_COLUMNS: &str = "uuid, name, slug, \
    (SELECT group_concat(s.uuid, ',' ORDER BY rs.id) \
     FROM runner_specs rs JOIN specs s ON s.id = rs.spec_id WHERE rs.runner_id = runners.id), \
    archived, last_heartbeat, created, modified";
/// Deepest offset a list may start at and still count as a short read.
const SHORT_LIST_OFFSET: u64 = 1024;

/// The runner a runner key belongs to.
#[derive(Clone, Debug)]
pub struct KeyedRunner {
    pub id: i64,
    pub uuid: Uuid,
    pub slug: String,
    pub archived: bool,
    /// The SHA-256 of the key it was found by.
    pub key_hash: [u8; 32],
}

/// A runner from the columns of [`RUNNER_COLUMNS`], starting at `at`.
pub(super) fn runner_at(row: &Row<'_>, at: usize) -> rusqlite::Result<JsonRunner> {
    let specs = match row.get_ref(at + 3)? {
        rusqlite::types::ValueRef::Null => Vec::new(),
        _ => text_at(row, at + 3)?
            .split(',')
            .map(|uuid| {
                Uuid::try_parse(uuid).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        at + 3,
                        rusqlite::types::Type::Text,
                        e.into(),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(JsonRunner {
        uuid: uuid_at(row, at)?,
        name: row.get(at + 1)?,
        slug: row.get(at + 2)?,
        specs,
        archived: opt_time_at(row, at + 4)?,
        last_heartbeat: opt_time_at(row, at + 5)?,
        created: time_at(row, at + 6)?,
        modified: time_at(row, at + 7)?,
    })
}

/// A runner's row id and fields, by UUID or slug.
pub(super) fn runner_row(
    conn: &Connection,
    r: &RunnerRef,
) -> Result<(i64, JsonRunner), StoreError> {
    let (filter, arg) = match r {
        RunnerRef::Uuid(uuid) => ("uuid = ?", uuid.to_string()),
        RunnerRef::Slug(slug) => ("slug = ?", slug.clone()),
    };
    conn.prepare_cached(&format!(
        "SELECT id, {RUNNER_COLUMNS} FROM runners WHERE {filter}"
    ))?
    .query_row([arg], |row| Ok((row.get(0)?, runner_at(row, 1)?)))
    .optional()?
    .ok_or_else(|| StoreError::RunnerNotFound(r.clone()))
}

/// Whether listing `q` is a short read (see [`Store::read`]) whatever the
/// size of the registry: no `search` (a scan) and no `name` filter (it may
/// match many), so the count is one row of `runner_counts`, and a page that
/// starts near the beginning of its index.
fn list_is_short(q: &ListQuery) -> bool {
    q.search.is_none() && q.name.is_none() && q.offset() <= SHORT_LIST_OFFSET
}

/// One page of runners matching `q`, and how many match in all.
fn list_runners(conn: &Connection, q: &ListQuery) -> Result<(Vec<JsonRunner>, u64), StoreError> {
    let sql = ListSql::new("runners", q);
    let count_sql = match (&q.name, &q.search, q.archived) {
        (None, None, false) => Some("SELECT active FROM runner_counts"),
        (None, None, true) => Some("SELECT total FROM runner_counts"),
        _ => None,
    };
    sql.run(conn, q, count_sql, RUNNER_COLUMNS, |r| runner_at(r, 0))
}

impl Store {
    /// One runner, by slug or UUID.
    pub async fn runner(&self, r: &RunnerRef) -> Result<JsonRunner, StoreError> {
        let r = r.clone();
        self.read(move |c| runner_row(c, &r).map(|(_, runner)| runner))
            .await
    }

    /// One page of runners matching `q`, and how many match in all.
    pub async fn list_runners(&self, q: ListQuery) -> Result<(Vec<JsonRunner>, u64), StoreError> {
        if list_is_short(&q) {
            self.read(move |c| list_runners(c, &q)).await
        } else {
            self.scan(move |c| list_runners(c, &q)).await
        }
    }

    /// Inserts runners in one transaction, as given: for seeding a database
    /// (the benchmark) and bulk imports. Each entry is a name, a slug (both
    /// already valid) and the SHA-256 of the runner's key.
    pub async fn import_runners(
        &self,
        runners: Vec<(String, String, [u8; 32])>,
    ) -> Result<usize, StoreError> {
        self.write(move |tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO runners (uuid, name, name_folded, slug, token_hash, created, modified)
                 VALUES (?1, ?2, fold(?2), ?3, ?4, ?5, ?5)",
            )?;
            for (name, slug, key_hash) in &runners {
                insert
                    .execute(params![
                        Uuid::new_v4().to_string(),
                        name,
                        slug,
                        &key_hash[..],
                        to_text(now())
                    ])
                    .map_err(RUNNER.slug_conflict(slug))?;
            }
            Ok(runners.len())
        })
        .await
    }

    /// Creates a runner whose key has the SHA-256 `key_hash`. An explicit
    /// slug that is taken is [`StoreError::SlugTaken`]; a slug generated
    /// from the name gets a random suffix until it is free.
    pub async fn create_runner(
        &self,
        new: JsonNewRunner,
        key_hash: [u8; 32],
        actor: &Actor,
    ) -> Result<JsonRunner, StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO runners (uuid, name, name_folded, slug, token_hash, created, modified)
                 VALUES (?1, ?2, fold(?2), ?3, ?4, ?5, ?5) RETURNING {RUNNER_COLUMNS}"
            ))?;
            let created = to_text(now());
            let attempt = |slug: &str| {
                insert.query_row(
                    params![
                        Uuid::new_v4().to_string(),
                        &*new.name,
                        slug,
                        &key_hash[..],
                        created
                    ],
                    |r| runner_at(r, 0),
                )
            };
            let runner = RUNNER.insert(new.slug.as_deref(), &new.name, attempt)?;
            record(
                tx,
                &actor,
                "runner.create",
                Some(runner.uuid),
                Some(&runner.slug),
                changes(None, &runner),
            )?;
            Ok(runner)
        })
        .await
    }

    /// Applies `update` to a runner in one transaction.
    pub async fn update_runner(
        &self,
        r: RunnerRef,
        update: JsonUpdateRunner,
        actor: &Actor,
    ) -> Result<JsonRunner, StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let (id, current) = runner_row(tx, &r)?;
            let mut next = current.clone();
            let stamp = now();
            CommonFields {
                name: &mut next.name,
                slug: &mut next.slug,
                archived: &mut next.archived,
            }
            .apply(update.name, update.slug, update.archived, stamp);
            if next == current {
                return Ok(current);
            }
            next.modified = stamp;
            tx.prepare_cached(
                "UPDATE runners SET name = ?1, name_folded = fold(?1), slug = ?2, archived = ?3,
                 modified = ?4 WHERE id = ?5",
            )?
            .execute(params![
                next.name,
                next.slug,
                next.archived.map(to_text),
                to_text(next.modified),
                id
            ])
            .map_err(RUNNER.slug_conflict(&next.slug))?;
            record(
                tx,
                &actor,
                "runner.update",
                Some(next.uuid),
                Some(&next.slug),
                changes(Some(&current), &next),
            )?;
            Ok(next)
        })
        .await
    }

    /// Replaces a runner's key hash in one transaction: the old key stops
    /// working at once. Archived runners cannot be rotated. Returns the
    /// runner's UUID.
    pub async fn rotate_runner_key(
        &self,
        r: RunnerRef,
        key_hash: [u8; 32],
        actor: &Actor,
    ) -> Result<Uuid, StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let (id, runner) = runner_row(tx, &r)?;
            if runner.archived.is_some() {
                return Err(StoreError::RunnerArchived(runner.slug));
            }
            tx.prepare_cached("UPDATE runners SET token_hash = ?, modified = ? WHERE id = ?")?
                .execute(params![&key_hash[..], to_text(now()), id])?;
            record(
                tx,
                &actor,
                "runner.key.rotate",
                Some(runner.uuid),
                Some(&runner.slug),
                serde_json::json!({"key": "rotated"}),
            )?;
            Ok(runner.uuid)
        })
        .await
    }

    /// The runner whose key has this SHA-256, if any.
    pub async fn runner_by_key_hash(
        &self,
        key_hash: [u8; 32],
    ) -> Result<Option<KeyedRunner>, StoreError> {
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT id, uuid, slug, archived IS NOT NULL FROM runners WHERE token_hash = ?",
            )?
            .query_row([&key_hash[..]], |r| {
                Ok(KeyedRunner {
                    id: r.get(0)?,
                    uuid: uuid_at(r, 1)?,
                    slug: r.get(2)?,
                    archived: r.get(3)?,
                    key_hash,
                })
            })
            .optional()?)
        })
        .await
    }

    /// Records a heartbeat of `runner`, provided its key is still the one it
    /// was found by and it is still active; `None` if either no longer holds.
    pub async fn heartbeat(&self, runner: &KeyedRunner) -> Result<Option<JsonRunner>, StoreError> {
        let (id, key_hash) = (runner.id, runner.key_hash);
        self.write(move |tx| {
            Ok(tx
                .prepare_cached(&format!(
                    "UPDATE runners SET last_heartbeat = ?
                     WHERE id = ? AND token_hash = ? AND archived IS NULL
                     RETURNING {RUNNER_COLUMNS}"
                ))?
                .query_row(params![to_text(now()), id, &key_hash[..]], |r| {
                    runner_at(r, 0)
                })
                .optional()?)
        })
        .await
    }
}
