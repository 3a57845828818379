//! Wire types of runs and reports (Bencher v0.6.12's `JsonNewRun` and
//! `JsonReport`, with what a report holds).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{JsonProject, time};
use crate::validate::{
    Args, EnvVars, FilePaths, Invalid, Iterations, Page, PerPage, QueryRules, Ref, ResourceName,
    Rfc3339Time, Timeout, TimestampMillis, Validate,
};

/// A run (Bencher's `JsonNewRun`): with `job`, a job to queue whose output
/// becomes the report's results; without, `results` at once.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonNewRun {
    /// The project's slug or UUID (made on first use from a slug; absent:
    /// the project a project key is for, or the one an image names).
    pub project: Option<Ref>,
    /// The branch's name (made on first use; default `main`).
    pub branch: Option<ResourceName>,
    /// The testbed's name (made on first use; default `localhost`).
    pub testbed: Option<ResourceName>,
    /// When the run started.
    pub start_time: DateTime<Utc>,
    /// When the run ended.
    pub end_time: DateTime<Utc>,
    /// Without a job: each iteration's results, in the Bencher Metric
    /// Format (one JSON document a string); at most 10000 values (a
    /// benchmark's measure in an iteration) in all.
    #[serde(default)]
    pub results: Vec<String>,
    /// How the output becomes results.
    pub settings: Option<JsonReportSettings>,
    /// A second run with the same key in the same project answers the
    /// first run's report.
    pub idempotency_key: Option<Uuid>,
    /// The job to queue on a runner (Bencher's `bencher run --image`).
    pub job: Option<JsonNewRunJob>,
    /// Accepted and ignored (Bencher's git hash of the branch version).
    pub hash: Option<serde_json::Value>,
    /// Accepted and ignored (Bencher's CLI always sends it).
    pub context: Option<serde_json::Value>,
    /// Accepted and ignored: thresholds are not evaluated here.
    pub thresholds: Option<serde_json::Value>,
    /// Accepted and ignored: branches have no history here.
    pub start_point: Option<serde_json::Value>,
    /// Accepted and ignored.
    pub spec_reset: Option<serde_json::Value>,
}

/// A run's job (Bencher's `JsonNewRunJob`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonNewRunJob {
    /// The image: `{registry host}/{project UUID}` with `:tag` (resolved
    /// to its digest now) or `@sha256:…`.
    pub image: crate::validate::image::ImageReference,
    /// The spec a runner must have (slug or UUID; absent: the fallback).
    pub spec: Option<Ref>,
    /// The job's timeout in seconds: 1 to 2147483647, default 3600.
    pub timeout: Option<Timeout>,
    /// How many times to run the benchmark.
    pub iter: Option<Iterations>,
    /// Overrides the image's entrypoint: at most 64 arguments.
    pub entrypoint: Option<Args>,
    /// Overrides the image's command: at most 64 arguments.
    pub cmd: Option<Args>,
    /// Environment variables: at most 255.
    pub env: Option<EnvVars>,
    /// Files whose contents are the results: at most 255 paths.
    pub file_paths: Option<FilePaths>,
    /// Whether to measure the build time.
    pub build_time: Option<bool>,
    /// Whether to measure the size of the files in `file_paths`.
    pub file_size: Option<bool>,
    /// Whether a failing benchmark still counts as a result.
    pub allow_failure: Option<bool>,
    /// The time to date the results at, instead of now.
    pub backdate: Option<Rfc3339Time>,
}

/// How a run's output becomes results (Bencher's `JsonReportSettings`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonReportSettings {
    /// The adapter: `magic` (the default) or `json` (the Bencher Metric
    /// Format); Bencher's other adapters are refused with 400 naming them.
    pub adapter: Option<Adapter>,
    /// Accepted and kept in the job's config (Bencher's average).
    pub average: Option<JsonAverage>,
    /// Accepted and kept in the job's config (Bencher's fold).
    pub fold: Option<JsonFold>,
}

/// The adapters this server parses with (Bencher's others are refused
/// with 400 naming them: their parsers are Bencher's, not here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Adapter {
    /// The Bencher Metric Format, where the output is one (Bencher's
    /// magic tries every adapter; here, only this one).
    Magic,
    /// The Bencher Metric Format.
    Json,
}

impl JsonReportSettings {
    /// The adapter this server parses with (`magic` when none is named).
    pub fn adapter(&self) -> Result<crate::bmf::Adapter, Invalid> {
        Ok(match self.adapter.unwrap_or(Adapter::Magic) {
            Adapter::Magic => crate::bmf::Adapter::Magic,
            Adapter::Json => crate::bmf::Adapter::Json,
        })
    }
}

/// Bencher's central tendency.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum JsonAverage {
    Mean,
    Median,
}

/// Bencher's fold of several results into one.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum JsonFold {
    Min,
    Max,
    Mean,
    Median,
}

/// A report (Bencher's `JsonReport`): a run's results, per iteration.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonReport {
    /// The report's UUID.
    pub uuid: Uuid,
    /// Who submitted it (null for a project key).
    pub user: Option<JsonPubUser>,
    /// Its project.
    pub project: JsonProject,
    /// Its branch (no history here: its head is the branch's one).
    pub branch: JsonBranch,
    /// Its testbed.
    pub testbed: JsonTestbed,
    /// When the run started.
    #[serde(serialize_with = "time::serialize")]
    pub start_time: DateTime<Utc>,
    /// When the run ended.
    #[serde(serialize_with = "time::serialize")]
    pub end_time: DateTime<Utc>,
    /// The adapter its output is parsed with (`magic` or `json`).
    pub adapter: Adapter,
    /// Per iteration, per benchmark, its measures (empty until its job is
    /// processed).
    pub results: Vec<Vec<JsonReportResult>>,
    /// Always empty: thresholds are not evaluated here.
    pub alerts: Vec<serde_json::Value>,
    /// How many results and alerts it has.
    pub counts: JsonReportCounts,
    /// The job whose output it holds, if the run had one.
    pub job: Option<Uuid>,
    /// When it was made.
    #[serde(serialize_with = "time::serialize")]
    pub created: DateTime<Utc>,
}

/// A user as others see them (Bencher's `JsonPubUser`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonPubUser {
    /// The user's UUID.
    pub uuid: Uuid,
    /// The user's name.
    pub name: String,
    /// The user's slug (here, their name).
    pub slug: String,
}

/// A named thing of a project (Bencher's branch, testbed, benchmark and
/// measure): its UUID, project, name and slug, what else it has, and its
/// times (made on first use: `modified` is `created`, never archived).
macro_rules! named_view {
    ($(#[$doc:meta])* $name:ident $(, $(#[$m:meta])* $extra:ident: $ty:ty)*) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
        pub struct $name {
            /// Its UUID.
            pub uuid: Uuid,
            /// Its project's UUID.
            pub project: Uuid,
            /// Its name.
            pub name: String,
            /// Its slug.
            pub slug: String,
            $($(#[$m])* pub $extra: $ty,)*
            /// When it was made.
            #[serde(serialize_with = "time::serialize")]
            pub created: DateTime<Utc>,
            /// The same as `created`.
            #[serde(serialize_with = "time::serialize")]
            pub modified: DateTime<Utc>,
            /// Always null.
            #[serde(serialize_with = "time::serialize_opt")]
            pub archived: Option<DateTime<Utc>>,
        }
    };
}

named_view!(
    /// A branch (Bencher's `JsonBranch`).
    JsonBranch,
    /// Its head (one per branch here).
    head: JsonHead
);
named_view!(
    /// A testbed (Bencher's `JsonTestbed`), a benchmark (`JsonBenchmark`).
    JsonTestbed
);
named_view!(
    /// A measure (Bencher's `JsonMeasure`).
    JsonMeasure,
    /// Its units.
    units: String
);

/// A benchmark (Bencher's `JsonBenchmark`).
pub type JsonBenchmark = JsonTestbed;

/// A branch's head (Bencher's `JsonHead`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonHead {
    /// The head's UUID.
    pub uuid: Uuid,
    /// When it was made.
    #[serde(serialize_with = "time::serialize")]
    pub created: DateTime<Utc>,
}

/// One benchmark's measures in one iteration.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonReportResult {
    /// The iteration (from 0).
    pub iteration: u32,
    /// The benchmark.
    pub benchmark: JsonBenchmark,
    /// Its measures.
    pub measures: Vec<JsonReportMeasure>,
}

/// One measure's value (Bencher's `JsonReportMeasure`; no threshold here).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonReportMeasure {
    /// The measure.
    pub measure: JsonMeasure,
    /// Its value.
    pub metric: JsonMetric,
}

/// A value (Bencher's `JsonMetric`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonMetric {
    /// Its UUID.
    pub uuid: Uuid,
    /// The value.
    pub value: f64,
    /// Its lower bound, if given.
    pub lower_value: Option<f64>,
    /// Its upper bound, if given.
    pub upper_value: Option<f64>,
}

/// How much a report holds (Bencher's `JsonReportCounts`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonReportCounts {
    /// Its alerts (always none here).
    pub alerts: JsonAlertCounts,
    /// Per iteration, its benchmarks and measures.
    pub results: Vec<JsonIterationCounts>,
}

/// Alert counts.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonAlertCounts {
    /// Active alerts.
    pub active: u32,
    /// All alerts.
    pub total: u32,
}

/// One iteration's counts.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonIterationCounts {
    /// Benchmarks in it.
    pub benchmarks: u32,
    /// Distinct measures in it.
    pub measures: u32,
}

/// The path of one of a project's reports.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct ReportPath {
    /// The slug or UUID of a project.
    pub project: Ref,
    /// The report's UUID.
    pub report: Uuid,
}

/// The path of one of a project's jobs.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct ProjectJobPath {
    /// The slug or UUID of a project.
    pub project: Ref,
    /// The job's UUID.
    pub job: Uuid,
}

/// The key to sort reports by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportsSort {
    /// By start time (Bencher's `date_time`).
    #[default]
    DateTime,
}

/// Query parameters of a project's report list.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportsQuery {
    /// The field to sort by (`date_time`, the default).
    pub sort: Option<ReportsSort>,
    /// The direction (`desc`, the default: newest first, or `asc`).
    pub direction: Option<super::JsonDirection>,
    /// The number of reports per page: 1 to 255, default 8.
    pub per_page: Option<PerPage>,
    /// The page number, starting at 1 (the default).
    pub page: Option<Page>,
    /// Only reports of this branch (name, slug or UUID).
    pub branch: Option<ResourceName>,
    /// Only reports of this testbed (name, slug or UUID).
    pub testbed: Option<ResourceName>,
    /// Only reports that started at or after this time.
    pub start_time: Option<TimestampMillis>,
    /// Only reports that ended at or before this time.
    pub end_time: Option<TimestampMillis>,
    /// Accepted and ignored (reports are not archived here).
    pub archived: Option<bool>,
    /// With each report's results (Bencher's `expand`; default false: a
    /// list leaves them out, view a report for them).
    pub expand: Option<bool>,
}

impl QueryRules for ReportsQuery {
    fn rule(param: &str) -> Option<&'static str> {
        Some(match param {
            "sort" => "`date_time`",
            "direction" => "`asc` or `desc`",
            "per_page" => "an integer from 1 to 255",
            "page" => "an integer from 1 to 4294967295",
            "branch" | "testbed" => "a name, slug or UUID",
            "start_time" | "end_time" => {
                "milliseconds since the Unix epoch, from -62135596800000 to 253402300799999"
            }
            "archived" | "expand" => "`true` or `false`",
            _ => return None,
        })
    }
}

impl Validate for ReportsQuery {
    type Valid = crate::validate::ReportQuery;

    fn validate(self) -> Result<Self::Valid, Invalid> {
        Ok(crate::validate::ReportQuery {
            branch: self.branch.map(String::from),
            testbed: self.testbed.map(String::from),
            start_time: self.start_time.map(TimestampMillis::time),
            end_time: self.end_time.map(TimestampMillis::time),
            ascending: self.direction == Some(super::JsonDirection::Asc),
            expand: self.expand.unwrap_or(false),
            per_page: self
                .per_page
                .map_or(crate::validate::PER_PAGE_DEFAULT, PerPage::get),
            page: self.page.map_or(1, Page::get),
        })
    }
}
