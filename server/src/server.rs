//! The running server: its context, configuration, start and shutdown
//! (the handlers are in [`crate::handlers`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Duration;
use dropshot::{ConfigDropshot, HttpServer, ServerBuilder};

use crate::acceptor::{self, Acceptor, Limits};
use crate::api::{self, openapi_document};
use crate::auth::{self, AuthError, DEFAULT_API_TOKEN_TTL_DAYS, RunnerKey};
use crate::credential::Credentials;
use crate::dispatch::Hub;
pub use crate::handlers::RunnersImpl;
pub use crate::logging::{LogFormat, logger, request_log};
use crate::logging::{bridge_log_crate, dropshot_log, metered_logger};
use crate::metrics::Metrics;
use crate::store::{self, Actor, Store, StoreError};
use crate::types::JsonOpenApi;
use crate::validate::Ref;

/// The largest request body accepted, in bytes.
pub const REQUEST_BODY_MAX_BYTES: usize = 1024;
/// The address served when none is given.
pub const DEFAULT_BIND: &str = "127.0.0.1:61016";

/// What a request handler has at hand.
pub struct Context {
    pub(crate) store: Store,
    keys: auth::KeyRing,
    admins: auth::AdminCache,
    pub(crate) spec: JsonOpenApi,
    /// The runner channels' server side.
    pub(crate) channel: Arc<crate::channel::Channel>,
    /// The submitter side's settings.
    pub(crate) submit: Submit,
    /// The server's own base URL (the console's, unless told otherwise).
    pub(crate) own_url: String,
    /// The organization's UUID, read once.
    pub(crate) org: tokio::sync::OnceCell<uuid::Uuid>,
}

impl Context {
    /// The organization's UUID (read from the store once).
    pub(crate) async fn org(&self) -> Result<uuid::Uuid, StoreError> {
        self.org
            .get_or_try_init(|| async { Ok(self.store.organization().await?.uuid) })
            .await
            .copied()
    }
}

/// The submitter side's settings (`bencher run --image`).
#[derive(Clone, Debug)]
pub struct Submit {
    /// The registry a run's job is pulled from (`--registry-url`): a run's
    /// image must be on its host. Without one, runs with a job are refused.
    pub registry_url: Option<String>,
    /// The console's URL (`--console-url`; default: the server's own).
    pub console_url: Option<String>,
    /// How long a registry token lasts (`--registry-token-ttl`): a job's
    /// and the token endpoint's.
    pub registry_token_ttl: std::time::Duration,
}

impl Default for Submit {
    fn default() -> Self {
        Self {
            registry_url: None,
            console_url: None,
            registry_token_ttl: auth::DEFAULT_OCI_TOKEN_TTL,
        }
    }
}

#[async_trait::async_trait]
impl Credentials for Context {
    /// The runner's row, with the key that was checked.
    type Runner = RunnerKey;

    async fn admin(&self, headers: &http::HeaderMap) -> Result<auth::Admin, AuthError> {
        auth::require_admin(&self.store, &self.keys, &self.admins, headers).await
    }

    async fn principal(&self, headers: &http::HeaderMap) -> Result<auth::Principal, AuthError> {
        auth::authenticate(&self.store, &self.keys, &self.admins, headers).await
    }

    async fn runner(
        &self,
        headers: &http::HeaderMap,
        runner: &Ref,
    ) -> Result<RunnerKey, AuthError> {
        RunnerKey::from_request(&self.store, headers, runner).await
    }
}

/// Creates user `admin` with an API token if the database has no admin yet,
/// and returns that token (to be shown once).
pub async fn bootstrap_admin(store: &Store) -> Result<Option<String>, StoreError> {
    if store.has_admin().await? {
        return Ok(None);
    }
    let ttl = Duration::days(DEFAULT_API_TOKEN_TTL_DAYS);
    let (_, token) = auth::issue_api_token(store, "admin", true, ttl, &Actor::program()).await?;
    Ok(Some(token))
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
    /// The log's format.
    pub log_format: LogFormat,
    /// Where to serve the Prometheus metrics (`--metrics-listen`; none:
    /// nowhere).
    pub metrics_listen: Option<SocketAddr>,
    /// Serve HTTPS with this certificate chain and private key (PEM files),
    /// instead of HTTP.
    pub tls: Option<Tls>,
    /// The submitter side's settings.
    pub submit: Submit,
}

/// The PEM files of an HTTPS server.
#[derive(Clone, Debug)]
pub struct Tls {
    /// The certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// The private key (PKCS #8, PKCS #1 or SEC1).
    pub key: PathBuf,
}

/// A TLS configuration ready to serve, and what to warn about it.
struct LoadedTls {
    config: Arc<rustls::ServerConfig>,
    /// The key file is readable by group or others.
    loose_key: Option<String>,
}

impl Tls {
    /// The TLS settings, from the files read now: a missing or unreadable
    /// file is named in the error, and so is one that holds no certificate
    /// or not exactly one private key.
    fn load(&self) -> anyhow::Result<LoadedTls> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let read = |what: &str, path: &PathBuf| {
            std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", path.display()))
        };
        let certs = read("--tls-cert", &self.cert)?;
        let key = read("--tls-key", &self.key)?;
        let unusable = |e: String| anyhow::anyhow!("cannot use the TLS certificate and key: {e}");
        let certs = CertificateDer::pem_slice_iter(&certs)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unusable(format!("--tls-cert {}: {e}", self.cert.display())))?;
        if certs.is_empty() {
            return Err(unusable(format!(
                "no PEM certificate in --tls-cert {}",
                self.cert.display()
            )));
        }
        let keys = PrivateKeyDer::pem_slice_iter(&key)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unusable(format!("--tls-key {}: {e}", self.key.display())))?;
        let [key] = <[_; 1]>::try_from(keys).map_err(|keys| {
            unusable(format!(
                "--tls-key {} holds {} PEM private keys, not one",
                self.key.display(),
                keys.len()
            ))
        })?;
        // The crypto provider dropshot and the clients use (aws-lc), named
        // rather than left to the process default.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| unusable(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| unusable(e.to_string()))?;
        // HTTP/1.1 only: over HTTP/2 the acceptor's byte-level timeouts would
        // not hold (see the acceptor's documentation).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(LoadedTls {
            config: Arc::new(config),
            loose_key: loose_key(&self.key),
        })
    }
}

/// A warning if the key file at `path` is readable by group or others (as
/// OpenSSH complains of a private key).
fn loose_key(path: &std::path::Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "the TLS private key {} is readable by group or others (mode {mode:04o}): \
                 make it owner-only (chmod 600)",
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    None
}

/// A running server: our acceptor on the public address, relaying to
/// dropshot on a loopback port (see [`crate::acceptor`]).
pub struct Server {
    http: HttpServer<Context>,
    acceptor: Acceptor,
    /// The metrics' listener (`--metrics-listen`).
    metrics: Option<crate::metrics::serve::Listener>,
    shutdown_timeout: std::time::Duration,
    /// The API token of the `admin` user created on this start, if the
    /// database had no admin yet. Shown once, stored nowhere.
    pub bootstrap_token: Option<String>,
    tls: bool,
}

impl Server {
    /// [`Server::start_with`] the default limits.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        Self::start_with(config, &Limits::default()).await
    }

    /// Opens the database (creating the admin on first start) and starts
    /// serving, within `limits`.
    pub async fn start_with(config: &Config, limits: &Limits) -> anyhow::Result<Self> {
        let files = acceptor::raise_file_limit();
        // Before the database: a start that cannot serve touches no file.
        let tls = config.tls.as_ref().map(Tls::load).transpose()?;
        let listener = Acceptor::bind(config.bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
        let (db, queue) = (config.db.clone(), limits.write_queue);
        // A path (or sqlite://) is the SQLite file; postgres://… PostgreSQL.
        let store = Store::open_db(&db, queue).await?;
        let secret = store.signing_secret().await?;
        let spec = JsonOpenApi(serde_json::from_str(&openapi_document())?);
        let metrics = Metrics::new(&spec.0);
        let log = metered_logger(config.log_level, config.log_format, &metrics);
        bridge_log_crate(&log, config.log_level);
        for file in store.tightened() {
            slog::warn!(
                log,
                "made {} owner-only (0600): it holds the signing secret",
                file.display()
            );
        }
        if let Some(warning) = tls.as_ref().and_then(|tls| tls.loose_key.as_ref()) {
            slog::warn!(log, "{warning}");
        }
        let max_connections = match limits.max_connections {
            None => acceptor::default_max_connections(files),
            Some(max) => {
                if let Some(files) = files
                    && max > acceptor::connections_for_files(files)
                {
                    slog::warn!(
                        log,
                        "--max-connections {max} is more than the open-file limit ({files}) \
                         leaves room for ({}, at {} files a connection): accepting may fail",
                        acceptor::connections_for_files(files),
                        acceptor::FDS_PER_CONNECTION
                    );
                }
                max
            }
        };
        let mut api = api::api_description::<RunnersImpl>()
            .map_err(|e| anyhow::anyhow!("invalid API description: {e}"))?;
        crate::console::register(&mut api)?;
        // dropshot serves plain HTTP on loopback only: clients reach it
        // through the acceptor, which holds the limits and TLS.
        let dropshot = ConfigDropshot {
            bind_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            default_request_body_max_bytes: REQUEST_BODY_MAX_BYTES,
            ..Default::default()
        };
        // No channel of this process is open yet (on PostgreSQL, other
        // replicas keep theirs).
        store.serve_channels().await?;
        let timeouts = store::rules::Timeouts {
            heartbeat: limits.heartbeat_timeout,
            grace: limits.job_timeout_grace,
        };
        let hub = Hub::start(store.clone(), timeouts, log.clone());
        let context = Context {
            store: store.clone(),
            keys: auth::KeyRing::new(&secret),
            admins: auth::AdminCache::default(),
            spec,
            channel: Arc::new(crate::channel::Channel {
                store: store.clone(),
                hub: Arc::clone(&hub),
                oci: Arc::new(auth::OciTokens::new(
                    store.clone(),
                    config.submit.registry_token_ttl,
                )),
                log: log.clone(),
                metrics: Arc::clone(&metrics),
            }),
            submit: config.submit.clone(),
            own_url: format!(
                "{}://{}",
                if tls.is_some() { "https" } else { "http" },
                listener.local_addr()?
            ),
            org: tokio::sync::OnceCell::new(),
        };
        let http = ServerBuilder::new(api, context, dropshot_log(&log))
            .config(dropshot)
            .start()
            .map_err(|e| anyhow::anyhow!("cannot start the HTTP server: {e:#}"))?;
        slog::debug!(log, "serving HTTP to the acceptor only"; "local_addr" => %http.local_addr());
        let acceptor = Acceptor::start(
            listener,
            http.local_addr(),
            tls.map(|tls| tls.config),
            limits.clone(),
            max_connections,
            log.clone(),
        )?;
        slog::info!(
            log,
            "accepting at most {max_connections} connections at once";
            "open_file_limit" => files,
        );
        // Its own listener, never the API's port.
        let metrics = match config.metrics_listen {
            Some(addr) => {
                let scrape = crate::metrics::serve::Scrape {
                    metrics,
                    store: store.clone(),
                    hub: Arc::clone(&hub),
                    connections: acceptor.stats(),
                };
                // Not through the metered log: scrapes are no API traffic.
                let plain = dropshot_log(&logger(config.log_level, config.log_format));
                Some(crate::metrics::serve::start(addr, scrape, limits, &plain).await?)
            }
            None => None,
        };
        let server = Self {
            http,
            acceptor,
            metrics,
            shutdown_timeout: limits.shutdown_timeout,
            bootstrap_token: None,
            tls: config.tls.is_some(),
        };
        // Only once the server listens: a token created for a start that then
        // failed would never be shown, and no other would be made.
        match bootstrap_admin(&store).await {
            Ok(bootstrap_token) => Ok(Self {
                bootstrap_token,
                ..server
            }),
            Err(e) => {
                let _ = server.close().await;
                Err(anyhow::Error::new(e).context("cannot create the admin user"))
            }
        }
    }

    /// The metrics' URL (`http://ADDR/metrics`), if they are served.
    pub fn metrics_url(&self) -> Option<String> {
        let server = self.metrics.as_ref()?;
        Some(format!("http://{}/metrics", server.local_addr()))
    }

    /// The address the server listens on (the acceptor's).
    pub fn local_addr(&self) -> SocketAddr {
        self.acceptor.local_addr()
    }

    /// The server's base URL: `http://ADDR`, or `https://ADDR` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    /// The connection limit in force.
    pub fn max_connections(&self) -> usize {
        self.acceptor.max_connections()
    }

    /// The store this server serves (for the benchmark's counts).
    pub fn store(&self) -> &Store {
        &self.http.app_private().store
    }

    /// Runner channels open now, and runners waiting for a job now.
    pub fn channels(&self) -> (usize, usize) {
        self.http.app_private().channel.hub.counts()
    }

    /// Resolves only if the server can no longer serve: dropshot's server
    /// ended on its own, or the acceptor did, or the database writer died. The program exits then (never
    /// a live process that does not listen).
    pub async fn failed(&mut self) -> anyhow::Error {
        let dropshot = self.http.wait_for_shutdown();
        let store = self.http.app_private().store.clone();
        tokio::select! {
            () = store.writer_stopped() => {
                anyhow::anyhow!("the database writer stopped: no write can be done")
            }
            result = dropshot => match result {
                Ok(()) => anyhow::anyhow!("the HTTP server stopped"),
                Err(e) => anyhow::anyhow!("the HTTP server stopped: {e}"),
            },
            why = self.acceptor.failed() => anyhow::anyhow!("{why}"),
        }
    }

    /// Stops accepting connections, lets in-flight requests finish for at
    /// most the shutdown timeout, closes every connection left, and closes
    /// the database.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.acceptor.stop_accepting().await;
        if let Some(metrics) = self.metrics.take() {
            metrics.close().await;
        }
        // Runner channels close first ("server shutting down"): their jobs
        // stay claimed or running, for the runners to report after a
        // restart, under the timeout rules.
        let hub = &self.http.app_private().channel.hub;
        hub.shut_down();
        // dropshot's close does not wait for upgraded connections: wait
        // (within the shutdown timeout) for each channel to have sent its
        // close frame before connections are cut.
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        while hub.counts().0 > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let store = self.http.app_private().store.clone();
        // dropshot's graceful close ends each idle connection at once and
        // each busy one after its answer; past the deadline the acceptor
        // closes what is left (a stalled body, say), which ends the rest.
        let closing = self.http.close();
        tokio::pin!(closing);
        let closed = tokio::select! {
            closed = &mut closing => closed,
            () = tokio::time::sleep(self.shutdown_timeout) => {
                self.acceptor.close_all();
                closing.await
            }
        };
        self.acceptor.close_all();
        closed.map_err(|e| anyhow::anyhow!("{e}"))?;
        store.close_writer().await;
        Ok(())
    }
}
