//! `bencher job ...`: the command line of jobs. Each value is checked here,
//! with its rule in words and the flag it came from, before any request.

use clap::{Args, Subcommand, ValueEnum};
use runners_sdk::types::{Arg, ImageDigest, ImageRef, RegistryUrl, ResourceId};

use super::{CliPagination, parse_ref, parse_uuid};

/// The most arguments an entrypoint or a command takes (Bencher's limit).
pub const MAX_ARGS: usize = 64;
/// The most environment variables or file paths a job takes (Bencher's
/// limit).
pub const MAX_ENTRIES: usize = 255;
/// The largest job timeout, in seconds (Bencher's limit).
pub const MAX_JOB_TIMEOUT: u32 = i32::MAX as u32;

/// `bencher job ...`. Bencher v0.6.12's `job list PROJECT` and `job view
/// PROJECT JOB` read a project's jobs (any credential that may read the
/// project); without PROJECT, `list` and `view` read every job, as
/// `create` and `cancel` write them (an admin's).
#[derive(Subcommand, Debug)]
pub enum CliJob {
    /// List jobs: a project's, or every job without PROJECT (oldest first
    /// unless --direction desc), without their output: `job view` shows it
    #[clap(alias = "ls")]
    List(CliJobList),
    /// Create a job: a benchmark image for a runner with the spec to run
    #[clap(alias = "add")]
    Create(Box<CliJobCreate>),
    /// View a job (a project's, with PROJECT), with its results once it has
    /// ended
    #[clap(alias = "get")]
    View(CliJobView),
    /// Cancel a job that has not ended (a claimed or running job is stopped
    /// on its runner)
    Cancel(CliJobCancel),
}

/// A job's UUID, checked as the API's `uuid` type parses it (the SDK's
/// builders take the text).
fn parse_job(value: &str) -> Result<String, String> {
    parse_uuid(
        value,
        "a job is named by its UUID (for example `6c1e0c6e-5d38-4a41-9e8a-0b8f0f4c5a13`)",
    )
}

fn parse_project(value: &str) -> Result<String, String> {
    parse_uuid(
        value,
        "a project is the repository's UUID in the registry (for example \
         `6c1e0c6e-5d38-4a41-9e8a-0b8f0f4c5a13`)",
    )
}

fn parse_registry(value: &str) -> Result<RegistryUrl, String> {
    value.parse().map_err(|_| {
        "a registry is an `http://` or `https://` URL with a host (and port), no user, \
         password, query or fragment, at most 2048 bytes (for example \
         `https://registry.bencher.dev`)"
            .to_owned()
    })
}

fn parse_digest(value: &str) -> Result<ImageDigest, String> {
    value.parse().map_err(|_| {
        "a digest is `sha256:` and 64 lowercase hex digits (the image manifest's digest)".to_owned()
    })
}

fn parse_image(value: &str) -> Result<ImageRef, String> {
    value.parse().map_err(|_| {
        "an image is 1 to 4096 bytes with no whitespace or control characters (for example \
         `registry.bencher.dev/my-project:latest`)"
            .to_owned()
    })
}

/// One argument, variable value or path: at most 4096 bytes, no control
/// characters.
fn parse_arg(value: &str) -> Result<Arg, String> {
    value.parse().map_err(|_| {
        "at most 4096 bytes, and no control characters (no newlines or tabs)".to_owned()
    })
}

/// `KEY=VALUE`: the key is everything before the first `=`.
fn parse_env(value: &str) -> Result<(String, Arg), String> {
    let Some((key, val)) = value.split_once('=') else {
        return Err("expected KEY=VALUE (for example `RUST_LOG=info`)".to_owned());
    };
    if key.is_empty() {
        return Err("the variable's name (before `=`) is empty".to_owned());
    }
    parse_arg(key).map_err(|rule| format!("the variable's name: {rule}"))?;
    let val = parse_arg(val).map_err(|rule| format!("the value of {key}: {rule}"))?;
    Ok((key.to_owned(), val))
}

/// An RFC 3339 date-time (a time zone offset is required).
fn parse_backdate(value: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| {
            "expected an RFC 3339 date-time with its offset (for example \
             `2025-01-31T12:00:00Z`)"
                .to_owned()
        })
}

/// The job's image, where it runs, and Bencher's job options.
///
/// The benchmark's command, if it overrides the image's, goes last, after
/// `--`: `bencher job create --registry URL --project UUID --digest
/// sha256:... -- cargo bench --bench api`. Everything after `--` is the
/// command, so the global flags (`--host`, `--token`, ...) go before it.
#[derive(Args, Debug)]
#[clap(
    after_help = "Example:\n  bencher job create --registry https://registry.example.com \\\n    \
                  --project 6c1e0c6e-5d38-4a41-9e8a-0b8f0f4c5a13 --digest sha256:<64 hex> \\\n    \
                  --spec linux-x86 --env RUST_LOG=info --iter 3 -- cargo bench"
)]
pub struct CliJobCreate {
    /// The OCI registry's URL (`http://` or `https://`)
    #[clap(long, value_name = "URL", value_parser = parse_registry)]
    pub registry: RegistryUrl,

    /// The image's repository in the registry: Bencher's project UUID
    #[clap(long, value_name = "UUID", value_parser = parse_project)]
    pub project: String,

    /// The image manifest's digest: `sha256:` and 64 lowercase hex digits
    #[clap(long, value_name = "DIGEST", value_parser = parse_digest)]
    pub digest: ImageDigest,

    /// The readable image reference, for people (the runner pulls by
    /// --project and --digest)
    #[clap(long, value_name = "IMAGE", value_parser = parse_image)]
    pub image: Option<ImageRef>,

    /// Spec slug or UUID: only a runner with this spec takes the job
    /// (default: the fallback spec)
    #[clap(long, value_parser = parse_ref)]
    pub spec: Option<ResourceId>,

    /// Override the image's entrypoint, one argument per flag: `--entrypoint
    /// /bin/sh --entrypoint -c` (at most 64)
    #[clap(long, value_name = "ARG", value_parser = parse_arg, allow_hyphen_values = true)]
    pub entrypoint: Vec<Arg>,

    /// An environment variable for the benchmark, KEY=VALUE (repeat for more,
    /// at most 255)
    #[clap(long, value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, Arg)>,

    /// The job's timeout (1 to 2147483647, default 3600); named apart from
    /// the request's --timeout
    #[clap(long, value_name = "SECONDS",
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_JOB_TIMEOUT)))]
    pub job_timeout: Option<u32>,

    /// A file whose contents the runner returns with each iteration's output
    /// (repeat for more, at most 255)
    #[clap(long, value_name = "PATH", value_parser = parse_arg)]
    pub file_path: Vec<Arg>,

    /// Measure the build time
    #[clap(long)]
    pub build_time: bool,

    /// Measure the size of the files of --file-path
    #[clap(long)]
    pub file_size: bool,

    /// How many times to run the benchmark
    #[clap(long, value_name = "COUNT", value_parser = clap::value_parser!(u32).range(1..))]
    pub iter: Option<u32>,

    /// A failing benchmark still counts as a result
    #[clap(long)]
    pub allow_failure: bool,

    /// Date the results at this time instead of now (RFC 3339, for example
    /// 2025-01-31T12:00:00Z)
    #[clap(long, value_name = "DATETIME", value_parser = parse_backdate)]
    pub backdate: Option<chrono::DateTime<chrono::Utc>>,

    /// Higher runs first, then older first (default 0; may be negative)
    #[clap(long, value_name = "PRIORITY", allow_negative_numbers = true)]
    pub priority: Option<i32>,

    /// The benchmark's command, overriding the image's: everything after
    /// `--` (at most 64 arguments), so put --host, --token and the other
    /// flags before `--`
    #[clap(last = true, value_name = "CMD", value_parser = parse_arg)]
    pub cmd: Vec<Arg>,
}

#[derive(Args, Debug)]
pub struct CliJobList {
    /// Project slug or UUID: only this project's jobs (Bencher's form);
    /// without it, every job (an admin's)
    #[clap(value_parser = parse_ref)]
    pub project: Option<ResourceId>,

    /// Job status: only jobs in one of these (comma-separated or repeated:
    /// `--status pending,claimed`)
    #[clap(long, value_delimiter = ',')]
    pub status: Vec<CliJobStatus>,

    /// Runner slug or UUID: only the jobs this runner claimed (not with
    /// PROJECT)
    #[clap(long, value_parser = parse_ref, conflicts_with = "project")]
    pub runner: Option<ResourceId>,

    /// Spec slug or UUID: only the jobs for this spec
    #[clap(long, value_parser = parse_ref)]
    pub spec: Option<ResourceId>,

    #[clap(flatten)]
    pub pagination: CliPagination<CliJobsSort>,
}

/// Where a job is in its life
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[clap(rename_all = "snake_case")]
pub enum CliJobStatus {
    /// Waiting for a runner
    Pending,
    /// Given to a runner, not started yet
    Claimed,
    /// Running on its runner
    Running,
    /// Finished, with its results
    Completed,
    /// Ended in failure
    Failed,
    /// Canceled
    Canceled,
}

impl CliJobStatus {
    /// The API's name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy)]
#[clap(rename_all = "snake_case")]
pub enum CliJobsSort {
    /// Date time the job was created
    Created,
}

/// `job view [PROJECT] JOB`: one positional is the job.
#[derive(Args, Debug)]
#[clap(allow_missing_positional = true)]
pub struct CliJobView {
    /// Project slug or UUID: the job through its project (Bencher's form);
    /// without it, any job (an admin's)
    #[clap(value_parser = parse_ref)]
    pub project: Option<ResourceId>,

    /// Job UUID
    #[clap(value_parser = parse_job)]
    pub job: String,

    /// How to print the job: `json` (the API's JSON, as every command
    /// prints) or `text` (a summary, then each iteration's exit code,
    /// stdout, stderr and files, and the error if it failed)
    #[clap(long, value_name = "FORMAT", default_value = "json")]
    pub format: CliFormat,
}

#[derive(Args, Debug)]
pub struct CliJobCancel {
    /// Job UUID
    #[clap(value_parser = parse_job)]
    pub job: String,
}

/// How to print a result
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[clap(rename_all = "snake_case")]
pub enum CliFormat {
    /// Pretty JSON
    Json,
    /// Text for people
    Text,
}
