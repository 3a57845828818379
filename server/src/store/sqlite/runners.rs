//! Runners and their keys on SQLite.

use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use super::audit::record;
use super::item::SqliteItem;
use super::items;
use super::{SqliteStore, to_text, uuid_at};
use crate::store::error::StoreError;
use crate::store::model::events::Event;
use crate::store::model::{
    Actor, AuditAction, KeyedRunner, NewRunner, RunnerId, RunnerKeyHash, RunnerRef, RunnerRow,
    Runners,
};
use crate::store::model::{new_uuid, now};
use crate::store::operations::RunnerOps;
use crate::validate::ListQuery;

/// Deepest offset a list may start at and still count as a short read.
const SHORT_LIST_OFFSET: u64 = 1024;

impl SqliteItem for Runners {
    /// A runner's specs come in the same statement: the UUIDs in the order
    /// added, comma-separated (one walk of the `runner_specs (runner_id)`
    /// index per runner, which holds them in that order, so no sort;
    /// never a query per runner). Whether it is busy is one probe of the
    /// partial index of claimed and running jobs. Both indexes are named:
    /// SQLite's planner prefers others that need a sort, or a temporary
    /// table for the `IN` list, a row.
    const COLUMNS: &'static str = "uuid, name, slug, \
        (SELECT group_concat(uuid, ',') FROM (SELECT s.uuid \
         FROM runner_specs rs INDEXED BY runner_specs_runner JOIN specs s ON s.id = rs.spec_id \
         WHERE rs.runner_id = runners.id ORDER BY rs.id)), \
        archived, last_heartbeat, created, modified, \
        CASE WHEN EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_busy WHERE jobs.runner_id = runners.id \
                          AND jobs.status IN ('claimed', 'running')) THEN 'busy' \
             WHEN channel IS NOT NULL THEN 'idle' ELSE 'offline' END, \
        os, arch, version";

    /// One row of `runner_counts` (kept by triggers) when nothing filters.
    fn count_sql(q: &ListQuery) -> Option<&'static str> {
        match (&q.name, &q.search, q.archived, q.status) {
            (None, None, false, None) => Some("SELECT active FROM runner_counts"),
            (None, None, true, None) => Some("SELECT total FROM runner_counts"),
            _ => None,
        }
    }
}

/// Whether listing `q` is a short read (see [`SqliteStore::read`]) whatever the
/// size of the registry: no `search` (a scan) and no `name` filter (it may
/// match many), so the count is one row of `runner_counts`, and a page that
/// starts near the beginning of its index.
fn list_is_short(q: &ListQuery) -> bool {
    q.search.is_none() && q.name.is_none() && q.status.is_none() && q.offset() <= SHORT_LIST_OFFSET
}

const INSERT: &str = "INSERT INTO runners (uuid, name, name_folded, slug, token_hash, created,
                                           modified)
                      VALUES (?1, ?2, fold(?2), ?3, ?4, ?5, ?5)";

impl RunnerOps for SqliteStore {
    /// One page of runners matching `q`, and how many match in all.
    async fn list_runners(&self, q: ListQuery) -> Result<(Vec<RunnerRow>, u64), StoreError> {
        if list_is_short(&q) {
            self.read(move |c| items::list::<Runners>(c, &q)).await
        } else {
            self.scan(move |c| items::list::<Runners>(c, &q)).await
        }
    }

    /// Inserts runners in one transaction, as given: for seeding a database
    /// (the benchmark) and bulk imports. Each entry is a name, a slug (both
    /// already valid) and the hash of the runner's key.
    async fn import_runners(
        &self,
        runners: Vec<(String, String, RunnerKeyHash)>,
    ) -> Result<usize, StoreError> {
        self.write(move |tx| {
            let mut insert = tx.prepare_cached(INSERT)?;
            for (name, slug, key_hash) in &runners {
                let uuid = new_uuid().to_string();
                insert
                    .execute(params![uuid, name, slug, key_hash, to_text(now())])
                    .map_err(|e| items::slug_conflict::<Runners>(tx, slug, e))?;
            }
            Ok(runners.len())
        })
        .await
    }

    /// Creates a runner whose key has the hash `key_hash`. An explicit slug
    /// that is taken is [`StoreError::SlugTaken`]; a slug generated from the
    /// name gets a random suffix until it is free.
    async fn create_runner(
        &self,
        (new, key_hash): (NewRunner, RunnerKeyHash),
        actor: &Actor,
    ) -> Result<RunnerRow, StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let columns = Runners::COLUMNS;
            let mut insert = tx.prepare_cached(&format!("{INSERT} RETURNING {columns}"))?;
            let created = to_text(now());
            let attempt = |slug: &str| {
                let uuid = new_uuid().to_string();
                insert.query_row(params![uuid, &*new.name, slug, key_hash, created], |r| {
                    Runners::row_at(r, 0)
                })
            };
            items::create::<Runners>(tx, &actor, new.slug.as_deref(), &new.name, attempt)
        })
        .await
    }

    /// Replaces a runner's key hash in one transaction: the old key stops
    /// working at once. Archived runners cannot be rotated. Returns the
    /// runner's UUID.
    async fn rotate_runner_key(
        &self,
        (r, key_hash): (RunnerRef, RunnerKeyHash),
        actor: &Actor,
    ) -> Result<Uuid, StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let runner = items::identify(tx, &r)?;
            if runner.archived {
                return Err(StoreError::RunnerArchived(runner.slug));
            }
            let id = runner.id;
            tx.prepare_cached("UPDATE runners SET token_hash = ?, modified = ? WHERE id = ?")?
                .execute(params![key_hash, to_text(now()), id])?;
            record(
                tx,
                &actor,
                AuditAction::RunnerKeyRotate,
                Some(runner.uuid),
                Some(&runner.slug),
                serde_json::json!({"key": "rotated"}),
            )?;
            Ok(runner.uuid)
        })
        .await
        .inspect(|&runner| self.publish(Event::RunnerRevoked { runner }))
    }

    /// The runner whose key has this hash, if any.
    async fn runner_by_key_hash(
        &self,
        key_hash: RunnerKeyHash,
    ) -> Result<Option<KeyedRunner>, StoreError> {
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT id, uuid, slug, archived IS NOT NULL FROM runners WHERE token_hash = ?",
            )?
            .query_row([key_hash], |r| {
                Ok(KeyedRunner {
                    id: RunnerId(r.get(0)?),
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
    async fn heartbeat(&self, runner: &KeyedRunner) -> Result<Option<RunnerRow>, StoreError> {
        let (id, key_hash) = (runner.id, runner.key_hash);
        self.write(move |tx| {
            let columns = Runners::COLUMNS;
            Ok(tx
                .prepare_cached(&format!(
                    "UPDATE runners SET last_heartbeat = ?
                     WHERE id = ? AND token_hash = ? AND archived IS NULL
                     RETURNING {columns}"
                ))?
                .query_row(params![to_text(now()), id, key_hash], |r| {
                    Runners::row_at(r, 0)
                })
                .optional()?)
        })
        .await
    }
}
