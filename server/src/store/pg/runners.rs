//! Runners on PostgreSQL: create (slug races settled by `ON CONFLICT`),
//! lookup, keys, and the paged list with its count and search. The twin of
//! `../sqlite/runners.rs`.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::item::PgItem;
use super::items::{find, list_items};
use super::{PgStore, StoreError, now, record};
use crate::store::model::events::Event;
use crate::store::model::{
    Actor, AuditAction, KeyedRunner, Kind, NewRunner, RunnerId, RunnerKeyHash, RunnerRow,
    RunnerStatus, Runners, changes,
};
use crate::store::model::{RunnerRef, new_uuid};
use crate::store::operations::RunnerOps;
use crate::validate::{ListQuery, generated_slug, slug_from_name};

/// A runner's columns, as [`PgItem::row_at`] reads them. Its specs come in the
/// same statement, in the order added (`coalesce`: `[]` when none).
const COLUMNS: &str = "uuid, name, slug, \
    coalesce((SELECT array_agg(s.uuid ORDER BY rs.id) \
              FROM runner_specs rs JOIN specs s ON s.id = rs.spec_id \
              WHERE rs.runner_id = runners.id), '{}'::uuid[]), \
    archived, last_heartbeat, created, modified, \
    CASE WHEN EXISTS (SELECT 1 FROM jobs WHERE jobs.runner_id = runners.id \
                      AND jobs.status IN ('claimed', 'running')) THEN 'busy' \
         WHEN channel IS NOT NULL THEN 'idle' ELSE 'offline' END, \
    os, arch, version";

impl PgItem for Runners {
    const COLUMNS: &'static str = COLUMNS;

    /// The trigger-kept count when nothing filters but `archived`.
    fn count_sql(q: &ListQuery) -> Option<&'static str> {
        match (&q.name, &q.search, q.archived, q.status) {
            (None, None, false, None) => Some("SELECT sum(active)::bigint FROM runner_counts"),
            (None, None, true, None) => Some("SELECT sum(total)::bigint FROM runner_counts"),
            _ => None,
        }
    }
}

/// Sets `runner_counts` from the runners themselves (after a bulk copy made
/// with its trigger off).
pub(crate) const RECOUNT: &str = "
    UPDATE runner_counts SET total = 0, active = 0;
    UPDATE runner_counts SET total = (SELECT count(*) FROM runners),
        active = (SELECT count(*) FROM runners WHERE archived IS NULL)
    WHERE slot = 0;";

/// Tries to find a free generated slug before giving up (as SQLite).
const GENERATED_SLUG_ATTEMPTS: usize = 8;

impl RunnerOps for PgStore {
    async fn list_runners(&self, q: ListQuery) -> Result<(Vec<RunnerRow>, u64), StoreError> {
        let client = self.client().await?;
        list_items::<Runners>(&client, &q).await
    }

    /// Creates a runner whose key has the hash `key_hash`, with its audit
    /// row. A given slug that is taken is [`StoreError::SlugTaken`]; a
    /// generated one gets a random suffix until it is free. Racing creates
    /// of one slug: `ON CONFLICT` waits for the other insert's fate, so
    /// exactly one of them has it. Each attempt is one statement (the
    /// runner and its audit row, atomic without BEGIN and COMMIT: one round
    /// trip); one that finds its slug taken writes nothing.
    async fn create_runner(
        &self,
        (new, key_hash): (NewRunner, RunnerKeyHash),
        actor: &Actor,
    ) -> Result<RunnerRow, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "WITH runners AS (
                     INSERT INTO runners (uuid, name, name_folded, slug, token_hash, created,
                                          modified)
                     VALUES ($1, $2, $3, $4, $5, $6, $6)
                     ON CONFLICT (slug) DO NOTHING
                     RETURNING *),
                 audited AS (
                     INSERT INTO audit (time, user_uuid, user_name, token_uuid, action,
                                        target_uuid, target_slug, changes)
                     SELECT $6, $7, $8, $9, $10, uuid, slug, $11 FROM runners)
                 SELECT {COLUMNS} FROM runners"
            ))
            .await?;
        let name: &str = &new.name;
        let folded = name.to_lowercase();
        let created = now();
        let hash: &[u8] = &key_hash.0;
        let action = AuditAction::RunnerCreate.as_str();
        let insert = |slug: String| {
            let (client, stmt, folded) = (&client, &stmt, &folded);
            async move {
                // The row as it will be stored: what its audit row records.
                let row = RunnerRow {
                    uuid: new_uuid(),
                    name: name.to_owned(),
                    slug,
                    specs: Vec::new(),
                    archived: None,
                    last_heartbeat: None,
                    created,
                    modified: created,
                    status: RunnerStatus::Offline,
                    os: None,
                    arch: None,
                    version: None,
                };
                let audit = changes(None, &row);
                let inserted = client
                    .query_opt(
                        stmt,
                        &[
                            &row.uuid,
                            &name,
                            folded,
                            &row.slug,
                            &hash,
                            &created,
                            &actor.user,
                            &actor.user_name,
                            &actor.token,
                            &action,
                            &audit,
                        ],
                    )
                    .await?;
                inserted.map(|r| Runners::row_at(&r, 0)).transpose()
            }
        };
        match new.slug.as_deref() {
            Some(slug) => insert(slug.to_owned())
                .await?
                .ok_or_else(|| StoreError::SlugTaken {
                    kind: Kind::Runner,
                    slug: slug.to_owned(),
                }),
            None => {
                let base = slug_from_name(name);
                for i in 0..GENERATED_SLUG_ATTEMPTS {
                    let slug = generated_slug(base.as_deref(), Kind::Runner.name(), i);
                    if let Some(row) = insert(slug).await? {
                        return Ok(row);
                    }
                }
                Err(StoreError::NoFreeSlug(GENERATED_SLUG_ATTEMPTS))
            }
        }
    }

    /// Inserts runners in one transaction, as given (the benchmark's seed
    /// and bulk imports): each a name, a slug (both valid) and its key's
    /// hash. A taken slug is [`StoreError::SlugTaken`], and nothing is
    /// inserted. Rows go in 1,000 to a statement, with the count trigger
    /// off and the counts recomputed at the end: one transaction that
    /// updated a count row per runner would grow a chain of as many
    /// versions of it, each found by walking the chain.
    async fn import_runners(
        &self,
        runners: Vec<(String, String, RunnerKeyHash)>,
    ) -> Result<usize, StoreError> {
        const CHUNK: usize = 1000;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.batch_execute("ALTER TABLE runners DISABLE TRIGGER runner_counts_keep")
            .await?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO runners (uuid, name, name_folded, slug, token_hash, created, modified)
                 SELECT u, n, f, s, h, $6, $6
                   FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bytea[])
                        AS new (u, n, f, s, h)
                 ON CONFLICT (slug) DO NOTHING",
            )
            .await?;
        let t = now();
        for chunk in runners.chunks(CHUNK) {
            let uuids: Vec<Uuid> = chunk.iter().map(|_| new_uuid()).collect();
            let names: Vec<&str> = chunk.iter().map(|(n, _, _)| n.as_str()).collect();
            let folded: Vec<String> = chunk.iter().map(|(n, _, _)| n.to_lowercase()).collect();
            let slugs: Vec<&str> = chunk.iter().map(|(_, s, _)| s.as_str()).collect();
            let hashes: Vec<&[u8]> = chunk.iter().map(|(_, _, h)| &h.0[..]).collect();
            let n = tx
                .execute(&stmt, &[&uuids, &names, &folded, &slugs, &hashes, &t])
                .await?;
            if usize::try_from(n).ok() != Some(chunk.len()) {
                // Taken before, or given twice: the first such slug.
                let taken: Vec<String> = tx
                    .query(
                        "SELECT slug FROM runners WHERE slug = ANY($1) AND NOT uuid = ANY($2)",
                        &[&slugs, &uuids],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let mut seen = std::collections::HashSet::new();
                let slug = slugs
                    .iter()
                    .find(|s| taken.iter().any(|t| t == *s) || !seen.insert(**s))
                    .map_or_else(String::new, |s| (*s).to_owned());
                return Err(StoreError::SlugTaken {
                    kind: Kind::Runner,
                    slug,
                });
            }
        }
        tx.batch_execute(&format!(
            "ALTER TABLE runners ENABLE TRIGGER runner_counts_keep; {RECOUNT}"
        ))
        .await?;
        tx.commit().await?;
        // The planner's statistics for what was just loaded (autovacuum
        // would take its time: lists and searches planned for the table as
        // it was would scan).
        client.batch_execute("ANALYZE runners").await?;
        Ok(runners.len())
    }

    /// Replaces a runner's key hash in one transaction (its row lock
    /// serialises racing rotations: the last commit's key is the one live
    /// key). Archived runners cannot be rotated. Returns the runner's UUID.
    async fn rotate_runner_key(
        &self,
        (r, key_hash): (RunnerRef, RunnerKeyHash),
        actor: &Actor,
    ) -> Result<Uuid, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Locked from here: an archive racing the rotation waits, or wins.
        let (id, runner) = find(&tx, &r, true).await?;
        if runner.archived.is_some() {
            return Err(StoreError::RunnerArchived(runner.slug));
        }
        let hash: &[u8] = &key_hash.0;
        tx.execute(
            "UPDATE runners SET token_hash = $1, modified = $2 WHERE id = $3",
            &[&hash, &now(), &id],
        )
        .await?;
        record(
            &tx,
            actor,
            AuditAction::RunnerKeyRotate,
            Some(runner.uuid),
            Some(&runner.slug),
            serde_json::json!({"key": "rotated"}),
        )
        .await?;
        // Every replica closes the runner's channel, once this commits.
        let revoked = Event::RunnerRevoked {
            runner: runner.uuid,
        };
        super::events::notify(&tx, &revoked).await?;
        tx.commit().await?;
        Ok(runner.uuid)
    }

    /// Records a heartbeat of `runner`, provided its key is still the one it
    /// was found by and it is still active; `None` if either no longer holds.
    async fn heartbeat(&self, runner: &KeyedRunner) -> Result<Option<RunnerRow>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "UPDATE runners SET last_heartbeat = $1
                 WHERE id = $2 AND token_hash = $3 AND archived IS NULL
                 RETURNING {COLUMNS}"
            ))
            .await?;
        let hash: &[u8] = &runner.key_hash.0;
        client
            .query_opt(&stmt, &[&now(), &runner.id.0, &hash])
            .await?
            .map(|r| Runners::row_at(&r, 0))
            .transpose()
    }

    /// The runner whose key has this hash, if any.
    async fn runner_by_key_hash(
        &self,
        key_hash: RunnerKeyHash,
    ) -> Result<Option<KeyedRunner>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, uuid, slug, archived IS NOT NULL FROM runners WHERE token_hash = $1",
            )
            .await?;
        let hash: &[u8] = &key_hash.0;
        let row = client.query_opt(&stmt, &[&hash]).await?;
        row.map(|r| {
            Ok(KeyedRunner {
                id: RunnerId(r.try_get(0)?),
                uuid: r.try_get(1)?,
                slug: r.try_get(2)?,
                archived: r.try_get(3)?,
                key_hash,
            })
        })
        .transpose()
    }
}
