//! Prometheus metrics, on a listener of their own (`--metrics-listen`,
//! never the public port): one registry per server, so that the tests'
//! servers in one process keep theirs apart.
//!
//! Two kinds. The registry's own counts (runners by status, jobs not ended
//! by status, pending jobs per spec) are read from the database at each
//! scrape, from indexes only ([`crate::store::Store::gauges`]): every
//! replica exports the same values, to aggregate with `max`. The rest are
//! this process's: requests by operation and status class and their
//! latency (from dropshot's `request completed` record, [`drain`]), the
//! open channels, the dispatch latency, the build.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::store::Store;

mod connections;
pub mod drain;
mod engine;
mod routes;
pub mod serve;

pub use routes::Routes;

/// A request's operation and status class (`2xx` … `5xx`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub operation: String,
    pub status_class: String,
}

/// An operation (its id, or `unknown` for a path that is none).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

/// A status (of runners, of jobs).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

/// A spec, by slug.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SpecLabels {
    pub spec: String,
}

/// The build (`runners_build_info`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

type Histograms = Family<OperationLabels, Histogram, fn() -> Histogram>;

/// Latencies from 100 µs to about 3.3 s, doubling.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// One server's metrics.
pub struct Metrics {
    registry: Registry,
    routes: Routes,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms,
    dispatch_seconds: Histogram,
    run_seconds: Histogram,
    open_channels: Gauge,
    connections: connections::ConnectionMetrics,
    runners: Family<StatusLabels, Gauge>,
    jobs: Family<StatusLabels, Gauge>,
    pending: Family<SpecLabels, Gauge>,
    engine: engine::EngineMetrics,
    counts_read: Gauge,
}

impl Metrics {
    /// Empty metrics, named `runners_…`, for the API whose OpenAPI
    /// document is `spec`.
    pub fn new(spec: &serde_json::Value) -> Arc<Self> {
        let mut registry = Registry::with_prefix("runners");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by operation and status class",
            requests.clone(),
        );
        let request_seconds: Histograms = Family::new_with_constructor(latency_buckets);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by operation",
            request_seconds.clone(),
        );
        let dispatch_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 20));
        registry.register(
            "job_dispatch_seconds",
            "From a job's commit to its job frame written to a runner (time queued included)",
            dispatch_seconds.clone(),
        );
        let run_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 20));
        registry.register(
            "job_run_seconds",
            "From a job's claim to its runner's report that it ended (completed, failed, canceled)",
            run_seconds.clone(),
        );
        let connections = connections::ConnectionMetrics::register(&mut registry);
        let open_channels = Gauge::default();
        registry.register(
            "open_channels",
            "Runner channels open on this process",
            open_channels.clone(),
        );
        let runners = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "runners",
            "Runners not archived, by status (the whole registry: aggregate with max)",
            runners.clone(),
        );
        let jobs = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "jobs",
            "Jobs by status, ended ones too (the whole registry: aggregate with max)",
            jobs.clone(),
        );
        let pending = Family::<SpecLabels, Gauge>::default();
        registry.register(
            "pending_jobs",
            "Pending jobs of each spec that has some (the whole registry: aggregate with max)",
            pending.clone(),
        );
        let engine = engine::EngineMetrics::register(&mut registry);
        let counts_read = Gauge::default();
        registry.register(
            "registry_counts_read",
            "1 if this scrape read the registry's counts from the database, else 0 (then they are left out)",
            counts_read.clone(),
        );
        let version = env!("CARGO_PKG_VERSION").to_owned();
        registry.register(
            "build",
            "The running build",
            Info::new(BuildLabels { version }),
        );
        Arc::new(Self {
            registry,
            routes: Routes::from_spec(spec),
            requests,
            request_seconds,
            dispatch_seconds,
            run_seconds,
            open_channels,
            connections,
            runners,
            jobs,
            pending,
            engine,
            counts_read,
        })
    }

    /// A request answered: its method, path, status and latency.
    pub fn request(&self, method: &str, path: &str, status: u16, seconds: f64) {
        let operation = self.routes.operation(method, path).to_owned();
        let status_class = format!("{}xx", status / 100);
        let labels = RequestLabels {
            operation: operation.clone(),
            status_class,
        };
        self.requests.get_or_create(&labels).inc();
        self.request_seconds
            .get_or_create(&OperationLabels { operation })
            .observe(seconds);
    }

    /// A job frame written, `seconds` after its job was committed.
    pub fn dispatched(&self, seconds: f64) {
        self.dispatch_seconds.observe(seconds);
    }

    /// A job's runner reported its end, `seconds` after its claim.
    pub fn ended(&self, seconds: f64) {
        self.run_seconds.observe(seconds);
    }

    /// The text a scrape answers: the registry's counts read now, and this
    /// process's own.
    pub async fn render(
        &self,
        store: &Store,
        open_channels: usize,
        connections: Option<crate::acceptor::ConnectionCounts>,
    ) -> Result<String, String> {
        // The registry's counts when the database answers; this process's
        // own always (they matter most while it does not).
        match store.gauges().await {
            Ok(gauges) => {
                self.counts_read.set(1);
                for (status, n) in &gauges.runners {
                    set(&self.runners, status, *n);
                }
                for (status, n) in &gauges.jobs {
                    set(&self.jobs, status, *n);
                }
                self.pending.clear();
                for (spec, n) in gauges.pending_by_spec {
                    let n = i64::try_from(n).unwrap_or(i64::MAX);
                    self.pending.get_or_create(&SpecLabels { spec }).set(n);
                }
            }
            Err(_) => {
                self.counts_read.set(0);
                self.runners.clear();
                self.jobs.clear();
                self.pending.clear();
            }
        }
        self.open_channels
            .set(i64::try_from(open_channels).unwrap_or(i64::MAX));
        self.engine.update(&store.engine_stats());
        if let Some(counts) = connections {
            self.connections.update(counts);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .map_err(|e| e.to_string())?;
        Ok(text)
    }
}

fn set(family: &Family<StatusLabels, Gauge>, status: &str, n: u64) {
    let status = status.to_owned();
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    family.get_or_create(&StatusLabels { status }).set(n);
}
