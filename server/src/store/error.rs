//! What can go wrong in the store, on either engine: each variant carries
//! the facts; the wording is in its `#[error]`, and the HTTP edge picks the
//! status. Each engine maps its own driver's errors (`From`) in its folder.

use std::time::Duration;

use uuid::Uuid;

use super::model::Kind;
use crate::validate::Ref;

/// How long a statement waits for another writer, or for a connection,
/// before giving up ([`StoreError::Busy`], 503); on PostgreSQL also how
/// long one operation may take in all ([`StoreError::Unavailable`]).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What can go wrong in the store. Each variant carries the facts; the
/// wording is in its `#[error]`, and the HTTP edge picks the status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no {kind} has {by}")]
    NotFound { kind: Kind, by: Ref },
    #[error("slug: `{slug}` is already taken by another {kind}")]
    SlugTaken { kind: Kind, slug: String },
    #[error("slug: no free slug could be generated from the name in {0} attempts")]
    NoFreeSlug(usize),
    /// A runner that must be active for this is archived.
    #[error("runner `{0}` is archived: unarchive it first")]
    RunnerArchived(String),
    #[error("spec `{0}` is archived: unarchive it before making it the fallback")]
    SpecArchived(String),
    #[error("runner `{runner}` has spec `{spec}` already")]
    RunnerHasSpec { runner: String, spec: String },
    #[error("runner `{runner}` does not have spec `{spec}`")]
    RunnerLacksSpec { runner: String, spec: String },
    #[error("spec `{spec}` is in use by runner `{runner}`: remove it from the runner first")]
    SpecInUse { spec: String, runner: String },
    #[error(
        "spec: none was given and no fallback spec exists: name one in `spec`, or make a spec the fallback (`fallback: true` on POST /v0/specs or PATCH /v0/specs/{{spec}})"
    )]
    NoFallbackSpec,
    #[error("spec `{0}` is archived: unarchive it or choose another")]
    SpecArchivedForJob(String),
    #[error("spec `{spec}` is used by job `{job}`: specs of jobs cannot be deleted")]
    SpecHasJobs { spec: String, job: Uuid },
    #[error(
        "job `{job}` has already ended ({status}): only a pending, claimed or running job can be canceled"
    )]
    JobEnded { job: Uuid, status: &'static str },
    #[error("job `{0}` is not this runner's")]
    NotRunnersJob(Uuid),
    /// The runner was archived or re-keyed since its channel opened.
    #[error("the runner was archived or its key was rotated")]
    RunnerRevoked,
    #[error("another channel of this runner opened: this one is no longer its channel")]
    ChannelNotCurrent,
    #[error("no API token has the UUID `{0}`")]
    ApiTokenNotFound(Uuid),
    /// The database stayed locked by another writer past the busy timeout,
    /// or no connection came free in that time.
    #[error("the database is busy")]
    Busy,
    /// The database cannot be reached (PostgreSQL down or restarting), or
    /// gave no answer within [`BUSY_TIMEOUT`].
    #[error("the database cannot be reached")]
    Unavailable,
    /// The write queue is full: more writes are waiting than it holds.
    #[error("too many writes are waiting: nothing was written")]
    Overloaded,
    /// The disk (or the file system's quota) is full: nothing was written.
    #[error("the disk is full: nothing was written")]
    DiskFull,
    /// The writer thread has died: no write can be done any more.
    #[error("the database writer has stopped")]
    WriterStopped,
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// PostgreSQL's error (the PostgreSQL engine), other than the ones
    /// mapped to `Busy` and `DiskFull`.
    #[error("database error: {0}")]
    Pg(tokio_postgres::Error),
    #[error("store task failed: {0}")]
    Task(String),
}
