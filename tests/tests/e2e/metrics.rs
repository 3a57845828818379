//! Prometheus metrics on their own listener, parsed by the Prometheus
//! project's own Python parser (`prometheus_client`'s OpenMetrics parser,
//! in CI's venv: `RUNNERS_TEST_PYTHON`): the counts match what the test
//! did, and the API's port never serves them.

use std::io::Write as _;
use std::process::{Command, Stdio};

use runners_tests::agent::Agent;
use runners_tests::*;

/// The Python with `prometheus_client`, or `None` (saying so).
fn python() -> Option<String> {
    let python = std::env::var("RUNNERS_TEST_PYTHON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/ci-venv/bin/python").to_owned()
    });
    let probe = Command::new(&python)
        .args(["-c", "import prometheus_client"])
        .output();
    if probe.is_ok_and(|o| o.status.success()) {
        return Some(python);
    }
    eprintln!("SKIPPED: the metrics test needs Python with prometheus_client (.ci/run's venv)");
    None
}

/// Every sample of `text`, as the OpenMetrics parser reads it:
/// `(name, labels, value)`.
fn parse(python: &str, text: &str) -> Vec<(String, serde_json::Value, f64)> {
    let script = "import json, sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        print(json.dumps([[s.name, s.labels, s.value] \
            for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]))";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not OpenMetrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn a_scrape_counts_what_was_done_and_the_api_port_never_serves_it() {
    let Some(python) = python() else { return };
    let server = TestServer::start().await;
    let admin = server.admin();
    let (spec, busy, busy_key) = fallback_runner(&admin, "busy").await;
    let (_idle, idle_key) = runner_with_spec(&admin, "idle", &spec.slug).await;
    let (_offline, _) = runner_with_spec(&admin, "offline", &spec.slug).await;
    let (archived, _) = create(&admin, "archived", None).await;
    archive(&admin, &archived.slug, true).await;
    let mut agent = Agent::connect(&server, &busy.slug, &busy_key)
        .await
        .unwrap();
    create_job(&admin, new_job(None, 0)).await;
    let taken = agent.take_job(5).await.unwrap();
    agent.start(taken.uuid).await.unwrap();
    // Waiting for a job of its spec: idle.
    let mut idle = Agent::connect(&server, "idle", &idle_key).await.unwrap();
    idle.ready(30).await.unwrap();
    // Two jobs of a spec no runner has: pending.
    let other = create_spec(&admin, new_spec("Other")).await;
    for _ in 0..2 {
        create_job(&admin, new_job(Some(&other.slug), 0)).await;
    }
    // A 401, counted under its operation.
    let refused = server.anonymous().runners_get().send().await;
    assert!(refused.is_err());

    let http = reqwest::Client::new();
    let scrape = http.get(server.metrics_url()).send().await.unwrap();
    assert_eq!(scrape.status(), 200);
    let kind = scrape.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let samples = parse(&python, &scrape.text().await.unwrap());
    let value = |name: &str, labels: serde_json::Value| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && *l == labels)
            .map(|(.., v)| *v)
            .unwrap_or_else(|| {
                let names: std::collections::BTreeSet<_> = samples.iter().map(|s| &s.0).collect();
                panic!("no {name} {labels} among {names:?}")
            })
    };
    use serde_json::json;
    assert_eq!(value("runners_runners", json!({"status": "busy"})), 1.0);
    assert_eq!(value("runners_runners", json!({"status": "idle"})), 1.0);
    assert_eq!(value("runners_runners", json!({"status": "offline"})), 1.0);
    assert_eq!(value("runners_jobs", json!({"status": "running"})), 1.0);
    assert_eq!(value("runners_jobs", json!({"status": "pending"})), 2.0);
    assert_eq!(
        value("runners_pending_jobs", json!({"spec": other.slug})),
        2.0
    );
    assert_eq!(value("runners_open_channels", json!({})), 2.0);
    assert_eq!(value("runners_job_dispatch_seconds_count", json!({})), 1.0);
    let created = json!({"operation": "runners_post", "status_class": "2xx"});
    assert_eq!(value("runners_http_requests_total", created), 4.0);
    let refused = json!({"operation": "runners_get", "status_class": "4xx"});
    assert_eq!(value("runners_http_requests_total", refused), 1.0);
    let latency = json!({"operation": "runners_post"});
    assert_eq!(
        value("runners_http_request_duration_seconds_count", latency),
        4.0
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value("runners_build_info", json!({"version": version})),
        1.0
    );

    // The engine's own: SQLite's writer, or PostgreSQL's pool.
    if server.on_postgres() {
        assert!(value("runners_pg_pool_connections", json!({})) >= 1.0);
        assert_eq!(value("runners_pg_listen_reconnects_total", json!({})), 0.0);
    } else {
        let writes = value("runners_sqlite_writes_total", json!({}));
        let commits = value("runners_sqlite_commits_total", json!({}));
        assert!(
            writes >= 10.0 && commits >= 1.0 && commits <= writes,
            "{writes} {commits}"
        );
        assert!(value("runners_sqlite_commit_seconds_total", json!({})) > 0.0);
        assert_eq!(
            value("runners_search_queue_drain_failures_total", json!({})),
            0.0
        );
    }

    assert!(value("runners_connections_open", json!({})) >= 1.0);
    assert!(value("runners_connections_accepted_total", json!({})) >= 3.0);
    assert_eq!(value("runners_connections_evicted_total", json!({})), 0.0);
    assert_eq!(value("runners_job_run_seconds_count", json!({})), 0.0);

    // A job that ends: its run is observed.
    agent
        .complete(taken.uuid, vec![runners_tests::agent::output(0, "done")])
        .await
        .unwrap();
    agent.expect_ack(taken.uuid).await.unwrap();
    let again = http.get(server.metrics_url()).send().await.unwrap();
    let samples = parse(&python, &again.text().await.unwrap());
    let find = |name: &str, labels: serde_json::Value| {
        let found = samples.iter().find(|(n, l, _)| n == name && *l == labels);
        found.map(|(.., v)| *v)
    };
    assert_eq!(find("runners_job_run_seconds_count", json!({})), Some(1.0));
    // A status no job has any more is 0, not its last value.
    assert_eq!(
        find("runners_jobs", json!({"status": "running"})),
        Some(0.0)
    );
    assert_eq!(
        find("runners_jobs", json!({"status": "claimed"})),
        Some(0.0)
    );
    assert_eq!(
        find("runners_jobs", json!({"status": "completed"})),
        Some(1.0)
    );
    assert_eq!(find("runners_jobs", json!({"status": "failed"})), Some(0.0));
    assert_eq!(find("runners_registry_counts_read", json!({})), Some(1.0));
    // Scrapes are not the API's requests.
    let unknown = samples
        .iter()
        .filter(|(_, l, _)| l["operation"] == "unknown");
    assert_eq!(unknown.count(), 0, "scrapes counted as requests");

    // The API's own port has no /metrics.
    let public = http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
}

/// The metrics' listener holds its connections as the API's port does:
/// past its limit, silent sockets are closed for newcomers, and a scrape
/// still gets through (idle sockets cannot exhaust the process' files).
#[tokio::test]
async fn silent_sockets_on_the_metrics_listener_are_evicted_and_a_scrape_gets_through() {
    use tokio::io::AsyncReadExt as _;
    let server = TestServer::start().await;
    let url = server.metrics_url();
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    let limit = runners_server::metrics::serve::MAX_CONNECTIONS;
    let mut silent = Vec::new();
    for _ in 0..limit * 2 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let scrape = reqwest::Client::new()
        .get(&url)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), 200);
    // Each silent socket is either closed by the server (EOF) or still open.
    let mut closed = 0;
    for socket in &mut silent {
        let mut byte = [0u8; 1];
        let read =
            tokio::time::timeout(std::time::Duration::from_millis(50), socket.read(&mut byte));
        if matches!(read.await, Ok(Ok(0)) | Ok(Err(_))) {
            closed += 1;
        }
    }
    assert!(closed > limit, "{closed} of {} closed", silent.len());
}
