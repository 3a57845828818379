//! The end-to-end test fixture: a real `runners-server` on 127.0.0.1:0 with
//! a fresh SQLite file in a temporary directory, and SDK clients for it;
//! and [`agent`], a runner agent that speaks the channel protocol, with
//! [`race`], agents racing for jobs.
//!
//! With `RUNNERS_TEST_PG` (a PostgreSQL URL whose user may create
//! databases: `.ci/postgres -- cargo test -p runners-tests`), each server
//! gets a fresh PostgreSQL database instead: the same suite on the other
//! engine. Tests that read the SQLite file itself do not apply there.

pub mod agent;
pub mod race;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use runners_sdk::types::{
    Architecture, JsonNewRunner, JsonNewSpec, JsonRunner, JsonSpec, JsonUpdateRunner,
    JsonUpdateSpec, OperatingSystem,
};
use runners_sdk::{Client, ClientOptions, Error, MAX_PER_PAGE, ResponseValue, every_page, types};
use runners_server::auth;
use runners_server::server::Tls;
use runners_server::store::Actor;
use runners_server::{Config, Limits, LogLevel, Server, Store};
use tempfile::TempDir;

/// A running server with its own database, torn down on drop.
pub struct TestServer {
    server: Option<Server>,
    /// The temporary directory (its database file, its TLS files), removed
    /// on drop.
    _dir: TempDir,
    /// What `--db` names: the SQLite file in `dir`, or a PostgreSQL URL.
    db: PathBuf,
    /// The server's base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// The API token of the `admin` user created on first start.
    pub admin_token: String,
    /// With HTTPS: the server's TLS files, and its (self-signed) certificate,
    /// which clients trust as their CA.
    tls: Option<(Tls, Vec<u8>)>,
    /// The limits it runs with (and restarts with).
    limits: Limits,
}

fn config(db: PathBuf, tls: Option<Tls>) -> Config {
    Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        db,
        log_level: LogLevel::Warning,
        tls,
    }
}

impl TestServer {
    /// Starts a server on a fresh database.
    pub async fn start() -> Self {
        Self::start_with(Limits::default()).await
    }

    /// Starts a server on a fresh database with these limits (say a short
    /// `heartbeat_timeout` and `job_timeout_grace`); restarts keep them.
    pub async fn start_with(limits: Limits) -> Self {
        Self::start_in(tempfile::tempdir().expect("temp dir"), None, limits).await
    }

    /// Starts an HTTPS server on a fresh database, with a certificate for
    /// `localhost` and 127.0.0.1 made for it.
    pub async fn start_tls() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let certified = rcgen::generate_simple_self_signed(names).expect("certificate");
        let cert_pem = certified.cert.pem();
        let tls = Tls {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        std::fs::write(&tls.cert, &cert_pem).unwrap();
        std::fs::write(&tls.key, certified.signing_key.serialize_pem()).unwrap();
        Self::start_in(dir, Some((tls, cert_pem.into_bytes())), Limits::default()).await
    }

    async fn start_in(dir: TempDir, tls: Option<(Tls, Vec<u8>)>, limits: Limits) -> Self {
        let db = match std::env::var("RUNNERS_TEST_PG") {
            Ok(admin) => PathBuf::from(
                runners_server::store::pg::fresh_database(&admin)
                    .await
                    .expect("a fresh PostgreSQL database"),
            ),
            Err(_) => dir.path().join("runners.db"),
        };
        let config = config(db.clone(), tls.as_ref().map(|(tls, _)| tls.clone()));
        let server = Server::start_with(&config, &limits)
            .await
            .expect("server starts");
        let admin_token = server
            .bootstrap_token
            .clone()
            .expect("a fresh database bootstraps an admin token");
        Self {
            url: server.url(),
            server: Some(server),
            _dir: dir,
            db,
            admin_token,
            tls,
            limits,
        }
    }

    /// With HTTPS, the PEM certificate clients must trust, and its file.
    pub fn ca(&self) -> Option<(&[u8], &Path)> {
        self.tls
            .as_ref()
            .map(|(tls, pem)| (pem.as_slice(), tls.cert.as_path()))
    }

    /// The database file (on PostgreSQL: its URL).
    pub fn db_path(&self) -> PathBuf {
        self.db.clone()
    }

    /// Whether this server runs on PostgreSQL (`RUNNERS_TEST_PG`).
    pub fn on_postgres(&self) -> bool {
        runners_server::store::is_postgres_url(&self.db)
    }

    /// Stops the server and starts it again on the same database file.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// Stops the server (a clean shutdown); [`TestServer::start_again`]
    /// starts it on the same database.
    pub async fn stop(&mut self) {
        self.server
            .take()
            .expect("running")
            .close()
            .await
            .expect("clean shutdown");
    }

    /// Starts the stopped server again on the same database file (on a new
    /// port: `url` changes).
    pub async fn start_again(&mut self) {
        assert!(self.server.is_none(), "stop it first");
        let tls = self.tls.as_ref().map(|(tls, _)| tls.clone());
        let server = Server::start_with(&config(self.db_path(), tls), &self.limits)
            .await
            .expect("server restarts");
        assert!(server.bootstrap_token.is_none(), "the admin exists already");
        self.url = server.url();
        self.server = Some(server);
    }

    /// Starts another server on this one's database, on a port of its own:
    /// a replica (meant for PostgreSQL, where replicas share the database;
    /// see [`TestServer::on_postgres`]). It has its own `url` and clients,
    /// and the same admin token and limits; dropping it drops its server
    /// alone (the database and the other servers stay).
    pub async fn replica(&self) -> TestServer {
        let tls = self.tls.as_ref().map(|(tls, _)| tls.clone());
        let server = Server::start_with(&config(self.db_path(), tls), &self.limits)
            .await
            .expect("the replica starts");
        assert!(server.bootstrap_token.is_none(), "the admin exists already");
        TestServer {
            url: server.url(),
            server: Some(server),
            _dir: tempfile::tempdir().expect("temp dir"),
            db: self.db.clone(),
            admin_token: self.admin_token.clone(),
            tls: self.tls.clone(),
            limits: self.limits.clone(),
        }
    }

    /// A client authenticated with the bootstrap admin token.
    pub fn admin(&self) -> Client {
        self.client(&self.admin_token)
    }

    /// A client sending `token` as its bearer token.
    pub fn client(&self, token: &str) -> Client {
        let options = ClientOptions {
            ca_pem: self.ca().map(|(pem, _)| pem.to_vec()),
            ..ClientOptions::default()
        };
        runners_sdk::client_with_options(&self.url, token, &options).expect("client builds")
    }

    /// A client sending no credentials.
    pub fn anonymous(&self) -> Client {
        Client::new(&self.url)
    }

    /// Creates an API token for `user` the way `runners-server token
    /// create` does, on this server's database, while it runs.
    pub async fn api_token(
        &self,
        user: &str,
        admin: bool,
        ttl: chrono::Duration,
    ) -> (uuid::Uuid, String) {
        auth::issue_api_token(&self.store(), user, admin, ttl, &Actor::program())
            .await
            .unwrap()
    }

    /// A second handle on this server's database, as the CLI opens it.
    pub fn store(&self) -> Store {
        if self.on_postgres() {
            // Opened on a runtime of its own (this is not async); its pool
            // makes new connections on the caller's runtime when used.
            let db = self.db.clone();
            return std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(Store::open_db(
                        &db,
                        runners_server::store::WRITE_QUEUE_DEFAULT,
                    ))
            })
            .join()
            .expect("opening thread")
            .expect("database opens");
        }
        Store::open(&self.db_path()).expect("database opens")
    }

    /// Every byte of the database: on SQLite the main file and its WAL; on
    /// PostgreSQL every row of every table, copied out in binary (text and
    /// `bytea` as stored, not escaped).
    pub async fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        if self.on_postgres() {
            use futures::TryStreamExt;
            let client = self.postgres().await;
            let tables = client
                .query(
                    "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public'",
                    &[],
                )
                .await
                .expect("tables");
            for table in tables {
                let table: String = table.get(0);
                let copy = format!("COPY {table} TO STDOUT (FORMAT binary)");
                let out = client.copy_out(&copy).await.expect("copy out");
                let chunks: Vec<_> = out.try_collect().await.expect("rows");
                chunks.iter().for_each(|c| bytes.extend_from_slice(c));
            }
            return bytes;
        }
        for suffix in ["", "-wal"] {
            let mut path = self.db_path().into_os_string();
            path.push(suffix);
            if let Ok(b) = std::fs::read(Path::new(&path)) {
                bytes.extend(b);
            }
        }
        bytes
    }

    /// The rows `sql` selects from this server's database, each column as
    /// text (`None` for NULL; a SQLite blob as lowercase hex). The SQL is
    /// the engine's own: see [`TestServer::on_postgres`].
    pub async fn sql_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        if self.on_postgres() {
            let client = self.postgres().await;
            // The simple query protocol answers every column as text.
            let messages = client.simple_query(sql).await.expect("query");
            return messages
                .iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_owned))
                            .collect(),
                    ),
                    _ => None,
                })
                .collect();
        }
        use rusqlite::types::ValueRef;
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let conn = rusqlite::Connection::open_with_flags(&self.db, flags).expect("database");
        let mut stmt = conn.prepare(sql).expect("query");
        let columns = stmt.column_count();
        let rows = stmt.query_map([], |r| {
            (0..columns)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        ValueRef::Null => None,
                        ValueRef::Integer(i) => Some(i.to_string()),
                        ValueRef::Real(f) => Some(f.to_string()),
                        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Blob(b) => Some(b.iter().map(|b| format!("{b:02x}")).collect()),
                    })
                })
                .collect()
        });
        rows.expect("rows").collect::<Result<_, _>>().expect("rows")
    }

    /// A connection to this server's PostgreSQL database.
    async fn postgres(&self) -> tokio_postgres::Client {
        let url = self.db.to_str().expect("a URL");
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL connects");
        tokio::spawn(connection);
        client
    }
}

/// An API error as the client sees it.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub body: types::Error,
    pub headers: http::HeaderMap,
}

impl ApiFailure {
    /// Asserts the status and `error_code`, and that the body is complete.
    pub fn assert(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body.error_code.as_deref(), Some(code), "{self:?}");
        assert!(!self.body.request_id.is_empty(), "{self:?}");
        assert!(!self.body.message.is_empty(), "{self:?}");
        self
    }

    /// Asserts that the message mentions `text`.
    pub fn mentions(&self, text: &str) -> &Self {
        assert!(self.body.message.contains(text), "{text:?} not in {self:?}");
        self
    }
}

impl TestServer {
    /// Sends `method path` with the admin token and `body` (JSON text) past
    /// the SDK, whose types would refuse to send what breaks a rule: the
    /// error answer, which it must be.
    pub async fn refused(&self, method: &str, path: &str, body: Option<&str>) -> ApiFailure {
        let mut http = reqwest::Client::builder();
        if let Some((pem, _)) = self.ca() {
            http = http.tls_certs_merge(reqwest::Certificate::from_pem_bundle(pem).unwrap());
        }
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = http
            .build()
            .unwrap()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        assert!(status >= 400, "{status}: {text}");
        ApiFailure {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
        }
    }
}

/// The error of a request that must fail with an error response.
pub fn failure<T: std::fmt::Debug>(
    result: Result<ResponseValue<T>, Error<types::Error>>,
) -> ApiFailure {
    match result {
        Err(Error::ErrorResponse(rv)) => ApiFailure {
            status: rv.status().as_u16(),
            headers: rv.headers().clone(),
            body: rv.into_inner(),
        },
        other => panic!("expected an error response, got {other:?}"),
    }
}

// ---- verbs the tests share ----

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
