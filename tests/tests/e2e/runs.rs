//! Bencher's submitter side: runs (with a job that a test agent takes, or
//! with results at once), projects, project and user keys and what each
//! may do, reports. Through the SDK and a real WebSocket, on a fresh
//! database (SQLite, or PostgreSQL with RUNNERS_TEST_PG).

use std::time::Duration;

use runners_sdk::types;
use runners_tests::agent::{Agent, output};
use runners_tests::*;
use uuid::Uuid;

/// A BMF line: benchmark `bench`, measure `latency`, `value`.
fn bmf(value: f64) -> String {
    serde_json::json!({"bench": {"latency": {"value": value}}}).to_string()
}

/// The image of `project` on the test registry, pinned.
fn image(project: Uuid) -> String {
    format!("127.0.0.1:5000/{project}@{}", digest(7))
}

/// `report`'s job taken by `agent`, which reports `outputs`: the job it
/// was given, and the job once it has ended (read through the project).
async fn run_on(
    agent: &mut Agent,
    ci: &runners_sdk::Client,
    report: &types::JsonReport,
    outputs: Vec<types::JsonIterationOutput>,
) -> (types::JsonClaimedJob, types::JsonJob) {
    let job = report.job.expect("a run with a job names it");
    let claimed = agent.take_job(5).await.unwrap();
    assert_eq!(claimed.uuid, job);
    agent.start(job).await.unwrap();
    agent.complete(job, outputs).await.unwrap();
    agent.expect_ack(job).await.unwrap();
    let project = report.project.slug.as_str();
    let ended = eventually(Duration::from_secs(5), || async {
        let j = ci.proj_job_get().project(project).job(job).send().await;
        let j = j.unwrap().into_inner();
        (!matches!(j.status, types::JobStatus::Running)).then_some(j)
    })
    .await
    .unwrap();
    (claimed, ended)
}

#[tokio::test]
async fn a_project_keys_run_is_queued_claimed_and_processed_into_its_report() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let p = project(&admin, "bench").await;
    let (key, _) = project_key(&admin, "bench", None).await;
    let ci = server.client(&key);
    let (_, runner, runner_key) = fallback_runner(&admin, "box").await;
    let mut agent = Agent::connect(&server, &runner.slug, &runner_key)
        .await
        .unwrap();

    // Processed: the output's BMF becomes the report's results.
    let job = serde_json::json!({"image": image(p.uuid), "iter": 2});
    let report = ci
        .run_post()
        .body(new_run(Some("bench"), Some(job), &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 201);
    let report = report.into_inner();
    assert!(report.user.is_none(), "a project key is no user");
    let outputs = vec![output(0, &bmf(1.5)), output(0, &bmf(2.5))];
    let (claimed, done) = run_on(&mut agent, &ci, &report, outputs).await;
    assert_eq!(claimed.config.project, p.uuid);
    assert_eq!(claimed.config.registry.as_str(), TEST_REGISTRY);
    assert_eq!(done.status, types::JobStatus::Processed, "{done:?}");
    let read = ci
        .proj_report_get()
        .project(p.uuid.to_string())
        .report(report.uuid);
    let read = read.send().await.unwrap().into_inner();
    let values: Vec<f64> = read
        .results
        .iter()
        .map(|it| {
            assert_eq!(it[0].benchmark.name, "bench");
            assert_eq!(it[0].measures[0].measure.slug, "latency");
            it[0].measures[0].metric.value
        })
        .collect();
    assert_eq!(values, [1.5, 2.5]);
    assert_eq!(
        read.results[0][0].benchmark.uuid,
        read.results[1][0].benchmark.uuid
    );

    // Not BMF: failed, saying why; the report has no results.
    let job = serde_json::json!({"image": image(p.uuid)});
    let report = ci
        .run_post()
        .body(new_run(None, Some(job), &[]))
        .send()
        .await
        .unwrap()
        .into_inner();
    let (_, failed) = run_on(&mut agent, &ci, &report, vec![output(0, "not json")]).await;
    assert_eq!(failed.status, types::JobStatus::Failed, "{failed:?}");
    let error = failed.output.unwrap().error.unwrap();
    assert!(error.contains("iteration 1"), "{error}");
    let read = ci
        .proj_report_get()
        .project("bench")
        .report(report.uuid)
        .send()
        .await;
    assert!(read.unwrap().into_inner().results.is_empty());
}

#[tokio::test]
async fn a_project_key_reaches_its_project_only_and_stops_at_revoke_and_ttl() {
    let server = TestServer::start().await;
    let admin = server.admin();
    project(&admin, "mine").await;
    let other = project(&admin, "theirs").await;
    let (key, key_uuid) = project_key(&admin, "mine", None).await;
    let ci = server.client(&key);
    failure(ci.runners_get().send().await).assert(403, "Forbidden");
    failure(ci.jobs_post().body(new_job(None, 0)).send().await).assert(403, "Forbidden");
    failure(ci.proj_jobs_get().project("theirs").send().await).assert(403, "Forbidden");
    failure(ci.proj_jobs_get().project("nowhere").send().await).assert(403, "Forbidden");
    let theirs = new_run(Some(&other.uuid.to_string()), None, &[bmf(1.0)]);
    failure(ci.run_post().body(theirs).send().await).assert(403, "Forbidden");
    failure(ci.proj_keys_get().project("mine").send().await).assert(403, "Forbidden");
    let listed = ci.projects_get().send().await.unwrap().into_inner();
    assert_eq!(
        listed.iter().map(|p| p.slug.as_str()).collect::<Vec<_>>(),
        ["mine"]
    );
    ci.proj_jobs_get().project("mine").send().await.unwrap();

    let revoked = admin
        .proj_key_delete()
        .project("mine")
        .key(key_uuid)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    failure(ci.proj_jobs_get().project("mine").send().await)
        .assert(401, "Unauthorized")
        .mentions("revoked");

    let (short, _) = project_key(&admin, "mine", Some(1)).await;
    let short = server.client(&short);
    short.proj_jobs_get().project("mine").send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    failure(short.proj_jobs_get().project("mine").send().await)
        .assert(401, "Unauthorized")
        .mentions("expired");
    let audit = server
        .sql_rows("SELECT action FROM audit WHERE action LIKE 'project.key.%' ORDER BY id")
        .await;
    let actions: Vec<_> = audit.into_iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "project.key.create",
            "project.key.revoke",
            "project.key.create"
        ]
    );
}

#[tokio::test]
async fn a_user_key_has_its_users_rights_and_manages_only_its_users_keys() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let body: types::JsonNewKey =
        serde_json::from_value(serde_json::json!({"name": "laptop"})).unwrap();
    let made = admin
        .user_key_post()
        .user("admin")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let admin_key = made.into_inner();
    assert!(admin_key.key.starts_with("bencher_user_"));
    server
        .client(&admin_key.key)
        .runners_get()
        .send()
        .await
        .unwrap();

    let (_, alice_token) = server
        .api_token("alice", false, chrono::Duration::days(1))
        .await;
    let alice = server.client(&alice_token);
    let body: types::JsonNewKey =
        serde_json::from_value(serde_json::json!({"name": "ci"})).unwrap();
    let key = alice
        .user_key_post()
        .user("alice")
        .body(body)
        .send()
        .await
        .unwrap();
    let key = server.client(&key.into_inner().key);
    failure(key.runners_get().send().await).assert(403, "Forbidden");
    failure(key.user_keys_get().user("admin").send().await).assert(403, "Forbidden");
    let listed = key
        .user_keys_get()
        .user("alice")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.len(), 1);
    // A user makes a project by running to a new slug.
    let made = key
        .run_post()
        .body(new_run(Some("alices"), None, &[bmf(3.0)]))
        .send()
        .await;
    let report = made.unwrap().into_inner();
    assert_eq!(report.project.slug, "alices");
    assert_eq!(report.user.unwrap().name, "alice");
    assert_eq!(report.results[0][0].measures[0].metric.value, 3.0);
}

#[tokio::test]
async fn a_runs_rules_each_refuse_with_a_400_naming_the_field() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let p = project(&admin, "rules").await;
    let (key, _) = project_key(&admin, "rules", None).await;
    let ci = server.client(&key);
    fallback_runner(&admin, "box").await;
    let elsewhere = serde_json::json!({"image": format!("ghcr.io/{}@{}", p.uuid, digest(1))});
    failure(
        ci.run_post()
            .body(new_run(None, Some(elsewhere), &[]))
            .send()
            .await,
    )
    .assert(400, "InvalidRequest")
    .mentions("127.0.0.1:5000");
    let wrong_repo = serde_json::json!({"image": image(Uuid::nil())});
    failure(
        ci.run_post()
            .body(new_run(None, Some(wrong_repo), &[]))
            .send()
            .await,
    )
    .assert(400, "InvalidRequest")
    .mentions(&p.uuid.to_string());
    let body = r#"{"start_time":"2026-12-07T10:00:00Z","end_time":"2026-12-07T10:00:00Z",
        "results":[],"settings":{"adapter":"rust_criterion"}}"#;
    server
        .refused("POST", "/v0/run", Some(body))
        .await
        .assert(400, "InvalidRequest")
        .mentions("rust_criterion");
    let bad = new_run(None, None, &["{\"b\": 1}".to_owned()]);
    failure(ci.run_post().body(bad).send().await)
        .assert(400, "InvalidRequest")
        .mentions("results");

    // The same idempotency key answers the first report.
    let mut once = new_run(None, None, &[bmf(1.0)]);
    once.idempotency_key = Some(Uuid::new_v4());
    let first = ci.run_post().body(once.clone()).send().await.unwrap();
    let again = ci.run_post().body(once).send().await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(first.into_inner().uuid, again.into_inner().uuid);
    let console = server
        .anonymous()
        .server_config_console_get()
        .send()
        .await
        .unwrap();
    assert!(console.into_inner().url.starts_with("http://127.0.0.1:"));
}

#[tokio::test]
async fn a_run_is_bounded_and_its_registry_down_is_a_503_naming_it() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let p = project(&admin, "bounds").await;
    let (key, _) = project_key(&admin, "bounds", None).await;
    let ci = server.client(&key);
    // Iterations: 1 to 1000 (an agent allocates for each at once).
    let many = serde_json::json!({"image": image(p.uuid), "iter": 1001});
    let mut body = serde_json::to_value(new_run(Some("bounds"), None, &[])).unwrap();
    body["job"] = many;
    let body = body.to_string();
    server
        .refused("POST", "/v0/run", Some(&body))
        .await
        .assert(400, "InvalidRequest")
        .mentions("job.iter");
    // At most 10000 values in a report.
    let wide: serde_json::Map<_, _> = (0..10_001)
        .map(|i| {
            (
                format!("b{i}"),
                serde_json::json!({"latency": {"value": 1.0}}),
            )
        })
        .collect();
    let wide = serde_json::Value::Object(wide).to_string();
    failure(
        ci.run_post()
            .body(new_run(None, None, &[wide]))
            .send()
            .await,
    )
    .assert(400, "InvalidRequest")
    .mentions("10000");
    // A tag on the configured registry, which is down: 503 naming it.
    let tagged = serde_json::json!({"image": format!("127.0.0.1:5000/{}:v1", p.uuid)});
    fallback_runner(&admin, "box").await;
    failure(
        ci.run_post()
            .body(new_run(None, Some(tagged), &[]))
            .send()
            .await,
    )
    .assert(503, "ServiceUnavailable")
    .mentions("127.0.0.1:5000");
    // With --registry-url, POST /v0/jobs takes only that registry.
    let mut elsewhere = serde_json::to_value(new_job(None, 0)).unwrap();
    elsewhere["registry"] = "http://evil.example.com:5000".into();
    let elsewhere: types::JsonNewJob = serde_json::from_value(elsewhere).unwrap();
    failure(admin.jobs_post().body(elsewhere).send().await)
        .assert(400, "InvalidRequest")
        .mentions(TEST_REGISTRY);
    // A key's ttl is at least 1 s.
    let zero = r#"{"name": "now", "ttl": 0}"#;
    server
        .refused("POST", "/v0/projects/bounds/keys", Some(zero))
        .await
        .assert(400, "InvalidRequest")
        .mentions("ttl");
}

#[tokio::test]
async fn a_renamed_projects_key_never_reaches_the_project_that_takes_its_slug() {
    let server = TestServer::start().await;
    let admin = server.admin();
    project(&admin, "other").await;
    let (key, _) = project_key(&admin, "other", None).await;
    let ci = server.client(&key);
    // The key is checked (and trusted for a second) under the slug `other`.
    ci.project_get().project("other").send().await.unwrap();
    let renamed: types::JsonUpdateProject =
        serde_json::from_value(serde_json::json!({"slug": "other2"})).unwrap();
    let patch = admin.project_patch().project("other").body(renamed);
    patch.send().await.unwrap();
    project(&admin, "other").await;
    // At once: the impostor named `other` is another project (403), and
    // the key's own project answers under its new slug.
    let theirs = new_run(Some("other"), None, &[bmf(1.0)]);
    failure(ci.run_post().body(theirs).send().await).assert(403, "Forbidden");
    failure(ci.proj_reports_get().project("other").send().await).assert(403, "Forbidden");
    ci.project_get().project("other2").send().await.unwrap();

    // A list leaves the results out unless expanded.
    let ours = new_run(Some("other2"), None, &[bmf(2.0)]);
    ci.run_post().body(ours).send().await.unwrap();
    let list = ci
        .proj_reports_get()
        .project("other2")
        .send()
        .await
        .unwrap();
    assert!(list.into_inner()[0].results.is_empty());
    let list = ci
        .proj_reports_get()
        .project("other2")
        .expand(true)
        .send()
        .await;
    assert_eq!(
        list.unwrap().into_inner()[0].results[0][0].measures[0]
            .metric
            .value,
        2.0
    );
}
