//! Replicas as real processes (issue 19): three `runners-server serve --db
//! postgres://…` on one database, runners (the test agent) spread over
//! them taking jobs, writes going on through every replica; then one
//! replica is killed with SIGKILL. Nothing it acknowledged is lost, the
//! others keep serving, its runners reconnect to them, and the jobs its
//! runners held end by the contract's rules: one a runner reports again on
//! its new channel is taken; one it dropped is failed by the heartbeat
//! timeout; none is left claimed or running.
//!
//! It needs PostgreSQL: without `RUNNERS_TEST_PG` it says SKIPPED and
//! passes (`.ci/postgres -- cargo test -p runners-server --test program
//! replicas`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use chrono::{DateTime, Utc};
use futures::future::join_all;
use runners_sdk::types::{JobStatus, JsonJob, JsonNewSpec, RunnerStatus, ServerMessage};
use runners_tests::agent::{Agent, output};
use runners_tests::race::Redial;
use runners_tests::{
    all_jobs, create_job, create_spec, list_all, new_job, new_runner, new_spec, runner_with_spec,
    view,
};
use uuid::Uuid;

use super::{Serving, block_on};

const REPLICAS: usize = 3;
/// The replica killed.
const VICTIM: usize = 2;
/// Runners taking jobs, round-robin over the replicas.
const RUNNERS: usize = 12;
const JOBS: usize = 150;
/// Jobs created (through the replicas in turn) before the runners start:
/// a queue, so that every runner is in a job at the kill; the writers
/// create the rest meanwhile.
const JOBS_FIRST: usize = 90;
/// Completions acknowledged before the kill.
const KILL_AFTER: usize = 40;
/// How long a job runs on an agent: most of an agent's time, so that the
/// kill finds the victim's runners in the middle of jobs.
const JOB_RUNS: Duration = Duration::from_millis(100);
const HEARTBEAT_TIMEOUT: u64 = 2;
/// How long after the kill the jobs of the victim's runners may take to
/// end, and a runner left without a channel to show `offline` (a replica's
/// lease lapses after about 10 s; the survivors' reapers rescan).
const RESOLVED_WITHIN: Duration = Duration::from_secs(30);
const OFFLINE_WITHIN: Duration = Duration::from_secs(20);

/// Shared by the agents, the writers and the one who kills the victim.
struct Race {
    urls: Vec<String>,
    /// The victim was killed (its URL refuses connections).
    killed: AtomicBool,
    /// Completions acknowledged.
    done: AtomicUsize,
    /// Jobs whose create was acknowledged (201).
    created: AtomicUsize,
    stop: AtomicBool,
}

/// What one agent saw.
#[derive(Debug, Default)]
struct Seen {
    runner: String,
    /// The replica it connected to first.
    home: usize,
    /// Jobs given to it (`job`).
    given: Vec<Uuid>,
    /// Jobs whose `completed` it saw acknowledged.
    completed: Vec<Uuid>,
    /// Jobs whose `completed` it sent, acknowledged or not: the victim may
    /// commit one and die before its acknowledgement leaves.
    sent: Vec<Uuid>,
    /// Jobs in flight when its channel broke that it reported (`completed`)
    /// again on its new channel, and when it sent that.
    reported_again: Vec<(Uuid, DateTime<Utc>)>,
    /// Jobs in flight when its channel broke that it dropped (never
    /// reported again).
    dropped: Vec<Uuid>,
    /// Times its channel broke (or could not open).
    reconnects: usize,
    /// Replicas it opened a channel on after the kill.
    after_kill: BTreeSet<usize>,
}

/// One runner: takes jobs on the replica `home`, runs each for
/// [`JOB_RUNS`] and completes it, until told to stop. When its channel
/// breaks it connects again, to the next replica if one refuses. A job in
/// flight then is reported again on the new channel if `keeps` (the agent
/// finished it meanwhile), else dropped: the server must fail it by the
/// heartbeat rule.
async fn agent(
    race: Arc<Race>,
    home: usize,
    keeps: bool,
    runner: String,
    key: String,
) -> anyhow::Result<Seen> {
    let mut seen = Seen {
        runner: runner.clone(),
        home,
        ..Seen::default()
    };
    let mut in_flight: Option<Uuid> = None;
    let mut at = home;
    let mut redial = Redial::new(&runner, &key, Duration::from_secs(120));
    while !race.stop.load(Ordering::SeqCst) {
        let killed = race.killed.load(Ordering::SeqCst);
        let Some(mut a) = redial
            .open(&race.urls[at], Duration::from_millis(20))
            .await?
        else {
            at = (at + 1) % REPLICAS;
            continue;
        };
        if killed {
            seen.after_kill.insert(at);
        }
        let life = serve(&race, &mut a, &mut seen, &mut in_flight, keeps).await;
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
    in_flight: &mut Option<Uuid>,
    keeps: bool,
) -> anyhow::Result<()> {
    let runner = a.runner.clone();
    if let Some(job) = *in_flight {
        if keeps {
            let sent = Utc::now();
            a.complete(job, vec![output(0, &runner)]).await?;
            seen.sent.push(job);
            a.expect_ack(job).await?;
            seen.reported_again.push((job, sent));
            seen.completed.push(job);
            race.done.fetch_add(1, Ordering::SeqCst);
        } else {
            seen.dropped.push(job);
        }
        *in_flight = None;
    }
    while !race.stop.load(Ordering::SeqCst) {
        a.ready(1).await?;
        match a.recv().await? {
            ServerMessage::Job { uuid, .. } => {
                seen.given.push(uuid);
                *in_flight = Some(uuid);
                a.start(uuid).await?;
                tokio::time::sleep(JOB_RUNS).await;
                a.complete(uuid, vec![output(0, &runner)]).await?;
                seen.sent.push(uuid);
                a.expect_ack(uuid).await?;
                *in_flight = None;
                seen.completed.push(uuid);
                race.done.fetch_add(1, Ordering::SeqCst);
            }
            ServerMessage::NoJob => {}
            other => bail!("{runner}: unexpected {other:?}"),
        }
    }
    Ok(())
}

/// What the writers through one replica saw.
#[derive(Debug, Default)]
struct Writes {
    /// Runners whose create was acknowledged (201).
    runners: Vec<Uuid>,
    /// Jobs whose create was acknowledged (201).
    jobs: Vec<Uuid>,
    /// Requests that got no 201.
    failed: Vec<String>,
    /// Requests answered (201) after the kill.
    after_kill: usize,
}

/// Creates runners, and jobs until [`JOBS`] are acknowledged, through
/// replica `r`, until told to stop; on the victim, until its first failure
/// after the kill.
async fn writer(race: Arc<Race>, r: usize, token: String) -> Writes {
    let admin = runners_sdk::client_with_token(&race.urls[r], &token).unwrap();
    let mut writes = Writes::default();
    let mut n = 0;
    while !race.stop.load(Ordering::SeqCst) {
        n += 1;
        let killed = race.killed.load(Ordering::SeqCst);
        let body = new_runner(&format!("Written {r} {n}"), None);
        let answer = admin.runners_post().body(body).send().await;
        let mut made = match answer {
            Ok(created) if created.status() == 201 => {
                writes.runners.push(created.into_inner().uuid);
                true
            }
            other => {
                writes.failed.push(format!("runner {n}: {other:?}"));
                false
            }
        };
        if made && race.created.load(Ordering::SeqCst) < JOBS {
            match admin.jobs_post().body(new_job(None, 0)).send().await {
                Ok(created) if created.status() == 201 => {
                    // Past JOBS by at most one a writer.
                    race.created.fetch_add(1, Ordering::SeqCst);
                    writes.jobs.push(created.into_inner().uuid);
                }
                other => {
                    writes.failed.push(format!("job {n}: {other:?}"));
                    made = false;
                }
            }
        }
        if made && killed {
            writes.after_kill += 1;
        }
        if !made && r == VICTIM && race.killed.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    writes
}

/// Which replica a runner's agent connects to first.
fn home(i: usize) -> usize {
    i % REPLICAS
}

#[test]
fn a_replica_killed_with_sigkill_loses_nothing_and_its_runners_jobs_end_by_the_rules() {
    let Ok(admin_url) = std::env::var("RUNNERS_TEST_PG") else {
        eprintln!(
            "SKIPPED: replicas need PostgreSQL (set RUNNERS_TEST_PG; \
             .ci/postgres -- cargo test -p runners-server --test program replicas)"
        );
        return;
    };
    let db = block_on(runners_server::store::pg::fresh_database(&admin_url)).unwrap();
    let env = vec![("RUNNERS_HEARTBEAT_TIMEOUT", HEARTBEAT_TIMEOUT.to_string())];
    // All started before any channel opens.
    let mut servers: Vec<Serving> = (0..REPLICAS)
        .map(|_| Serving::start_on(&db, env.clone()))
        .collect();
    let token = servers[0].bootstrap_token().expect("the first start");
    for s in &servers[1..] {
        assert_eq!(s.bootstrap_token(), None, "one admin for the database");
    }
    let admin = servers[0].admin();
    let survivor = runners_sdk::client_with_token(&servers[0].url, &token).unwrap();

    let (runners, gone, first) = block_on(async {
        let fallback = JsonNewSpec {
            fallback: true,
            ..new_spec("Replica box")
        };
        let spec = create_spec(&admin, fallback).await;
        let mut runners = Vec::new();
        for i in 0..RUNNERS {
            let (r, key) = runner_with_spec(&admin, &format!("Replica {i}"), &spec.slug).await;
            runners.push((r.slug, key));
        }
        // A runner on the victim that takes no job (its spec has none) and
        // never comes back: `offline` once the victim is gone.
        let idle = create_spec(&admin, new_spec("Idle box")).await;
        let (gone, key) = runner_with_spec(&admin, "Gone", &idle.slug).await;
        let mut first = Vec::new();
        for i in 0..JOBS_FIRST {
            let admin = runners_sdk::client_with_token(&servers[i % REPLICAS].url, &token).unwrap();
            first.push(create_job(&admin, new_job(None, 0)).await.uuid);
        }
        (runners, (gone.slug, key), first)
    });
    let race = Arc::new(Race {
        urls: servers.iter().map(|s| s.url.clone()).collect(),
        killed: AtomicBool::new(false),
        done: AtomicUsize::new(0),
        created: AtomicUsize::new(JOBS_FIRST),
        stop: AtomicBool::new(false),
    });

    let (seen, writes, outcome) = block_on(async {
        let mut gone_agent = Agent::connect_to(&race.urls[VICTIM], &gone.0, &gone.1)
            .await
            .unwrap();
        gone_agent.ready(600).await.unwrap();
        let agents = runners.iter().enumerate().map(|(i, (slug, key))| {
            let keeps = (i / REPLICAS).is_multiple_of(2);
            agent(Arc::clone(&race), home(i), keeps, slug.clone(), key.clone())
        });
        let writers = (0..REPLICAS).map(|r| writer(Arc::clone(&race), r, token.clone()));
        let killer = async {
            let result = kill_and_wait(&race, &mut servers[VICTIM], &survivor, &gone.0).await;
            race.stop.store(true, Ordering::SeqCst);
            result
        };
        let (seen, writes, outcome) = tokio::join!(join_all(agents), join_all(writers), killer);
        drop(gone_agent);
        (seen, writes, outcome)
    });
    let (killed_at, jobs) = outcome.unwrap();
    let seen: Vec<Seen> = seen.into_iter().map(Result::unwrap).collect();

    // Writes: every create a replica acknowledged is there, through each
    // survivor; the survivors answered every write, after the kill too.
    for (r, w) in writes.iter().enumerate() {
        eprintln!(
            "replica {r}: {} runners and {} jobs created, {} writes answered after the kill, \
             {} failed",
            w.runners.len(),
            w.jobs.len(),
            w.after_kill,
            w.failed.len()
        );
        if r != VICTIM {
            assert!(
                w.failed.is_empty(),
                "replica {r} failed writes: {:?}",
                w.failed
            );
            assert!(w.after_kill > 0, "replica {r} wrote nothing after the kill");
        } else {
            assert!(
                w.failed.len() <= 1,
                "the victim failed early: {:?}",
                w.failed
            );
        }
    }
    let acknowledged_jobs: BTreeSet<Uuid> = writes
        .iter()
        .flat_map(|w| w.jobs.clone())
        .chain(first)
        .collect();
    for s in (0..REPLICAS).filter(|&r| r != VICTIM) {
        let client = runners_sdk::client_with_token(&servers[s].url, &token).unwrap();
        let (listed, listed_jobs) = block_on(async {
            let runners = list_all(&client, false).await.0;
            (runners, all_jobs(&client, None).await)
        });
        let listed: BTreeSet<Uuid> = listed.iter().map(|r| r.uuid).collect();
        for (r, w) in writes.iter().enumerate() {
            let lost: Vec<_> = w.runners.iter().filter(|u| !listed.contains(u)).collect();
            assert!(
                lost.is_empty(),
                "replica {r}'s acknowledged runners lost: {lost:?}"
            );
        }
        let listed_jobs: BTreeSet<Uuid> = listed_jobs.iter().map(|j| j.uuid).collect();
        let lost: Vec<_> = acknowledged_jobs.difference(&listed_jobs).collect();
        assert!(
            lost.is_empty(),
            "acknowledged jobs lost (via {s}): {lost:?}"
        );
    }
    // Jobs beyond the acknowledged ones: only a create the victim was
    // answering when it was killed (committed, never answered).
    let listed: BTreeSet<Uuid> = jobs.iter().map(|j| j.uuid).collect();
    let unanswered = listed.difference(&acknowledged_jobs).count();
    assert!(unanswered <= 1, "{unanswered} jobs nobody created");

    // Given once, completed once.
    let mut given: BTreeMap<Uuid, Vec<&str>> = BTreeMap::new();
    let mut completed: BTreeMap<Uuid, Vec<&str>> = BTreeMap::new();
    let mut reported_again: BTreeMap<Uuid, DateTime<Utc>> = BTreeMap::new();
    let mut dropped = BTreeSet::new();
    let mut sent: BTreeMap<Uuid, &str> = BTreeMap::new();
    for s in &seen {
        sent.extend(s.sent.iter().map(|job| (*job, s.runner.as_str())));
        for job in &s.given {
            given.entry(*job).or_default().push(&s.runner);
        }
        for job in &s.completed {
            completed.entry(*job).or_default().push(&s.runner);
        }
        reported_again.extend(s.reported_again.iter().copied());
        dropped.extend(s.dropped.iter().copied());
    }
    let twice: Vec<_> = given.iter().filter(|(_, r)| r.len() > 1).collect();
    assert!(twice.is_empty(), "given to more than one runner: {twice:?}");
    let twice: Vec<_> = completed.iter().filter(|(_, r)| r.len() > 1).collect();
    assert!(twice.is_empty(), "completed more than once: {twice:?}");

    // The runners on the victim: which ones.
    let victims: BTreeSet<Uuid> = block_on(async {
        let mut uuids = BTreeSet::new();
        for s in seen.iter().filter(|s| s.home == VICTIM) {
            uuids.insert(view(&survivor, &s.runner).await.uuid);
        }
        uuids
    });
    let (mut failed, mut unacknowledged) = (0, 0);
    for job in &jobs {
        match job.status {
            // Completed: by the one runner that saw it acknowledged, or
            // that sent it to the victim, which committed it and was killed
            // before the acknowledgement left (a runner that then dropped
            // the job, or reported it again and saw the repeat acknowledged).
            JobStatus::Completed => {
                let by = completed.get(&job.uuid).and_then(|r| r.first().copied());
                let by = by.or_else(|| sent.get(&job.uuid).copied());
                assert!(by.is_some(), "completed, and no agent sent it: {job:?}");
                let said = job.output.as_ref().unwrap().results[0].stdout.as_deref();
                assert_eq!(said, by, "{job:?}");
                if !completed.contains_key(&job.uuid) {
                    assert!(
                        job.runner.is_some_and(|r| victims.contains(&r))
                            && job.completed.unwrap() <= killed_at + chrono::Duration::seconds(1),
                        "completed without an acknowledgement, not by the victim: {job:?}"
                    );
                    unacknowledged += 1;
                }
            }
            // Failed: only by the heartbeat rule, only a job a runner of the
            // victim held at the kill, and not one whose runner reported it
            // on its new channel in time.
            JobStatus::Failed => {
                failed += 1;
                let error = job.output.as_ref().and_then(|o| o.error.as_deref());
                assert!(error.is_some_and(|e| e.contains("heartbeat")), "{job:?}");
                assert!(job.claimed.unwrap() < killed_at, "{job:?}");
                assert!(
                    job.runner.is_some_and(|r| victims.contains(&r)),
                    "a job of a survivor's runner failed: {job:?}"
                );
                if let Some(sent) = reported_again.get(&job.uuid) {
                    let ended = job.completed.unwrap();
                    assert!(
                        ended < *sent,
                        "reported again at {sent}, yet failed at {ended}: {job:?}"
                    );
                }
            }
            _ => panic!("left unfinished: {job:?}"),
        }
    }
    for job in &dropped {
        let j = jobs.iter().find(|j| j.uuid == *job).unwrap();
        // Failed, unless its `completed` reached the victim in time.
        let committed = j.status == JobStatus::Completed && sent.contains_key(job);
        assert!(
            j.status == JobStatus::Failed || committed,
            "a dropped job: {j:?}"
        );
    }
    // At most one job a runner of the victim: the one it held at the kill.
    assert!(failed <= RUNNERS / REPLICAS, "{failed} failed");
    assert_eq!(
        completed.len() + unacknowledged + failed,
        jobs.len(),
        "every job ended once"
    );

    // The victim's runners reconnected to a survivor; the others' channels
    // never broke.
    for s in &seen {
        if s.home == VICTIM {
            assert!(s.reconnects > 0, "{s:?}");
            assert!(
                !s.after_kill.is_empty() && !s.after_kill.contains(&VICTIM),
                "{s:?}"
            );
        } else {
            assert_eq!(
                s.reconnects, 0,
                "a survivor's runner lost its channel: {s:?}"
            );
        }
    }
    let last_failed = jobs
        .iter()
        .filter(|j| j.status == JobStatus::Failed)
        .filter_map(|j| j.completed)
        .max()
        .map(|t| (t - killed_at).to_std().unwrap_or_default());
    eprintln!("the last job failed by the heartbeat rule failed {last_failed:?} after the kill");
    let in_flight = reported_again.len() + dropped.len();
    eprintln!(
        "{} jobs: {} completed, {failed} failed by the heartbeat rule; at the kill the victim's \
         runners had {in_flight} jobs in flight: {} reported again on a survivor, {} dropped",
        jobs.len(),
        completed.len(),
        reported_again.len(),
        dropped.len()
    );
    assert!(
        in_flight > 0,
        "no runner of the victim was in a job at the kill: nothing was tested"
    );
}

/// Kills the victim once enough completions were acknowledged, then waits
/// (through a survivor) until every job is created and none is pending,
/// claimed or running, and the runner left on the victim shows `offline`:
/// when it was killed, and the jobs then.
async fn kill_and_wait(
    race: &Race,
    victim: &mut Serving,
    survivor: &runners_sdk::Client,
    gone: &str,
) -> anyhow::Result<(DateTime<Utc>, Vec<JsonJob>)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    // The runner on the victim is idle, as every replica sees it.
    runners_tests::eventually(Duration::from_secs(5), || async {
        (view(survivor, gone).await.status == RunnerStatus::Idle).then_some(())
    })
    .await?;
    while race.done.load(Ordering::SeqCst) < KILL_AFTER {
        ensure!(Instant::now() < deadline, "too slow before the kill");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed_at = Utc::now();
    victim.kill();
    let killed = Instant::now();
    race.killed.store(true, Ordering::SeqCst);
    eprintln!(
        "killed replica {VICTIM} after {} completions",
        race.done.load(Ordering::SeqCst)
    );
    let (mut offline, mut resolved) = (None, None);
    loop {
        let unfinished = all_jobs(survivor, Some("pending,claimed,running")).await;
        if offline.is_none() && view(survivor, gone).await.status == RunnerStatus::Offline {
            offline = Some(killed.elapsed());
        }
        let created = race.created.load(Ordering::SeqCst) >= JOBS;
        if resolved.is_none() && created && unfinished.is_empty() {
            resolved = Some(killed.elapsed());
        }
        if let (Some(resolved), Some(offline)) = (resolved, offline) {
            eprintln!(
                "after the kill: every job ended within {resolved:?}; the runner left on the \
                 victim showed offline after {offline:?}"
            );
            ensure!(
                offline <= OFFLINE_WITHIN,
                "runner {gone} showed offline only after {offline:?}"
            );
            break;
        }
        if killed.elapsed() > RESOLVED_WITHIN {
            bail!(
                "{:?} after the kill: {} jobs created; runner {gone} {}; unfinished: {unfinished:?}",
                killed.elapsed(),
                race.created.load(Ordering::SeqCst),
                match offline {
                    Some(t) => format!("offline after {t:?}"),
                    None => "not offline".into(),
                }
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each with its output (lists leave it out).
    Ok((killed_at, runners_tests::all_jobs_in_full(survivor).await))
}
