//! The runner channel, message by message, through the test agent: every
//! message and its acknowledgement, auth before the upgrade, hostile frames
//! (raw ones too: not UTF-8, unmasked, a reserved bit), a bad message too
//! big to search, heartbeats before `ready`.

use std::time::{Duration, Instant};

use anyhow::ensure;
use runners_sdk::types::{JobStatus, RunnerStatus};
use runners_server::Limits;
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
    acked_and_unchanged(&mut agent, &admin, &done, "a repeated completed").await?;

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
    acked_and_unchanged(&mut agent, &admin, &failed, "a repeated failed").await?;
    // A failed for a job that completed changes nothing.
    agent.fail(created.uuid, vec![], "late").await?;
    acked_and_unchanged(&mut agent, &admin, &done, "failed after completed").await?;

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
    acked_and_unchanged(&mut agent, &admin, &canceled, "a repeated canceled").await?;

    // A canceled for a job that ended otherwise changes nothing either.
    agent.canceled(created.uuid).await?;
    acked_and_unchanged(&mut agent, &admin, &done, "canceled after completed").await?;

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

/// A request that is not a WebSocket handshake is refused 400 before its
/// key is looked up, whatever the runner key and the engine, with a message
/// that names the header (each header of the handshake is checked); one
/// with no runner key at all, 401 first.
#[tokio::test]
async fn a_request_that_is_not_a_handshake_is_refused_before_its_key() -> anyhow::Result<()> {
    let server = TestServer::start().await;
    let (runner, key) = create(&server.admin(), "Plain", None).await;
    let (_, other_key) = create(&server.admin(), "Other", None).await;
    let url = format!("{}/v0/runners/{}/channel", server.url, runner.slug);
    let http = reqwest::Client::new();
    let full = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    for missing in 0..full.len() {
        for key in [None, Some(&key), Some(&other_key)] {
            let status = if key.is_some() { 400 } else { 401 };
            let mut request = http.get(&url);
            for (i, (name, value)) in full.iter().enumerate() {
                if i != missing {
                    request = request.header(*name, *value);
                }
            }
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let response = request.send().await?;
            ensure!(response.status() == status, "{missing}: {response:?}");
            if key.is_none() {
                continue;
            }
            let body: serde_json::Value = response.json().await?;
            ensure!(body["error_code"] == "InvalidRequest", "{body}");
            let header = full[missing].0.to_lowercase();
            let message = body["message"].as_str().unwrap_or("").to_lowercase();
            ensure!(message.contains(&header), "{missing}: {body}");
        }
    }
    Ok(())
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
    let key = rekey(&admin, &runner.slug).await?;
    agent.patience = Duration::from_secs(2);
    expect_revoked(&mut agent).await?;
    // ... and a job created now goes to no one.
    let pending = create_job(&admin, new_job(None, 0)).await;

    // Re-keyed while idle (no ready sent): closed too.
    let mut agent = connected(&server, &runner.slug, &key).await?;
    let key = rekey(&admin, &runner.slug).await?;
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
async fn a_close_reason_fits_its_frame_whatever_it_quotes() -> anyhow::Result<()> {
    // The reason quotes the event, which is 400 bytes of two-byte
    // characters: cut to the 123 bytes a close frame holds, on a character.
    let text = format!(r#"{{"event": "{}"}}"#, "é".repeat(200));
    hostile(
        async |a, _| a.send_text(&text).await,
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

/// A WebSocket frame built by hand: its first byte (FIN, the reserved bits
/// and the opcode) and a payload under 126 bytes, masked (with a fixed key,
/// as a client must) or not.
fn raw_frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let len = u8::try_from(payload.len()).expect("a short payload");
    assert!(len < 126, "a short payload");
    let mut frame = vec![first];
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        frame.push(0x80 | len);
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
    } else {
        frame.push(len);
        frame.extend_from_slice(payload);
    }
    frame
}

/// FIN and the text opcode.
const FIN_TEXT: u8 = 0x81;

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_is_closed_1007() -> anyhow::Result<()> {
    // A lone continuation byte and an invalid one, inside otherwise
    // well-formed JSON.
    let frame = raw_frame(FIN_TEXT, b"{\"event\": \"\x80\xff\"}", true);
    hostile(async |a, _| a.send_raw(&frame).await, 1007, "UTF-8").await
}

#[tokio::test]
async fn an_unmasked_frame_from_the_runner_is_closed_1002() -> anyhow::Result<()> {
    let frame = raw_frame(FIN_TEXT, br#"{"event": "heartbeat"}"#, false);
    hostile(async |a, _| a.send_raw(&frame).await, 1002, "not WebSocket").await
}

#[tokio::test]
async fn a_frame_with_a_reserved_bit_set_is_closed_1002() -> anyhow::Result<()> {
    // RSV2: no extension is negotiated that could give it a meaning.
    let frame = raw_frame(FIN_TEXT | 0x20, br#"{"event": "heartbeat"}"#, true);
    hostile(async |a, _| a.send_raw(&frame).await, 1002, "not WebSocket").await
}

#[tokio::test]
async fn a_close_with_a_code_the_protocol_forbids_is_answered_1002() -> anyhow::Result<()> {
    // FIN and the close opcode; code 999 (below the range a peer may send).
    let frame = raw_frame(0x88, &999u16.to_be_bytes(), true);
    hostile(async |a, _| a.send_raw(&frame).await, 1002, "").await
}

#[tokio::test]
async fn a_repeated_key_is_named_in_the_close() -> anyhow::Result<()> {
    // Not `poll_timeout`, which the message would parse without.
    let text = r#"{"event": "ready", "poll_timeout": 5, "event": "running"}"#;
    hostile(
        async |a, _| a.send_text(text).await,
        1007,
        "duplicate field `event`",
    )
    .await?;
    let server = TestServer::start().await;
    let (runner, key) = create(&server.admin(), "Repeats", None).await;
    let mut agent = connected(&server, &runner.slug, &key).await?;
    agent.send_text(text).await?;
    let (code, reason) = agent.expect_close().await?;
    ensure!(
        code == 1007 && reason == "duplicate field `event`",
        "{code} {reason}"
    );
    Ok(())
}

/// A message with this many fields besides its own: far too many to search
/// one by one for the field at fault (each try parses the whole message
/// again), and still well under the 512 KiB message limit.
const MANY_KEYS: usize = 20_000;

#[test]
fn a_bad_message_with_many_keys_is_closed_1007_at_once_and_the_server_keeps_answering()
-> anyhow::Result<()> {
    // Two workers, as the server has on a two-core machine: a worker stuck
    // in the message (as before the fix) leaves the other to run the
    // test's clock; and the runtime is not waited for at the end, so that
    // such a test fails in seconds, not when the worker is done.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(many_keys());
    runtime.shutdown_background();
    result
}

async fn many_keys() -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let server = TestServer::start().await;
    let admin = server.admin();
    let (runner, key) = create(&admin, "Many keys", None).await;
    let mut agent = connected(&server, &runner.slug, &key).await?;

    // A `completed` with a job that is not a UUID, and many extra keys.
    let mut text = String::from(r#"{"event":"completed","job":"nope","results":[]"#);
    for i in 0..MANY_KEYS {
        write!(text, r#","k{i}":0"#)?;
    }
    text.push('}');
    ensure!(text.len() < runners_server::channel::MESSAGE_MAX_BYTES);

    agent.patience = Duration::from_secs(2);
    let sent = Instant::now();
    agent.send_text(&text).await?;
    // While it is handled, an admin's request is answered promptly.
    let asked = async {
        let asked = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(1), admin.runners_get().send())
            .await
            .map_err(|_| anyhow::anyhow!("an admin's request got no answer within 1 s"))?;
        answer?;
        anyhow::Ok(asked.elapsed())
    };
    let (closed, answered) = tokio::join!(agent.expect_close(), asked);
    let (code, reason) = closed.map_err(|e| {
        let after = sent.elapsed();
        e.context(format!(
            "a message of {MANY_KEYS} extra fields, {after:?} after it was sent"
        ))
    })?;
    let took = sent.elapsed();
    ensure!(code == 1007, "{code} {reason}");
    ensure!(reason.contains("not a runner message"), "{reason:?}");
    ensure!(took < Duration::from_secs(2), "closed after {took:?}");
    let answered = answered?;
    ensure!(
        answered < Duration::from_secs(1),
        "answered after {answered:?}"
    );
    // ... and the server still serves channels.
    let mut again = connected(&server, &runner.slug, &key).await?;
    again.ready(1).await?;
    again.expect_no_job().await?;
    again.close().await
}

#[tokio::test]
async fn heartbeats_before_ready_keep_an_idle_channel_open() -> anyhow::Result<()> {
    let server = TestServer::start_with(Limits {
        heartbeat_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let admin = server.admin();
    let (beating, beating_key) = create(&admin, "Beating", None).await;
    let (silent, silent_key) = create(&admin, "Silent", None).await;

    // One channel says `heartbeat` every 300 ms and never `ready`, for 2.5
    // heartbeat timeouts; the other says nothing.
    let beats = async {
        let mut agent = Agent::connect(&server, &beating.slug, &beating_key).await?;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(2500) {
            agent.heartbeat().await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // Still open, and still served: `ready` is answered.
        agent.ready(1).await?;
        agent.expect_no_job().await.map_err(|e| {
            e.context("a channel that sent a heartbeat every 300 ms was not kept open")
        })?;
        agent.close().await
    };
    let says_nothing = async {
        let mut agent = Agent::connect(&server, &silent.slug, &silent_key).await?;
        let start = Instant::now();
        let (code, reason) = agent.expect_close().await?;
        let took = start.elapsed();
        ensure!(
            (code, reason.as_str()) == (1000, "\"heartbeat_timeout\""),
            "{code} {reason}"
        );
        ensure!(took >= Duration::from_millis(900), "closed after {took:?}");
        ensure!(took < Duration::from_secs(3), "closed after {took:?}");
        Ok(())
    };
    let (beats, says_nothing) = tokio::join!(beats, says_nothing);
    beats?;
    says_nothing
}

/// The acknowledgement of `before`'s job, and the job is still `before`:
/// what the agent sent about it (`sent`) changed nothing.
async fn acked_and_unchanged(
    agent: &mut Agent,
    admin: &runners_sdk::Client,
    before: &runners_sdk::types::JsonJob,
    sent: &str,
) -> anyhow::Result<()> {
    agent.expect_ack(before.uuid).await?;
    ensure!(
        job(admin, before.uuid).await == *before,
        "{sent} changed the job"
    );
    Ok(())
}

/// Rotates `runner`'s key: the new one.
async fn rekey(admin: &runners_sdk::Client, runner: &str) -> anyhow::Result<String> {
    let rotated = admin.runner_key_post().runner(runner).send().await?;
    Ok(rotated.into_inner().key)
}

#[tokio::test]
async fn a_running_jobs_output_over_the_limit_fails_it_at_once() -> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "big").await;
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
    let job = create_job(&admin, new_job(None, 0)).await.uuid;
    agent.take_job(5).await?;
    agent.start(job).await?;
    let stdout = "x".repeat(runners_server::channel::MESSAGE_MAX_BYTES + 1);
    let text = serde_json::to_string(&serde_json::json!({
        "event": "completed", "job": job, "results": [{"exit_code": 0, "stdout": stdout}],
    }))?;
    let _ = agent.send_text(&text).await;
    let (code, _) = agent.expect_close().await?;
    ensure!(code == 1009, "closed {code}");
    // Failed within a second, saying why (not at the 90 s heartbeat timeout).
    let failed = eventually(Duration::from_secs(1), || async {
        let now = runners_tests::job(&admin, job).await;
        (now.status == JobStatus::Failed).then_some(now)
    })
    .await?;
    let error = failed.output.and_then(|o| o.error).unwrap_or_default();
    ensure!(error.contains("512 KiB"), "{error}");
    Ok(())
}

/// Pings are answered at once at every stage: idle, and while a job runs
/// with heartbeats between (a client that pings, as Python's `websockets`
/// does every 20 s, was dropped after its first unanswered ping).
#[tokio::test]
async fn pings_are_answered_while_idle_and_while_a_job_runs() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (_spec, runner, key) = fallback_runner(&admin, "Pinged").await;
    let mut agent = Agent::connect(&server, &runner.slug, &key).await.unwrap();
    agent.patience = std::time::Duration::from_secs(2);
    agent.ping().await.unwrap();
    create_job(&admin, new_job(None, 0)).await;
    let job = agent.take_job(5).await.unwrap();
    for _ in 0..3 {
        agent.heartbeat().await.unwrap();
        agent.expect_ack(job.uuid).await.unwrap();
        agent.ping().await.unwrap();
    }
    agent
        .complete(job.uuid, vec![output(0, "pong")])
        .await
        .unwrap();
    agent.expect_ack(job.uuid).await.unwrap();
}
