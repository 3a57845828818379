//! The console in a real browser: Debian's Chromium driven by
//! `console/test/browser.mjs` (playwright-core through its executable
//! path; nothing downloads a browser) against a real server, while this
//! test plays the runner agent on a real WebSocket. The script asks for
//! what it needs the agent or the API to do with `STEP <name> <json>` lines
//! on its stdout and reads `OK <json>` on its stdin (its header says the
//! protocol). Screenshots of each page go to `target/console-shots/`.
//!
//! Needs Node with `console/node_modules` (`npm ci` in `console/`) and
//! Chromium (`/usr/bin/chromium`, or `CHROMIUM`): `.ci/run` installs both;
//! without them the test says SKIPPED. It runs on SQLite only (the pages
//! are the same on PostgreSQL, whose events `e2e/events.rs` covers).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use runners_tests::agent::{Agent, output};
use runners_tests::*;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// The agent's poll timeout while it waits for a job the page submits.
const POLL: u32 = 600;

fn console_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../console"))
}

/// Node and the browser, or `None` (having said SKIPPED).
fn browser() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let modules = console_dir().join("node_modules/playwright-core");
    let node = std::process::Command::new("node").arg("--version").output();
    if modules.is_dir() && std::path::Path::new(&chromium).exists() && node.is_ok() {
        return Some(chromium);
    }
    eprintln!(
        "SKIPPED: the console's browser test needs node, console/node_modules \
         (npm ci) and Chromium ({chromium}); .ci/run installs them"
    );
    None
}

/// The test's side of the script's steps.
struct Side {
    server: TestServer,
    spec: String,
    agent: Option<Agent>,
    runner: Option<(String, String)>,
    job: Option<uuid::Uuid>,
}

impl Side {
    async fn step(&mut self, name: &str, args: Value) -> anyhow::Result<Value> {
        let admin = self.server.admin();
        Ok(match name {
            "create-runner" => {
                let name = args["name"].as_str().context("a name")?;
                let (runner, key) = runner_with_spec(&admin, name, &self.spec).await;
                self.runner = Some((runner.slug.clone(), key.clone()));
                json!({"uuid": runner.uuid, "slug": runner.slug, "key": key})
            }
            "agent-connect" => {
                self.connect().await?;
                json!({})
            }
            "submit-job" => {
                let job = create_job(&admin, new_job(Some(&self.spec), 0)).await;
                json!({"job": job.uuid})
            }
            "agent-claim" => {
                let agent = self.agent.as_mut().context("no agent")?;
                let job = agent.expect_job().await?;
                agent.start(job.uuid).await?;
                self.job = Some(job.uuid);
                json!({})
            }
            "agent-complete" => {
                let stdout = args["stdout"].as_str().context("a stdout")?;
                let job = self.job.take().context("no job")?;
                let agent = self.agent.as_mut().context("no agent")?;
                agent.complete(job, vec![output(0, stdout)]).await?;
                agent.expect_ack(job).await?;
                // Ready for the next job, on this channel or a new one.
                if agent.ready(POLL).await.is_err() {
                    self.connect().await?;
                }
                json!({})
            }
            "expect-cancel" => {
                let agent = self.agent.as_mut().context("no agent")?;
                agent.patience = Duration::from_secs(60);
                agent.expect_cancel().await?;
                json!({})
            }
            other => bail!("no such step {other:?}"),
        })
    }

    async fn connect(&mut self) -> anyhow::Result<()> {
        let (slug, key) = self.runner.clone().context("no runner yet")?;
        let mut agent = Agent::connect(&self.server, &slug, &key).await?;
        agent.ready(POLL).await?;
        self.agent = Some(agent);
        Ok(())
    }
}

#[tokio::test]
async fn the_console_in_chromium_follows_a_runner_and_its_jobs_live() {
    let Some(chromium) = browser() else { return };
    let server = TestServer::start().await;
    if server.on_postgres() {
        eprintln!("SKIPPED on PostgreSQL: the console's pages are the same (SQLite run)");
        return;
    }
    let admin = server.admin();
    let spec = create_spec(&admin, new_spec("Console")).await.slug;
    let shots = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/console-shots"
    ));
    let mut script = tokio::process::Command::new("node")
        .arg("test/browser.mjs")
        .current_dir(console_dir())
        .env("RUNNERS_URL", &server.url)
        .env("RUNNERS_TOKEN", &server.admin_token)
        .env("SHOTS_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut stdin = script.stdin.take().unwrap();
    let mut lines = BufReader::new(script.stdout.take().unwrap()).lines();
    let mut side = Side {
        server,
        spec,
        agent: None,
        runner: None,
        job: None,
    };
    let mut steps = Vec::new();
    let mut last = String::new();
    let run = async {
        while let Some(line) = lines.next_line().await? {
            let Some(step) = line.strip_prefix("STEP ") else {
                last = line;
                continue;
            };
            let (name, args) = step.split_once(' ').unwrap_or((step, "{}"));
            let args: Value = serde_json::from_str(args)?;
            steps.push(name.to_owned());
            let answer = match side.step(name, args).await {
                Ok(value) => format!("OK {value}\n"),
                Err(e) => format!("ERR {}\n", format!("{e:#}").replace('\n', " ")),
            };
            stdin.write_all(answer.as_bytes()).await?;
            stdin.flush().await?;
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .map_err(|_| anyhow!("the browser test did not end within 300 s"))
        .and_then(|r| r)
        .unwrap();
    let status = script.wait().await.unwrap();
    assert!(
        status.success(),
        "the browser test failed ({status}): {last}"
    );
    let expected = [
        "create-runner",
        "agent-connect",
        "submit-job",
        "agent-claim",
    ];
    assert_eq!(&steps[..4], expected, "{steps:?}");
    assert!(steps.contains(&"expect-cancel".to_owned()), "{steps:?}");
    assert!(last.contains(" 0 failed"), "{last}");
}

/// The console's files, as any client gets them: the page and its two
/// files with a strict policy, and nothing else.
#[tokio::test]
async fn the_console_is_served_with_a_strict_policy_and_nothing_else() {
    let server = TestServer::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| http.get(format!("{}{path}", server.url)).send();
    for (path, kind) in [
        ("/console", "text/html"),
        ("/console/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
    ] {
        let answer = get(path).await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let header = |name: &str| answer.headers()[name].to_str().unwrap().to_owned();
        assert!(header("content-type").starts_with(kind), "{path}");
        let policy = header("content-security-policy");
        for rule in [
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(policy.contains(rule), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe"), "{policy}");
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("x-content-type-options"), "nosniff");
        let body = answer.text().await.unwrap();
        if kind == "text/html" {
            // No inline script: every <script> has a src of this origin.
            let scripts: Vec<&str> = body.split("<script").skip(1).collect();
            assert!(!scripts.is_empty());
            assert!(
                scripts
                    .iter()
                    .all(|s| s.trim_start().starts_with("src=\"/console/"))
            );
            assert!(!body.contains("style=\""), "no inline style");
        }
    }
    for path in [
        "/console/nope.js",
        "/console/app.js/x",
        "/console/../openapi.json",
    ] {
        let status = get(path).await.unwrap().status();
        assert!([400, 404].contains(&status.as_u16()), "{path}: {status}");
    }
}
