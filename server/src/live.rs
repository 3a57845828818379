//! The live event stream (`GET /v0/events`, admin only): each runner's and
//! each job's status as it changes, as Server-Sent Events, for the console
//! and for autoscalers.
//!
//! The store says *what* changed ([`Event::RunnerChanged`],
//! [`Event::JobChanged`]): on SQLite the writer, after each commit, from a
//! change log its own connection's triggers keep; on PostgreSQL a trigger's
//! `NOTIFY`, which every replica's `LISTEN` hears, so a stream on one
//! replica sees the writes of all. One task per process then reads each
//! changed row once and renders it as one event, which every open stream
//! gets: a stream costs no read of its own, and nothing is read while no
//! stream is open. The event carries the row's status *now* (so a late
//! event never shows an older status than an earlier one did).
//!
//! A stream that falls more than [`BACKLOG`] events behind, or a process
//! whose `LISTEN` connection was lost and made again ([`Event::Resync`]),
//! gets `event: resync` instead of what it missed: read again what you
//! show. Each stream opens with `event: open`, and sends a comment every
//! [`KEEP_ALIVE`] while nothing happens (proxies and the acceptor's idle
//! timeout see bytes move). Streams end when the server shuts down.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, watch};

use crate::store::model::events::Event;
use crate::store::{RunnerRef, Store, StoreError};
use crate::types::{JsonJobEvent, JsonRunnerEvent};

/// The events a stream may fall behind by before it is told to resync.
pub const BACKLOG: usize = 1024;
/// How often an idle stream sends a comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The process's live events: the store's changes in, rendered events out.
pub struct Live {
    changed: mpsc::Sender<Event>,
    out: broadcast::Sender<Bytes>,
    stop: watch::Sender<bool>,
}

impl Live {
    /// Starts the task that renders the changes `store` reports.
    pub fn start(store: Store, log: slog::Logger) -> Arc<Self> {
        let (changed, changes) = mpsc::channel(BACKLOG);
        let (out, _) = broadcast::channel(BACKLOG);
        tokio::spawn(render(store, changes, out.clone(), log));
        let (stop, _) = watch::channel(false);
        Arc::new(Self { changed, out, stop })
    }

    /// Hands over one of the store's events (from its listener: never
    /// blocks). Ignored while no stream is open.
    pub fn tell(&self, event: Event) {
        if self.out.receiver_count() == 0 {
            return;
        }
        if self.changed.try_send(event).is_err() {
            // The renderer is behind by a whole backlog: every stream
            // reads again rather than wait for it.
            let _ = self.out.send(message("resync", "{}"));
        }
    }

    /// One new stream's bytes: `event: open`, then every event, a comment
    /// each [`KEEP_ALIVE`] of quiet; it ends at [`Live::shut_down`] or when
    /// its reader goes.
    pub fn subscribe(&self) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(16);
        let mut events = self.out.subscribe();
        let mut stop = self.stop.subscribe();
        tokio::spawn(async move {
            let open = message("open", "{}");
            if *stop.borrow_and_update() || tx.send(retry_and(open)).await.is_err() {
                return;
            }
            loop {
                let next = tokio::select! {
                    _ = stop.changed() => return,
                    () = tx.closed() => return,
                    received = tokio::time::timeout(KEEP_ALIVE, events.recv()) => received,
                };
                let bytes = match next {
                    Ok(Ok(bytes)) => bytes,
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => message("resync", "{}"),
                    Ok(Err(broadcast::error::RecvError::Closed)) => return,
                    Err(_quiet) => Bytes::from_static(b": keep-alive\n\n"),
                };
                // A reader that reads nothing holds this send; a shutdown
                // still ends the stream.
                let sent = tokio::select! {
                    _ = stop.changed() => return,
                    sent = tx.send(bytes) => sent,
                };
                if sent.is_err() {
                    return;
                }
            }
        });
        rx
    }

    /// Ends every stream (the server is shutting down).
    pub fn shut_down(&self) {
        let _ = self.stop.send(true);
    }
}

/// The reconnection delay a browser's reader waits, then `first`.
fn retry_and(first: Bytes) -> Bytes {
    let mut bytes = b"retry: 2000\n".to_vec();
    bytes.extend_from_slice(&first);
    Bytes::from(bytes)
}

/// One Server-Sent Event: `event: NAME`, one `data:` line (JSON has no
/// newline), and the blank line that ends it.
fn message(event: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// Renders each change as an event with the row's status now, in the order
/// the changes came (a row changed twice in one batch: once, at its last).
async fn render(
    store: Store,
    mut changes: mpsc::Receiver<Event>,
    out: broadcast::Sender<Bytes>,
    log: slog::Logger,
) {
    let mut batch = Vec::new();
    while changes.recv_many(&mut batch, 256).await > 0 {
        let mut seen = std::collections::HashSet::new();
        let last_first: Vec<Event> = batch
            .drain(..)
            .rev()
            .filter(|e| seen.insert(e.clone()))
            .collect();
        for event in last_first.into_iter().rev() {
            if out.receiver_count() == 0 {
                break;
            }
            match rendered(&store, &event).await {
                Ok(Some(bytes)) => {
                    let _ = out.send(bytes);
                }
                Ok(None) => {}
                Err(e) => {
                    slog::warn!(log, "cannot read a change for the event stream: {e}");
                    let _ = out.send(message("resync", "{}"));
                }
            }
        }
    }
}

/// The event of one change; `None` for a row gone since, or an event the
/// stream does not carry.
async fn rendered(store: &Store, event: &Event) -> Result<Option<Bytes>, StoreError> {
    let (name, data) = match *event {
        Event::RunnerChanged { runner } => {
            let row = match store.item(&RunnerRef::from(runner)).await {
                Err(StoreError::NotFound { .. }) => return Ok(None),
                row => row?,
            };
            (
                "runner",
                serde_json::to_string(&JsonRunnerEvent::from(&row)),
            )
        }
        Event::JobChanged { job } => {
            let row = match store.job(job).await {
                Err(StoreError::NotFound { .. }) => return Ok(None),
                row => row?,
            };
            ("job", serde_json::to_string(&JsonJobEvent::from(&row)))
        }
        Event::Resync => ("resync", Ok("{}".to_owned())),
        _ => return Ok(None),
    };
    let data = data.map_err(|e| StoreError::Task(e.to_string()))?;
    Ok(Some(message(name, &data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream whose reader reads nothing still ends at shutdown (its
    /// task was waiting to hand over an event).
    #[tokio::test]
    async fn a_stream_that_reads_nothing_ends_at_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_db(&dir.path().join("r.db"), 16).await.unwrap();
        let live = Live::start(store, slog::Logger::root(slog::Discard, slog::o!()));
        let reader = live.subscribe();
        tokio::time::sleep(Duration::from_millis(50)).await;
        for _ in 0..64 {
            live.out.send(message("job", "{}")).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!reader.is_closed(), "open while the server runs");
        live.shut_down();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(reader.is_closed(), "the stream's task ended at shutdown");
    }
}
