//! The live event stream's events (`GET /v0/events`, Server-Sent Events):
//! the `data` of each `event: runner` and `event: job`; and the audit
//! trail's rows (`GET /v0/audit`), the other feed the console reads.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{JobStatus, RunnerStatus};
pub use crate::validate::AuditListQuery;

/// `event: runner`: a runner's status now (sent when its channel opened or
/// closed, it was archived or restored, or a job of its changed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JsonRunnerEvent {
    pub uuid: Uuid,
    pub status: RunnerStatus,
    /// Whether it is archived.
    pub archived: bool,
}

/// `event: job`: a job's status now (sent when it was created or its
/// status or runner changed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JsonJobEvent {
    pub uuid: Uuid,
    pub status: JobStatus,
    /// The runner that claimed it, if one has.
    pub runner: Option<Uuid>,
}

/// One row of the audit trail: who changed what, when (`GET /v0/audit`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct JsonAuditEntry {
    /// When it was done.
    pub time: chrono::DateTime<chrono::Utc>,
    /// The acting user's name, if a user acted (not a program command).
    pub user: Option<String>,
    /// The acting user's UUID.
    pub user_uuid: Option<String>,
    /// The UUID of the API token or key it was done with.
    pub token: Option<String>,
    /// What was done: `runner.create`, `job.cancel`, …
    pub action: String,
    /// The UUID of what it was done to.
    pub target_uuid: Option<String>,
    /// Its slug then, if it has one.
    pub target_slug: Option<String>,
    /// The fields that changed, with their new values (never a secret).
    pub changes: serde_json::Value,
}
