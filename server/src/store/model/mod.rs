//! The store's own model, the same on every engine: what it takes and
//! returns. Rows, new items and typed change sets per resource, references
//! that cannot be swapped, typed row ids, the enums with their own text
//! ([`enums`]), what every item is ([`item`]), and who acts ([`principal`]).
//! The wire views (`Json*`) are made from these at the HTTP edge, so that a
//! wire rename changes neither the database nor the audit trail.

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::validate::{Bytes, Cpu, Ref, ResourceName, Slug};

mod enums;
pub mod events;
pub mod gauges;
mod item;
mod principal;
mod project;
pub mod read;
mod registry_key;

pub use enums::{
    Architecture, AuditAction, JobStatus, NameKind, OperatingSystem, RunnerStatus, Sandbox,
    Visibility,
};
pub use item::{Change, Common, CommonChanges, Item, with_common_changes};
pub(crate) use principal::changes;
pub use principal::{
    Actor, ApiTokenRow, NewApiToken, SIGNING_KEY_BYTES, Sign, SigningSecret, TokenPrincipal,
};
pub use project::*;
pub use registry_key::{NewRegistryKey, RegistryKeyRow, libtrust_key_id};

/// A kind of item the store keeps: the word its messages use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Runner,
    Spec,
    Job,
    Project,
    Report,
    Key,
    User,
}

impl Kind {
    /// `runner` or `spec`: in messages, and the stem of a generated slug.
    pub fn name(self) -> &'static str {
        match self {
            Self::Runner => "runner",
            Self::Spec => "spec",
            Self::Job => "job",
            Self::Project => "project",
            Self::Report => "report",
            Self::Key => "key",
            Self::User => "user",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runners, as a type parameter of [`RefTo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runners {}
/// Specs, as a type parameter of [`RefTo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Specs {}

/// An item of one kind named by UUID or slug. A runner's and a spec's
/// references are different types, so they cannot be passed in each other's
/// place.
pub struct RefTo<K> {
    by: Ref,
    kind: PhantomData<fn() -> K>,
}

/// A runner, by UUID or slug.
pub type RunnerRef = RefTo<Runners>;
/// A spec, by UUID or slug.
pub type SpecRef = RefTo<Specs>;

impl<K> RefTo<K> {
    /// How the item is named.
    pub fn by(&self) -> &Ref {
        &self.by
    }
}

impl<K> From<Ref> for RefTo<K> {
    fn from(by: Ref) -> Self {
        Self {
            by,
            kind: PhantomData,
        }
    }
}

impl<K> From<Uuid> for RefTo<K> {
    fn from(uuid: Uuid) -> Self {
        Ref::Uuid(uuid).into()
    }
}

impl<K> Clone for RefTo<K> {
    fn clone(&self) -> Self {
        self.by.clone().into()
    }
}

impl<K> PartialEq for RefTo<K> {
    fn eq(&self, other: &Self) -> bool {
        self.by == other.by
    }
}

impl<K> fmt::Debug for RefTo<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.by.fmt(f)
    }
}

impl<K> fmt::Display for RefTo<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.by.fmt(f)
    }
}

/// The SHA-256 of a runner key: the only form in which a key is kept.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RunnerKeyHash(pub [u8; 32]);

impl fmt::Debug for RunnerKeyHash {
    /// Never the hash itself (it is as good as a key to a lookup).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RunnerKeyHash(..)")
    }
}

impl PartialEq<RunnerKeyHash> for Vec<u8> {
    /// Whether a column read as bytes holds this hash.
    fn eq(&self, hash: &RunnerKeyHash) -> bool {
        self[..] == hash.0
    }
}

/// A row id of one kind of item: an engine's own key, which never leaves
/// the server (the API names items by UUID or slug).
macro_rules! row_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);
    };
}

row_id!(
    /// A runner's row id.
    RunnerId
);
row_id!(
    /// A spec's row id.
    SpecId
);
row_id!(
    /// A job's row id.
    JobId
);

/// A runner's channel: the runner, and when the channel opened (which
/// tells it from the runner's earlier and later channels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunnerChannel {
    pub runner: RunnerId,
    pub since: DateTime<Utc>,
}

/// The runner a runner key belongs to.
#[derive(Clone, Debug)]
pub struct KeyedRunner {
    pub id: RunnerId,
    pub uuid: Uuid,
    pub slug: String,
    pub archived: bool,
    /// The hash of the key it was found by.
    pub key_hash: RunnerKeyHash,
}

pub use crate::validate::AuditQuery;

/// One row of the audit trail.
#[derive(Clone, Debug, Serialize)]
pub struct AuditRow {
    pub time: DateTime<Utc>,
    pub user: Option<String>,
    pub user_uuid: Option<String>,
    pub token: Option<String>,
    pub action: String,
    pub target_uuid: Option<String>,
    pub target_slug: Option<String>,
    pub changes: serde_json::Value,
}

/// A runner as the store keeps it. Its fields (their names included) are
/// what the audit trail records of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunnerRow {
    pub uuid: Uuid,
    pub name: String,
    pub slug: String,
    /// Its specs' UUIDs, in the order they were added.
    pub specs: Vec<Uuid>,
    pub archived: Option<DateTime<Utc>>,
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    /// Computed from its channel and its jobs (never written as such).
    /// This and what its agent reports are not an admin's to change: the
    /// audit trail leaves them out.
    #[serde(skip)]
    pub status: RunnerStatus,
    /// What its agent last reported of itself.
    #[serde(skip)]
    pub os: Option<OperatingSystem>,
    #[serde(skip)]
    pub arch: Option<Architecture>,
    #[serde(skip)]
    pub version: Option<String>,
}

/// A job as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobRow {
    pub uuid: Uuid,
    pub status: JobStatus,
    /// The spec a runner must have to take it.
    pub spec: SpecRow,
    /// How it runs (Bencher's job config), a document the store does not
    /// read.
    pub config: serde_json::Value,
    /// The runner that claimed it.
    pub runner: Option<Uuid>,
    pub claimed: Option<DateTime<Utc>>,
    pub started: Option<DateTime<Utc>>,
    pub completed: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    /// Its results and error, once it has ended.
    pub output: Option<serde_json::Value>,
    pub priority: i32,
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// Seconds.
    pub timeout: u32,
    /// How its output becomes its report's results: only a run's job has
    /// one (and a report).
    #[serde(skip)]
    pub adapter: Option<crate::bmf::Adapter>,
    /// The project of a run's job.
    #[serde(skip)]
    pub project: Option<Uuid>,
}

/// A job to create.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// Without one, the fallback spec.
    pub spec: Option<SpecRef>,
    pub config: serde_json::Value,
    /// Seconds.
    pub timeout: u32,
    pub priority: i32,
}

/// What an agent reports of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentInfo {
    pub os: OperatingSystem,
    pub arch: Architecture,
    pub version: String,
}

/// What a runner reports about its job on its channel.
#[derive(Clone, Debug, PartialEq)]
pub enum JobReport {
    Running,
    Heartbeat,
    /// With its output (`{results}`).
    Completed(serde_json::Value),
    /// With its output (`{results, error}`).
    Failed(serde_json::Value),
    Canceled,
}

/// A runner to create.
#[derive(Clone, Debug)]
pub struct NewRunner {
    pub name: ResourceName,
    /// Without one, a slug is generated from the name.
    pub slug: Option<Slug>,
}

/// Changes to a runner; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct RunnerChanges {
    pub name: Option<ResourceName>,
    pub slug: Option<Slug>,
    /// Archive (an archived runner keeps its first time) or unarchive.
    pub archived: Option<bool>,
}

/// A hardware spec as the store keeps it (and the audit trail records it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpecRow {
    pub uuid: Uuid,
    pub name: String,
    pub slug: String,
    pub architecture: Architecture,
    pub os: OperatingSystem,
    pub cpu: u32,
    pub memory: u64,
    pub disk: u64,
    pub network: bool,
    pub sandbox: Option<Sandbox>,
    pub fallback: Option<DateTime<Utc>>,
    pub archived: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
}

/// A spec to create.
#[derive(Clone, Debug)]
pub struct NewSpec {
    pub name: ResourceName,
    pub slug: Option<Slug>,
    pub architecture: Architecture,
    pub os: OperatingSystem,
    pub cpu: Cpu,
    pub memory: Bytes,
    pub disk: Bytes,
    pub network: bool,
    pub sandbox: Option<Sandbox>,
    /// Make it the fallback spec (clearing it on any other).
    pub fallback: bool,
}

/// Changes to a spec; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct SpecChanges {
    pub name: Option<ResourceName>,
    pub slug: Option<Slug>,
    /// Archiving also clears the fallback (and wins over `fallback: true`).
    pub archived: Option<bool>,
    pub fallback: Option<bool>,
}

/// The UUID of a new row (a runner, spec, job, user or token): version 7,
/// time-ordered, so that consecutive rows' entries sit side by side in the
/// UUID indexes (and in the audit trail's index of targets) and a group
/// commit writes a few index pages rather than one page a row.
pub fn new_uuid() -> Uuid {
    Uuid::now_v7()
}

/// The current time, at the precision the store keeps (microseconds:
/// PostgreSQL's).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A time as the store writes it in text (SQLite's columns, the audit
/// trail's JSON): RFC 3339 in UTC, with microseconds.
pub fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
