//! The jobs workload (`runners-bench jobs`): the runner channel under load.
//!
//! The real server runs in a child process (this program re-run as `serve
//! DB`, as for the other workloads), so its resident memory is its own; it
//! answers `stats` on its stdin with its store's call count
//! ([`runners_server::Store::calls`]) and its hub's open channels and
//! waiting runners. The runners are raw WebSocket clients
//! (tokio-tungstenite over a `TcpStream`, the upgrade request written by
//! hand) in this process, speaking Bencher v0.6.12's agent protocol: `ready`
//! → `job` → `running` (wait for `ack`) → `completed` (wait for `ack`) →
//! `ready` …, or `no_job` → `ready` again.
//!
//! Phases, one after the other, on one server:
//!
//! 1. **Idle channels**: `--idle-runners` runners connect and say `ready`
//!    with `poll_timeout` 900. The server's `VmRSS` then, minus before any
//!    channel, divided by the runners: memory per idle channel. Database
//!    calls over `--window` seconds while they wait: calls per idle runner
//!    per minute.
//! 2. **Dispatch latency**, with those runners still waiting: jobs created
//!    one at a time (`POST /v0/jobs` on a keep-alive connection), each timed
//!    from just before its request is sent to the arrival of the `job`
//!    frame at whichever runner was given it. That runner completes it and
//!    says `ready` again; the next job is created once every runner waits
//!    again.
//! 3. **Bencher's agent's default**: the same runners reconnect and say
//!    `ready` with `poll_timeout` 55, and again after each `no_job`;
//!    database calls over the same window.
//! 4. **Cycles**: `--queued` jobs are created first (no runner connected
//!    for their spec), then `--cycle-runners` runners connect and each
//!    loops `ready` → `job` → `running` → `ack` → `completed` → `ack` until
//!    the queue is empty: cycles a second, from the first `ready` to the last
//!    `ack`. Every job is then checked to be completed, and each runner's
//!    count summed, so no job is counted twice or lost.
//!
//! With `--db-url postgres://…` it measures instead the **dispatch latency
//! across replicas**: two server processes (A and B) on one fresh
//! PostgreSQL database, the idle runners connected to B, the jobs created
//! one at a time through A (the job reaches B by LISTEN/NOTIFY), and then,
//! for comparison, through B itself.

mod across_replicas;
mod fleet;
mod http;
mod measure;
mod phases;

use std::path::Path;

use runners_server::auth;
use runners_server::store::Actor;
use runners_server::{Store, acceptor};

use crate::machine;
use crate::process::Process;

#[derive(clap::Args, Clone)]
pub struct JobsArgs {
    /// Idle runners connected and waiting (`poll_timeout` 900), for the
    /// dispatch latency, memory and database-call figures.
    #[arg(long, default_value_t = 1000)]
    idle_runners: usize,
    /// Jobs created one at a time for the dispatch latency.
    #[arg(long, default_value_t = 300)]
    dispatch_samples: usize,
    /// Seconds over which database calls of idle runners are counted (for
    /// each of `poll_timeout` 900 and 55).
    #[arg(long, default_value_t = 60.0)]
    window: f64,
    /// Runners looping claim → running → complete.
    #[arg(long, default_value_t = 100)]
    cycle_runners: usize,
    /// Jobs queued before the cycle runners connect.
    #[arg(long, default_value_t = 10_000)]
    queued: usize,
    /// Measure the dispatch latency across two replicas on PostgreSQL
    /// instead: a fresh database on the server this URL names (its user must
    /// be able to create databases), e.g. `$RUNNERS_TEST_PG`.
    #[arg(long, value_name = "URL")]
    db_url: Option<String>,
}

/// Runs the jobs workload and prints its figures.
pub fn run(args: &JobsArgs) -> anyhow::Result<()> {
    // 1,000 runners are 1,000 sockets here too.
    let files = acceptor::raise_file_limit();
    println!(
        "runners-bench jobs: {} idle runners, {} dispatch samples, {:.0} s windows, \
         {} cycle runners, {} queued jobs",
        args.idle_runners, args.dispatch_samples, args.window, args.cycle_runners, args.queued
    );
    println!("machine: {}", machine());
    if let Some(url) = &args.db_url {
        return across_replicas::across_replicas(args, url);
    }
    println!(
        "the server runs in a child process (`serve DB`, request log at info to /dev/null); \
         the runners are this process's (open-file limit {})",
        files.map_or("unknown".into(), |f| f.to_string())
    );
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("jobs.db");
    let runtime = tokio::runtime::Runtime::new()?;
    let seeded = runtime.block_on(seed(&db, args.idle_runners + args.cycle_runners))?;
    let mut server = Process::start(&["serve".as_ref(), db.as_os_str()])?;
    runtime.block_on(phases::phases(args, &mut server, seeded))
}

/// A runner the benchmark drives: its slug and its key.
#[derive(Clone)]
struct Runner {
    slug: String,
    key: String,
}

struct Seeded {
    admin: String,
    runners: Vec<Runner>,
}

/// Seeds `db` with `count` runners through the store, keeping their keys,
/// and an admin token.
async fn seed(db: &Path, count: usize) -> anyhow::Result<Seeded> {
    let store = Store::open_db(db, runners_server::store::WRITE_QUEUE_DEFAULT).await?;
    let ttl = chrono::Duration::days(1);
    let (_, admin) = auth::issue_api_token(&store, "bench", true, ttl, &Actor::program()).await?;
    let runners: Vec<Runner> = (0..count)
        .map(|i| Runner {
            slug: format!("jobs-runner-{i:05}"),
            key: auth::new_runner_key(),
        })
        .collect();
    let rows = runners
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                format!("jobs runner {i:05}"),
                r.slug.clone(),
                auth::hash_runner_key(&r.key),
            )
        })
        .collect();
    store.import_runners(rows).await?;
    Ok(Seeded { admin, runners })
}
