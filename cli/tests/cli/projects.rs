//! Bencher v0.6.12's submitter side: `bencher project ...`, `bencher
//! project key ...`, `bencher user key ...`, `bencher report ...` and
//! `bencher job list|view PROJECT`, with `--token` or `--key`. Runs are
//! Bencher's own CLI's (this one has no `bencher run`): the tests submit
//! them through the SDK.

use std::time::Duration;

use runners_sdk::types::JsonNewRun;
use runners_tests::{digest, fallback_runner};

use super::*;

/// Runs `bencher ARGS --host URL --key KEY` against `server`.
async fn bencher_key(server: &TestServer, key: &str, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend(["--host", &server.url, "--key", key]);
    bencher_env(None, None, &all).await
}

/// `bencher project create default` of project `slug`, as the admin.
async fn project(server: &TestServer, slug: &str) -> Value {
    let args = [
        "project", "create", "default", "--name", slug, "--slug", slug,
    ];
    bencher(server, &args).await.json()
}

/// A new key (`project key create` or `user key create`) of `owner`, made
/// with `credential` (a token): the key and its UUID.
async fn new_key(
    server: &TestServer,
    credential: &str,
    kind: &str,
    owner: &str,
) -> (String, String) {
    let args = [kind, "key", "create", owner, "--name", "ci"];
    let created = bencher_as(server, credential, &args).await.json();
    let key = created["key"].as_str().expect("the key, once").to_owned();
    (key, text(&created["uuid"]))
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a string: {value}"))
        .to_owned()
}

/// The `field` of each item of a printed list, in order.
fn column(run: &Run, field: &str) -> Vec<String> {
    let list = run.json();
    list.as_array()
        .expect("an array")
        .iter()
        .map(|item| text(&item[field]))
        .collect()
}

/// A non-admin user's API token.
async fn user_token(server: &TestServer, name: &str) -> String {
    let (_, token) = server
        .api_token(name, false, chrono::Duration::days(1))
        .await;
    token
}

/// What Bencher's `bencher run` sends, to `project`: BMF `results` at once,
/// or a `job` with an image of the project.
fn run_body(project: &str, job: Option<Value>, results: &[&str]) -> JsonNewRun {
    serde_json::from_value(serde_json::json!({
        "project": project, "branch": "main", "testbed": "ci",
        "start_time": "2026-01-01T10:00:00Z", "end_time": "2026-01-01T10:01:00Z",
        "results": results, "job": job, "settings": {"adapter": "json"},
        "context": {}, "thresholds": {}, "start_point": {},
    }))
    .unwrap()
}

/// Submits a run as Bencher's CLI would, with the admin's token: its
/// report.
async fn submit(server: &TestServer, body: JsonNewRun) -> Value {
    let report = server.admin().run_post().body(body).send().await.unwrap();
    serde_json::to_value(report.into_inner()).unwrap()
}

#[tokio::test]
async fn project_create_list_view_update_delete() {
    let server = TestServer::start().await;
    let args = [
        "project",
        "create",
        "default",
        "--name",
        "Bench One",
        "--slug",
        "bench-1",
        "--url",
        "https://github.com/org/repo",
    ];
    let created = bencher(&server, &args).await.json();
    assert_eq!(created["slug"], "bench-1", "{created}");
    assert_eq!(created["name"], "Bench One");
    assert_eq!(created["url"], "https://github.com/org/repo");
    assert_eq!(created["visibility"], "public", "Bencher's default, sent");
    let other = bencher(
        &server,
        &[
            "project",
            "add",
            "default",
            "--name",
            "Other",
            "--visibility",
            "private",
        ],
    )
    .await
    .json();
    assert_eq!(
        (&other["slug"], &other["visibility"]),
        (&"other".into(), &"private".into())
    );
    assert!(other["url"].is_null(), "{other}");
    assert_eq!(other["organization"], created["organization"]);

    // Every project, or the organization's; filtered, sorted, paged.
    let run = bencher(&server, &["project", "list", "--per-page", "1"]).await;
    assert_eq!(run.slugs(), ["bench-1"]);
    assert_eq!(run.total(), 2);
    let run = bencher(
        &server,
        &["project", "ls", "default", "--all", "--per-page", "1"],
    )
    .await;
    assert_eq!(run.slugs(), ["bench-1", "other"]);
    let org = text(&created["organization"]);
    let run = bencher(
        &server,
        &[
            "project",
            "list",
            &org,
            "--sort",
            "name",
            "--direction",
            "desc",
        ],
    )
    .await;
    assert_eq!(run.slugs(), ["other", "bench-1"]);
    let run = bencher(&server, &["project", "list", "--search", "OTH"]).await;
    assert_eq!(run.slugs(), ["other"]);
    let run = bencher(&server, &["project", "list", "--name", "Bench One"]).await;
    assert_eq!(run.slugs(), ["bench-1"]);

    let viewed = bencher(&server, &["project", "view", "bench-1"])
        .await
        .json();
    assert_eq!(viewed, created);
    let by_uuid = bencher(&server, &["project", "view", &text(&created["uuid"])]).await;
    assert_eq!(by_uuid.json(), created);

    let args = [
        "project",
        "update",
        "bench-1",
        "--name",
        "Bench I",
        "--slug",
        "b1",
        "--url",
        "https://example.com/b1",
        "--visibility",
        "private",
    ];
    let updated = bencher(&server, &args).await.json();
    assert_eq!(updated["uuid"], created["uuid"]);
    assert_eq!(
        (&updated["name"], &updated["slug"]),
        (&"Bench I".into(), &"b1".into())
    );
    assert_eq!(updated["url"], "https://example.com/b1");
    assert_eq!(updated["visibility"], "private");
    // Flags not given stay as they are.
    let renamed = bencher(&server, &["project", "edit", "b1", "--name", "B"])
        .await
        .json();
    assert_eq!(
        (&renamed["slug"], &renamed["url"]),
        (&"b1".into(), &updated["url"])
    );
    // Bencher's `--url _` (remove the URL) cannot be sent through the SDK.
    let run = bencher(&server, &["project", "update", "b1", "--url", "_"]).await;
    run.one_line_error(2, "--url _");

    let run = bencher(&server, &["project", "delete", "other"]).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
    bencher(&server, &["project", "view", "other"])
        .await
        .api_error("404 Not Found", "NotFound")
        .mentions("other");
    let run = bencher(&server, &["project", "rm", "b1", "--hard"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(bencher(&server, &["project", "list"]).await.total(), 0);
}

#[tokio::test]
async fn project_commands_refuse_what_the_credential_may_not_do() {
    let server = TestServer::start().await;
    project(&server, "bench").await;
    project(&server, "secret").await;
    let alice = user_token(&server, "alice").await;
    let (key, _) = new_key(&server, &server.admin_token, "project", "bench").await;

    // A user may create projects and read them, not change or delete them.
    let mine = bencher_as(
        &server,
        &alice,
        &["project", "create", "default", "--name", "Mine"],
    )
    .await;
    assert_eq!(mine.json()["slug"], "mine");
    assert_eq!(
        bencher_as(&server, &alice, &["project", "list"])
            .await
            .total(),
        3
    );
    for args in [
        &["project", "update", "mine", "--name", "Ours"][..],
        &["project", "delete", "mine"],
    ] {
        bencher_as(&server, &alice, args)
            .await
            .api_error("403 Forbidden", "Forbidden");
    }
    // A project key reads its project only, and creates none.
    let viewed = bencher_key(&server, &key, &["project", "view", "bench"]).await;
    assert_eq!(viewed.json()["slug"], "bench");
    let listed = bencher_key(&server, &key, &["project", "list"]).await;
    assert_eq!(listed.slugs(), ["bench"], "its own project only");
    bencher_key(&server, &key, &["project", "view", "secret"])
        .await
        .api_error("403 Forbidden", "Forbidden");
    bencher_key(
        &server,
        &key,
        &["project", "create", "default", "--name", "X"],
    )
    .await
    .api_error("403 Forbidden", "Forbidden");
    // The organization is this server's one (the server's 404 has no
    // error code).
    let run = bencher(&server, &["project", "list", "elsewhere"]).await;
    assert_eq!((run.code, run.stdout.as_str()), (1, ""), "{run:?}");
    run.mentions("404 Not Found");
    let args = [
        "project", "create", "default", "--name", "X", "--url", "ftp://x",
    ];
    let run = bencher(&server, &args).await;
    assert_eq!(run.code, 2, "{run:?}");
    run.mentions("--url").mentions("`http://` or `https://`");
}

#[tokio::test]
async fn project_keys_create_list_view_update_revoke() {
    let server = TestServer::start().await;
    let bench = project(&server, "bench").await;
    project(&server, "other").await;

    let args = [
        "project", "key", "create", "bench", "--name", "ci", "--ttl", "3600",
    ];
    let created = bencher(&server, &args).await.json();
    let key = text(&created["key"]);
    assert!(key.starts_with("bencher_run_") && key.len() == 42, "{key}");
    assert_eq!(created["project"], bench["uuid"]);
    let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let ttl = time(&created["expiration"]) - time(&created["creation"]);
    assert!(
        (ttl.num_milliseconds() - 3_600_000).abs() < 1000,
        "{created}"
    );
    let uuid = text(&created["uuid"]);
    let (_, second) = new_key(&server, &server.admin_token, "project", "bench").await;

    let run = bencher(
        &server,
        &["project", "key", "list", "bench", "--per-page", "1"],
    )
    .await;
    assert_eq!(run.total(), 2);
    let run = bencher(
        &server,
        &["project", "key", "ls", "bench", "--all", "--sort", "name"],
    )
    .await;
    let uuids = column(&run, "uuid");
    assert!(uuids.contains(&uuid) && uuids.contains(&second), "{run:?}");
    assert!(!run.stdout.contains(&key), "a key is shown once only");

    let viewed = bencher(&server, &["project", "key", "view", "bench", &uuid])
        .await
        .json();
    assert_eq!(
        (&viewed["uuid"], &viewed["name"]),
        (&created["uuid"], &"ci".into())
    );
    assert!(viewed.get("key").is_none(), "{viewed}");
    let renamed = bencher(
        &server,
        &[
            "project", "key", "update", "bench", &uuid, "--name", "nightly",
        ],
    )
    .await;
    assert_eq!(renamed.json()["name"], "nightly");
    let run = bencher(
        &server,
        &["project", "key", "list", "bench", "--search", "night"],
    )
    .await;
    assert_eq!(column(&run, "uuid"), [uuid.as_str()]);

    // The key works with --key, and with BENCHER_API_KEY.
    let run = bencher_key(&server, &key, &["project", "view", "bench"]).await;
    assert_eq!(run.json()["uuid"], bench["uuid"]);
    let mut command = tokio::process::Command::new(BIN);
    let output = command
        .args(["project", "view", "bench", "--host", &server.url])
        .env_remove("BENCHER_API_TOKEN")
        .env("BENCHER_API_KEY", &key)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");

    // A project key manages no keys, and lists no runners.
    bencher_key(&server, &key, &["project", "key", "list", "bench"])
        .await
        .api_error("403 Forbidden", "Forbidden");
    bencher_key(&server, &key, &["runner", "list"])
        .await
        .api_error("403 Forbidden", "Forbidden");
    // A key is found through its own project only.
    bencher(&server, &["project", "key", "view", "other", &uuid])
        .await
        .api_error("404 Not Found", "NotFound");

    let run = bencher(&server, &["project", "key", "revoke", "bench", &uuid]).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
    // A server may trust a checked credential for 1 s.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    bencher_key(&server, &key, &["project", "view", "bench"])
        .await
        .api_error("401 Unauthorized", "Unauthorized");
    // `--revoked` lists the revoked keys only (Bencher's).
    let run = bencher(&server, &["project", "key", "list", "bench", "--revoked"]).await;
    assert_eq!(column(&run, "uuid"), std::slice::from_ref(&uuid), "{run:?}");
    let run = bencher(&server, &["project", "key", "list", "bench"]).await;
    assert_eq!(column(&run, "uuid"), [second]);
    // Only an admin manages project keys.
    let alice = user_token(&server, "alice").await;
    bencher_as(
        &server,
        &alice,
        &["project", "key", "create", "bench", "--name", "x"],
    )
    .await
    .api_error("403 Forbidden", "Forbidden");
}

#[tokio::test]
async fn user_keys_create_list_view_update_revoke() {
    let server = TestServer::start().await;
    let alice = user_token(&server, "alice").await;
    let (key, uuid) = new_key(&server, &alice, "user", "alice").await;
    assert!(key.starts_with("bencher_user_") && key.len() == 43, "{key}");

    // The user key has its user's rights: its user's keys, projects.
    let run = bencher_key(&server, &key, &["user", "key", "list", "alice"]).await;
    assert_eq!(column(&run, "uuid"), [uuid.as_str()]);
    assert_eq!(run.total(), 1);
    let viewed = bencher_key(&server, &key, &["user", "key", "view", "alice", &uuid])
        .await
        .json();
    assert_eq!(viewed["name"], "ci");
    assert!(viewed.get("key").is_none(), "{viewed}");
    let args = ["user", "key", "update", "alice", &uuid, "--name", "laptop"];
    assert_eq!(
        bencher_key(&server, &key, &args).await.json()["name"],
        "laptop"
    );
    let made = bencher_key(
        &server,
        &key,
        &["project", "create", "default", "--name", "Alices"],
    )
    .await;
    assert_eq!(made.json()["slug"], "alices");
    let run = bencher_as(
        &server,
        &alice,
        &["user", "key", "ls", "alice", "--name", "laptop"],
    )
    .await;
    assert_eq!(column(&run, "uuid"), [uuid.as_str()]);

    // Another user's keys: refused, to a user and to a project key alike.
    let admins = bencher(
        &server,
        &["user", "key", "create", "admin", "--name", "root"],
    )
    .await;
    let admins = text(&admins.json()["uuid"]);
    for args in [
        &["user", "key", "list", "admin"][..],
        &["user", "key", "view", "admin", &admins],
        &["user", "key", "revoke", "admin", &admins],
    ] {
        bencher_key(&server, &key, args)
            .await
            .api_error("403 Forbidden", "Forbidden");
    }
    project(&server, "bench").await;
    let (run_key, _) = new_key(&server, &server.admin_token, "project", "bench").await;
    bencher_key(
        &server,
        &run_key,
        &["user", "key", "create", "alice", "--name", "x"],
    )
    .await
    .api_error("403 Forbidden", "Forbidden");
    // The admin manages anyone's.
    let run = bencher(&server, &["user", "key", "list", "alice"]).await;
    assert_eq!(column(&run, "uuid"), [uuid.as_str()]);

    let run = bencher_as(&server, &alice, &["user", "key", "revoke", "alice", &uuid]).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    bencher_key(&server, &key, &["project", "list"])
        .await
        .api_error("401 Unauthorized", "Unauthorized");
    let args = ["user", "key", "list", "alice", "--revoked"];
    let run = bencher_as(&server, &alice, &args).await;
    assert!(column(&run, "uuid").contains(&uuid), "{run:?}");
    let run = bencher_as(&server, &alice, &["user", "key", "list", "alice"]).await;
    assert_eq!(run.total(), 0, "{run:?}");
}

#[tokio::test]
async fn report_list_and_view() {
    let server = TestServer::start().await;
    project(&server, "bench").await;
    project(&server, "other").await;
    let bmf = serde_json::json!({"parse": {"latency": {"value": 12.5}}}).to_string();
    let report = submit(&server, run_body("bench", None, &[&bmf])).await;
    let uuid = text(&report["uuid"]);
    let (key, _) = new_key(&server, &server.admin_token, "project", "bench").await;

    let run = bencher_key(&server, &key, &["report", "list", "bench"]).await;
    assert_eq!(column(&run, "uuid"), [uuid.as_str()]);
    assert_eq!(run.total(), 1);
    let args = [
        "report",
        "ls",
        "bench",
        "--branch",
        "main",
        "--testbed",
        "ci",
        "--sort",
        "date_time",
        "--direction",
        "asc",
        "--archived",
        "--expand",
        "--all",
    ];
    assert_eq!(
        column(&bencher(&server, &args).await, "uuid"),
        [uuid.as_str()]
    );
    // Bencher's times are seconds since the epoch (the API's, milliseconds).
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z").unwrap();
    let start = start.timestamp().to_string();
    let run = bencher(
        &server,
        &["report", "list", "bench", "--start-time", &start],
    )
    .await;
    assert_eq!(run.total(), 1, "{run:?}");
    let later = (start.parse::<i64>().unwrap() + 1).to_string();
    let run = bencher(
        &server,
        &["report", "list", "bench", "--start-time", &later],
    )
    .await;
    assert_eq!(run.total(), 0, "{run:?}");
    let run = bencher(&server, &["report", "list", "bench", "--branch", "feature"]).await;
    assert_eq!(run.total(), 0, "{run:?}");

    let viewed = bencher_key(&server, &key, &["report", "view", "bench", &uuid])
        .await
        .json();
    assert_eq!(viewed, report);
    let measure = &viewed["results"][0][0]["measures"][0];
    assert_eq!(measure["metric"]["value"], 12.5, "{viewed}");

    // Another project's reports: refused to this project's key.
    bencher_key(&server, &key, &["report", "list", "other"])
        .await
        .api_error("403 Forbidden", "Forbidden");
    bencher(&server, &["report", "view", "other", &uuid])
        .await
        .api_error("404 Not Found", "NotFound");
    let run = bencher(&server, &["report", "view", "bench", "not-a-uuid"]).await;
    assert_eq!(run.code, 2, "{run:?}");
}

#[tokio::test]
async fn job_list_and_view_through_a_project_as_bencher_names_them() {
    let server = TestServer::start().await;
    let bench = project(&server, "bench").await;
    project(&server, "other").await;
    fallback_runner(&server.admin(), "Rack").await;
    let image = format!("127.0.0.1:5000/{}@{}", text(&bench["uuid"]), digest(7));
    let job = serde_json::json!({"image": image});
    let report = submit(&server, run_body("bench", Some(job), &[])).await;
    let job = text(&report["job"]);
    let (key, _) = new_key(&server, &server.admin_token, "project", "bench").await;

    // Bencher's form: `job list PROJECT`, `job view PROJECT JOB`.
    let run = bencher_key(&server, &key, &["job", "list", "bench"]).await;
    assert_eq!(column(&run, "uuid"), [job.as_str()]);
    assert_eq!(run.total(), 1);
    let args = [
        "job", "ls", "bench", "--status", "pending", "--sort", "created", "--all",
    ];
    assert_eq!(
        column(&bencher_key(&server, &key, &args).await, "uuid"),
        [job.as_str()]
    );
    let run = bencher_key(
        &server,
        &key,
        &["job", "list", "bench", "--status", "running"],
    )
    .await;
    assert_eq!(run.total(), 0);
    let viewed = bencher_key(&server, &key, &["job", "view", "bench", &job])
        .await
        .json();
    assert_eq!(viewed["status"], "pending");
    assert_eq!(viewed["config"]["project"], bench["uuid"]);
    let run = bencher_key(
        &server,
        &key,
        &["job", "get", "bench", &job, "--format", "text"],
    )
    .await;
    assert!(
        run.stdout.starts_with(&format!("Job {job}: pending")),
        "{run:?}"
    );

    // The admin's form, without a project, is unchanged.
    assert_eq!(
        bencher(&server, &["job", "view", &job]).await.json(),
        viewed
    );
    assert_eq!(
        column(&bencher(&server, &["job", "list"]).await, "uuid"),
        [job.as_str()]
    );

    // Refusals: another project, the admin's form, a filter of the other form.
    bencher_key(&server, &key, &["job", "list", "other"])
        .await
        .api_error("403 Forbidden", "Forbidden");
    bencher_key(&server, &key, &["job", "view", &job])
        .await
        .api_error("403 Forbidden", "Forbidden");
    // (The server's 404 here has no error code, and its message is
    // dropshot's bare "Not Found".)
    let run = bencher(&server, &["job", "view", "other", &job]).await;
    assert_eq!((run.code, run.stdout.as_str()), (1, ""), "{run:?}");
    run.mentions("404 Not Found");
    let run = bencher(&server, &["job", "list", "bench", "--runner", "r"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--runner"), "{run:?}");
}

#[tokio::test]
async fn a_key_or_a_token_each_in_its_own_flag() {
    let server = TestServer::start().await;
    project(&server, "bench").await;
    let (key, _) = new_key(&server, &server.admin_token, "project", "bench").await;

    // Each flag refuses the other's credential, naming the right flag and
    // never printing the credential.
    let run = bencher_as(&server, &key, &["project", "view", "bench"]).await;
    run.one_line_error(2, "Use `--key`/`BENCHER_API_KEY` instead");
    assert!(!run.stderr.contains(&key), "{run:?}");
    let run = bencher_key(&server, &server.admin_token, &["project", "view", "bench"]).await;
    run.one_line_error(2, "Use `--token`/`BENCHER_API_TOKEN` instead");
    assert!(!run.stderr.contains(&server.admin_token), "{run:?}");
    let bad = format!("{key}x");
    let run = bencher_key(&server, &bad, &["project", "view", "bench"]).await;
    run.one_line_error(
        2,
        "--key: a Bencher API key is `bencher_user_` or `bencher_run_`",
    );
    assert!(!run.stderr.contains(&bad), "{run:?}");
    // One credential: both is a usage error, the environment's included.
    let run = bencher_env(
        Some(&server.url),
        Some(&server.admin_token),
        &["project", "view", "bench", "--key", &key],
    )
    .await;
    run.one_line_error(2, "cannot be used together");
    // A well-formed key the server does not know: its 401.
    let unknown = format!("bencher_run_{}", "a".repeat(30));
    bencher_key(&server, &unknown, &["project", "view", "bench"])
        .await
        .api_error("401 Unauthorized", "Unauthorized");
}
