//! A job's life on both engines: reports, cancels, release, fail, the
//! timeout rules, the lists with every filter, the audit trail.

use super::{
    audit_actions, ch, create_alike, key, new_job, on_engines, runner, unwrap_both, with_channels,
};
use crate::store::Store;
use crate::store::model::{Actor, JobReport, JobRow, KeyedRunner, RunnerId};
use crate::store::operations::{ClaimOps, JobOps};
use crate::store::pg::PgStore;
use crate::store::rules::Claimant;
use crate::store::rules::{Claimed, Expiry, RunnerReport, Timeouts};
use crate::validate::{Direction, JobListQuery, Ref};

/// The next job each engine gives runner `k` (`l` on SQLite, `p` on
/// PostgreSQL), both claimed.
async fn claim_both(
    lite: &Store,
    pg: &PgStore,
    (l, p): (&KeyedRunner, &KeyedRunner),
    k: u8,
) -> (Claimed, Claimed) {
    let (a, b) = (
        lite.claim_job(Claimant {
            runner: l.id,
            key_hash: key(k),
            channel: ch(),
            seen: None,
        })
        .await
        .unwrap(),
        pg.claim_job(Claimant {
            runner: p.id,
            key_hash: key(k),
            channel: ch(),
            seen: None,
        })
        .await
        .unwrap(),
    );
    (a.job.unwrap(), b.job.unwrap())
}

/// A job's life on both engines, step by step: reports (running,
/// heartbeat, completed twice, failed after completed, canceled), cancels
/// (pending, claimed, ended), release, fail, the timeout rules, the lists
/// with every filter, the active jobs and the audit trail: the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_lifecycle_matches_sqlite() {
    on_engines("job_lifecycle_matches_sqlite", async |db, pg, lite| {
        let actor = Actor::program();
        create_alike(
            &lite,
            &pg,
            &[("Linux", true), ("Other", false)],
            &[("r", "r", 1, &["linux"]), ("s", "s", 2, &["linux"])],
        )
        .await;
        let mut lite_jobs = Vec::new();
        let mut pg_jobs = Vec::new();
        for n in 0..8u64 {
            let s = if n == 7 { Some("other") } else { None };
            let (a, b) = unwrap_both(both!(lite, pg, create_job(new_job(s, 0, n), &actor)));
            lite_jobs.push(a.uuid);
            pg_jobs.push(b.uuid);
        }
        let (lr, pr) = with_channels(&lite, &pg, 1).await;
        let (ls, ps) = with_channels(&lite, &pg, 2).await;
        // r claims jobs 0, 1, 2; s claims 3.
        let mut lite_claimed = Vec::new();
        let mut pg_claimed = Vec::new();
        for (l, p, k) in [(&lr, &pr, 1), (&lr, &pr, 1), (&lr, &pr, 1), (&ls, &ps, 2)] {
            let (a, b) = claim_both(&lite, &pg, (l, p), k).await;
            lite_claimed.push(a);
            pg_claimed.push(b);
        }
        let timeouts = Timeouts {
            heartbeat: std::time::Duration::from_secs(90),
            grace: std::time::Duration::from_secs(60),
        };
        let output = serde_json::json!({"results": ["{\"bench\": {}}"]});
        let failed = serde_json::json!({"results": [], "error": "boom"});
        let reports = [
            (0, JobReport::Running),
            (0, JobReport::Heartbeat),
            (0, JobReport::Completed(output.clone())),
            (0, JobReport::Completed(output.clone())),
            (0, JobReport::Failed(failed.clone())),
            (1, JobReport::Heartbeat),
            (1, JobReport::Failed(failed.clone())),
            (1, JobReport::Completed(output.clone())),
            (2, JobReport::Canceled),
            (2, JobReport::Running),
            (3, JobReport::Running),
        ];
        for (i, report) in reports {
            let a = lite
                .report_job(said(lr.id, lite_claimed[i].job.uuid, &report), timeouts)
                .await;
            let b = pg
                .report_job(said(pr.id, pg_claimed[i].job.uuid, &report), timeouts)
                .await;
            assert_eq!(
                a.as_ref().map_err(|e| e
                    .to_string()
                    .replace(&lite_claimed[i].job.uuid.to_string(), "J")),
                b.as_ref().map_err(|e| e
                    .to_string()
                    .replace(&pg_claimed[i].job.uuid.to_string(), "J")),
                "job {i}: {report:?}"
            );
        }
        // Cancels: pending (4), claimed by s (3), ended (0).
        for i in [4usize, 3, 0] {
            let a = lite
                .cancel_job(lite_jobs[i], &actor)
                .await
                .map(|j| (j.status, j.output));
            let b = pg
                .cancel_job(pg_jobs[i], &actor)
                .await
                .map(|j| (j.status, j.output));
            assert_eq!(
                a.map_err(|e| e.to_string().replace(&lite_jobs[i].to_string(), "J")),
                b.map_err(|e| e.to_string().replace(&pg_jobs[i].to_string(), "J")),
                "cancel {i}"
            );
        }
        // Job 5: claimed by r then released; claimed again and failed; job 6
        // claimed and expired by a zero heartbeat timeout.
        let (l5, p5) = claim_both(&lite, &pg, (&lr, &pr), 1).await;
        lite.release_job(l5.id, lr.id).await.unwrap();
        pg.release_job(p5.id, pr.id).await.unwrap();
        let (l5, p5) = claim_both(&lite, &pg, (&lr, &pr), 1).await;
        assert_eq!(l5.job.config, p5.job.config);
        assert_eq!(
            lite.fail_job(l5.id, "runner revoked").await.unwrap(),
            pg.fail_job(p5.id, "runner revoked").await.unwrap()
        );
        let (l6, p6) = claim_both(&lite, &pg, (&lr, &pr), 1).await;
        let soon = Timeouts {
            heartbeat: std::time::Duration::ZERO,
            grace: std::time::Duration::ZERO,
        };
        assert_eq!(
            lite.expire_job(l6.id, timeouts)
                .await
                .map(|e| matches!(e, Expiry::NotBefore(_)))
                .unwrap(),
            pg.expire_job(p6.id, timeouts)
                .await
                .map(|e| matches!(e, Expiry::NotBefore(_)))
                .unwrap(),
        );
        assert_eq!(
            lite.expire_job(l6.id, soon).await.unwrap(),
            pg.expire_job(p6.id, soon).await.unwrap()
        );
        assert_eq!(
            lite.active_jobs().await.unwrap().len(),
            pg.active_jobs().await.unwrap().len()
        );

        // Every list: statuses, runner, spec, direction, pages.
        let view = |jobs: &[JobRow]| {
            jobs.iter()
                .map(|j| {
                    (
                        j.config["n"].as_u64(),
                        j.status,
                        j.output.clone(),
                        j.priority,
                    )
                })
                .collect::<Vec<_>>()
        };
        for statuses in [
            vec![],
            vec!["pending".to_owned()],
            vec!["completed".into(), "canceled".into(), "failed".into()],
        ] {
            for (runner_filter, spec_filter) in [
                (None, None),
                (Some("r"), None),
                (None, Some("other")),
                (Some("s"), Some("linux")),
            ] {
                for direction in [Direction::Asc, Direction::Desc] {
                    for (per_page, page) in [(8, 1), (3, 2), (3, 9)] {
                        let q = JobListQuery {
                            project: None,
                            statuses: statuses.clone(),
                            runner: runner_filter.map(|s: &str| Ref::Slug(s.into())),
                            spec: spec_filter.map(|s: &str| Ref::Slug(s.into())),
                            direction,
                            per_page,
                            page,
                        };
                        let ((a, at), (b, bt)) =
                            unwrap_both(both!(lite, pg, list_jobs(None, q.clone())));
                        assert_eq!((at, view(&a)), (bt, view(&b)), "{q:?}");
                    }
                }
            }
        }
        let all = JobListQuery::everything();
        let (a, b) = unwrap_both(both!(lite, pg, list_jobs(Some(runner("r")), all.clone())));
        assert_eq!((a.1, view(&a.0)), (b.1, view(&b.0)));

        let (lite_actions, pg_actions) = audit_actions(&lite, db).await;
        assert_eq!(pg_actions, lite_actions);
    })
    .await;
}

/// What runner `runner` says of job `job`.
fn said(runner: RunnerId, job: uuid::Uuid, report: &JobReport) -> RunnerReport {
    let report = report.clone();
    RunnerReport {
        runner,
        job,
        report,
    }
}
