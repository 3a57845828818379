//! The live event stream (`GET /v0/events`) and the audit trail's page
//! (`GET /v0/audit`), both admin only: the stream says each runner's and
//! job's status as it changes, as a browser's `fetch` reads it; the audit
//! page is newest first, filtered and counted.

use std::time::Duration;

use runners_tests::agent::{Agent, output};
use runners_tests::events::Events;
use runners_tests::*;

const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_stream_follows_a_runner_and_its_job_through_every_status() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let mut events = Events::open(&server.url, &server.admin_token)
        .await
        .unwrap();
    let (_spec, runner, key) = fallback_runner(&admin, "Streamed").await;
    let uuid = runner.uuid.to_string();
    let offline = [("uuid", uuid.as_str()), ("status", "offline")];
    events.until("runner", &offline, PATIENCE).await.unwrap();

    let mut agent = Agent::connect(&server, &runner.slug, &key).await.unwrap();
    let idle = [("uuid", uuid.as_str()), ("status", "idle")];
    events.until("runner", &idle, PATIENCE).await.unwrap();

    let job = create_job(&admin, new_job(None, 0)).await.uuid.to_string();
    let pending = [("uuid", job.as_str()), ("status", "pending")];
    // Created, then at once claimed by the waiting runner: either may be
    // the first the stream reads (each event says the status now).
    let this_job = [("uuid", job.as_str())];
    let first = events.until("job", &this_job, PATIENCE).await.unwrap();
    assert!(
        ["pending", "claimed"].contains(&first.data["status"].as_str().unwrap()),
        "{first:?} (expected {pending:?} or claimed)"
    );
    let taken = agent.take_job(5).await.unwrap();
    agent.start(taken.uuid).await.unwrap();
    let running = [("uuid", job.as_str()), ("status", "running")];
    let sse = events.until("job", &running, PATIENCE).await.unwrap();
    assert_eq!(sse.data["runner"], uuid.as_str());
    let busy = [("uuid", uuid.as_str()), ("status", "busy")];
    events.until("runner", &busy, PATIENCE).await.unwrap();

    agent
        .complete(taken.uuid, vec![output(0, "done")])
        .await
        .unwrap();
    agent.expect_ack(taken.uuid).await.unwrap();
    let completed = [("uuid", job.as_str()), ("status", "completed")];
    events.until("job", &completed, PATIENCE).await.unwrap();

    // Archived, then its channel closes: the stream says both.
    archive(&admin, &runner.slug, true).await;
    let gone = [("uuid", uuid.as_str()), ("status", "offline")];
    let sse = events.until("runner", &gone, PATIENCE).await.unwrap();
    assert_eq!(sse.data["archived"], true, "{sse:?}");

    // A second stream sees what happens after it opened, not before.
    let mut late = Events::open(&server.url, &server.admin_token)
        .await
        .unwrap();
    let (other, _) = create(&admin, "Later", None).await;
    let later = [("uuid", other.uuid.to_string())];
    let later: Vec<(&str, &str)> = later.iter().map(|(k, v)| (*k, v.as_str())).collect();
    late.until("runner", &later, PATIENCE).await.unwrap();
    assert!(late.seen.iter().all(|e| e.data["uuid"] != uuid.as_str()));
}

#[tokio::test]
async fn only_an_admin_reads_the_stream_and_the_audit_trail() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (runner, key) = create(&admin, "Keyed", None).await;
    let http = reqwest::Client::new();
    for path in ["/v0/events", "/v0/audit"] {
        let url = format!("{}{path}", server.url);
        let anonymous = http.get(&url).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        let runner_key = http.get(&url).bearer_auth(&key).send().await.unwrap();
        assert!(
            [401, 403].contains(&runner_key.status().as_u16()),
            "{path}: {}",
            runner_key.status()
        );
        // A token in the query is no credential.
        let in_query = format!("{url}?token={}", server.admin_token);
        assert_eq!(
            http.get(&in_query).send().await.unwrap().status(),
            401,
            "{path}"
        );
    }
    assert!(Events::open(&server.url, &key).await.is_err());
    let _ = runner;
}

#[tokio::test]
async fn the_audit_trail_pages_newest_first_and_filters_by_action_runner_and_time() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (one, _) = create(&admin, "One", None).await;
    let (two, _) = create(&admin, "Two", None).await;
    admin.runner_key_post().runner("one").send().await.unwrap();
    create_spec(&admin, new_spec("Box")).await;
    let get = |query: &str| {
        let url = format!("{}/v0/audit{query}", server.url);
        let token = server.admin_token.clone();
        async move {
            let answer = reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            let total = answer
                .headers()
                .get("x-total-count")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let body: serde_json::Value = answer.json().await.unwrap();
            (status, total, body)
        }
    };
    let actions = |body: &serde_json::Value| -> Vec<String> {
        let rows = body.as_array().unwrap();
        rows.iter()
            .map(|r| r["action"].as_str().unwrap().to_owned())
            .collect()
    };

    let (status, total, body) = get("?per_page=255").await;
    assert_eq!(status, 200);
    let all = actions(&body);
    assert_eq!(total, Some(all.len() as u64));
    assert_eq!(all[0], "spec.create", "newest first: {all:?}");
    let times: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["time"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    let (_, total, body) = get("?action=runner&per_page=2").await;
    assert_eq!(total, Some(3), "two creates and a rotation");
    assert_eq!(actions(&body), ["runner.key.rotate", "runner.create"]);
    let (_, _, body) = get("?action=runner&per_page=2&page=2").await;
    assert_eq!(actions(&body), ["runner.create"]);
    assert_eq!(body[0]["target_uuid"], one.uuid.to_string());

    let (_, total, _) = get("?action=runner.create").await;
    assert_eq!(total, Some(2));
    let (_, total, _) = get("?action=run").await;
    assert_eq!(total, Some(0), "`run` is not the first word of `runner.…`");
    let (_, total, body) = get("?runner=two").await;
    assert_eq!(total, Some(1));
    assert_eq!(body[0]["target_uuid"], two.uuid.to_string());
    let (_, total, _) = get("?since=2999-01-01T00:00:00Z").await;
    assert_eq!(total, Some(0));

    for (query, field) in [
        ("?action=Runner", "action"),
        ("?action=runner.", "action"),
        ("?action=runner%20create", "action"),
        ("?since=yesterday", "since"),
        ("?per_page=0", "per_page"),
        ("?runner=Not%20A%20Slug", "runner"),
        ("?nope=1", "nope"),
    ] {
        let (status, _, body) = get(query).await;
        assert_eq!(status, 400, "{query}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(field), "{query}: {message}");
    }
}

/// On PostgreSQL, a stream on one replica sees what is done on another
/// (the triggers' NOTIFY reaches every replica's LISTEN).
#[tokio::test]
async fn a_stream_on_one_replica_sees_the_writes_and_channels_of_another() {
    if std::env::var_os("RUNNERS_TEST_PG").is_none() {
        eprintln!("SKIPPED: replicas need PostgreSQL (RUNNERS_TEST_PG)");
        return;
    }
    let a = TestServer::start().await;
    let b = a.replica().await;
    let mut on_b = Events::open(&b.url, &b.admin_token).await.unwrap();
    let admin = a.admin();
    let (_spec, runner, key) = fallback_runner(&admin, "Elsewhere").await;
    let uuid = runner.uuid.to_string();
    on_b.until(
        "runner",
        &[("uuid", &uuid), ("status", "offline")],
        PATIENCE,
    )
    .await
    .unwrap();
    let mut agent = Agent::connect(&a, &runner.slug, &key).await.unwrap();
    on_b.until("runner", &[("uuid", &uuid), ("status", "idle")], PATIENCE)
        .await
        .unwrap();
    let job = create_job(&admin, new_job(None, 0)).await.uuid.to_string();
    let taken = agent.take_job(5).await.unwrap();
    agent.start(taken.uuid).await.unwrap();
    on_b.until("job", &[("uuid", &job), ("status", "running")], PATIENCE)
        .await
        .unwrap();
}

/// A shutdown ends every stream at once (it does not wait out the
/// shutdown timeout for them).
#[tokio::test]
async fn a_shutdown_ends_the_streams() {
    let mut server = TestServer::start().await;
    let mut events = Events::open(&server.url, &server.admin_token)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    server.stop().await;
    // Ended (cleanly, or cut with the connection): not still open.
    let ended = events.next(PATIENCE).await.unwrap_err().to_string();
    assert!(!ended.contains("no event within"), "{ended}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "the stop took {took:?}");
}
