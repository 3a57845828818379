//! The implementation of [`RunnersApi`] and the running server.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::Duration;
use dropshot::{
    ConfigDropshot, HttpError, HttpResponseCreated, HttpResponseHeaders, HttpResponseOk,
    HttpServer, Path, RequestContext, ServerBuilder,
};
use slog::Drain as _;

use crate::api::{RunnersApi, RunnersPage, openapi_document, runners_api_mod};
use crate::auth::{self, AuthError, DEFAULT_API_TOKEN_TTL_DAYS, Keys, RunnerKey};
use crate::extract::{JsonBody, QueryParams};
use crate::store::{self, Store, StoreError};
use crate::types::{
    JsonApiVersion, JsonNewRunner, JsonRunner, JsonRunnerToken, JsonSpec, JsonUpdateRunner,
    RunnerPath, RunnersQuery, TotalCountHeader,
};
use crate::validate::{Invalid, RunnerRef};

/// The Bencher API version this server implements, reported by
/// `GET /v0/server/version` (Bencher's CLI warns when it differs from its own).
pub const BENCHER_API_VERSION: &str = "0.6.2";
/// The largest request body accepted, in bytes.
pub const REQUEST_BODY_MAX_BYTES: usize = 1024;
/// The address served when none is given.
pub const DEFAULT_BIND: &str = "127.0.0.1:61016";

/// What a request handler has at hand.
pub struct Context {
    store: Store,
    keys: Keys,
    admins: auth::AdminCache,
    spec: JsonSpec,
}

impl Context {
    /// The admin behind the request's API token.
    async fn admin(&self, rqctx: &RequestContext<Self>) -> Result<auth::Admin, AuthError> {
        let headers = rqctx.request.headers();
        auth::require_admin(&self.store, &self.keys, &self.admins, headers).await
    }
}

impl RunnerPath {
    /// The runner the path names.
    fn runner(self) -> Result<RunnerRef, Invalid> {
        RunnerRef::parse(&self.runner)
    }
}

/// A new runner key with the SHA-256 that the store keeps of it.
fn new_runner_key() -> (String, [u8; 32]) {
    let key = auth::new_runner_token();
    let hash = auth::hash_runner_token(&key);
    (key, hash)
}

/// The implementation of [`RunnersApi`].
pub enum RunnersImpl {}

impl RunnersApi for RunnersImpl {
    type Context = Context;

    async fn runners_get(
        rqctx: RequestContext<Context>,
        query: QueryParams<RunnersQuery>,
    ) -> Result<RunnersPage, HttpError> {
        let cx = rqctx.context();
        cx.admin(&rqctx).await?;
        let (runners, total) = cx.store.list_runners(query.0).await?;
        Ok(HttpResponseHeaders::new(
            HttpResponseOk(runners),
            TotalCountHeader {
                x_total_count: total.to_string(),
            },
        ))
    }

    async fn runners_post(
        rqctx: RequestContext<Context>,
        body: JsonBody<JsonNewRunner>,
    ) -> Result<HttpResponseCreated<JsonRunnerToken>, HttpError> {
        let cx = rqctx.context();
        cx.admin(&rqctx).await?;
        let (token, hash) = new_runner_key();
        let runner = cx.store.create_runner(body.0, hash).await?;
        Ok(HttpResponseCreated(JsonRunnerToken {
            uuid: runner.uuid,
            token,
        }))
    }

    async fn runner_get(
        rqctx: RequestContext<Context>,
        path: Path<RunnerPath>,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError> {
        let cx = rqctx.context();
        cx.admin(&rqctx).await?;
        let runner = path.into_inner().runner()?;
        Ok(HttpResponseOk(cx.store.runner(&runner).await?))
    }

    async fn runner_patch(
        rqctx: RequestContext<Context>,
        path: Path<RunnerPath>,
        body: JsonBody<JsonUpdateRunner>,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError> {
        let cx = rqctx.context();
        cx.admin(&rqctx).await?;
        let runner = path.into_inner().runner()?;
        Ok(HttpResponseOk(
            cx.store.update_runner(runner, body.0).await?,
        ))
    }

    async fn runner_token_post(
        rqctx: RequestContext<Context>,
        path: Path<RunnerPath>,
    ) -> Result<HttpResponseCreated<JsonRunnerToken>, HttpError> {
        let cx = rqctx.context();
        cx.admin(&rqctx).await?;
        let runner = path.into_inner().runner()?;
        let (token, hash) = new_runner_key();
        let uuid = cx.store.rotate_runner_key(runner, hash).await?;
        Ok(HttpResponseCreated(JsonRunnerToken { uuid, token }))
    }

    async fn runner_heartbeat_post(
        rqctx: RequestContext<Context>,
        path: Path<RunnerPath>,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError> {
        let cx = rqctx.context();
        let headers = rqctx.request.headers();
        let key = RunnerKey::from_request(&cx.store, headers, &path.into_inner().runner).await?;
        Ok(HttpResponseOk(key.heartbeat(&cx.store).await?))
    }

    async fn server_version_get(
        _rqctx: RequestContext<Context>,
    ) -> Result<HttpResponseOk<JsonApiVersion>, HttpError> {
        Ok(HttpResponseOk(JsonApiVersion {
            version: BENCHER_API_VERSION.to_owned(),
        }))
    }

    async fn server_spec_get(
        rqctx: RequestContext<Context>,
    ) -> Result<HttpResponseOk<JsonSpec>, HttpError> {
        Ok(HttpResponseOk(rqctx.context().spec.clone()))
    }
}

/// Creates user `admin` with an API token if the database has no admin yet,
/// and returns that token (to be shown once).
pub async fn bootstrap_admin(store: &Store, keys: &Keys) -> Result<Option<String>, StoreError> {
    if store.has_admin().await? {
        return Ok(None);
    }
    let user = store.ensure_user("admin", true).await?;
    let ttl = Duration::days(DEFAULT_API_TOKEN_TTL_DAYS);
    let (_, token) = auth::issue_api_token(store, keys, user, ttl).await?;
    Ok(Some(token))
}

/// The request log: one line a record on stderr, each written whole and
/// before the call that logs it returns, so that it never runs into the lines
/// the program prints (the admin token, where it listens).
fn logger(level: slog::Level) -> slog::Logger {
    request_log(level, std::io::stderr())
}

/// The request log's format and locking, written to `out` (the benchmark's
/// ceiling logs the same way, to /dev/null).
pub fn request_log<W: std::io::Write + Send + 'static>(level: slog::Level, out: W) -> slog::Logger {
    let decorator = slog_term::PlainSyncDecorator::new(out);
    let drain = slog_term::FullFormat::new(decorator)
        .build()
        .filter_level(level)
        .fuse();
    slog::Logger::root(drain, slog::o!("name" => "runners-server"))
}

/// The runtime the server runs on: tokio's multi-threaded one, with at most
/// twice as many blocking threads as database connections (more would only
/// wait for a connection, and each thread can hold its own malloc arena,
/// which is what made the server's RSS grow under load).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(2 * store::POOL_SIZE as usize)
        .build()
}

/// How to run the server.
#[derive(Clone, Debug)]
pub struct Config {
    /// The address to listen on (port 0 picks a free port).
    pub bind: SocketAddr,
    /// The SQLite file, created and migrated if needed.
    pub db: PathBuf,
    /// The least severe level of the request log on stderr.
    pub log_level: slog::Level,
}

/// A running server.
pub struct Server {
    http: HttpServer<Context>,
    /// The API token of the `admin` user created on this start, if the
    /// database had no admin yet. Shown once, stored nowhere.
    pub bootstrap_token: Option<String>,
}

impl Server {
    /// Opens the database (creating the admin on first start) and starts
    /// serving.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let db = config.db.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(&db)).await??;
        let keys = Keys::new(&store.signing_secret().await?);
        let spec = JsonSpec(serde_json::from_str(&openapi_document())?);
        let log = logger(config.log_level);
        let api = runners_api_mod::api_description::<RunnersImpl>()
            .map_err(|e| anyhow::anyhow!("invalid API description: {e}"))?;
        let dropshot = ConfigDropshot {
            bind_address: config.bind,
            default_request_body_max_bytes: REQUEST_BODY_MAX_BYTES,
            ..Default::default()
        };
        let context = Context {
            store: store.clone(),
            keys: keys.clone(),
            admins: auth::AdminCache::default(),
            spec,
        };
        let http = ServerBuilder::new(api, context, log)
            .config(dropshot)
            .start()
            .map_err(|e| match e {
                dropshot::BuildError::BindError { address, error } => {
                    anyhow::anyhow!("cannot listen on {address}: {error}")
                }
                e => anyhow::anyhow!("cannot start the server: {e}"),
            })?;
        // Only once the server listens: a token created for a start that then
        // failed would never be shown, and no other would be made.
        match bootstrap_admin(&store, &keys).await {
            Ok(bootstrap_token) => Ok(Self {
                http,
                bootstrap_token,
            }),
            Err(e) => {
                let _ = http.close().await;
                Err(anyhow::Error::new(e).context("cannot create the admin user"))
            }
        }
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    /// Stops accepting connections, finishes in-flight requests and closes
    /// the database.
    pub async fn close(self) -> anyhow::Result<()> {
        self.http.close().await.map_err(|e| anyhow::anyhow!("{e}"))
    }
}
