//! Jobs on PostgreSQL, a first part: create, read, and the claim (the twin
//! of `../jobs.rs`). The claim is one statement, `UPDATE … WHERE id =
//! (SELECT … FOR UPDATE SKIP LOCKED)`, in the transaction that checks the
//! runner: runners racing on any replica skip each other's row, so a job is
//! claimed exactly once. What a runner's report does is decided by the
//! SQLite engine's own `decide` (shared); only the writes differ.

use tokio_postgres::Row;
use uuid::Uuid;

use super::super::events::Event;
use super::super::principal::Actor;
use chrono::{DateTime, Utc};

use super::super::rules::{Claim, Claimed, Expiry, Reported, Timeouts, decide, expired, expiry};
use super::super::model::{
    AgentInfo, AuditAction, JobReport, JobRow, JobStatus, Kind, NewJob, RunnerKeyHash, RunnerRef,
    SpecRef,
};
use super::{PgStore, StoreError, Tx, now, record, specs, text_enum};
use crate::validate::{Direction, JobListQuery, Ref};

/// The columns [`job_at`] reads; its spec is read by its id.
const COLUMNS: &str = "j.id, j.uuid, j.status, j.spec_id, j.config, \
    (SELECT uuid FROM runners WHERE runners.id = j.runner_id), j.claimed, j.started, \
    j.completed, j.created, j.modified, j.output, j.priority, j.last_heartbeat, j.timeout";

/// [`COLUMNS`] for a list of jobs, which never carries a job's output:
/// `NULL::jsonb` in its place, so that a page does not even read it.
fn list_columns() -> String {
    COLUMNS.replacen("j.output", "NULL::jsonb", 1)
}

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
            output: output_at(row, 11)?,
            priority: row.try_get(12)?,
            last_heartbeat: row.try_get(13)?,
            timeout: u32::try_from(timeout).map_err(|_| {
                StoreError::Task(format!("a job's timeout {timeout} is out of range"))
            })?,
        },
    })
}

/// A job's output, kept as JSON text (`jsonb` refuses U+0000).
fn output_at(row: &Row, idx: usize) -> Result<Option<serde_json::Value>, StoreError> {
    row.try_get::<_, Option<String>>(idx)?
        .map(|text| {
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Task(format!("a job's stored output is unreadable: {e}")))
        })
        .transpose()
}

async fn job_by_uuid(tx: &Tx<'_>, uuid: Uuid) -> Result<Claimed, StoreError> {
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
    job_at(tx, &row).await
}

/// Moves job `id` from one of `from` to `to`, stamping `stamp` (a column,
/// if any) and `last_heartbeat`; whether it moved. One conditional write:
/// its row lock makes racing transitions apply one after the other, and
/// the second finds the status it left gone.
async fn transition(
    tx: &Tx<'_>,
    id: i64,
    from: &[JobStatus],
    to: JobStatus,
    stamp: Option<&str>,
    output: Option<&serde_json::Value>,
) -> Result<bool, StoreError> {
    let set_stamp = stamp.map(|c| format!(", {c} = $1")).unwrap_or_default();
    let set_output = if output.is_some() {
        ", output = $5"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE jobs SET status = $2, modified = $1, last_heartbeat = $1{set_stamp}{set_output}
         WHERE id = $3 AND status = ANY($4)"
    );
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let stmt = tx.prepare_cached(&sql).await?;
    let n = match output {
        Some(o) => {
            let text = o.to_string();
            tx.execute(&stmt, &[&now(), &to.as_str(), &id, &from, &text])
                .await?
        }
        None => {
            tx.execute(&stmt, &[&now(), &to.as_str(), &id, &from])
                .await?
        }
    };
    Ok(n > 0)
}

/// A runner's row id, by reference.
async fn runner_id(tx: &Tx<'_>, r: &RunnerRef) -> Result<i64, StoreError> {
    let row = match r.by() {
        Ref::Uuid(uuid) => {
            tx.query_opt("SELECT id FROM runners WHERE uuid = $1", &[uuid])
                .await?
        }
        Ref::Slug(slug) => {
            tx.query_opt("SELECT id FROM runners WHERE slug = $1", &[slug])
                .await?
        }
    };
    let row = row.ok_or_else(|| StoreError::NotFound {
        kind: Kind::Runner,
        by: r.by().clone(),
    })?;
    Ok(row.try_get(0)?)
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
    t: DateTime<Utc>,
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
        let uuid = super::super::new_uuid();
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
        channel: DateTime<Utc>,
        seen: Option<Option<AgentInfo>>,
    ) -> Result<Claim, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let t = now();
        let hash: &[u8] = &key_hash.0;
        // The runner's row locked: a channel opening elsewhere waits for
        // this claim, or this claim sees it.
        let stmt = tx
            .prepare_cached(
                "SELECT channel IS NOT DISTINCT FROM $3 AND channel_replica IS NOT DISTINCT FROM $4
                   FROM runners
                  WHERE id = $1 AND token_hash = $2 AND archived IS NULL
                    FOR UPDATE",
            )
            .await?;
        let current: Option<bool> = tx
            .query_opt(&stmt, &[&runner, &hash, &channel, &self.replica])
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        match current {
            None => return Err(StoreError::RunnerRevoked),
            Some(false) => return Err(StoreError::ChannelNotCurrent),
            Some(true) => {}
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

    /// One page of the jobs matching `q` (and of runner `runner`'s only, if
    /// given), and how many match in all, in one snapshot.
    pub async fn list_jobs(
        &self,
        runner: Option<RunnerRef>,
        q: JobListQuery,
    ) -> Result<(Vec<JobRow>, u64), StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let mut filters = Vec::new();
        let mut args: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = Vec::new();
        let named: Option<RunnerRef> = runner.or(q.runner.clone().map(Into::into));
        if let Some(r) = &named {
            args.push(Box::new(runner_id(&tx, r).await?));
            filters.push(format!("j.runner_id = ${}", args.len()));
        }
        if let Some(spec) = &q.spec {
            let (id, _) = specs::find(&tx, &SpecRef::from(spec.clone()), false).await?;
            args.push(Box::new(id));
            filters.push(format!("j.spec_id = ${}", args.len()));
        }
        if !q.statuses.is_empty() {
            args.push(Box::new(q.statuses.clone()));
            filters.push(format!("j.status = ANY(${})", args.len()));
        }
        let where_sql = if filters.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", filters.join(" AND "))
        };
        let total: i64 = tx
            .query_one(
                &format!("SELECT count(*) FROM jobs j{where_sql}"),
                &super::items::params(&args),
            )
            .await?
            .try_get(0)?;
        let order = match q.direction {
            Direction::Asc => "j.id ASC",
            Direction::Desc => "j.id DESC",
        };
        let (limit, offset) = (args.len() + 1, args.len() + 2);
        let per_page = i64::from(q.per_page);
        let skip = i64::try_from(q.offset()).unwrap_or(i64::MAX);
        let mut page_args = super::items::params(&args);
        page_args.push(&per_page);
        page_args.push(&skip);
        let rows = tx
            .query(
                &format!(
                    "SELECT {} FROM jobs j{where_sql} ORDER BY {order}
                     LIMIT ${limit} OFFSET ${offset}",
                    list_columns()
                ),
                &page_args,
            )
            .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            jobs.push(job_at(&tx, row).await?.job);
        }
        tx.commit().await?;
        Ok((jobs, u64::try_from(total).unwrap_or(0)))
    }

    /// Cancels a job that has not ended, with its audit row: a pending one
    /// at once; a claimed or running one's runner, on whichever replica
    /// holds its channel, is told to stop it.
    pub async fn cancel_job(&self, uuid: Uuid, actor: &Actor) -> Result<JobRow, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Locked: a claim or report racing the cancel waits, or went first.
        tx.execute("SELECT 1 FROM jobs WHERE uuid = $1 FOR UPDATE", &[&uuid])
            .await?;
        let read = job_by_uuid(&tx, uuid).await?;
        let before = read.job.status;
        if before.has_ended() {
            return Err(StoreError::JobEnded {
                job: uuid,
                status: before.as_str(),
            });
        }
        let error = serde_json::json!({"results": [], "error": "canceled by an admin"});
        transition(
            &tx,
            read.id,
            &[before],
            JobStatus::Canceled,
            Some("completed"),
            Some(&error),
        )
        .await?;
        let job = job_by_id(&tx, read.id).await?.job;
        let fields = serde_json::json!({"status": [before.as_str(), "canceled"]});
        record(&tx, actor, AuditAction::JobCancel, Some(uuid), None, fields).await?;
        if let (Some(runner), JobStatus::Claimed | JobStatus::Running) = (job.runner, before) {
            super::events::notify(&tx, &Event::JobCanceled { runner, job: uuid }).await?;
        }
        tx.commit().await?;
        Ok(job)
    }

    /// The specs (row ids) of runner `runner` (row id).
    pub async fn runner_spec_ids(&self, runner: i64) -> Result<Vec<i64>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT spec_id FROM runner_specs WHERE runner_id = $1 ORDER BY id")
            .await?;
        Ok(client
            .query(&stmt, &[&runner])
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    /// Puts job `id`, claimed by `runner` but never given to it, back in
    /// the queue; runners waiting for its spec, on every replica, are told.
    pub async fn release_job(&self, id: i64, runner: i64) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let spec = tx
            .query_opt(
                "UPDATE jobs SET status = 'pending', runner_id = NULL, claimed = NULL,
                                 last_heartbeat = NULL, modified = $1
                 WHERE id = $2 AND runner_id = $3 AND status = 'claimed'
                 RETURNING spec_id",
                &[&now(), &id, &runner],
            )
            .await?;
        let released = spec.is_some();
        if let Some(row) = spec {
            let spec: i64 = row.try_get(0)?;
            tx.execute(
                "INSERT INTO job_releases (job_id, runner_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&id, &runner],
            )
            .await?;
            super::events::notify(&tx, &Event::JobPending { spec }).await?;
        }
        tx.commit().await?;
        Ok(released)
    }

    /// Records that runner `runner` (row id) sent a message.
    pub async fn runner_seen(
        &self,
        runner: i64,
        agent: Option<AgentInfo>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        runner_seen(&tx, runner, agent.as_ref(), now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// What runner `runner` (row id) reports about its job `job` (decided
    /// as on SQLite, by `jobs::decide`), with the job's row locked.
    pub async fn report_job(
        &self,
        runner: i64,
        job: Uuid,
        report: JobReport,
        timeouts: Timeouts,
    ) -> Result<Reported, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let owner = tx
            .query_opt(
                "SELECT id, runner_id FROM jobs WHERE uuid = $1 FOR UPDATE",
                &[&job],
            )
            .await?
            .ok_or(StoreError::NotRunnersJob(job))?;
        let (id, owner): (i64, Option<i64>) = (owner.try_get(0)?, owner.try_get(1)?);
        if owner != Some(runner) {
            let stmt = tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM job_releases
                                    WHERE job_id = $1 AND runner_id = $2)",
                )
                .await?;
            if !tx
                .query_one(&stmt, &[&id, &runner])
                .await?
                .try_get::<_, bool>(0)?
            {
                return Err(StoreError::NotRunnersJob(job));
            }
            runner_seen(&tx, runner, None, now()).await?;
            tx.commit().await?;
            return Ok(Reported::Dropped);
        }
        let read = job_by_uuid(&tx, job).await?;
        runner_seen(&tx, runner, None, now()).await?;
        let (answer, change) = decide(report, &read.job, &timeouts, now());
        if let Some(m) = change {
            transition(&tx, read.id, m.from, m.to, m.stamp, m.output.as_ref()).await?;
        }
        tx.commit().await?;
        Ok(answer)
    }

    /// Fails job `id` (row id) if it is claimed or running, with `error`.
    pub async fn fail_job(&self, id: i64, error: &'static str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let output = serde_json::json!({"results": [], "error": error});
        let moved = transition(
            &tx,
            id,
            &[JobStatus::Claimed, JobStatus::Running],
            JobStatus::Failed,
            Some("completed"),
            Some(&output),
        )
        .await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Applies the timeout rules to job `id` (row id) now.
    pub async fn expire_job(&self, id: i64, timeouts: Timeouts) -> Result<Expiry, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", &[&id])
            .await?;
        let job = job_by_id(&tx, id).await?.job;
        let (status, output) = match expiry(&job, &timeouts, now()) {
            Ok(change) => change,
            Err(answer) => return Ok(answer),
        };
        let moved = transition(
            &tx,
            id,
            &[JobStatus::Claimed, JobStatus::Running],
            status,
            Some("completed"),
            Some(&output),
        )
        .await?;
        tx.commit().await?;
        Ok(expired(moved, status))
    }

    /// Every job claimed or running, with its row id. (Across replicas,
    /// the reaper takes only jobs whose runner's replica is gone: see
    /// ENGINES.md, "replica leases".)
    pub async fn active_jobs(&self) -> Result<Vec<Claimed>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.build_transaction().read_only(true).start().await?;
        let rows = tx
            .query(
                &format!("SELECT {COLUMNS} FROM jobs j WHERE j.status IN ('claimed', 'running')"),
                &[],
            )
            .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            jobs.push(job_at(&tx, row).await?);
        }
        tx.commit().await?;
        Ok(jobs)
    }

    /// Whether runner `runner`'s channel opened at `since` here is no
    /// longer the one recorded (another replica's, or none, is).
    pub async fn channel_superseded(
        &self,
        runner: i64,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT channel IS DISTINCT FROM $2 OR channel_replica IS DISTINCT FROM $3
                   FROM runners WHERE id = $1",
            )
            .await?;
        let row = client
            .query_opt(&stmt, &[&runner, &since, &self.replica])
            .await?;
        Ok(row.is_some_and(|r| r.get(0)))
    }

    /// Marks runner `runner` (row id) as having a channel open since
    /// `since`, held by this process (or none), unless a newer channel has
    /// replaced it.
    pub async fn set_channel(
        &self,
        runner: i64,
        since: DateTime<Utc>,
        open: bool,
    ) -> Result<(), StoreError> {
        // Held (or not) whatever the write's fate: the reconcile writes what
        // this one could not (the database down, say).
        self.hold_channel(runner, since, open);
        let client = self.client().await?;
        let _writing = self.channel_writes.lock().await;
        if open {
            // Recorded, and every other replica told: one that holds a
            // channel of this runner closes it (one channel per runner).
            let stmt = client
                .prepare_cached(
                    "WITH opened AS (
                         UPDATE runners SET channel = $1, channel_replica = $3 WHERE id = $2
                         RETURNING uuid)
                     SELECT pg_notify($4, json_build_object('channel_opened',
                                json_build_object('runner', uuid, 'replica', $3::uuid))::text)
                       FROM opened",
                )
                .await?;
            client
                .execute(
                    &stmt,
                    &[&since, &runner, &self.replica, &super::events::CHANNEL],
                )
                .await?;
        } else {
            client
                .execute(
                    "UPDATE runners SET channel = NULL, channel_replica = NULL \
                     WHERE id = $1 AND channel = $2",
                    &[&runner, &since],
                )
                .await?;
        }
        Ok(())
    }
}
