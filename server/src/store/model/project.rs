//! The submitter side's model (Bencher v0.6.12's projects, keys and
//! reports), the same on every engine: a project is an item like a runner
//! (name, slug, UUID), its keys and its users' keys are credentials kept as
//! hashes, and a report is a run's results, with the project's named things
//! (branch, testbed, benchmark, measure) made on first use.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{NameKind, NewJob, RefTo, RunnerKeyHash, Visibility};
use crate::bmf::Adapter;
pub use crate::validate::{KeyQuery, ReportQuery};
use crate::validate::{ResourceName, Slug};

/// Projects, as a type parameter of [`RefTo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Projects {}

/// A project, by UUID or slug.
pub type ProjectRef = RefTo<Projects>;

/// The one organization that stands for this server (its UUID made at
/// first start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgRow {
    pub uuid: Uuid,
    pub created: DateTime<Utc>,
}

/// A project as the store keeps it (and the audit trail records it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProjectRow {
    pub uuid: Uuid,
    pub name: String,
    pub slug: String,
    pub url: Option<String>,
    pub visibility: Visibility,
    /// Never set: a project is deleted, not archived (the column lets it
    /// be an item like the others).
    #[serde(skip)]
    pub archived: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
}

/// A project to create.
#[derive(Clone, Debug)]
pub struct NewProject {
    pub name: ResourceName,
    /// Without one, a slug is generated from the name.
    pub slug: Option<Slug>,
    pub url: Option<String>,
    pub visibility: Visibility,
}

/// Changes to a project; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ProjectChanges {
    pub name: Option<ResourceName>,
    pub slug: Option<Slug>,
    /// Always `None` (projects are not archived).
    pub archived: Option<bool>,
    /// `Some(None)` removes the URL.
    pub url: Option<Option<String>>,
    pub visibility: Option<Visibility>,
}

impl ProjectChanges {
    /// Applies a project's own fields (its URL and visibility) to the
    /// update under way; both engines' updates use it.
    pub fn apply_own(change: super::Change<'_, Projects>) {
        if let Some(url) = &change.asked.url {
            change.next.url = url.clone();
        }
        if let Some(visibility) = change.asked.visibility {
            change.next.visibility = visibility;
        }
    }
}

/// Whose key it is: a project's (`bencher_run_`) or a user's
/// (`bencher_user_`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyOwner {
    Project(Uuid),
    User(Uuid),
}

impl KeyOwner {
    /// `project` or `user`: in messages.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Project(_) => "project",
            Self::User(_) => "user",
        }
    }
}

/// One key, by its owner and UUID (its path names both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRef {
    pub owner: KeyOwner,
    pub uuid: Uuid,
}

/// A key's new name.
#[derive(Clone, Debug)]
pub struct KeyRename {
    pub key: KeyRef,
    pub name: ResourceName,
}

/// A key to create: its owner, name, hash (the key itself is shown once
/// and kept nowhere), creation and expiry.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub owner: KeyOwner,
    pub name: ResourceName,
    pub hash: RunnerKeyHash,
    /// When it is made, and when it stops working (its TTL from then).
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

/// A project's or a user's key, as listed (never the key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyRow {
    pub uuid: Uuid,
    pub owner_uuid: Uuid,
    pub name: String,
    /// The user who made it (a project key's; a user key's own user).
    pub creator: Option<Uuid>,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub revoked: Option<DateTime<Utc>>,
}

/// What a key proves, found by its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyHolder {
    pub key: Uuid,
    pub owner: KeyHolderOwner,
    pub expires: DateTime<Utc>,
    pub revoked: bool,
}

/// The owner behind a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyHolderOwner {
    /// A project key: the project's UUID and slug.
    Project { uuid: Uuid, slug: String },
    /// A user key: the user.
    User(UserRow),
}

/// A user: who API tokens and user keys belong to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserRow {
    pub uuid: Uuid,
    pub name: String,
    pub admin: bool,
}

/// A thing of a project made on first use (a branch, a testbed, a
/// benchmark, a measure): kept once, named the same in every report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NameRow {
    pub uuid: Uuid,
    pub name: String,
    pub slug: String,
    /// A measure's units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<String>,
    pub created: DateTime<Utc>,
}

/// One measure of one benchmark in one iteration, as a report keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredMeasure {
    pub measure: NameRow,
    pub metric: Uuid,
    pub value: f64,
    pub lower_value: Option<f64>,
    pub upper_value: Option<f64>,
}

/// One benchmark's measures in one iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredResult {
    pub benchmark: NameRow,
    pub measures: Vec<StoredMeasure>,
}

/// A report: a run's results (each iteration's), or a job's to come.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportRow {
    pub uuid: Uuid,
    pub project: ProjectRow,
    pub user: Option<UserRow>,
    pub branch: NameRow,
    pub testbed: NameRow,
    pub adapter: Adapter,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub job: Option<Uuid>,
    /// Per iteration; `None` until its job is processed.
    pub results: Option<Vec<Vec<StoredResult>>>,
    pub created: DateTime<Utc>,
}

/// Where a run goes: a project found, or one to make from a slug (Bencher's
/// `get_or_create`, never from a UUID).
#[derive(Clone, Debug)]
pub enum RunProject {
    Existing(Uuid),
    /// A new project (without a slug: one made from its name).
    Create {
        name: ResourceName,
        slug: Option<Slug>,
    },
}

/// A run to record: its report and, with a job, the job to queue.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub project: RunProject,
    /// The user behind the credential (none for a project key).
    pub user: Option<Uuid>,
    pub branch: String,
    pub testbed: String,
    pub adapter: Adapter,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub idempotency_key: Option<Uuid>,
    /// The job to queue, whose results come later.
    pub job: Option<NewJob>,
    /// Without a job: the results, per iteration.
    pub results: Vec<Vec<crate::bmf::BenchmarkResult>>,
}

/// How a name becomes a slug for a project's named things (a name that
/// slugifies to nothing: `{kind}-{uuid}`).
pub fn name_slug(kind: NameKind, name: &str, uuid: Uuid) -> String {
    crate::validate::slug_from_name(name)
        .unwrap_or_else(|| format!("{}-{}", kind.as_str(), uuid.simple()))
}

/// Results as a report keeps them (JSON text): each benchmark and measure
/// by its project's row (`name` finds or makes it), each metric with a UUID
/// of its own. Both engines' reports are written with it.
pub fn stored_results(
    results: &[Vec<crate::bmf::BenchmarkResult>],
    mut name: impl FnMut(NameKind, &str) -> Result<NameRow, crate::store::StoreError>,
) -> Result<String, crate::store::StoreError> {
    let mut iterations = Vec::with_capacity(results.len());
    for iteration in results {
        let mut kept = Vec::with_capacity(iteration.len());
        for result in iteration {
            let benchmark = name(NameKind::Benchmark, &result.benchmark)?;
            let mut measures = Vec::with_capacity(result.measures.len());
            for (measure, metric) in &result.measures {
                measures.push(StoredMeasure {
                    measure: name(NameKind::Measure, measure)?,
                    metric: super::new_uuid(),
                    value: metric.value,
                    lower_value: metric.lower_value,
                    upper_value: metric.upper_value,
                });
            }
            kept.push(StoredResult {
                benchmark,
                measures,
            });
        }
        iterations.push(kept);
    }
    serde_json::to_string(&iterations).map_err(|e| crate::store::StoreError::Task(e.to_string()))
}
