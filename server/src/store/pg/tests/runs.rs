//! Runs and their reports against SQLite's: with results; with a job
//! claimed and reported completed, parsed or not; idempotency; the lists
//! of reports and of a project's jobs; the audit trail. Projects and keys
//! are `projects.rs`.
//!
//! Rows are compared whole, each engine's UUIDs and times replaced by
//! placeholders ([`norm`]): the same calls make the same rows, referring to
//! each other alike.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{
    audit_actions, ch, create_alike, key, new_job, on_engines, unwrap_both, with_channels,
};
use crate::bmf::{Adapter, BenchmarkResult, Metric};
use crate::store::model::{
    Actor, JobReport, NewProject, NewRun, ProjectRef, ReportQuery, RunProject, Visibility,
};
use crate::store::operations::{ClaimOps, JobOps, ProjectOps, ReportOps};
use crate::store::rules::{Claimant, Reported, RunnerReport, Timeouts};
use crate::store::{Store, StoreError};
use crate::validate::{JobListQuery, Ref};

/// `value`'s Debug text with each UUID replaced by `U` and the order of its
/// first appearance, and each time by `T`: two engines' rows made by the
/// same calls give the same text.
pub(super) fn norm(value: &impl std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    let b = text.as_bytes();
    let hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    let digits = |s: &[u8], pattern: &[u8]| {
        s.len() >= pattern.len()
            && s.iter().zip(pattern).all(|(&c, &p)| {
                if p == b'd' {
                    c.is_ascii_digit()
                } else {
                    c == p
                }
            })
    };
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.len() >= 36
            && rest[..36].iter().enumerate().all(|(j, &c)| {
                if [8, 13, 18, 23].contains(&j) {
                    c == b'-'
                } else {
                    hex(c)
                }
            })
        {
            let n = seen
                .iter()
                .position(|u| *u == &rest[..36])
                .unwrap_or_else(|| {
                    seen.push(&rest[..36]);
                    seen.len() - 1
                });
            out.extend(format!("U{n}").bytes());
            i += 36;
        } else if digits(rest, b"dddd-dd-ddTdd:dd:dd") {
            let mut j = 19;
            if rest.get(j) == Some(&b'.') {
                j += 1;
                while rest.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
            }
            j += usize::from(rest.get(j) == Some(&b'Z'));
            out.push(b'T');
            i += j;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Both engines' answers, normalised ([`norm`]), errors included.
pub(super) fn same<A: std::fmt::Debug, B: std::fmt::Debug>(
    (a, b): (Result<A, StoreError>, Result<B, StoreError>),
    what: &str,
) {
    let text = |r: Result<String, StoreError>| r.map_err(|e| norm(&e.to_string()));
    assert_eq!(
        text(a.map(|a| norm(&a))),
        text(b.map(|b| norm(&b))),
        "{what}"
    );
}

pub(super) fn project(slug: &str) -> ProjectRef {
    ProjectRef::from(Ref::Slug(slug.to_owned()))
}

pub(super) fn new_project(name: &str, slug: Option<&str>) -> NewProject {
    NewProject {
        name: name.to_owned().try_into().unwrap(),
        slug: slug.map(|s| s.to_owned().try_into().unwrap()),
        url: Some(format!("https://example.com/{name}")),
        visibility: Visibility::Public,
    }
}

/// When the tests' runs started.
pub(super) fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 123_456_789).unwrap()
}

/// Results of one benchmark per `(benchmark, measure, value)`.
pub(super) fn results(of: &[(&str, &str, f64)]) -> Vec<BenchmarkResult> {
    of.iter()
        .map(|&(benchmark, measure, value)| BenchmarkResult {
            benchmark: benchmark.to_owned(),
            measures: vec![(
                measure.to_owned(),
                Metric {
                    value,
                    lower_value: Some(value - 1.0),
                    upper_value: None,
                },
            )],
        })
        .collect()
}

/// A run to the project of `slug` (made if new), `minutes` after
/// [`t0`], with a job (`Some(n)`: [`new_job`]'s `n`) or the results given.
pub(super) fn new_run(
    slug: &str,
    branch: &str,
    minutes: i64,
    job: Option<u64>,
    idempotency_key: Option<Uuid>,
    results: Vec<Vec<BenchmarkResult>>,
) -> NewRun {
    NewRun {
        project: RunProject::Create {
            name: format!("Project {slug}").try_into().unwrap(),
            slug: Some(slug.to_owned().try_into().unwrap()),
        },
        user: None,
        branch: branch.to_owned(),
        testbed: "ci-box".to_owned(),
        adapter: Adapter::Json,
        start_time: t0() + Duration::minutes(minutes),
        end_time: t0() + Duration::minutes(minutes + 1),
        idempotency_key,
        job: job.map(|n| new_job(None, 0, n)),
        results,
    }
}

/// What runner `k` (`l` on SQLite, `p` on PostgreSQL) says of the job it
/// was given `i`-th: both answers.
async fn say(
    (lite, pg): (&Store, &super::PgStore),
    (l, p): (
        &crate::store::model::KeyedRunner,
        &crate::store::model::KeyedRunner,
    ),
    (lj, pj): (Uuid, Uuid),
    report: JobReport,
) -> (Result<Reported, StoreError>, Result<Reported, StoreError>) {
    let timeouts = Timeouts {
        heartbeat: std::time::Duration::from_secs(90),
        grace: std::time::Duration::from_secs(60),
    };
    let said = |runner, job| RunnerReport {
        runner,
        job,
        report: report.clone(),
    };
    (
        lite.report_job(said(l.id, lj), timeouts).await,
        pg.report_job(said(p.id, pj), timeouts).await,
    )
}

/// Runs alike: with results; with jobs claimed and completed, their
/// output parsed (processed, results in the report) or not (failed, with
/// why); an idempotency key used twice; the lists of reports and of a
/// project's jobs; a project deleted under its jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_match_sqlite() {
    on_engines("runs_match_sqlite", async |db, pg, lite| {
        let actor = Actor::program();
        create_alike(&lite, &pg, &[("Linux", true)], &[("r", "r", 1, &["linux"])]).await;
        same(both!(lite, pg, create_project(new_project("Alpha", Some("alpha")), &actor)), "alpha");
        let two = vec![
            results(&[("bench::a", "latency", 1.5), ("bench::b", "throughput", 10.0)]),
            results(&[("bench::a", "latency", 1.25)]),
        ];
        let k1 = Uuid::from_u128(1);
        let runs = [
            new_run("alpha", "main", 0, None, None, two.clone()),
            new_run("beta", "feature/x", 1, Some(0), Some(k1), vec![]),
            new_run("beta", "feature/x", 2, Some(9), Some(k1), vec![]),
            new_run("alpha", "main", 3, Some(1), None, vec![]),
            new_run("alpha", "release", 4, Some(2), Some(Uuid::from_u128(2)), vec![]),
            new_run("alpha", "main", 5, None, Some(Uuid::from_u128(3)), vec![vec![]]),
        ];
        let mut reports = Vec::new();
        for (i, run) in runs.into_iter().enumerate() {
            let (a, b) = unwrap_both(both!(lite, pg, create_run(run.clone(), &actor)));
            assert_eq!(norm(&a), norm(&b), "run {i}");
            assert_eq!((a.start_time, a.end_time), (b.start_time, b.end_time));
            reports.push((a, b));
        }
        // The key used again: the first run's report, and no second job.
        assert_eq!(reports[2].0.uuid, reports[1].0.uuid);
        assert_eq!(reports[2].1.uuid, reports[1].1.uuid);
        // A run to a project that is not there (by UUID): not found.
        let missing = NewRun { project: RunProject::Existing(Uuid::from_u128(7)), ..new_run("x", "m", 0, None, None, vec![]) };
        same(both!(lite, pg, create_run(missing.clone(), &actor)), "missing project");
        // Its jobs, claimed in order; reported completed.
        let (lr, pr) = with_channels(&lite, &pg, 1).await;
        let mut jobs = Vec::new();
        for _ in 0..3 {
            let claim = |id| Claimant { runner: id, key_hash: key(1), channel: ch(), seen: None };
            let a = lite.claim_job(claim(lr.id)).await.unwrap().job.unwrap().job;
            let b = pg.claim_job(claim(pr.id)).await.unwrap().job.unwrap().job;
            assert_eq!(norm(&a), norm(&b));
            jobs.push((a.uuid, b.uuid));
        }
        let stdout = |s: &str| JobReport::Completed(serde_json::json!({"results": [{"stdout": s}]}));
        let bmf = r#"{"bench::a": {"latency": {"value": 2.5, "lower_value": 2.0}}, "new": {"rss": {"value": 7}}}"#;
        let both = (&lite, &pg);
        let runners = (&lr, &pr);
        for (i, report) in [
            (0, JobReport::Running),
            (0, stdout(bmf)),
            (0, stdout(bmf)),
            (1, stdout("not BMF")),
            (2, JobReport::Completed(serde_json::json!({"results": []}))),
            (2, stdout(bmf)),
        ] {
            let (a, b) = say(both, runners, jobs[i], report.clone()).await;
            assert_eq!(a.map_err(|e| e.to_string()), b.map_err(|e| e.to_string()), "{i} {report:?}");
        }
        for (i, (lj, pj)) in jobs.iter().enumerate() {
            same((lite.job(*lj).await, pg.job(*pj).await), &format!("job {i}"));
        }
        let processed = pg.job(jobs[0].1).await.unwrap();
        assert_eq!(processed.status, crate::store::model::JobStatus::Processed);
        let failed = pg.job(jobs[1].1).await.unwrap();
        assert_eq!(failed.status, crate::store::model::JobStatus::Failed);
        assert!(failed.output.unwrap()["error"].is_string());
        for (i, (a, b)) in reports.iter().enumerate() {
            let (a, b) = (lite.report(project(&a.project.slug), a.uuid).await, pg.report(project(&b.project.slug), b.uuid).await);
            if i == 1 {
                assert!(b.as_ref().unwrap().results.as_ref().is_some_and(|r| r.len() == 1));
            }
            same((a, b), &format!("report {i}"));
        }
        same((lite.report(project("beta"), reports[0].0.uuid).await, pg.report(project("beta"), reports[0].1.uuid).await), "another project's");
        same(both!(lite, pg, report(project("nope"), Uuid::nil())), "no project");
        let rq = |branch: Option<&str>, ascending, per_page, page| ReportQuery {
            branch: branch.map(str::to_owned),
            testbed: None,
            start_time: None,
            end_time: None,
            ascending,
            expand: true,
            per_page,
            page,
        };
        for slug in ["alpha", "beta", "nope"] {
            for q in [
                rq(None, false, 255, 1),
                rq(None, true, 2, 2),
                rq(None, true, 2, 9),
                rq(Some("main"), false, 255, 1),
                rq(Some("feature-x"), false, 255, 1),
                ReportQuery { testbed: Some("ci-box".into()), start_time: Some(t0() + Duration::minutes(3)), ..rq(None, true, 255, 1) },
                ReportQuery { end_time: Some(t0() + Duration::minutes(4)), ..rq(None, true, 255, 1) },
            ] {
                same(both!(lite, pg, list_reports(project(slug), q.clone())), &format!("{slug} {q:?}"));
            }
        }
        let jq = |slug: &str| JobListQuery {
            project: Some(Ref::Slug(slug.into())),
            ..JobListQuery::everything()
        };
        for slug in ["alpha", "beta", "nope"] {
            same(both!(lite, pg, list_jobs(None, jq(slug))), slug);
        }
        // A project deleted: its reports go, its jobs stay (without it).
        same(both!(lite, pg, delete_project(project("alpha"), &actor)), "delete");
        for (i, (lj, pj)) in jobs.iter().enumerate() {
            same((lite.job(*lj).await, pg.job(*pj).await), &format!("job {i} after"));
        }
        same(both!(lite, pg, list_jobs(None, jq("beta"))), "beta after");
        same(both!(lite, pg, list_reports(project("alpha"), rq(None, true, 255, 1))), "gone");
        let (lite_actions, pg_actions) = audit_actions(&lite, db).await;
        assert_eq!(pg_actions, lite_actions);
    })
    .await;
}
