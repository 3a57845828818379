//! Wire types: every request and response body, query string and path
//! parameter of the API. Their doc comments become the OpenAPI descriptions
//! and, through progenitor, the SDK's documentation.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A runner: a machine registered to run benchmarks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JsonRunner {
    /// The runner's UUID, assigned by the server.
    pub uuid: Uuid,
    /// The runner's display name.
    pub name: String,
    /// The runner's URL-safe slug, unique on this server.
    pub slug: String,
    /// When the runner was archived, or null while it is active.
    pub archived: Option<DateTime<Utc>>,
    /// When the runner last sent a heartbeat, or null if it never did.
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// When the runner was created.
    pub created: DateTime<Utc>,
    /// When the runner was last modified.
    pub modified: DateTime<Utc>,
}

/// A new runner.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonNewRunner {
    /// The name of the runner: 1 to 64 bytes, no leading or trailing
    /// whitespace, no control characters.
    pub name: String,
    /// The preferred slug for the runner: lowercase ASCII letters and digits
    /// in words joined by single hyphens, at most 64 characters, not a UUID.
    /// If not provided, the slug is generated from the name.
    pub slug: Option<String>,
}

/// Changes to a runner. Absent fields are left unchanged.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonUpdateRunner {
    /// The new name of the runner (same rules as on creation).
    pub name: Option<String>,
    /// The new slug of the runner (same rules as on creation).
    pub slug: Option<String>,
    /// Set to true to archive the runner, false to unarchive it. Archiving an
    /// already archived runner keeps its original archive time.
    pub archived: Option<bool>,
}

/// A runner's UUID with its runner token. The token is shown only this once:
/// the server keeps nothing but its SHA-256 hash.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonRunnerToken {
    /// The runner's UUID.
    pub uuid: Uuid,
    /// The runner token: `bencher_runner_` followed by 64 lowercase hex
    /// characters. Send it as `Authorization: Bearer <token>` on the runner's
    /// heartbeat.
    pub token: String,
}

/// The version of the API this server implements.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonApiVersion {
    /// The Bencher API version this server is compatible with (semver).
    pub version: String,
}

/// The server's OpenAPI document.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct JsonSpec(pub serde_json::Value);

/// The path of a single runner.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct RunnerPath {
    /// The slug or UUID for a runner.
    pub runner: String,
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
    #[schemars(range(min = 1, max = 255))]
    pub per_page: Option<u32>,
    /// The page number, starting at 1 (the default).
    #[schemars(range(min = 1))]
    pub page: Option<u32>,
    /// Only runners with exactly this name.
    pub name: Option<String>,
    /// Only runners whose name, slug or UUID contains this text,
    /// case-insensitively (`%` and `_` match themselves).
    pub search: Option<String>,
    /// Include archived runners too (default false: active runners only).
    pub archived: Option<bool>,
}

/// The headers of the runner list.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TotalCountHeader {
    /// The number of runners matching the query's filters, on all pages.
    #[serde(rename = "x-total-count")]
    pub x_total_count: String,
}
