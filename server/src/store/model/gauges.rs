//! What the metrics read of the whole registry at each scrape: counts
//! that indexes answer without a scan (runners by status, the jobs not
//! ended by status, the pending jobs of each spec).

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
    /// Jobs `pending`, `claimed`, `running` (ended jobs are not counted:
    /// they only grow, and counting them would scan the table).
    pub jobs: Vec<(&'static str, u64)>,
    /// The pending jobs of each spec that has some, by the spec's slug.
    pub pending_by_spec: Vec<(String, u64)>,
}

impl Gauges {
    /// The counts from what the indexes give: runners not archived,
    /// those with a channel open, those with a job claimed or running, and
    /// how many of those have a channel open.
    pub fn from_counts(
        active: u64,
        online: u64,
        (busy, busy_online): (u64, u64),
        active_jobs: Vec<(&'static str, u64)>,
        pending_by_spec: Vec<(String, u64)>,
    ) -> Self {
        let pending = pending_by_spec.iter().map(|(_, n)| n).sum();
        // Every status, 0 when no job has it (a status no row has is no
        // row of the `GROUP BY`, and must not keep its last value).
        let of = |status: &str| {
            let found = active_jobs.iter().find(|(s, _)| *s == status);
            found.map_or(0, |(_, n)| *n)
        };
        let jobs = vec![
            ("pending", pending),
            ("claimed", of("claimed")),
            ("running", of("running")),
        ];
        let idle = online.saturating_sub(busy_online);
        let offline = active.saturating_sub(idle).saturating_sub(busy);
        Self {
            runners: vec![("offline", offline), ("idle", idle), ("busy", busy)],
            jobs,
            pending_by_spec,
        }
    }
}

/// The counts each engine runs (the runners' total is each engine's own
/// counts table): runners with a channel open (`runners_online`), with a
/// job claimed or running and of those with a channel (`jobs_active`),
/// jobs claimed or running (`jobs_active`), pending jobs by spec
/// (`jobs_pending`; their sum is the pending jobs).
pub const ONLINE: &str =
    "SELECT count(*) FROM runners WHERE channel IS NOT NULL AND archived IS NULL";
pub const BUSY: &str = "SELECT count(DISTINCT j.runner_id), \
     count(DISTINCT CASE WHEN r.channel IS NOT NULL THEN j.runner_id END) \
     FROM jobs j JOIN runners r ON r.id = j.runner_id \
     WHERE j.status IN ('claimed', 'running') AND r.archived IS NULL";
pub const ACTIVE: &str = "SELECT status, count(*) FROM jobs \
     WHERE status IN ('claimed', 'running') GROUP BY status";
pub const PENDING_BY_SPEC: &str = "SELECT s.slug, count(*) FROM jobs j \
     JOIN specs s ON s.id = j.spec_id WHERE j.status = 'pending' GROUP BY s.slug ORDER BY s.slug";

/// `claimed` or `running` as the store's own text.
pub fn active_status(text: &str) -> Option<&'static str> {
    match text {
        "claimed" => Some("claimed"),
        "running" => Some("running"),
        _ => None,
    }
}
