//! Group commit: one writer thread takes the write jobs that are waiting,
//! runs each in a savepoint of one transaction, and commits them together,
//! so that concurrent writes share one fsync. Each job's caller is answered
//! only after the commit that holds its write is durable; a job that fails
//! is rolled back to its savepoint alone, and its neighbours still commit.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use r2d2::PooledConnection;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{ErrorCode, Transaction, TransactionBehavior};

use super::StoreError;

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
    fn run(self: Box<Self>, tx: &Transaction<'_>) -> Ran;
    fn fail(self: Box<Self>, e: &StoreError);
}

pub(super) type Job = Box<dyn WriteJob>;

/// An answer to a job, given whether (and how) its commit failed.
type Answer = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// What the writer thread is sent.
pub(super) enum Msg {
    Write(Job),
    /// Finish what is queued before this, close the connection, and tell.
    Stop(std::sync::mpsc::Sender<()>),
}

struct TypedJob<T, F> {
    f: F,
    reply: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteJob for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, tx: &Transaction<'_>) -> Ran {
        let Self { f, reply } = *self;
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
}

/// A job running `f`, whose result goes to `reply` after the commit.
pub(super) fn job<T, F>(f: F, reply: tokio::sync::oneshot::Sender<Result<T, StoreError>>) -> Job
where
    T: Send + 'static,
    F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
{
    Box::new(TypedJob { f, reply })
}

impl StoreError {
    /// The same failure, for each job of a commit that failed.
    fn copy(&self) -> Self {
        match self {
            Self::Busy => Self::Busy,
            other => Self::Task(format!("commit failed: {other}")),
        }
    }
}

/// Starts the writer thread on `conn`; it ends when every sender is gone.
pub(super) fn start(
    mut conn: PooledConnection<SqliteConnectionManager>,
    stats: Arc<WriteStats>,
) -> std::io::Result<mpsc::Sender<Msg>> {
    let (sender, messages) = mpsc::channel::<Msg>();
    std::thread::Builder::new()
        .name("runners-writer".into())
        .spawn(move || {
            let mut stop = None;
            while stop.is_none() {
                let Ok(first) = messages.recv() else {
                    break;
                };
                let mut batch = Vec::new();
                let mut next = Some(first);
                while let Some(message) = next.take() {
                    match message {
                        Msg::Write(job) => batch.push(job),
                        Msg::Stop(done) => {
                            stop = Some(done);
                            break;
                        }
                    }
                    if batch.len() < BATCH_MAX {
                        next = messages.try_recv().ok();
                    }
                }
                if !batch.is_empty() {
                    commit(&mut conn, batch, &stats);
                }
            }
            // Closing the connection (the last one, at shutdown) checkpoints
            // the WAL.
            drop(conn);
            if let Some(done) = stop {
                let _ = done.send(());
            }
        })?;
    Ok(sender)
}

/// Runs `batch` in one transaction and answers every job.
fn commit(
    conn: &mut PooledConnection<SqliteConnectionManager>,
    batch: Vec<Job>,
    stats: &WriteStats,
) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let e = StoreError::from(e);
            for job in batch {
                job.fail(&e);
            }
            return;
        }
    };
    let mut ran = Vec::with_capacity(batch.len());
    for job in batch {
        if let Err(e) = tx.execute_batch("SAVEPOINT job") {
            job.fail(&StoreError::from(e));
            continue;
        }
        let done = job.run(&tx);
        let close = if done.ok {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        match tx.execute_batch(close) {
            Ok(()) => ran.push(done),
            // The savepoint could not be closed: the transaction is in an
            // unknown state, so nothing of it is committed.
            Err(e) => {
                let e = StoreError::from(e);
                (done.answer)(Some(&e));
                for done in ran {
                    (done.answer)(Some(&e));
                }
                return;
            }
        }
    }
    let committed = tx.commit().map_err(|e| match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
        _ => StoreError::from(e),
    });
    let failed = committed.err();
    if failed.is_none() {
        let written = ran.iter().filter(|done| done.ok).count() as u64;
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats.writes.fetch_add(written, Ordering::Relaxed);
    }
    for done in ran {
        (done.answer)(failed.as_ref());
    }
}
