//! What the jobs workload measures, and how it waits for the server: its
//! database calls over a window, the dispatch latency of jobs created one
//! at a time, and polls of its counts until they settle.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use tokio::sync::mpsc;

use super::fleet::Seen;
use super::http::{call, job_body};
use crate::process::{Process, Stats};
use crate::workload::request;

/// Database calls over a window, with `runners` runners waiting.
pub(super) struct Calls {
    pub(super) calls: u64,
    pub(super) per_runner_minute: f64,
    pub(super) writes: u64,
    pub(super) commits: u64,
}

impl Calls {
    pub(super) fn line(&self) -> String {
        format!(
            "{:.3} ({} calls in all; {} writes, {} commits)",
            self.per_runner_minute, self.calls, self.writes, self.commits
        )
    }
}

pub(super) async fn count_calls(
    server: &mut Process,
    runners: usize,
    window: f64,
) -> anyhow::Result<Calls> {
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
pub(super) async fn dispatch(
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
pub(super) async fn settle(server: &mut Process, quiet: Duration) -> anyhow::Result<Stats> {
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
pub(super) async fn wait_until(
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

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `p` percentile of sorted `values` (nearest rank).
pub(super) fn percentile(values: &[Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values[((values.len() - 1) as f64 * p).round() as usize]
}
