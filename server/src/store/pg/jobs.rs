//! Jobs on PostgreSQL, a first part: create, read, and the claim (the twin
//! of `../jobs.rs`). The claim is one statement, `UPDATE … WHERE id =
//! (SELECT … FOR UPDATE SKIP LOCKED)`, in the transaction that checks the
//! runner: runners racing on any replica skip each other's row, so a job is
//! claimed exactly once. Next: list, cancel, reports, expiry, channels.

use tokio_postgres::Row;
use uuid::Uuid;

use super::super::audit::Actor;
use super::super::events::Event;
use super::super::jobs::{Claim, Claimed};
use super::super::model::{AgentInfo, AuditAction, JobRow, Kind, NewJob, RunnerKeyHash};
use super::{PgStore, StoreError, Tx, now, record, specs, text_enum};
use crate::validate::Ref;

/// The columns [`job_at`] reads; its spec is read by its id.
const COLUMNS: &str = "j.id, j.uuid, j.status, j.spec_id, j.config, \
    (SELECT uuid FROM runners WHERE runners.id = j.runner_id), j.claimed, j.started, \
    j.completed, j.created, j.modified, j.output, j.priority, j.last_heartbeat, j.timeout";

/// A job's row id, its spec's row id, and the job with its spec.
async fn job_at(tx: &Tx<'_>, row: &Row) -> Result<Claimed, StoreError> {
    let spec_id: i64 = row.try_get(3)?;
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {} FROM specs WHERE id = $1",
            specs::COLUMNS
        ))
        .await?;
    let spec = specs::spec_at(&tx.query_one(&stmt, &[&spec_id]).await?, 0)?;
    let timeout: i64 = row.try_get(14)?;
    Ok(Claimed {
        id: row.try_get(0)?,
        spec_id,
        job: JobRow {
            uuid: row.try_get(1)?,
            status: text_enum(row.try_get(2)?)?
                .ok_or_else(|| StoreError::Task("a job's status is null".into()))?,
            spec,
            config: row.try_get(4)?,
            runner: row.try_get(5)?,
            claimed: row.try_get(6)?,
            started: row.try_get(7)?,
            completed: row.try_get(8)?,
            created: row.try_get(9)?,
            modified: row.try_get(10)?,
            output: row.try_get(11)?,
            priority: row.try_get(12)?,
            last_heartbeat: row.try_get(13)?,
            timeout: u32::try_from(timeout).map_err(|_| {
                StoreError::Task(format!("a job's timeout {timeout} is out of range"))
            })?,
        },
    })
}

async fn job_by_id(tx: &Tx<'_>, id: i64) -> Result<Claimed, StoreError> {
    let stmt = tx
        .prepare_cached(&format!("SELECT {COLUMNS} FROM jobs j WHERE j.id = $1"))
        .await?;
    job_at(tx, &tx.query_one(&stmt, &[&id]).await?).await
}

/// The runner's message: its `last_heartbeat`, and its agent's report.
async fn runner_seen(
    tx: &Tx<'_>,
    runner: i64,
    agent: Option<&AgentInfo>,
    t: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    match agent {
        Some(a) => {
            let text = |v: serde_json::Value| v.as_str().map(str::to_owned);
            let os = text(serde_json::to_value(a.os).unwrap_or_default());
            let arch = text(serde_json::to_value(a.arch).unwrap_or_default());
            tx.execute(
                "UPDATE runners SET last_heartbeat = $1, os = $2, arch = $3, version = $4
                 WHERE id = $5",
                &[&t, &os, &arch, &a.version, &runner],
            )
            .await?
        }
        None => {
            tx.execute(
                "UPDATE runners SET last_heartbeat = $1 WHERE id = $2",
                &[&t, &runner],
            )
            .await?
        }
    };
    Ok(())
}

impl PgStore {
    /// Creates a pending job for its spec (the fallback spec if none is
    /// named), with its audit row; runners waiting for that spec, on every
    /// replica, are told when it commits.
    pub async fn create_job(&self, new: NewJob, actor: &Actor) -> Result<JobRow, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let (spec_id, spec) = match &new.spec {
            Some(r) => specs::find(&tx, r, false).await?,
            None => {
                let sql = format!(
                    "SELECT id, {} FROM specs WHERE fallback IS NOT NULL",
                    specs::COLUMNS
                );
                let row = tx
                    .query_opt(&sql, &[])
                    .await?
                    .ok_or(StoreError::NoFallbackSpec)?;
                (row.try_get(0)?, specs::spec_at(&row, 1)?)
            }
        };
        if spec.archived.is_some() {
            return Err(StoreError::SpecArchivedForJob(spec.slug));
        }
        let uuid = Uuid::new_v4();
        let t = now();
        let id: i64 = tx
            .query_one(
                "INSERT INTO jobs (uuid, status, spec_id, priority, config, timeout, created,
                                   modified)
                 VALUES ($1, 'pending', $2, $3, $4, $5, $6, $6) RETURNING id",
                &[
                    &uuid,
                    &spec_id,
                    &new.priority,
                    &new.config,
                    &i64::from(new.timeout),
                    &t,
                ],
            )
            .await?
            .try_get(0)?;
        let job = job_by_id(&tx, id).await?.job;
        let fields = serde_json::json!({
            "spec": spec.uuid, "spec_slug": spec.slug, "priority": new.priority,
            "config": new.config,
        });
        record(&tx, actor, AuditAction::JobCreate, Some(uuid), None, fields).await?;
        super::events::notify(&tx, &Event::JobPending { spec: spec_id }).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// One job, by UUID.
    pub async fn job(&self, uuid: Uuid) -> Result<JobRow, StoreError> {
        let mut client = self.client().await?;
        let tx = client.build_transaction().read_only(true).start().await?;
        let stmt = tx
            .prepare_cached(&format!("SELECT {COLUMNS} FROM jobs j WHERE j.uuid = $1"))
            .await?;
        let row = tx
            .query_opt(&stmt, &[&uuid])
            .await?
            .ok_or(StoreError::NotFound {
                kind: Kind::Job,
                by: Ref::Uuid(uuid),
            })?;
        let job = job_at(&tx, &row).await?.job;
        tx.commit().await?;
        Ok(job)
    }

    /// Claims for runner `runner` (row id, still keyed by `key_hash` and
    /// active) the best pending job of its specs: higher priority first,
    /// then older. With `seen`, the runner sent a message: its
    /// `last_heartbeat` (and its agent's report, if any) is written too.
    pub async fn claim_job(
        &self,
        runner: i64,
        key_hash: RunnerKeyHash,
        seen: Option<Option<AgentInfo>>,
    ) -> Result<Claim, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let t = now();
        let hash: &[u8] = &key_hash.0;
        let stmt = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM runners
                                WHERE id = $1 AND token_hash = $2 AND archived IS NULL)",
            )
            .await?;
        let active: bool = tx.query_one(&stmt, &[&runner, &hash]).await?.try_get(0)?;
        if !active {
            return Err(StoreError::RunnerRevoked);
        }
        if let Some(agent) = seen {
            runner_seen(&tx, runner, agent.as_ref(), t).await?;
        }
        let stmt = tx
            .prepare_cached("SELECT spec_id FROM runner_specs WHERE runner_id = $1 ORDER BY id")
            .await?;
        let specs: Vec<i64> = tx
            .query(&stmt, &[&runner])
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let stmt = tx
            .prepare_cached(
                "UPDATE jobs SET status = 'claimed', runner_id = $1, claimed = $2,
                                 last_heartbeat = $2, modified = $2
                 WHERE id = (SELECT id FROM jobs
                             WHERE status = 'pending' AND spec_id = ANY($3)
                             ORDER BY priority DESC, id ASC
                             LIMIT 1 FOR UPDATE SKIP LOCKED)
                   AND status = 'pending'
                 RETURNING id",
            )
            .await?;
        let claimed = tx.query_opt(&stmt, &[&runner, &t, &specs]).await?;
        let job = match claimed {
            Some(row) => Some(job_by_id(&tx, row.try_get(0)?).await?),
            None => None,
        };
        tx.commit().await?;
        Ok(Claim { job, specs })
    }
}
