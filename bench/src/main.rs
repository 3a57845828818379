//! `runners-bench`: the runners server against its ceiling, side by side.
//!
//! For each registry size it seeds a fresh SQLite file through the store (one
//! transaction, no HTTP), starts the real server on it in a child process
//! (this program re-run with `--serve`, so its peak RSS is its own) and the
//! ceiling in another (`--ceiling`: dropshot serving the same endpoints from
//! memory, no auth, no database), and drives both with the same requests
//! from 16 keep-alive connections, alternating A B A B. It prints requests/s
//! of both, their ratio, p50/p99 latency, and the server's peak RSS.
//!
//! ```text
//! cargo run --release -p runners-bench [-- --sizes 1000,100000 --seconds 2]
//! ```

mod ceiling;
mod load;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use load::{MakeRequest, Run};
use runners_server::auth::{self, Keys};
use runners_server::types::{JsonDirection, JsonRunner, RunnersSort};
use runners_server::validate::ListQuery;
use runners_server::{Config, LogLevel, Server, Store};

const CONNECTIONS: usize = 16;
/// Runners whose tokens the benchmark keeps, one per connection, for the
/// heartbeat workload. Rotations never touch them.
const HEARTBEAT_RUNNERS: usize = CONNECTIONS;
const ROTATED_FROM: usize = 100;

struct Args {
    sizes: Vec<usize>,
    seconds: f64,
    only: Option<String>,
    /// Run the ceiling without the request log.
    unlogged_ceiling: bool,
}

fn parse_args() -> anyhow::Result<Option<Args>> {
    let mut args = Args {
        sizes: vec![1_000, 100_000],
        seconds: 2.0,
        only: None,
        unlogged_ceiling: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--serve" => {
                serve(Path::new(&value()?))?;
                return Ok(None);
            }
            "--ceiling" => {
                let db = value()?;
                let logged = it.next().as_deref() != Some("unlogged");
                serve_ceiling(Path::new(&db), logged)?;
                return Ok(None);
            }
            "--sizes" => {
                args.sizes = value()?
                    .split(',')
                    .map(|s| {
                        s.parse()
                            .context("--sizes: a comma-separated list of counts")
                    })
                    .collect::<anyhow::Result<_>>()?;
            }
            "--seconds" => args.seconds = value()?.parse().context("--seconds: a number")?,
            "--only" => args.only = Some(value()?),
            "--unlogged-ceiling" => args.unlogged_ceiling = true,
            other => anyhow::bail!(
                "unknown argument {other}; usage: runners-bench [--sizes N,N] [--seconds S] \
                 [--only WORKLOAD] [--unlogged-ceiling]"
            ),
        }
    }
    Ok(Some(args))
}

fn main() -> anyhow::Result<()> {
    let Some(args) = parse_args()? else {
        return Ok(());
    };
    println!(
        "runners-bench: {CONNECTIONS} connections, {:.1} s a run, A B A B (A = server, B = ceiling)",
        args.seconds
    );
    println!("machine: {}", machine());
    let mut page1 = Vec::new();
    for &size in &args.sizes {
        let results = bench_size(size, &args)?;
        if let Some(run) = results.iter().find(|r| r.0 == "list page 1") {
            page1.push((size, run.1.percentile(0.5), run.1.per_second()));
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

/// The real server, in this process re-run as a child: what `runners-server`
/// does, with the request log at its default level (the parent sends it to
/// /dev/null, as a deployment sends it to a file).
fn serve(db: &Path) -> anyhow::Result<()> {
    let runtime = runners_server::server::runtime()?;
    runtime.block_on(async {
        let config = Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            db: db.to_owned(),
            log_level: LogLevel::Info,
        };
        let server = Server::start(&config).await?;
        println!("LISTENING {}", server.local_addr());
        std::io::stdout().flush()?;
        // Serve until the parent closes stdin.
        tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
            .await??;
        server.close().await
    })
}

/// The ceiling, in a child process of its own too, so that both servers
/// meet the load the same way (its own process, its own 2-worker runtime).
/// It loads every runner of `db` into memory first.
fn serve_ceiling(db: &Path, logged: bool) -> anyhow::Result<()> {
    let runners = all_runners(&Store::open(db)?)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let server = ceiling::start(ceiling::Memory::new(runners), logged)?;
        println!("LISTENING {}", server.local_addr());
        std::io::stdout().flush()?;
        tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
            .await??;
        server.close().await.map_err(|e| anyhow::anyhow!(e))
    })
}

/// Every runner of the store, oldest first.
fn all_runners(store: &Store) -> anyhow::Result<Vec<JsonRunner>> {
    let mut runners = Vec::new();
    for page in 1.. {
        let query = ListQuery {
            sort: RunnersSort::Created,
            direction: JsonDirection::Asc,
            per_page: 255,
            page,
            name: None,
            search: None,
            archived: true,
        };
        let (batch, _) = store.list_runners(&query)?;
        if batch.is_empty() {
            break;
        }
        runners.extend(batch);
    }
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

/// Seeds `db` with `size` runners through the store, and an admin token.
fn seed(db: &Path, size: usize) -> anyhow::Result<Seeded> {
    let store = Store::open(db)?;
    let keys = Keys::new(&store.signing_secret()?);
    let user = store.ensure_user("bench", true)?;
    let (_, admin) = auth::issue_api_token(&store, &keys, user, chrono::Duration::days(1))?;
    let runner_tokens: Vec<String> = (0..HEARTBEAT_RUNNERS)
        .map(|_| auth::new_runner_token())
        .collect();
    let started = Instant::now();
    let names: Vec<(String, String)> = (0..size)
        .map(|i| (format!("bench runner {i:06}"), slug(i)))
        .collect();
    let hashes: Vec<[u8; 32]> = (0..size)
        .map(|i| match runner_tokens.get(i) {
            Some(token) => auth::hash_runner_token(token),
            None => auth::hash_runner_token(&auth::new_runner_token()),
        })
        .collect();
    store.import_runners(
        names
            .iter()
            .zip(&hashes)
            .map(|((name, slug), hash)| (name.as_str(), slug.as_str(), *hash)),
    )?;
    let seeded_in = started.elapsed();
    let runners = all_runners(&store)?;
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
}

impl Process {
    fn start(args: &[&std::ffi::OsStr]) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
        let addr = line
            .strip_prefix("LISTENING ")
            .with_context(|| format!("the server did not start: {line:?}"))?
            .trim()
            .parse()?;
        Ok(Self { child, addr })
    }

    /// Peak resident set size (VmHWM), in MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// One workload: how to build its requests, and the status each must get.
struct Workload {
    name: &'static str,
    expect: u16,
    make: Box<dyn Fn(SocketAddr) -> MakeRequest>,
}

fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Bytes,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {token}"));
    if !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    builder.body(Full::new(body)).unwrap()
}

/// A spread of runner indexes: connection `c`'s request `i`.
fn pick(c: usize, i: u64, range: std::ops::Range<usize>) -> usize {
    let n = (c as u64)
        .wrapping_mul(7_919)
        .wrapping_add(i.wrapping_mul(104_729));
    range.start + (n % (range.end - range.start) as u64) as usize
}

fn workloads(size: usize, seeded: &Seeded) -> Vec<Workload> {
    let admin: Arc<str> = seeded.admin.clone().into();
    let uuids: Arc<Vec<String>> =
        Arc::new(seeded.runners.iter().map(|r| r.uuid.to_string()).collect());
    let tokens: Arc<Vec<String>> = Arc::new(seeded.runner_tokens.clone());
    let deep = (size / 8).min(10_000);
    let created = Arc::new(AtomicU64::new(0));
    let get = |path: Arc<dyn Fn(usize, u64) -> String + Send + Sync>| {
        let admin = Arc::clone(&admin);
        Box::new(move |addr: SocketAddr| -> MakeRequest {
            let admin = Arc::clone(&admin);
            let path = Arc::clone(&path);
            Arc::new(move |c, i| request(addr, "GET", &path(c, i), &admin, Bytes::new()))
        }) as Box<dyn Fn(SocketAddr) -> MakeRequest>
    };
    vec![
        Workload {
            name: "view by slug",
            expect: 200,
            make: get(Arc::new(move |c, i| {
                format!("/v0/runners/{}", slug(pick(c, i, 0..size)))
            })),
        },
        Workload {
            name: "view by uuid",
            expect: 200,
            make: get(Arc::new({
                let uuids = Arc::clone(&uuids);
                move |c, i| format!("/v0/runners/{}", uuids[pick(c, i, 0..size)])
            })),
        },
        Workload {
            name: "list page 1",
            expect: 200,
            make: get(Arc::new(|_, _| "/v0/runners?per_page=8".into())),
        },
        Workload {
            name: "list search",
            expect: 200,
            make: get(Arc::new(|_, _| {
                "/v0/runners?per_page=8&search=00042".into()
            })),
        },
        Workload {
            name: "list deep page",
            expect: 200,
            make: get(Arc::new(move |_, _| {
                format!("/v0/runners?per_page=8&page={deep}")
            })),
        },
        Workload {
            name: "create",
            expect: 201,
            make: Box::new({
                let admin = Arc::clone(&admin);
                move |addr| {
                    let admin = Arc::clone(&admin);
                    let created = Arc::clone(&created);
                    Arc::new(move |_, _| {
                        let n = created.fetch_add(1, Ordering::Relaxed);
                        let body = format!("{{\"name\": \"created {n}\"}}");
                        request(addr, "POST", "/v0/runners", &admin, body.into())
                    })
                }
            }),
        },
        Workload {
            name: "rotate token",
            expect: 201,
            make: Box::new({
                let admin = Arc::clone(&admin);
                move |addr| {
                    let admin = Arc::clone(&admin);
                    Arc::new(move |c, i| {
                        let path =
                            format!("/v0/runners/{}/token", slug(pick(c, i, ROTATED_FROM..size)));
                        request(addr, "POST", &path, &admin, Bytes::new())
                    })
                }
            }),
        },
        Workload {
            name: "heartbeat",
            expect: 200,
            make: Box::new(move |addr| {
                let tokens = Arc::clone(&tokens);
                Arc::new(move |c, _| {
                    let path = format!("/v0/runners/{}/heartbeat", slug(c));
                    request(addr, "POST", &path, &tokens[c], Bytes::new())
                })
            }),
        },
    ]
}

fn bench_size(size: usize, args: &Args) -> anyhow::Result<Vec<(&'static str, Run)>> {
    let dir = tempfile_dir()?;
    let db = dir.join("bench.db");
    let seeded = seed(&db, size)?;
    let server = Process::start(&["--serve".as_ref(), db.as_os_str()])?;
    let logged: &std::ffi::OsStr = if args.unlogged_ceiling {
        "unlogged".as_ref()
    } else {
        "logged".as_ref()
    };
    let ceiling = Process::start(&["--ceiling".as_ref(), db.as_os_str(), logged])?;
    let ceiling_addr = ceiling.addr;
    let runtime = tokio::runtime::Runtime::new()?;
    let run_for = Duration::from_secs_f64(args.seconds);
    println!(
        "{:<16} {:>10} {:>10} {:>7}   {:>17} {:>17}",
        "workload", "server/s", "ceiling/s", "ratio", "server p50/p99", "ceiling p50/p99"
    );
    let mut results = Vec::new();
    for workload in workloads(size, &seeded) {
        if args.only.as_deref().is_some_and(|o| o != workload.name) {
            continue;
        }
        let a = (workload.make)(server.addr);
        let b = (workload.make)(ceiling_addr);
        let drive = |addr, make: &MakeRequest, time| {
            runtime.block_on(load::drive(
                addr,
                CONNECTIONS,
                time,
                workload.expect,
                Arc::clone(make),
            ))
        };
        // Warm up both (connections, caches), then A B A B.
        drive(server.addr, &a, Duration::from_millis(300))?;
        drive(ceiling_addr, &b, Duration::from_millis(300))?;
        let mut runs_a = Vec::new();
        let mut runs_b = Vec::new();
        for _ in 0..2 {
            runs_a.push(drive(server.addr, &a, run_for).with_context(|| workload.name)?);
            runs_b.push(drive(ceiling_addr, &b, run_for).with_context(|| workload.name)?);
        }
        let (a, b) = (Run::merge(runs_a), Run::merge(runs_b));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:<16} {:>10.0} {:>10.0} {:>6.2}x   {:>7.2}/{:>6.2} ms {:>7.2}/{:>6.2} ms",
            workload.name,
            a.per_second(),
            b.per_second(),
            a.per_second() / b.per_second(),
            ms(a.percentile(0.5)),
            ms(a.percentile(0.99)),
            ms(b.percentile(0.5)),
            ms(b.percentile(0.99)),
        );
        results.push((workload.name, a));
    }
    println!("server peak RSS: {:.1} MiB", server.peak_rss_mib());
    drop(server);
    drop(ceiling);
    std::fs::remove_dir_all(&dir)?;
    Ok(results)
}

/// A fresh directory under the system's temp dir.
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("runners-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
