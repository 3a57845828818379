//! Group commit: one writer thread takes the write jobs that are waiting,
//! runs each in a savepoint of one transaction, and commits them together,
//! so that concurrent writes share one fsync. Each job's caller is answered
//! only after the commit that holds its write is durable; a job that fails
//! is rolled back to its savepoint alone, and its neighbours still commit.
//!
//! The queue is bounded (a write that finds it full is refused at once),
//! and every job has its own deadline, counted from when it was queued: a
//! job still waiting for the write lock at its deadline is answered
//! [`StoreError::Busy`], whatever else is queued. If the thread ever dies,
//! [`Writer::stopped`] tells, so that the process can exit rather than go
//! on serving reads only.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use r2d2::PooledConnection;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{ErrorCode, Transaction, TransactionBehavior};

use crate::store::error::StoreError;
use crate::store::model::events::{Event, Listener};

/// Most jobs in one transaction: bounds how long one commit holds the
/// write lock, and how much one failed commit takes down with it.
const BATCH_MAX: usize = 128;

/// What a job leaves after it ran: whether it succeeded (its savepoint is
/// released, or else rolled back), and how to answer its caller once the
/// transaction's fate is known.
pub(super) struct Ran {
    ok: bool,
    answer: Answer,
}

/// A write waiting for its turn: it runs in the writer's transaction, or
/// is answered with the writer's error if it cannot run.
pub(super) trait WriteJob: Send {
    /// When its caller stops waiting for the write lock.
    fn deadline(&self) -> Instant;
    fn run(self: Box<Self>, tx: &Transaction<'_>) -> Ran;
    fn fail(self: Box<Self>, e: &StoreError);
}

pub(super) type Job = Box<dyn WriteJob>;

/// An answer to a job, given whether (and how) its commit failed.
type Answer = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// What the writer does in each transaction after its jobs, just before
/// committing (the store's deferred index work). If it fails it must leave
/// nothing changed; the jobs commit regardless.
pub(super) type BeforeCommit = fn(&rusqlite::Connection) -> rusqlite::Result<()>;

/// What the writer does around each commit: [`BeforeCommit`], then takes
/// the transaction's changes ([`super::changes`]), which go to `publish`'s
/// listener once the commit is durable (a failure to read them: `Resync`).
pub(super) struct Hooks {
    pub before_commit: BeforeCommit,
    pub publish: Arc<std::sync::OnceLock<Listener>>,
}

/// Opens savepoint `name`. Cached statements, these and
/// [`end_savepoint`]'s: parsing them again for every write was a large
/// part of a small one.
pub(super) fn begin_savepoint(conn: &rusqlite::Connection, name: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!("SAVEPOINT {name}"))?
        .execute([])?;
    Ok(())
}

/// Ends savepoint `name`, keeping what it did if `keep`, else rolling it
/// back first.
pub(super) fn end_savepoint(
    conn: &rusqlite::Connection,
    name: &str,
    keep: bool,
) -> rusqlite::Result<()> {
    if !keep {
        conn.prepare_cached(&format!("ROLLBACK TO {name}"))?
            .execute([])?;
    }
    conn.prepare_cached(&format!("RELEASE {name}"))?
        .execute([])?;
    Ok(())
}

/// What the writer thread is sent.
pub(super) enum Msg {
    Write(Job),
    /// Finish what is queued before this, close the connection, and tell.
    Stop(mpsc::Sender<()>),
    /// Make the thread panic outside any job (tests of a dead writer).
    #[cfg(test)]
    Panic,
}

struct TypedJob<T, F> {
    f: F,
    reply: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
    deadline: Instant,
    /// Its place in the queue, given back when it runs or fails.
    slot: Slot,
}

/// A place in the write queue: taken by [`Writer::reserve`], given back on
/// drop.
pub(super) struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<T, F> WriteJob for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
{
    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn run(self: Box<Self>, tx: &Transaction<'_>) -> Ran {
        let Self { f, reply, slot, .. } = *self;
        // Running, it no longer waits: its place is free.
        drop(slot);
        let result = catch_unwind(AssertUnwindSafe(|| f(tx)))
            .unwrap_or_else(|_| Err(StoreError::Task("a write panicked".into())));
        Ran {
            ok: result.is_ok(),
            answer: Box::new(move |failed_commit| {
                let answer = match (result, failed_commit) {
                    (Ok(_), Some(e)) => Err(e.copy()),
                    (result, _) => result,
                };
                // The caller may have gone (its request was dropped).
                let _ = reply.send(answer);
            }),
        }
    }

    fn fail(self: Box<Self>, e: &StoreError) {
        let _ = self.reply.send(Err(e.copy()));
    }
}

/// Successful writes and commits so far, for the benchmark and the tests.
#[derive(Debug, Default)]
pub struct WriteStats {
    pub writes: AtomicU64,
    pub commits: AtomicU64,
    /// Time spent committing, in nanoseconds (the metrics' commit latency).
    pub commit_nanos: AtomicU64,
    /// Drains of the search queues that failed (their rows wait for the
    /// next commit; a lasting failure slows every search).
    pub drain_failures: AtomicU64,
}

/// A job running `f` in the place `slot`, whose result goes to `reply`
/// after the commit, and which gives up waiting for the write lock at
/// `deadline`.
pub(super) fn job<T, F>(
    f: F,
    reply: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
    deadline: Instant,
    slot: Slot,
) -> Job
where
    T: Send + 'static,
    F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
{
    Box::new(TypedJob {
        f,
        reply,
        deadline,
        slot,
    })
}

impl StoreError {
    /// The same failure, for each job of a transaction that failed.
    fn copy(&self) -> Self {
        match self {
            Self::Busy => Self::Busy,
            Self::Unavailable => Self::Unavailable,
            Self::DiskFull => Self::DiskFull,
            other => Self::Task(format!("commit failed: {other}")),
        }
    }
}

/// The writer thread's queue, and whether the thread has died.
pub(super) struct Writer {
    pub(super) jobs: mpsc::Sender<Msg>,
    /// Jobs queued and not yet run (in the channel, or held by the thread
    /// while it waits for the write lock), and how many may be.
    waiting: Arc<AtomicUsize>,
    capacity: usize,
    died: tokio::sync::watch::Receiver<bool>,
}

impl Writer {
    /// Writes queued now.
    pub(super) fn queued(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A place in the queue, if there is one free.
    pub(super) fn reserve(&self) -> Option<Slot> {
        let taken = self.waiting.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(Arc::clone(&self.waiting));
        (taken < self.capacity).then_some(slot)
    }

    /// Whether the writer thread has died ([`Writer::stopped`]).
    pub(super) fn has_died(&self) -> bool {
        *self.died.borrow()
    }

    /// Resolves once the writer thread has died (a panic outside any job):
    /// from then on every write fails, so the process should exit.
    pub(super) async fn stopped(&self) {
        let mut died = self.died.clone();
        if died.wait_for(|died| *died).await.is_err() {
            // The thread ended normally (closed): it never dies now.
            std::future::pending::<()>().await;
        }
    }
}

/// Starts the writer thread on `conn`, with room for `queue` jobs waiting (in
/// the channel, or held while the write lock is taken elsewhere);
/// it ends when every sender is gone or it is told to stop.
pub(super) fn start(
    conn: PooledConnection<SqliteConnectionManager>,
    queue: usize,
    stats: Arc<WriteStats>,
    hooks: Hooks,
) -> std::io::Result<Writer> {
    let (sender, messages) = mpsc::channel::<Msg>();
    let (died_tx, died) = tokio::sync::watch::channel(false);
    std::thread::Builder::new()
        .name("runners-writer".into())
        .spawn(move || {
            let mut conn = conn;
            let ran = catch_unwind(AssertUnwindSafe(|| {
                serve(&mut conn, &messages, &stats, &hooks)
            }));
            match ran {
                Ok(stop) => {
                    // Closing the connection (the last one, at shutdown)
                    // checkpoints the WAL.
                    drop(conn);
                    if let Some(done) = stop {
                        let _ = done.send(());
                    }
                }
                Err(_) => {
                    let _ = died_tx.send(true);
                }
            }
        })?;
    Ok(Writer {
        jobs: sender,
        waiting: Arc::default(),
        capacity: queue,
        died,
    })
}

/// Queues a write, or takes the stop request.
fn take(message: Msg, pending: &mut VecDeque<Job>, stop: &mut Option<mpsc::Sender<()>>) {
    match message {
        Msg::Write(job) => pending.push_back(job),
        Msg::Stop(done) => *stop = Some(done),
        #[cfg(test)]
        Msg::Panic => panic!("the writer was told to panic"),
    }
}

/// The writer's loop: returns when told to stop (with whom to tell) or when
/// every sender is gone.
fn serve(
    conn: &mut PooledConnection<SqliteConnectionManager>,
    messages: &mpsc::Receiver<Msg>,
    stats: &WriteStats,
    hooks: &Hooks,
) -> Option<mpsc::Sender<()>> {
    let mut pending: VecDeque<Job> = VecDeque::new();
    let mut stop = None;
    loop {
        if pending.is_empty() {
            if stop.is_some() {
                break;
            }
            match messages.recv() {
                Ok(message) => take(message, &mut pending, &mut stop),
                Err(_) => break,
            }
        }
        while pending.len() < BATCH_MAX && stop.is_none() {
            match messages.try_recv() {
                Ok(message) => take(message, &mut pending, &mut stop),
                Err(_) => break,
            }
        }
        // Jobs past their deadline are answered now: the lock was not free
        // for them in time.
        let now = Instant::now();
        let (due, waiting): (Vec<Job>, Vec<Job>) =
            pending.drain(..).partition(|job| job.deadline() <= now);
        pending = waiting.into();
        for job in due {
            job.fail(&StoreError::Busy);
        }
        if pending.is_empty() {
            continue;
        }
        let batch: Vec<Job> = pending.drain(..pending.len().min(BATCH_MAX)).collect();
        let unrun = commit(conn, batch, stats, hooks);
        for job in unrun.into_iter().rev() {
            pending.push_front(job);
        }
    }
    stop
}

/// Runs `batch` in one transaction and answers every job it ran; returns
/// the jobs it could not run (the write lock stayed taken until the first
/// deadline of the batch, or the transaction failed before their turn), to
/// be tried again until their own deadlines.
fn commit(
    conn: &mut PooledConnection<SqliteConnectionManager>,
    batch: Vec<Job>,
    stats: &WriteStats,
    hooks: &Hooks,
) -> Vec<Job> {
    let first_deadline = batch.iter().map(|job| job.deadline()).min();
    let wait = first_deadline.map_or(Duration::ZERO, |d| {
        d.saturating_duration_since(Instant::now())
    });
    // Wait for another process's write lock until the batch's first
    // deadline, and no longer.
    if let Err(e) = conn.busy_timeout(wait.max(Duration::from_millis(1))) {
        let e = StoreError::from(e);
        for job in batch {
            job.fail(&e);
        }
        return Vec::new();
    }
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let e = StoreError::from(e);
            if matches!(e, StoreError::Busy) {
                return batch;
            }
            for job in batch {
                job.fail(&e);
            }
            return Vec::new();
        }
    };
    let mut ran: Vec<Ran> = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    while let Some(job) = jobs.next() {
        if let Err(e) = begin_savepoint(&tx, "job") {
            // The transaction is in an unknown state: nothing of it is
            // committed. This job is answered with the error (so that a
            // lasting fault cannot loop); the rest are tried again.
            let e = StoreError::from(e);
            drop(tx);
            job.fail(&e);
            for done in ran {
                (done.answer)(Some(&e));
            }
            return jobs.collect();
        }
        let done = job.run(&tx);
        if let Err(e) = end_savepoint(&tx, "job", done.ok) {
            // As above: the jobs that ran are rolled back and told so, and
            // those not yet run are tried again.
            let e = StoreError::from(e);
            drop(tx);
            (done.answer)(Some(&e));
            for done in ran {
                (done.answer)(Some(&e));
            }
            return jobs.collect();
        }
        ran.push(done);
    }
    // Its failure is not the jobs' (it keeps nothing of its own then),
    // but it is counted.
    if (hooks.before_commit)(&tx).is_err() {
        stats.drain_failures.fetch_add(1, Ordering::Relaxed);
    }
    let changes = super::changes::take(&tx).unwrap_or_else(|_| vec![Event::Resync]);
    let started = std::time::Instant::now();
    let committed = tx.commit().map_err(|e| match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
        _ => StoreError::from(e),
    });
    let failed = committed.err();
    if failed.is_none() {
        let written = ran.iter().filter(|done| done.ok).count() as u64;
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats.writes.fetch_add(written, Ordering::Relaxed);
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        stats.commit_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
    for done in ran {
        (done.answer)(failed.as_ref());
    }
    if let (None, Some(listener)) = (&failed, hooks.publish.get()) {
        changes.into_iter().for_each(listener);
    }
    Vec::new()
}
