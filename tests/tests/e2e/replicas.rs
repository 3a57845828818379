//! Replicas (issue 19): three servers, A, B and C, in this process on one
//! PostgreSQL database. Every guarantee holds across them: one slug under
//! racing creates, one live key after racing rotations, one fallback spec,
//! a job claimed exactly once, a job created on one replica waking a runner
//! waiting on another, a cancel reaching the replica that holds the
//! runner's channel, a revoked token (or a rotated signing key) refused by
//! every replica within 1 s.
//!
//! They need PostgreSQL: without `RUNNERS_TEST_PG` each test says SKIPPED
//! and passes (`.ci/postgres -- cargo test -p runners-tests --test e2e
//! replicas`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use futures::future::join_all;
use runners_sdk::types::{JobStatus, JsonUpdateSpec};
use runners_sdk::{Client, Error};
use runners_server::auth;
use runners_server::store::Actor;
use runners_tests::agent::Agent;
use runners_tests::race::{Raced, race, racers};
use runners_tests::*;
use uuid::Uuid;

/// Requests in each race.
const RACERS: usize = 30;

/// A, B and C on one fresh PostgreSQL database; `None` (having said
/// SKIPPED) without PostgreSQL.
async fn replicas() -> Option<[TestServer; 3]> {
    if std::env::var_os("RUNNERS_TEST_PG").is_none() {
        eprintln!(
            "SKIPPED: replicas need PostgreSQL (set RUNNERS_TEST_PG; \
             .ci/postgres -- cargo test -p runners-tests --test e2e replicas)"
        );
        return None;
    }
    let a = TestServer::start().await;
    assert!(a.on_postgres());
    let b = a.replica().await;
    let c = a.replica().await;
    Some([a, b, c])
}

/// The HTTP status of an answer (an error that is not an answer fails).
fn status<T: std::fmt::Debug>(
    answer: &Result<runners_sdk::ResponseValue<T>, Error<runners_sdk::types::Error>>,
) -> u16 {
    match answer {
        Ok(rv) => rv.status().as_u16(),
        Err(Error::ErrorResponse(rv)) => rv.status().as_u16(),
        Err(e) => panic!("no answer: {e}"),
    }
}

#[tokio::test]
async fn racing_creates_of_one_slug_over_three_replicas_make_one_runner() {
    let Some(servers) = replicas().await else {
        return;
    };
    let admins: Vec<Client> = servers.iter().map(TestServer::admin).collect();
    for round in 0..3 {
        let slug = format!("contested-{round}");
        let name = format!("Contested {round}");
        let answers = join_all((0..RACERS).map(|i| {
            admins[i % 3]
                .runners_post()
                .body(new_runner(&name, Some(&slug)))
                .send()
        }))
        .await;
        let mut won = Vec::new();
        for answer in answers {
            match status(&answer) {
                201 => won.push(answer.unwrap().into_inner().uuid),
                409 => {
                    failure(answer).assert(409, "Conflict");
                }
                other => panic!("round {round}: {other}: {answer:?}"),
            }
        }
        assert_eq!(
            won.len(),
            1,
            "round {round}: {} creates answered 201",
            won.len()
        );
        for (admin, replica) in admins.iter().zip("ABC".chars()) {
            let (runners, total) = list_all(admin, false).await;
            let listed: Vec<_> = runners.iter().filter(|r| r.slug == slug).collect();
            assert_eq!(
                listed.len(),
                1,
                "replica {replica}, round {round}: {listed:?}"
            );
            assert_eq!(listed[0].uuid, won[0], "replica {replica}");
            assert_eq!(total, round + 1, "replica {replica}: one runner a round");
        }
    }
}

#[tokio::test]
async fn racing_key_rotations_over_three_replicas_leave_one_live_key() {
    let Some(servers) = replicas().await else {
        return;
    };
    let admins: Vec<Client> = servers.iter().map(TestServer::admin).collect();
    let (runner, first) = create(&admins[0], "Rotated", None).await;
    for round in 0..3 {
        let answers = join_all((0..RACERS).map(|i| {
            admins[i % 3]
                .runner_key_post()
                .runner(runner.slug.as_str())
                .send()
        }))
        .await;
        let mut keys = vec![first.clone()];
        for answer in answers {
            let answer = answer.unwrap_or_else(|e| panic!("round {round}: {e:?}"));
            assert_eq!(answer.status(), 201);
            keys.push(answer.into_inner().key);
        }
        // Every key, on every replica: one works, everywhere; the rest 401.
        let mut live = BTreeSet::new();
        for key in &keys {
            for (server, replica) in servers.iter().zip("ABC".chars()) {
                let answer = beat(server, key, &runner.slug).await;
                match status(&answer) {
                    200 => {
                        live.insert((key.clone(), replica));
                    }
                    401 => {
                        failure(answer).assert(401, "Unauthorized");
                    }
                    other => panic!("round {round}, replica {replica}: {other}: {answer:?}"),
                }
            }
        }
        let keys_live: BTreeSet<_> = live.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys_live.len(),
            1,
            "round {round}: {} keys work",
            keys_live.len()
        );
        assert_eq!(
            live.len(),
            3,
            "round {round}: the live key on every replica"
        );
        assert!(
            !live.iter().any(|(k, _)| *k == first),
            "round {round}: the first key still works"
        );
    }
}

#[tokio::test]
async fn racing_fallback_patches_over_three_replicas_leave_one_fallback() {
    let Some(servers) = replicas().await else {
        return;
    };
    let admins: Vec<Client> = servers.iter().map(TestServer::admin).collect();
    let mut specs = Vec::new();
    for i in 0..RACERS {
        specs.push(
            create_spec(&admins[i % 3], new_spec(&format!("Box {i}")))
                .await
                .slug,
        );
    }
    let fallback = |on: bool| JsonUpdateSpec {
        fallback: Some(on),
        ..Default::default()
    };
    for round in 0..3 {
        // Each spec made the fallback at once, through the replicas in
        // turn (and, from the second round, some cleared at the same time).
        let answers = join_all(specs.iter().enumerate().map(|(i, spec)| {
            let on = round == 0 || i % 5 != 0;
            patch_spec(&admins[(i + round) % 3], spec, fallback(on))
        }))
        .await;
        for answer in &answers {
            assert_eq!(status(answer), 200, "round {round}: {answer:?}");
        }
        let mut seen = Vec::new();
        for (admin, replica) in admins.iter().zip("ABC".chars()) {
            let now: Vec<String> = all_specs(admin)
                .await
                .into_iter()
                .filter(|s| s.fallback.is_some())
                .map(|s| s.slug)
                .collect();
            assert_eq!(now.len(), 1, "round {round}, replica {replica}: {now:?}");
            seen.push(now);
        }
        assert!(
            seen.windows(2).all(|w| w[0] == w[1]),
            "round {round}: {seen:?}"
        );
        // A job with no spec goes to that one, whichever replica makes it.
        let made = create_job(&admins[round % 3], new_job(None, 0)).await;
        assert_eq!(made.spec.slug, seen[0][0], "round {round}");
        admins[0]
            .job_cancel_post()
            .job(made.uuid)
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn thirty_two_runners_over_three_replicas_race_for_200_jobs_each_claimed_once()
-> anyhow::Result<()> {
    const RUNNERS: usize = 32;
    const JOBS: usize = 200;
    let Some(servers) = replicas().await else {
        return Ok(());
    };
    let admin = servers[0].admin();
    let runners = racers(&admin, RUNNERS).await;
    // Round-robin over the replicas; every runner waits before the first
    // job exists.
    let tasks = race(&runners, |i| &servers[i % 3], JOBS).await?;
    // Three creators, one a replica, at the same time.
    let creators = servers.iter().enumerate().map(|(r, server)| {
        let admin = server.admin();
        tokio::spawn(async move {
            let mut created = Vec::new();
            for _ in (r..JOBS).step_by(3) {
                created.push(create_job(&admin, new_job(None, 0)).await.uuid);
            }
            created
        })
    });
    let mut created = BTreeSet::new();
    for creator in join_all(creators).await {
        created.extend(creator?);
    }
    ensure!(created.len() == JOBS);

    let mut given: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    let mut completed: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for task in tasks {
        let Raced {
            runner,
            given: got,
            completed: done,
        } = tokio::time::timeout(Duration::from_secs(90), task).await???;
        for job in got {
            given.entry(job).or_default().push(runner.clone());
        }
        for job in done {
            completed.entry(job).or_default().push(runner.clone());
        }
    }
    let twice: Vec<_> = given.iter().filter(|(_, r)| r.len() > 1).collect();
    ensure!(twice.is_empty(), "given to more than one runner: {twice:?}");
    let twice: Vec<_> = completed.iter().filter(|(_, r)| r.len() > 1).collect();
    ensure!(twice.is_empty(), "completed more than once: {twice:?}");
    ensure!(
        completed.keys().copied().collect::<BTreeSet<_>>() == created,
        "the agents completed {} of the {JOBS} jobs",
        completed.len()
    );
    // Every replica sees each job completed, by the runner that did it.
    let slugs: BTreeMap<Uuid, String> = list_all(&admin, false)
        .await
        .0
        .into_iter()
        .map(|r| (r.uuid, r.slug))
        .collect();
    for (server, replica) in servers.iter().zip("ABC".chars()) {
        let jobs = all_jobs(&server.admin(), None).await;
        ensure!(jobs.len() == JOBS, "replica {replica}: {} jobs", jobs.len());
        for j in &jobs {
            ensure!(j.status == JobStatus::Completed, "replica {replica}: {j:?}");
            let by = j.runner.and_then(|r| slugs.get(&r));
            ensure!(by == completed[&j.uuid].first(), "replica {replica}: {j:?}");
            // Lists carry no output; the job's view does.
            let viewed = job(&server.admin(), j.uuid).await;
            let said = viewed
                .output
                .as_ref()
                .and_then(|o| o.results[0].stdout.as_ref());
            ensure!(said == by, "the results of another runner: {viewed:?}");
        }
    }
    let per_replica: Vec<usize> = (0..3)
        .map(|r| {
            let on: BTreeSet<&String> = runners.iter().skip(r).step_by(3).map(|(s, _)| s).collect();
            completed.values().filter(|by| on.contains(&by[0])).count()
        })
        .collect();
    eprintln!("jobs completed by the runners on A, B, C: {per_replica:?}");
    Ok(())
}

#[tokio::test]
async fn a_job_created_on_a_wakes_a_runner_waiting_on_c_within_100_ms() -> anyhow::Result<()> {
    const ROUNDS: usize = 20;
    let Some([a, _b, c]) = replicas().await else {
        return Ok(());
    };
    let admin = a.admin();
    let (_, runner, key) = fallback_runner(&admin, "Waiting").await;
    let mut agent = Agent::connect(&c, &runner.slug, &key).await?;
    let mut took = Vec::new();
    for _ in 0..ROUNDS {
        agent.ready(30).await?;
        // Waiting on C (no job is pending: it is woken, not given one at
        // its `ready`).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let created = create_job(&admin, new_job(None, 0)).await;
        let answered = Instant::now();
        let given = agent.expect_job().await?;
        took.push(answered.elapsed());
        ensure!(given.uuid == created.uuid, "{given:?}");
        agent.start(given.uuid).await?;
        agent.complete(given.uuid, vec![]).await?;
        agent.expect_ack(given.uuid).await?;
    }
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    eprintln!(
        "created on A, given on C, {ROUNDS} rounds: min {:.1} ms, median {:.1} ms, max {:.1} ms",
        ms(took[0]),
        ms(took[ROUNDS / 2]),
        ms(took[ROUNDS - 1])
    );
    let max = took[ROUNDS - 1];
    ensure!(
        max <= Duration::from_millis(100),
        "dispatch took up to {max:?}: {took:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_cancel_through_a_reaches_the_runner_on_b() -> anyhow::Result<()> {
    let Some([a, b, c]) = replicas().await else {
        return Ok(());
    };
    let admin = a.admin();
    let (_, runner, key) = fallback_runner(&admin, "Canceled").await;
    let mut agent = Agent::connect(&b, &runner.slug, &key).await?;
    // Claimed (not started), then running: each canceled through A.
    for start in [false, true] {
        let created = create_job(&c.admin(), new_job(None, 0)).await;
        agent.ready(5).await?;
        let given = agent.expect_job().await?;
        ensure!(given.uuid == created.uuid, "{given:?}");
        if start {
            agent.start(given.uuid).await?;
        }
        let sent = Instant::now();
        let answer = admin.job_cancel_post().job(created.uuid).send().await?;
        ensure!(answer.status == JobStatus::Canceled, "{answer:?}");
        let answered = sent.elapsed();
        agent.expect_cancel().await?;
        eprintln!(
            "cancel of a {} job through A: answered in {answered:?}, reached B in {:?}",
            if start { "running" } else { "claimed" },
            sent.elapsed()
        );
        agent.canceled(created.uuid).await?;
        agent.expect_ack(created.uuid).await?;
        for (server, replica) in [&a, &b, &c].into_iter().zip("ABC".chars()) {
            let now = job(&server.admin(), created.uuid).await;
            ensure!(
                now.status == JobStatus::Canceled,
                "replica {replica}: {now:?}"
            );
        }
    }
    // The channel still serves.
    agent.ready(1).await?;
    agent.expect_no_job().await?;
    Ok(())
}

/// A runner has one channel across replicas, as on one server: its channel
/// opening on B closes the one it held on A (1008), so two replicas never
/// hand one runner two jobs at once; the new channel serves.
#[tokio::test]
async fn a_runners_channel_opening_on_b_closes_its_channel_on_a() -> anyhow::Result<()> {
    let Some([a, b, c]) = replicas().await else {
        return Ok(());
    };
    let admin = a.admin();
    let (_, runner, key) = fallback_runner(&admin, "Moving").await;
    let mut on_a = Agent::connect(&a, &runner.slug, &key).await?;
    on_a.ready(30).await?;
    let mut on_b = Agent::connect(&b, &runner.slug, &key).await?;
    let (code, reason) = on_a.expect_close().await?;
    ensure!(code == 1008, "{code} {reason}");
    ensure!(reason.contains("another channel"), "{reason}");
    on_b.ready(5).await?;
    let created = create_job(&c.admin(), new_job(None, 0)).await;
    let given = on_b.expect_job().await?;
    ensure!(given.uuid == created.uuid, "{given:?}");
    Ok(())
}

/// Polls `server` with `token` from `since` until it answers 401: when,
/// after `since`, the last request it accepted was sent, and when the
/// first 401 came. Gives up 3 s after `since`.
async fn refused(
    server: &TestServer,
    token: &str,
    since: Instant,
) -> anyhow::Result<(Option<Duration>, Duration)> {
    let client = server.client(token);
    let mut accepted = None;
    loop {
        let sent = since.elapsed();
        ensure!(
            sent < Duration::from_secs(3),
            "still accepted after {sent:?}"
        );
        let answer = client.runners_get().send().await;
        match status(&answer) {
            200 => accepted = Some(sent),
            401 => {
                failure(answer).assert(401, "Unauthorized");
                return Ok((accepted, since.elapsed()));
            }
            other => bail!("{other}: {answer:?}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Asserts that each replica accepted no request sent 1 s or more after
/// `since`, and refused `token` since: the figures, for the report.
async fn refused_everywhere(
    servers: &[TestServer; 3],
    token: &str,
    since: Instant,
    what: &str,
) -> anyhow::Result<()> {
    let outcomes = join_all(servers.iter().map(|s| refused(s, token, since))).await;
    for (outcome, replica) in outcomes.into_iter().zip("ABC".chars()) {
        let (accepted, first_401) = outcome?;
        eprintln!(
            "{what}: replica {replica} refused it {first_401:?} after (last accepted request \
             sent {accepted:?} after)"
        );
        if let Some(accepted) = accepted {
            ensure!(
                accepted < Duration::from_secs(1),
                "{what}: replica {replica} accepted a request sent {accepted:?} after"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_revoked_token_and_a_rotated_signing_key_are_refused_by_every_replica_within_1_s()
-> anyhow::Result<()> {
    let Some(servers) = replicas().await else {
        return Ok(());
    };
    let [a, _, _] = &servers;
    let hour = chrono::Duration::hours(1);
    let (jti, token) = a.api_token("ops", true, hour).await;
    // Each replica verifies it (and may trust it for a second).
    for server in &servers {
        ensure!(status(&server.client(&token).runners_get().send().await) == 200);
    }
    // Revoked on the database A serves, as `runners-server token revoke`
    // does while the servers run.
    a.store().revoke_api_token(jti, &Actor::program()).await?;
    refused_everywhere(&servers, &token, Instant::now(), "revoked token").await?;
    // The bootstrap admin token still works everywhere.
    for server in &servers {
        ensure!(status(&server.admin().runners_get().send().await) == 200);
    }

    // `runners-server key rotate`: a new signing secret, every token
    // revoked; a token signed with the new secret works on every replica
    // at once.
    let old = a.admin_token.clone();
    for server in &servers {
        ensure!(status(&server.client(&old).runners_get().send().await) == 200);
    }
    let store = a.store();
    store.rotate_signing_key(&Actor::program()).await?;
    let since = Instant::now();
    let (_, new) = auth::issue_api_token(&store, "admin", true, hour, &Actor::program()).await?;
    for (server, replica) in servers.iter().zip("ABC".chars()) {
        let answer = server.client(&new).runners_get().send().await;
        ensure!(status(&answer) == 200, "replica {replica}: {answer:?}");
    }
    refused_everywhere(&servers, &old, since, "token signed before a key rotation").await?;
    Ok(())
}
