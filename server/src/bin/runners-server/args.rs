//! The command line: every command, flag and environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use runners_server::LogLevel;
use runners_server::acceptor::{
    DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_JOB_TIMEOUT_GRACE,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_TLS_HANDSHAKE_TIMEOUT,
};
use runners_server::auth::DEFAULT_API_TOKEN_TTL_DAYS;
use runners_server::server::DEFAULT_BIND;
use uuid::Uuid;

/// A Bencher-compatible runner registry.
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve(Box<ServeArgs>),
    /// Print serve's settings in effect (the --config file, the environment and the flags over the defaults) as a TOML file that --config takes; a PostgreSQL password hidden.
    Config(Box<ServeArgs>),
    /// Manage API tokens (works while the server runs).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the key that signs API tokens (works while the server runs).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Print the audit trail of admin writes, oldest first (newest last).
    Audit {
        /// Only entries at or after this time (RFC 3339, e.g. 2026-11-25T00:00:00Z).
        #[arg(long, value_name = "TIME")]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only entries about this runner (slug or UUID).
        #[arg(long, value_name = "RUNNER")]
        runner: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Copy a SQLite registry (runners, keys, specs, jobs, users, tokens, audit) into an empty PostgreSQL database; runner keys and API tokens keep working. Prints the rows copied per table.
    Migrate {
        /// The SQLite database file to copy (it must exist; it is migrated to this server's schema first).
        #[arg(long, value_name = "PATH")]
        from: PathBuf,
        /// The PostgreSQL database to copy into (postgres://…); it must hold no data.
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Print the `auth` block of an OCI registry's (CNCF distribution's) configuration that makes this server its token service, and write the certificate bundle it names (every registry key not retired).
    RegistryConfig {
        /// This server's URL as the registry's clients reach it (the token endpoint's realm).
        #[arg(long, value_name = "URL", value_parser = server_url)]
        server_url: String,
        /// Where to write the certificate bundle (PEM), as the registry will read it.
        #[arg(long, value_name = "PATH")]
        bundle: PathBuf,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Replace the signing secret: every API token signed with the old one is refused (a running server within 1 s), and a new admin token is printed once, alone on stdout.
    ///
    /// With --registry: sign registry tokens with a new key from now on (a running server within 1 s); the previous key stays in the registry's bundle until it is retired.
    Rotate {
        /// Rotate the key that signs registry tokens instead.
        #[arg(long)]
        registry: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Retire every registry key but the newest: the next bundle leaves them out, and tokens they signed are refused once the registry restarts with it.
    Retire {
        /// The registry keys (the only keys that are retired).
        #[arg(long, required = true)]
        registry: bool,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Args)]
pub struct DbArg {
    /// The SQLite database file (created and migrated if needed).
    #[arg(long, env = "RUNNERS_DB", default_value = "./runners.db")]
    pub db: PathBuf,
}

#[derive(Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "RUNNERS_BIND", default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// The least severe request-log records to print (to stderr). No level
    /// logs a token or an Authorization header.
    #[arg(long, env = "RUNNERS_LOG_LEVEL", value_enum, default_value_t = Level::Info)]
    pub log_level: Level,
    /// The log's format on stderr: `text` (one line a record) or `json`
    /// (bunyan: one JSON object a line, as Oxide's services log).
    #[arg(long, env = "RUNNERS_LOG_FORMAT", value_enum, default_value_t = Format::Text)]
    pub log_format: Format,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(
        long,
        env = "RUNNERS_TLS_CERT",
        value_name = "PATH",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "RUNNERS_TLS_KEY",
        value_name = "PATH",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Client connections open at once. At the limit, a new connection is
    /// accepted by closing a quiet one (one that has sent nothing for 0.25 s
    /// since it connected, else the one with no byte either way for longest,
    /// 1 s at least), or else waits. Default: what the open-file limit
    /// (raised to its hard limit at start) leaves room for, at 3 files a
    /// connection after a reserve, and at most 10000.
    #[arg(long, env = "RUNNERS_MAX_CONNECTIONS", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: Option<u64>,
    /// Seconds a TLS handshake may take.
    #[arg(long, env = "RUNNERS_TLS_HANDSHAKE_TIMEOUT", value_name = "SECONDS",
          default_value_t = Seconds(DEFAULT_TLS_HANDSHAKE_TIMEOUT))]
    pub tls_handshake_timeout: Seconds,
    /// Seconds from a request's first byte until the server starts
    /// answering (the whole request must arrive within it).
    #[arg(long, env = "RUNNERS_REQUEST_TIMEOUT", value_name = "SECONDS",
          default_value_t = Seconds(DEFAULT_REQUEST_TIMEOUT))]
    pub request_timeout: Seconds,
    /// Seconds a connection may stay with no request in progress and no
    /// byte moving either way.
    #[arg(long, env = "RUNNERS_IDLE_TIMEOUT", value_name = "SECONDS",
          default_value_t = Seconds(DEFAULT_IDLE_TIMEOUT))]
    pub idle_timeout: Seconds,
    /// Seconds a shutdown (Ctrl-C, SIGTERM) waits for in-flight requests
    /// before it closes every connection.
    #[arg(long, env = "RUNNERS_SHUTDOWN_TIMEOUT", value_name = "SECONDS",
          default_value_t = Seconds(DEFAULT_SHUTDOWN_TIMEOUT))]
    pub shutdown_timeout: Seconds,
    /// Writes that may wait for the database at once. A write that finds
    /// the queue full is answered 503 with Retry-After at once; one that
    /// waits longer than the 5 s busy timeout for the database, 503 then.
    #[arg(long, env = "RUNNERS_WRITE_QUEUE", value_name = "N",
          default_value_t = runners_server::store::WRITE_QUEUE_DEFAULT as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub write_queue: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics (a listener of its
    /// own, never the API's port; off by default).
    #[arg(long, env = "RUNNERS_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// The OCI registry a run's job is pulled from (`http://` or
    /// `https://`), as Bencher fills `config.registry`; a run's image must
    /// be on its host. Without it, runs with a job are refused.
    #[arg(long, env = "RUNNERS_REGISTRY_URL", value_name = "URL", value_parser = registry_url)]
    pub registry_url: Option<String>,
    /// The console URL Bencher's CLI prints for a report (default: this
    /// server's own URL).
    #[arg(long, env = "RUNNERS_CONSOLE_URL", value_name = "URL", value_parser = console_url)]
    pub console_url: Option<String>,
    /// Seconds a runner's channel may go without a message: then its job
    /// fails and the channel closes (`heartbeat_timeout`).
    #[arg(long, env = "RUNNERS_HEARTBEAT_TIMEOUT", value_name = "SECONDS",
          default_value_t = Seconds(DEFAULT_HEARTBEAT_TIMEOUT))]
    pub heartbeat_timeout: Seconds,
    /// Seconds past its timeout a running job may go before it is canceled
    /// (Bencher's grace: 60).
    #[arg(long, env = "RUNNERS_JOB_TIMEOUT_GRACE", value_name = "SECONDS",
          default_value_t = Seconds(DEFAULT_JOB_TIMEOUT_GRACE))]
    pub job_timeout_grace: Seconds,
    /// Seconds a registry token lasts: a job's (pull only, the agent pulls
    /// before it runs) and the token endpoint's (Bencher's: 600).
    #[arg(long, env = "RUNNERS_REGISTRY_TOKEN_TTL", value_name = "SECONDS",
          default_value_t = 600, value_parser = whole_seconds)]
    pub registry_token_ttl: u64,
    #[command(flatten)]
    pub db: DbArg,
    /// A TOML file of these settings, one key a flag (`registry_url =
    /// "http://…"`); flags and the environment override it
    /// (`runners-server config` prints every key).
    #[arg(long, env = "RUNNERS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A duration given in seconds (`2`, `0.5`, `30s`), from 0.001 s to one day.
#[derive(Clone, Copy)]
pub struct Seconds(pub Duration);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

impl std::str::FromStr for Seconds {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let number = text.strip_suffix('s').unwrap_or(text);
        number
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .filter(|d| (Duration::from_millis(1)..=Duration::from_secs(86_400)).contains(d))
            .map(Seconds)
            .ok_or_else(|| format!("`{text}` is not a number of seconds from 0.001 to 86400"))
    }
}

/// Log formats.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

impl From<Format> for runners_server::LogFormat {
    fn from(format: Format) -> Self {
        match format {
            Format::Text => Self::Text,
            Format::Json => Self::Json,
        }
    }
}

/// Log levels, most severe first.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Level {
    Critical,
    Error,
    Warning,
    Info,
    Debug,
    Trace,
}

impl From<Level> for LogLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Critical => LogLevel::Critical,
            Level::Error => LogLevel::Error,
            Level::Warning => LogLevel::Warning,
            Level::Info => LogLevel::Info,
            Level::Debug => LogLevel::Debug,
            Level::Trace => LogLevel::Trace,
        }
    }
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token (and the user, if needed); prints the token alone on stdout.
    Create {
        /// The user the token is for.
        #[arg(long)]
        user: String,
        /// Make the user an admin (admins may use every runners endpoint).
        #[arg(long)]
        admin: bool,
        /// Days until the token expires.
        #[arg(long, default_value_t = DEFAULT_API_TOKEN_TTL_DAYS,
              value_parser = clap::value_parser!(i64).range(1..=36500))]
        days: i64,
        #[command(flatten)]
        db: DbArg,
    },
    /// List API tokens (never the tokens themselves).
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Revoke an API token by its UUID (as shown by `token list`); a running server refuses it within 1 s.
    Revoke {
        /// The token's UUID.
        token: Uuid,
        #[command(flatten)]
        db: DbArg,
    },
}

/// `--console-url`: a URL by the registry URL's rule (Bencher's CLI
/// refuses to print a report's link otherwise).
pub(crate) fn console_url(value: &str) -> Result<String, String> {
    runners_server::validate::registry_url("--console-url", value)
        .map(|()| value.to_owned())
        .map_err(|e| e.rule)
}

/// Whole seconds (`600`, `600s`) from 1 to a day.
pub(crate) fn whole_seconds(text: &str) -> Result<u64, String> {
    let number = text.strip_suffix('s').unwrap_or(text);
    number
        .parse::<u64>()
        .ok()
        .filter(|s| (1..=86_400).contains(s))
        .ok_or_else(|| format!("`{text}` is not a whole number of seconds from 1 to 86400"))
}

/// `--server-url`: a URL by the registry URL's rule (`http://` or
/// `https://`, a host), without a trailing `/`.
pub(crate) fn server_url(value: &str) -> Result<String, String> {
    runners_server::validate::registry_url("--server-url", value)
        .map(|()| value.trim_end_matches('/').to_owned())
        .map_err(|e| e.rule)
}

/// `--registry-url`: a job's registry URL, by its rule.
pub(crate) fn registry_url(value: &str) -> Result<String, String> {
    runners_server::validate::registry_url("--registry-url", value)
        .map(|()| value.trim_end_matches('/').to_owned())
        .map_err(|e| e.rule)
}
