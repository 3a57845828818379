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
mod workload;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ChildStdout;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::Full;
use hyper::Request;
use load::{MakeRequest, Run};
use runners_sdk::{MAX_PER_PAGE, walk_pages};
use runners_server::auth;
use runners_server::store::Actor;
use runners_server::types::JsonRunner;
use runners_server::validate::{Direction, ListQuery, Sort};
use runners_server::{Config, LogLevel, Server, Store};
use workload::{Plan, Workload};

const CONNECTIONS: usize = 16;
/// Runners whose tokens the benchmark keeps, one per connection, for the
/// heartbeat workload. Rotations never touch them.
const HEARTBEAT_RUNNERS: usize = CONNECTIONS;
const ROTATED_FROM: usize = 100;

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
struct Args {
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
        Some(Role::Serve { db }) => return serve(&db),
        Some(Role::Ceiling { db, unlogged }) => return serve_ceiling(&db, !unlogged),
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
        let results = bench_size(size, &args)?;
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
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model}, {cores} cores")
}

/// Tells the parent where this child listens, then serves until the
/// parent closes stdin.
async fn serve_until_stdin_closes(addr: SocketAddr) -> anyhow::Result<()> {
    println!("LISTENING {addr}");
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
        .await??;
    Ok(())
}

/// The real server, in this process re-run as a child: what `runners-server`
/// does, with the request log at its default level (the parent sends it to
/// /dev/null, as a deployment sends it to a file). Until stdin closes, it
/// answers each line `stats` on stdin with one line of its counts (see
/// [`Process::stats`]), for the jobs workload.
fn serve(db: &Path) -> anyhow::Result<()> {
    let runtime = runners_server::server::runtime()?;
    runtime.block_on(async {
        let config = Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            db: db.to_owned(),
            log_level: LogLevel::Info,
            tls: None,
        };
        let server = Server::start(&config).await?;
        println!("LISTENING {}", server.local_addr());
        std::io::stdout().flush()?;
        // stdin is read on a thread of its own: the runtime's workers serve.
        let (lines, mut asked) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        while let Some(line) = asked.recv().await {
            if line.trim() == "stats" {
                let calls = server.store().calls();
                let (writes, commits) = server.store().write_stats();
                let (open, waiting) = server.channels();
                println!("STATS {calls} {writes} {commits} {open} {waiting}");
                std::io::stdout().flush()?;
            }
        }
        server.close().await
    })
}

/// The ceiling, in a child process of its own too, so that both servers
/// meet the load the same way (its own process, its own 2-worker runtime).
/// It loads every runner of `db` into memory first.
fn serve_ceiling(db: &Path, logged: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let store = Store::open_db(db, runners_server::store::WRITE_QUEUE_DEFAULT).await?;
        let runners = all_runners(&store).await?;
        drop(store);
        let server = ceiling::start(ceiling::Memory::new(runners), logged)?;
        serve_until_stdin_closes(server.local_addr()).await?;
        server.close().await.map_err(|e| anyhow::anyhow!(e))
    })
}

/// Every runner of the store, oldest first.
async fn all_runners(store: &Store) -> anyhow::Result<Vec<JsonRunner>> {
    let (runners, _) = walk_pages(1, MAX_PER_PAGE, |page, per_page| async move {
        let query = ListQuery {
            sort: Sort::Created,
            direction: Direction::Asc,
            per_page,
            page,
            name: None,
            search: None,
            archived: true,
            status: None,
        };
        let (batch, total) = store.list_runners(query).await?;
        anyhow::Ok((
            batch.into_iter().map(JsonRunner::from).collect(),
            Some(total),
        ))
    })
    .await?;
    Ok(runners)
}

struct Seeded {
    admin: String,
    runner_tokens: Vec<String>,
    runners: Vec<JsonRunner>,
}

fn slug(i: usize) -> String {
    format!("bench-runner-{i:06}")
}

/// Seeds `db` (a SQLite file or a PostgreSQL URL) with `size` runners
/// through the store, and an admin token.
async fn seed(db: &Path, size: usize) -> anyhow::Result<Seeded> {
    let store = Store::open_db(db, runners_server::store::WRITE_QUEUE_DEFAULT).await?;
    let ttl = chrono::Duration::days(1);
    let (_, admin) = auth::issue_api_token(&store, "bench", true, ttl, &Actor::program()).await?;
    let runner_tokens: Vec<String> = (0..HEARTBEAT_RUNNERS)
        .map(|_| auth::new_runner_key())
        .collect();
    let started = Instant::now();
    let rows = (0..size)
        .map(|i| {
            let hash = match runner_tokens.get(i) {
                Some(token) => auth::hash_runner_key(token),
                None => auth::hash_runner_key(&auth::new_runner_key()),
            };
            (format!("bench runner {i:06}"), slug(i), hash)
        })
        .collect();
    store.import_runners(rows).await?;
    let seeded_in = started.elapsed();
    let runners = all_runners(&store).await?;
    println!(
        "\n== {size} runners: seeded through the store in {:.2} s ({:.0} runners/s)",
        seeded_in.as_secs_f64(),
        size as f64 / seeded_in.as_secs_f64()
    );
    Ok(Seeded {
        admin,
        runner_tokens,
        runners,
    })
}

/// A server (the real one or the ceiling) in a child process.
struct Process {
    child: Child,
    addr: SocketAddr,
    stdout: BufReader<ChildStdout>,
}

/// The counts of the real server in a child process, from its store and its
/// hub of runner channels.
#[derive(Clone, Copy, Debug)]
struct Stats {
    /// Database calls so far: reads and writes (`Store::calls`).
    calls: u64,
    /// Writes so far, and the commits that held them (group commit).
    writes: u64,
    commits: u64,
    /// Runner channels open now, and runners waiting for a job now.
    open: usize,
    waiting: usize,
}

impl Process {
    fn start(args: &[&std::ffi::OsStr]) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let addr = line
            .strip_prefix("LISTENING ")
            .with_context(|| format!("the server did not start: {line:?}"))?
            .trim()
            .parse()?;
        Ok(Self {
            child,
            addr,
            stdout,
        })
    }

    /// The real server's counts now (a line `stats` on its stdin, answered
    /// on its stdout).
    fn stats(&mut self) -> anyhow::Result<Stats> {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .context("the server's stdin is closed")?;
        stdin.write_all(b"stats\n")?;
        stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let numbers: Vec<u64> = line
            .strip_prefix("STATS ")
            .with_context(|| format!("the server did not answer stats: {line:?}"))?
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let [calls, writes, commits, open, waiting] = numbers[..] else {
            anyhow::bail!("the server's stats are not 5 numbers: {line:?}");
        };
        Ok(Stats {
            calls,
            writes,
            commits,
            open: open as usize,
            waiting: waiting as usize,
        })
    }

    /// A memory figure of `/proc/PID/status` (`VmRSS`, `VmHWM`, `RssAnon`,
    /// `RssFile`), in KiB.
    fn memory_kib(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    }

    /// The same, in MiB.
    fn memory_mib(&self, field: &str) -> f64 {
        self.memory_kib(field) / 1024.0
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// How many `fdatasync`s a second the disk under `dir` does, one after the
/// other, each after a 1-byte write (what a commit costs at least).
fn fsyncs_per_second(dir: &Path) -> anyhow::Result<f64> {
    use std::os::unix::fs::FileExt as _;
    let file = std::fs::File::create(dir.join("fsync-probe"))?;
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        file.write_at(&[count as u8], 0)?;
        file.sync_data()?;
        count += 1;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

fn bench_size(size: usize, args: &Args) -> anyhow::Result<Vec<(Workload, Run)>> {
    let dir = tempfile::tempdir()?;
    let fsyncs = fsyncs_per_second(dir.path())?;
    println!("disk: {fsyncs:.0} fsyncs/s (one writer, 1-byte writes, fdatasync)");
    let runtime = tokio::runtime::Runtime::new()?;
    let db = match &args.db_url {
        Some(url) => {
            PathBuf::from(runtime.block_on(runners_server::store::pg::fresh_database(url))?)
        }
        None => dir.path().join("bench.db"),
    };
    let seeded = runtime.block_on(seed(&db, size))?;
    let plan = Arc::new(Plan {
        size,
        admin: seeded.admin,
        uuids: seeded.runners.iter().map(|r| r.uuid.to_string()).collect(),
        runner_tokens: seeded.runner_tokens,
        created: AtomicU64::new(0),
    });
    let server = Process::start(&["serve".as_ref(), db.as_os_str()])?;
    let mut ceiling_args = vec!["ceiling".as_ref(), db.as_os_str()];
    if args.unlogged_ceiling {
        ceiling_args.push("--unlogged".as_ref());
    }
    let ceiling = Process::start(&ceiling_args)?;
    let ceiling_addr = ceiling.addr;
    let run_for = Duration::from_secs_f64(args.seconds);
    println!(
        "{:<16} {:>10} {:>10} {:>7}   {:>17} {:>17}",
        "workload", "server/s", "ceiling/s", "ratio", "server p50/p99", "ceiling p50/p99"
    );
    let mut results = Vec::new();
    let (mut anon, mut file) = (0.0f64, 0.0f64);
    for workload in Workload::ALL {
        if args.only.is_some_and(|only| only != workload) {
            continue;
        }
        let a = workload.requests(&plan, server.addr);
        let b = workload.requests(&plan, ceiling_addr);
        let drive = |addr, make: &MakeRequest, time| {
            runtime.block_on(load::drive(
                addr,
                CONNECTIONS,
                time,
                workload.expect(),
                Arc::clone(make),
            ))
        };
        // Warm up both (connections, caches), then A B A B.
        let ceiling = workload.has_ceiling();
        drive(server.addr, &a, Duration::from_millis(300))?;
        if ceiling {
            drive(ceiling_addr, &b, Duration::from_millis(300))?;
        }
        let mut runs_a = Vec::new();
        let mut runs_b = Vec::new();
        for _ in 0..2 {
            runs_a.push(drive(server.addr, &a, run_for).with_context(|| workload.name())?);
            if ceiling {
                runs_b.push(drive(ceiling_addr, &b, run_for).with_context(|| workload.name())?);
            }
        }
        anon = anon.max(server.memory_mib("RssAnon"));
        file = file.max(server.memory_mib("RssFile"));
        let a = Run::merge(runs_a);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (b_rate, ratio, b_latency) = if ceiling {
            let b = Run::merge(runs_b);
            (
                format!("{:.0}", b.per_second()),
                format!("{:.2}x", a.per_second() / b.per_second()),
                format!(
                    "{:>7.2}/{:>6.2} ms",
                    ms(b.percentile(0.5)),
                    ms(b.percentile(0.99))
                ),
            )
        } else {
            ("-".into(), "-".into(), "-".into())
        };
        println!(
            "{:<16} {:>10.0} {:>10} {:>7}   {:>7.2}/{:>6.2} ms {:>17}",
            workload.name(),
            a.per_second(),
            b_rate,
            ratio,
            ms(a.percentile(0.5)),
            ms(a.percentile(0.99)),
            b_latency,
        );
        results.push((workload, a));
    }
    let rate = |w: Workload| results.iter().find(|r| r.0 == w).map(|r| r.1.per_second());
    if let Some(page1) = rate(Workload::ListPage1) {
        for w in [Workload::ListSearch, Workload::ListDeepPage] {
            if let Some(r) = rate(w) {
                println!("{}: {:.2}x list page 1", w.name(), r / page1);
            }
        }
    }
    for w in [
        Workload::Create,
        Workload::Heartbeat,
        Workload::RotateToken,
        Workload::SpecCreate,
    ] {
        if let Some(r) = rate(w) {
            println!("{}: {:.2}x the disk's fsyncs/s", w.name(), r / fsyncs);
        }
    }
    println!(
        "server memory: peak RSS {:.1} MiB (VmHWM); largest seen after a workload: \
         {anon:.1} MiB anonymous, {file:.1} MiB file-backed",
        server.memory_mib("VmHWM")
    );
    if args.db_url.is_some() {
        drop(ceiling);
        replica_reads(&runtime, &plan, &server, &db, run_for)?;
    }
    Ok(results)
}

/// Reads (view by slug, list page 1) through two server processes on one
/// PostgreSQL database, half the connections to each, against all of them
/// to one; alternating one, two, one, two. Prints requests/s of both.
fn replica_reads(
    runtime: &tokio::runtime::Runtime,
    plan: &Arc<Plan>,
    a: &Process,
    db: &Path,
    run_for: Duration,
) -> anyhow::Result<()> {
    let b = Process::start(&["serve".as_ref(), db.as_os_str()])?;
    println!(
        "two replicas (two `serve` processes on this database) against one, \
         {CONNECTIONS} connections ({} to each of the two):",
        CONNECTIONS / 2
    );
    println!(
        "{:<16} {:>10} {:>10} {:>7}   {:>17} {:>17}",
        "workload", "one/s", "two/s", "ratio", "one p50/p99", "two p50/p99"
    );
    for workload in [Workload::ViewBySlug, Workload::ListPage1] {
        let to_a = workload.requests(plan, a.addr);
        let to_b = workload.requests(plan, b.addr);
        let expect = workload.expect();
        let one = |time| {
            runtime.block_on(load::drive(
                a.addr,
                CONNECTIONS,
                time,
                expect,
                Arc::clone(&to_a),
            ))
        };
        let two = |time| -> anyhow::Result<Run> {
            runtime.block_on(async {
                let half = CONNECTIONS / 2;
                let (x, y) = tokio::join!(
                    load::drive(a.addr, half, time, expect, Arc::clone(&to_a)),
                    load::drive(b.addr, CONNECTIONS - half, time, expect, Arc::clone(&to_b)),
                );
                let (x, y) = (x?, y?);
                // One run: both halves' requests over the longer elapsed.
                let elapsed = x.elapsed.max(y.elapsed);
                let mut latencies = x.latencies;
                latencies.extend(y.latencies);
                latencies.sort_unstable();
                Ok(Run {
                    requests: latencies.len() as u64,
                    elapsed,
                    latencies,
                })
            })
        };
        one(Duration::from_millis(300))?;
        two(Duration::from_millis(300))?;
        let (mut ones, mut twos) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            ones.push(one(run_for).with_context(|| workload.name())?);
            twos.push(two(run_for).with_context(|| workload.name())?);
        }
        let (one, two) = (Run::merge(ones), Run::merge(twos));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:<16} {:>10.0} {:>10.0} {:>6.2}x   {:>7.2}/{:>6.2} ms {:>7.2}/{:>6.2} ms",
            workload.name(),
            one.per_second(),
            two.per_second(),
            two.per_second() / one.per_second(),
            ms(one.percentile(0.5)),
            ms(one.percentile(0.99)),
            ms(two.percentile(0.5)),
            ms(two.percentile(0.99)),
        );
    }
    Ok(())
}
