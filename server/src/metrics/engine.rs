//! The storage engine's own metrics, this process's: SQLite's writer
//! (writes, group commits, time committing, writes queued, failed drains
//! of the search queues) or PostgreSQL's pool and `LISTEN` connection.
//! Both engines' are registered; the other engine's stay 0.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::store::model::gauges::EngineStats;

pub(super) struct EngineMetrics {
    writes: Counter,
    commits: Counter,
    commit_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    queued: Gauge,
    drain_failures: Counter,
    pool_size: Gauge,
    pool_available: Gauge,
    pool_waiting: Gauge,
    listen_reconnects: Counter,
}

/// `counter` brought up to `total` (the engine keeps the totals).
fn to(counter: &Counter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

fn gauge(g: &Gauge, v: u64) {
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
}

impl EngineMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let this = Self {
            writes: Counter::default(),
            commits: Counter::default(),
            commit_seconds: Counter::default(),
            queued: Gauge::default(),
            drain_failures: Counter::default(),
            pool_size: Gauge::default(),
            pool_available: Gauge::default(),
            pool_waiting: Gauge::default(),
            listen_reconnects: Counter::default(),
        };
        registry.register(
            "sqlite_writes",
            "Writes committed (SQLite)",
            this.writes.clone(),
        );
        registry.register(
            "sqlite_commits",
            "Group commits (SQLite; writes per commit: the ratio of the rates)",
            this.commits.clone(),
        );
        registry.register(
            "sqlite_commit_seconds",
            "Time spent committing (SQLite; per commit: the ratio of the rates)",
            this.commit_seconds.clone(),
        );
        registry.register(
            "sqlite_write_queue",
            "Writes queued for the writer (SQLite)",
            this.queued.clone(),
        );
        registry.register(
            "search_queue_drain_failures",
            "Failed drains of the search queues (SQLite): searches slow until one succeeds",
            this.drain_failures.clone(),
        );
        registry.register(
            "pg_pool_connections",
            "Connections in the pool (PostgreSQL)",
            this.pool_size.clone(),
        );
        registry.register(
            "pg_pool_idle",
            "Pool connections idle (PostgreSQL)",
            this.pool_available.clone(),
        );
        registry.register(
            "pg_pool_waiting",
            "Requests waiting for a pool connection (PostgreSQL)",
            this.pool_waiting.clone(),
        );
        registry.register(
            "pg_listen_reconnects",
            "LISTEN connections made again after one was lost (PostgreSQL)",
            this.listen_reconnects.clone(),
        );
        this
    }

    pub(super) fn update(&self, stats: &EngineStats) {
        match *stats {
            EngineStats::Sqlite {
                writes,
                commits,
                commit_nanos,
                queued,
                drain_failures,
            } => {
                to(&self.writes, writes);
                to(&self.commits, commits);
                let seconds = commit_nanos as f64 / 1e9;
                self.commit_seconds
                    .inc_by((seconds - self.commit_seconds.get()).max(0.0));
                gauge(&self.queued, queued);
                to(&self.drain_failures, drain_failures);
            }
            EngineStats::Pg {
                pool_size,
                pool_available,
                pool_waiting,
                listen_reconnects,
            } => {
                gauge(&self.pool_size, pool_size);
                gauge(&self.pool_available, pool_available);
                gauge(&self.pool_waiting, pool_waiting);
                to(&self.listen_reconnects, listen_reconnects);
            }
        }
    }
}
