//! What replicas share: events through LISTEN/NOTIFY, leases, and the
//! channels each replica holds, kept true after a stall or an outage.

use tokio_postgres::Client;
use uuid::Uuid;

use super::relay::{CUT, FLOWING, Relay};
use super::{connect, key, new_runner, on_db, one};
use crate::store::events::Event;
use crate::store::model::{Actor, RunnerChannel, RunnerId, RunnerRef};
use crate::store::operations::{ClaimOps, RunnerOps};
use crate::store::pg::replicas::{LAPSE, RENEW};
use crate::store::pg::{PgStore, events, tls};
use crate::validate::Ref;

/// The row id of runner `uuid`.
async fn runner_id(sql: &Client, uuid: Uuid) -> RunnerId {
    one(sql, "SELECT id FROM runners WHERE uuid = $1", &[&uuid]).await
}

/// Whether the database records a channel open for runner `id`.
async fn channel_open(sql: &Client, id: RunnerId) -> bool {
    one(
        sql,
        "SELECT channel IS NOT NULL FROM runners WHERE id = $1",
        &[&id],
    )
    .await
}

/// A rotation through one replica reaches another replica's listener (a
/// NOTIFY in the write's transaction, a LISTEN connection per process),
/// and a rolled-back write sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_other_replicas() {
    on_db("events_reach_other_replicas", async |db| {
        let a = db.store().await;
        let (heard, mut hear) = tokio::sync::mpsc::unbounded_channel();
        let _listening = events::listen(
            &db.config,
            &tls(&mut db.config.clone()).unwrap(),
            std::sync::Arc::new(move |e: Event| {
                let _ = heard.send(e);
            }),
        )
        .await
        .unwrap();
        let actor = Actor::program();
        let runner = a
            .create_runner((new_runner("Far", None), key(1)), &actor)
            .await
            .unwrap();
        // Refused (not found): rolled back, nothing sent.
        let _ = a
            .rotate_runner_key(
                (RunnerRef::from(Ref::Slug("nobody".into())), key(3)),
                &actor,
            )
            .await
            .unwrap_err();
        // The live stream's trigger says the runner was created (and
        // nothing of the refused rotation).
        let created = tokio::time::timeout(std::time::Duration::from_secs(1), hear.recv());
        let created = created.await.expect("heard within 1 s").unwrap();
        assert_eq!(
            created,
            Event::RunnerChanged {
                runner: runner.uuid
            }
        );
        let started = std::time::Instant::now();
        a.rotate_runner_key((RunnerRef::from(runner.uuid), key(2)), &actor)
            .await
            .unwrap();
        let event = tokio::time::timeout(std::time::Duration::from_secs(1), hear.recv())
            .await
            .expect("heard within 1 s")
            .unwrap();
        assert_eq!(
            event,
            Event::RunnerRevoked {
                runner: runner.uuid
            }
        );
        eprintln!(
            "event heard {:?} after the rotation began",
            started.elapsed()
        );
        // A key is no status: nothing for the live stream.
        assert!(hear.try_recv().is_err(), "one event, once");
    })
    .await;
}

/// Replica leases: a live replica keeps its runners' channels however long
/// it runs (another replica starting or sweeping leaves them), a channel
/// no live lease holds is cleared when a replica starts, one whose replica
/// stopped renewing (killed: no clean shutdown) is cleared by another
/// within the lapse and a sweep, and a clean shutdown clears its own at once.
#[tokio::test]
async fn leases_keep_live_channels_and_clear_lapsed_ones() {
    on_db(
        "leases_keep_live_channels_and_clear_lapsed_ones",
        async |db| {
            let (a, b) = (db.store().await, db.store().await);
            let actor = Actor::program();
            let on_a = a.create_runner((new_runner("On A", None), key(1)), &actor);
            let on_a = on_a.await.unwrap();
            let on_b = a.create_runner((new_runner("On B", None), key(2)), &actor);
            let on_b = on_b.await.unwrap();
            let left = a.create_runner((new_runner("Left", None), key(3)), &actor);
            let left = left.await.unwrap();
            let sql = connect(&db.config).await;
            let has_channel = async |id: RunnerId| channel_open(&sql, id).await;
            let mut ids = Vec::new();
            for runner in [&on_a, &on_b, &left] {
                ids.push(runner_id(&sql, runner.uuid).await);
            }
            let [on_a, on_b, left] = ids[..] else {
                unreachable!()
            };
            // A channel left by a server that held no lease (before version 8).
            sql.execute("UPDATE runners SET channel = now() WHERE id = $1", &[&left])
                .await
                .unwrap();
            a.hold_lease().await.unwrap();
            assert!(!has_channel(left).await, "a channel no lease holds");
            a.set_channel(
                RunnerChannel {
                    runner: on_a,
                    since: crate::store::now(),
                },
                true,
            )
            .await
            .unwrap();
            b.hold_lease().await.unwrap();
            b.set_channel(
                RunnerChannel {
                    runner: on_b,
                    since: crate::store::now(),
                },
                true,
            )
            .await
            .unwrap();
            assert!(has_channel(on_a).await, "B's start left A's channel");
            // Past a lapse, and sweeps on both: both channels stay.
            tokio::time::sleep(LAPSE + RENEW * 6).await;
            assert!(has_channel(on_a).await, "A renews its lease");
            assert!(has_channel(on_b).await, "B renews its lease");
            // A stops renewing, as if killed (no clean shutdown).
            a.pool.close();
            let stopped = std::time::Instant::now();
            while has_channel(on_a).await {
                assert!(
                    stopped.elapsed() < LAPSE + RENEW * 7,
                    "A's channel not cleared after {:?}",
                    stopped.elapsed()
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            eprintln!(
                "a lapsed replica's channel cleared after {:?}",
                stopped.elapsed()
            );
            assert!(
                stopped.elapsed() >= LAPSE - RENEW * 2,
                "not before its lease lapsed"
            );
            assert!(has_channel(on_b).await);
            // A clean shutdown clears its own channel and lease at once.
            b.end_lease().await.unwrap();
            assert!(!has_channel(on_b).await);
            let leases: i64 = one(&sql, "SELECT count(*) FROM replicas", &[]).await;
            assert_eq!(leases, 0, "A's lapsed lease swept, B's ended");
        },
    )
    .await;
}

/// The database's channels of a replica are kept true to those it holds:
/// one whose close could not be written (the database was down) is
/// cleared, one a sweep cleared while the replica was stalled past its
/// lease is recorded again, and one the runner has opened on another
/// replica meanwhile is left to that one; within a sweep (5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicas_channels_are_reconciled_with_what_it_holds() {
    on_db(
        "a_replicas_channels_are_reconciled_with_what_it_holds",
        async |db| {
            let a = db.store().await;
            let actor = Actor::program();
            let sql = connect(&db.config).await;
            let mut ids = Vec::new();
            for (i, name) in ["Unclosed", "Swept", "Moved"].into_iter().enumerate() {
                let k = key(u8::try_from(i).unwrap() + 1);
                let runner = a
                    .create_runner((new_runner(name, None), k), &actor)
                    .await
                    .unwrap();
                ids.push(runner_id(&sql, runner.uuid).await);
            }
            let [unclosed, swept, moved] = ids[..] else {
                unreachable!()
            };
            a.hold_lease().await.unwrap();
            let since = crate::store::now();
            for id in [unclosed, swept, moved] {
                a.set_channel(RunnerChannel { runner: id, since }, true)
                    .await
                    .unwrap();
            }
            // Closed here, but the write of it lost.
            a.hold_channel(unclosed, since, false);
            // Cleared by another replica's sweep.
            sql.execute(
                "UPDATE runners SET channel = NULL, channel_replica = NULL WHERE id = $1",
                &[&swept],
            )
            .await
            .unwrap();
            // Opened on another replica (alive) since.
            let elsewhere = Uuid::new_v4();
            sql.execute(
                "INSERT INTO replicas (uuid, seen) VALUES ($1, now())",
                &[&elsewhere],
            )
            .await
            .unwrap();
            sql.execute(
                "UPDATE runners SET channel = now(), channel_replica = $2 WHERE id = $1",
                &[&moved, &elsewhere],
            )
            .await
            .unwrap();
            let state = async |id: RunnerId| -> (bool, Option<Uuid>) {
                let row = sql
                    .query_one(
                        "SELECT channel IS NOT NULL, channel_replica FROM runners WHERE id = $1",
                        &[&id],
                    )
                    .await
                    .unwrap();
                (row.get(0), row.get(1))
            };
            tokio::time::sleep(RENEW * 6 + std::time::Duration::from_millis(500)).await;
            assert_eq!(state(unclosed).await, (false, None), "an unwritten close");
            assert_eq!(
                state(swept).await,
                (true, Some(a.replica)),
                "a swept channel"
            );
            assert_eq!(
                state(moved).await,
                (true, Some(elsewhere)),
                "a channel elsewhere"
            );
        },
    )
    .await;
}

/// A channel that closes while the database is down (its close cannot be
/// written) is cleared once the database is back, within a sweep: never
/// left `idle` for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_closed_while_the_database_is_down_is_cleared_after() {
    on_db(
        "a_channel_closed_while_the_database_is_down_is_cleared_after",
        async |db| {
            let (relay, url) = Relay::before(db).await;
            let a = PgStore::open(&url).await.unwrap();
            let actor = Actor::program();
            let runner = a.create_runner((new_runner("Dropped", None), key(1)), &actor);
            let runner = runner.await.unwrap();
            let sql = connect(&db.config).await;
            let id = runner_id(&sql, runner.uuid).await;
            a.hold_lease().await.unwrap();
            let since = crate::store::now();
            a.set_channel(RunnerChannel { runner: id, since }, true)
                .await
                .unwrap();
            relay.set(CUT);
            // As when the database has been down a while: the pool's connections
            // are seen closed, and no new one can be made.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let lost = a
                .set_channel(RunnerChannel { runner: id, since }, false)
                .await;
            assert!(lost.is_err(), "the close could not be written: {lost:?}");
            relay.set(FLOWING);
            let back = std::time::Instant::now();
            loop {
                let open = channel_open(&sql, id).await;
                if !open {
                    break;
                }
                assert!(
                    back.elapsed() < RENEW * 8,
                    "still recorded open after {:?}",
                    back.elapsed()
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            eprintln!("cleared {:?} after the database came back", back.elapsed());
        },
    )
    .await;
}
