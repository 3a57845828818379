//! Jobs exactly once across a crash: runners (the test agent) race for jobs
//! while the server program is killed with SIGKILL and restarted on the
//! same database.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use futures::future::join_all;
use runners_sdk::types::{JobStatus, JsonNewSpec, ServerMessage};
use runners_tests::agent::{Agent, output};
use runners_tests::race::Redial;
use runners_tests::{all_jobs, create_job, create_spec, new_job, new_spec, runner_with_spec};
use uuid::Uuid;

use super::{Serving, block_on};

const RUNNERS: usize = 32;
const JOBS: usize = 200;
/// Completions acknowledged before the kill.
const KILL_AFTER: usize = 60;
const HEARTBEAT_TIMEOUT: u64 = 2;

/// What one agent saw.
#[derive(Debug, Default)]
struct Seen {
    runner: String,
    /// Jobs given to it (`job`).
    given: Vec<Uuid>,
    /// Jobs whose `completed` it saw acknowledged.
    completed: Vec<Uuid>,
    /// Times its channel broke (or could not open) and it reconnected.
    reconnects: usize,
}

/// Shared by the agents and the one who kills the server.
struct Race {
    url: Mutex<String>,
    done: AtomicUsize,
    stop: AtomicBool,
}

/// One runner: takes jobs, runs and completes each, until told to stop;
/// when its channel breaks it reconnects (to the server's current URL)
/// and sends again a `completed` it had no `ack` for, as an agent that
/// had finished the job would. A job it had not finished is dropped: the
/// server must fail it by the timeout rule.
async fn agent(race: Arc<Race>, runner: String, key: String) -> anyhow::Result<Seen> {
    let mut seen = Seen {
        runner: runner.clone(),
        ..Seen::default()
    };
    let mut unacked: Option<Uuid> = None;
    let mut redial = Redial::new(&runner, &key, Duration::from_secs(60));
    while !race.stop.load(Ordering::SeqCst) {
        let url = race.url.lock().unwrap().clone();
        let Some(mut a) = redial.open(&url, Duration::from_millis(50)).await? else {
            continue;
        };
        let life = serve(&race, &mut a, &mut seen, &mut unacked).await;
        if redial.ended(a, life).await {
            break;
        }
    }
    seen.reconnects = redial.reconnects;
    Ok(seen)
}

/// One channel's life: until it breaks (an error) or the race ends.
async fn serve(
    race: &Race,
    a: &mut Agent,
    seen: &mut Seen,
    unacked: &mut Option<Uuid>,
) -> anyhow::Result<()> {
    if let Some(job) = *unacked {
        a.complete(job, vec![output(0, &a.runner.clone())]).await?;
        a.expect_ack(job).await?;
        *unacked = None;
        seen.completed.push(job);
        race.done.fetch_add(1, Ordering::SeqCst);
    }
    while !race.stop.load(Ordering::SeqCst) {
        a.ready(1).await?;
        match a.recv().await? {
            ServerMessage::Job { uuid, .. } => {
                seen.given.push(uuid);
                a.start(uuid).await?;
                tokio::time::sleep(Duration::from_millis(5)).await;
                *unacked = Some(uuid);
                a.complete(uuid, vec![output(0, &a.runner.clone())]).await?;
                a.expect_ack(uuid).await?;
                *unacked = None;
                seen.completed.push(uuid);
                race.done.fetch_add(1, Ordering::SeqCst);
            }
            ServerMessage::NoJob => {}
            other => bail!("unexpected {other:?}"),
        }
    }
    Ok(())
}

#[test]
fn jobs_are_completed_once_or_failed_by_the_timeout_rule_across_a_sigkill() {
    let env = vec![("RUNNERS_HEARTBEAT_TIMEOUT", HEARTBEAT_TIMEOUT.to_string())];
    let mut server = Serving::start_any_with_env(env);
    let token = server.bootstrap_token().unwrap();
    let admin = server.admin();
    let (runners, created) = block_on(async {
        let fallback = JsonNewSpec {
            fallback: true,
            ..new_spec("Crash box")
        };
        let spec = create_spec(&admin, fallback).await;
        let mut runners = Vec::new();
        for i in 0..RUNNERS {
            let (r, key) = runner_with_spec(&admin, &format!("Crash {i}"), &spec.slug).await;
            runners.push((r.slug, key));
        }
        let mut created = BTreeSet::new();
        for _ in 0..JOBS {
            created.insert(create_job(&admin, new_job(None, 0)).await.uuid);
        }
        (runners, created)
    });
    let race = Arc::new(Race {
        url: Mutex::new(server.url.clone()),
        done: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });

    let (seen, outcome) = block_on(async {
        let agents = runners
            .into_iter()
            .map(|(slug, key)| agent(Arc::clone(&race), slug, key));
        let killer = async {
            let result = kill_and_wait(&race, &mut server, &token).await;
            race.stop.store(true, Ordering::SeqCst);
            result
        };
        tokio::join!(join_all(agents), killer)
    });
    let (killed_at, jobs) = outcome.unwrap();
    let seen: Vec<Seen> = seen.into_iter().map(Result::unwrap).collect();

    // None lost: every job created is there, and none is left unfinished.
    let uuids: BTreeSet<Uuid> = jobs.iter().map(|j| j.uuid).collect();
    assert_eq!(uuids, created, "the jobs after the restart");
    // Given once: no job went to two runners.
    let mut given: BTreeMap<Uuid, Vec<&str>> = BTreeMap::new();
    let mut completed: BTreeMap<Uuid, Vec<&str>> = BTreeMap::new();
    for s in &seen {
        for job in &s.given {
            given.entry(*job).or_default().push(&s.runner);
        }
        for job in &s.completed {
            completed.entry(*job).or_default().push(&s.runner);
        }
    }
    let twice: Vec<_> = given.iter().filter(|(_, r)| r.len() > 1).collect();
    assert!(twice.is_empty(), "given to more than one runner: {twice:?}");
    let twice: Vec<_> = completed.iter().filter(|(_, r)| r.len() > 1).collect();
    assert!(twice.is_empty(), "completed more than once: {twice:?}");

    let mut failed = 0;
    for job in &jobs {
        match job.status {
            // Completed: by the one runner that saw it acknowledged (an
            // acknowledged completion is durable, and the kill lost none).
            JobStatus::Completed => {
                let by = completed.get(&job.uuid);
                assert!(by.is_some(), "completed, and no agent saw it: {job:?}");
                let said = job.output.as_ref().unwrap().results[0].stdout.as_deref();
                assert_eq!(said, by.unwrap().first().copied(), "{job:?}");
            }
            // Failed: only by the heartbeat rule, and only a job given
            // before the kill that was never completed.
            JobStatus::Failed => {
                failed += 1;
                let error = job.output.as_ref().and_then(|o| o.error.as_deref());
                assert!(error.is_some_and(|e| e.contains("heartbeat")), "{job:?}");
                assert!(!completed.contains_key(&job.uuid), "{job:?}");
                assert!(job.claimed.unwrap() < killed_at, "{job:?}");
            }
            _ => panic!("left unfinished: {job:?}"),
        }
    }
    // At most one job a runner was in flight at the kill.
    assert!(failed <= RUNNERS, "{failed} failed");
    assert_eq!(completed.len() + failed, JOBS, "every job ended once");
    eprintln!(
        "{} completed, {failed} failed by the heartbeat rule, {} completions acknowledged before the kill",
        completed.len(),
        KILL_AFTER
    );
    let reconnected = seen.iter().filter(|s| s.reconnects > 0).count();
    assert_eq!(
        reconnected, RUNNERS,
        "every agent lost its channel at the kill"
    );
}

/// Kills the server once enough completions were acknowledged, restarts it
/// on the same database, and waits until no job is pending, claimed or
/// running: when it was killed, and the jobs then.
async fn kill_and_wait(
    race: &Race,
    server: &mut Serving,
    token: &str,
) -> anyhow::Result<(
    chrono::DateTime<chrono::Utc>,
    Vec<runners_sdk::types::JsonJob>,
)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while race.done.load(Ordering::SeqCst) < KILL_AFTER {
        ensure!(Instant::now() < deadline, "too slow before the kill");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed_at = chrono::Utc::now();
    // Blocking, on purpose: no agent runs while the server is down and
    // coming back.
    server.restart();
    *race.url.lock().unwrap() = server.url.clone();
    let admin = runners_sdk::client_with_token(&server.url, token)?;
    loop {
        ensure!(Instant::now() < deadline, "jobs left unfinished");
        let unfinished = all_jobs(&admin, Some("pending,claimed,running")).await;
        if unfinished.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each with its output (lists leave it out).
    Ok((killed_at, runners_tests::all_jobs_in_full(&admin).await))
}
