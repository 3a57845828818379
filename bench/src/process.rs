//! The two servers as child processes (this program re-run as `serve DB`
//! or `ceiling DB`), both sides of it: what the child runs (it prints
//! `LISTENING addr`, then serves until its stdin closes; the real server
//! also serves metrics, says where (`LISTENING addr METRICS addr`), and
//! answers `stats`), and the parent's handle on it ([`Process`]).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use anyhow::Context as _;
use runners_server::{Config, LogLevel, Server, Store};

use crate::ceiling;
use crate::seed::all_runners;

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
pub(crate) fn serve(db: &Path) -> anyhow::Result<()> {
    let runtime = runners_server::server::runtime()?;
    runtime.block_on(async {
        let config = Config {
            submit: Default::default(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            db: db.to_owned(),
            log_level: LogLevel::Info,
            log_format: Default::default(),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            tls: None,
        };
        let server = Server::start(&config).await?;
        let metrics = server.metrics_url().unwrap_or_default();
        let metrics = metrics
            .trim_start_matches("http://")
            .trim_end_matches("/metrics");
        println!("LISTENING {} METRICS {metrics}", server.local_addr());
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
pub(crate) fn serve_ceiling(db: &Path, logged: bool) -> anyhow::Result<()> {
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

/// A server (the real one or the ceiling) in a child process.
pub(crate) struct Process {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    /// The real server's metrics listener (the ceiling has none).
    pub(crate) metrics: Option<SocketAddr>,
    pub(crate) stdout: BufReader<ChildStdout>,
}

/// The counts of the real server in a child process, from its store and its
/// hub of runner channels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stats {
    /// Database calls so far: reads and writes (`Store::calls`).
    pub(crate) calls: u64,
    /// Writes so far, and the commits that held them (group commit).
    pub(crate) writes: u64,
    pub(crate) commits: u64,
    /// Runner channels open now, and runners waiting for a job now.
    pub(crate) open: usize,
    pub(crate) waiting: usize,
}

impl Process {
    pub(crate) fn start(args: &[&std::ffi::OsStr]) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let listening = line
            .strip_prefix("LISTENING ")
            .with_context(|| format!("the server did not start: {line:?}"))?
            .trim();
        let (addr, metrics) = match listening.split_once(" METRICS ") {
            Some((addr, metrics)) => (addr.parse()?, Some(metrics.parse()?)),
            None => (listening.parse()?, None),
        };
        Ok(Self {
            child,
            addr,
            metrics,
            stdout,
        })
    }

    /// The real server's counts now (a line `stats` on its stdin, answered
    /// on its stdout).
    pub(crate) fn stats(&mut self) -> anyhow::Result<Stats> {
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
    pub(crate) fn memory_kib(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    }

    /// The same, in MiB.
    pub(crate) fn memory_mib(&self, field: &str) -> f64 {
        self.memory_kib(field) / 1024.0
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
