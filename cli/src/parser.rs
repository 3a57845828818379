//! The command line, declared once. Flag names, value names and help wording
//! follow Bencher's CLI (`bencher runner ...`), so its users need no new
//! habits.

mod backend;
mod job;
mod key;
mod project;

pub use backend::*;
pub use job::*;
pub use key::*;
pub use project::*;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use runners_sdk::MAX_PER_PAGE;
use runners_sdk::types::{JsonJob, ResourceId, ResourceName, Slug};

/// A name, with its rule worded for a person rather than as the pattern.
fn parse_name(value: &str) -> Result<ResourceName, String> {
    value.parse().map_err(|_| {
        "a name is 1 to 64 bytes, with no leading or trailing whitespace and no control \
         characters"
            .to_owned()
    })
}

/// A slug, with its rule worded for a person.
fn parse_slug(value: &str) -> Result<Slug, String> {
    value.parse().map_err(|_| {
        "a slug is 1 to 64 lowercase letters and digits in words joined by single hyphens \
         (for example `my-runner-1`), and not a UUID"
            .to_owned()
    })
}

/// A slug or UUID, with its rule worded for a person.
fn parse_ref(value: &str) -> Result<ResourceId, String> {
    value
        .parse()
        .map_err(|_| "expected a slug (for example `my-runner-1`) or a UUID".to_owned())
}

/// A UUID, checked by the UUID type of the API's types (whatever it is
/// named), so the CLI accepts exactly what the SDK sends; `rule` says what
/// was expected.
fn parse_uuid(value: &str, rule: &str) -> Result<String, String> {
    /// Parses `value` as the type of `field`'s result.
    fn parse_as<T: std::str::FromStr>(value: &str, _field: fn(JsonJob) -> T) -> bool {
        value.parse::<T>().is_ok()
    }
    if parse_as(value, |job| job.uuid) {
        Ok(value.to_owned())
    } else {
        Err(rule.to_owned())
    }
}

/// Bencher's default API port, as the server's default bind address.
pub const DEFAULT_HOST: &str = "http://localhost:61016";

/// Bencher CLI: manage the projects, keys, reports, jobs, runners and hardware specs of a
/// Bencher-compatible runner registry
#[derive(Parser, Debug)]
#[clap(name = "bencher", version, after_help = RUNS_HELP)]
pub struct CliBencher {
    #[clap(flatten)]
    pub backend: CliBackend,

    #[clap(subcommand)]
    pub sub: CliSub,
}

/// What the top-level help says of runs.
const RUNS_HELP: &str = "Runs: this CLI has no `bencher run`. Submit runs with Bencher's own CLI \
(v0.6.12): `bencher run --image IMAGE --project PROJECT --key bencher_run_... --host URL` \
works against this server unchanged (scripts/bencher-agent-acceptance.sh tests it); then \
follow them here with `bencher job list PROJECT` and `bencher report list PROJECT`.";

#[derive(Subcommand, Debug)]
pub enum CliSub {
    /// Manage projects
    #[clap(subcommand)]
    Project(CliProject),
    /// Manage reports
    #[clap(subcommand)]
    Report(CliReport),
    /// Manage jobs: a project's (Bencher's `job list|view PROJECT`), or
    /// every job (create, list, view, cancel; an admin's)
    #[clap(subcommand)]
    Job(CliJob),
    /// Manage user
    #[clap(subcommand)]
    User(CliUser),
    /// Manage runners
    #[clap(subcommand)]
    Runner(CliRunner),
    /// Manage hardware specs
    #[clap(subcommand)]
    Spec(CliSpec),
}

#[derive(Subcommand, Debug)]
pub enum CliRunner {
    /// List runners
    #[clap(alias = "ls")]
    List(CliRunnerList),
    /// Create a runner
    #[clap(alias = "add")]
    Create(CliRunnerCreate),
    /// View a runner
    #[clap(alias = "get")]
    View(CliRunnerView),
    /// Update a runner
    #[clap(alias = "edit")]
    Update(CliRunnerUpdate),
    /// Rotate a runner key
    Key(CliRunnerView),
    /// Rotate a runner token (Bencher v0.6.2's name for `key`)
    Token(CliRunnerView),
    /// Manage runner specs
    #[clap(subcommand)]
    Spec(CliRunnerSpec),
}

/// `runner list`: the list's filters, and the runner's status.
#[derive(Args, Debug)]
pub struct CliRunnerList {
    #[clap(flatten)]
    pub list: CliList<CliRunnersSort>,

    /// Runner status: only the runners doing this
    #[clap(long)]
    pub status: Option<CliRunnerStatus>,
}

/// What a runner is doing
#[derive(ValueEnum, Debug, Clone, Copy)]
#[clap(rename_all = "snake_case")]
pub enum CliRunnerStatus {
    /// No channel open
    Offline,
    /// Connected, no job
    Idle,
    /// A job claimed or running
    Busy,
}

/// `runner list` and `spec list`: the filters, sort and paging of a list of
/// what `S` sorts.
#[derive(Args, Debug)]
pub struct CliList<S: CliListed> {
    #[clap(long, help = S::NAME_HELP)]
    pub name: Option<String>,

    #[clap(long, value_name = "QUERY", help = S::SEARCH_HELP)]
    pub search: Option<String>,

    #[clap(long, help = S::ARCHIVED_HELP)]
    pub archived: bool,

    #[clap(flatten)]
    pub pagination: CliPagination<S>,
}

/// The sort keys of a list, and the help of its filters, in the words of
/// what it lists.
pub trait CliListed: ValueEnum + Clone + Copy + Send + Sync + 'static {
    const NAME_HELP: &'static str;
    const SEARCH_HELP: &'static str;
    const ARCHIVED_HELP: &'static str;
}

impl CliListed for CliRunnersSort {
    const NAME_HELP: &'static str = "Runner name";
    const SEARCH_HELP: &'static str = "Runner search string";
    const ARCHIVED_HELP: &'static str = "Include archived runners";
}

impl CliListed for CliSpecsSort {
    const NAME_HELP: &'static str = "Spec name";
    const SEARCH_HELP: &'static str = "Spec search string";
    const ARCHIVED_HELP: &'static str = "Include archived specs";
}

/// How a list is sorted and paged.
#[derive(Args, Debug)]
pub struct CliPagination<S: ValueEnum + Clone + Send + Sync + 'static> {
    /// What to sort results by
    #[clap(long, value_name = "BY")]
    pub sort: Option<S>,

    /// The direction to sort the results by
    #[clap(long)]
    pub direction: Option<CliDirection>,

    /// The number of results per page (default 8) (max 255)
    #[clap(long, value_name = "COUNT", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PER_PAGE)))]
    pub per_page: Option<u32>,

    /// Page number of the results to fetch
    #[clap(long, value_name = "NUMBER", value_parser = clap::value_parser!(u32).range(1..))]
    pub page: Option<u32>,

    /// Fetch every page and print them as one array (pages of --per-page, default 255)
    #[clap(long, conflicts_with = "page")]
    pub all: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
#[clap(rename_all = "snake_case")]
pub enum CliRunnersSort {
    /// Name of the runner
    Name,
    /// Date time the runner was created
    Created,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
#[clap(rename_all = "snake_case")]
pub enum CliSpecsSort {
    /// Name of the spec
    Name,
    /// Date time the spec was created
    Created,
}

/// The direction to sort the results by
#[derive(ValueEnum, Debug, Clone, Copy)]
#[clap(rename_all = "snake_case")]
pub enum CliDirection {
    /// Ascending
    Asc,
    /// Descending
    Desc,
}

#[derive(Args, Debug)]
pub struct CliRunnerCreate {
    /// Runner name
    #[clap(long, value_parser = parse_name)]
    pub name: ResourceName,

    /// Runner slug
    #[clap(long, value_parser = parse_slug)]
    pub slug: Option<Slug>,
}

#[derive(Args, Debug)]
pub struct CliRunnerView {
    /// Runner slug or UUID
    #[clap(value_parser = parse_ref)]
    pub runner: ResourceId,
}

#[derive(Args, Debug)]
pub struct CliRunnerUpdate {
    /// Runner slug or UUID
    #[clap(value_parser = parse_ref)]
    pub runner: ResourceId,

    /// Runner name
    #[clap(long, value_parser = parse_name)]
    pub name: Option<ResourceName>,

    /// Runner slug
    #[clap(long, value_parser = parse_slug)]
    pub slug: Option<Slug>,

    #[clap(flatten)]
    pub archived: CliArchived,
}

#[derive(Subcommand, Debug)]
pub enum CliRunnerSpec {
    /// List specs for a runner
    #[clap(alias = "ls")]
    List(CliRunnerView),
    /// Add a spec to a runner
    #[clap(alias = "create")]
    Add(CliRunnerSpecAdd),
    /// Remove a spec from a runner
    #[clap(alias = "rm")]
    Remove(CliRunnerSpecRemove),
}

#[derive(Args, Debug)]
pub struct CliRunnerSpecAdd {
    /// Runner slug or UUID
    #[clap(value_parser = parse_ref)]
    pub runner: ResourceId,

    /// Spec slug or UUID
    #[clap(long, value_parser = parse_ref)]
    pub spec: ResourceId,
}

#[derive(Args, Debug)]
pub struct CliRunnerSpecRemove {
    /// Runner slug or UUID
    #[clap(value_parser = parse_ref)]
    pub runner: ResourceId,

    /// Spec slug or UUID
    #[clap(value_parser = parse_ref)]
    pub spec: ResourceId,
}

#[derive(Subcommand, Debug)]
pub enum CliSpec {
    /// List specs
    #[clap(alias = "ls")]
    List(CliList<CliSpecsSort>),
    /// Create a spec
    #[clap(alias = "add")]
    Create(CliSpecCreate),
    /// View a spec
    #[clap(alias = "get")]
    View(CliSpecView),
    /// Update a spec
    #[clap(alias = "edit")]
    Update(CliSpecUpdate),
    /// Delete a spec
    #[clap(alias = "rm")]
    Delete(CliSpecView),
}

/// CPU architecture
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum CliArchitecture {
    #[clap(name = "x86_64")]
    X86_64,
    #[clap(name = "aarch64")]
    Aarch64,
}

/// Operating system
#[derive(ValueEnum, Debug, Clone, Copy)]
#[clap(rename_all = "snake_case")]
pub enum CliOperatingSystem {
    Linux,
    Macos,
    Windows,
}

/// Sandbox type
#[derive(ValueEnum, Debug, Clone, Copy)]
#[clap(rename_all = "snake_case")]
pub enum CliSandbox {
    Firecracker,
}

#[derive(Args, Debug)]
pub struct CliSpecCreate {
    /// Spec name
    #[clap(long, value_parser = parse_name)]
    pub name: ResourceName,

    /// Spec slug
    #[clap(long, value_parser = parse_slug)]
    pub slug: Option<Slug>,

    /// Operating system (linux, macos, windows)
    #[clap(long)]
    pub os: CliOperatingSystem,

    /// CPU architecture
    #[clap(long)]
    pub architecture: CliArchitecture,

    /// Sandbox type (firecracker). Omit for no sandbox.
    #[clap(long)]
    pub sandbox: Option<CliSandbox>,

    /// Number of CPUs
    #[clap(long)]
    pub cpu: std::num::NonZeroU32,

    /// Memory size in bytes
    #[clap(long)]
    pub memory: std::num::NonZeroU64,

    /// Disk size in bytes
    #[clap(long)]
    pub disk: std::num::NonZeroU64,

    /// Whether the VM has network access
    #[clap(long)]
    pub network: bool,

    /// Set as the fallback spec
    #[clap(long)]
    pub fallback: bool,
}

#[derive(Args, Debug)]
pub struct CliSpecView {
    /// Spec slug or UUID
    #[clap(value_parser = parse_ref)]
    pub spec: ResourceId,
}

#[derive(Args, Debug)]
pub struct CliSpecUpdate {
    /// Spec slug or UUID
    #[clap(value_parser = parse_ref)]
    pub spec: ResourceId,

    /// Spec name
    #[clap(long, value_parser = parse_name)]
    pub name: Option<ResourceName>,

    /// Spec slug
    #[clap(long, value_parser = parse_slug)]
    pub slug: Option<Slug>,

    /// Set or unset as the fallback spec
    #[clap(long, value_name = "FALLBACK")]
    pub fallback: Option<bool>,

    #[clap(flatten)]
    pub archived: CliArchived,
}

#[derive(Args, Debug)]
#[clap(group(ArgGroup::new("archived").multiple(false).args(["archive", "unarchive"])))]
pub struct CliArchived {
    /// Set as archived
    #[clap(long)]
    pub archive: bool,

    /// Set as unarchived
    #[clap(long)]
    pub unarchive: bool,
}

impl CliArchived {
    /// The `archived` field of the update: absent unless a flag was given.
    pub fn archived(&self) -> Option<bool> {
        match (self.archive, self.unarchive) {
            (true, _) => Some(true),
            (false, true) => Some(false),
            (false, false) => None,
        }
    }
}
