//! The verbs the tests share: make and read runners, specs and jobs
//! through the SDK, and wait for what happens eventually.

use runners_sdk::types::{
    Architecture, JsonNewRunner, JsonNewSpec, JsonRunner, JsonSpec, JsonUpdateRunner,
    JsonUpdateSpec, OperatingSystem,
};
use runners_sdk::{Client, Error, MAX_PER_PAGE, ResponseValue, every_page, types};

use crate::TestServer;

const RUNNER_KEY_PREFIX: &str = "bencher_runner_";

/// A new runner's body.
pub fn new_runner(name: &str, slug: Option<&str>) -> JsonNewRunner {
    JsonNewRunner {
        name: name.parse().expect("a valid name"),
        slug: slug.map(|s| s.parse().expect("a valid slug")),
    }
}

/// Creates a runner and views it: the runner and its token.
pub async fn create(client: &Client, name: &str, slug: Option<&str>) -> (JsonRunner, String) {
    let created = client
        .runners_post()
        .body(new_runner(name, slug))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created = created.into_inner();
    let runner = view(client, &created.uuid.to_string()).await;
    (runner, created.key)
}

/// Views a runner (by slug or UUID), which must exist.
pub async fn view(client: &Client, runner: &str) -> JsonRunner {
    client
        .runner_get()
        .runner(runner)
        .send()
        .await
        .unwrap()
        .into_inner()
}

/// Archives (or unarchives) a runner.
pub async fn archive(client: &Client, runner: &str, archived: bool) -> JsonRunner {
    client
        .runner_patch()
        .runner(runner)
        .body(JsonUpdateRunner {
            archived: Some(archived),
            name: None,
            slug: None,
        })
        .send()
        .await
        .unwrap()
        .into_inner()
}

/// A heartbeat of `runner` sent with `token`.
pub async fn beat(
    server: &TestServer,
    token: &str,
    runner: &str,
) -> Result<ResponseValue<JsonRunner>, Error<types::Error>> {
    server
        .client(token)
        .runner_heartbeat_post()
        .runner(runner)
        .send()
        .await
}

/// The slugs of `runners`, in order.
pub fn slugs(runners: &[JsonRunner]) -> Vec<&str> {
    runners.iter().map(|r| r.slug.as_str()).collect()
}

/// Asserts that `key` has the form of a runner key (Bencher v0.6.4's:
/// the prefix and 30 letters and digits).
pub fn assert_runner_key(key: &str) {
    let rest = key
        .strip_prefix(RUNNER_KEY_PREFIX)
        .expect("runner key prefix");
    assert_eq!(rest.len(), 30, "{key}");
    assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
}

/// Every runner (on every page), and the total count.
pub async fn list_all(client: &Client, archived: bool) -> (Vec<JsonRunner>, u64) {
    let (runners, total) = every_page(1, MAX_PER_PAGE, |page, per_page| {
        client
            .runners_get()
            .archived(archived)
            .page(page)
            .per_page(per_page)
            .send()
    })
    .await
    .unwrap();
    (runners, total.expect("X-Total-Count"))
}

/// A new spec's body: a 4-CPU x86_64 Linux machine named `name`.
pub fn new_spec(name: &str) -> JsonNewSpec {
    JsonNewSpec {
        name: name.parse().expect("a valid name"),
        slug: None,
        architecture: Architecture::X8664,
        os: OperatingSystem::Linux,
        cpu: 4.try_into().unwrap(),
        memory: (16u64 << 30).try_into().unwrap(),
        disk: (100u64 << 30).try_into().unwrap(),
        network: false,
        sandbox: None,
        fallback: false,
    }
}

/// Creates a spec from `body`.
pub async fn create_spec(client: &Client, body: JsonNewSpec) -> JsonSpec {
    let created = client.specs_post().body(body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    created.into_inner()
}

/// Applies `update` to a spec.
pub async fn patch_spec(
    client: &Client,
    spec: &str,
    update: JsonUpdateSpec,
) -> Result<ResponseValue<JsonSpec>, Error<types::Error>> {
    client.spec_patch().spec(spec).body(update).send().await
}

/// Every spec (on every page, archived ones too).
pub async fn all_specs(client: &Client) -> Vec<JsonSpec> {
    let (specs, _) = every_page(1, MAX_PER_PAGE, |page, per_page| {
        client
            .specs_get()
            .archived(true)
            .page(page)
            .per_page(per_page)
            .send()
    })
    .await
    .unwrap();
    specs
}

// ---- jobs ----

/// A test image digest: `sha256:` and `n` in 64 hex digits.
pub fn digest(n: u64) -> String {
    format!("sha256:{n:064x}")
}

/// A new job's body: an image on a registry at 127.0.0.1, for `spec`
/// (absent: the fallback spec), with this priority.
pub fn new_job(spec: Option<&str>, priority: i32) -> types::JsonNewJob {
    let mut body = serde_json::json!({
        "registry": "http://127.0.0.1:5000",
        "project": "0f5ad5b1-4a3c-4c6f-9d3e-3e0b5c2a7d11",
        "digest": digest(1),
        "cmd": ["bench", "--quick"],
        "timeout": 60,
        "priority": priority,
    });
    if let Some(spec) = spec {
        body["spec"] = spec.into();
    }
    serde_json::from_value(body).expect("a valid new job")
}

/// Creates a job from `body`.
pub async fn create_job(client: &Client, body: types::JsonNewJob) -> types::JsonJob {
    let created = client.jobs_post().body(body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    created.into_inner()
}

/// One job, which must exist.
pub async fn job(client: &Client, job: uuid::Uuid) -> types::JsonJob {
    client.job_get().job(job).send().await.unwrap().into_inner()
}

/// Every job (on every page) in one of `statuses` (comma-separated; all
/// with `None`), oldest first.
pub async fn all_jobs(client: &Client, statuses: Option<&str>) -> Vec<types::JsonJob> {
    let (jobs, _) = every_page(1, MAX_PER_PAGE, |page, per_page| {
        let mut list = client.jobs_get().page(page).per_page(per_page);
        if let Some(statuses) = statuses {
            list = list.status(statuses.parse::<types::StatusList>().unwrap());
        }
        list.send()
    })
    .await
    .unwrap();
    jobs
}

/// Every job, as [`all_jobs`], each read through its own view: with its
/// output, which lists leave out.
pub async fn all_jobs_in_full(client: &Client) -> Vec<types::JsonJob> {
    let mut jobs = Vec::new();
    for listed in all_jobs(client, None).await {
        jobs.push(job(client, listed.uuid).await);
    }
    jobs
}

/// Adds spec `spec` to runner `runner`.
pub async fn add_spec(client: &Client, runner: &str, spec: &str) {
    let add = types::JsonNewRunnerSpec {
        spec: spec.parse().unwrap(),
    };
    let added = client.runner_specs_post().runner(runner).body(add);
    added.send().await.unwrap();
}

/// Creates a runner that has spec `spec`: the runner and its key.
pub async fn runner_with_spec(client: &Client, name: &str, spec: &str) -> (JsonRunner, String) {
    let (runner, key) = create(client, name, None).await;
    add_spec(client, &runner.slug, spec).await;
    (view(client, &runner.slug).await, key)
}

/// Polls `check` every 20 ms until it gives `Some`, for at most `within`:
/// for what the server records just after it answers (a channel's status).
pub async fn eventually<T, F, Fut>(within: std::time::Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(found) = check().await {
            return Ok(found);
        }
        anyhow::ensure!(start.elapsed() < within, "not so within {within:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A fallback spec, and a runner with it: the spec, the runner, its key.
pub async fn fallback_runner(client: &Client, name: &str) -> (JsonSpec, JsonRunner, String) {
    let spec = create_spec(
        client,
        JsonNewSpec {
            fallback: true,
            ..new_spec(&format!("{name} box"))
        },
    )
    .await;
    let (runner, key) = runner_with_spec(client, name, &spec.slug).await;
    (spec, runner, key)
}

/// Creates project `slug` in the organization, as an admin.
pub async fn project(admin: &runners_sdk::Client, slug: &str) -> types::JsonProject {
    let body: types::JsonNewProject =
        serde_json::from_value(serde_json::json!({"name": slug, "slug": slug})).unwrap();
    let made = admin
        .org_project_post()
        .organization("default")
        .body(body)
        .send()
        .await;
    let made = made.unwrap();
    assert_eq!(made.status(), 201);
    made.into_inner()
}

/// A project key of `project` (the key, and its UUID), with `ttl` seconds.
pub async fn project_key(
    admin: &runners_sdk::Client,
    project: &str,
    ttl: Option<u32>,
) -> (String, uuid::Uuid) {
    let body: types::JsonNewKey =
        serde_json::from_value(serde_json::json!({"name": "ci", "ttl": ttl})).unwrap();
    let made = admin
        .proj_key_post()
        .project(project)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let made = made.into_inner();
    assert!(
        made.key.starts_with("bencher_run_") && made.key.len() == 42,
        "{}",
        made.key
    );
    (made.key, made.uuid)
}

/// A run's body: `job` (JSON) or `results` (BMF lines), to `project`
/// (default: the key's).
pub fn new_run(
    project: Option<&str>,
    job: Option<serde_json::Value>,
    results: &[String],
) -> types::JsonNewRun {
    serde_json::from_value(serde_json::json!({
        "project": project, "branch": "main", "testbed": "ci",
        "start_time": "2026-12-07T10:00:00Z", "end_time": "2026-12-07T10:01:00Z",
        "results": results, "job": job, "settings": {"adapter": "json"},
        "context": {"bencher.dev/v0/repo/name": "x"}, "thresholds": {}, "start_point": {},
    }))
    .unwrap()
}
