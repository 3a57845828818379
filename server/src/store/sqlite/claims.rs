//! A runner's channel on SQLite: its specs, the claim (one transaction of
//! the single writer, for the channel that is the runner's recorded one,
//! so a job is claimed exactly once however many runners wait), a job put
//! back in the queue, the runner's reports, and the channel's own record.

use rusqlite::{Connection, OptionalExtension, params};

use super::jobs::{COLUMNS, expire, job_by_id, job_by_uuid, query_jobs, transition};
use super::{SqliteStore, to_text};
use crate::store::error::StoreError;
use crate::store::model::events::Event;
use crate::store::model::now;
use crate::store::model::{AgentInfo, JobId, RunnerChannel, RunnerId, SpecId};
use crate::store::operations::ClaimOps;
use crate::store::rules::{
    Claim, Claimant, Claimed, Expiry, Move, Reported, RunnerReport, Timeouts, claimable, decide,
};

impl ClaimOps for SqliteStore {
    /// The specs (row ids) of runner `runner` (row id).
    async fn runner_spec_ids(&self, runner: RunnerId) -> Result<Vec<SpecId>, StoreError> {
        self.read(move |c| spec_ids(c, runner)).await
    }

    /// Claims for runner `runner` (row id, still keyed by `key_hash` and
    /// active) the best pending job of its specs: higher priority first,
    /// then older, for its channel opened at `channel`, which must still be
    /// the runner's recorded one ([`StoreError::ChannelNotCurrent`]: a
    /// channel that was replaced never takes a job). With `seen`, the
    /// runner sent a message: its `last_heartbeat` (and its agent's report,
    /// if any) is written too.
    async fn claim_job(&self, claimant: Claimant) -> Result<Claim, StoreError> {
        let (runner, key_hash) = (claimant.runner, claimant.key_hash);
        let (channel, seen) = (claimant.channel, claimant.seen);
        self.write(move |tx| {
            let t = to_text(now());
            let found: Option<bool> = tx
                .prepare_cached(
                    "SELECT channel IS ? FROM runners
                      WHERE id = ? AND token_hash = ? AND archived IS NULL",
                )?
                .query_row(params![to_text(channel), runner, key_hash], |r| r.get(0))
                .optional()?;
            claimable(found)?;
            if let Some(agent) = seen {
                runner_seen(tx, runner, agent.as_ref(), &t)?;
            }
            let specs = spec_ids(tx, runner)?;
            let mut best: Option<(i64, i64)> = None;
            let mut pick = tx.prepare_cached(
                "SELECT priority, id FROM jobs WHERE status = 'pending' AND spec_id = ?
                 ORDER BY priority DESC, id ASC LIMIT 1",
            )?;
            for spec in &specs {
                let top: Option<(i64, i64)> = pick
                    .query_row([spec], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((priority, id)) = top {
                    // Higher priority, then the lower id (older).
                    if best.is_none_or(|(bp, bid)| (priority, -id) > (bp, -bid)) {
                        best = Some((priority, id));
                    }
                }
            }
            let job = match best {
                None => None,
                Some((_, id)) => {
                    let n = tx
                        .prepare_cached(
                            "UPDATE jobs SET status = 'claimed', runner_id = ?1, claimed = ?2,
                                             last_heartbeat = ?2, modified = ?2
                             WHERE id = ?3 AND status = 'pending'",
                        )?
                        .execute(params![runner, t, id])?;
                    (n == 1)
                        .then(|| job_by_id(tx, JobId(id)))
                        .transpose()?
                        .map(|r| Claimed {
                            id: r.id,
                            spec_id: r.spec_id,
                            job: r.row,
                        })
                }
            };
            Ok(Claim { job, specs })
        })
        .await
    }

    /// Puts job `id`, claimed by `runner` but not confirmed by its
    /// `running`, back in the queue (same priority and age), and records
    /// that it was taken back from `runner`; runners waiting for its spec
    /// are told. Whether it went back (a job already running, or ended, or
    /// not this runner's, stays as it is).
    async fn release_job(&self, id: JobId, runner: RunnerId) -> Result<bool, StoreError> {
        let spec = self
            .write(move |tx| {
                let spec = tx
                    .prepare_cached(
                        "UPDATE jobs SET status = 'pending', runner_id = NULL, claimed = NULL,
                                         last_heartbeat = NULL, modified = ?1
                         WHERE id = ?2 AND runner_id = ?3 AND status = 'claimed'
                         RETURNING spec_id",
                    )?
                    .query_row(params![to_text(now()), id, runner], |r| {
                        r.get::<_, SpecId>(0)
                    })
                    .optional()?;
                if spec.is_some() {
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO job_releases (job_id, runner_id) VALUES (?, ?)",
                    )?
                    .execute(params![id, runner])?;
                }
                Ok(spec)
            })
            .await?;
        if let Some(spec) = spec {
            self.publish(Event::JobPending { spec });
        }
        Ok(spec.is_some())
    }

    /// Records that runner `runner` (row id) sent a message (its
    /// `last_heartbeat`), with its agent's report if it made one.
    async fn runner_seen(
        &self,
        runner: RunnerId,
        agent: Option<AgentInfo>,
    ) -> Result<(), StoreError> {
        self.write(move |tx| runner_seen(tx, runner, agent.as_ref(), &to_text(now())))
            .await
    }

    /// What runner `runner` (row id) reports about its job `job`: the
    /// transition it makes, under the timeout rules; the runner's
    /// `last_heartbeat` is written too. A job that is not this runner's is
    /// [`StoreError::NotRunnersJob`], and nothing is written.
    async fn report_job(
        &self,
        said: RunnerReport,
        timeouts: Timeouts,
    ) -> Result<Reported, StoreError> {
        self.write(move |tx| {
            let (runner, job, report) = (said.runner, said.job, said.report);
            let read = job_by_uuid(tx, job).map_err(|e| match e {
                StoreError::NotFound { .. } => StoreError::NotRunnersJob(job),
                e => e,
            })?;
            if read.runner_id != Some(runner) {
                let released: bool = tx
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM job_releases
                                        WHERE job_id = ? AND runner_id = ?)",
                    )?
                    .query_row(params![read.id, runner], |r| r.get(0))?;
                return if released {
                    runner_seen(tx, runner, None, &to_text(now()))?;
                    Ok(Reported::Dropped)
                } else {
                    Err(StoreError::NotRunnersJob(job))
                };
            }
            runner_seen(tx, runner, None, &to_text(now()))?;
            let (answer, change) = decide(report, &read.row, &timeouts, now());
            if let Some(m) = change
                && transition(tx, read.id, &m)?
                && let Some(results) = &m.results
            {
                super::reports::store_results(tx, read.id, results)?;
            }
            Ok(answer)
        })
        .await
    }

    /// Fails job `id` (row id) if it is claimed or running, with `error`
    /// (its runner was archived or re-keyed while running it).
    async fn fail_job(&self, id: JobId, error: &'static str) -> Result<bool, StoreError> {
        self.write(move |tx| transition(tx, id, &Move::fail(error)))
            .await
    }

    /// Applies the timeout rules to job `id` (row id) now.
    async fn expire_job(&self, id: JobId, timeouts: Timeouts) -> Result<Expiry, StoreError> {
        self.write(move |tx| expire(tx, id, &timeouts)).await
    }

    /// Every job claimed or running, with its row id: to hold to the
    /// timeout rules after a restart.
    async fn active_jobs(&self) -> Result<Vec<Claimed>, StoreError> {
        self.scan(|c| {
            Ok(query_jobs(
                c,
                &format!("SELECT {COLUMNS} FROM jobs j WHERE j.status IN ('claimed', 'running')"),
                &[],
            )?
            .into_iter()
            .map(|r| Claimed {
                id: r.id,
                spec_id: r.spec_id,
                job: r.row,
            })
            .collect())
        })
        .await
    }

    /// Marks runner `runner` (row id) as having a channel open since
    /// `since` (or none), unless a newer channel has replaced it.
    async fn set_channel(&self, channel: RunnerChannel, open: bool) -> Result<(), StoreError> {
        let RunnerChannel { runner, since } = channel;
        self.write(move |tx| {
            let since = to_text(since);
            if open {
                tx.prepare_cached("UPDATE runners SET channel = ? WHERE id = ?")?
                    .execute(params![since, runner])?;
            } else {
                tx.prepare_cached(
                    "UPDATE runners SET channel = NULL WHERE id = ? AND channel = ?",
                )?
                .execute(params![runner, since])?;
            }
            Ok(())
        })
        .await
    }

    /// Only PostgreSQL's replicas tell each other of channels: on SQLite,
    /// one process serves the file, and a channel is never superseded.
    async fn channel_superseded(&self, _: RunnerChannel) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// One process serves the file: at its start no channel is open, and
    /// every runner's is cleared.
    async fn serve_channels(&self) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE runners SET channel = NULL WHERE channel IS NOT NULL")?
                .execute([])?;
            Ok(())
        })
        .await
    }
}

fn spec_ids(conn: &Connection, runner: RunnerId) -> Result<Vec<SpecId>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT spec_id FROM runner_specs WHERE runner_id = ? ORDER BY id")?
        .query_map([runner], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

fn runner_seen(
    conn: &Connection,
    runner: RunnerId,
    agent: Option<&AgentInfo>,
    t: &str,
) -> Result<(), StoreError> {
    match agent {
        Some(a) => conn
            .prepare_cached(
                "UPDATE runners SET last_heartbeat = ?1, os = ?2, arch = ?3, version = ?4
                 WHERE id = ?5",
            )?
            .execute(params![t, a.os, a.arch, a.version, runner])?,
        None => conn
            .prepare_cached("UPDATE runners SET last_heartbeat = ? WHERE id = ?")?
            .execute(params![t, runner])?,
    };
    Ok(())
}
