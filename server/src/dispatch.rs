//! Dispatch by wake-up: who waits for which spec, who holds which channel,
//! and the timeout rules for jobs whose runner has no channel.
//!
//! A runner that said `ready` and got no job waits here, costing no
//! database statement: it is registered under each of its specs (oldest
//! waiter first). When the store commits a job a runner can take (created,
//! or released), it tells the hub ([`Event::JobPending`]), which wakes the
//! oldest waiter of that spec and only that one; the woken runner claims in
//! one write (the claim itself decides, so a job goes to one runner only).
//! A wake is never lost: a woken runner that takes another job (a better
//! one of another spec), or none because it is leaving, passes the wake on
//! to the next waiter of the spec it was woken for; and a runner registers
//! before it claims, so a job that appears between its claim and its wait
//! wakes it.
//!
//! The same events carry cancels and revocations to the channel that must
//! act on them. On PostgreSQL, several processes share the database: the
//! events then travel by `LISTEN`/`NOTIFY` (see [`crate::store::events`]),
//! and each process's hub wakes its own waiters; a runner woken for a job
//! that another process's runner claimed first finds nothing and waits
//! again.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::{Notify, mpsc, watch};
use uuid::Uuid;

use crate::store::Store;
use crate::store::events::Event;
use crate::store::rules::{Expiry, Timeouts};
use crate::store::{JobId, SpecId};

/// What a channel is told to do by the rest of the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Its job was canceled.
    Cancel(Uuid),
    /// Close: another channel of the same runner replaced this one.
    Close(&'static str),
    /// Close: the runner was archived or re-keyed (its job, if any, fails
    /// at once: no channel of that runner can report it any more).
    Revoked,
    /// Its runner's specs changed: claim again and wait on the new ones.
    Respec,
    /// Another process (a replica) opened a channel of its runner: close
    /// if the store records that one now.
    Superseded,
}

/// A runner waiting for a job.
pub struct Waiter {
    seq: u64,
    specs: Vec<SpecId>,
    woken: AtomicBool,
    /// The spec whose job woke it.
    trigger: Mutex<Option<SpecId>>,
    wake: Notify,
}

impl Waiter {
    /// Resolves when woken (at once if woken already).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

/// A channel as the hub knows it.
struct OpenChannel {
    id: u64,
    control: mpsc::UnboundedSender<Control>,
}

#[derive(Default)]
struct State {
    next: u64,
    /// Waiters of each spec (row id), oldest first.
    waiting: HashMap<SpecId, BTreeMap<u64, Arc<Waiter>>>,
    /// The open channel of each runner.
    channels: HashMap<Uuid, OpenChannel>,
}

/// The hub of one server process.
pub struct Hub {
    state: Mutex<State>,
    pub timeouts: Timeouts,
    /// Jobs whose channel is gone, to hold to the timeout rules.
    orphans: mpsc::UnboundedSender<JobId>,
    shutdown: watch::Sender<bool>,
    wakes: AtomicU64,
    /// The live event stream's events, from the store's changes.
    pub live: Arc<crate::live::Live>,
}

impl Hub {
    /// A hub over `store`, listening to its events, with a task that holds
    /// the jobs left claimed or running (by a runner gone, or before a
    /// restart) to the timeout rules.
    pub fn start(store: Store, timeouts: Timeouts, log: slog::Logger) -> Arc<Self> {
        let (orphans, orphaned) = mpsc::unbounded_channel();
        let hub = Arc::new(Self {
            state: Mutex::default(),
            timeouts,
            orphans,
            shutdown: watch::channel(false).0,
            wakes: AtomicU64::new(0),
            live: crate::live::Live::start(store.clone(), log.clone()),
        });
        let weak: Weak<Hub> = Arc::downgrade(&hub);
        store.listen(move |event| {
            if let Some(hub) = weak.upgrade() {
                hub.on_event(event);
            }
        });
        tokio::spawn(reaper(
            store,
            timeouts,
            orphaned,
            hub.shutdown.subscribe(),
            log,
        ));
        hub
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn on_event(&self, event: Event) {
        match event {
            Event::JobPending { spec } => self.wake_one(spec),
            Event::JobCanceled { runner, job } => self.tell(runner, Control::Cancel(job)),
            Event::RunnerRevoked { runner } => self.tell(runner, Control::Revoked),
            Event::RunnerSpecsChanged { runner } => self.tell(runner, Control::Respec),
            Event::ChannelOpened { runner, .. } => self.tell(runner, Control::Superseded),
            Event::Resync => {
                for channel in self.state().channels.values() {
                    let _ = channel.control.send(Control::Respec);
                }
                self.live.tell(Event::Resync);
            }
            Event::RunnerChanged { .. } | Event::JobChanged { .. } => self.live.tell(event),
        }
    }

    fn tell(&self, runner: Uuid, control: Control) {
        if let Some(channel) = self.state().channels.get(&runner) {
            let _ = channel.control.send(control);
        }
    }

    /// Wakes the oldest runner waiting for `spec`, if any.
    pub fn wake_one(&self, spec: SpecId) {
        let mut state = self.state();
        let Some(queue) = state.waiting.get_mut(&spec) else {
            return;
        };
        let Some((_, waiter)) = queue.pop_first() else {
            return;
        };
        if queue.is_empty() {
            state.waiting.remove(&spec);
        }
        remove(&mut state, &waiter);
        waiter.woken.store(true, Relaxed);
        *waiter
            .trigger
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(spec);
        waiter.wake.notify_one();
        self.wakes.fetch_add(1, Relaxed);
    }

    /// Registers a runner with `specs` as waiting.
    pub fn wait(&self, specs: &[SpecId]) -> Arc<Waiter> {
        let mut state = self.state();
        state.next += 1;
        let waiter = Arc::new(Waiter {
            seq: state.next,
            specs: specs.to_vec(),
            woken: AtomicBool::new(false),
            trigger: Mutex::new(None),
            wake: Notify::new(),
        });
        for spec in specs {
            state
                .waiting
                .entry(*spec)
                .or_default()
                .insert(waiter.seq, Arc::clone(&waiter));
        }
        waiter
    }

    /// Ends a wait: the spec it was woken for, if it was woken (and not yet
    /// handled with [`Hub::pass_on`]).
    pub fn unwait(&self, waiter: &Waiter) -> Option<SpecId> {
        let mut state = self.state();
        remove(&mut state, waiter);
        drop(state);
        waiter
            .trigger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Passes a wake for `spec` on to the next waiter (its job was not
    /// taken by the runner woken for it).
    pub fn pass_on(&self, spec: SpecId) {
        self.wake_one(spec);
    }

    /// Records `runner`'s channel; a channel it held before is told to
    /// close. Returns the channel's id and its control messages.
    pub fn open(&self, runner: Uuid) -> (u64, mpsc::UnboundedReceiver<Control>) {
        let (control, controls) = mpsc::unbounded_channel();
        let mut state = self.state();
        state.next += 1;
        let id = state.next;
        if let Some(old) = state.channels.insert(runner, OpenChannel { id, control }) {
            let _ = old
                .control
                .send(Control::Close("another channel of this runner opened"));
        }
        (id, controls)
    }

    /// Forgets `runner`'s channel `id` (if it is still the one recorded).
    pub fn close(&self, runner: Uuid, id: u64) {
        let mut state = self.state();
        if state.channels.get(&runner).is_some_and(|c| c.id == id) {
            state.channels.remove(&runner);
        }
    }

    /// Holds job `id`, whose channel is gone, to the timeout rules.
    pub fn orphan(&self, id: JobId) {
        let _ = self.orphans.send(id);
    }

    /// Channels open now, and runners waiting now.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.state();
        let mut waiters: Vec<u64> = state
            .waiting
            .values()
            .flat_map(|q| q.keys().copied())
            .collect();
        waiters.sort_unstable();
        waiters.dedup();
        (state.channels.len(), waiters.len())
    }

    /// Resolves when the server begins to shut down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Tells every channel (and the reaper) that the server is stopping.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
        self.live.shut_down();
    }
}

/// How long after a job's due time the reaper applies the rules: a runner's
/// own channel applies them at the due time and closes with the reason
/// (`heartbeat_timeout`, `job_timeout_exceeded`); the reaper is for jobs
/// that no channel of this process holds.
const REAPER_LAG: chrono::Duration = chrono::Duration::seconds(2);

/// How often the reaper reads the jobs claimed or running again: half the
/// heartbeat timeout, within 1 to 10 s (a job whose runner went silent
/// without a channel here is failed at most that long after its due time).
fn rescan_every(timeouts: &Timeouts) -> std::time::Duration {
    (timeouts.heartbeat / 2).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(10),
    )
}

fn remove(state: &mut State, waiter: &Waiter) {
    for spec in &waiter.specs {
        if let Some(queue) = state.waiting.get_mut(spec) {
            queue.remove(&waiter.seq);
            if queue.is_empty() {
                state.waiting.remove(spec);
            }
        }
    }
}

/// Holds jobs to the timeout rules: orphaned ones (their channel is gone),
/// and every job claimed or running, read at start and again every
/// [`rescan_every`] (on PostgreSQL other processes claim jobs too, and one
/// that is killed leaves its runners' jobs to the others). Each is checked
/// when it falls due, and failed or canceled then unless its runner spoke
/// for it meanwhile (a live runner's messages move the due time on).
async fn reaper(
    store: Store,
    timeouts: Timeouts,
    mut orphaned: mpsc::UnboundedReceiver<JobId>,
    mut shutdown: watch::Receiver<bool>,
    log: slog::Logger,
) {
    let mut due: BinaryHeap<Reverse<(chrono::DateTime<chrono::Utc>, JobId)>> = BinaryHeap::new();
    // The jobs in `due` (at most once each).
    let mut held = std::collections::HashSet::new();
    let mut rescan = tokio::time::interval(rescan_every(&timeouts));
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = due.peek().map(|Reverse((at, _))| *at);
        let sleep = match next {
            Some(at) => (at - crate::store::now()).to_std().unwrap_or_default(),
            None => std::time::Duration::from_secs(3600),
        };
        tokio::select! {
            _ = rescan.tick() => match store.active_jobs().await {
                Ok(jobs) => {
                    for claimed in jobs.into_iter().filter(|c| held.insert(c.id)) {
                        let at = timeouts.deadline(&claimed.job) + REAPER_LAG;
                        due.push(Reverse((at, claimed.id)));
                    }
                }
                Err(e) => slog::warn!(log, "cannot read the jobs claimed or running: {e}"),
            },
            orphan = orphaned.recv() => match orphan {
                Some(id) => {
                    held.insert(id);
                    due.push(Reverse((crate::store::now(), id)));
                }
                None => return,
            },
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(sleep) => {
                let now = crate::store::now();
                while let Some(Reverse((at, id))) = due.peek().copied() {
                    if at > now {
                        break;
                    }
                    due.pop();
                    match store.expire_job(id, timeouts).await {
                        Ok(Expiry::NotBefore(at)) => due.push(Reverse((at + REAPER_LAG, id))),
                        Ok(Expiry::Failed) => {
                            held.remove(&id);
                            slog::info!(log, "a job failed: its runner was silent past the heartbeat timeout");
                        }
                        Ok(Expiry::TimedOut) => {
                            held.remove(&id);
                            slog::info!(log, "a job was canceled: it ran past its timeout");
                        }
                        Ok(Expiry::Ended) => {
                            held.remove(&id);
                        }
                        Err(e) => {
                            slog::warn!(log, "cannot apply the timeout rules to a job: {e}");
                            due.push(Reverse((now + chrono::Duration::seconds(1), id)));
                            break;
                        }
                    }
                }
            }
        }
    }
}
