//! The end-to-end test fixture: a real `runners-server` on 127.0.0.1:0 with
//! a fresh SQLite file in a temporary directory, and SDK clients for it;
//! and [`agent`], a runner agent that speaks the channel protocol, with
//! [`race`], agents racing for jobs; and the verbs the tests share
//! ([`verbs`]: create, view, list, a job, a fallback runner, …); and
//! [`registry`], a real OCI registry.
//!
//! With `RUNNERS_TEST_PG` (a PostgreSQL URL whose user may create
//! databases: `.ci/postgres -- cargo test -p runners-tests`), each server
//! gets a fresh PostgreSQL database instead: the same suite on the other
//! engine. Tests that read the SQLite file itself do not apply there.

pub mod agent;
pub mod events;
pub mod race;
pub mod registry;
mod verbs;

pub use verbs::*;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use runners_sdk::{Client, ClientOptions, Error, ResponseValue, types};
use runners_server::auth;
use runners_server::server::{Submit, Tls};
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
    /// Its submitter side's settings (and its restarts').
    submit: Submit,
}

/// The registry the test servers take runs' images from (nothing listens
/// there: the tests name images by digest, which needs no lookup).
pub const TEST_REGISTRY: &str = "http://127.0.0.1:5000";

/// The submitter side's settings of a test server: [`TEST_REGISTRY`].
pub fn test_submit() -> Submit {
    Submit {
        registry_url: Some(TEST_REGISTRY.to_owned()),
        ..Submit::default()
    }
}

fn config(db: PathBuf, tls: Option<Tls>, submit: &Submit) -> Config {
    Config {
        submit: submit.clone(),
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        db,
        log_level: LogLevel::Warning,
        log_format: Default::default(),
        metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
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
        Self::start_in(
            tempfile::tempdir().expect("temp dir"),
            None,
            limits,
            test_submit(),
        )
        .await
    }

    /// Starts a server on a fresh database with these submitter-side
    /// settings (a real registry, a registry token's lifetime).
    pub async fn start_submit(submit: Submit) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, None, Limits::default(), submit).await
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
        let tls = Some((tls, cert_pem.into_bytes()));
        Self::start_in(dir, tls, Limits::default(), test_submit()).await
    }

    async fn start_in(
        dir: TempDir,
        tls: Option<(Tls, Vec<u8>)>,
        limits: Limits,
        submit: Submit,
    ) -> Self {
        let db = match std::env::var("RUNNERS_TEST_PG") {
            Ok(admin) => PathBuf::from(
                runners_server::store::pg::fresh_database(&admin)
                    .await
                    .expect("a fresh PostgreSQL database"),
            ),
            Err(_) => dir.path().join("runners.db"),
        };
        let config = config(
            db.clone(),
            tls.as_ref().map(|(tls, _)| tls.clone()),
            &submit,
        );
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
            submit,
        }
    }

    /// With HTTPS, the PEM certificate clients must trust, and its file.
    pub fn ca(&self) -> Option<(&[u8], &Path)> {
        self.tls
            .as_ref()
            .map(|(tls, pem)| (pem.as_slice(), tls.cert.as_path()))
    }

    /// Its metrics' URL (every test server serves them on a port of its own).
    pub fn metrics_url(&self) -> String {
        let server = self.server.as_ref().expect("running");
        server.metrics_url().expect("test servers serve metrics")
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
        let config = config(self.db_path(), tls, &self.submit);
        let server = Server::start_with(&config, &self.limits)
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
        let config = config(self.db_path(), tls, &self.submit);
        let server = Server::start_with(&config, &self.limits)
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
            submit: self.submit.clone(),
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
