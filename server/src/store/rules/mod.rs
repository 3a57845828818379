//! The job rules both engines apply, decided once: what a claim and a
//! runner's report give back, what a report does to a job (`decide`), and
//! the timeout rules (`expiry`, `expired`). Each engine makes the writes
//! its own way; neither decides anything itself.

use std::time::Duration;

mod runs;
pub use runs::KeyAudit;
pub(crate) use runs::process;

use chrono::{DateTime, Utc};

use super::error::StoreError;
use super::model::{
    AgentInfo, Change, JobId, JobReport, JobRow, JobStatus, RunnerId, RunnerKeyHash, SpecChanges,
    SpecId, SpecRow, Specs,
};

/// A job claimed by a runner: its row and row id.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub id: JobId,
    /// Its spec's row id.
    pub spec_id: SpecId,
    pub job: JobRow,
}

/// A runner asking for a job: its row id, the hash of the key it was
/// found by (still its key, or nothing is claimed), its channel (still its
/// recorded one, or [`StoreError::ChannelNotCurrent`]), and, if it sent a
/// message, what its agent said of itself (`Some(None)`: nothing).
#[derive(Clone, Debug)]
pub struct Claimant {
    pub runner: RunnerId,
    pub key_hash: RunnerKeyHash,
    pub channel: DateTime<Utc>,
    pub seen: Option<Option<AgentInfo>>,
}

/// What a claim found: the job (if any), and the runner's specs (row ids)
/// as they are now, for the runner to wait on.
#[derive(Clone, Debug)]
pub struct Claim {
    pub job: Option<Claimed>,
    pub specs: Vec<SpecId>,
}

/// An admin's cancel of a job that is now `from`: refused once the job
/// has ended; else the output it ends with and what its audit row records.
pub struct Cancel {
    pub from: JobStatus,
    pub output: serde_json::Value,
    pub audited: serde_json::Value,
}

impl Cancel {
    /// The cancel of job `job`, now `from`.
    pub fn of(job: uuid::Uuid, from: JobStatus) -> Result<Self, StoreError> {
        if from.has_ended() {
            return Err(StoreError::JobEnded {
                job,
                status: from.as_str(),
            });
        }
        Ok(Self {
            from,
            output: serde_json::json!({"results": [], "error": "canceled by an admin"}),
            audited: serde_json::json!({"status": [from.as_str(), "canceled"]}),
        })
    }

    /// The transition it makes.
    pub(crate) fn moving(&self) -> Move {
        Move::end(&[self.from], JobStatus::Canceled, self.output.clone())
    }

    /// Whether the job's runner must be told to stop it (it held it).
    pub fn stops_runner(&self) -> bool {
        matches!(self.from, JobStatus::Claimed | JobStatus::Running)
    }
}

/// What runner `runner` said on its channel about job `job`.
#[derive(Clone, Debug)]
pub struct RunnerReport {
    pub runner: RunnerId,
    pub job: uuid::Uuid,
    pub report: JobReport,
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

/// A job's transition: from one of `from` to `to`, stamping the column
/// `stamp` (if any), keeping `output` (if any). Decided here; each engine
/// writes it its own way (`transition`), as one conditional write.
pub(crate) struct Move {
    pub from: Vec<JobStatus>,
    pub to: JobStatus,
    pub stamp: Option<&'static str>,
    pub output: Option<serde_json::Value>,
    /// A run's job processed: its results, per iteration, for its report.
    pub results: Option<Vec<Vec<crate::bmf::BenchmarkResult>>>,
}

impl Move {
    /// Ends a job that is one of `from` as `to`, with `output`.
    pub fn end(from: &[JobStatus], to: JobStatus, output: serde_json::Value) -> Self {
        Self {
            from: from.to_vec(),
            to,
            stamp: Some("completed"),
            output: Some(output),
            results: None,
        }
    }

    /// Fails a claimed or running job with `error` (its runner was archived
    /// or re-keyed, or its channel broke, while it held it).
    pub fn fail(error: &str) -> Self {
        let output = serde_json::json!({"results": [], "error": error});
        Self::end(ACTIVE, JobStatus::Failed, output)
    }
}

/// The statuses of a job a runner holds.
pub(crate) const ACTIVE: &[JobStatus] = &[JobStatus::Claimed, JobStatus::Running];

/// What `report` does to `job` at time `t`, under the timeout rules: the
/// answer, and the transition to make (each engine makes it its own way).
pub(crate) fn decide(
    report: JobReport,
    job: &JobRow,
    timeouts: &Timeouts,
    t: DateTime<Utc>,
) -> (Reported, Option<Move>) {
    use JobStatus::*;
    const LIVE: &[JobStatus] = &[Claimed, Running];
    let status = job.status;
    let to = |from: &[JobStatus], to, stamp, output| {
        Some(Move {
            from: from.to_vec(),
            to,
            stamp,
            output,
            results: None,
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
            Completed | Processed => (Reported::Repeated(status), None),
            // Bencher takes a completion after a heartbeat timeout failed
            // the job: the results are worth keeping.
            Claimed | Running | Failed => {
                let mut moving = to(
                    &[Claimed, Running, Failed],
                    Completed,
                    Some("completed"),
                    Some(output),
                );
                if let Some(m) = moving.as_mut() {
                    process(job, m);
                }
                (Reported::Now(Completed), moving)
            }
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

/// Whether a claim may go on, from what the runner's row says: `None`, no
/// active runner has that key (revoked); `Some(false)`, the channel the
/// claim is for is no longer the runner's recorded one.
pub(super) fn claimable(found: Option<bool>) -> Result<(), StoreError> {
    match found {
        None => Err(StoreError::RunnerRevoked),
        Some(false) => Err(StoreError::ChannelNotCurrent),
        Some(true) => Ok(()),
    }
}

/// A runner and one spec, as giving it the spec (or taking it away) names
/// them: in its write, its error and its audit row.
#[derive(Clone, Debug)]
pub struct Pairing {
    pub runner: uuid::Uuid,
    pub runner_slug: String,
    pub spec: SpecRow,
}

impl Pairing {
    /// What the audit row of the pairing records.
    pub fn audited(&self) -> serde_json::Value {
        serde_json::json!({"spec": self.spec.uuid, "spec_slug": self.spec.slug})
    }

    /// The runner has the spec already.
    pub fn taken(&self) -> StoreError {
        StoreError::RunnerHasSpec {
            runner: self.runner_slug.clone(),
            spec: self.spec.slug.clone(),
        }
    }

    /// The runner does not have the spec.
    pub fn missing(self) -> StoreError {
        StoreError::RunnerLacksSpec {
            runner: self.runner_slug,
            spec: self.spec.slug,
        }
    }
}

impl SpecChanges {
    /// The fallback part of this change, applied to `next` (the spec to
    /// be, its common fields changed), given `current` (as it is):
    /// archiving clears the fallback (and wins over `fallback: true` in the
    /// same update); making an archived spec the fallback is refused.
    /// Whether every other spec's fallback must be cleared.
    pub fn apply_fallback(change: &mut Change<'_, Specs>) -> Result<bool, StoreError> {
        let Change {
            asked,
            current,
            next,
            stamp,
            ..
        } = change;
        let stamp = *stamp;
        let clear_others = match asked.fallback {
            // Archived, and so no fallback at all: clear the others.
            Some(true) if asked.archived == Some(true) => true,
            Some(true) if next.archived.is_some() => {
                return Err(StoreError::SpecArchived(current.slug.clone()));
            }
            Some(true) => {
                next.fallback = current.fallback.or(Some(stamp));
                true
            }
            Some(false) => {
                next.fallback = None;
                false
            }
            None => false,
        };
        if next.archived.is_some() {
            next.fallback = None;
        }
        Ok(clear_others)
    }
}
