//! The store's own model: what it takes and returns. Rows, new items and
//! typed change sets per resource, references that cannot be swapped, the
//! audit's actions, and the SQL text of every enum, written once. The wire
//! views (`Json*`) are made from these at the HTTP edge, so that a wire
//! rename changes neither the database nor the audit trail.

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::Serialize;
use uuid::Uuid;

use crate::types::{Architecture, OperatingSystem, Sandbox};
pub use crate::types::{JobStatus, RunnerStatus};
use crate::validate::{Bytes, Cpu, Ref, ResourceName, Slug};

/// A kind of item the store keeps: the word its messages use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Runner,
    Spec,
    Job,
}

impl Kind {
    /// `runner` or `spec`: in messages, and the stem of a generated slug.
    pub fn name(self) -> &'static str {
        match self {
            Self::Runner => "runner",
            Self::Spec => "spec",
            Self::Job => "job",
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

impl ToSql for RunnerKeyHash {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Blob(&self.0)))
    }
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

/// What an audit row says was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    RunnerCreate,
    RunnerUpdate,
    RunnerKeyRotate,
    RunnerSpecAdd,
    RunnerSpecRemove,
    SpecCreate,
    SpecUpdate,
    SpecDelete,
    UserCreate,
    UserPromote,
    TokenCreate,
    TokenRevoke,
    KeyRotate,
    JobCreate,
    JobCancel,
}

impl AuditAction {
    /// Every action, in the order above.
    pub const ALL: [Self; 15] = [
        Self::RunnerCreate,
        Self::RunnerUpdate,
        Self::RunnerKeyRotate,
        Self::RunnerSpecAdd,
        Self::RunnerSpecRemove,
        Self::SpecCreate,
        Self::SpecUpdate,
        Self::SpecDelete,
        Self::UserCreate,
        Self::UserPromote,
        Self::TokenCreate,
        Self::TokenRevoke,
        Self::KeyRotate,
        Self::JobCreate,
        Self::JobCancel,
    ];

    /// The action as the audit trail stores and prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RunnerCreate => "runner.create",
            Self::RunnerUpdate => "runner.update",
            Self::RunnerKeyRotate => "runner.key.rotate",
            Self::RunnerSpecAdd => "runner.spec.add",
            Self::RunnerSpecRemove => "runner.spec.remove",
            Self::SpecCreate => "spec.create",
            Self::SpecUpdate => "spec.update",
            Self::SpecDelete => "spec.delete",
            Self::UserCreate => "user.create",
            Self::UserPromote => "user.promote",
            Self::TokenCreate => "token.create",
            Self::TokenRevoke => "token.revoke",
            Self::KeyRotate => "key.rotate",
            Self::JobCreate => "job.create",
            Self::JobCancel => "job.cancel",
        }
    }

    /// Whether the action's target is a runner.
    pub fn is_about_a_runner(self) -> bool {
        matches!(
            self,
            Self::RunnerCreate
                | Self::RunnerUpdate
                | Self::RunnerKeyRotate
                | Self::RunnerSpecAdd
                | Self::RunnerSpecRemove
        )
    }
}

impl ToSql for AuditAction {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(
            self.as_str().as_bytes(),
        )))
    }
}

/// An enum of the wire types kept in a text column under its serde name:
/// one mapping, used by the API and the database alike.
macro_rules! sql_text_enum {
    ($($ty:ty),*) => {$(
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                match serde_json::to_value(self) {
                    Ok(serde_json::Value::String(text)) => Ok(ToSqlOutput::from(text)),
                    _ => Err(rusqlite::Error::ToSqlConversionFailure(
                        format!("{} has no text form", stringify!($ty)).into(),
                    )),
                }
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                serde_json::from_value(serde_json::Value::String(text.to_owned()))
                    .map_err(|e| FromSqlError::Other(e.into()))
            }
        }
    )*};
}

sql_text_enum!(
    Architecture,
    OperatingSystem,
    Sandbox,
    JobStatus,
    RunnerStatus
);
