//! `bencher job ...` and the runner's status in `bencher runner list`. Jobs
//! are run by the test agent of `runners-tests` (the channel protocol).

use std::time::Duration;

use runners_sdk::types::JsonIterationOutput;
use runners_tests::agent::{Agent, output};
use runners_tests::{create_spec, digest, eventually, fallback_runner, new_spec, runner_with_spec};

use super::*;

const PROJECT: &str = "0f5ad5b1-4a3c-4c6f-9d3e-3e0b5c2a7d11";
const REGISTRY: &str = "http://127.0.0.1:5000";

/// `bencher job create` of the test image (digest `n`), with `extra` flags
/// (the command after `--` last: host and token come from the
/// environment, as nothing may follow the command).
async fn create_job(server: &TestServer, n: u64, extra: &[&str]) -> Run {
    let digest = digest(n);
    let mut args = vec![
        "job",
        "create",
        "--registry",
        REGISTRY,
        "--project",
        PROJECT,
        "--digest",
        &digest,
    ];
    args.extend(extra);
    bencher_env(Some(&server.url), Some(&server.admin_token), &args).await
}

/// The UUID of a printed job.
fn uuid(job: &Value) -> String {
    job["uuid"].as_str().expect("a uuid").to_owned()
}

/// The digests' numbers of a printed job list, in order.
fn digests(run: &Run) -> Vec<u64> {
    run.json()
        .as_array()
        .expect("an array")
        .iter()
        .map(|job| {
            let digest = job["config"]["digest"].as_str().unwrap();
            u64::from_str_radix(digest.strip_prefix("sha256:").unwrap(), 16).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn create_sends_every_option_and_prints_the_job() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (fallback, _, _) = fallback_runner(&admin, "Rack").await;
    let other = create_spec(&admin, new_spec("Graviton")).await;

    let run = create_job(
        &server,
        7,
        &[
            "--image",
            "registry.example.com/bench:v1",
            "--spec",
            &other.slug,
            "--entrypoint",
            "/bin/sh",
            "--entrypoint",
            "-c",
            "--env",
            "RUST_LOG=info",
            "--env",
            "EMPTY=",
            "--env",
            "EQ=a=b",
            "--job-timeout",
            "120",
            "--file-path",
            "/out/a.json",
            "--file-path",
            "/out/b.json",
            "--build-time",
            "--file-size",
            "--iter",
            "3",
            "--allow-failure",
            "--backdate",
            "2025-01-31T13:00:00+01:00",
            "--priority",
            "-5",
            "--",
            "cargo",
            "bench",
            "--bench",
            "api",
        ],
    )
    .await;
    let created = run.json();
    assert_eq!(created["status"], "pending", "{created}");
    assert_eq!(created["spec"]["uuid"], other.uuid.to_string());
    assert_eq!(created["priority"], -5);
    let config = &created["config"];
    assert_eq!(config["registry"], REGISTRY);
    assert_eq!(config["project"], PROJECT);
    assert_eq!(config["digest"], digest(7));
    assert_eq!(config["image"], "registry.example.com/bench:v1");
    assert_eq!(config["entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    // Everything after `--` is the command, flags too.
    assert_eq!(
        config["cmd"],
        serde_json::json!(["cargo", "bench", "--bench", "api"])
    );
    assert_eq!(
        config["env"],
        serde_json::json!({"RUST_LOG": "info", "EMPTY": "", "EQ": "a=b"})
    );
    assert_eq!(config["timeout"], 120);
    assert_eq!(
        config["file_paths"],
        serde_json::json!(["/out/a.json", "/out/b.json"])
    );
    assert_eq!(config["build_time"], true);
    assert_eq!(config["file_size"], true);
    assert_eq!(config["iter"], 3);
    assert_eq!(config["allow_failure"], true);
    let backdate = config["backdate"].as_str().unwrap();
    let backdate = chrono::DateTime::parse_from_rfc3339(backdate).unwrap();
    assert_eq!(
        backdate,
        chrono::DateTime::parse_from_rfc3339("2025-01-31T12:00:00Z").unwrap()
    );

    // What the server stored is what was printed.
    let viewed = bencher(&server, &["job", "view", &uuid(&created)]).await;
    assert_eq!(viewed.json(), created);

    // Without options: the fallback spec and the server's defaults; no flag
    // sends a field the user did not give.
    let plain = create_job(&server, 8, &[]).await.json();
    assert_eq!(plain["spec"]["uuid"], fallback.uuid.to_string());
    assert_eq!(plain["priority"], 0);
    let config = &plain["config"];
    assert_eq!(config["timeout"], 3600);
    for absent in [
        "image",
        "entrypoint",
        "cmd",
        "env",
        "file_paths",
        "build_time",
        "file_size",
        "iter",
        "allow_failure",
        "backdate",
    ] {
        assert!(config[absent].is_null(), "{absent}: {plain}");
    }
}

#[tokio::test]
async fn create_refuses_bad_input_naming_the_flag() {
    let server = TestServer::start().await;
    let admin = server.admin();
    fallback_runner(&admin, "Rack").await;
    let too_many: Vec<&str> = std::iter::repeat_n(["--entrypoint", "x"], 65)
        .flatten()
        .collect();
    let mut too_long_cmd = vec!["--"];
    too_long_cmd.extend(std::iter::repeat_n("x", 65));
    let bad: [(&[&str], &str); 17] = [
        (&["--digest", "sha256:abc"], "--digest"),
        (&["--digest", &digest(1).to_uppercase()], "--digest"),
        (&["--registry", "ftp://registry.example.com"], "--registry"),
        (&["--registry", "http://user@registry"], "--registry"),
        (&["--project", "my-project"], "--project"),
        (&["--image", "has space"], "--image"),
        (&["--spec", "Not A Slug"], "--spec"),
        (&["--env", "NOEQUALS"], "--env"),
        (&["--env", "=value"], "--env"),
        (
            &["--env", "A=1", "--env", "A=2"],
            "--env: A is given more than once",
        ),
        (&["--env", "A=line\nbreak"], "--env"),
        (&["--job-timeout", "0"], "--job-timeout"),
        (&["--job-timeout", "2147483648"], "--job-timeout"),
        (&["--iter", "0"], "--iter"),
        (&["--backdate", "yesterday"], "--backdate"),
        (&too_many, "--entrypoint: at most 64"),
        (&too_long_cmd, "the command (after `--`): at most 64"),
    ];
    for (args, flag) in bad {
        let run = create_job(&server, 1, args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
        assert!(run.stderr.starts_with("error: "), "{args:?}: {run:?}");
        assert!(run.stderr.contains(flag), "{flag:?} not in {run:?}");
    }
    // A required flag missing.
    let digest1 = digest(1);
    for missing in ["--registry", "--project", "--digest"] {
        let mut args = vec!["job", "create"];
        for (flag, value) in [
            ("--registry", REGISTRY),
            ("--project", PROJECT),
            ("--digest", &digest1),
        ] {
            if flag != missing {
                args.extend([flag, value]);
            }
        }
        let run = bencher(&server, &args).await;
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(missing), "{missing}: {run:?}");
    }
    let listed = bencher(&server, &["job", "list"]).await;
    assert_eq!(listed.total(), 0, "nothing was created");

    // What only the server knows: shown as every API error is.
    let run = create_job(&server, 1, &["--spec", "no-such-spec"]).await;
    run.api_error("404 Not Found", "NotFound");
    let archived = create_spec(&admin, new_spec("Old")).await;
    bencher(&server, &["spec", "update", &archived.slug, "--archive"])
        .await
        .json();
    let run = create_job(&server, 1, &["--spec", &archived.slug]).await;
    run.api_error("409 Conflict", "Conflict");

    let bare = TestServer::start().await;
    let run = create_job(&bare, 1, &[]).await;
    run.api_error("409 Conflict", "Conflict")
        .mentions("no fallback spec exists");
}

#[tokio::test]
async fn list_filters_by_status_runner_and_spec_and_pages() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (fallback, runner, key) = fallback_runner(&admin, "Rack").await;
    let other = create_spec(&admin, new_spec("Graviton")).await;
    // Jobs 1..=5 on the fallback spec, 6 and 7 on the other.
    let mut jobs = Vec::new();
    for n in 1..=7 {
        let spec = if n <= 5 { &fallback.slug } else { &other.slug };
        jobs.push(uuid(
            &create_job(&server, n, &["--spec", spec]).await.json(),
        ));
    }
    // The runner takes job 1 and completes it; job 2 and 6 are canceled.
    let mut agent = Agent::connect(&server, &runner.slug, &key).await.unwrap();
    let taken = agent.take_job(5).await.unwrap();
    assert_eq!(taken.uuid.to_string(), jobs[0]);
    agent
        .complete(taken.uuid, vec![output(0, "ok")])
        .await
        .unwrap();
    agent.expect_ack(taken.uuid).await.unwrap();
    for n in [2, 6] {
        bencher(&server, &["job", "cancel", &jobs[n - 1]])
            .await
            .json();
    }
    // The runner takes job 3 and keeps it running.
    let running = agent.take_job(5).await.unwrap();
    assert_eq!(running.uuid.to_string(), jobs[2]);

    let run = bencher(&server, &["job", "list"]).await;
    assert_eq!(digests(&run), [1, 2, 3, 4, 5, 6, 7], "oldest first");
    assert_eq!(run.total(), 7);
    assert!(!run.stdout.contains("X-Total-Count"), "stdout stays JSON");

    let run = bencher(&server, &["job", "list", "--status", "pending"]).await;
    assert_eq!(digests(&run), [4, 5, 7]);
    assert_eq!(run.total(), 3);
    let run = bencher(&server, &["job", "ls", "--status", "canceled,completed"]).await;
    assert_eq!(digests(&run), [1, 2, 6]);
    let run = bencher(
        &server,
        &[
            "job",
            "list",
            "--status",
            "running",
            "--status",
            "completed",
        ],
    )
    .await;
    assert_eq!(digests(&run), [1, 3]);

    let run = bencher(&server, &["job", "list", "--spec", &other.slug]).await;
    assert_eq!(digests(&run), [6, 7]);
    let run = bencher(&server, &["job", "list", "--runner", &runner.slug]).await;
    assert_eq!(digests(&run), [1, 3], "the jobs the runner claimed");
    let run = bencher(
        &server,
        &[
            "job",
            "list",
            "--runner",
            &runner.uuid.to_string(),
            "--status",
            "running",
        ],
    )
    .await;
    assert_eq!(digests(&run), [3]);

    let run = bencher(
        &server,
        &["job", "list", "--sort", "created", "--direction", "desc"],
    )
    .await;
    assert_eq!(digests(&run), [7, 6, 5, 4, 3, 2, 1]);
    let run = bencher(&server, &["job", "list", "--per-page", "3", "--page", "3"]).await;
    assert_eq!(digests(&run), [7]);
    assert_eq!(run.total(), 7, "the total counts every page");
    let run = bencher(&server, &["job", "list", "--all", "--per-page", "2"]).await;
    assert_eq!(digests(&run), [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(run.total(), 7);

    let run = bencher(&server, &["job", "list", "--runner", "nobody"]).await;
    run.api_error("404 Not Found", "NotFound");
    for args in [
        &["job", "list", "--status", "done"][..],
        &["job", "list", "--status", "pending,"],
        &["job", "list", "--runner", "Not A Slug"],
        &["job", "list", "--sort", "name"],
        &["job", "list", "--per-page", "0"],
        &["job", "list", "--all", "--page", "2"],
    ] {
        let run = bencher(&server, args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
        let flag = args.iter().rfind(|a| a.starts_with("--")).unwrap();
        assert!(run.stderr.contains(flag), "{flag} not in {run:?}");
    }
}

/// One iteration's output with everything the agent may report.
fn full_output(exit_code: i32, stdout: &str, stderr: &str) -> JsonIterationOutput {
    JsonIterationOutput {
        exit_code,
        stdout: Some(stdout.to_owned()),
        stderr: Some(stderr.to_owned()),
        output: Some([("/out/a.json".to_owned(), "{\"ns\": 12}".to_owned())].into()),
    }
}

#[tokio::test]
async fn view_shows_a_job_and_its_results_as_json_and_text() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Rack").await;
    let mut agent = Agent::connect(&server, &runner.slug, &key).await.unwrap();

    // Pending: no output yet.
    let pending = create_job(&server, 1, &["--image", "bench:v1", "--", "cargo", "bench"]).await;
    let pending = uuid(&pending.json());
    let run = bencher(&server, &["job", "view", &pending]).await;
    let viewed = run.json();
    assert_eq!(viewed["status"], "pending");
    assert!(viewed["output"].is_null(), "{viewed}");
    let run = bencher(&server, &["job", "get", &pending, "--format", "text"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with(&format!("Job {pending}: pending\n")),
        "{run:?}"
    );
    assert!(run.stdout.contains("  Image:      bench:v1\n"), "{run:?}");
    assert!(
        run.stdout.contains("  Command:    cargo bench\n"),
        "{run:?}"
    );
    assert!(run.stdout.ends_with("No results yet.\n"), "{run:?}");

    // Completed: each iteration's exit code, stdout, stderr and files.
    let taken = agent.take_job(5).await.unwrap();
    assert_eq!(taken.uuid.to_string(), pending);
    let results = vec![
        full_output(0, "bench a: 12 ns\nbench b: 30 ns", "warming up"),
        full_output(0, "bench a: 11 ns\n", ""),
    ];
    agent.complete(taken.uuid, results).await.unwrap();
    agent.expect_ack(taken.uuid).await.unwrap();
    let done = bencher(&server, &["job", "view", &pending]).await.json();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["runner"], runner.uuid.to_string());
    let results = done["output"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{done}");
    assert_eq!(results[0]["exit_code"], 0);
    assert_eq!(results[0]["stdout"], "bench a: 12 ns\nbench b: 30 ns");
    assert_eq!(results[0]["stderr"], "warming up");
    assert_eq!(results[0]["output"]["/out/a.json"], "{\"ns\": 12}");
    assert!(done["output"]["error"].is_null(), "{done}");
    let run = bencher(&server, &["job", "view", &pending, "--format", "text"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let expected = "\
Iteration 1 of 2: exit code 0
  stdout:
    bench a: 12 ns
    bench b: 30 ns
  stderr:
    warming up
  file /out/a.json:
    {\"ns\": 12}
Iteration 2 of 2: exit code 0
  stdout:
    bench a: 11 ns
  stderr: (empty)
  file /out/a.json:
    {\"ns\": 12}
";
    assert!(run.stdout.ends_with(expected), "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("  Runner:     {}\n", runner.uuid)),
        "{run:?}"
    );
    assert!(run.stdout.contains("  Completed: "), "{run:?}");

    // Failed: the error, and the iterations before it.
    let failing = uuid(&create_job(&server, 2, &[]).await.json());
    let taken = agent.take_job(5).await.unwrap();
    assert_eq!(taken.uuid.to_string(), failing);
    agent
        .fail(taken.uuid, vec![output(3, "half")], "out of memory")
        .await
        .unwrap();
    agent.expect_ack(taken.uuid).await.unwrap();
    let failed = bencher(&server, &["job", "view", &failing]).await.json();
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["output"]["error"], "out of memory");
    assert_eq!(failed["output"]["results"][0]["exit_code"], 3);
    let run = bencher(&server, &["job", "view", &failing, "--format", "text"]).await;
    assert!(
        run.stdout.contains(&format!("Job {failing}: failed\n")),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(
            "Error: out of memory\nIteration 1 of 1: exit code 3\n  stdout:\n    half\n  stderr: (none)\n"
        ),
        "{run:?}"
    );

    // Canceled while pending: no results.
    let canceled = uuid(&create_job(&server, 3, &[]).await.json());
    bencher(&server, &["job", "cancel", &canceled]).await.json();
    let viewed = bencher(&server, &["job", "view", &canceled]).await.json();
    assert_eq!(viewed["status"], "canceled");
    let run = bencher(&server, &["job", "view", &canceled, "--format", "text"]).await;
    assert!(
        run.stdout
            .starts_with(&format!("Job {canceled}: canceled\n")),
        "{run:?}"
    );
    assert!(!run.stdout.contains("Iteration"), "{run:?}");

    // An unknown job is the API's 404; a job is named by its UUID.
    let run = bencher(
        &server,
        &["job", "view", "6c1e0c6e-5d38-4a41-9e8a-0b8f0f4c5a13"],
    )
    .await;
    run.api_error("404 Not Found", "NotFound");
    let run = bencher(&server, &["job", "view", "my-job"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("<JOB>") && run.stderr.contains("UUID"),
        "{run:?}"
    );
    let run = bencher(&server, &["job", "view", &canceled, "--format", "yaml"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--format"), "{run:?}");
}

#[tokio::test]
async fn cancel_ends_a_job_once_and_again_is_a_conflict() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Rack").await;

    // A pending job is canceled at once.
    let pending = uuid(&create_job(&server, 1, &[]).await.json());
    let canceled = bencher(&server, &["job", "cancel", &pending]).await.json();
    assert_eq!(canceled["uuid"], pending);
    assert_eq!(canceled["status"], "canceled");
    assert!(canceled["completed"].is_string(), "{canceled}");
    let viewed = bencher(&server, &["job", "view", &pending]).await.json();
    assert_eq!(viewed["status"], "canceled");

    // Again: the API's 409, shown as every API error is.
    let run = bencher(&server, &["job", "cancel", &pending]).await;
    run.api_error("409 Conflict", "Conflict");

    // A running job: its runner is told, and it ends canceled.
    let running = uuid(&create_job(&server, 2, &[]).await.json());
    let mut agent = Agent::connect(&server, &runner.slug, &key).await.unwrap();
    let taken = agent.take_job(5).await.unwrap();
    assert_eq!(taken.uuid.to_string(), running);
    let answer = bencher(&server, &["job", "cancel", &running]).await.json();
    assert_eq!(answer["uuid"], running);
    agent.expect_cancel().await.unwrap();
    agent.canceled(taken.uuid).await.unwrap();
    agent.expect_ack(taken.uuid).await.unwrap();
    let viewed = bencher(&server, &["job", "view", &running]).await.json();
    assert_eq!(viewed["status"], "canceled");

    let run = bencher(
        &server,
        &["job", "cancel", "6c1e0c6e-5d38-4a41-9e8a-0b8f0f4c5a13"],
    )
    .await;
    run.api_error("404 Not Found", "NotFound");
    let run = bencher(&server, &["job", "cancel", "not-a-uuid"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("<JOB>"), "{run:?}");
}

#[tokio::test]
async fn runner_list_shows_each_runners_status_and_filters_by_it() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (spec, busy, busy_key) = fallback_runner(&admin, "Busy").await;
    let (idle, idle_key) = runner_with_spec(&admin, "Idle", &spec.slug).await;
    let (offline, _) = runner_with_spec(&admin, "Offline", &spec.slug).await;

    let mut busy_agent = Agent::connect(&server, &busy.slug, &busy_key)
        .await
        .unwrap();
    create_job(&server, 1, &[]).await.json();
    busy_agent.take_job(5).await.unwrap();
    let idle_agent = Agent::connect(&server, &idle.slug, &idle_key)
        .await
        .unwrap();

    let statuses = |run: &Run| -> Vec<(String, String)> {
        run.json()
            .as_array()
            .expect("an array")
            .iter()
            .map(|r| {
                let field = |name: &str| r[name].as_str().unwrap_or("(none)").to_owned();
                (field("slug"), field("status"))
            })
            .collect()
    };
    let expected = vec![
        (busy.slug.clone(), "busy".to_owned()),
        (idle.slug.clone(), "idle".to_owned()),
        (offline.slug.clone(), "offline".to_owned()),
    ];
    // The channel's status is recorded just after the upgrade is answered.
    let listed = eventually(Duration::from_secs(5), || async {
        let run = bencher(&server, &["runner", "list"]).await;
        (statuses(&run) == expected).then_some(run)
    })
    .await;
    if listed.is_err() {
        let run = bencher(&server, &["runner", "list"]).await;
        assert_eq!(statuses(&run), expected, "{run:?}");
    }

    for (status, slug) in [
        ("busy", &busy.slug),
        ("idle", &idle.slug),
        ("offline", &offline.slug),
    ] {
        let run = bencher(&server, &["runner", "list", "--status", status]).await;
        assert_eq!(run.slugs(), [slug.as_str()], "{status}");
        assert_eq!(run.total(), 1, "{status}");
    }

    // The idle runner goes offline when its channel closes.
    idle_agent.close().await.unwrap();
    let gone = eventually(Duration::from_secs(5), || async {
        let run = bencher(&server, &["runner", "list", "--status", "offline"]).await;
        (run.slugs().len() == 2).then_some(run.slugs())
    })
    .await
    .unwrap();
    assert_eq!(gone, [idle.slug.as_str(), offline.slug.as_str()]);

    let run = bencher(&server, &["runner", "list", "--status", "asleep"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--status"), "{run:?}");
}
