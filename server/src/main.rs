//! The `runners-server` program: serve the API, or manage API tokens.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use runners_server::acceptor::{
    DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_JOB_TIMEOUT_GRACE,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_TLS_HANDSHAKE_TIMEOUT,
};
use runners_server::auth::{self, DEFAULT_API_TOKEN_TTL_DAYS};
use runners_server::server::{DEFAULT_BIND, Tls};
use runners_server::store::Actor;
use runners_server::{Config, Limits, LogLevel, Server, Store, validate};
use uuid::Uuid;

/// A Bencher-compatible runner registry.
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve(Box<ServeArgs>),
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
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Replace the signing secret: every API token signed with the old one is refused (a running server within 1 s), and a new admin token is printed once, alone on stdout.
    Rotate {
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Args)]
struct DbArg {
    /// The SQLite database file (created and migrated if needed).
    #[arg(long, env = "RUNNERS_DB", default_value = "./runners.db")]
    db: PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "RUNNERS_BIND", default_value = DEFAULT_BIND)]
    bind: SocketAddr,
    /// The least severe request-log records to print (to stderr). No level
    /// logs a token or an Authorization header.
    #[arg(long, env = "RUNNERS_LOG_LEVEL", value_enum, default_value_t = Level::Info)]
    log_level: Level,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(
        long,
        env = "RUNNERS_TLS_CERT",
        value_name = "PATH",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "RUNNERS_TLS_KEY",
        value_name = "PATH",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// Client connections open at once. At the limit, a new connection is
    /// accepted by closing a quiet one (one that has sent nothing for 0.25 s
    /// since it connected, else the one with no byte either way for longest,
    /// 1 s at least), or else waits. Default: what the open-file limit
    /// (raised to its hard limit at start) leaves room for, at 3 files a
    /// connection after a reserve, and at most 10000.
    #[arg(long, env = "RUNNERS_MAX_CONNECTIONS", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: Option<u64>,
    /// Seconds a TLS handshake may take.
    #[arg(long, env = "RUNNERS_TLS_HANDSHAKE_TIMEOUT", value_name = "SECONDS",
          default_value_t = Seconds(DEFAULT_TLS_HANDSHAKE_TIMEOUT))]
    tls_handshake_timeout: Seconds,
    /// Seconds from a request's first byte until the server starts
    /// answering (the whole request must arrive within it).
    #[arg(long, env = "RUNNERS_REQUEST_TIMEOUT", value_name = "SECONDS",
          default_value_t = Seconds(DEFAULT_REQUEST_TIMEOUT))]
    request_timeout: Seconds,
    /// Seconds a connection may stay with no request in progress and no
    /// byte moving either way.
    #[arg(long, env = "RUNNERS_IDLE_TIMEOUT", value_name = "SECONDS",
          default_value_t = Seconds(DEFAULT_IDLE_TIMEOUT))]
    idle_timeout: Seconds,
    /// Seconds a shutdown (Ctrl-C, SIGTERM) waits for in-flight requests
    /// before it closes every connection.
    #[arg(long, env = "RUNNERS_SHUTDOWN_TIMEOUT", value_name = "SECONDS",
          default_value_t = Seconds(DEFAULT_SHUTDOWN_TIMEOUT))]
    shutdown_timeout: Seconds,
    /// Writes that may wait for the database at once. A write that finds
    /// the queue full is answered 503 with Retry-After at once; one that
    /// waits longer than the 5 s busy timeout for the database, 503 then.
    #[arg(long, env = "RUNNERS_WRITE_QUEUE", value_name = "N",
          default_value_t = runners_server::store::WRITE_QUEUE_DEFAULT as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    write_queue: u64,
    /// The OCI registry a run's job is pulled from (`http://` or
    /// `https://`), as Bencher fills `config.registry`; a run's image must
    /// be on its host. Without it, runs with a job are refused.
    #[arg(long, env = "RUNNERS_REGISTRY_URL", value_name = "URL", value_parser = registry_url)]
    registry_url: Option<String>,
    /// The console URL Bencher's CLI prints for a report (default: this
    /// server's own URL).
    #[arg(long, env = "RUNNERS_CONSOLE_URL", value_name = "URL", value_parser = console_url)]
    console_url: Option<String>,
    /// Seconds a runner's channel may go without a message: then its job
    /// fails and the channel closes (`heartbeat_timeout`).
    #[arg(long, env = "RUNNERS_HEARTBEAT_TIMEOUT", value_name = "SECONDS",
          default_value_t = Seconds(DEFAULT_HEARTBEAT_TIMEOUT))]
    heartbeat_timeout: Seconds,
    /// Seconds past its timeout a running job may go before it is canceled
    /// (Bencher's grace: 60).
    #[arg(long, env = "RUNNERS_JOB_TIMEOUT_GRACE", value_name = "SECONDS",
          default_value_t = Seconds(DEFAULT_JOB_TIMEOUT_GRACE))]
    job_timeout_grace: Seconds,
    #[command(flatten)]
    db: DbArg,
}

/// A duration given in seconds (`2`, `0.5`, `30s`), from 0.001 s to one day.
#[derive(Clone, Copy)]
struct Seconds(Duration);

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

/// Prints to stderr, ignoring a failure (a closed pipe must not panic the
/// program, as `eprintln!` would).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Writes a line to stdout; a failure (a closed pipe, a full disk) is the
/// command's error, never a panic: what it prints is its result.
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout(), $($arg)*).context("cannot write to stdout")?
    };
}

/// Log levels, most severe first.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Level {
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
enum TokenCommand {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(*args),
        Some(Command::Token(command)) => offline(token_command(command)),
        Some(Command::Key(KeyCommand::Rotate { db })) => offline(rotate_key(db)),
        Some(Command::Audit {
            since,
            runner,
            json,
            db,
        }) => offline(audit(db, since, runner, json)),
        Some(Command::Migrate { from, to }) => offline(migrate(from, to)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--console-url`: a URL by the registry URL's rule (Bencher's CLI
/// refuses to print a report's link otherwise).
fn console_url(value: &str) -> Result<String, String> {
    runners_server::validate::registry_url("--console-url", value)
        .map(|()| value.to_owned())
        .map_err(|e| e.rule)
}

/// `--registry-url`: a job's registry URL, by its rule.
fn registry_url(value: &str) -> Result<String, String> {
    runners_server::validate::registry_url("--registry-url", value)
        .map(|()| value.trim_end_matches('/').to_owned())
        .map_err(|e| e.rule)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = runners_server::server::runtime().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let config = Config {
            submit: runners_server::server::Submit {
                registry_url: args.registry_url,
                console_url: args.console_url,
            },
            bind: args.bind,
            db: args.db.db,
            log_level: args.log_level.into(),
            tls: args
                .tls_cert
                .zip(args.tls_key)
                .map(|(cert, key)| Tls { cert, key }),
        };
        let limits = Limits {
            max_connections: args
                .max_connections
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            tls_handshake_timeout: args.tls_handshake_timeout.0,
            request_timeout: args.request_timeout.0,
            idle_timeout: args.idle_timeout.0,
            shutdown_timeout: args.shutdown_timeout.0,
            write_queue: usize::try_from(args.write_queue).unwrap_or(usize::MAX),
            heartbeat_timeout: args.heartbeat_timeout.0,
            job_timeout_grace: args.job_timeout_grace.0,
        };
        // One server per SQLite file, for as long as this one lives.
        let _lock = runners_server::store::sqlite::files::lock(&config.db)?;
        let mut server = Server::start_with(&config, &limits).await?;
        if let Some(token) = &server.bootstrap_token {
            print_bootstrap_token(token);
        }
        say!(
            "runners-server listening on {} with database {}",
            server.url(),
            runners_server::store::db_shown(&config.db)
        );
        // Serve until told to stop, or until serving has failed: then exit
        // with an error rather than live on without listening.
        tokio::select! {
            signal = shutdown_signal() => signal?,
            failure = server.failed() => return Err(failure.context("cannot serve any more")),
        }
        say!(
            "shutting down: finishing in-flight requests (at most {} s)",
            limits.shutdown_timeout.as_secs_f64()
        );
        server.close().await
    })
}

fn print_bootstrap_token(token: &str) {
    let rule = "=".repeat(72);
    say!(
        "{rule}\nFirst start: created the admin user `admin`. Its API token is shown\n\
         this once and stored nowhere; keep it safe:\n\n{token}\n\n\
         Send it as `Authorization: Bearer <token>` (or `bencher --token <token>`).\n{rule}"
    );
}

/// Waits for Ctrl-C or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot listen for Ctrl-C"),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")
}

/// Runs one of the commands that work on the database file directly.
fn offline(command: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = runners_server::server::runtime().context("cannot start the async runtime")?;
    runtime.block_on(command)
}

async fn rotate_key(db: DbArg) -> anyhow::Result<()> {
    let store = open_store(&db.db).await?;
    let revoked = store.rotate_signing_key(&Actor::program()).await?;
    let ttl = chrono::Duration::days(DEFAULT_API_TOKEN_TTL_DAYS);
    let (_, token) = auth::issue_api_token(&store, "admin", true, ttl, &Actor::program()).await?;
    say!(
        "rotated the signing key: {revoked} API token(s) revoked (a running server refuses \
         them within 1 s). The new API token of user `admin`, shown this once:"
    );
    out!("{token}");
    Ok(())
}

async fn audit(
    db: DbArg,
    since: Option<chrono::DateTime<chrono::Utc>>,
    runner: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let store = open_store(&db.db).await?;
    let rows = store.audit(since, runner).await?;
    if !json {
        out!("TIME\tUSER\tTOKEN\tACTION\tTARGET\tCHANGES");
    }
    for row in rows {
        if json {
            out!("{}", serde_json::to_string(&row)?);
        } else {
            let dash = || "-".to_owned();
            out!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                row.time.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
                row.user.unwrap_or_else(dash),
                row.token.unwrap_or_else(dash),
                row.action,
                row.target_slug.or(row.target_uuid).unwrap_or_else(dash),
                row.changes
            );
        }
    }
    Ok(())
}

/// `migrate --from PATH --to postgres://…`: the rows copied, per table, on
/// stdout.
async fn migrate(from: PathBuf, to: String) -> anyhow::Result<()> {
    let shown = runners_server::store::db_shown(std::path::Path::new(&to));
    // No server may write to the file while it is migrated and copied.
    let _lock = runners_server::store::sqlite::files::lock(&from)?;
    let copied = runners_server::store::migrate::migrate(&from, &to).await?;
    out!("TABLE\tROWS");
    for (table, rows) in &copied.tables {
        out!("{table}\t{rows}");
    }
    say!(
        "copied {} into {shown}: start runners-server with --db on it",
        from.display()
    );
    Ok(())
}

/// Opens the database for a `token` command, saying on stderr if its files
/// had to be made owner-only.
async fn open_store(db: &std::path::Path) -> anyhow::Result<Store> {
    let store = Store::open_db(db, runners_server::store::WRITE_QUEUE_DEFAULT).await?;
    for file in store.tightened() {
        say!(
            "made {} owner-only (0600): it holds the signing secret",
            file.display()
        );
    }
    Ok(store)
}

async fn token_command(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            user,
            admin,
            days,
            db,
        } => {
            validate::name("--user", &user)?;
            let store = open_store(&db.db).await?;
            let ttl = chrono::Duration::days(days);
            let (_, token) =
                auth::issue_api_token(&store, &user, admin, ttl, &Actor::program()).await?;
            out!("{token}");
        }
        TokenCommand::List { db } => {
            let store = open_store(&db.db).await?;
            out!("UUID\tUSER\tADMIN\tCREATED\tEXPIRES\tREVOKED");
            for t in store.list_api_tokens().await? {
                let time =
                    |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
                out!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    t.uuid,
                    t.user_name,
                    t.admin,
                    time(t.created),
                    time(t.expires),
                    t.revoked.map(time).unwrap_or_else(|| "-".into())
                );
            }
        }
        TokenCommand::Revoke { token, db } => {
            let store = open_store(&db.db).await?;
            store.revoke_api_token(token, &Actor::program()).await?;
            say!("revoked API token {token}; a running server refuses it within 1 s");
        }
    }
    Ok(())
}
