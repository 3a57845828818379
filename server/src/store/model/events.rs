//! What the store tells the rest of the server after a write commits: a job
//! a runner can take, a job canceled, a runner that may no longer hold its
//! channel. The dispatcher ([`crate::dispatch`]) listens; nothing waits on
//! the database for them.
//!
//! One process, one SQLite file: events are handed over in memory, right
//! after the commit. Several processes on one PostgreSQL database carry
//! the same events with `NOTIFY` in the write's transaction (delivered at
//! its commit) and one `LISTEN` connection per process that hands each to
//! the same listener: the dispatcher does not change.

use uuid::Uuid;

use super::SpecId;

/// A committed change that other parts of the server act on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// A job of this spec became pending: created, or released by
    /// a runner that could not be given it.
    JobPending { spec: SpecId },
    /// A claimed or running job was canceled: its runner must stop it.
    JobCanceled { runner: Uuid, job: Uuid },
    /// A runner was archived or re-keyed: its channel must close.
    RunnerRevoked { runner: Uuid },
    /// A runner's specs changed: what it may take changed.
    RunnerSpecsChanged { runner: Uuid },
    /// A runner's channel opened on the server process `replica`
    /// (PostgreSQL: a replica; never this process's own): a channel of that
    /// runner held here must close, as when a second channel opens on one
    /// process.
    ChannelOpened { runner: Uuid, replica: Uuid },
    /// A runner's status may have changed (its channel opened or closed,
    /// it was archived or restored, a job of its changed): for the live
    /// event stream ([`crate::live`]).
    RunnerChanged { runner: Uuid },
    /// A job was created, or its status or runner changed (the live event
    /// stream).
    JobChanged { job: Uuid },
    /// Events may have been missed (PostgreSQL: the LISTEN connection was
    /// lost and made again): every channel looks again at the database
    /// (a waiting runner claims, which also checks its key).
    Resync,
}

/// Who hears the store's events: set once, by the dispatcher.
pub type Listener = Box<dyn Fn(Event) + Send + Sync>;
