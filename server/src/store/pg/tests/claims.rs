//! Claims: the queue's order on both engines (priority, then age; only a
//! runner's specs), a revoked key; racing claims, each job claimed once.

use uuid::Uuid;

use super::{
    ch, connect, create_alike, key, new_job, new_runner, new_spec, on_db, on_engines, one, runner,
    spec, spec_shape, unwrap_both, with_channels,
};
use crate::store::StoreError;
use crate::store::model::{Actor, RunnerChannel, RunnerRef};
use crate::store::operations::{ClaimOps, JobOps, RunnerOps, RunnerSpecOps, SpecOps};
use crate::store::rules::Claimant;

/// Jobs created alike are claimed in the same order on both engines
/// (higher priority first, then older; only a runner's specs), with the
/// same rows; a revoked key claims nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_match_sqlite() {
    on_engines("claims_match_sqlite", async |_db, pg, lite| {
        let actor = Actor::program();
        // No fallback yet: a job without a spec is refused on both.
        let (a, b) = both!(lite, pg, create_job(new_job(None, 0, 0), &actor));
        assert!(matches!(a, Err(StoreError::NoFallbackSpec)), "{a:?}");
        assert!(matches!(b, Err(StoreError::NoFallbackSpec)), "{b:?}");
        create_alike(
            &lite,
            &pg,
            &[("Linux", true), ("Other", false), ("Third", false)],
            &[("R", "r", 1, &["linux", "third"])],
        )
        .await;
        let jobs = [
            (None, 0),
            (Some("other"), 9),
            (Some("linux"), 1),
            (Some("third"), 5),
            (None, 5),
            (Some("linux"), -3),
            (Some("third"), 1),
        ];
        for (n, (s, priority)) in jobs.iter().enumerate() {
            let n = u64::try_from(n).unwrap();
            let (a, b) = unwrap_both(both!(
                lite,
                pg,
                create_job(new_job(*s, *priority, n), &actor)
            ));
            assert_eq!(
                (a.status, &a.config, a.priority, a.timeout),
                (b.status, &b.config, b.priority, b.timeout)
            );
            assert_eq!(spec_shape(&a.spec), spec_shape(&b.spec));
            assert_eq!(pg.job(b.uuid).await.unwrap(), b);
        }
        let (lite_keyed, pg_keyed) = with_channels(&lite, &pg, 1).await;
        let mut order = Vec::new();
        loop {
            let a = lite
                .claim_job(Claimant {
                    runner: lite_keyed.id,
                    key_hash: key(1),
                    channel: ch(),
                    seen: Some(None),
                })
                .await
                .unwrap();
            let b = pg
                .claim_job(Claimant {
                    runner: pg_keyed.id,
                    key_hash: key(1),
                    channel: ch(),
                    seen: Some(None),
                })
                .await
                .unwrap();
            assert_eq!(a.specs.len(), b.specs.len());
            let (a, b) = (a.job.map(|c| c.job), b.job.map(|c| c.job));
            assert_eq!(
                a.as_ref().map(|j| (&j.config, j.status)),
                b.as_ref().map(|j| (&j.config, j.status))
            );
            let Some(b) = b else { break };
            assert_eq!(b.runner, Some(pg_keyed.uuid));
            assert!(b.claimed.is_some());
            order.push(b.config["n"].as_u64().unwrap());
        }
        // "other" (n = 1) is not the runner's spec.
        assert_eq!(order, vec![3, 4, 2, 6, 0, 5]);
        // A rotated key claims nothing: the runner is revoked.
        pg.rotate_runner_key((runner("r"), key(2)), &actor)
            .await
            .unwrap();
        let revoked = pg
            .claim_job(Claimant {
                runner: pg_keyed.id,
                key_hash: key(1),
                channel: ch(),
                seen: None,
            })
            .await;
        assert!(
            matches!(revoked, Err(StoreError::RunnerRevoked)),
            "{revoked:?}"
        );
    })
    .await;
}

/// 32 runners over four pools (as four replicas) race for 200 jobs: each
/// job is claimed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_claims_exactly_once() {
    on_db("racing_claims_exactly_once", async |db| {
        let stores = db.stores(4).await;
        let actor = Actor::program();
        let pg = &stores[0];
        pg.create_spec(new_spec("Linux", None, true), &actor)
            .await
            .unwrap();
        let mut runners = Vec::new();
        for i in 0..32u8 {
            let r = pg
                .create_runner((new_runner(&format!("R{i}"), None), key(i)), &actor)
                .await
                .unwrap();
            pg.add_runner_spec((RunnerRef::from(r.uuid), spec("linux")), &actor)
                .await
                .unwrap();
            runners.push(pg.runner_by_key_hash(key(i)).await.unwrap().unwrap().id);
        }
        for n in 0..200u64 {
            pg.create_job(new_job(None, i32::try_from(n % 7).unwrap(), n), &actor)
                .await
                .unwrap();
        }
        let claimed = futures::future::join_all(runners.iter().enumerate().map(|(i, &id)| {
            let store = stores[i % 4].clone();
            let k = key(u8::try_from(i).unwrap());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                store
                    .set_channel(
                        RunnerChannel {
                            runner: id,
                            since: ch(),
                        },
                        true,
                    )
                    .await
                    .unwrap();
                while let Some(c) = store
                    .claim_job(Claimant {
                        runner: id,
                        key_hash: k,
                        channel: ch(),
                        seen: None,
                    })
                    .await
                    .unwrap()
                    .job
                {
                    mine.push(c.job.uuid);
                }
                mine
            })
        }))
        .await;
        let mut all: Vec<Uuid> = claimed.into_iter().flat_map(|r| r.unwrap()).collect();
        let total = all.len();
        all.sort();
        all.dedup();
        assert_eq!((total, all.len()), (200, 200));
        let client = connect(&db.config).await;
        let pending: i64 = one(
            &client,
            "SELECT count(*) FROM jobs WHERE status = 'pending'",
            &[],
        )
        .await;
        assert_eq!(pending, 0);
    })
    .await;
}
