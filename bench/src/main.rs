//! `runners-bench`: the runners server against its ceiling, side by side.
//!
//! For each registry size it seeds a fresh SQLite file through the store (one
//! transaction, no HTTP), starts the real server on it in a child process
//! (this program re-run as `serve DB`, so its peak RSS is its own) and the
//! ceiling in another (`ceiling DB`: dropshot serving the same endpoints from
//! memory, no auth, no database), and drives both with the same requests
//! from 16 keep-alive connections, alternating A B A B. It prints requests/s
//! of both, their ratio, p50/p99 latency, and the server's peak RSS.
//!
//! ```text
//! cargo run --release -p runners-bench [-- --sizes 1000,100000 --seconds 2]
//! ```
//!
//! `runners-bench jobs` runs the jobs workload instead (see [`jobs`]): the
//! runner channel's dispatch latency, claim → complete cycles, memory per
//! idle channel and database calls per idle runner.
//!
//! `--db-url postgres://…` runs the same workloads on PostgreSQL instead of
//! a SQLite file: a fresh database on that server for each size (made by
//! [`runners_server::store::pg::fresh_database`], so its user must be able
//! to create databases), seeded through the store the same way. After the
//! workloads it also reads through two server processes on that one
//! database (replicas) against one, with the same 16 connections.

mod ceiling;
mod jobs;
mod load;
mod process;
mod replica_reads;
mod seed;
mod side_by_side;
mod workload;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use workload::Workload;

pub(crate) const CONNECTIONS: usize = 16;
/// Runners whose tokens the benchmark keeps, one per connection, for the
/// heartbeat workload. Rotations never touch them.
pub(crate) const HEARTBEAT_RUNNERS: usize = CONNECTIONS;
pub(crate) const ROTATED_FROM: usize = 100;

/// The runners server against its ceiling, side by side.
#[derive(Parser)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    #[command(flatten)]
    args: Args,
}

/// What this process is: the benchmark (the default), or one of the two
/// servers it starts as child processes of its own.
#[derive(Subcommand)]
enum Role {
    /// Run the benchmark (the default).
    Run(Args),
    /// Run the jobs workload: the runner channel (WebSocket) with idle
    /// runners, dispatch latency, claim → complete cycles, memory per idle
    /// channel and database calls per idle runner.
    Jobs(jobs::JobsArgs),
    /// Internal: serve the real server on DB until stdin closes.
    #[command(hide = true)]
    Serve { db: PathBuf },
    /// Internal: serve the ceiling with DB's runners until stdin closes.
    #[command(hide = true)]
    Ceiling {
        db: PathBuf,
        #[arg(long)]
        unlogged: bool,
    },
}

#[derive(clap::Args, Clone)]
pub(crate) struct Args {
    /// Registry sizes to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,100000")]
    sizes: Vec<usize>,
    /// Seconds of each run (each workload runs twice against each server).
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Run only this workload (its name as printed).
    #[arg(long)]
    only: Option<Workload>,
    /// Run the ceiling without the request log.
    #[arg(long)]
    unlogged_ceiling: bool,
    /// Run the server on PostgreSQL: a fresh database on the server this
    /// URL names, for each size (its user must be able to create
    /// databases), e.g. `$RUNNERS_TEST_PG` under `.ci/postgres`. Then also
    /// read through two replicas against one.
    #[arg(long, value_name = "URL")]
    db_url: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match cli.role {
        Some(Role::Serve { db }) => return process::serve(&db),
        Some(Role::Ceiling { db, unlogged }) => return process::serve_ceiling(&db, !unlogged),
        Some(Role::Run(args)) => args,
        Some(Role::Jobs(args)) => return jobs::run(&args),
        None => cli.args,
    };
    println!(
        "runners-bench: {CONNECTIONS} connections, {:.1} s a run, A B A B (A = server, B = ceiling)",
        args.seconds
    );
    println!("machine: {}", machine());
    if let Some(url) = &args.db_url {
        println!("engine: PostgreSQL (a fresh database on {url} for each size)");
    }
    let mut page1 = Vec::new();
    for &size in &args.sizes {
        let results = side_by_side::bench_size(size, &args)?;
        if let Some((_, run)) = results.iter().find(|r| r.0 == Workload::ListPage1) {
            page1.push((size, run.percentile(0.5), run.per_second()));
        }
    }
    if let [
        (small, p50_small, rps_small),
        ..,
        (large, p50_large, rps_large),
    ] = page1[..]
    {
        println!(
            "\nlist page 1 at {large} vs {small} runners: p50 {:.2}x, requests/s {:.2}x",
            p50_large.as_secs_f64() / p50_small.as_secs_f64(),
            rps_small / rps_large,
        );
    }
    Ok(())
}

/// The CPU and core count, for the README's table.
pub(crate) fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model}, {cores} cores")
}
