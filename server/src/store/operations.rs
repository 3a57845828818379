//! The one list of what the store does, which each engine implements in
//! full: a trait per topic, all of them required by [`Operations`], so an
//! engine that lacks an operation does not compile (the front, `mod.rs`,
//! calls each through these traits, one line per operation).
//!
//! Native `async fn`s, never called through `dyn`: the front matches on the
//! engine and calls the concrete type's method, so each future's `Send` is
//! known. The signatures are the store's own model ([`super::model`]),
//! never an engine's types.

use uuid::Uuid;

use super::error::StoreError;
use super::model::events::Listener;
use super::model::{
    Actor, AgentInfo, ApiTokenRow, AuditQuery, AuditRow, JobId, JobRow, KeyHolder, KeyOwner,
    KeyQuery, KeyRef, KeyRename, KeyRow, KeyedRunner, NewApiToken, NewJob, NewKey, NewProject,
    NewRun, NewRunner, NewSpec, OrgRow, ProjectRef, ProjectRow, RefTo, ReportQuery, ReportRow,
    RunnerChannel, RunnerId, RunnerKeyHash, RunnerRef, RunnerRow, SigningSecret, SpecId, SpecRef,
    SpecRow, TokenPrincipal, UserRow,
};
use super::model::{NewRegistryKey, RegistryKeyRow};
use super::pg::item::PgItem;
use super::rules::{Claim, Claimant, Claimed, Expiry, Reported, RunnerReport, Timeouts};
use super::sqlite::item::SqliteItem;
use crate::validate::{JobListQuery, ListQuery, Ref};

/// An item both engines keep: the model's half ([`super::model::Item`])
/// and each engine's.
pub trait Stored: SqliteItem + PgItem {}

impl<T: SqliteItem + PgItem> Stored for T {}

/// Every operation, on one engine (each engine says it is one, in
/// `mod.rs`: its missing operations are then the compiler's errors).
pub trait Operations:
    ItemOps
    + RunnerOps
    + RunnerSpecOps
    + SpecOps
    + JobOps
    + ClaimOps
    + TokenOps
    + AuditOps
    + EngineOps
    + ProjectOps
    + KeyOps
    + ReportOps
    + RegistryKeyOps
{
}

/// What every item (a runner, a spec) has: lookup and the common update.
/// `T` is an item both engines keep ([`Stored`]).
pub trait ItemOps {
    /// One item, by UUID or slug.
    async fn item<T: Stored>(&self, r: &RefTo<T>) -> Result<T::Row, StoreError>;
    /// Applies `changes` in one transaction, with its audit row; an update
    /// that changes nothing writes nothing.
    async fn update<T: Stored>(
        &self,
        r: RefTo<T>,
        changes: T::Changes,
        actor: &Actor,
    ) -> Result<T::Row, StoreError>;
}

/// Runners and their keys.
pub trait RunnerOps {
    async fn list_runners(&self, q: ListQuery) -> Result<(Vec<RunnerRow>, u64), StoreError>;
    async fn import_runners(
        &self,
        runners: Vec<(String, String, RunnerKeyHash)>,
    ) -> Result<usize, StoreError>;
    async fn create_runner(
        &self,
        keyed: (NewRunner, RunnerKeyHash),
        actor: &Actor,
    ) -> Result<RunnerRow, StoreError>;
    async fn rotate_runner_key(
        &self,
        rekeyed: (RunnerRef, RunnerKeyHash),
        actor: &Actor,
    ) -> Result<Uuid, StoreError>;
    async fn runner_by_key_hash(
        &self,
        key_hash: RunnerKeyHash,
    ) -> Result<Option<KeyedRunner>, StoreError>;
    async fn heartbeat(&self, runner: &KeyedRunner) -> Result<Option<RunnerRow>, StoreError>;
}

/// The specs of each runner.
pub trait RunnerSpecOps {
    async fn runner_specs(&self, r: &RunnerRef) -> Result<Vec<SpecRow>, StoreError>;
    async fn add_runner_spec(
        &self,
        pair: (RunnerRef, SpecRef),
        actor: &Actor,
    ) -> Result<SpecRow, StoreError>;
    async fn remove_runner_spec(
        &self,
        pair: (RunnerRef, SpecRef),
        actor: &Actor,
    ) -> Result<(), StoreError>;
}

/// Hardware specs.
pub trait SpecOps {
    async fn list_specs(&self, q: ListQuery) -> Result<(Vec<SpecRow>, u64), StoreError>;
    async fn create_spec(&self, new: NewSpec, actor: &Actor) -> Result<SpecRow, StoreError>;
    async fn delete_spec(&self, r: SpecRef, actor: &Actor) -> Result<(), StoreError>;
}

/// Jobs as their submitters see them.
pub trait JobOps {
    async fn create_job(&self, new: NewJob, actor: &Actor) -> Result<JobRow, StoreError>;
    async fn job(&self, uuid: Uuid) -> Result<JobRow, StoreError>;
    async fn list_jobs(
        &self,
        runner: Option<RunnerRef>,
        q: JobListQuery,
    ) -> Result<(Vec<JobRow>, u64), StoreError>;
    async fn cancel_job(&self, uuid: Uuid, actor: &Actor) -> Result<JobRow, StoreError>;
}

/// Jobs as runners take and run them, and runners' channels.
pub trait ClaimOps {
    async fn runner_spec_ids(&self, runner: RunnerId) -> Result<Vec<SpecId>, StoreError>;
    async fn claim_job(&self, claimant: Claimant) -> Result<Claim, StoreError>;
    async fn release_job(&self, job: JobId, runner: RunnerId) -> Result<bool, StoreError>;
    async fn runner_seen(
        &self,
        runner: RunnerId,
        agent: Option<AgentInfo>,
    ) -> Result<(), StoreError>;
    async fn report_job(
        &self,
        said: RunnerReport,
        timeouts: Timeouts,
    ) -> Result<Reported, StoreError>;
    async fn fail_job(&self, job: JobId, error: &'static str) -> Result<bool, StoreError>;
    async fn expire_job(&self, job: JobId, timeouts: Timeouts) -> Result<Expiry, StoreError>;
    async fn active_jobs(&self) -> Result<Vec<Claimed>, StoreError>;
    async fn set_channel(&self, channel: RunnerChannel, open: bool) -> Result<(), StoreError>;
    async fn channel_superseded(&self, channel: RunnerChannel) -> Result<bool, StoreError>;
    async fn serve_channels(&self) -> Result<(), StoreError>;
}

/// Users, API tokens and the signing key.
pub trait TokenOps {
    async fn signing_secret(&self) -> Result<SigningSecret, StoreError>;
    async fn has_admin(&self) -> Result<bool, StoreError>;
    async fn issue_api_token(
        &self,
        new: NewApiToken,
        actor: &Actor,
    ) -> Result<(Uuid, String), StoreError>;
    async fn token_principal(&self, jti: Uuid) -> Result<Option<TokenPrincipal>, StoreError>;
    async fn list_api_tokens(&self) -> Result<Vec<ApiTokenRow>, StoreError>;
    async fn revoke_api_token(&self, jti: Uuid, actor: &Actor) -> Result<(), StoreError>;
    async fn rotate_signing_key(&self, actor: &Actor) -> Result<usize, StoreError>;
}

/// The keys that sign registry tokens.
pub trait RegistryKeyOps {
    /// The keys not retired, newest (the one that signs) first.
    async fn registry_keys(&self) -> Result<Vec<RegistryKeyRow>, StoreError>;
    /// Adds `new` as the newest key: it signs from now on.
    async fn rotate_registry_key(
        &self,
        new: NewRegistryKey,
        actor: &Actor,
    ) -> Result<(), StoreError>;
    /// Retires every key but the newest; the IDs of those retired.
    async fn retire_registry_keys(&self, actor: &Actor) -> Result<Vec<String>, StoreError>;
}

/// The audit trail.
pub trait AuditOps {
    /// The rows `q` asks for, and how many match on all pages.
    async fn audit(&self, q: AuditQuery) -> Result<(Vec<AuditRow>, u64), StoreError>;
}

/// The engine itself: its events, its shutdown, its figures.
pub trait EngineOps {
    /// Hands every committed change to `listener` (set once).
    fn listen(&self, listener: Listener);
    /// Finishes what is under way and closes; writes after this fail.
    async fn close(&self);
    /// Resolves if the engine can write no more (SQLite's writer thread
    /// died); never otherwise.
    async fn writer_stopped(&self);
    /// Whether the engine can serve: the database answers, SQLite's writer
    /// lives, PostgreSQL's `LISTEN` (once asked for) is connected; else why
    /// not.
    async fn readiness(&self) -> Result<(), String>;
    /// The engine's own counts for the metrics (no database call).
    fn stats(&self) -> super::model::gauges::EngineStats;
    /// The registry's counts for the metrics, from indexes only.
    async fn gauges(&self) -> Result<super::model::gauges::Gauges, StoreError>;
    /// Database calls so far (reads and writes).
    fn calls(&self) -> u64;
    /// Writes and commits so far.
    fn write_stats(&self) -> (u64, u64);
    /// Files of the database made owner-only when it was opened.
    fn tightened(&self) -> &[std::path::PathBuf];
}

/// Projects (the rest of an item's operations are [`ItemOps`]), the
/// organization, users.
pub trait ProjectOps {
    async fn organization(&self) -> Result<OrgRow, StoreError>;
    async fn list_projects(&self, q: ListQuery) -> Result<(Vec<ProjectRow>, u64), StoreError>;
    async fn create_project(
        &self,
        new: NewProject,
        actor: &Actor,
    ) -> Result<ProjectRow, StoreError>;
    async fn delete_project(&self, r: ProjectRef, actor: &Actor) -> Result<(), StoreError>;
    async fn user(&self, r: Ref) -> Result<UserRow, StoreError>;
}

/// Project keys and user keys.
pub trait KeyOps {
    async fn create_key(&self, new: NewKey, actor: &Actor) -> Result<KeyRow, StoreError>;
    async fn list_keys(
        &self,
        owner: KeyOwner,
        q: KeyQuery,
    ) -> Result<(Vec<KeyRow>, u64), StoreError>;
    async fn key(&self, key: KeyRef) -> Result<KeyRow, StoreError>;
    async fn rename_key(&self, renamed: KeyRename, actor: &Actor) -> Result<KeyRow, StoreError>;
    async fn revoke_key(&self, key: KeyRef, actor: &Actor) -> Result<(), StoreError>;
    async fn key_holder(&self, hash: RunnerKeyHash) -> Result<Option<KeyHolder>, StoreError>;
}

/// Runs and their reports.
pub trait ReportOps {
    async fn create_run(&self, run: NewRun, actor: &Actor) -> Result<ReportRow, StoreError>;
    async fn report(&self, project: ProjectRef, uuid: Uuid) -> Result<ReportRow, StoreError>;
    async fn list_reports(
        &self,
        project: ProjectRef,
        q: ReportQuery,
    ) -> Result<(Vec<ReportRow>, u64), StoreError>;
}
