//! The `runners-server` program: serve the API, or manage its database
//! (API tokens, keys, the audit trail, a migration to PostgreSQL).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use runners_server::server::Tls;
use runners_server::{Config, Limits, LogFormat, Server};

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

mod args;
mod commands;
mod config;
mod registry;

use args::{Command, KeyCommand, ServeArgs};
use commands::*;

fn main() -> ExitCode {
    let (cli, matches) = match config::parse() {
        Ok(parsed) => parsed,
        Err(e) => {
            say!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(*args),
        Some(Command::Config(_)) => config::print(&matches),
        Some(Command::Token(command)) => offline(token_command(command)),
        Some(Command::Key(KeyCommand::Rotate {
            registry: false,
            db,
        })) => offline(rotate_key(db)),
        Some(Command::Key(KeyCommand::Rotate { registry: true, db })) => {
            offline(registry::rotate(db))
        }
        Some(Command::Key(KeyCommand::Retire { db, .. })) => offline(registry::retire(db)),
        Some(Command::RegistryConfig {
            server_url,
            bundle,
            db,
        }) => offline(registry::config(db, &server_url, &bundle)),
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

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = runners_server::server::runtime().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let config = Config {
            submit: runners_server::server::Submit {
                registry_url: args.registry_url,
                console_url: args.console_url,
                registry_token_ttl: std::time::Duration::from_secs(args.registry_token_ttl),
            },
            bind: args.bind,
            db: args.db.db,
            log_level: args.log_level.into(),
            log_format: args.log_format.into(),
            metrics_listen: args.metrics_listen,
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
        let json = config.log_format == LogFormat::Json;
        let log = json.then(|| runners_server::server::logger(config.log_level, config.log_format));
        if let Some(token) = &server.bootstrap_token {
            print_bootstrap_token(token, json);
        }
        let db = runners_server::store::db_shown(&config.db);
        match &log {
            Some(log) => slog::info!(log, "listening"; "url" => server.url(), "db" => db,
                                     "metrics" => server.metrics_url()),
            None => say!(
                "runners-server listening on {} with database {db}",
                server.url()
            ),
        }
        if let (Some(url), None) = (server.metrics_url(), &log) {
            say!("metrics at {url}");
        }
        // Ready for systemd (Type=notify): the listener is up. Without
        // NOTIFY_SOCKET this does nothing.
        let status = format!("listening on {}", server.url());
        let ready = [
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(&status),
        ];
        if let Err(e) = sd_notify::notify(&ready) {
            say!("cannot tell systemd that the server is ready: {e}");
        }
        // Serve until told to stop, or until serving has failed: then exit
        // with an error rather than live on without listening.
        tokio::select! {
            signal = shutdown_signal() => signal?,
            failure = server.failed() => return Err(failure.context("cannot serve any more")),
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        let wait = limits.shutdown_timeout.as_secs_f64();
        match &log {
            Some(log) => slog::info!(log, "shutting down"; "shutdown_timeout_s" => wait),
            None => say!("shutting down: finishing in-flight requests (at most {wait} s)"),
        }
        server.close().await
    })
}

/// The first start's admin token, shown this once on stderr: a banner, or
/// with `--log-format json` one bunyan line of its own (written around the
/// log's redaction, which would hide the token).
fn print_bootstrap_token(token: &str, json: bool) {
    if json {
        let line = serde_json::json!({
            "v": 0, "level": 30, "name": "runners-server", "pid": std::process::id(),
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "msg": "first start: created the admin user `admin`; its API token is shown this \
                    once and stored nowhere",
            "admin_token": token,
        });
        say!("{line}");
        return;
    }
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
