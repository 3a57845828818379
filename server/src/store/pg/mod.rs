//! The PostgreSQL engine (the design is `../ENGINES.md`): [`PgStore`],
//! every operation of [`super::Store`] on tokio-postgres + deadpool-postgres,
//! each one transaction on a pooled connection with its audit row and its
//! events (`NOTIFY`) in it; the schema and its migrations under an advisory
//! lock ([`schema`]); events across replicas ([`events`]); replica leases
//! ([`replicas`]); `migrate` from a SQLite file ([`migrate`]). Its results
//! are the SQLite store's for the same calls (`tests.rs` compares them).

mod audit;
mod claims;
mod columns;
pub mod events;
mod gauges;
pub mod item;
mod items;
mod jobs;
mod keys;
mod projects;
mod registry_keys;
mod replicas;
mod reports;
mod runner_specs;
mod runners;
pub mod schema;
mod specs;
mod tokens;
mod triggers;

#[cfg(test)]
mod tests;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use std::sync::atomic::Ordering::Relaxed;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use uuid::Uuid;

use super::error::{BUSY_TIMEOUT, StoreError};
use super::model::events::{Event, Listener};
use super::model::{RunnerId, now};
use super::operations::EngineOps;
use audit::record;
pub(crate) use runners::RECOUNT;
pub(crate) use triggers::JOB_RECOUNT;

/// Connections to PostgreSQL per server process. A replica's share of the
/// server's `max_connections` (100 by default): a few replicas fit.
pub const POOL_SIZE: usize = 16;

/// The PostgreSQL store. Cloning is cheap: clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// For the LISTEN connection, which is not the pool's.
    config: tokio_postgres::Config,
    tls: Tls,
    /// This process, as the holder of runners' channels ([`replicas`]).
    replica: Uuid,
    /// The channels this process holds open (runner row id → when it
    /// opened), which [`replicas`] keeps the database's `channel` columns
    /// true to.
    open_channels:
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<RunnerId, DateTime<Utc>>>>,
    /// Held while a channel's record is written and while the reconcile
    /// runs, so that the reconcile never works from a set of channels a
    /// write has made stale.
    channel_writes: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Whether its LISTEN connection was started ([`EngineOps::listen`]).
    listening: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Whether that connection is up now (readiness).
    listen_connected: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// How many times it was made again after it was lost (the metrics).
    listen_reconnects: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// A transaction of the pool.
type Tx<'a> = deadpool_postgres::Transaction<'a>;

impl PgStore {
    /// Connects to the database at `url` (`postgres://…`), migrates it under
    /// the advisory lock, and makes sure it holds a signing key and the
    /// organization.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        Self::open_config(config_from_url(url)?).await
    }

    /// [`PgStore::open`], from a parsed configuration.
    pub async fn open_config(mut config: tokio_postgres::Config) -> anyhow::Result<Self> {
        let tls = tls(&mut config)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(BUSY_TIMEOUT))
            .create_timeout(Some(BUSY_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .context("cannot make the PostgreSQL connection pool")?;
        let mut client = pool
            .get()
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL: {}", pool_error(&e)))?;
        // A write is acknowledged only once PostgreSQL has committed it.
        let sync: String = client
            .query_one("SHOW synchronous_commit", &[])
            .await?
            .get(0);
        if sync == "off" {
            bail!(
                "PostgreSQL has synchronous_commit = off: an acknowledged write could be lost; \
                 set it to on (or local, remote_write, remote_apply)"
            );
        }
        schema::migrate(&mut client).await?;
        tokens::ensure_signing_key(&client)
            .await
            .map_err(|e| anyhow::anyhow!("cannot store the signing key: {e}"))?;
        registry_keys::ensure_registry_key(&client)
            .await
            .context("cannot store the registry key")?;
        projects::ensure_organization(&client)
            .await
            .map_err(|e| anyhow::anyhow!("cannot store the organization: {e}"))?;
        drop(client);
        let replica = Uuid::new_v4();
        Ok(Self {
            pool,
            config,
            tls,
            replica,
            open_channels: std::sync::Arc::default(),
            channel_writes: std::sync::Arc::default(),
            listening: std::sync::Arc::default(),
            listen_connected: std::sync::Arc::default(),
            listen_reconnects: std::sync::Arc::default(),
        })
    }

    /// Hands every event of the database's writers (this process's
    /// included) to `deliver`, on a LISTEN connection of its own, for as
    /// long as the process runs. A lost connection is made again (every
    /// second until it is), and then `deliver` gets [`Event::Resync`]:
    /// events sent meanwhile are not replayed, so every channel looks again.
    ///
    fn listen_forever(&self, deliver: std::sync::Arc<dyn Fn(Event) + Send + Sync>) {
        let (config, tls) = (self.config.clone(), self.tls.clone());
        let connected = self.listen_connected.clone();
        let reconnects = self.listen_reconnects.clone();
        let pool = self.pool.clone();
        // A channel opened by this process is no news to it.
        let replica = self.replica;
        let own: std::sync::Arc<dyn Fn(Event) + Send + Sync> = {
            let deliver = deliver.clone();
            std::sync::Arc::new(move |event| match event {
                Event::ChannelOpened { replica: by, .. } if by == replica => {}
                event => deliver(event),
            })
        };
        tokio::spawn(async move {
            let mut lost = false;
            while !pool.is_closed() {
                if let Ok(listening) = events::listen(&config, &tls, own.clone()).await {
                    connected.store(true, Relaxed);
                    if lost {
                        reconnects.fetch_add(1, Relaxed);
                        deliver(Event::Resync);
                    }
                    // Until it is lost, or the store is closed.
                    let closed = async {
                        while !pool.is_closed() {
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        }
                    };
                    tokio::select! {
                        () = listening.closed() => {}
                        () = closed => return,
                    }
                    connected.store(false, Relaxed);
                }
                lost = true;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }

    /// A connection of the pool (none free within the busy timeout: Busy).
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }
}

/// A read-only transaction on one snapshot (`REPEATABLE READ`), so that a
/// page and its count agree.
pub(super) async fn snapshot(
    client: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    Ok(client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

/// One line about a PostgreSQL error: the server's message if it sent one.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => db.message().to_owned(),
        // "error connecting to server: Connection refused (os error 111)"
        (None, Some(source)) => format!("{e}: {source}"),
        (None, None) => e.to_string(),
    }
}

fn pool_error(e: &PoolError) -> String {
    match e {
        PoolError::Backend(e) => describe(e),
        e => e.to_string(),
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code() {
            // Waited past lock_timeout / statement_timeout: as SQLite's busy.
            Some(code)
                if *code == SqlState::LOCK_NOT_AVAILABLE || *code == SqlState::QUERY_CANCELED =>
            {
                Self::Busy
            }
            Some(code) if *code == SqlState::DISK_FULL => Self::DiskFull,
            // The server shutting down, starting, or full of connections.
            Some(code)
                if [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::TOO_MANY_CONNECTIONS,
                ]
                .contains(code) =>
            {
                Self::Unavailable
            }
            // No connection: refused, reset, closed (not a statement's
            // error, which has a code).
            None if e.is_closed()
                || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()) =>
            {
                Self::Unavailable
            }
            _ => Self::Pg(e),
        }
    }
}

/// How long one operation of the PostgreSQL engine may take, from asking
/// for a connection to its last answer: past it, the caller is answered
/// [`StoreError::Unavailable`] (503) rather than wait on a database that
/// does not answer (stopped with SIGSTOP, a partition that keeps TCP
/// open). A write so answered may still commit once the database answers
/// again: it was sent, and its fate is the database's.
pub(crate) const OP_TIMEOUT: std::time::Duration = BUSY_TIMEOUT;

/// `op`, bounded by [`OP_TIMEOUT`].
pub(crate) async fn bounded<T>(
    op: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(OP_TIMEOUT, op)
        .await
        .unwrap_or(Err(StoreError::Unavailable))
}

impl From<PoolError> for StoreError {
    /// No connection came free (or could be made) within the busy timeout.
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => e.into(),
            PoolError::Timeout(_) => Self::Busy,
            e => Self::Task(format!("PostgreSQL pool: {e}")),
        }
    }
}

/// The name of the unique constraint `e` violated (SQLSTATE 23505), if
/// that is what failed.
pub(super) fn unique_violation(e: &tokio_postgres::Error) -> Option<&str> {
    let db = e.as_db_error()?;
    if *db.code() == SqlState::UNIQUE_VIOLATION {
        db.constraint()
    } else {
        None
    }
}

impl EngineOps for PgStore {
    /// Every event, this process's own included, comes through the
    /// database: one LISTEN connection hands it over (set once).
    fn listen(&self, listener: Listener) {
        if !self
            .listening
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.listen_forever(std::sync::Arc::from(listener));
        }
    }

    /// Each write committed before it was answered; the lease (if this
    /// process served) ends, and the pool's connections close as they drop.
    async fn close(&self) {
        let _ = self.end_lease().await;
        self.pool.close();
    }

    /// No writer thread: PostgreSQL's own processes do the writing.
    async fn writer_stopped(&self) {
        std::future::pending().await
    }

    fn stats(&self) -> crate::store::model::gauges::EngineStats {
        let status = self.pool.status();
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        crate::store::model::gauges::EngineStats::Pg {
            pool_size: n(status.size),
            pool_available: n(status.available),
            pool_waiting: n(status.waiting),
            listen_reconnects: self.listen_reconnects.load(Relaxed),
        }
    }

    async fn gauges(&self) -> Result<crate::store::model::gauges::Gauges, StoreError> {
        gauges::gauges(self).await
    }

    /// A `SELECT 1` within 2 s, and `LISTEN` connected once asked for.
    async fn readiness(&self) -> Result<(), String> {
        if self.listening.load(Relaxed) && !self.listen_connected.load(Relaxed) {
            return Err("its LISTEN connection to PostgreSQL is lost".into());
        }
        let ping = async {
            let client = self.client().await?;
            client.query_one("SELECT 1", &[]).await?;
            Ok::<_, StoreError>(())
        };
        match tokio::time::timeout(std::time::Duration::from_secs(2), ping).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("PostgreSQL does not answer: {e}")),
            Err(_) => Err("PostgreSQL does not answer within 2 s".into()),
        }
    }

    /// Not counted on PostgreSQL.
    fn calls(&self) -> u64 {
        0
    }

    fn write_stats(&self) -> (u64, u64) {
        (0, 0)
    }

    fn tightened(&self) -> &[std::path::PathBuf] {
        &[]
    }
}

/// The connection settings of a `postgres://` URL, checked first so that a
/// mistake is named: each query parameter must be one this server takes,
/// and `sslmode` one of `disable`, `prefer`, `require`, `verify-ca` or
/// `verify-full` (the last two as `require`, which verifies the certificate
/// and the host name). Connecting gives up after 5 s unless the URL says
/// otherwise (`connect_timeout`). The URL's text is never in a message: it
/// may hold a password.
pub(crate) fn config_from_url(url: &str) -> anyhow::Result<tokio_postgres::Config> {
    const TAKEN: &[&str] = &[
        "user",
        "password",
        "dbname",
        "options",
        "application_name",
        "sslmode",
        "host",
        "hostaddr",
        "port",
        "connect_timeout",
        "tcp_user_timeout",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_retries",
        "target_session_attrs",
        "channel_binding",
        "load_balance_hosts",
    ];
    let mut parsed = url::Url::parse(url)
        .map_err(|e| anyhow::anyhow!("the PostgreSQL URL is not valid: {e}"))?;
    let mut pairs = Vec::new();
    for (key, value) in parsed.query_pairs() {
        if !TAKEN.contains(&key.as_ref()) {
            bail!(
                "the PostgreSQL URL's parameter `{key}` is not one this server takes (it takes {})",
                TAKEN.join(", ")
            );
        }
        let value = match (key.as_ref(), value.as_ref()) {
            ("sslmode", "disable" | "prefer" | "require") => value.into_owned(),
            ("sslmode", "verify-ca" | "verify-full") => "require".to_owned(),
            ("sslmode", other) => bail!(
                "the PostgreSQL URL's sslmode `{other}` is not one of disable, prefer, require, \
                 verify-ca, verify-full"
            ),
            _ => value.into_owned(),
        };
        pairs.push((key.into_owned(), value));
    }
    if !pairs.is_empty() {
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let mut config: tokio_postgres::Config = parsed
        .as_str()
        .parse()
        .map_err(|e| anyhow::anyhow!("the PostgreSQL URL is not valid: {}", describe(&e)))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(BUSY_TIMEOUT);
    }
    Ok(config)
}

/// How this process connects to PostgreSQL: with `sslmode=require` in the
/// URL, TLS (rustls), the server's certificate verified against the
/// system's roots (stricter than libpq's `require`, which verifies
/// nothing); otherwise plain (the default `prefer` is taken as `disable`,
/// so that a server with a certificate the system does not trust is not
/// refused where libpq would connect).
pub(crate) type Tls = tokio_postgres_rustls::MakeRustlsConnect;

/// The [`Tls`] for `config`, whose `prefer` becomes `disable`.
pub(crate) fn tls(config: &mut tokio_postgres::Config) -> anyhow::Result<Tls> {
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Prefer {
        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
    }
    let mut roots = rustls::RootCertStore::empty();
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("cannot set up TLS for PostgreSQL")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Tls::new(client))
}

/// Creates a fresh, empty database on the server `admin_url` names (its
/// user may create databases) and returns its URL: one per test server
/// (the e2e fixture's, with `RUNNERS_TEST_PG`).
pub async fn fresh_database(admin_url: &str) -> anyhow::Result<String> {
    let config = config_from_url(admin_url)?;
    let (client, connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn(connection);
    let name = format!("t_{}", Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|e| anyhow::anyhow!("cannot create a test database: {}", describe(&e)))?;
    drop(client);
    let _ = driver.await;
    let mut url = url::Url::parse(admin_url)?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}
