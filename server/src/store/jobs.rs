//! Jobs: the queue, the claim, what runners report, cancel, and the
//! timeout rules. Every transition is one conditional write (its `WHERE`
//! names the status it leaves), so two writers can never both make it; the
//! claim is one transaction of this process's single writer, so a job is
//! claimed exactly once however many runners wait.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter, types::Value};
use uuid::Uuid;

use super::audit::record;
use super::events::Event;
use super::items::{self, Item};
use super::model::{
    AgentInfo, AuditAction, JobReport, JobRow, JobStatus, Kind, NewJob, RunnerRef, Runners,
    SpecRow, Specs,
};
use super::principal::Actor;
use super::{Store, StoreError, now, opt_time_at, time_at, to_text, uuid_at};
use crate::validate::{Direction, JobListQuery, Ref};

/// The columns [`job_at`] reads (the spec is read by its id, once per
/// statement for the jobs of one spec).
const COLUMNS: &str = "j.id, j.uuid, j.status, j.spec_id, j.config, \
    (SELECT uuid FROM runners WHERE runners.id = j.runner_id), j.claimed, j.started, \
    j.completed, j.created, j.modified, j.output, j.priority, j.last_heartbeat, j.timeout, \
    j.runner_id";

/// [`COLUMNS`] for a list of jobs, which never carries a job's output:
/// `NULL` in its place, so that a page does not even read it.
fn list_columns() -> String {
    COLUMNS.replacen("j.output", "NULL", 1)
}

/// A job's row id, its spec's and its runner's row ids, and the job
/// without its spec.
struct Read {
    id: i64,
    spec_id: i64,
    runner_id: Option<i64>,
    row: JobRow,
}

fn json_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    let text: Option<String> = row.get(idx)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
        })
    })
    .transpose()
}

fn job_at(row: &Row<'_>, spec: SpecRow) -> rusqlite::Result<Read> {
    Ok(Read {
        id: row.get(0)?,
        spec_id: row.get(3)?,
        runner_id: row.get(15)?,
        row: JobRow {
            uuid: uuid_at(row, 1)?,
            status: row.get(2)?,
            spec,
            config: json_at(row, 4)?.unwrap_or_default(),
            runner: row
                .get::<_, Option<String>>(5)?
                .and_then(|u| Uuid::try_parse(&u).ok()),
            claimed: opt_time_at(row, 6)?,
            started: opt_time_at(row, 7)?,
            completed: opt_time_at(row, 8)?,
            created: time_at(row, 9)?,
            modified: time_at(row, 10)?,
            output: json_at(row, 11)?,
            priority: row.get(12)?,
            last_heartbeat: opt_time_at(row, 13)?,
            timeout: row.get(14)?,
        },
    })
}

/// A placeholder spec, replaced by the real one once read.
fn no_spec() -> SpecRow {
    SpecRow {
        uuid: Uuid::nil(),
        name: String::new(),
        slug: String::new(),
        architecture: crate::types::Architecture::X86_64,
        os: crate::types::OperatingSystem::Linux,
        cpu: 0,
        memory: 0,
        disk: 0,
        network: false,
        sandbox: None,
        fallback: None,
        archived: None,
        created: DateTime::<Utc>::MIN_UTC,
        modified: DateTime::<Utc>::MIN_UTC,
    }
}

/// Reads the jobs `sql` selects (with [`COLUMNS`]), each with its spec.
fn query_jobs(conn: &Connection, sql: &str, args: &[Value]) -> Result<Vec<Read>, StoreError> {
    let mut reads = conn
        .prepare_cached(sql)?
        .query_map(params_from_iter(args), |r| job_at(r, no_spec()))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut specs: HashMap<i64, SpecRow> = HashMap::new();
    let mut spec_stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM specs WHERE id = ?",
        Specs::COLUMNS
    ))?;
    for read in &mut reads {
        let spec = match specs.get(&read.spec_id) {
            Some(spec) => spec.clone(),
            None => {
                let spec = spec_stmt.query_row([read.spec_id], |r| Specs::row_at(r, 0))?;
                specs.insert(read.spec_id, spec.clone());
                spec
            }
        };
        read.row.spec = spec;
    }
    Ok(reads)
}

fn job_by_id(conn: &Connection, id: i64) -> Result<Read, StoreError> {
    query_jobs(
        conn,
        &format!("SELECT {COLUMNS} FROM jobs j WHERE j.id = ?"),
        &[Value::Integer(id)],
    )?
    .pop()
    .ok_or(StoreError::Task(
        "a job vanished within its transaction".into(),
    ))
}

fn job_by_uuid(conn: &Connection, uuid: Uuid) -> Result<Read, StoreError> {
    query_jobs(
        conn,
        &format!("SELECT {COLUMNS} FROM jobs j WHERE j.uuid = ?"),
        &[Value::Text(uuid.to_string())],
    )?
    .pop()
    .ok_or_else(|| StoreError::NotFound {
        kind: Kind::Job,
        by: Ref::Uuid(uuid),
    })
}

/// A job claimed by a runner: its row and row id.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub id: i64,
    /// Its spec's row id.
    pub spec_id: i64,
    pub job: JobRow,
}

/// What a claim found: the job (if any), and the runner's specs (row ids)
/// as they are now, for the runner to wait on.
#[derive(Clone, Debug)]
pub struct Claim {
    pub job: Option<Claimed>,
    pub specs: Vec<i64>,
}

/// What a runner's report did to its job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reported {
    /// The job moved to (or stayed in) this status.
    Now(JobStatus),
    /// The job had already ended as reported (a repeated message): nothing
    /// changed.
    Repeated(JobStatus),
    /// The job had been canceled: the runner must stop it.
    Canceled,
    /// The job ran past its timeout and the grace: canceled now.
    TimedOut,
    /// The job had ended otherwise; the report changed nothing.
    Ignored(JobStatus),
    /// The job was taken back from this runner (its channel closed before
    /// it said `running`) and is now another's or queued again: the report
    /// changed nothing.
    Dropped,
}

/// What the timeout rules say of an unfinished job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// It has ended already.
    Ended,
    /// Nothing due before this time.
    NotBefore(DateTime<Utc>),
    /// Its runner was silent past the heartbeat timeout: failed now.
    Failed,
    /// It ran past its timeout plus the grace: canceled now.
    TimedOut,
}

/// The timeout rules: the heartbeat timeout and the job timeout's grace.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub heartbeat: Duration,
    pub grace: Duration,
}

impl Timeouts {
    /// When `job` is due for the rules: its last sign of life plus the
    /// heartbeat timeout, or its start plus its timeout and the grace,
    /// whichever is first.
    pub fn deadline(&self, job: &JobRow) -> DateTime<Utc> {
        let alive = job.last_heartbeat.or(job.claimed).unwrap_or(job.created);
        let silent = alive + chrono::Duration::from_std(self.heartbeat).unwrap_or_default();
        match self.run_out(job) {
            Some(run_out) => silent.min(run_out),
            None => silent,
        }
    }

    /// When `job` runs out of time (its start plus timeout plus grace).
    pub(super) fn run_out(&self, job: &JobRow) -> Option<DateTime<Utc>> {
        job.started.map(|started| {
            started
                + chrono::Duration::seconds(i64::from(job.timeout))
                + chrono::Duration::from_std(self.grace).unwrap_or_default()
        })
    }
}

/// Moves job `id` from one of `from` to `to`, stamping `column` (if any)
/// and `last_heartbeat`; whether it moved.
fn transition(
    conn: &Connection,
    id: i64,
    from: &[JobStatus],
    to: JobStatus,
    stamp: Option<&str>,
    output: Option<&serde_json::Value>,
) -> Result<bool, StoreError> {
    let t = to_text(now());
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let set_stamp = stamp.map(|c| format!(", {c} = ?1")).unwrap_or_default();
    let set_output = if output.is_some() {
        ", output = ?4"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE jobs SET status = ?2, modified = ?1, last_heartbeat = ?1{set_stamp}{set_output}
         WHERE id = ?3 AND status IN ({})",
        from.iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let output = output.map(|o| o.to_string());
    let n = match output {
        Some(o) => conn.prepare_cached(&sql)?.execute(params![t, to, id, o])?,
        None => conn.prepare_cached(&sql)?.execute(params![t, to, id])?,
    };
    Ok(n > 0)
}

/// The error text kept on a job that the timeout rules ended.
pub(super) fn expired_output(
    status: JobStatus,
    timeouts: &Timeouts,
    job: &JobRow,
) -> serde_json::Value {
    let results = job
        .output
        .as_ref()
        .and_then(|o| o.get("results").cloned())
        .unwrap_or_else(|| serde_json::json!([]));
    let error = match status {
        JobStatus::Canceled => format!(
            "the job ran past its timeout ({} s) plus the grace ({} s)",
            job.timeout,
            timeouts.grace.as_secs()
        ),
        _ => format!(
            "no message from the runner for the heartbeat timeout ({} s)",
            timeouts.heartbeat.as_secs()
        ),
    };
    serde_json::json!({ "results": results, "error": error })
}

/// A transition a report makes: from one of `from` to `to`, stamping the
/// column `stamp` (if any), keeping `output` (if any).
pub(super) struct Move {
    pub from: &'static [JobStatus],
    pub to: JobStatus,
    pub stamp: Option<&'static str>,
    pub output: Option<serde_json::Value>,
}

/// What `report` does to `job` at time `t`, under the timeout rules: the
/// answer, and the transition to make (each engine makes it its own way).
pub(super) fn decide(
    report: JobReport,
    job: &JobRow,
    timeouts: &Timeouts,
    t: DateTime<Utc>,
) -> (Reported, Option<Move>) {
    use JobStatus::*;
    const LIVE: &[JobStatus] = &[Claimed, Running];
    let status = job.status;
    let to = |from, to, stamp, output| {
        Some(Move {
            from,
            to,
            stamp,
            output,
        })
    };
    match report {
        JobReport::Running | JobReport::Heartbeat => match status {
            Canceled => (Reported::Canceled, None),
            Claimed | Running => {
                if timeouts.run_out(job).is_some_and(|r| t >= r) {
                    let output = expired_output(Canceled, timeouts, job);
                    (
                        Reported::TimedOut,
                        to(LIVE, Canceled, Some("completed"), Some(output)),
                    )
                } else if status == Claimed && report == JobReport::Running {
                    (
                        Reported::Now(Running),
                        to(&[Claimed], Running, Some("started"), None),
                    )
                } else {
                    (Reported::Now(status), to(LIVE, status, None, None))
                }
            }
            ended => (Reported::Ignored(ended), None),
        },
        JobReport::Completed(output) => match status {
            Completed => (Reported::Repeated(Completed), None),
            // Bencher takes a completion after a heartbeat timeout failed
            // the job: the results are worth keeping.
            Claimed | Running | Failed => (
                Reported::Now(Completed),
                to(
                    &[Claimed, Running, Failed],
                    Completed,
                    Some("completed"),
                    Some(output),
                ),
            ),
            ended => (Reported::Ignored(ended), None),
        },
        JobReport::Failed(output) => match status {
            Failed => (Reported::Repeated(Failed), None),
            Claimed | Running => (
                Reported::Now(Failed),
                to(LIVE, Failed, Some("completed"), Some(output)),
            ),
            ended => (Reported::Ignored(ended), None),
        },
        JobReport::Canceled => match status {
            Canceled => (Reported::Repeated(Canceled), None),
            Claimed | Running => {
                let output = serde_json::json!({"results": [], "error": "canceled by the runner"});
                (
                    Reported::Now(Canceled),
                    to(LIVE, Canceled, Some("completed"), Some(output)),
                )
            }
            ended => (Reported::Ignored(ended), None),
        },
    }
}

/// What the timeout rules do to `job` at `t`, on both engines: `Err` with
/// the answer when there is nothing to write, else the status to move it
/// to and the output to keep.
pub(super) fn expiry(
    job: &JobRow,
    timeouts: &Timeouts,
    t: DateTime<Utc>,
) -> Result<(JobStatus, serde_json::Value), Expiry> {
    if !matches!(job.status, JobStatus::Claimed | JobStatus::Running) {
        return Err(Expiry::Ended);
    }
    let deadline = timeouts.deadline(job);
    if t < deadline {
        return Err(Expiry::NotBefore(deadline));
    }
    let status = if timeouts.run_out(job).is_some_and(|r| t >= r) {
        JobStatus::Canceled
    } else {
        JobStatus::Failed
    };
    Ok((status, expired_output(status, timeouts, job)))
}

/// The answer of the timeout rules once the move to `status` was tried.
pub(super) fn expired(moved: bool, status: JobStatus) -> Expiry {
    match (moved, status) {
        (false, _) => Expiry::Ended,
        (true, JobStatus::Canceled) => Expiry::TimedOut,
        (true, _) => Expiry::Failed,
    }
}

/// Applies the timeout rules to job `id` now.
fn expire(conn: &Connection, id: i64, timeouts: &Timeouts) -> Result<Expiry, StoreError> {
    let job = job_by_id(conn, id)?.row;
    let (status, output) = match expiry(&job, timeouts, now()) {
        Ok(change) => change,
        Err(answer) => return Ok(answer),
    };
    let moved = transition(
        conn,
        id,
        &[JobStatus::Claimed, JobStatus::Running],
        status,
        Some("completed"),
        Some(&output),
    )?;
    Ok(expired(moved, status))
}

impl Store {
    /// Creates a pending job for its spec (the fallback spec if none is
    /// named), with its audit row; runners waiting for that spec are told.
    pub async fn create_job(&self, new: NewJob, actor: &Actor) -> Result<JobRow, StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.create_job(new, actor)).await;
        }
        let actor = actor.clone();
        let (spec_id, job) = self
            .write(move |tx| {
                let (spec_id, spec) = match &new.spec {
                    Some(r) => items::find(tx, r)?,
                    None => tx
                        .prepare_cached(&format!(
                            "SELECT id, {} FROM specs WHERE fallback IS NOT NULL",
                            Specs::COLUMNS
                        ))?
                        .query_row([], |r| Ok((r.get(0)?, Specs::row_at(r, 1)?)))
                        .optional()?
                        .ok_or(StoreError::NoFallbackSpec)?,
                };
                if spec.archived.is_some() {
                    return Err(StoreError::SpecArchivedForJob(spec.slug));
                }
                let uuid = super::new_uuid();
                let t = to_text(now());
                let id: i64 = tx
                    .prepare_cached(
                        "INSERT INTO jobs (uuid, status, spec_id, priority, config, timeout,
                                           created, modified)
                         VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?6) RETURNING id",
                    )?
                    .query_row(
                        params![
                            uuid.to_string(),
                            spec_id,
                            new.priority,
                            new.config.to_string(),
                            new.timeout,
                            t
                        ],
                        |r| r.get(0),
                    )?;
                let job = job_by_id(tx, id)?.row;
                let fields = serde_json::json!({
                    "spec": spec.uuid, "spec_slug": spec.slug, "priority": new.priority,
                    "config": new.config,
                });
                record(tx, &actor, AuditAction::JobCreate, Some(uuid), None, fields)?;
                Ok((spec_id, job))
            })
            .await?;
        self.publish(Event::JobPending { spec: spec_id });
        Ok(job)
    }

    /// One job, by UUID.
    pub async fn job(&self, uuid: Uuid) -> Result<JobRow, StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.job(uuid)).await;
        }
        self.read(move |c| job_by_uuid(c, uuid).map(|r| r.row))
            .await
    }

    /// One page of the jobs matching `q` (and of runner `runner`'s only, if
    /// given), and how many match in all.
    pub async fn list_jobs(
        &self,
        runner: Option<RunnerRef>,
        q: JobListQuery,
    ) -> Result<(Vec<JobRow>, u64), StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.list_jobs(runner, q)).await;
        }
        self.scan(move |c| {
            let tx = c.unchecked_transaction()?;
            let mut filters = Vec::new();
            let mut args = Vec::new();
            if let Some(r) =
                runner
                    .as_ref()
                    .or(q.runner.as_ref().map(|r| r.clone().into()).as_ref())
            {
                let id = items::identify::<Runners>(&tx, r)?.id;
                filters.push("j.runner_id = ?".to_owned());
                args.push(Value::Integer(id));
            }
            if let Some(spec) = &q.spec {
                let id = items::identify::<Specs>(&tx, &spec.clone().into())?.id;
                filters.push("j.spec_id = ?".to_owned());
                args.push(Value::Integer(id));
            }
            if !q.statuses.is_empty() {
                let marks = vec!["?"; q.statuses.len()].join(", ");
                filters.push(format!("j.status IN ({marks})"));
                args.extend(q.statuses.iter().map(|s| Value::Text(s.clone())));
            }
            let where_sql = if filters.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", filters.join(" AND "))
            };
            let total: i64 = tx
                .prepare_cached(&format!("SELECT count(*) FROM jobs j{where_sql}"))?
                .query_row(params_from_iter(&args), |r| r.get(0))?;
            let order = match q.direction {
                Direction::Asc => "j.id ASC",
                Direction::Desc => "j.id DESC",
            };
            args.push(Value::Integer(i64::from(q.per_page)));
            args.push(Value::Integer(
                i64::try_from(q.offset()).unwrap_or(i64::MAX),
            ));
            let jobs = query_jobs(
                &tx,
                &format!(
                    "SELECT {} FROM jobs j{where_sql} ORDER BY {order} LIMIT ? OFFSET ?",
                    list_columns()
                ),
                &args,
            )?;
            tx.commit()?;
            Ok((
                jobs.into_iter().map(|r| r.row).collect(),
                u64::try_from(total).unwrap_or(0),
            ))
        })
        .await
    }

    /// Cancels a job that has not ended, with its audit row: a pending one
    /// at once; a claimed or running one's runner is told to stop it.
    pub async fn cancel_job(&self, uuid: Uuid, actor: &Actor) -> Result<JobRow, StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.cancel_job(uuid, actor)).await;
        }
        let actor = actor.clone();
        let (job, before) = self
            .write(move |tx| {
                let read = job_by_uuid(tx, uuid)?;
                let before = read.row.status;
                if before.has_ended() {
                    return Err(StoreError::JobEnded {
                        job: uuid,
                        status: before.as_str(),
                    });
                }
                let error = serde_json::json!({"results": [], "error": "canceled by an admin"});
                transition(
                    tx,
                    read.id,
                    &[before],
                    JobStatus::Canceled,
                    Some("completed"),
                    Some(&error),
                )?;
                let job = job_by_id(tx, read.id)?.row;
                let fields = serde_json::json!({"status": [before.as_str(), "canceled"]});
                record(tx, &actor, AuditAction::JobCancel, Some(uuid), None, fields)?;
                Ok((job, before))
            })
            .await?;
        if let (Some(runner), JobStatus::Claimed | JobStatus::Running) = (job.runner, before) {
            self.publish(Event::JobCanceled { runner, job: uuid });
        }
        Ok(job)
    }

    /// The specs (row ids) of runner `runner` (row id).
    pub async fn runner_spec_ids(&self, runner: i64) -> Result<Vec<i64>, StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.runner_spec_ids(runner)).await;
        }
        self.read(move |c| spec_ids(c, runner)).await
    }

    /// Claims for runner `runner` (row id, still keyed by `key_hash` and
    /// active) the best pending job of its specs: higher priority first,
    /// then older, for its channel opened at `channel`, which must still be
    /// the runner's recorded one ([`StoreError::ChannelNotCurrent`]: a
    /// channel that was replaced never takes a job). With `seen`, the
    /// runner sent a message: its `last_heartbeat` (and its agent's report,
    /// if any) is written too.
    pub async fn claim_job(
        &self,
        runner: i64,
        key_hash: super::RunnerKeyHash,
        channel: DateTime<Utc>,
        seen: Option<Option<AgentInfo>>,
    ) -> Result<Claim, StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.claim_job(runner, key_hash, channel, seen)).await;
        }
        self.write(move |tx| {
            let t = to_text(now());
            let found: Option<bool> = tx
                .prepare_cached(
                    "SELECT channel IS ? FROM runners
                      WHERE id = ? AND token_hash = ? AND archived IS NULL",
                )?
                .query_row(params![to_text(channel), runner, key_hash], |r| r.get(0))
                .optional()?;
            match found {
                None => return Err(StoreError::RunnerRevoked),
                Some(false) => return Err(StoreError::ChannelNotCurrent),
                Some(true) => {}
            }
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
                        .then(|| job_by_id(tx, id))
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
    pub async fn release_job(&self, id: i64, runner: i64) -> Result<bool, StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.release_job(id, runner)).await;
        }
        let spec = self
            .write(move |tx| {
                let spec = tx
                    .prepare_cached(
                        "UPDATE jobs SET status = 'pending', runner_id = NULL, claimed = NULL,
                                         last_heartbeat = NULL, modified = ?1
                         WHERE id = ?2 AND runner_id = ?3 AND status = 'claimed'
                         RETURNING spec_id",
                    )?
                    .query_row(params![to_text(now()), id, runner], |r| r.get::<_, i64>(0))
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
    pub async fn runner_seen(
        &self,
        runner: i64,
        agent: Option<AgentInfo>,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.runner_seen(runner, agent)).await;
        }
        self.write(move |tx| runner_seen(tx, runner, agent.as_ref(), &to_text(now())))
            .await
    }

    /// What runner `runner` (row id) reports about its job `job`: the
    /// transition it makes, under the timeout rules; the runner's
    /// `last_heartbeat` is written too. A job that is not this runner's is
    /// [`StoreError::NotRunnersJob`], and nothing is written.
    pub async fn report_job(
        &self,
        runner: i64,
        job: Uuid,
        report: JobReport,
        timeouts: Timeouts,
    ) -> Result<Reported, StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.report_job(runner, job, report, timeouts)).await;
        }
        self.write(move |tx| {
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
            if let Some(m) = change {
                transition(tx, read.id, m.from, m.to, m.stamp, m.output.as_ref())?;
            }
            Ok(answer)
        })
        .await
    }

    /// Fails job `id` (row id) if it is claimed or running, with `error`
    /// (its runner was archived or re-keyed while running it).
    pub async fn fail_job(&self, id: i64, error: &'static str) -> Result<bool, StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.fail_job(id, error)).await;
        }
        self.write(move |tx| {
            let output = serde_json::json!({"results": [], "error": error});
            transition(
                tx,
                id,
                &[JobStatus::Claimed, JobStatus::Running],
                JobStatus::Failed,
                Some("completed"),
                Some(&output),
            )
        })
        .await
    }

    /// Applies the timeout rules to job `id` (row id) now.
    pub async fn expire_job(&self, id: i64, timeouts: Timeouts) -> Result<Expiry, StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.expire_job(id, timeouts)).await;
        }
        self.write(move |tx| expire(tx, id, &timeouts)).await
    }

    /// Every job claimed or running, with its row id: to hold to the
    /// timeout rules after a restart.
    pub async fn active_jobs(&self) -> Result<Vec<Claimed>, StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.active_jobs()).await;
        }
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
    pub async fn set_channel(
        &self,
        runner: i64,
        since: DateTime<Utc>,
        open: bool,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.set_channel(runner, since, open)).await;
        }
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

    /// Whether runner `runner` (row id)'s channel opened at `since` by this
    /// process is no longer the one the store records (another replica's
    /// is). Only PostgreSQL's replicas tell each other of channels: on
    /// SQLite, never.
    pub async fn channel_superseded(
        &self,
        runner: i64,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match self.pg() {
            Some(pg) => super::pg::bounded(pg.channel_superseded(runner, since)).await,
            None => Ok(false),
        }
    }

    /// Takes up serving runners' channels, at a server's start. On SQLite
    /// one process serves the file: no channel is open, every runner's is
    /// cleared. On PostgreSQL this process starts its lease (renewed until
    /// the store closes), and the channels of processes whose lease lapsed
    /// are cleared; other live replicas keep theirs.
    pub async fn serve_channels(&self) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return super::pg::bounded(pg.hold_lease()).await;
        }
        self.write(|tx| {
            tx.prepare_cached("UPDATE runners SET channel = NULL WHERE channel IS NOT NULL")?
                .execute([])?;
            Ok(())
        })
        .await
    }
}

fn spec_ids(conn: &Connection, runner: i64) -> Result<Vec<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT spec_id FROM runner_specs WHERE runner_id = ? ORDER BY id")?
        .query_map([runner], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

fn runner_seen(
    conn: &Connection,
    runner: i64,
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
