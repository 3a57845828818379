//! Jobs and the runner channel's messages: Bencher v0.6.12's wire shapes
//! (`lib/bencher_json/src/runner/{job,job_status,websocket}.rs`), with this
//! registry's additions marked **beyond**. These are in `openapi.json`'s
//! components (the channel's messages too), so an SDK gets them typed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Architecture, JsonDirection, JsonSpec, OperatingSystem};
use crate::validate::{
    AgentVersion, Args, EnvVars, FilePaths, ImageDigest, ImageRef, Iterations, Page, PerPage,
    PollTimeout, Ref, RegistryUrl, Rfc3339Time, Sha256Hex, StatusList, Timeout,
};

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a runner.
    Pending,
    /// Given to a runner, which has not started it yet.
    Claimed,
    /// Running on its runner.
    Running,
    /// Finished; its results are in `output`.
    Completed,
    /// A run's job, finished and processed: its results are also its
    /// report's (Bencher's last status of a run's job).
    Processed,
    /// Ended in failure (reported by the runner, or its runner went silent
    /// past the heartbeat timeout); what there is is in `output`.
    Failed,
    /// Canceled (by an admin, or for running past its timeout).
    Canceled,
}

impl JobStatus {
    /// Whether the job has ended (completed, processed, failed or
    /// canceled).
    pub fn has_ended(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Processed | Self::Failed | Self::Canceled
        )
    }
}

/// What a runner is doing (**beyond** Bencher).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunnerStatus {
    /// No channel is open.
    Offline,
    /// Its channel is open and it has no job.
    Idle,
    /// It has a job claimed or running.
    Busy,
}

impl RunnerStatus {
    /// The status's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::Idle => "idle",
            Self::Busy => "busy",
        }
    }
}

impl JobStatus {
    /// The status's wire name (and its text in the database).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Processed => "processed",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// How a job runs: Bencher's `JsonJobConfig`, as the agent reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JsonJobConfig {
    /// The OCI registry's URL; the agent pulls from it over its scheme.
    pub registry: RegistryUrl,
    /// The repository in the registry (Bencher's project UUID).
    pub project: Uuid,
    /// The image manifest's digest.
    pub digest: ImageDigest,
    /// The readable image reference, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
    /// Overrides the image's entrypoint: at most 64 arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Args>,
    /// Overrides the image's command: at most 64 arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Args>,
    /// Environment variables for the benchmark: at most 255.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<EnvVars>,
    /// The job's timeout, in seconds.
    pub timeout: Timeout,
    /// Files whose contents the agent returns with each iteration's output:
    /// at most 255 paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_paths: Option<FilePaths>,
    /// Whether to measure the build time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_time: Option<bool>,
    /// Whether to measure the size of the files in `file_paths`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<bool>,
    /// How many times to run the benchmark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iter: Option<Iterations>,
    /// Whether a failing benchmark still counts as a result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_failure: Option<bool>,
    /// The time to date the results at, instead of now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backdate: Option<Rfc3339Time>,
}

/// A new job (**beyond** Bencher, where jobs come from `bencher run
/// --image`): the image to run, the spec of the runner to run it on, and
/// Bencher's job options. The request body may be at most 64 KiB (413
/// beyond), whatever its fields allow one by one.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonNewJob {
    /// The OCI registry's URL (`http://` or `https://`).
    pub registry: RegistryUrl,
    /// The repository in the registry (a UUID: Bencher's project).
    pub project: Uuid,
    /// The image manifest's digest: `sha256:` and 64 lowercase hex digits.
    pub digest: ImageDigest,
    /// The readable image reference, for people.
    #[serde(default)]
    pub image: Option<ImageRef>,
    /// The slug or UUID of the spec a runner must have to take the job;
    /// absent: the fallback spec (none is the fallback: 409).
    #[serde(default)]
    pub spec: Option<Ref>,
    /// Overrides the image's entrypoint: at most 64 arguments.
    #[serde(default)]
    pub entrypoint: Option<Args>,
    /// Overrides the image's command: at most 64 arguments.
    #[serde(default)]
    pub cmd: Option<Args>,
    /// Environment variables: at most 255, each name non-empty and without
    /// `=` (OpenAPI 3.0 has no `propertyNames` to state this), names and
    /// values at most 4096 bytes with no control characters.
    #[serde(default)]
    pub env: Option<EnvVars>,
    /// The job's timeout in seconds: 1 to 2147483647, default 3600.
    #[serde(default)]
    pub timeout: Option<Timeout>,
    /// Files whose contents to return: at most 255 paths.
    #[serde(default)]
    pub file_paths: Option<FilePaths>,
    /// Whether to measure the build time.
    #[serde(default)]
    pub build_time: Option<bool>,
    /// Whether to measure the size of the files in `file_paths`.
    #[serde(default)]
    pub file_size: Option<bool>,
    /// How many times to run the benchmark.
    #[serde(default)]
    pub iter: Option<Iterations>,
    /// Whether a failing benchmark still counts as a result.
    #[serde(default)]
    pub allow_failure: Option<bool>,
    /// The time to date the results at, instead of now.
    #[serde(default)]
    pub backdate: Option<Rfc3339Time>,
    /// Higher runs first (then older first): default 0 (**beyond**).
    #[serde(default)]
    pub priority: Option<i32>,
}

/// One iteration's output, as the agent reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JsonIterationOutput {
    /// The benchmark's exit code.
    pub exit_code: i32,
    /// What it printed to stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// What it printed to stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// The contents of the files in `file_paths`, by path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<BTreeMap<String, String>>,
}

/// What a job produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JsonJobOutput {
    /// Each iteration's output.
    pub results: Vec<JsonIterationOutput>,
    /// Why the job failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A job: Bencher's `JsonJob`, plus `priority` and `last_heartbeat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JsonJob {
    /// The job's UUID.
    pub uuid: Uuid,
    /// Where the job is in its life.
    pub status: JobStatus,
    /// The spec a runner must have to take the job.
    pub spec: JsonSpec,
    /// How the job runs.
    pub config: JsonJobConfig,
    /// The UUID of the runner that claimed it, if one has.
    pub runner: Option<Uuid>,
    /// When a runner claimed it.
    #[serde(serialize_with = "super::time::serialize_opt")]
    pub claimed: Option<DateTime<Utc>>,
    /// When its runner started it.
    #[serde(serialize_with = "super::time::serialize_opt")]
    pub started: Option<DateTime<Utc>>,
    /// When it ended (completed, failed or canceled).
    #[serde(serialize_with = "super::time::serialize_opt")]
    pub completed: Option<DateTime<Utc>>,
    /// When it was created.
    #[serde(serialize_with = "super::time::serialize")]
    pub created: DateTime<Utc>,
    /// When it last changed.
    #[serde(serialize_with = "super::time::serialize")]
    pub modified: DateTime<Utc>,
    /// Its results, and the error if it failed: null until it ends, and
    /// always null in a list of jobs (`GET /v0/jobs`, `GET
    /// /v0/runners/{runner}/jobs`), which never carries outputs; view the
    /// job (`GET /v0/jobs/{job}`) for it.
    pub output: Option<JsonJobOutput>,
    /// Higher runs first (**beyond**).
    pub priority: i32,
    /// When its runner last sent a message about it (**beyond**).
    #[serde(serialize_with = "super::time::serialize_opt")]
    pub last_heartbeat: Option<DateTime<Utc>>,
}

/// A job as the server gives it to a runner on its channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JsonClaimedJob {
    /// The job's UUID.
    pub uuid: Uuid,
    /// The spec it runs on.
    pub spec: JsonSpec,
    /// How it runs.
    pub config: JsonJobConfig,
    /// A short-lived JWT (10 minutes) for pulling the job's image: scoped to
    /// its repository, pull only.
    pub oci_token: String,
    /// The job's timeout, in seconds.
    pub timeout: Timeout,
    /// When the job was created.
    #[serde(serialize_with = "super::time::serialize")]
    pub created: DateTime<Utc>,
}

/// The update channel an agent follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdateChannel {
    /// Releases.
    Stable,
    /// Builds of the main branch.
    Canary,
}

/// What an agent says of itself in `ready`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JsonRunnerMetadata {
    /// The agent's operating system.
    pub os: OperatingSystem,
    /// The agent's CPU architecture.
    pub arch: Architecture,
    /// The agent's version.
    pub version: AgentVersion,
    /// Its update channel (absent: stable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<UpdateChannel>,
    /// The SHA-256 of its binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Sha256Hex>,
}

/// A message from a runner to the server on the channel: a JSON text frame
/// tagged by `event`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunnerMessage {
    /// The runner is idle and asks for a job: the server answers `job` or,
    /// after `poll_timeout` seconds, `no_job`.
    Ready {
        /// How long to wait for a job, in seconds (1 to 900, default 30).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        poll_timeout: Option<PollTimeout>,
        /// The agent's platform and version (absent from older agents).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        runner: Option<JsonRunnerMetadata>,
    },
    /// The claimed job has started.
    Running,
    /// The job is still running (the agent sends one a second).
    Heartbeat,
    /// The job completed.
    Completed {
        /// The job.
        job: Uuid,
        /// Each iteration's output.
        results: Vec<JsonIterationOutput>,
    },
    /// The job failed.
    Failed {
        /// The job.
        job: Uuid,
        /// The output of the iterations before the failure.
        results: Vec<JsonIterationOutput>,
        /// What went wrong.
        error: String,
    },
    /// The job was stopped, as the server's `cancel` asked.
    Canceled {
        /// The job.
        job: Uuid,
    },
}

/// A message from the server to a runner on the channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The runner's message was taken.
    Ack {
        /// The job it was about (none for a message about no job).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job: Option<Uuid>,
    },
    /// A job, claimed for this runner.
    Job(Box<JsonClaimedJob>),
    /// No job came within the `ready`'s `poll_timeout`.
    NoJob,
    /// The job was canceled: stop it and answer `canceled`.
    Cancel,
}

/// Why the server closed a channel: the close frame's reason is this value
/// as JSON (say `"heartbeat_timeout"`), Bencher's `CloseReason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The runner completed its job.
    JobCompleted,
    /// The job failed.
    JobFailed,
    /// The job was canceled.
    JobCanceled,
    /// The runner acknowledged a cancel.
    JobCanceledByRunner,
    /// No message within the heartbeat timeout: the job failed.
    HeartbeatTimeout,
    /// The job ran past its timeout plus the grace: it was canceled.
    JobTimeoutExceeded,
}

/// The path of a single job.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct JobPath {
    /// The UUID of a job.
    pub job: Uuid,
}

/// The key to sort jobs by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobsSort {
    /// Sort by creation order.
    #[default]
    Created,
}

/// Query parameters of the job lists.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// Only jobs in one of these statuses (comma-separated, say
    /// `pending,claimed`).
    pub status: Option<StatusList>,
    /// Only jobs claimed by this runner (slug or UUID).
    pub runner: Option<Ref>,
    /// Only jobs for this spec (slug or UUID).
    pub spec: Option<Ref>,
    /// The field to sort by (`created`, the default).
    pub sort: Option<JobsSort>,
    /// The direction to sort in (`asc`, the default: oldest first, or `desc`).
    pub direction: Option<JsonDirection>,
    /// The number of jobs per page: 1 to 255, default 8.
    pub per_page: Option<PerPage>,
    /// The page number, starting at 1 (the default).
    pub page: Option<Page>,
}

/// Query parameters of one runner's job list.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunnerJobsQuery {
    /// Only jobs in one of these statuses (comma-separated).
    pub status: Option<StatusList>,
    /// Only jobs for this spec (slug or UUID).
    pub spec: Option<Ref>,
    /// The field to sort by (`created`, the default).
    pub sort: Option<JobsSort>,
    /// The direction to sort in (`asc`, the default, or `desc`).
    pub direction: Option<JsonDirection>,
    /// The number of jobs per page: 1 to 255, default 8.
    pub per_page: Option<PerPage>,
    /// The page number, starting at 1 (the default).
    pub page: Option<Page>,
}

/// Both job list queries: filled in with the defaults.
macro_rules! job_list_query {
    ($query:ty, $runner:expr) => {
        impl crate::validate::QueryRules for $query {
            fn rule(param: &str) -> Option<&'static str> {
                crate::validate::job_list_rule(param)
            }
        }

        impl crate::validate::Validate for $query {
            type Valid = crate::validate::JobListQuery;

            fn validate(self) -> Result<Self::Valid, crate::validate::Invalid> {
                let runner: fn(&Self) -> Option<Ref> = $runner;
                Ok(crate::validate::JobListQuery {
                    project: None,
                    runner: runner(&self),
                    statuses: self
                        .status
                        .as_ref()
                        .map(|s| s.statuses().into_iter().map(str::to_owned).collect())
                        .unwrap_or_default(),
                    spec: self.spec,
                    direction: self.direction.map(Into::into).unwrap_or_default(),
                    per_page: self
                        .per_page
                        .map_or(crate::validate::PER_PAGE_DEFAULT, PerPage::get),
                    page: self.page.map_or(1, Page::get),
                })
            }
        }
    };
}

job_list_query!(JobsQuery, |q| q.runner.clone());
job_list_query!(RunnerJobsQuery, |_| None);
