//! The end-to-end test fixture: a real `runners-server` on 127.0.0.1:0 with
//! a fresh SQLite file in a temporary directory, and SDK clients for it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use runners_sdk::{Client, Error, ResponseValue, types};
use runners_server::auth::{self, Keys};
use runners_server::{Config, LogLevel, Server, Store};
use tempfile::TempDir;

/// A running server with its own database, torn down on drop.
pub struct TestServer {
    server: Option<Server>,
    dir: TempDir,
    /// The server's base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// The API token of the `admin` user created on first start.
    pub admin_token: String,
}

fn config(db: PathBuf) -> Config {
    Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        db,
        log_level: LogLevel::Warning,
    }
}

impl TestServer {
    /// Starts a server on a fresh database.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(&config(dir.path().join("runners.db")))
            .await
            .expect("server starts");
        let admin_token = server
            .bootstrap_token
            .clone()
            .expect("a fresh database bootstraps an admin token");
        let url = format!("http://{}", server.local_addr());
        Self {
            server: Some(server),
            dir,
            url,
            admin_token,
        }
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("runners.db")
    }

    /// Stops the server and starts it again on the same database file.
    pub async fn restart(&mut self) {
        self.server
            .take()
            .expect("running")
            .close()
            .await
            .expect("clean shutdown");
        let server = Server::start(&config(self.db_path()))
            .await
            .expect("server restarts");
        assert!(server.bootstrap_token.is_none(), "the admin exists already");
        self.url = format!("http://{}", server.local_addr());
        self.server = Some(server);
    }

    /// A client authenticated with the bootstrap admin token.
    pub fn admin(&self) -> Client {
        self.client(&self.admin_token)
    }

    /// A client sending `token` as its bearer token.
    pub fn client(&self, token: &str) -> Client {
        runners_sdk::client_with_token(&self.url, token).expect("client builds")
    }

    /// A client sending no credentials.
    pub fn anonymous(&self) -> Client {
        Client::new(&self.url)
    }

    /// Creates an API token for `user` the way `runners-server token
    /// create` does, on this server's database, while it runs.
    pub fn api_token(
        &self,
        user: &str,
        admin: bool,
        ttl: chrono::Duration,
    ) -> (uuid::Uuid, String) {
        let store = self.store();
        let keys = Keys::new(&store.signing_secret().unwrap());
        let user = store.ensure_user(user, admin).unwrap();
        auth::issue_api_token(&store, &keys, user, ttl).unwrap()
    }

    /// A second handle on this server's database, as the CLI opens it.
    pub fn store(&self) -> Store {
        Store::open(&self.db_path()).expect("database opens")
    }

    /// Every byte of the database: the main file and its WAL.
    pub fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal"] {
            let mut path = self.db_path().into_os_string();
            path.push(suffix);
            if let Ok(b) = std::fs::read(Path::new(&path)) {
                bytes.extend(b);
            }
        }
        bytes
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
