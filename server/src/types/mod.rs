//! Wire types: every request and response body, query string and path
//! parameter of the API. Their doc comments become the OpenAPI descriptions
//! and, through progenitor, the SDK's documentation.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The query of a list sorted by name (Bencher's projects and keys):
/// `sort`, `direction`, `per_page`, `page`, `name` and `search` (each
/// list says what those two match), and what else it takes.
macro_rules! name_list_query {
    ($(#[$doc:meta])* $name:ident {
        $(#[$name_doc:meta])* name,
        $(#[$search_doc:meta])* search
        $(, $(#[$m:meta])* $extra:ident: $ty:ty)* $(,)?
    }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The field to sort by (`name`, the default).
            pub sort: Option<NameSort>,
            /// The direction to sort in (`asc`, the default, or `desc`).
            pub direction: Option<JsonDirection>,
            /// The number of items per page: 1 to 255, default 8.
            pub per_page: Option<PerPage>,
            /// The page number, starting at 1 (the default).
            pub page: Option<Page>,
            $(#[$name_doc])*
            pub name: Option<ResourceName>,
            $(#[$search_doc])*
            pub search: Option<SearchText>,
            $($(#[$m])* pub $extra: $ty,)*
        }
    };
}

mod events;
mod job;
pub use events::*;
mod keys;
pub use keys::*;
mod project;
mod registry;
mod report;
pub use project::*;
pub use registry::*;
pub use report::*;
pub mod time;
pub use job::*;

use crate::validate::{
    Bytes, Cpu, Direction, Invalid, ListQuery, Page, PerPage, QueryRules, Ref, ResourceName,
    SearchText, Slug, Sort, Validate, list_rule,
};

/// A runner: a machine registered to run benchmarks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JsonRunner {
    /// The runner's UUID, assigned by the server.
    pub uuid: Uuid,
    /// The runner's display name.
    pub name: String,
    /// The runner's URL-safe slug, unique on this server.
    pub slug: String,
    /// The UUIDs of the hardware specs the runner offers, in the order they
    /// were added (`[]` when none).
    pub specs: Vec<Uuid>,
    /// When the runner was archived, or null while it is active.
    #[serde(serialize_with = "time::serialize_opt")]
    pub archived: Option<DateTime<Utc>>,
    /// When the runner last sent a heartbeat (or any message on its
    /// channel), or null if it never did.
    #[serde(serialize_with = "time::serialize_opt")]
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// When the runner was created.
    #[serde(serialize_with = "time::serialize")]
    pub created: DateTime<Utc>,
    /// When the runner was last modified.
    #[serde(serialize_with = "time::serialize")]
    pub modified: DateTime<Utc>,
    /// What the runner is doing: `offline` (no channel open), `idle`
    /// (connected, no job) or `busy` (a job claimed or running).
    pub status: RunnerStatus,
    /// The operating system its agent reported, or null until it has.
    pub os: Option<OperatingSystem>,
    /// The CPU architecture its agent reported, or null until it has.
    pub arch: Option<Architecture>,
    /// The version its agent reported, or null until it has.
    pub version: Option<String>,
}

/// A new runner.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonNewRunner {
    /// The name of the runner: 1 to 64 bytes, no leading or trailing
    /// whitespace, no control characters.
    pub name: ResourceName,
    /// The preferred slug for the runner: lowercase ASCII letters and digits
    /// in words joined by single hyphens, at most 64 characters, not a UUID.
    /// If not provided, the slug is generated from the name.
    pub slug: Option<Slug>,
}

/// Changes to a runner. Absent fields are left unchanged.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonUpdateRunner {
    /// The new name of the runner (same rules as on creation).
    pub name: Option<ResourceName>,
    /// The new slug of the runner (same rules as on creation).
    pub slug: Option<Slug>,
    /// Set to true to archive the runner, false to unarchive it. Archiving an
    /// already archived runner keeps its original archive time.
    pub archived: Option<bool>,
}

/// A runner's UUID with its runner key. The key is shown only this once:
/// the server keeps nothing but its SHA-256 hash.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonRunnerKey {
    /// The runner's UUID.
    pub uuid: Uuid,
    /// The runner key: `bencher_runner_` followed by 30 characters of
    /// `[0-9A-Za-z]`. Send it as `Authorization: Bearer <key>` on the
    /// runner's heartbeat.
    pub key: String,
    /// The same value as `key`, under the name Bencher v0.6.2's clients
    /// read (they call the key a token).
    #[deprecated = "read `key`; `token` is kept for Bencher v0.6.2 clients"]
    pub token: String,
}

impl JsonRunnerKey {
    /// The answer for a runner's new key.
    pub fn new(uuid: Uuid, key: String) -> Self {
        #[allow(deprecated)]
        Self {
            uuid,
            token: key.clone(),
            key,
        }
    }
}

/// A CPU architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Architecture {
    /// 64-bit x86.
    #[serde(rename = "x86_64")]
    X86_64,
    /// 64-bit ARM.
    #[serde(rename = "aarch64")]
    Aarch64,
}

/// An operating system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperatingSystem {
    Linux,
    Macos,
    Windows,
}

/// A sandbox that jobs run in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sandbox {
    /// A Firecracker microVM.
    Firecracker,
}

/// A hardware spec: what a runner offers (CPU, memory, disk, OS,
/// architecture), so that jobs find a machine with what they need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JsonSpec {
    /// The spec's UUID, assigned by the server.
    pub uuid: Uuid,
    /// The spec's display name.
    pub name: String,
    /// The spec's URL-safe slug, unique among specs on this server.
    pub slug: String,
    /// The CPU architecture.
    pub architecture: Architecture,
    /// The operating system.
    pub os: OperatingSystem,
    /// The number of CPUs.
    pub cpu: u32,
    /// Memory, in bytes.
    pub memory: u64,
    /// Disk, in bytes.
    pub disk: u64,
    /// Whether jobs have network access.
    pub network: bool,
    /// The sandbox jobs run in, or null for none.
    pub sandbox: Option<Sandbox>,
    /// When the spec became the fallback spec (the one used when a job asks
    /// for none), or null if it is not the fallback. At most one spec is.
    #[serde(serialize_with = "time::serialize_opt")]
    pub fallback: Option<DateTime<Utc>>,
    /// When the spec was archived, or null while it is active.
    #[serde(serialize_with = "time::serialize_opt")]
    pub archived: Option<DateTime<Utc>>,
    /// When the spec was created.
    #[serde(serialize_with = "time::serialize")]
    pub created: DateTime<Utc>,
    /// When the spec was last modified.
    #[serde(serialize_with = "time::serialize")]
    pub modified: DateTime<Utc>,
}

/// A new hardware spec.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonNewSpec {
    /// The name of the spec: 1 to 64 bytes, no leading or trailing
    /// whitespace, no control characters.
    pub name: ResourceName,
    /// The preferred slug for the spec (same rules as a runner's). If not
    /// provided, the slug is generated from the name.
    pub slug: Option<Slug>,
    /// The CPU architecture.
    pub architecture: Architecture,
    /// The operating system.
    pub os: OperatingSystem,
    /// The number of CPUs: 1 to 2147483647.
    pub cpu: Cpu,
    /// Memory, in bytes: 1 to 9223372036854775807.
    pub memory: Bytes,
    /// Disk, in bytes: 1 to 9223372036854775807.
    pub disk: Bytes,
    /// Whether jobs have network access (default false).
    #[serde(default)]
    pub network: bool,
    /// The sandbox jobs run in; absent or null for none.
    #[serde(default)]
    pub sandbox: Option<Sandbox>,
    /// Make this spec the fallback spec, clearing it on any other (default
    /// false).
    #[serde(default)]
    pub fallback: bool,
}

/// Changes to a spec. Absent fields are left unchanged.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonUpdateSpec {
    /// The new name of the spec (same rules as on creation).
    pub name: Option<ResourceName>,
    /// The new slug of the spec (same rules as on creation).
    pub slug: Option<Slug>,
    /// True makes this spec the fallback spec (clearing it on any other);
    /// false makes it no longer the fallback.
    pub fallback: Option<bool>,
    /// True archives the spec (which also clears its fallback), false
    /// unarchives it (which does not restore the fallback).
    pub archived: Option<bool>,
}

/// A spec to add to a runner.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonNewRunnerSpec {
    /// The slug or UUID of the spec.
    pub spec: Ref,
}

/// The version of the API this server implements.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonApiVersion {
    /// The Bencher API version this server is compatible with (semver).
    pub version: String,
}

/// A probe's answer: `live`, or `ready` (not ready is a 503 saying why).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonServerStatus {
    pub status: String,
}

/// The server's OpenAPI document.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct JsonOpenApi(pub serde_json::Value);

/// The path of a single runner.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct RunnerPath {
    /// The slug or UUID for a runner.
    pub runner: Ref,
}

/// The path of a single spec.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct SpecPath {
    /// The slug or UUID for a spec.
    pub spec: Ref,
}

/// The path of one spec of one runner.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct RunnerSpecPath {
    /// The slug or UUID for a runner.
    pub runner: Ref,
    /// The slug or UUID for a spec.
    pub spec: Ref,
}

/// The key to sort runners by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunnersSort {
    /// Sort by runner name (ties broken by slug).
    #[default]
    Name,
    /// Sort by creation order.
    Created,
}

/// The key to sort specs by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpecsSort {
    /// Sort by spec name (ties broken by slug).
    #[default]
    Name,
    /// Sort by creation order.
    Created,
}

/// The direction to sort in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JsonDirection {
    /// Ascending.
    #[default]
    Asc,
    /// Descending.
    Desc,
}

/// Query parameters of the runner list.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunnersQuery {
    /// The field to sort by (`name` or `created`, default `name`).
    pub sort: Option<RunnersSort>,
    /// The direction to sort in (`asc` or `desc`, default `asc`).
    pub direction: Option<JsonDirection>,
    /// The number of runners per page: 1 to 255, default 8.
    pub per_page: Option<PerPage>,
    /// The page number, starting at 1 (the default).
    pub page: Option<Page>,
    /// Only runners with exactly this name.
    pub name: Option<ResourceName>,
    /// Only runners whose name, slug or UUID contains this text,
    /// case-insensitively (`%` and `_` match themselves).
    pub search: Option<SearchText>,
    /// Include archived runners too (default false: active runners only).
    pub archived: Option<bool>,
    /// Only runners with this status (`offline`, `idle` or `busy`).
    pub status: Option<RunnerStatus>,
}

/// Query parameters of the spec list.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpecsQuery {
    /// The field to sort by (`name` or `created`, default `name`).
    pub sort: Option<SpecsSort>,
    /// The direction to sort in (`asc` or `desc`, default `asc`).
    pub direction: Option<JsonDirection>,
    /// The number of specs per page: 1 to 255, default 8.
    pub per_page: Option<PerPage>,
    /// The page number, starting at 1 (the default).
    pub page: Option<Page>,
    /// Only specs with exactly this name.
    pub name: Option<ResourceName>,
    /// Only specs whose name, slug or UUID contains this text,
    /// case-insensitively (`%` and `_` match themselves).
    pub search: Option<SearchText>,
    /// Include archived specs too (default false: active specs only).
    pub archived: Option<bool>,
}

/// The headers of a 201 answer.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct LocationHeader {
    /// The path of what was created (or, for a key, of its runner).
    pub location: String,
}

/// The headers of a list.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TotalCountHeader {
    /// The number of items matching the query's filters, on all pages.
    #[serde(rename = "x-total-count")]
    pub x_total_count: String,
}

impl From<RunnersSort> for Sort {
    fn from(sort: RunnersSort) -> Self {
        match sort {
            RunnersSort::Name => Self::Name,
            RunnersSort::Created => Self::Created,
        }
    }
}

impl From<SpecsSort> for Sort {
    fn from(sort: SpecsSort) -> Self {
        match sort {
            SpecsSort::Name => Self::Name,
            SpecsSort::Created => Self::Created,
        }
    }
}

impl From<JsonDirection> for Direction {
    fn from(direction: JsonDirection) -> Self {
        match direction {
            JsonDirection::Asc => Self::Asc,
            JsonDirection::Desc => Self::Desc,
        }
    }
}

/// Both list queries: their parameters keep their rules by construction,
/// so the [`ListQuery`] is only filled in with the defaults.
macro_rules! list_query {
    ($query:ty, $status:expr) => {
        impl QueryRules for $query {
            fn rule(param: &str) -> Option<&'static str> {
                list_rule(param)
            }
        }

        impl Validate for $query {
            type Valid = ListQuery;

            fn validate(self) -> Result<ListQuery, Invalid> {
                let status: fn(&Self) -> Option<&'static str> = $status;
                Ok(ListQuery {
                    status: status(&self),
                    sort: self.sort.map_or(Sort::Name, Sort::from),
                    direction: self.direction.map(Direction::from).unwrap_or_default(),
                    per_page: self
                        .per_page
                        .map_or(crate::validate::PER_PAGE_DEFAULT, PerPage::get),
                    page: self.page.map_or(1, Page::get),
                    name: self.name.map(String::from),
                    search: self.search.map(|s| s.to_lowercase()),
                    archived: self.archived.unwrap_or(false),
                })
            }
        }
    };
}

list_query!(RunnersQuery, |q| q.status.map(RunnerStatus::as_str));
list_query!(SpecsQuery, |_| None);
