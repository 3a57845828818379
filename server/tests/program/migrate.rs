//! `runners-server migrate --from runners.db --to postgres://…`: a
//! registry made through the API on SQLite, copied into an empty
//! PostgreSQL database, reads the same there, and its runner keys and API
//! tokens keep working. Needs `RUNNERS_TEST_PG` (`.ci/postgres -- cargo
//! test -p runners-server --test program migrate`); without it the test
//! says it was skipped. The refusals that need no PostgreSQL always run.

use std::path::Path;
use std::process::Child;

use runners_sdk::types::{JobStatus, JsonNewSpec, JsonUpdateSpec};
use runners_sdk::{Client, total_count};
use runners_tests::agent::{Agent, output};
use runners_tests::{
    add_spec, all_jobs, all_specs, archive, create_job, create_spec, list_all, new_job, new_spec,
    patch_spec, runner_with_spec,
};
use serde_json::Value;

use super::serving::{Log, Serving, block_on, run, spawn_with, stderr, stdout, terminate};

/// Everything the API and the program show of a registry, as JSON (the
/// SDK's types have no `PartialEq`), with each list's X-Total-Count.
#[derive(Debug, PartialEq)]
struct Views {
    runners: Value,
    active_total: u64,
    all_total: u64,
    specs: Value,
    runner_specs: Value,
    jobs: Value,
    jobs_total: Option<u64>,
    one_job: Value,
    runner_jobs: Value,
    audit: String,
    tokens: String,
}

async fn views(client: &Client, db: &str) -> Views {
    let (runners, all_total) = list_all(client, true).await;
    let (_, active_total) = list_all(client, false).await;
    let mut runner_specs = Vec::new();
    let mut runner_jobs = Vec::new();
    for runner in &runners {
        let specs = client
            .runner_specs_get()
            .runner(runner.slug.as_str())
            .send()
            .await
            .unwrap()
            .into_inner();
        runner_specs.push(serde_json::to_value(specs).unwrap());
        let jobs = client
            .runner_jobs_get()
            .runner(runner.slug.as_str())
            .send()
            .await
            .unwrap()
            .into_inner();
        runner_jobs.push(serde_json::to_value(jobs).unwrap());
    }
    let jobs = all_jobs(client, None).await;
    let first = client.jobs_get().per_page(1).send().await.unwrap();
    let one_job = runners_tests::job(client, jobs[0].uuid).await;
    let program = |args: &[&str]| {
        let output = run(args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout(&output)
    };
    Views {
        runners: serde_json::to_value(&runners).unwrap(),
        active_total,
        all_total,
        specs: serde_json::to_value(all_specs(client).await).unwrap(),
        runner_specs: runner_specs.into(),
        jobs: serde_json::to_value(&jobs).unwrap(),
        jobs_total: total_count(&first),
        one_job: serde_json::to_value(one_job).unwrap(),
        runner_jobs: runner_jobs.into(),
        audit: program(&["audit", "--json", "--db", db]),
        tokens: program(&["token", "list", "--db", db]),
    }
}

/// `method path` with `token` on the server at `url`: the status.
fn status(url: &str, method: &str, path: &str, token: &str) -> u16 {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let request = reqwest::Client::new()
        .request(method, format!("{url}{path}"))
        .bearer_auth(token);
    block_on(async { request.send().await.unwrap().status().as_u16() })
}

/// `POST /v0/runners/{runner}/heartbeat` with `key`: the status.
fn heartbeat(url: &str, runner: &str, key: &str) -> u16 {
    status(url, "POST", &format!("/v0/runners/{runner}/heartbeat"), key)
}

/// `GET /v0/runners` with `token`: the status.
fn list_status(url: &str, token: &str) -> u16 {
    status(url, "GET", "/v0/runners", token)
}

/// The program serving a PostgreSQL database, killed on drop.
struct OnPg {
    child: Child,
    url: String,
    banner: Vec<String>,
    log: Log,
}

impl OnPg {
    fn start(db: &str) -> Self {
        let (child, url, banner, log) = spawn_with(Path::new(db), "info", &[]);
        Self {
            child,
            url,
            banner,
            log,
        }
    }
}

impl Drop for OnPg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rows per table `migrate` printed.
fn counts(printed: &str) -> Vec<(String, u64)> {
    let mut lines = printed.lines();
    assert_eq!(lines.next(), Some("TABLE\tROWS"), "{printed}");
    lines
        .map(|l| {
            let (table, rows) = l.split_once('\t').expect("TABLE\\tROWS");
            (table.to_owned(), rows.parse().expect("a count"))
        })
        .collect()
}

#[test]
fn migrate_copies_a_registry_into_postgresql_where_keys_and_tokens_keep_working() {
    let Ok(admin_url) = std::env::var("RUNNERS_TEST_PG") else {
        eprintln!(
            "SKIPPED: set RUNNERS_TEST_PG to run migrate_copies_a_registry_into_postgresql… \
             against PostgreSQL (`.ci/postgres -- cargo test -p runners-server --test program \
             migrate`)"
        );
        return;
    };

    // ---- a registry on SQLite, made through the API ----
    let mut sqlite = Serving::start();
    let admin_token = sqlite.bootstrap_token().unwrap();
    let admin = sqlite.admin();
    let db = sqlite.db();
    let db_arg = db.to_str().unwrap();
    let created = run(&["token", "create", "--user", "ci", "--admin", "--db", db_arg]);
    assert!(created.status.success(), "{}", stderr(&created));
    let ci_token = stdout(&created).trim().to_owned();
    let created = run(&["token", "create", "--user", "reader", "--db", db_arg]);
    let reader_token = stdout(&created).trim().to_owned();

    let (keys, old_key, done, released) = block_on(async {
        let fallback = create_spec(
            &admin,
            JsonNewSpec {
                fallback: true,
                ..new_spec("Migrated box")
            },
        )
        .await;
        let other = create_spec(&admin, new_spec("Other box")).await;
        let retired = create_spec(&admin, new_spec("Retired box")).await;
        let archived = JsonUpdateSpec {
            archived: Some(true),
            ..Default::default()
        };
        patch_spec(&admin, &retired.slug, archived).await.unwrap();
        let mut keys = Vec::new();
        for i in 0..5 {
            let (runner, key) =
                runner_with_spec(&admin, &format!("Runner {i}"), &fallback.slug).await;
            keys.push((runner.slug, key));
        }
        add_spec(&admin, &keys[0].0, &other.slug).await;
        archive(&admin, &keys[4].0, true).await;
        // A rotated key: the old one is refused, on both engines.
        let old_key = std::mem::take(&mut keys[1].1);
        keys[1].1 = admin
            .runner_key_post()
            .runner(keys[1].0.as_str())
            .send()
            .await
            .unwrap()
            .into_inner()
            .key;
        for priority in 0..4 {
            create_job(&admin, new_job(None, priority)).await;
        }
        create_job(&admin, new_job(Some(&other.slug), 0)).await;
        // One job run to its end by runner 1 (its new key): the best one.
        let mut agent = Agent::connect_to(&sqlite.url, &keys[1].0, &keys[1].1)
            .await
            .unwrap();
        let job = agent.take_job(1).await.unwrap();
        agent
            .complete(job.uuid, vec![output(0, "migrated")])
            .await
            .unwrap();
        agent.expect_ack(job.uuid).await.unwrap();
        agent.close().await.unwrap();
        // Runner 2 is given the next (priority 2) and gone before `running`:
        // it is queued again, taken back from runner 2 (job_releases).
        let mut gone = Agent::connect_to(&sqlite.url, &keys[2].0, &keys[2].1)
            .await
            .unwrap();
        gone.ready(1).await.unwrap();
        let released = gone.expect_job().await.unwrap().uuid;
        gone.close().await.unwrap();
        (keys, old_key, job.uuid, released)
    });
    assert_eq!(heartbeat(&sqlite.url, &keys[2].0, &keys[2].1), 200);
    assert_eq!(heartbeat(&sqlite.url, &keys[1].0, &old_key), 401);
    // The channel's end is recorded just after the agent closes it.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = block_on(views(&admin, db_arg));
    let completed = block_on(runners_tests::job(&admin, done));
    assert_eq!(completed.status, JobStatus::Completed);
    assert!(sqlite.terminate().success());

    // ---- migrate ----
    let target = block_on(runners_server::store::pg::fresh_database(&admin_url)).unwrap();
    let migrated = run(&["migrate", "--from", db_arg, "--to", &target]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let copied = counts(&stdout(&migrated));
    let tables: Vec<&str> = copied.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        tables,
        [
            "users",
            "api_tokens",
            "signing_key",
            "registry_keys",
            "specs",
            "runners",
            "runner_specs",
            "organization",
            "projects",
            "api_keys",
            "project_names",
            "jobs",
            "job_releases",
            "reports",
            "audit"
        ]
    );
    let rows = |table: &str| copied.iter().find(|(t, _)| t == table).unwrap().1;
    assert_eq!(rows("users"), 3, "admin, ci, reader");
    assert_eq!(rows("registry_keys"), 1, "the file's key, made at open");
    assert_eq!(rows("api_tokens"), 3);
    assert_eq!(rows("signing_key"), 1);
    assert_eq!(rows("specs"), 3);
    assert_eq!(rows("runners"), 5);
    assert_eq!(rows("runner_specs"), 6);
    assert_eq!(rows("jobs"), 5);
    assert_eq!(rows("job_releases"), 1);
    // The submitter side has no API yet: its tables are copied empty (the
    // store's own test, `store::pg::tests::runs`, copies them full).
    assert_eq!(rows("organization"), 1);
    for table in ["projects", "api_keys", "project_names", "reports"] {
        assert_eq!(rows(table), 0, "{table}");
    }
    assert!(rows("audit") >= 20, "{copied:?}");

    // ---- the same registry on PostgreSQL ----
    let mut pg = OnPg::start(&target);
    assert!(
        !pg.banner.iter().any(|l| l.starts_with("eyJ")),
        "an admin exists: {:?}",
        pg.banner
    );
    let on_pg = runners_sdk::client_with_token(&pg.url, &admin_token).unwrap();
    let after = block_on(views(&on_pg, &target));
    assert_eq!(after, before);
    // The jobs' counts that the metrics read (their trigger was off while
    // copying) were recounted: the same as the jobs by status.
    let (counted, jobs) = block_on(async {
        let (client, connection) = tokio_postgres::connect(&target, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let pairs = async |sql: &str| {
            let rows = client.query(sql, &[]).await.unwrap();
            let pairs = rows
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)));
            pairs
                .filter(|(_, n)| *n > 0)
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let counted = "SELECT key, sum(value::bigint)::bigint FROM job_counts, \
             jsonb_each_text(to_jsonb(job_counts) - 'slot') GROUP BY key";
        let jobs = "SELECT status, count(*) FROM jobs GROUP BY status";
        (pairs(counted).await, pairs(jobs).await)
    });
    assert_eq!(counted, jobs);
    assert_eq!(counted.values().sum::<i64>(), 5, "{counted:?}");

    // Every API token: the bootstrap admin's, and those made by the program.
    assert_eq!(list_status(&pg.url, &admin_token), 200);
    assert_eq!(list_status(&pg.url, &ci_token), 200);
    assert_eq!(list_status(&pg.url, &reader_token), 403, "not an admin's");
    assert_eq!(list_status(&pg.url, "not-a-token"), 401);
    // Every runner key (an archived runner's is refused as on SQLite), and
    // never the one rotated away.
    for (slug, key) in &keys[..4] {
        assert_eq!(heartbeat(&pg.url, slug, key), 200, "{slug}");
    }
    assert_eq!(heartbeat(&pg.url, &keys[1].0, &old_key), 401);
    // The channel too: a pending job, the best of the fallback spec's.
    block_on(async {
        let mut agent = Agent::connect_to(&pg.url, &keys[3].0, &keys[3].1)
            .await
            .unwrap();
        let job = agent.take_job(1).await.unwrap();
        let job = runners_tests::job(&on_pg, job.uuid).await;
        assert_eq!(job.priority, 2, "priority 3 was completed on SQLite");
        assert_eq!(job.uuid, released);
        // Runner 2's late report on it is acknowledged and dropped, as on
        // SQLite: the record that it was taken back was copied.
        let mut late = Agent::connect_to(&pg.url, &keys[2].0, &keys[2].1)
            .await
            .unwrap();
        late.complete(released, vec![output(0, "late")])
            .await
            .unwrap();
        late.expect_ack(released).await.unwrap();
        let job = runners_tests::job(&on_pg, released).await;
        assert_eq!(job.status, JobStatus::Running);
        late.close().await.unwrap();
        agent.close().await.unwrap();
    });
    // New rows take new ids (the sequences were set past the copied ones),
    // and the counts go on from the copied ones.
    let (active, all) = block_on(async {
        runners_tests::create(&on_pg, "Made on PostgreSQL", None).await;
        create_spec(&on_pg, new_spec("Made on PostgreSQL")).await;
        create_job(&on_pg, new_job(None, 0)).await;
        let (_, active) = list_all(&on_pg, false).await;
        let (_, all) = list_all(&on_pg, true).await;
        (active, all)
    });
    assert_eq!(
        (active, all),
        (before.active_total + 1, before.all_total + 1)
    );
    let created = run(&["token", "create", "--user", "later", "--db", &target]);
    assert!(created.status.success(), "{}", stderr(&created));

    // ---- a second migrate into the same database: refused, nothing changed ----
    let snapshot = block_on(views(&on_pg, &target));
    let again = run(&["migrate", "--from", db_arg, "--to", &target]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    let err = stderr(&again);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("error: the target database is not empty: table users has 4 row(s)"),
        "{err}"
    );
    assert_eq!(stdout(&again), "");
    assert_eq!(block_on(views(&on_pg, &target)), snapshot);
    let (exit, _) = terminate(&mut pg.child, std::time::Duration::from_secs(10));
    assert!(exit.success());
    let log = pg.log.lock().unwrap().join("\n");
    assert!(!log.contains(&admin_token), "no token in the log");
}

/// Refusals that need no PostgreSQL: a missing file (not created), a URL
/// that is not PostgreSQL's or does not parse, an unreachable server. One
/// `error:` line each, and never the password.
#[test]
fn migrate_refuses_a_missing_file_a_bad_url_and_an_unreachable_server() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let missing_arg = missing.to_str().unwrap();
    let unreachable = "postgres://runners:hunter2@127.0.0.1:1/runners";
    let output = run(&["migrate", "--from", missing_arg, "--to", unreachable]);
    super::assert_clear_failure(&output, "no such file");
    assert!(!missing.exists(), "the missing file was not created");

    let db = dir.path().join("runners.db");
    let db_arg = db.to_str().unwrap();
    let made = run(&["token", "create", "--user", "ci", "--db", db_arg]);
    assert!(made.status.success(), "{}", stderr(&made));
    let file = std::fs::read(&db).unwrap();
    for (to, needle) in [
        (unreachable, "cannot connect to PostgreSQL"),
        (
            "postgres://runners:hunter2@127.0.0.1:notaport/x",
            "not valid",
        ),
        (db_arg, "postgres://"),
    ] {
        let output = run(&["migrate", "--from", db_arg, "--to", to]);
        super::assert_clear_failure(&output, needle);
        assert!(!stderr(&output).contains("hunter2"), "{}", stderr(&output));
        assert_eq!(stdout(&output), "");
    }
    assert_eq!(std::fs::read(&db).unwrap(), file, "the file is untouched");
}
