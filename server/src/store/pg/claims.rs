//! A runner's channel on PostgreSQL (the twin of `../sqlite/claims.rs`). The claim
//! is one statement, `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP
//! LOCKED)`, in the transaction that checks the runner and its channel:
//! runners racing on any replica skip each other's row, so a job is claimed
//! exactly once. What a runner's report does is decided by the shared
//! rules (`decide`); only the writes differ.

use chrono::{DateTime, Utc};

use super::jobs::{COLUMNS, job_at, job_by_id, job_by_uuid, transition};
use super::{PgStore, StoreError, Tx, now};
use crate::store::model::events::Event;
use crate::store::model::{AgentInfo, JobId, RunnerChannel, RunnerId, SpecId};
use crate::store::operations::ClaimOps;
use crate::store::rules::{
    ACTIVE, Claim, Claimant, Claimed, Expiry, Move, Reported, RunnerReport, Timeouts, claimable,
    decide, expired, expiry,
};

/// The runner's message: its `last_heartbeat`, and its agent's report.
async fn runner_seen(
    tx: &Tx<'_>,
    runner: RunnerId,
    agent: Option<&AgentInfo>,
    t: DateTime<Utc>,
) -> Result<(), StoreError> {
    match agent {
        Some(a) => {
            let (os, arch) = (a.os.as_str(), a.arch.as_str());
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

impl ClaimOps for PgStore {
    /// Claims for runner `runner` (row id, still keyed by `key_hash` and
    /// active) the best pending job of its specs: higher priority first,
    /// then older. With `seen`, the runner sent a message: its
    /// `last_heartbeat` (and its agent's report, if any) is written too.
    async fn claim_job(&self, claimant: Claimant) -> Result<Claim, StoreError> {
        let (runner, key_hash) = (claimant.runner, claimant.key_hash);
        let (channel, seen) = (claimant.channel, claimant.seen);
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
        claimable(current)?;
        if let Some(agent) = seen {
            runner_seen(&tx, runner, agent.as_ref(), t).await?;
        }
        let stmt = tx
            .prepare_cached("SELECT spec_id FROM runner_specs WHERE runner_id = $1 ORDER BY id")
            .await?;
        let specs: Vec<SpecId> = tx
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

    /// The specs (row ids) of runner `runner` (row id).
    async fn runner_spec_ids(&self, runner: RunnerId) -> Result<Vec<SpecId>, StoreError> {
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
    async fn release_job(&self, id: JobId, runner: RunnerId) -> Result<bool, StoreError> {
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
            let spec: SpecId = row.try_get(0)?;
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
    async fn runner_seen(
        &self,
        runner: RunnerId,
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
    async fn report_job(
        &self,
        said: RunnerReport,
        timeouts: Timeouts,
    ) -> Result<Reported, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let (runner, job, report) = (said.runner, said.job, said.report);
        let owner = tx
            .query_opt(
                "SELECT id, runner_id FROM jobs WHERE uuid = $1 FOR UPDATE",
                &[&job],
            )
            .await?
            .ok_or(StoreError::NotRunnersJob(job))?;
        let (id, owner): (JobId, Option<RunnerId>) = (owner.try_get(0)?, owner.try_get(1)?);
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
        // A run's job processed: its results go to its report, in the
        // same transaction as the move.
        if let Some(m) = change
            && transition(&tx, read.id, &m).await?
            && let Some(results) = &m.results
        {
            super::reports::store_results(&tx, read.id, results).await?;
        }
        tx.commit().await?;
        Ok(answer)
    }

    /// Fails job `id` (row id) if it is claimed or running, with `error`.
    async fn fail_job(&self, id: JobId, error: &'static str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let moved = transition(&tx, id, &Move::fail(error)).await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Applies the timeout rules to job `id` (row id) now.
    async fn expire_job(&self, id: JobId, timeouts: Timeouts) -> Result<Expiry, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", &[&id])
            .await?;
        let job = job_by_id(&tx, id).await?.job;
        let (status, output) = match expiry(&job, &timeouts, now()) {
            Ok(change) => change,
            Err(answer) => return Ok(answer),
        };
        let moved = transition(&tx, id, &Move::end(ACTIVE, status, output)).await?;
        tx.commit().await?;
        Ok(expired(moved, status))
    }

    /// Every job claimed or running, with its row id. (Across replicas,
    /// the reaper takes only jobs whose runner's replica is gone: see
    /// ENGINES.md, "replica leases".)
    async fn active_jobs(&self) -> Result<Vec<Claimed>, StoreError> {
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
    async fn channel_superseded(&self, channel: RunnerChannel) -> Result<bool, StoreError> {
        let RunnerChannel { runner, since } = channel;
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
    async fn set_channel(&self, channel: RunnerChannel, open: bool) -> Result<(), StoreError> {
        let RunnerChannel { runner, since } = channel;
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

    /// This process starts its lease (renewed until the store closes), and
    /// the channels of processes whose lease lapsed are cleared; other live
    /// replicas keep theirs.
    async fn serve_channels(&self) -> Result<(), StoreError> {
        self.hold_lease().await
    }
}
