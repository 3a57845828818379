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

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use runners_server::auth;
use runners_server::store::Actor;
use runners_server::{Store, acceptor};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::workload::request;
use crate::{Process, Stats, machine};

/// HTTP connections for the setup's bulk requests (specs, queued jobs).
const SETUP_CONNECTIONS: usize = 16;
/// Channels being opened at once (the upgrade requests in flight).
const CONNECTING: usize = 64;

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
        return across_replicas(args, url);
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
    runtime.block_on(phases(args, &mut server, seeded))
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

async fn phases(args: &JobsArgs, server: &mut Process, seeded: Seeded) -> anyhow::Result<()> {
    let addr = server.addr;
    let admin = Arc::new(seeded.admin);
    let (idle, cycling) = seeded.runners.split_at(args.idle_runners);
    let mut api = http(addr).await?;

    // Two specs: one for the idle runners, one for the cycle runners, so
    // that the queued jobs wait for the cycle runners only.
    let idle_spec = create_spec(&mut api, addr, &admin, "bench idle").await?;
    let cycle_spec = create_spec(&mut api, addr, &admin, "bench cycle").await?;
    let assign: Vec<(String, String)> = idle
        .iter()
        .map(|r| (r.slug.clone(), idle_spec.clone()))
        .chain(cycling.iter().map(|r| (r.slug.clone(), cycle_spec.clone())))
        .collect();
    let assign = Arc::new(assign);
    bulk(addr, assign.len(), 201, {
        let admin = Arc::clone(&admin);
        let assign = Arc::clone(&assign);
        move |i| {
            let (runner, spec) = &assign[i];
            let body = format!("{{\"spec\": \"{spec}\"}}");
            request(
                addr,
                "POST",
                &format!("/v0/runners/{runner}/specs"),
                &admin,
                body.into(),
            )
        }
    })
    .await
    .context("adding the specs to the runners")?;
    let project = uuid::Uuid::new_v4();

    // 1. Idle channels: memory and database calls.
    let n = idle.len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_none = server.memory_kib("VmRSS");
    let anon_none = server.memory_kib("RssAnon");
    let before = server.stats()?;
    ensure!(
        before.open == 0,
        "channels open before any runner: {before:?}"
    );
    let started = Instant::now();
    let (fleet, mut seen) = Fleet::connect(addr, idle, 900).await?;
    fleet.go();
    let stats = wait_until(server, "every idle runner waits", |s| s.waiting == n).await?;
    let connected_in = started.elapsed();
    // Their claims (which found nothing) committed, and a moment more.
    settle(server, Duration::from_millis(500)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = server.memory_kib("VmRSS");
    let anon_idle = server.memory_kib("RssAnon");
    println!(
        "\n== {n} idle runners (poll_timeout 900): connected, `ready` and waiting in {:.2} s \
         ({} channels open, {} waiting)",
        connected_in.as_secs_f64(),
        stats.open,
        stats.waiting
    );
    let per_channel = (rss_idle - rss_none) / n as f64;
    println!(
        "server VmRSS: {:.1} MiB with no channel, {:.1} MiB with {n} idle: {per_channel:.1} KiB \
         per idle channel (RssAnon: {:.1} KiB per channel)",
        rss_none / 1024.0,
        rss_idle / 1024.0,
        (anon_idle - anon_none) / n as f64,
    );
    let per_minute_900 = count_calls(server, n, args.window).await?;
    println!(
        "database calls per idle runner per minute (poll_timeout 900, {:.0} s): {}",
        args.window,
        per_minute_900.line()
    );

    // 2. Dispatch latency, with the idle runners waiting. (A new connection:
    // the server closed the last one, idle through the window.)
    let mut api = http(addr).await?;
    let (latencies, answers) = dispatch(
        args.dispatch_samples,
        addr,
        server,
        &mut api,
        &admin,
        &idle_spec,
        project,
        &mut seen,
        n,
    )
    .await?;
    println!(
        "dispatch latency (POST /v0/jobs sent → `job` frame received), {} jobs one at a time \
         with {n} idle runners: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 1.0)),
    );
    println!(
        "(the same POSTs' 201 answers: p50 {:.2} ms, p99 {:.2} ms)",
        ms(percentile(&answers, 0.5)),
        ms(percentile(&answers, 0.99)),
    );
    let done = fleet.stop().await?;
    ensure!(
        done == latencies.len() as u64,
        "the idle runners completed {done} jobs, not {}",
        latencies.len()
    );
    wait_until(server, "every idle channel closed", |s| s.open == 0).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "server VmRSS after they closed: {:.1} MiB",
        server.memory_kib("VmRSS") / 1024.0
    );
    drop(seen);

    // 3. Bencher's agent's default: `ready` with poll_timeout 55, again
    // after each `no_job`.
    let (fleet, seen) = Fleet::connect(addr, idle, 55).await?;
    fleet.go();
    wait_until(server, "every runner waits (poll_timeout 55)", |s| {
        s.waiting == n
    })
    .await?;
    settle(server, Duration::from_millis(500)).await?;
    drop(seen);
    let rss_again = server.memory_kib("VmRSS");
    let per_minute_55 = count_calls(server, n, args.window).await?;
    println!(
        "\n== {n} idle runners, Bencher's agent's default (poll_timeout 55, `ready` again after \
         each `no_job`)\nserver VmRSS with them: {:.1} MiB\n\
         database calls per idle runner per minute ({:.0} s): {}",
        rss_again / 1024.0,
        args.window,
        per_minute_55.line()
    );
    fleet.stop().await?;
    wait_until(server, "every channel closed", |s| s.open == 0).await?;

    // 4. Cycles: queued jobs, then the runners that take them.
    let queued = args.queued;
    let spec = cycle_spec.clone();
    let created_in = bulk(addr, queued, 201, {
        let admin = Arc::clone(&admin);
        move |_| {
            request(
                addr,
                "POST",
                "/v0/jobs",
                &admin,
                job_body(project, &spec).into(),
            )
        }
    })
    .await
    .context("queueing the jobs")?;
    println!(
        "\n== {queued} jobs queued in {:.2} s ({:.0} creates/s over {SETUP_CONNECTIONS} \
         connections), then {} runners claim → running → complete",
        created_in.as_secs_f64(),
        queued as f64 / created_in.as_secs_f64(),
        cycling.len()
    );
    let (fleet, mut seen) = Fleet::connect(addr, cycling, 900).await?;
    let before = server.stats()?;
    let started = Instant::now();
    fleet.go();
    let mut cycles = Vec::with_capacity(queued);
    while cycles.len() < queued {
        match tokio::time::timeout(Duration::from_secs(30), seen.recv()).await {
            Ok(Some(Seen::Done { took })) => cycles.push(took),
            Ok(Some(_)) => {}
            Ok(None) => bail!("every cycle runner stopped"),
            Err(_) => bail!("no job completed for 30 s ({} done)", cycles.len()),
        }
    }
    let elapsed = started.elapsed();
    let after = server.stats()?;
    let done = fleet.stop().await?;
    cycles.sort_unstable();
    let rate = queued as f64 / elapsed.as_secs_f64();
    println!(
        "{queued} cycles in {:.2} s: {rate:.0} cycles/s; a cycle (`ready` sent → `completed` \
         acknowledged) p50 {:.2} ms, p99 {:.2} ms",
        elapsed.as_secs_f64(),
        ms(percentile(&cycles, 0.5)),
        ms(percentile(&cycles, 0.99)),
    );
    let (writes, commits) = (after.writes - before.writes, after.commits - before.commits);
    println!(
        "server during the cycles: {} database calls ({:.1} a cycle), {writes} writes in \
         {commits} commits ({:.1} writes a commit)",
        after.calls - before.calls,
        (after.calls - before.calls) as f64 / queued as f64,
        writes as f64 / commits.max(1) as f64,
    );
    let mut api = http(addr).await?;
    let completed = count_jobs(&mut api, addr, &admin, &cycle_spec, "completed").await?;
    ensure!(
        done == queued as u64 && completed == queued as u64,
        "runners completed {done} jobs, the server lists {completed} completed, of {queued}"
    );
    println!(
        "checked: each of the {queued} jobs completed once (runners' counts and the job list agree)"
    );

    println!("\nagainst the targets (issue 18):");
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let p99 = ms(percentile(&latencies, 0.99));
    println!(
        "- dispatch p99 <= 20 ms with {n} idle runners: {p99:.2} ms, {}",
        met(p99 <= 20.0)
    );
    println!("- >= 1,000 cycles/s: {rate:.0}/s, {}", met(rate >= 1000.0));
    println!(
        "- <= 64 KiB per idle channel: {per_channel:.1} KiB, {}",
        met(per_channel <= 64.0)
    );
    println!(
        "- 0 database calls per idle runner: {:.3} a minute, {}",
        per_minute_900.per_runner_minute,
        met(per_minute_900.calls == 0)
    );
    println!(
        "server peak RSS (VmHWM): {:.1} MiB",
        server.memory_kib("VmHWM") / 1024.0
    );
    Ok(())
}

/// The dispatch latency across replicas on PostgreSQL: the idle runners on
/// replica B, the jobs created through replica A, then through B.
fn across_replicas(args: &JobsArgs, url: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let db =
        std::path::PathBuf::from(runtime.block_on(runners_server::store::pg::fresh_database(url))?);
    let n = args.idle_runners;
    let seeded = runtime.block_on(seed(&db, n))?;
    let a = Process::start(&["serve".as_ref(), db.as_os_str()])?;
    let mut b = Process::start(&["serve".as_ref(), db.as_os_str()])?;
    println!(
        "two replicas on one PostgreSQL database ({url}, a fresh database): A {} and B {}, \
         each a child process (`serve URL`)",
        a.addr, b.addr
    );
    runtime.block_on(async {
        let admin = seeded.admin;
        let mut api_a = http(a.addr).await?;
        let spec = create_spec(&mut api_a, a.addr, &admin, "bench idle").await?;
        let runners = Arc::new(seeded.runners.clone());
        bulk(a.addr, n, 201, {
            let (admin, runners, spec, addr) =
                (admin.clone(), Arc::clone(&runners), spec.clone(), a.addr);
            move |i| {
                let body = format!("{{\"spec\": \"{spec}\"}}");
                let path = format!("/v0/runners/{}/specs", runners[i].slug);
                request(addr, "POST", &path, &admin, body.into())
            }
        })
        .await
        .context("adding the spec to the runners")?;
        let project = uuid::Uuid::new_v4();
        let (fleet, mut seen) = Fleet::connect(b.addr, &seeded.runners, 900).await?;
        fleet.go();
        wait_until(&mut b, "every idle runner waits on B", |s| s.waiting == n).await?;
        settle(&mut b, Duration::from_millis(500)).await?;
        let mut figures = Vec::new();
        for (through, addr) in [
            ("A (across replicas)", a.addr),
            ("B (the runners' own)", b.addr),
        ] {
            let mut api = http(addr).await?;
            let (latencies, answers) = dispatch(
                args.dispatch_samples,
                addr,
                &mut b,
                &mut api,
                &admin,
                &spec,
                project,
                &mut seen,
                n,
            )
            .await?;
            println!(
                "dispatch latency, {n} idle runners on B, {} jobs one at a time created through \
                 {through}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (the 201 answers: p50 \
                 {:.2} ms, p99 {:.2} ms)",
                latencies.len(),
                ms(percentile(&latencies, 0.5)),
                ms(percentile(&latencies, 0.99)),
                ms(percentile(&latencies, 1.0)),
                ms(percentile(&answers, 0.5)),
                ms(percentile(&answers, 0.99)),
            );
            figures.push(latencies);
        }
        let done = fleet.stop().await?;
        let given: usize = figures.iter().map(Vec::len).sum();
        ensure!(
            done == given as u64,
            "the runners completed {done} jobs, not {given}"
        );
        let p99 = ms(percentile(&figures[0], 0.99));
        let met = if p99 <= 50.0 { "met" } else { "NOT met" };
        println!("- dispatch p99 across replicas <= 50 ms: {p99:.2} ms, {met}");
        anyhow::Ok(())
    })?;
    drop(a);
    drop(b);
    Ok(())
}

/// Database calls over a window, with `runners` runners waiting.
struct Calls {
    calls: u64,
    per_runner_minute: f64,
    writes: u64,
    commits: u64,
}

impl Calls {
    fn line(&self) -> String {
        format!(
            "{:.3} ({} calls in all; {} writes, {} commits)",
            self.per_runner_minute, self.calls, self.writes, self.commits
        )
    }
}

async fn count_calls(server: &mut Process, runners: usize, window: f64) -> anyhow::Result<Calls> {
    let before = server.stats()?;
    tokio::time::sleep(Duration::from_secs_f64(window)).await;
    let after = server.stats()?;
    ensure!(
        after.waiting == runners,
        "only {} of {runners} runners waited through the window",
        after.waiting
    );
    let calls = after.calls - before.calls;
    Ok(Calls {
        calls,
        per_runner_minute: calls as f64 / runners as f64 * 60.0 / window,
        writes: after.writes - before.writes,
        commits: after.commits - before.commits,
    })
}

/// Creates `samples` jobs one at a time (through `api`, a connection to
/// `addr`) and times each from just before its `POST` is sent to its `job`
/// frame's arrival at a runner (sorted), and to the `POST`'s answer
/// (sorted). The runners are `server`'s.
#[allow(clippy::too_many_arguments)]
async fn dispatch(
    samples: usize,
    addr: SocketAddr,
    server: &mut Process,
    api: &mut SendRequest<Full<Bytes>>,
    admin: &str,
    spec: &str,
    project: uuid::Uuid,
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    runners: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut latencies = Vec::with_capacity(samples);
    let mut answers = Vec::with_capacity(samples);
    // Runners' `ready`s seen so far were the first ones.
    while seen.try_recv().is_ok() {}
    for _ in 0..samples {
        let post = request(
            addr,
            "POST",
            "/v0/jobs",
            admin,
            job_body(project, spec).into(),
        );
        let sent = Instant::now();
        let (status, _, body) = call(api, post).await?;
        answers.push(sent.elapsed());
        ensure!(
            status == 201,
            "POST /v0/jobs: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let created: serde_json::Value = serde_json::from_slice(&body)?;
        let uuid = created["uuid"]
            .as_str()
            .context("a created job has no uuid")?
            .to_owned();
        let mut given = None;
        let mut ready_again = false;
        while given.is_none() || !ready_again {
            match tokio::time::timeout(Duration::from_secs(10), seen.recv()).await {
                Ok(Some(Seen::Job { uuid: got, at })) if got == uuid => given = Some(at),
                Ok(Some(Seen::Job { uuid: got, .. })) => bail!("job {got} given, not {uuid}"),
                Ok(Some(Seen::Ready)) if given.is_some() => ready_again = true,
                Ok(Some(_)) => {}
                Ok(None) => bail!("every runner stopped"),
                Err(_) => bail!("job {uuid} was not given and completed within 10 s"),
            }
        }
        latencies.push(given.unwrap_or(sent) - sent);
        // The next job once every runner waits again, and its claim (which
        // found nothing) has committed.
        wait_until(server, "the runner waits again", |s| s.waiting == runners).await?;
        settle(server, Duration::from_millis(5)).await?;
    }
    latencies.sort_unstable();
    answers.sort_unstable();
    Ok((latencies, answers))
}

/// Polls the server's counts until its database calls stop for `quiet`
/// (a runner is counted as waiting before its claim, which found nothing,
/// has committed).
async fn settle(server: &mut Process, quiet: Duration) -> anyhow::Result<Stats> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = server.stats()?;
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let stats = server.stats()?;
        if stats.calls != last.calls {
            (last, since) = (stats, Instant::now());
        } else if since.elapsed() >= quiet {
            return Ok(stats);
        }
        ensure!(
            Instant::now() < deadline,
            "the server's database calls did not stop for 2 minutes"
        );
    }
}

/// Polls the server's counts until `done` holds (at most 2 minutes).
async fn wait_until(
    server: &mut Process,
    what: &str,
    done: impl Fn(&Stats) -> bool,
) -> anyhow::Result<Stats> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stats = server.stats()?;
        if done(&stats) {
            return Ok(stats);
        }
        ensure!(
            Instant::now() < deadline,
            "waited 2 minutes for: {what} ({stats:?})"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn job_body(project: uuid::Uuid, spec: &str) -> String {
    format!(
        "{{\"registry\": \"http://127.0.0.1:5000\", \"project\": \"{project}\", \
         \"digest\": \"sha256:{}\", \"spec\": \"{spec}\", \"priority\": 0}}",
        "ab".repeat(32)
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `p` percentile of sorted `values` (nearest rank).
fn percentile(values: &[Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values[((values.len() - 1) as f64 * p).round() as usize]
}

// --- HTTP (admin requests) ---

async fn http(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn call(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> anyhow::Result<(u16, http::HeaderMap, Bytes)> {
    sender.ready().await?;
    let response = sender.send_request(req).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, headers, body))
}

/// Creates a spec named `name`; its slug.
async fn create_spec(
    api: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    admin: &str,
    name: &str,
) -> anyhow::Result<String> {
    let body = format!(
        "{{\"name\": \"{name}\", \"architecture\": \"x86_64\", \"os\": \"linux\", \
         \"cpu\": 2, \"memory\": 8589934592, \"disk\": 107374182400}}"
    );
    let (status, _, body) =
        call(api, request(addr, "POST", "/v0/specs", admin, body.into())).await?;
    ensure!(
        status == 201,
        "POST /v0/specs: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    let spec: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(spec["slug"]
        .as_str()
        .context("a spec has no slug")?
        .to_owned())
}

/// How many jobs of `spec` have `status` (the list's `X-Total-Count`).
async fn count_jobs(
    api: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    admin: &str,
    spec: &str,
    status: &str,
) -> anyhow::Result<u64> {
    let path = format!("/v0/jobs?spec={spec}&status={status}&per_page=1");
    let (code, headers, body) = call(api, request(addr, "GET", &path, admin, Bytes::new())).await?;
    ensure!(
        code == 200,
        "GET {path}: {code}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(headers
        .get("x-total-count")
        .context("no X-Total-Count")?
        .to_str()?
        .parse()?)
}

/// Sends requests `0..n` (made by `make`) over [`SETUP_CONNECTIONS`]
/// keep-alive connections; each answer must have status `expect`. How long
/// it took.
async fn bulk(
    addr: SocketAddr,
    n: usize,
    expect: u16,
    make: impl Fn(usize) -> Request<Full<Bytes>> + Send + Sync + 'static,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..SETUP_CONNECTIONS {
        let (make, next) = (Arc::clone(&make), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut sender = http(addr).await?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                let (status, _, body) = call(&mut sender, make(i)).await?;
                ensure!(
                    status == expect,
                    "expected {expect}, got {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

// --- The runners: raw WebSocket clients ---

type Ws = WebSocketStream<TcpStream>;

/// Opens runner `runner`'s channel: the upgrade request written by hand,
/// then a WebSocket client over the same socket.
async fn channel(addr: SocketAddr, runner: &Runner) -> anyhow::Result<Ws> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let upgrade = format!(
        "GET /v0/runners/{}/channel HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer {}\r\n\r\n",
        runner.slug, runner.key
    );
    tcp.write_all(upgrade.as_bytes()).await?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    let end = loop {
        let n = tcp.read(&mut buf).await?;
        ensure!(
            n > 0,
            "{}: the server closed during the upgrade",
            runner.slug
        );
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        ensure!(
            head.len() < 16 * 1024,
            "{}: the upgrade answer is too long",
            runner.slug
        );
    };
    let rest = head.split_off(end);
    ensure!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}: the upgrade was refused: {}",
        runner.slug,
        String::from_utf8_lossy(&head)
    );
    Ok(WebSocketStream::from_partially_read(tcp, rest, Role::Client, None).await)
}

/// What a runner saw, told to the benchmark.
#[derive(Debug)]
enum Seen {
    /// It sent `ready`.
    Ready,
    /// A `job` frame arrived, at `at`.
    Job { uuid: String, at: Instant },
    /// Its job's `completed` was acknowledged, `took` after its `ready`.
    Done { took: Duration },
}

/// Runners with their channels open, each in a task of its own.
struct Fleet {
    go: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<u64>>>,
}

impl Fleet {
    /// Opens the channels of `runners` ([`CONNECTING`] at a time); each says
    /// `ready` with `poll` once told to go.
    async fn connect(
        addr: SocketAddr,
        runners: &[Runner],
        poll: u32,
    ) -> anyhow::Result<(Self, mpsc::UnboundedReceiver<Seen>)> {
        let sockets: Vec<Ws> = futures::stream::iter(runners.iter().cloned())
            .map(|runner| async move { channel(addr, &runner).await })
            .buffer_unordered(CONNECTING)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?;
        let (go, _) = watch::channel(false);
        let (stop, _) = watch::channel(false);
        let (tell, seen) = mpsc::unbounded_channel();
        let tasks = sockets
            .into_iter()
            .map(|ws| {
                tokio::spawn(agent(
                    ws,
                    poll,
                    go.subscribe(),
                    stop.subscribe(),
                    tell.clone(),
                ))
            })
            .collect();
        Ok((Self { go, stop, tasks }, seen))
    }

    /// Every runner says `ready`.
    fn go(&self) {
        self.go.send_replace(true);
    }

    /// Closes every channel (between jobs); the jobs they completed.
    async fn stop(self) -> anyhow::Result<u64> {
        self.stop.send_replace(true);
        let mut done = 0;
        for task in self.tasks {
            done += task.await??;
        }
        Ok(done)
    }
}

/// One runner: `ready` → `job` → `running` → `ack` → `completed` → `ack` →
/// `ready` …, or `no_job` → `ready`, until told to stop while it waits.
/// The jobs it completed.
async fn agent(
    mut ws: Ws,
    poll: u32,
    mut go: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    seen: mpsc::UnboundedSender<Seen>,
) -> anyhow::Result<u64> {
    go.wait_for(|go| *go).await?;
    let ready = Message::text(format!("{{\"event\":\"ready\",\"poll_timeout\":{poll}}}"));
    let mut done = 0;
    loop {
        ws.send(ready.clone()).await?;
        let asked = Instant::now();
        let _ = seen.send(Seen::Ready);
        let msg = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            msg = next(&mut ws) => msg?,
        };
        let at = Instant::now();
        match msg["event"].as_str() {
            Some("no_job") => continue,
            Some("job") => {}
            _ => bail!("expected `job` or `no_job`, got {msg}"),
        }
        let uuid = msg["uuid"]
            .as_str()
            .context("a job without uuid")?
            .to_owned();
        let _ = seen.send(Seen::Job {
            uuid: uuid.clone(),
            at,
        });
        ws.send(Message::text("{\"event\":\"running\"}")).await?;
        acked(&mut ws, &uuid).await?;
        let completed = format!(
            "{{\"event\":\"completed\",\"job\":\"{uuid}\",\
             \"results\":[{{\"exit_code\":0,\"stdout\":\"bench\"}}]}}"
        );
        ws.send(Message::text(completed)).await?;
        acked(&mut ws, &uuid).await?;
        done += 1;
        let _ = seen.send(Seen::Done {
            took: asked.elapsed(),
        });
    }
    let _ = ws.close(None).await;
    Ok(done)
}

/// The next message from the server, parsed.
async fn next(ws: &mut Ws) -> anyhow::Result<serde_json::Value> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(text.as_str())?),
            Some(Ok(Message::Close(frame))) => bail!("the server closed the channel: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("the channel ended"),
        }
    }
}

/// The next message must be `ack` for `job`.
async fn acked(ws: &mut Ws, job: &str) -> anyhow::Result<()> {
    let msg = next(ws).await?;
    ensure!(
        msg["event"] == "ack" && msg["job"] == job,
        "expected the ack of {job}, got {msg}"
    );
    Ok(())
}
