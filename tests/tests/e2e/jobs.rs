//! Jobs: the queue (exactly once, spec matching, priority), cancel at every
//! status, the timeouts, restart recovery, the runner's state, and job
//! create's rules and audit rows. Runners are test agents on real sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use runners_sdk::types::{
    Architecture, JobStatus, JsonJob, JsonNewSpec, JsonUpdateSpec, OperatingSystem, RunnerStatus,
};
use runners_server::Limits;
use runners_tests::agent::{Agent, metadata, output};
use runners_tests::race::{Raced, race, racers};
use runners_tests::*;
use uuid::Uuid;

/// Limits with these timeouts (seconds) for the channel.
fn timeouts(heartbeat: u64, grace: u64) -> Limits {
    Limits {
        heartbeat_timeout: Duration::from_secs(heartbeat),
        job_timeout_grace: Duration::from_secs(grace),
        ..Limits::default()
    }
}

/// A job whose timeout is `secs`.
fn with_timeout(spec: Option<&str>, secs: u32) -> runners_sdk::types::JsonNewJob {
    let mut body = new_job(spec, 0);
    body.timeout = Some(std::num::NonZeroU32::new(secs).unwrap());
    body
}

/// The job once `done` says it is so (the server records some ends just
/// after it answers, or on a timer).
async fn job_when(
    server: &TestServer,
    uuid: Uuid,
    within: Duration,
    done: impl Fn(&JsonJob) -> bool,
) -> anyhow::Result<JsonJob> {
    let admin = server.admin();
    let last = eventually(within, || async {
        let now = job(&admin, uuid).await;
        done(&now).then_some(now)
    })
    .await;
    match last {
        Ok(job) => Ok(job),
        Err(e) => bail!("{e}: job is {:?}", job(&admin, uuid).await),
    }
}

#[tokio::test]
async fn thirty_two_runners_race_for_200_jobs_each_claimed_and_completed_once() -> anyhow::Result<()>
{
    const RUNNERS: usize = 32;
    const JOBS: usize = 200;
    let server = TestServer::start().await;
    let admin = server.admin();
    let runners = racers(&admin, RUNNERS).await;
    // Every runner waits before the first job exists: they race for each.
    let tasks = race(&runners, |_| &server, JOBS).await?;
    let creator = tokio::spawn({
        let admin = server.admin();
        async move {
            let mut created = Vec::new();
            for _ in 0..JOBS {
                created.push(create_job(&admin, new_job(None, 0)).await.uuid);
            }
            created
        }
    });
    let created: BTreeSet<Uuid> = creator.await?.into_iter().collect();
    ensure!(created.len() == JOBS);

    // Who completed what, by the agents' own count.
    let mut by_agents: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for task in tasks {
        let Raced {
            runner, completed, ..
        } = tokio::time::timeout(Duration::from_secs(60), task).await???;
        for job in completed {
            by_agents.entry(job).or_default().push(runner.clone());
        }
    }
    let twice: Vec<_> = by_agents.iter().filter(|(_, r)| r.len() > 1).collect();
    ensure!(twice.is_empty(), "given to more than one runner: {twice:?}");
    ensure!(
        by_agents.keys().copied().collect::<BTreeSet<_>>() == created,
        "the agents completed {} of the {JOBS} jobs",
        by_agents.len()
    );

    // And by the server's: every job completed, by the runner that did it.
    let jobs = all_jobs(&admin, None).await;
    ensure!(jobs.len() == JOBS, "{} jobs listed", jobs.len());
    let uuids: BTreeMap<Uuid, String> = list_all(&admin, false)
        .await
        .0
        .into_iter()
        .map(|r| (r.uuid, r.slug))
        .collect();
    for j in &jobs {
        ensure!(j.status == JobStatus::Completed, "{j:?}");
        let by = j.runner.and_then(|r| uuids.get(&r));
        ensure!(by == by_agents[&j.uuid].first(), "{j:?} by {by_agents:?}");
        // Lists carry no output; the job's view does.
        let viewed = job(&admin, j.uuid).await;
        let said = viewed
            .output
            .as_ref()
            .and_then(|o| o.results[0].stdout.as_ref());
        ensure!(said == by, "the results of another runner: {viewed:?}");
    }
    let counted = all_jobs(&admin, Some("completed")).await.len();
    ensure!(counted == JOBS, "{counted} completed");
    Ok(())
}

#[tokio::test]
async fn a_job_goes_only_to_a_runner_with_its_spec_higher_priority_then_older_first()
-> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let a = create_spec(&admin, new_spec("Spec A")).await;
    let b = create_spec(&admin, new_spec("Spec B")).await;
    let c = create_spec(&admin, new_spec("Spec C")).await;
    let (ra, key_a) = runner_with_spec(&admin, "Runner A", &a.slug).await;
    let (rb, key_b) = runner_with_spec(&admin, "Runner B", &b.slug).await;

    // Created in this order; runner A must take its own in the order
    // (priority desc, created asc): 1, 2, 0, 3.
    let low = create_job(&admin, new_job(Some(&a.slug), 0)).await;
    let high_old = create_job(&admin, new_job(Some(&a.slug), 5)).await;
    let for_b = create_job(&admin, new_job(Some(&b.slug), 9)).await;
    let high_new = create_job(&admin, new_job(Some(&a.slug), 5)).await;
    let lowest = create_job(&admin, new_job(Some(&a.slug), -1)).await;
    let for_c = create_job(&admin, new_job(Some(&c.slug), 100)).await;
    let by_uuid = create_job(&admin, new_job(Some(&a.uuid.to_string()), 0)).await;

    let mut agent_a = Agent::connect(&server, &ra.slug, &key_a).await?;
    let mut taken = Vec::new();
    for _ in 0..5 {
        let given = agent_a.take_job(1).await?;
        ensure!(given.spec.uuid == a.uuid, "{given:?}");
        agent_a.complete(given.uuid, vec![]).await?;
        agent_a.expect_ack(given.uuid).await?;
        taken.push(given.uuid);
    }
    let want = [
        high_old.uuid,
        high_new.uuid,
        low.uuid,
        by_uuid.uuid,
        lowest.uuid,
    ];
    ensure!(taken == want, "taken {taken:?}, want {want:?}");
    agent_a.ready(1).await?;
    agent_a.expect_no_job().await?;

    let mut agent_b = Agent::connect(&server, &rb.slug, &key_b).await?;
    let given = agent_b.take_job(1).await?;
    ensure!(given.uuid == for_b.uuid, "{given:?}");
    agent_b.complete(given.uuid, vec![]).await?;
    agent_b.expect_ack(given.uuid).await?;
    agent_b.ready(1).await?;
    agent_b.expect_no_job().await?;

    // No runner has spec C: its job stays pending, whatever its priority.
    let stays = job(&admin, for_c.uuid).await;
    ensure!(
        stays.status == JobStatus::Pending && stays.runner.is_none(),
        "{stays:?}"
    );
    // A runner given spec C later takes it.
    agent_a.close().await?;
    add_spec(&admin, &ra.slug, &c.slug).await;
    let mut agent_a = Agent::connect(&server, &ra.slug, &key_a).await?;
    let given = agent_a.take_job(1).await?;
    ensure!(given.uuid == for_c.uuid, "{given:?}");
    Ok(())
}

#[tokio::test]
async fn a_waiting_runner_is_woken_by_a_new_job_at_once() -> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Waiting").await;
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
    agent.ready(30).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let created = create_job(&admin, new_job(None, 0)).await;
    let start = Instant::now();
    let given = agent.expect_job().await?;
    ensure!(given.uuid == created.uuid, "{given:?}");
    // Bencher polls once a second; this server wakes the runner.
    let took = start.elapsed();
    ensure!(took < Duration::from_millis(500), "dispatch took {took:?}");
    Ok(())
}

#[tokio::test]
async fn cancel_at_every_status() -> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Canceled").await;
    let cancel = async |uuid: Uuid| admin.job_cancel_post().job(uuid).send().await;

    // Pending: canceled at once, and never given.
    let pending = create_job(&admin, new_job(None, 0)).await;
    let canceled = cancel(pending.uuid).await?.into_inner();
    ensure!(canceled.status == JobStatus::Canceled, "{canceled:?}");
    ensure!(canceled.completed.is_some(), "{canceled:?}");
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
    agent.ready(1).await?;
    agent.expect_no_job().await?;

    // Claimed (not started): the runner gets `cancel`.
    let claimed = create_job(&admin, new_job(None, 0)).await;
    agent.ready(5).await?;
    ensure!(agent.expect_job().await?.uuid == claimed.uuid);
    let answer = cancel(claimed.uuid).await?.into_inner();
    ensure!(answer.status == JobStatus::Canceled, "{answer:?}");
    agent.expect_cancel().await?;
    agent.canceled(claimed.uuid).await?;
    agent.expect_ack(claimed.uuid).await?;
    let after = job(&admin, claimed.uuid).await;
    ensure!(after.status == JobStatus::Canceled, "{after:?}");

    // Running: the same.
    let running = create_job(&admin, new_job(None, 0)).await;
    ensure!(agent.take_job(5).await?.uuid == running.uuid);
    cancel(running.uuid).await?;
    agent.expect_cancel().await?;
    agent.canceled(running.uuid).await?;
    agent.expect_ack(running.uuid).await?;
    let after = job(&admin, running.uuid).await;
    ensure!(after.status == JobStatus::Canceled, "{after:?}");
    ensure!(
        after.started.is_some() && after.completed.is_some(),
        "{after:?}"
    );

    // Ended (completed, failed, canceled): 409, and nothing changes.
    let completed = create_job(&admin, new_job(None, 0)).await;
    ensure!(agent.take_job(5).await?.uuid == completed.uuid);
    agent.complete(completed.uuid, vec![]).await?;
    agent.expect_ack(completed.uuid).await?;
    let failed = create_job(&admin, new_job(None, 0)).await;
    ensure!(agent.take_job(5).await?.uuid == failed.uuid);
    agent.fail(failed.uuid, vec![], "broke").await?;
    agent.expect_ack(failed.uuid).await?;
    for ended in [completed.uuid, failed.uuid, pending.uuid, running.uuid] {
        let before = job(&admin, ended).await;
        failure(cancel(ended).await).assert(409, "Conflict");
        ensure!(
            job(&admin, ended).await == before,
            "a refused cancel changed it"
        );
    }
    failure(cancel(Uuid::new_v4()).await).assert(404, "NotFound");

    // The channel still serves after all that.
    agent.ready(1).await?;
    agent.expect_no_job().await?;
    Ok(())
}

#[tokio::test]
async fn a_silent_runner_fails_its_job_and_is_closed_heartbeat_timeout() -> anyhow::Result<()> {
    let server = TestServer::start_with(timeouts(1, 60)).await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Silent").await;
    let created = create_job(&admin, new_job(None, 0)).await;
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
    agent.take_job(1).await?;
    let since = Instant::now();
    // Silent from here.
    let (code, reason) = agent.expect_close().await?;
    let took = since.elapsed();
    ensure!(code == 1000, "{code} {reason}");
    ensure!(reason == "\"heartbeat_timeout\"", "{reason:?}");
    ensure!(took >= Duration::from_millis(900), "closed after {took:?}");
    ensure!(took < Duration::from_secs(4), "closed after {took:?}");
    let failed = job(&admin, created.uuid).await;
    ensure!(failed.status == JobStatus::Failed, "{failed:?}");
    let error = failed.output.as_ref().and_then(|o| o.error.clone());
    ensure!(error.is_some_and(|e| e.contains("heartbeat")), "{failed:?}");

    // An idle channel (no ready) is closed the same way; heartbeats keep a
    // running job alive past it.
    let mut idle = Agent::connect(&server, &runner.slug, &key).await?;
    let (code, reason) = idle.expect_close().await?;
    ensure!(
        (code, reason.as_str()) == (1000, "\"heartbeat_timeout\""),
        "{reason}"
    );

    let kept = create_job(&admin, new_job(None, 0)).await;
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
    agent.take_job(1).await?;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        agent.heartbeat().await?;
        agent.expect_ack(kept.uuid).await?;
    }
    agent.complete(kept.uuid, vec![]).await?;
    agent.expect_ack(kept.uuid).await?;
    let done = job(&admin, kept.uuid).await;
    ensure!(done.status == JobStatus::Completed, "{done:?}");
    Ok(())
}

#[tokio::test]
async fn a_job_past_its_timeout_and_grace_is_canceled_job_timeout_exceeded() -> anyhow::Result<()> {
    let server = TestServer::start_with(timeouts(30, 1)).await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Slow").await;
    let created = create_job(&admin, with_timeout(None, 1)).await;
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
    let given = agent.take_job(1).await?;
    ensure!(given.timeout.get() == 1, "{given:?}");
    let started = Instant::now();
    // Heartbeats, as a live agent sends them, until the server cancels.
    loop {
        ensure!(started.elapsed() < Duration::from_secs(5), "never canceled");
        tokio::time::sleep(Duration::from_millis(200)).await;
        agent.heartbeat().await?;
        match agent.recv().await? {
            runners_sdk::types::ServerMessage::Ack { job: Some(j) } if j == created.uuid => {}
            runners_sdk::types::ServerMessage::Cancel => break,
            other => bail!("{other:?}"),
        }
    }
    let took = started.elapsed();
    ensure!(
        took >= Duration::from_millis(1900),
        "canceled after {took:?}"
    );
    let (code, reason) = agent.expect_close().await?;
    ensure!(code == 1000, "{code} {reason}");
    ensure!(reason == "\"job_timeout_exceeded\"", "{reason:?}");
    let canceled = job(&admin, created.uuid).await;
    ensure!(canceled.status == JobStatus::Canceled, "{canceled:?}");

    // Silent past it (the timer, not a heartbeat, finds it): the same.
    let silent = create_job(&admin, with_timeout(None, 1)).await;
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
    agent.take_job(1).await?;
    agent.expect_cancel().await?;
    let (code, reason) = agent.expect_close().await?;
    ensure!(
        (code, reason.as_str()) == (1000, "\"job_timeout_exceeded\""),
        "{reason}"
    );
    let canceled = job(&admin, silent.uuid).await;
    ensure!(canceled.status == JobStatus::Canceled, "{canceled:?}");
    Ok(())
}

#[tokio::test]
async fn a_job_claimed_when_the_server_stopped_is_failed_after_restart() -> anyhow::Result<()> {
    let mut server = TestServer::start_with(timeouts(1, 60)).await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Restarted").await;
    let claimed = create_job(&admin, new_job(None, 0)).await;
    let running = create_job(&admin, new_job(None, 0)).await;
    let spec = runner.specs[0].to_string();
    let (other, other_key) = runner_with_spec(&admin, "Other", &spec).await;
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
    agent.ready(1).await?;
    ensure!(agent.expect_job().await?.uuid == claimed.uuid);
    let mut second = Agent::connect(&server, &other.slug, &other_key).await?;
    ensure!(second.take_job(1).await?.uuid == running.uuid);

    server.stop().await;
    drop((agent, second));
    server.start_again().await;
    let admin = server.admin();
    for uuid in [claimed.uuid, running.uuid] {
        let failed = job_when(&server, uuid, Duration::from_secs(5), |j| {
            j.status != JobStatus::Claimed && j.status != JobStatus::Running
        })
        .await?;
        ensure!(failed.status == JobStatus::Failed, "{failed:?}");
    }
    // Nothing is left claimed or running; the runners are offline.
    ensure!(all_jobs(&admin, Some("claimed,running")).await.is_empty());
    for r in [&runner, &other] {
        let now = view(&admin, &r.slug).await;
        ensure!(now.status == RunnerStatus::Offline, "{now:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_server_shutdown_closes_each_channel_1001_going_away() -> anyhow::Result<()> {
    let mut server = TestServer::start().await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Leaving").await;
    let (other, other_key) = runner_with_spec(&admin, "Other", &runner.specs[0].to_string()).await;
    let created = create_job(&admin, new_job(None, 0)).await;
    let mut busy = Agent::connect(&server, &runner.slug, &key).await?;
    busy.take_job(1).await?;
    let mut waiting = Agent::connect(&server, &other.slug, &other_key).await?;
    waiting.ready(30).await?;
    server.stop().await;
    for agent in [&mut busy, &mut waiting] {
        let (code, reason) = agent.expect_close().await?;
        ensure!(code == 1001, "{code} {reason}");
        ensure!(reason.contains("shutting down"), "{reason:?}");
    }
    server.start_again().await;
    // The job stays running, for its runner to report after the restart.
    let kept = job(&server.admin(), created.uuid).await;
    ensure!(kept.status == JobStatus::Running, "{kept:?}");
    Ok(())
}

#[tokio::test]
async fn a_job_past_its_timeout_when_the_server_stopped_is_canceled_after_restart()
-> anyhow::Result<()> {
    let mut server = TestServer::start_with(timeouts(30, 1)).await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Overrun").await;
    let created = create_job(&admin, with_timeout(None, 1)).await;
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
    agent.take_job(1).await?;
    server.stop().await;
    drop(agent);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    server.start_again().await;
    let ended = job_when(&server, created.uuid, Duration::from_secs(3), |j| {
        j.status != JobStatus::Running
    })
    .await?;
    ensure!(ended.status == JobStatus::Canceled, "{ended:?}");
    Ok(())
}

#[tokio::test]
async fn a_runner_reconnecting_after_a_restart_can_still_end_its_job() -> anyhow::Result<()> {
    let mut server = TestServer::start_with(timeouts(3, 60)).await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Returning").await;
    let created = create_job(&admin, new_job(None, 0)).await;
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
    agent.take_job(1).await?;
    server.restart().await;
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
    agent
        .complete(created.uuid, vec![output(0, "after")])
        .await?;
    agent.expect_ack(created.uuid).await?;
    let done = job(&server.admin(), created.uuid).await;
    ensure!(done.status == JobStatus::Completed, "{done:?}");
    Ok(())
}

#[tokio::test]
async fn runner_status_follows_its_channel_and_its_job() -> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Stateful").await;
    let (bystander, _) = create(&admin, "Bystander", None).await;
    ensure!(runner.status == RunnerStatus::Offline, "{runner:?}");
    ensure!(runner.os.is_none() && runner.arch.is_none() && runner.version.is_none());
    ensure!(runner.last_heartbeat.is_none(), "{runner:?}");

    let status_is = async |want: RunnerStatus| {
        eventually(Duration::from_secs(5), || async {
            let now = view(&admin, &runner.slug).await;
            (now.status == want).then_some(now)
        })
        .await
    };
    let listed = async |status: RunnerStatus| -> Vec<String> {
        let page = admin
            .runners_get()
            .status(status)
            .per_page(255)
            .send()
            .await;
        page.unwrap()
            .into_inner()
            .into_iter()
            .map(|r| r.slug)
            .collect()
    };

    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
    status_is(RunnerStatus::Idle).await?;
    ensure!(listed(RunnerStatus::Idle).await == [runner.slug.as_str()]);
    ensure!(listed(RunnerStatus::Offline).await == [bystander.slug.as_str()]);
    ensure!(listed(RunnerStatus::Busy).await.is_empty());

    // ready with the agent's report: kept, and last_heartbeat written.
    agent
        .ready_as(
            1,
            metadata(OperatingSystem::Linux, Architecture::Aarch64, "0.6.12"),
        )
        .await?;
    agent.expect_no_job().await?;
    let reported = view(&admin, &runner.slug).await;
    ensure!(reported.os == Some(OperatingSystem::Linux), "{reported:?}");
    ensure!(reported.arch == Some(Architecture::Aarch64), "{reported:?}");
    ensure!(
        reported.version.as_deref() == Some("0.6.12"),
        "{reported:?}"
    );
    let first = reported.last_heartbeat.expect("written by ready");

    let created = create_job(&admin, new_job(None, 0)).await;
    agent.ready(5).await?;
    agent.expect_job().await?;
    let busy = status_is(RunnerStatus::Busy).await?;
    ensure!(listed(RunnerStatus::Busy).await == [runner.slug.as_str()]);
    ensure!(listed(RunnerStatus::Idle).await.is_empty());
    ensure!(busy.last_heartbeat > Some(first), "{busy:?}");

    // Each message writes last_heartbeat.
    let mut last = busy.last_heartbeat;
    for send in [0, 1] {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if send == 0 {
            agent.running().await?;
        } else {
            agent.heartbeat().await?;
        }
        agent.expect_ack(created.uuid).await?;
        let now = view(&admin, &runner.slug).await;
        ensure!(now.last_heartbeat > last, "message {send}: {now:?}");
        ensure!(now.status == RunnerStatus::Busy, "{now:?}");
        last = now.last_heartbeat;
    }
    agent.complete(created.uuid, vec![]).await?;
    agent.expect_ack(created.uuid).await?;
    let idle = status_is(RunnerStatus::Idle).await?;
    ensure!(idle.last_heartbeat > last, "{idle:?}");
    // The report of the agent is kept after older agents' ready (none).
    ensure!(idle.os == Some(OperatingSystem::Linux), "{idle:?}");

    agent.close().await?;
    status_is(RunnerStatus::Offline).await?;
    ensure!(listed(RunnerStatus::Idle).await.is_empty());
    ensure!(listed(RunnerStatus::Offline).await.len() == 2);
    Ok(())
}

#[tokio::test]
async fn job_create_refuses_every_bad_input_naming_the_field() -> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let good = serde_json::to_value(new_job(None, 0))?;
    let with = |field: &str, value: serde_json::Value| {
        let mut body = good.clone();
        body[field] = value;
        body.to_string()
    };
    let post = async |body: String| server.refused("POST", "/v0/jobs", Some(&body)).await;

    // No fallback spec yet, and none named: the body is fine, the state is
    // not (409), and the message says what is missing and how to fix it.
    post(good.to_string())
        .await
        .assert(409, "Conflict")
        .mentions("spec")
        .mentions("no fallback spec exists")
        .mentions("make a spec the fallback");

    let spec = create_spec(
        &admin,
        JsonNewSpec {
            fallback: true,
            ..new_spec("Fallback")
        },
    )
    .await;
    let cases = [
        ("digest", with("digest", "sha256:abc".into())),
        (
            "digest",
            with("digest", format!("sha512:{}", "0".repeat(64)).into()),
        ),
        (
            "digest",
            with("digest", format!("sha256:{}", "A".repeat(64)).into()),
        ),
        ("registry", with("registry", "ftp://127.0.0.1".into())),
        ("registry", with("registry", "http://user:pw@host".into())),
        ("registry", with("registry", "not a url".into())),
        // URLs a parser would mend into another host than they seem to name.
        ("registry", with("registry", "http:\\\\evil.example".into())),
        ("registry", with("registry", "http:///path".into())),
        ("registry", with("registry", "https://host/a\\b".into())),
        // Not RFC 3339 (a five-digit year), which an agent cannot parse.
        (
            "backdate",
            with("backdate", "+10000-01-01T00:00:00Z".into()),
        ),
        ("project", with("project", "not-a-uuid".into())),
        ("cmd", with("cmd", serde_json::json!(vec!["x"; 65]))),
        (
            "entrypoint",
            with("entrypoint", serde_json::json!(vec!["x"; 65])),
        ),
        ("timeout", with("timeout", 0.into())),
        ("priority", with("priority", "high".into())),
        ("surprise", with("surprise", true.into())),
    ];
    for (field, body) in cases {
        post(body.clone())
            .await
            .assert(400, "InvalidRequest")
            .mentions(field);
    }
    post(with("spec", "no-such-spec".into()))
        .await
        .assert(404, "NotFound");
    let archived = create_spec(&admin, new_spec("Old")).await;
    let archive = JsonUpdateSpec {
        archived: Some(true),
        ..Default::default()
    };
    patch_spec(&admin, &archived.slug, archive).await?;
    post(with("spec", archived.slug.clone().into()))
        .await
        .assert(409, "Conflict");
    ensure!(
        all_jobs(&admin, None).await.is_empty(),
        "a refused job was created"
    );

    // 64 arguments are fine; the fallback spec is the job's spec.
    let mut body = new_job(None, 3);
    body.cmd = Some(vec!["x".parse()?; 64]);
    let created = create_job(&admin, body).await;
    ensure!(created.spec.uuid == spec.uuid, "{created:?}");
    ensure!(created.status == JobStatus::Pending && created.priority == 3);
    Ok(())
}

#[tokio::test]
async fn job_create_and_cancel_have_audit_rows() -> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (_, _, _) = fallback_runner(&admin, "Audited").await;
    let created = create_job(&admin, new_job(None, 0)).await;
    admin.job_cancel_post().job(created.uuid).send().await?;
    // Refused ones have none.
    failure(admin.job_cancel_post().job(created.uuid).send().await);
    server
        .refused("POST", "/v0/jobs", Some(r#"{"digest": "x"}"#))
        .await;

    let rows = server.store().audit(None, None).await?;
    let jobs: Vec<_> = rows
        .iter()
        .filter(|r| r.action.starts_with("job."))
        .collect();
    let actions: Vec<&str> = jobs.iter().map(|r| r.action.as_str()).collect();
    ensure!(actions == ["job.create", "job.cancel"], "{actions:?}");
    let uuid = created.uuid.to_string();
    for row in jobs {
        ensure!(row.target_uuid.as_deref() == Some(uuid.as_str()), "{row:?}");
        ensure!(row.user.as_deref() == Some("admin"), "{row:?}");
        ensure!(row.token.is_some(), "{row:?}");
    }
    Ok(())
}

#[tokio::test]
async fn job_lists_filter_by_runner_spec_and_status_with_their_totals() -> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (spec, runner, key) = fallback_runner(&admin, "Lister").await;
    let other_spec = create_spec(&admin, new_spec("Other spec")).await;
    // Three jobs of the fallback spec, one of another spec no runner has.
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(create_job(&admin, new_job(None, 0)).await.uuid);
    }
    let stranded = create_job(&admin, new_job(Some(&other_spec.slug), 0)).await;
    // The runner completes the oldest one; the next is canceled.
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
    let taken = agent.take_job(1).await?;
    ensure!(taken.uuid == made[0], "oldest first: {taken:?}");
    agent.complete(taken.uuid, vec![output(0, "done")]).await?;
    agent.expect_ack(taken.uuid).await?;
    admin.job_cancel_post().job(made[1]).send().await?;

    let mine = admin
        .runner_jobs_get()
        .runner(runner.slug.parse::<runners_sdk::types::ResourceId>()?)
        .send()
        .await?;
    ensure!(
        runners_sdk::total_count(&mine) == Some(1),
        "{:?}",
        mine.headers()
    );
    ensure!(mine.iter().map(|j| j.uuid).collect::<Vec<_>>() == vec![made[0]]);

    let by_spec = admin
        .jobs_get()
        .spec(spec.slug.parse::<runners_sdk::types::ResourceId>()?)
        .send()
        .await?;
    ensure!(runners_sdk::total_count(&by_spec) == Some(3));
    let other = admin
        .jobs_get()
        .spec(other_spec.slug.parse::<runners_sdk::types::ResourceId>()?)
        .send()
        .await?;
    ensure!(other.iter().map(|j| j.uuid).collect::<Vec<_>>() == vec![stranded.uuid]);
    ensure!(
        other[0].status == JobStatus::Pending,
        "a job no runner can take stays pending"
    );

    let pending: Vec<Uuid> = all_jobs(&admin, Some("pending"))
        .await
        .iter()
        .map(|j| j.uuid)
        .collect();
    ensure!(pending == vec![made[2], stranded.uuid], "{pending:?}");
    let ended: BTreeSet<Uuid> = all_jobs(&admin, Some("completed,canceled"))
        .await
        .iter()
        .map(|j| j.uuid)
        .collect();
    ensure!(ended == BTreeSet::from([made[0], made[1]]), "{ended:?}");
    // Newest first, one a page, with the total on every page.
    let page = admin
        .jobs_get()
        .direction(runners_sdk::types::JsonDirection::Desc)
        .per_page(std::num::NonZeroU32::new(1).unwrap())
        .page(std::num::NonZeroU32::new(2).unwrap())
        .send()
        .await?;
    ensure!(runners_sdk::total_count(&page) == Some(4));
    ensure!(page.iter().map(|j| j.uuid).collect::<Vec<_>>() == vec![made[2]]);
    // An unknown runner or spec is a 404, a bad status a 400 naming it.
    let unknown = admin
        .runner_jobs_get()
        .runner("nobody".parse::<runners_sdk::types::ResourceId>()?)
        .send()
        .await;
    let failure = failure(unknown);
    failure.assert(404, "NotFound");
    let raw = server
        .refused("GET", "/v0/jobs?status=pending,done", None)
        .await;
    raw.assert(400, "InvalidRequest").mentions("status");
    Ok(())
}
