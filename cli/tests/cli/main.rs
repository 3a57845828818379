//! End-to-end tests of the `bencher` binary: each runs the built program
//! against a real server on 127.0.0.1:0 with a fresh database (the fixture
//! of `runners-tests`), and checks its stdout, stderr and exit status.

mod jobs;
mod projects;
mod runners;
mod specs;
mod tls;

use std::process::Stdio;

use runners_tests::TestServer;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_bencher");

/// One finished run of the program.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts success and parses stdout as JSON.
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "{self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// The slugs of a printed runner list.
    fn slugs(&self) -> Vec<String> {
        let list = self.json();
        list.as_array()
            .expect("an array")
            .iter()
            .map(|r| r["slug"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The `X-Total-Count` the program printed to stderr.
    fn total(&self) -> u64 {
        let line = self
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("X-Total-Count: "))
            .unwrap_or_else(|| panic!("no total: {self:?}"));
        line.parse().unwrap()
    }

    /// Asserts an API error: exit 1, nothing on stdout, and stderr naming
    /// the status, the error code, a message and the request id.
    fn api_error(&self, status: &str, code: &str) -> &Self {
        assert_eq!(self.code, 1, "{self:?}");
        assert!(self.stdout.is_empty(), "{self:?}");
        assert!(self.stderr.contains(status), "{self:?}");
        assert!(
            self.stderr.contains(&format!("error_code: {code}")),
            "{self:?}"
        );
        let field = |name: &str| {
            self.stderr
                .lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name}: {self:?}"))
                .to_owned()
        };
        assert!(!field("message: ").is_empty(), "{self:?}");
        assert!(!field("request_id: ").is_empty(), "{self:?}");
        self
    }

    /// Asserts a failure with this exit status whose stderr is one line
    /// mentioning `text`.
    fn one_line_error(&self, code: i32, text: &str) -> &Self {
        assert_eq!(self.code, code, "{self:?}");
        assert!(self.stdout.is_empty(), "{self:?}");
        assert_eq!(self.stderr.trim_end().lines().count(), 1, "{self:?}");
        assert!(self.stderr.starts_with("error: "), "{self:?}");
        assert!(self.stderr.contains(text), "{text:?} not in {self:?}");
        self
    }

    fn mentions(&self, text: &str) -> &Self {
        assert!(self.stderr.contains(text), "{text:?} not in {self:?}");
        self
    }
}

/// Runs `bencher ARGS` with `BENCHER_HOST` and `BENCHER_API_TOKEN` set to
/// `env` (or unset), and no `BENCHER_API_KEY`.
async fn bencher_env(host: Option<&str>, token: Option<&str>, args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .env_remove("BENCHER_HOST")
        .env_remove("BENCHER_API_TOKEN")
        .env_remove("BENCHER_API_KEY")
        .stdin(Stdio::null());
    if let Some(host) = host {
        command.env("BENCHER_HOST", host);
    }
    if let Some(token) = token {
        command.env("BENCHER_API_TOKEN", token);
    }
    let output = command.output().await.expect("bencher runs");
    Run {
        code: output.status.code().expect("exited"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `bencher ARGS --host URL --token TOKEN` against `server`.
async fn bencher_as(server: &TestServer, token: &str, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend(["--host", &server.url, "--token", token]);
    bencher_env(None, None, &all).await
}

/// Runs `bencher ARGS` against `server` as its admin.
async fn bencher(server: &TestServer, args: &[&str]) -> Run {
    bencher_as(server, &server.admin_token, args).await
}

async fn create(server: &TestServer, name: &str) -> Value {
    bencher(server, &["runner", "create", "--name", name])
        .await
        .json()
}
