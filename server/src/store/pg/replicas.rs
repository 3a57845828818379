//! Replica leases (schema version 8). Every process that serves the
//! database holds a row of `replicas`, renewed every [`RENEW`]; a runner's
//! open channel names the process holding it (`channel_replica`). A
//! process whose lease is older than [`LAPSE`] is gone (killed, cut off):
//! any other process clears the channels it held, so its runners show
//! `offline` until they reconnect, to any replica. Their jobs need nothing
//! here: every process's reaper holds claimed and running jobs to the
//! timeout rules, whoever claimed them.
//!
//! Every fifth renewal also makes the database's record of this process's
//! channels match those it holds in memory ([`PgStore::reconcile`]): a
//! close it could not write, a channel a sweep cleared while it stalled.
//!
//! Times are PostgreSQL's `now()`, one clock for every process.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::store::error::StoreError;
use crate::store::model::RunnerId;

/// How often a process renews its lease (and, every fifth time, clears the
/// channels of lapsed processes).
pub const RENEW: Duration = Duration::from_secs(1);

/// A lease not renewed for this long has lapsed.
pub const LAPSE: Duration = Duration::from_secs(10);

/// Deletes the lapsed leases and clears every channel no live lease holds
/// (a lapsed process's, or one left by a server before version 8).
const SWEEP: &str = "
    WITH gone AS (DELETE FROM replicas WHERE seen < now() - make_interval(secs => $1))
    UPDATE runners SET channel = NULL, channel_replica = NULL
     WHERE channel IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM replicas r
                        WHERE r.uuid = runners.channel_replica
                          AND r.seen >= now() - make_interval(secs => $1))";

const RENEW_SQL: &str = "
    INSERT INTO replicas (uuid, seen) VALUES ($1, now())
    ON CONFLICT (uuid) DO UPDATE SET seen = now()";

impl PgStore {
    /// Starts this process's lease, clears the channels of processes gone,
    /// and renews the lease every [`RENEW`] until the store closes.
    pub async fn hold_lease(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.execute(RENEW_SQL, &[&self.replica]).await?;
        client.execute(SWEEP, &[&LAPSE.as_secs_f64()]).await?;
        drop(client);
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RENEW);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for n in 1u64.. {
                tick.tick().await;
                if store.pool.is_closed() {
                    return;
                }
                // A failure (the database restarting, say) is retried on
                // the next tick; a lease lapses only after LAPSE of them.
                let _ = store.renew(n % 5 == 0).await;
            }
        });
        Ok(())
    }

    async fn renew(&self, sweep: bool) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.execute(RENEW_SQL, &[&self.replica]).await?;
        if sweep {
            client.execute(SWEEP, &[&LAPSE.as_secs_f64()]).await?;
            self.reconcile(&client).await?;
        }
        Ok(())
    }

    /// Records (in memory) that this process holds runner `runner`'s
    /// channel opened at `since`, or no longer holds it.
    pub(super) fn hold_channel(&self, runner: RunnerId, since: DateTime<Utc>, open: bool) {
        let mut held = self
            .open_channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if open {
            held.insert(runner, since);
        } else if held.get(&runner) == Some(&since) {
            held.remove(&runner);
        }
    }

    /// Makes the database's channels of this process those it holds: one
    /// whose close could not be written (the database was down) is
    /// cleared, and one a sweep cleared while this process was stalled
    /// past its lease is recorded again (unless the runner has a channel
    /// elsewhere by now).
    async fn reconcile(&self, client: &deadpool_postgres::Client) -> Result<(), StoreError> {
        let _writing = self.channel_writes.lock().await;
        let (ids, sinces): (Vec<RunnerId>, Vec<DateTime<Utc>>) = self
            .open_channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(id, since)| (*id, *since))
            .unzip();
        client
            .execute(
                "UPDATE runners SET channel = NULL, channel_replica = NULL
                  WHERE channel IS NOT NULL AND channel_replica = $1 AND NOT (id = ANY($2))",
                &[&self.replica, &ids],
            )
            .await?;
        client
            .execute(
                "UPDATE runners r SET channel = held.since, channel_replica = $1
                   FROM unnest($2::bigint[], $3::timestamptz[]) AS held (id, since)
                  WHERE r.id = held.id AND r.channel IS NULL",
                &[&self.replica, &ids, &sinces],
            )
            .await?;
        Ok(())
    }

    /// Ends this process's lease at a clean shutdown: its channels (closed
    /// by then) and its row go now, not after [`LAPSE`].
    pub async fn end_lease(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE runners SET channel = NULL, channel_replica = NULL \
                 WHERE channel_replica = $1",
                &[&self.replica],
            )
            .await?;
        client
            .execute("DELETE FROM replicas WHERE uuid = $1", &[&self.replica])
            .await?;
        Ok(())
    }
}
