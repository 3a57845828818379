//! What the metrics read of the whole registry at each scrape: counts
//! that indexes or counts tables answer without a scan (runners by status,
//! jobs by status, the pending jobs of each spec).

use super::enums::JobStatus;

/// What an engine counts of its own work in this process (monotonic
/// totals but the gauges `queued`, `pool_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineStats {
    Sqlite {
        writes: u64,
        commits: u64,
        commit_nanos: u64,
        queued: u64,
        drain_failures: u64,
    },
    Pg {
        pool_size: u64,
        pool_available: u64,
        pool_waiting: u64,
        listen_reconnects: u64,
    },
}

/// The registry's counts, the same on every replica.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Runners not archived: `offline`, `idle`, `busy`.
    pub runners: Vec<(&'static str, u64)>,
    /// Jobs by status, every status (from `job_counts`, kept by triggers).
    pub jobs: Vec<(&'static str, u64)>,
    /// The pending jobs of each spec that has some, by the spec's slug.
    pub pending_by_spec: Vec<(String, u64)>,
}

impl Gauges {
    /// The counts from what the indexes give: runners not archived,
    /// those with a channel open, those with a job claimed or running, and
    /// how many of those have a channel open; the jobs of each status in
    /// the order of [`JobStatus::ALL`].
    pub fn from_counts(
        active: u64,
        online: u64,
        (busy, busy_online): (u64, u64),
        jobs: [u64; JOB_STATUSES],
        pending_by_spec: Vec<(String, u64)>,
    ) -> Self {
        let jobs = jobs_by_status(jobs);
        let idle = online.saturating_sub(busy_online);
        let offline = active.saturating_sub(idle).saturating_sub(busy);
        Self {
            runners: vec![("offline", offline), ("idle", idle), ("busy", busy)],
            jobs,
            pending_by_spec,
        }
    }
}

/// The jobs by status as [`Gauges::jobs`] has them, from counts in the
/// order of [`JobStatus::ALL`].
pub fn jobs_by_status(counts: [u64; JOB_STATUSES]) -> Vec<(&'static str, u64)> {
    JobStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .zip(counts)
        .collect()
}

/// How many statuses a job has: the columns of `job_counts`.
pub const JOB_STATUSES: usize = JobStatus::ALL.len();

/// The counts each engine runs (the runners' total is each engine's own
/// counts table): runners with a channel open (`runners_online`), with a
/// job claimed or running and of those with a channel (`jobs_active`),
/// pending jobs by spec (`jobs_pending`). The jobs by status are
/// `job_counts`' columns, named as [`JobStatus::ALL`] names them.
pub const ONLINE: &str =
    "SELECT count(*) FROM runners WHERE channel IS NOT NULL AND archived IS NULL";
pub const BUSY: &str = "SELECT count(DISTINCT j.runner_id), \
     count(DISTINCT CASE WHEN r.channel IS NOT NULL THEN j.runner_id END) \
     FROM jobs j JOIN runners r ON r.id = j.runner_id \
     WHERE j.status IN ('claimed', 'running') AND r.archived IS NULL";
pub const PENDING_BY_SPEC: &str = "SELECT s.slug, count(*) FROM jobs j \
     JOIN specs s ON s.id = j.spec_id WHERE j.status = 'pending' GROUP BY s.slug ORDER BY s.slug";

/// The statement that reads `job_counts`, summing `slots` rows' columns
/// with `sum` (`coalesce(sum(pending), 0)::bigint, …`).
pub fn job_counts_sql(sum: impl Fn(&str) -> String) -> String {
    let columns: Vec<String> = JobStatus::ALL.iter().map(|s| sum(s.as_str())).collect();
    format!("SELECT {} FROM job_counts", columns.join(", "))
}
