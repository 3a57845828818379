//! `bencher`: the project, key, report, job, runner and spec commands of
//! Bencher's CLI, on the generated SDK. Runs (`bencher run`) are Bencher's
//! own CLI's: it works against this server unchanged.
//!
//! Results go to stdout as pretty JSON, so they can be piped; everything
//! else (the list's total count, errors) goes to stderr. Exit status: 0 on
//! success, 1 when the API or the network failed, 2 for a usage error.

mod job;
mod key;
mod list;
mod parser;
mod project;
mod runner;
mod spec;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use parser::{CliBencher, CliSub, CliUser};
use runners_sdk::{ResponseValue, types};

type Result<T> = std::result::Result<T, runners_sdk::Error<types::Error>>;

/// What a command got back, to print.
pub enum Output {
    /// One JSON value (an item, or a runner's specs).
    One(serde_json::Value),
    /// A list, with its `X-Total-Count`.
    List(serde_json::Value, Option<u64>),
    /// Text for people (`job view --format text`).
    Text(String),
    /// Deleted: nothing to print.
    Deleted,
}

impl Output {
    fn one<T: serde::Serialize>(response: ResponseValue<T>) -> Self {
        Self::One(json(&response.into_inner()))
    }

    fn list<T: serde::Serialize>(items: Vec<T>, total: Option<u64>) -> Self {
        Self::List(json(&items), total)
    }
}

/// The SDK's types are plain serde data: serializing them cannot fail.
fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("SDK types serialize")
}

fn main() -> ExitCode {
    let cli = CliBencher::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return CliError::Other(format!("cannot start the runtime: {e}")).report(),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

async fn run(cli: CliBencher) -> std::result::Result<(), CliError> {
    // Checked before any request is sent.
    let (flag, token) = cli.backend.credential().map_err(CliError::Usage)?;
    let host = cli.backend.host.as_str();
    let timeout = Duration::from_secs(cli.backend.timeout);
    let ca_pem = match &cli.backend.ca_cert {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            CliError::Usage(format!("--ca-cert: cannot read {}: {e}", path.display()))
        })?),
        None => None,
    };
    let options = runners_sdk::ClientOptions { timeout, ca_pem };
    let client = runners_sdk::client_with_options(host, token, &options).map_err(|e| {
        let flag = match e {
            runners_sdk::ClientBuildError::InvalidCa(_) => "--ca-cert",
            _ => flag,
        };
        CliError::Usage(format!("{flag}: {e}"))
    })?;
    let target = Target {
        host: host.trim_end_matches('/').to_owned(),
        timeout: cli.backend.timeout,
    };
    let output = match cli.sub {
        CliSub::Project(command) => project::run(&client, command).await,
        CliSub::Report(command) => project::report(&client, command).await,
        CliSub::User(CliUser::Key(command)) => key::run(&client, command).await,
        CliSub::Runner(command) => runner::run(&client, command).await,
        CliSub::Spec(command) => spec::run(&client, command).await,
        CliSub::Job(command) => job::run(&client, command).await,
    }
    .map_err(|e| CliError::from_sdk(e, &target))?;
    match output {
        Output::One(value) => print_json(&value),
        Output::List(items, total) => {
            if let Some(total) = total {
                eprintln!("X-Total-Count: {total}");
            }
            print_json(&items)
        }
        Output::Text(text) => print_text(&text),
        Output::Deleted => Ok(()),
    }
}

/// Where requests went, for error messages.
struct Target {
    host: String,
    timeout: u64,
}

/// Why a command failed; each kind has its exit status.
enum CliError {
    /// The command line cannot work (exit 2).
    Usage(String),
    /// The server answered with an error (exit 1).
    Api {
        status: reqwest::StatusCode,
        body: types::Error,
    },
    /// Anything else: the network, an unexpected answer, stdout (exit 1).
    Other(String),
}

impl CliError {
    fn from_sdk(error: runners_sdk::Error<types::Error>, target: &Target) -> Self {
        use runners_sdk::Error;
        match error {
            Error::ErrorResponse(response) => Self::Api {
                status: response.status(),
                body: response.into_inner(),
            },
            Error::InvalidRequest(message) => Self::Usage(message),
            Error::CommunicationError(e) | Error::ResponseBodyError(e) if e.is_timeout() => {
                Self::Other(format!(
                    "no answer from {} within {} s (see --timeout)",
                    target.host, target.timeout
                ))
            }
            Error::CommunicationError(e) if e.is_connect() || e.is_request() => {
                Self::Other(format!("cannot reach {}: {}", target.host, root_cause(&e)))
            }
            Error::CommunicationError(e) | Error::ResponseBodyError(e) => Self::Other(format!(
                "request to {} failed: {}",
                target.host,
                root_cause(&e)
            )),
            Error::UnexpectedResponse(response) => Self::Other(format!(
                "unexpected answer from {}: {} (is it a runners API server?)",
                target.host,
                response.status()
            )),
            Error::InvalidResponsePayload(_, e) => Self::Other(format!(
                "unexpected answer from {}: the body does not match the API ({e})",
                target.host
            )),
            other => Self::Other(other.to_string()),
        }
    }

    /// Prints the error to stderr and gives the exit status.
    fn report(self) -> ExitCode {
        let mut stderr = std::io::stderr().lock();
        // Nothing more can be done if stderr itself is gone.
        let _ = match &self {
            Self::Usage(message) | Self::Other(message) => writeln!(stderr, "error: {message}"),
            Self::Api { status, body } => writeln!(
                stderr,
                "error: the server answered {status}\n  error_code: {}\n  message: {}\n  request_id: {}",
                body.error_code.as_deref().unwrap_or("(none)"),
                body.message,
                body.request_id,
            ),
        };
        match self {
            Self::Usage(_) => ExitCode::from(2),
            Self::Api { .. } | Self::Other(_) => ExitCode::FAILURE,
        }
    }
}

/// The innermost cause of a network error: "connection refused", not
/// "error sending request for url (...)".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// Writes `value` to stdout as pretty JSON. A closed pipe (`| head`) ends the
/// output quietly.
fn print_json<T: serde::Serialize>(value: &T) -> std::result::Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    stdout_result(written)
}

/// Writes `text` to stdout as it is, as [`print_json`] does.
fn print_text(text: &str) -> std::result::Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    stdout_result(out.write_all(text.as_bytes()).and_then(|()| out.flush()))
}

fn stdout_result(written: std::io::Result<()>) -> std::result::Result<(), CliError> {
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Other(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}
