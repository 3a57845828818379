//! The runner channel, message by message, through the test agent: every
//! message and its acknowledgement, auth before the upgrade, hostile frames.

use std::time::{Duration, Instant};

use anyhow::ensure;
use runners_sdk::types::{JobStatus, RunnerStatus};
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

#[tokio::test]
async fn the_key_is_checked_before_the_upgrade() -> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (mine, key) = create(&admin, "Mine", None).await;
    let (other, other_key) = create(&admin, "Other", None).await;

    let refused = Agent::refused(&server, &mine.slug, None).await?;
    ensure!(refused.status == 401, "no key: {refused:?}");
    let bad = "bencher_runner_000000000000000000000000000000";
    let refused = Agent::refused(&server, &mine.slug, Some(bad)).await?;
    ensure!(refused.status == 401, "a bad key: {refused:?}");
    let refused = Agent::refused(&server, &mine.slug, Some(&server.admin_token)).await?;
    ensure!(refused.status == 401, "an API token: {refused:?}");
    let refused = Agent::refused(&server, &mine.slug, Some(&other_key)).await?;
    ensure!(refused.status == 403, "another runner's key: {refused:?}");
    let refused = Agent::refused(&server, "no-such-runner", Some(&key)).await?;
    ensure!(
        refused.status == 403,
        "another (unknown) runner: {refused:?}"
    );
    archive(&admin, &mine.slug, true).await;
    let refused = Agent::refused(&server, &mine.slug, Some(&key)).await?;
    ensure!(refused.status == 401, "an archived runner: {refused:?}");
    ensure!(refused.message.contains("archived"), "{refused:?}");
    for r in [&mine, &other] {
        let now = view(&admin, &r.uuid.to_string()).await;
        ensure!(
            now.last_heartbeat.is_none(),
            "a refused channel wrote {now:?}"
        );
    }

    // Unarchived, by slug and by UUID: it opens.
    archive(&admin, &mine.slug, false).await;
    Agent::connect(&server, &mine.slug, &key)
        .await?
        .close()
        .await?;
    let by_uuid = mine.uuid.to_string();
    Agent::connect(&server, &by_uuid, &key).await?.close().await
}

/// `runner`'s channel, once it is recorded as open.
async fn connected(server: &TestServer, runner: &str, key: &str) -> anyhow::Result<Agent> {
    let agent = Agent::connect(server, runner, key).await?;
    let admin = server.admin();
    eventually(Duration::from_secs(5), || async {
        let now = view(&admin, runner).await;
        (now.status == RunnerStatus::Idle).then_some(())
    })
    .await?;
    Ok(agent)
}

/// The close of a channel whose runner lost its key: code 1008 (policy),
/// and a reason that says why.
async fn expect_revoked(agent: &mut Agent) -> anyhow::Result<()> {
    let (code, reason) = agent.expect_close().await?;
    ensure!(code == 1008, "{code} {reason}");
    ensure!(reason.contains("archived or re-keyed"), "{code} {reason}");
    Ok(())
}

#[tokio::test]
async fn a_runner_rekeyed_or_archived_while_connected_is_closed_at_once() -> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Revoked").await;

    // Re-keyed while waiting for a job.
    let mut agent = connected(&server, &runner.slug, &key).await?;
    agent.ready(30).await?;
    let rotated = admin
        .runner_key_post()
        .runner(runner.slug.as_str())
        .send()
        .await?;
    let key = rotated.into_inner().key;
    agent.patience = Duration::from_secs(2);
    expect_revoked(&mut agent).await?;
    // ... and a job created now goes to no one.
    let pending = create_job(&admin, new_job(None, 0)).await;

    // Re-keyed while idle (no ready sent): closed too.
    let mut agent = connected(&server, &runner.slug, &key).await?;
    let rotated = admin
        .runner_key_post()
        .runner(runner.slug.as_str())
        .send()
        .await?;
    let key = rotated.into_inner().key;
    agent.patience = Duration::from_secs(2);
    expect_revoked(&mut agent).await?;
    ensure!(job(&admin, pending.uuid).await.status == JobStatus::Pending);

    // Archived while running a job: closed; the job is not left running
    // for ever (the old key can no longer speak for it).
    let mut agent = connected(&server, &runner.slug, &key).await?;
    let given = agent.take_job(5).await?;
    ensure!(given.uuid == pending.uuid, "{given:?}");
    archive(&admin, &runner.slug, true).await;
    agent.patience = Duration::from_secs(2);
    expect_revoked(&mut agent).await?;
    let refused = Agent::refused(&server, &runner.slug, Some(&key)).await?;
    ensure!(refused.status == 401, "{refused:?}");
    // Its job fails at once, saying why (no channel of the runner can
    // report it any more), rather than after the heartbeat timeout.
    let ended = job(&admin, pending.uuid).await;
    ensure!(ended.status == JobStatus::Failed, "{ended:?}");
    let error = ended.output.and_then(|o| o.error).unwrap_or_default();
    ensure!(error.contains("archived or re-keyed"), "{error:?}");
    Ok(())
}

/// The jobs a hostile frame may name: another runner's (running), and a
/// pending one.
#[derive(Clone, Copy)]
struct Jobs {
    theirs: uuid::Uuid,
    pending: uuid::Uuid,
}

/// A frame that breaks the protocol: the channel closes with `code` and a
/// reason containing `says`, and neither job nor runner changed.
async fn hostile(
    send: impl AsyncFnOnce(&mut Agent, Jobs) -> anyhow::Result<()>,
    code: u16,
    says: &str,
) -> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Hostile").await;
    let (_, other_key) = create(&admin, "Other", None).await;
    add_spec(&admin, "other", &runner.specs[0].to_string()).await;
    // The other runner's job (running), and one pending.
    let theirs = create_job(&admin, new_job(None, 0)).await;
    let mut other = Agent::connect(&server, "other", &other_key).await?;
    let given = other.take_job(5).await?;
    ensure!(given.uuid == theirs.uuid, "{given:?}");
    let pending = create_job(&admin, new_job(None, 0)).await;
    let jobs_before = all_jobs(&admin, None).await;
    let runner_before = view(&admin, &runner.slug).await;

    let mut agent = connected(&server, &runner.slug, &key).await?;
    let jobs = Jobs {
        theirs: theirs.uuid,
        pending: pending.uuid,
    };
    send(&mut agent, jobs).await?;
    let (got, reason) = agent.expect_close().await?;
    ensure!(got == code, "close code {got}, not {code} ({reason})");
    ensure!(reason.contains(says), "{reason:?} does not say {says:?}");

    let offline = eventually(Duration::from_secs(5), || async {
        let now = view(&admin, &runner.slug).await;
        (now.status == RunnerStatus::Offline).then_some(now)
    })
    .await?;
    ensure!(offline == runner_before, "the runner changed: {offline:?}");
    ensure!(all_jobs(&admin, None).await == jobs_before, "a job changed");
    ensure!(job(&admin, pending.uuid).await.status == JobStatus::Pending);
    // The other runner's channel is untouched.
    other.heartbeat().await?;
    other.expect_ack(theirs.uuid).await?;
    Ok(())
}

#[tokio::test]
async fn text_that_is_not_json_is_closed_1007() -> anyhow::Result<()> {
    hostile(
        async |a, _| a.send_text("this is not json").await,
        1007,
        "not a runner message",
    )
    .await
}

#[tokio::test]
async fn an_unknown_event_is_closed_1007() -> anyhow::Result<()> {
    let text = r#"{"event": "update", "version": "9.9.9"}"#;
    hostile(
        async |a, _| a.send_text(text).await,
        1007,
        "not a runner message",
    )
    .await
}

#[tokio::test]
async fn a_message_that_breaks_a_rule_is_closed_1007() -> anyhow::Result<()> {
    let text = r#"{"event": "ready", "poll_timeout": 0}"#;
    hostile(async |a, _| a.send_text(text).await, 1007, "poll_timeout").await
}

#[tokio::test]
async fn a_binary_frame_is_closed_1003() -> anyhow::Result<()> {
    let frame = br#"{"event": "ready"}"#.to_vec();
    hostile(async |a, _| a.send_binary(frame).await, 1003, "binary").await
}

#[tokio::test]
async fn a_1_mib_frame_is_closed_1009() -> anyhow::Result<()> {
    // A well-formed message: too big is the only thing wrong with it.
    let stdout = "x".repeat(1 << 20);
    let text = serde_json::to_string(&serde_json::json!({
        "event": "completed",
        "job": uuid::Uuid::new_v4(),
        "results": [{"exit_code": 0, "stdout": stdout}],
    }))?;
    // The server may close before it has read it all: a failed send is
    // not the test's failure, the close frame is what counts.
    hostile(
        async |a, _| {
            let _ = a.send_text(&text).await;
            Ok(())
        },
        1009,
        "too big",
    )
    .await
}

#[tokio::test]
async fn a_report_on_another_runners_job_is_closed_1008() -> anyhow::Result<()> {
    let results = vec![output(0, "stolen")];
    let says = "not this runner's";
    hostile(async |a, j| a.complete(j.theirs, results).await, 1008, says).await
}

#[tokio::test]
async fn a_report_on_a_job_no_runner_has_is_closed_1008() -> anyhow::Result<()> {
    let says = "not this runner's";
    hostile(
        async |a, j| a.fail(j.pending, vec![], "no").await,
        1008,
        says,
    )
    .await
}

#[tokio::test]
async fn a_report_on_an_unknown_job_is_closed_1008() -> anyhow::Result<()> {
    let says = "not this runner's";
    hostile(
        async |a, _| a.canceled(uuid::Uuid::new_v4()).await,
        1008,
        says,
    )
    .await
}
