//! A claim is confirmed by the runner's `running`: a job given to a
//! channel that closed before that is back in the queue (same priority
//! and age), never failed for a silence it did not cause; a report that
//! runner sends later, once the job is another's, is acknowledged and
//! dropped; and results are kept as sent, U+0000 included, on both engines.

use std::time::Duration;

use anyhow::ensure;
use runners_sdk::types::{JobStatus, RunnerStatus};
use runners_tests::agent::{Agent, output};
use runners_tests::*;

/// Every job in `jobs` pending, unclaimed, and the runner offline.
async fn all_back(admin: &runners_sdk::Client, runner: &str, jobs: &[uuid::Uuid]) -> bool {
    if view(admin, runner).await.status != RunnerStatus::Offline {
        return false;
    }
    for &uuid in jobs {
        let j = job(admin, uuid).await;
        if j.status != JobStatus::Pending || j.runner.is_some() || j.claimed.is_some() {
            return false;
        }
    }
    true
}

#[tokio::test]
async fn jobs_given_to_channels_that_close_before_running_go_back_to_the_queue()
-> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Crash loop").await;
    let mut jobs = Vec::new();
    for _ in 0..20 {
        jobs.push(create_job(&admin, new_job(None, 0)).await.uuid);
    }
    // An agent in a crash loop: `ready`, then gone at once, unread.
    for _ in 0..20 {
        let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
        agent.ready(5).await?;
        drop(agent);
    }
    eventually(Duration::from_secs(10), || async {
        all_back(&admin, &runner.slug, &jobs).await.then_some(())
    })
    .await?;
    // The queue's order is kept: the oldest comes first, and each job
    // runs once.
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
    for &uuid in &jobs {
        let given = agent.take_job(5).await?;
        ensure!(given.uuid == uuid, "{} before {uuid}", given.uuid);
        agent.complete(uuid, vec![output(0, "ran")]).await?;
        agent.expect_ack(uuid).await?;
    }
    for &uuid in &jobs {
        let done = job(&admin, uuid).await;
        ensure!(done.status == JobStatus::Completed, "{done:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_report_on_a_job_taken_back_and_given_to_another_is_acknowledged_and_dropped()
-> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (spec, first, first_key) = fallback_runner(&admin, "First").await;
    let (second, second_key) = runner_with_spec(&admin, "Second", &spec.slug).await;
    let created = create_job(&admin, new_job(None, 0)).await;

    // The first runner is given the job and its channel closes before it
    // says `running`: the job is queued again.
    let mut one = Agent::connect(&server, &first.slug, &first_key).await?;
    one.ready(5).await?;
    ensure!(one.expect_job().await?.uuid == created.uuid);
    one.close().await?;
    eventually(Duration::from_secs(5), || async {
        all_back(&admin, &first.slug, &[created.uuid])
            .await
            .then_some(())
    })
    .await?;

    // The second runs it.
    let mut two = Agent::connect(&server, &second.slug, &second_key).await?;
    ensure!(two.take_job(5).await?.uuid == created.uuid);

    // The first had run it after all, and reports after a reconnect: the
    // report is acknowledged and changes nothing.
    let mut again = Agent::connect(&server, &first.slug, &first_key).await?;
    again
        .complete(created.uuid, vec![output(0, "from the first")])
        .await?;
    again.expect_ack(created.uuid).await?;
    let running = job(&admin, created.uuid).await;
    ensure!(running.status == JobStatus::Running, "{running:?}");
    ensure!(running.runner == Some(second.uuid), "{running:?}");

    // The job completes once, with the second runner's results.
    let results = vec![output(0, "from the second")];
    two.complete(created.uuid, results.clone()).await?;
    two.expect_ack(created.uuid).await?;
    let done = job(&admin, created.uuid).await;
    ensure!(done.status == JobStatus::Completed, "{done:?}");
    ensure!(done.output.map(|o| o.results) == Some(results));
    // A report on a job the first runner never held is still refused.
    let other = create_job(&admin, new_job(None, 0)).await;
    again.complete(other.uuid, vec![output(0, "no")]).await?;
    let (code, reason) = again.expect_close().await?;
    ensure!(code == 1008, "{code} {reason}");
    Ok(())
}

#[tokio::test]
async fn results_holding_nul_are_kept_as_sent() -> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Binary").await;
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;

    let done = create_job(&admin, new_job(None, 0)).await;
    ensure!(agent.take_job(5).await?.uuid == done.uuid);
    let mut iteration = output(0, "before\u{0}after");
    iteration.stderr = Some("\u{0}".into());
    let results = vec![iteration];
    agent.complete(done.uuid, results.clone()).await?;
    agent.expect_ack(done.uuid).await?;
    let kept = job(&admin, done.uuid).await;
    ensure!(kept.status == JobStatus::Completed, "{kept:?}");
    ensure!(kept.output.map(|o| o.results) == Some(results));

    let failed = create_job(&admin, new_job(None, 0)).await;
    ensure!(agent.take_job(5).await?.uuid == failed.uuid);
    agent
        .fail(failed.uuid, vec![output(1, "\u{0}")], "exit\u{0}1")
        .await?;
    agent.expect_ack(failed.uuid).await?;
    let kept = job(&admin, failed.uuid).await;
    ensure!(kept.status == JobStatus::Failed, "{kept:?}");
    let out = kept.output.expect("an output");
    ensure!(out.error.as_deref() == Some("exit\u{0}1"), "{out:?}");
    ensure!(out.results == vec![output(1, "\u{0}")], "{out:?}");
    Ok(())
}
