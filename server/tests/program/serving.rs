//! The fixture of the program tests: the `runners-server` program run as a
//! separate process, and the verbs to drive it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_runners-server");
/// How the program's line saying where it listens starts.
pub(crate) const LISTENING: &str = "runners-server listening on ";

/// The `runners-server` program, serving in a child process on
/// `runners.db` in a temporary directory of its own, removed on drop.
pub(crate) struct Serving {
    pub(crate) child: Child,
    pub(crate) url: String,
    /// Everything it printed to stderr up to "listening".
    pub(crate) banner: Vec<String>,
    /// Everything it printed to stderr after that: the request log.
    pub(crate) log: Arc<Mutex<Vec<String>>>,
    pub(crate) level: &'static str,
    /// Environment variables it runs (and restarts) with, besides the
    /// fixture's own (say `RUNNERS_HEARTBEAT_TIMEOUT`).
    pub(crate) env: Vec<(&'static str, String)>,
    /// What `--db` names: `runners.db` in `dir`, or (see
    /// [`Serving::start_on`]) a PostgreSQL URL.
    db: PathBuf,
    /// Dropped after the child is killed (fields drop after `drop`).
    pub(crate) dir: TempDir,
}

impl Serving {
    /// Starts `runners-server` on a fresh database on a free port.
    pub(crate) fn start() -> Self {
        Self::start_in(tempfile::tempdir().unwrap())
    }

    /// Starts `runners-server` on a fresh database of the engine under test:
    /// with `RUNNERS_TEST_PG` (`.ci/postgres -- cargo test …`) a fresh
    /// PostgreSQL database, else a fresh SQLite file. For the tests whose
    /// guarantee is the engine's as much as the program's (races, crashes,
    /// jobs exactly once).
    pub(crate) fn start_any() -> Self {
        Self::start_any_with_env(Vec::new())
    }

    /// [`Serving::start_any`] with these environment variables.
    pub(crate) fn start_any_with_env(env: Vec<(&'static str, String)>) -> Self {
        match std::env::var("RUNNERS_TEST_PG") {
            Ok(admin) => {
                let fresh = runners_server::store::pg::fresh_database(&admin);
                let db = block_on(fresh).expect("a fresh PostgreSQL database");
                Self::start_on(&db, env)
            }
            Err(_) => Self::start_with_env(env),
        }
    }

    /// Whether it runs on PostgreSQL.
    pub(crate) fn on_postgres(&self) -> bool {
        runners_server::store::is_postgres_url(&self.db)
    }

    /// [`Serving::start`] with this `--log-level`.
    pub(crate) fn start_logging(level: &'static str) -> Self {
        Self::launch(tempfile::tempdir().unwrap(), level)
    }

    /// Starts `runners-server` on `runners.db` in `dir`, which the test has
    /// prepared (the file may exist already).
    pub(crate) fn start_in(dir: TempDir) -> Self {
        Self::launch(dir, "info")
    }

    pub(crate) fn launch(dir: TempDir, level: &'static str) -> Self {
        Self::launch_with(dir, level, Vec::new())
    }

    /// [`Serving::launch`] with these environment variables too.
    pub(crate) fn launch_env(
        dir: TempDir,
        level: &'static str,
        env: Vec<(&'static str, String)>,
    ) -> Self {
        Self::launch_with(dir, level, env)
    }

    /// [`Serving::start`] with these environment variables (restarts keep
    /// them).
    pub(crate) fn start_with_env(env: Vec<(&'static str, String)>) -> Self {
        Self::launch_with(tempfile::tempdir().unwrap(), "info", env)
    }

    fn launch_with(dir: TempDir, level: &'static str, env: Vec<(&'static str, String)>) -> Self {
        let db = dir.path().join("runners.db");
        Self::launch_on(db, dir, level, env)
    }

    /// Starts `runners-server` on the database `db` names (a PostgreSQL
    /// URL, which several processes may share: replicas), with these
    /// environment variables (restarts keep both).
    pub(crate) fn start_on(db: &str, env: Vec<(&'static str, String)>) -> Self {
        Self::launch_on(db.into(), tempfile::tempdir().unwrap(), "info", env)
    }

    fn launch_on(
        db: PathBuf,
        dir: TempDir,
        level: &'static str,
        env: Vec<(&'static str, String)>,
    ) -> Self {
        let (child, url, banner, log) = spawn_with(&db, level, &env);
        Self {
            child,
            url,
            banner,
            log,
            level,
            env,
            db,
            dir,
        }
    }

    /// The database file (or URL).
    pub(crate) fn db(&self) -> PathBuf {
        self.db.clone()
    }

    /// Stops the process if it still runs (SIGKILL) and starts it again on
    /// the same database.
    pub(crate) fn restart(&mut self) {
        self.kill();
        (self.child, self.url, self.banner, self.log) =
            spawn_with(&self.db(), self.level, &self.env);
    }

    /// The API token printed on first start, if any.
    pub(crate) fn bootstrap_token(&self) -> Option<String> {
        self.banner.iter().find(|l| l.starts_with("eyJ")).cloned()
    }

    /// An SDK client sending the bootstrap admin token.
    pub(crate) fn admin(&self) -> runners_sdk::Client {
        let token = self.bootstrap_token().expect("a first start");
        runners_sdk::client_with_token(&self.url, &token).unwrap()
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        self.child.wait().unwrap();
    }

    /// Sends `method path` with `token` and an optional JSON body: the
    /// status code and the body.
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&str>,
    ) -> (u16, String) {
        let url = format!("{}{path}", self.url);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        block_on(async {
            let mut request = reqwest::Client::new()
                .request(method, url)
                .bearer_auth(token);
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_owned());
            }
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    }

    /// `GET /v0/runners` with `token`: the status code.
    pub(crate) fn list_status(&self, token: &str) -> u16 {
        self.call("GET", "/v0/runners", token, None).0
    }

    /// Sends SIGTERM and waits for the exit status.
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        terminate(&mut self.child, Duration::from_secs(10)).0
    }
}

pub(crate) type Log = Arc<Mutex<Vec<String>>>;

/// Starts `runners-server` on `db`, with these environment variables too,
/// and waits for it to listen: the child, its URL, what it printed before
/// listening, and its request log.
pub(crate) fn spawn_with(
    db: &Path,
    level: &str,
    env: &[(&'static str, String)],
) -> (Child, String, Vec<String>, Log) {
    // Under the most permissive umask, so that every test also checks that
    // the files it makes are owner-only whatever the umask (`exec`: the
    // child is the server itself).
    let mut child = Command::new("sh")
        .args(["-c", r#"umask 000 && exec "$0""#, BIN])
        .env("RUNNERS_LOG_LEVEL", level)
        .env("RUNNERS_BIND", "127.0.0.1:0")
        .env("RUNNERS_DB", db)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runners-server starts");
    let log: Log = Arc::default();
    let (url, banner) = await_listening(&mut child, Some(Arc::clone(&log)));
    (child, url, banner, log)
}

/// Sends `child` SIGTERM and waits at most `within` for it to exit: its
/// exit status, and how long it took.
pub(crate) fn terminate(
    child: &mut Child,
    within: Duration,
) -> (std::process::ExitStatus, Duration) {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(sent.unwrap().success());
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, start.elapsed());
        }
        assert!(
            start.elapsed() < within,
            "still running {within:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads `child`'s stderr on a thread of its own (so that the child never
/// blocks on it) and waits a bounded time for the line saying where it
/// listens: returns its URL and the lines before it. The lines after go to
/// `after`; with `None`, the pipe's read end is closed once it listens.
pub(crate) fn await_listening(child: &mut Child, after: Option<Log>) -> (String, Vec<String>) {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.by_ref().map_while(Result::ok) {
            let listening = listening_url(&line).is_some();
            let _ = tx.send(line);
            if listening {
                break;
            }
        }
        if let Some(after) = after {
            for line in lines.map_while(Result::ok) {
                after.lock().unwrap().push(line);
            }
        }
    });
    let mut banner = Vec::new();
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("no `{LISTENING}` line ({e}) after {banner:?}"));
        if let Some(url) = listening_url(&line) {
            break url;
        }
        banner.push(line);
    };
    (url, banner)
}

/// The URL of the line saying where the server listens: text
/// (`runners-server listening on URL …`) or, with `--log-format json`, the
/// bunyan record `listening` with its `url`.
fn listening_url(line: &str) -> Option<String> {
    if let Some(rest) = line.strip_prefix(LISTENING) {
        return rest.split(' ').next().map(str::to_owned);
    }
    let record: serde_json::Value = serde_json::from_str(line).ok()?;
    (record["msg"] == "listening").then(|| record["url"].as_str().map(str::to_owned))?
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `future` to completion on a runtime of its own: the server is
/// another process, so one thread can drive many concurrent requests.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Runs `runners-server ARGS` to completion.
pub(crate) fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("runners-server runs")
}

pub(crate) fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub(crate) fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}
