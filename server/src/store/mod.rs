//! The store: one async surface over two engines. Callers say what they
//! want (`store.item(&r).await`, `store.list_runners(q).await`); which
//! engine answers, and how a call reaches it, is decided below them.
//!
//! - [`model`]: what the store takes and returns, the same on every engine
//!   (rows, typed refs and ids, stored enums, `Actor`, the `Item` trait,
//!   and the events a committed write tells the rest of the server).
//! - [`operations`]: the one list of operations every engine implements
//!   (the compiler checks that each has all of them).
//! - [`rules`]: the job rules both engines apply, decided once.
//! - [`sql`]: SQL text both dialects share.
//! - [`sqlite`] (the default) and [`pg`]: the engines, which never import
//!   each other; [`migrate`] copies a SQLite file into PostgreSQL.
//! - [`db_name`]: what a `--db` value names; [`error`]: [`StoreError`].
//!
//! This file is the front: open, then one line per operation, matching on
//! the engine ([`on!`]). `ENGINES.md` is the design.

pub mod db_name;
mod error;
pub mod migrate;
pub mod model;
mod operations;
pub mod pg;
pub mod rules;
mod sql;
pub mod sqlite;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::validate::{JobListQuery, ListQuery};
use model::events::Event;
pub use operations::Stored;
use operations::{
    AuditOps, ClaimOps, EngineOps, ItemOps, JobOps, Operations, RunnerOps, RunnerSpecOps, SpecOps,
    TokenOps,
};
use pg::PgStore;
use sqlite::SqliteStore;

pub use db_name::{DbName, db_shown, is_postgres_url};
pub use error::{BUSY_TIMEOUT, StoreError};
pub use model::{
    Actor, AgentInfo, ApiTokenRow, AuditAction, AuditQuery, AuditRow, Item, JobId, JobReport,
    JobRow, KeyedRunner, NewApiToken, NewJob, NewRunner, NewSpec, RefTo, RunnerChanges,
    RunnerChannel, RunnerId, RunnerKeyHash, RunnerRef, RunnerRow, SIGNING_KEY_BYTES, Sign,
    SigningSecret, SpecChanges, SpecId, SpecRef, SpecRow, TokenPrincipal,
};
pub use model::{
    KeyHolder, KeyHolderOwner, KeyOwner, KeyQuery, KeyRef, KeyRename, KeyRow, NameRow, NewKey,
    NewProject, NewRun, OrgRow, ProjectChanges, ProjectRef, ProjectRow, Projects, ReportQuery,
    ReportRow, RunProject, StoredMeasure, StoredResult, UserRow, Visibility,
};
pub use model::{NewRegistryKey, RegistryKeyRow, events, libtrust_key_id, new_uuid, now};
pub use rules::{Claim, Claimant, Claimed, Expiry, Reported, RunnerReport, Timeouts};
pub use sql::SEARCH_INDEX_MIN_CHARS;
pub use sqlite::{POOL_SIZE, WriteStats};

/// Writes that may wait for the writer thread at once, unless told
/// otherwise: at the writer's pace (thousands a second, in batches of up to
/// 128) a full queue drains well within the busy timeout.
pub const WRITE_QUEUE_DEFAULT: usize = 1024;

/// The database. Cloning is cheap: clones share the engine.
#[derive(Clone)]
pub struct Store {
    engine: Engine,
}

/// The engine behind a [`Store`]: an enum, not a trait object, so that no
/// `dyn` async and no generic parameter reaches the callers.
#[derive(Clone)]
enum Engine {
    Sqlite(Arc<SqliteStore>),
    Pg(Arc<PgStore>),
}

/// Both engines implement every operation (a missing one fails here).
impl Operations for SqliteStore {}
impl Operations for PgStore {}
const _: fn() = || {
    fn all<E: Operations>() {}
    all::<SqliteStore>();
    all::<PgStore>();
};

/// Calls operation `op` of `trait` on whichever engine `store` has;
/// PostgreSQL's is bounded by [`BUSY_TIMEOUT`] ([`pg::bounded`]) unless
/// the call says `unbounded`.
macro_rules! on {
    ($store:expr, $trait:ident::$op:ident($($arg:expr),*)) => {
        match &$store.engine {
            Engine::Sqlite(e) => $trait::$op(&**e, $($arg),*).await,
            Engine::Pg(e) => pg::bounded($trait::$op(&**e, $($arg),*)).await,
        }
    };
    (unbounded $store:expr, $trait:ident::$op:ident($($arg:expr),*)) => {
        match &$store.engine {
            Engine::Sqlite(e) => $trait::$op(&**e, $($arg),*).await,
            Engine::Pg(e) => $trait::$op(&**e, $($arg),*).await,
        }
    };
    (sync $store:expr, $trait:ident::$op:ident($($arg:expr),*)) => {
        match &$store.engine {
            Engine::Sqlite(e) => $trait::$op(&**e, $($arg),*),
            Engine::Pg(e) => $trait::$op(&**e, $($arg),*),
        }
    };
}

// After `on!`, which it uses.
mod submit;

impl Store {
    /// Opens (creating if needed) and migrates the SQLite file at `path`,
    /// and makes sure it holds a signing key. Blocking.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Self::open_with(path, WRITE_QUEUE_DEFAULT)
    }

    /// [`Store::open`], with room for `write_queue` writes waiting for the
    /// writer (more are refused at once with [`StoreError::Overloaded`]).
    pub fn open_with(path: &Path, write_queue: usize) -> anyhow::Result<Self> {
        let DbName::Sqlite(path) = DbName::parse(path)? else {
            anyhow::bail!(
                "a PostgreSQL URL is opened with Store::open_db (async), not Store::open"
            );
        };
        let engine = SqliteStore::open(&path, write_queue)?;
        Ok(Self {
            engine: Engine::Sqlite(Arc::new(engine)),
        })
    }

    /// Opens the database `db` names: a `postgres://` (or `postgresql://`)
    /// URL selects PostgreSQL; a path (or `sqlite://PATH`) the SQLite file,
    /// as [`Store::open_with`] (on the blocking pool).
    pub async fn open_db(db: &Path, write_queue: usize) -> anyhow::Result<Self> {
        if let DbName::Postgres(url) = DbName::parse(db)? {
            return Ok(Self {
                engine: Engine::Pg(Arc::new(PgStore::open(&url).await?)),
            });
        }
        let db = db.to_owned();
        tokio::task::spawn_blocking(move || Self::open_with(&db, write_queue)).await?
    }

    /// The SQLite engine, if it is the one (its own tests).
    #[cfg(test)]
    pub(crate) fn sqlite(&self) -> Option<&SqliteStore> {
        match &self.engine {
            Engine::Sqlite(e) => Some(e),
            Engine::Pg(_) => None,
        }
    }

    // The engine.

    /// Sets who hears the store's events (once; later calls are ignored).
    /// On PostgreSQL every event, this process's own included, comes
    /// through the database.
    pub fn listen(&self, listener: impl Fn(Event) + Send + Sync + 'static) {
        on!(sync self, EngineOps::listen(Box::new(listener)));
    }
    /// Finishes the writes under way and closes; writes after this fail.
    pub async fn close_writer(&self) {
        on!(unbounded self, EngineOps::close());
    }
    /// Resolves if the engine can write no more (SQLite's writer thread
    /// died): a server should exit and be restarted rather than serve
    /// reads only. Never resolves otherwise.
    pub async fn writer_stopped(&self) {
        on!(unbounded self, EngineOps::writer_stopped());
    }
    /// The engine's own counts for the metrics.
    pub fn engine_stats(&self) -> model::gauges::EngineStats {
        on!(sync self, EngineOps::stats())
    }
    /// The registry's counts for the metrics.
    pub async fn gauges(&self) -> Result<model::gauges::Gauges, StoreError> {
        on!(self, EngineOps::gauges())
    }
    /// Whether it can serve now, or why not (the readiness probe).
    pub async fn readiness(&self) -> Result<(), String> {
        on!(unbounded self, EngineOps::readiness())
    }
    /// Database calls so far (reads and writes), for the benchmark's count.
    pub fn calls(&self) -> u64 {
        on!(sync self, EngineOps::calls())
    }
    /// Writes and commits so far.
    pub fn write_stats(&self) -> (u64, u64) {
        on!(sync self, EngineOps::write_stats())
    }
    /// The database's files that were readable by group or others and were
    /// made owner-only (0600) when it was opened.
    pub fn tightened(&self) -> &[std::path::PathBuf] {
        on!(sync self, EngineOps::tightened())
    }

    // Items, runners and specs.

    /// One item (a runner or a spec), by UUID or slug.
    pub async fn item<T: Stored>(&self, r: &RefTo<T>) -> Result<T::Row, StoreError> {
        on!(self, ItemOps::item(r))
    }
    /// Applies `changes` to the item `r` in one transaction, with its audit
    /// row; an update that changes nothing writes nothing.
    pub async fn update<T: Stored>(
        &self,
        r: RefTo<T>,
        changes: T::Changes,
        actor: &Actor,
    ) -> Result<T::Row, StoreError> {
        on!(self, ItemOps::update(r, changes, actor))
    }
    /// One page of runners matching `q`, and how many match in all.
    pub async fn list_runners(&self, q: ListQuery) -> Result<(Vec<RunnerRow>, u64), StoreError> {
        on!(self, RunnerOps::list_runners(q))
    }
    /// Inserts runners in one transaction, as given (the benchmark's seed
    /// and bulk imports): each a name, a slug (both valid) and its key's
    /// hash. A taken slug is [`StoreError::SlugTaken`], and nothing is
    /// inserted.
    pub async fn import_runners(
        &self,
        runners: Vec<(String, String, RunnerKeyHash)>,
    ) -> Result<usize, StoreError> {
        on!(unbounded self, RunnerOps::import_runners(runners))
    }
    /// Creates runner `keyed.0`, whose key has the hash `keyed.1`. An explicit slug
    /// that is taken is [`StoreError::SlugTaken`]; a slug generated from the
    /// name gets a random suffix until it is free.
    pub async fn create_runner(
        &self,
        keyed: (NewRunner, RunnerKeyHash),
        actor: &Actor,
    ) -> Result<RunnerRow, StoreError> {
        on!(self, RunnerOps::create_runner(keyed, actor))
    }
    /// Replaces a runner's key hash in one transaction: the old key stops
    /// working at once. Archived runners cannot be rotated. Returns the
    /// runner's UUID.
    pub async fn rotate_runner_key(
        &self,
        rekeyed: (RunnerRef, RunnerKeyHash),
        actor: &Actor,
    ) -> Result<Uuid, StoreError> {
        on!(self, RunnerOps::rotate_runner_key(rekeyed, actor))
    }
    /// The runner whose key has this hash, if any.
    pub async fn runner_by_key_hash(
        &self,
        key_hash: RunnerKeyHash,
    ) -> Result<Option<KeyedRunner>, StoreError> {
        on!(self, RunnerOps::runner_by_key_hash(key_hash))
    }
    /// Records a heartbeat of `runner`, provided its key is still the one
    /// it was found by and it is still active; `None` if either no longer
    /// holds.
    pub async fn heartbeat(&self, runner: &KeyedRunner) -> Result<Option<RunnerRow>, StoreError> {
        on!(self, RunnerOps::heartbeat(runner))
    }
    /// A runner's specs, in the order they were added.
    pub async fn runner_specs(&self, r: &RunnerRef) -> Result<Vec<SpecRow>, StoreError> {
        on!(self, RunnerSpecOps::runner_specs(r))
    }
    /// Gives runner `runner` spec `spec`, with its audit row.
    pub async fn add_runner_spec(
        &self,
        pair: (RunnerRef, SpecRef),
        actor: &Actor,
    ) -> Result<SpecRow, StoreError> {
        on!(self, RunnerSpecOps::add_runner_spec(pair, actor))
    }
    /// Takes spec `spec` from runner `runner`, with its audit row.
    pub async fn remove_runner_spec(
        &self,
        pair: (RunnerRef, SpecRef),
        actor: &Actor,
    ) -> Result<(), StoreError> {
        on!(self, RunnerSpecOps::remove_runner_spec(pair, actor))
    }
    /// One page of specs matching `q`, and how many match in all.
    pub async fn list_specs(&self, q: ListQuery) -> Result<(Vec<SpecRow>, u64), StoreError> {
        on!(self, SpecOps::list_specs(q))
    }
    /// Creates a spec (the fallback, if asked: clearing it on any other).
    pub async fn create_spec(&self, new: NewSpec, actor: &Actor) -> Result<SpecRow, StoreError> {
        on!(self, SpecOps::create_spec(new, actor))
    }
    /// Deletes a spec that no runner has and no job names.
    pub async fn delete_spec(&self, r: SpecRef, actor: &Actor) -> Result<(), StoreError> {
        on!(self, SpecOps::delete_spec(r, actor))
    }

    // Jobs.

    /// Queues a job (on its spec, or the fallback spec), with its audit row.
    pub async fn create_job(&self, new: NewJob, actor: &Actor) -> Result<JobRow, StoreError> {
        on!(self, JobOps::create_job(new, actor))
    }
    /// One job, by UUID.
    pub async fn job(&self, uuid: Uuid) -> Result<JobRow, StoreError> {
        on!(self, JobOps::job(uuid))
    }
    /// One page of jobs (of one runner, or all) matching `q`, and how many
    /// match in all.
    pub async fn list_jobs(
        &self,
        runner: Option<RunnerRef>,
        q: JobListQuery,
    ) -> Result<(Vec<JobRow>, u64), StoreError> {
        on!(self, JobOps::list_jobs(runner, q))
    }
    /// Cancels a job that has not ended, with its audit row.
    pub async fn cancel_job(&self, uuid: Uuid, actor: &Actor) -> Result<JobRow, StoreError> {
        on!(self, JobOps::cancel_job(uuid, actor))
    }

    // What runners do with jobs, and their channels.

    /// The row ids of a runner's specs.
    pub async fn runner_spec_ids(&self, runner: RunnerId) -> Result<Vec<SpecId>, StoreError> {
        on!(self, ClaimOps::runner_spec_ids(runner))
    }
    /// Claims the best pending job of the runner's specs (higher priority
    /// first, then older), if its key and its channel are still current;
    /// with `seen`, records what its agent said of itself in the same write.
    pub async fn claim_job(&self, claimant: Claimant) -> Result<Claim, StoreError> {
        on!(self, ClaimOps::claim_job(claimant))
    }
    /// Puts a claimed job that its runner never confirmed back in the
    /// queue; whether it was.
    pub async fn release_job(&self, job: JobId, runner: RunnerId) -> Result<bool, StoreError> {
        on!(self, ClaimOps::release_job(job, runner))
    }
    /// Records that a runner was seen, and what its agent says of itself.
    pub async fn runner_seen(
        &self,
        runner: RunnerId,
        agent: Option<AgentInfo>,
    ) -> Result<(), StoreError> {
        on!(self, ClaimOps::runner_seen(runner, agent))
    }
    /// Applies what a runner reports about its job.
    pub async fn report_job(
        &self,
        said: RunnerReport,
        timeouts: Timeouts,
    ) -> Result<Reported, StoreError> {
        on!(self, ClaimOps::report_job(said, timeouts))
    }
    /// Fails a claimed or running job with `error`; whether it was.
    pub async fn fail_job(&self, job: JobId, error: &'static str) -> Result<bool, StoreError> {
        on!(self, ClaimOps::fail_job(job, error))
    }
    /// Ends a job past its deadline, if it still is.
    pub async fn expire_job(&self, job: JobId, timeouts: Timeouts) -> Result<Expiry, StoreError> {
        on!(self, ClaimOps::expire_job(job, timeouts))
    }
    /// Every claimed or running job.
    pub async fn active_jobs(&self) -> Result<Vec<Claimed>, StoreError> {
        on!(self, ClaimOps::active_jobs())
    }
    /// Records that a runner's channel, opened at `since`, is open (or
    /// closed).
    pub async fn set_channel(&self, channel: RunnerChannel, open: bool) -> Result<(), StoreError> {
        on!(self, ClaimOps::set_channel(channel, open))
    }
    /// Whether a newer channel of the runner than the one opened at
    /// `since` is recorded (by another replica).
    pub async fn channel_superseded(&self, channel: RunnerChannel) -> Result<bool, StoreError> {
        on!(self, ClaimOps::channel_superseded(channel))
    }
    /// Starts serving runners' channels: channels recorded by a process
    /// that is gone are cleared.
    pub async fn serve_channels(&self) -> Result<(), StoreError> {
        on!(self, ClaimOps::serve_channels())
    }

    // Users, tokens, the signing key and the audit trail.

    /// The secret API tokens are signed with.
    pub async fn signing_secret(&self) -> Result<SigningSecret, StoreError> {
        on!(self, TokenOps::signing_secret())
    }
    /// Whether any user is an admin.
    pub async fn has_admin(&self) -> Result<bool, StoreError> {
        on!(self, TokenOps::has_admin())
    }
    /// Creates the API token `new` (and its user, if needed), signed by
    /// `sign` with the secret read in the same transaction.
    /// Returns the token's UUID (`jti`) and the token, stored nowhere.
    pub async fn issue_api_token(
        &self,
        new: NewApiToken,
        actor: &Actor,
    ) -> Result<(Uuid, String), StoreError> {
        on!(self, TokenOps::issue_api_token(new, actor))
    }
    /// The user behind an API token's `jti`, if the token is known.
    pub async fn token_principal(&self, jti: Uuid) -> Result<Option<TokenPrincipal>, StoreError> {
        on!(self, TokenOps::token_principal(jti))
    }
    /// Every API token, oldest first.
    pub async fn list_api_tokens(&self) -> Result<Vec<ApiTokenRow>, StoreError> {
        on!(self, TokenOps::list_api_tokens())
    }
    /// Revokes an API token (revoking a revoked one keeps its first time).
    pub async fn revoke_api_token(&self, jti: Uuid, actor: &Actor) -> Result<(), StoreError> {
        on!(self, TokenOps::revoke_api_token(jti, actor))
    }
    /// Replaces the signing secret and revokes every token signed with the
    /// old one; how many were revoked.
    pub async fn rotate_signing_key(&self, actor: &Actor) -> Result<usize, StoreError> {
        on!(self, TokenOps::rotate_signing_key(actor))
    }
    /// The audit trail, oldest first: rows from `since` on, and only those
    /// about the runner with this UUID or (current or past) slug.
    pub async fn audit(
        &self,
        since: Option<DateTime<Utc>>,
        runner: Option<String>,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let (rows, _) = on!(self, AuditOps::audit(AuditQuery::new(since, runner)))?;
        Ok(rows)
    }

    /// A page of the audit trail, and how many rows match on all pages.
    pub async fn audit_page(&self, q: AuditQuery) -> Result<(Vec<AuditRow>, u64), StoreError> {
        on!(self, AuditOps::audit(q))
    }
}
