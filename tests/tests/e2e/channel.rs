//! The runner channel, message by message, through the test agent: every
//! message and its acknowledgement, auth before the upgrade, hostile frames.

use std::time::{Duration, Instant};

use anyhow::ensure;
use runners_sdk::types::JobStatus;
use runners_tests::agent::{Agent, output};
use runners_tests::*;

#[tokio::test]
async fn every_message_is_acknowledged_and_a_repeated_end_changes_nothing() -> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (spec, runner, key) = fallback_runner(&admin, "Agent").await;
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;

    // ready → no_job once the poll timeout passes.
    let asked = Instant::now();
    agent.ready(1).await?;
    agent.expect_no_job().await?;
    ensure!(
        asked.elapsed() >= Duration::from_millis(900),
        "no_job before the poll timeout"
    );

    // ready → job, claimed for this runner.
    let created = create_job(&admin, new_job(None, 0)).await;
    agent.ready(5).await?;
    let given = agent.expect_job().await?;
    ensure!(given.uuid == created.uuid, "{given:?}");
    ensure!(given.spec.uuid == spec.uuid, "{given:?}");
    ensure!(given.config == created.config, "{given:?}");
    ensure!(given.timeout.get() == 60, "{given:?}");
    ensure!(
        given.oci_token.split('.').count() == 3,
        "the OCI token is a JWT"
    );
    let claimed = job(&admin, created.uuid).await;
    ensure!(claimed.status == JobStatus::Claimed, "{claimed:?}");
    ensure!(claimed.runner == Some(runner.uuid), "{claimed:?}");
    ensure!(
        claimed.claimed.is_some() && claimed.started.is_none(),
        "{claimed:?}"
    );

    // running → ack {job}: running.
    agent.running().await?;
    agent.expect_ack(created.uuid).await?;
    let running = job(&admin, created.uuid).await;
    ensure!(running.status == JobStatus::Running, "{running:?}");
    ensure!(running.started.is_some(), "{running:?}");

    // heartbeat → ack {job}: its last_heartbeat moves on.
    tokio::time::sleep(Duration::from_millis(20)).await;
    agent.heartbeat().await?;
    agent.expect_ack(created.uuid).await?;
    let beaten = job(&admin, created.uuid).await;
    ensure!(beaten.status == JobStatus::Running, "{beaten:?}");
    ensure!(beaten.last_heartbeat > running.last_heartbeat, "{beaten:?}");

    // completed → ack {job}: completed, with the results.
    let results = vec![output(0, "fast")];
    agent.complete(created.uuid, results.clone()).await?;
    agent.expect_ack(created.uuid).await?;
    let done = job(&admin, created.uuid).await;
    ensure!(done.status == JobStatus::Completed, "{done:?}");
    ensure!(done.completed.is_some(), "{done:?}");
    let kept = done.output.as_ref().map(|o| &o.results);
    ensure!(kept == Some(&results), "{done:?}");

    // Again (other results): acknowledged, and nothing changes.
    agent
        .complete(created.uuid, vec![output(1, "slow")])
        .await?;
    agent.expect_ack(created.uuid).await?;
    ensure!(
        job(&admin, created.uuid).await == done,
        "a repeated completed changed the job"
    );

    // failed → ack {job}: failed, with the error; again: nothing changes.
    let second = create_job(&admin, new_job(None, 0)).await;
    let given = agent.take_job(5).await?;
    ensure!(given.uuid == second.uuid, "{given:?}");
    agent
        .fail(second.uuid, vec![output(2, "half")], "it broke")
        .await?;
    agent.expect_ack(second.uuid).await?;
    let failed = job(&admin, second.uuid).await;
    ensure!(failed.status == JobStatus::Failed, "{failed:?}");
    let error = failed.output.as_ref().and_then(|o| o.error.as_deref());
    ensure!(error == Some("it broke"), "{failed:?}");
    agent.fail(second.uuid, vec![], "again").await?;
    agent.expect_ack(second.uuid).await?;
    ensure!(
        job(&admin, second.uuid).await == failed,
        "a repeated failed changed the job"
    );
    // A failed for a job that completed changes nothing.
    agent.fail(created.uuid, vec![], "late").await?;
    agent.expect_ack(created.uuid).await?;
    ensure!(
        job(&admin, created.uuid).await == done,
        "failed after completed changed it"
    );

    // cancel from the server → canceled → ack {job}; again: nothing changes.
    let third = create_job(&admin, new_job(None, 0)).await;
    let given = agent.take_job(5).await?;
    ensure!(given.uuid == third.uuid, "{given:?}");
    admin.job_cancel_post().job(third.uuid).send().await?;
    agent.expect_cancel().await?;
    agent.canceled(third.uuid).await?;
    agent.expect_ack(third.uuid).await?;
    let canceled = job(&admin, third.uuid).await;
    ensure!(canceled.status == JobStatus::Canceled, "{canceled:?}");
    agent.canceled(third.uuid).await?;
    agent.expect_ack(third.uuid).await?;
    ensure!(
        job(&admin, third.uuid).await == canceled,
        "a repeated canceled changed it"
    );

    // A canceled for a job that ended otherwise changes nothing either.
    agent.canceled(created.uuid).await?;
    agent.expect_ack(created.uuid).await?;
    ensure!(
        job(&admin, created.uuid).await == done,
        "canceled after completed changed it"
    );

    // The channel still serves: the next ready is answered.
    agent.ready(1).await?;
    agent.expect_no_job().await?;
    agent.close().await
}
