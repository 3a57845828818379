//! The submitter side under races (runs to one new slug, one idempotency
//! key, the same new names in other orders, over several replicas), and
//! copied from a SQLite file by `migrate`: the same answers, UUIDs and
//! times included.

use chrono::Duration;
use uuid::Uuid;

use super::runs::{new_project, new_run, project, results, t0};
use super::{ch, connect, key, new_job, new_runner, new_spec, on_db, one};
use crate::store::model::{
    Actor, JobReport, JobStatus, KeyOwner, KeyQuery, KeyRef, NewApiToken, NewKey, ReportQuery,
    RunnerChannel,
};
use crate::store::operations::{ReportOps, SpecOps};
use crate::store::rules::{Claimant, RunnerReport, Timeouts};
use crate::store::{Store, StoreError};
use crate::validate::{Direction, JobListQuery, ListQuery, Ref, Sort};

/// Sixteen runs at once over four replicas: to one new slug, with results
/// naming the same new benchmarks and measures in other orders (one
/// project, each name made once, no deadlock, no error); then sixteen
/// with one idempotency key and a job each (one report, one job).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_runs_make_one_project_one_name_each_and_one_report_per_key() {
    on_db("racing_runs_make_one_project", async |db| {
        let stores = db.stores(4).await;
        stores[0]
            .create_spec(new_spec("Linux", None, true), &Actor::program())
            .await
            .unwrap();
        let race = |key: Option<Uuid>| {
            let tasks: Vec<_> = (0..16usize)
                .map(|i| {
                    let store = stores[i % 4].clone();
                    tokio::spawn(async move {
                        let mut named =
                            results(&[("a", "m", 1.0), ("b", "m", 2.0), ("c", "n", 3.0)]);
                        named.rotate_left(i % 3);
                        if i % 2 == 1 {
                            named.reverse();
                        }
                        let branch = format!("branch-{}", i % 3);
                        let minutes = i64::try_from(i).unwrap();
                        let run = match key {
                            None => new_run("racy", &branch, minutes, None, None, vec![named]),
                            Some(_) => new_run("racy", &branch, minutes, Some(0), key, vec![]),
                        };
                        store.create_run(run, &Actor::program()).await
                    })
                })
                .collect();
            futures::future::join_all(tasks)
        };
        let made: Vec<_> = race(None)
            .await
            .into_iter()
            .map(|t| t.unwrap().expect("every run succeeds"))
            .collect();
        assert!(made.windows(2).all(|w| w[0].project == w[1].project));
        let client = connect(&db.config).await;
        let count = async |sql: &str| one::<i64>(&client, sql, &[]).await;
        assert_eq!(count("SELECT count(*) FROM projects").await, 1);
        // Three branches, a testbed, three benchmarks, two measures.
        assert_eq!(count("SELECT count(*) FROM project_names").await, 9);
        assert_eq!(count("SELECT count(*) FROM reports").await, 16);
        let keyed: Vec<_> = race(Some(Uuid::from_u128(42)))
            .await
            .into_iter()
            .map(|t| t.unwrap().expect("every run succeeds"))
            .collect();
        assert!(keyed.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(count("SELECT count(*) FROM reports").await, 17);
        assert_eq!(count("SELECT count(*) FROM jobs").await, 1);
        assert_eq!(
            count("SELECT count(*) FROM audit WHERE action = 'run.create'").await,
            17
        );
    })
    .await;
}

/// A SQLite registry with the submitter side's rows (projects, keys of
/// both kinds, runs with results, a run's job processed, a project
/// deleted under its job) copied by `migrate` into a database where a
/// server had already started (its organization and signing key
/// replaced): PostgreSQL gives SQLite's answers exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_the_submitter_side() {
    on_db("migrate_copies_the_submitter_side", async |db| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runners.db");
        let lite = Store::open(&path).unwrap();
        let actor = Actor::program();
        lite.create_spec(new_spec("Linux", None, true), &actor)
            .await
            .unwrap();
        lite.create_runner((new_runner("r", Some("r")), key(1)), &actor)
            .await
            .unwrap();
        lite.add_runner_spec((super::runner("r"), super::spec("linux")), &actor)
            .await
            .unwrap();
        lite.create_job(new_job(None, 0, 99), &actor).await.unwrap();
        for (name, slug) in [("Alpha", "alpha"), ("Gone", "gone")] {
            lite.create_project(new_project(name, Some(slug)), &actor)
                .await
                .unwrap();
        }
        let token = NewApiToken {
            user_name: "alice".into(),
            admin: false,
            issued: crate::store::now(),
            expires: crate::store::now() + Duration::days(1),
            sign: Box::new(|_: &[u8], _: Uuid, _: Uuid| String::new()),
        };
        lite.issue_api_token(token, &actor).await.unwrap();
        let alice = lite.user(Ref::Slug("alice".into())).await.unwrap();
        let alpha = lite.item(&project("alpha")).await.unwrap();
        let owners = [KeyOwner::Project(alpha.uuid), KeyOwner::User(alice.uuid)];
        for (i, owner) in owners.into_iter().enumerate() {
            let new = NewKey {
                owner,
                name: format!("key {i}").try_into().unwrap(),
                hash: key(10 + u8::try_from(i).unwrap()),
                created: t0(),
                expires: t0() + Duration::days(30),
            };
            let made = lite.create_key(new, &actor).await.unwrap();
            if i == 1 {
                lite.revoke_key(
                    KeyRef {
                        owner,
                        uuid: made.uuid,
                    },
                    &actor,
                )
                .await
                .unwrap();
            }
        }
        let mut run = new_run("alpha", "main", 0, None, Some(Uuid::from_u128(5)), vec![]);
        run.results = vec![results(&[("bench", "latency", 2.0)])];
        run.user = Some(alice.uuid);
        lite.create_run(run, &actor).await.unwrap();
        for slug in ["alpha", "gone"] {
            lite.create_run(new_run(slug, "main", 1, Some(1), None, vec![]), &actor)
                .await
                .unwrap();
        }
        // The first pending job (the plain one), then the two runs' jobs:
        // alpha's processed, gone's claimed (and its project deleted).
        let keyed = lite.runner_by_key_hash(key(1)).await.unwrap().unwrap();
        let channel = RunnerChannel {
            runner: keyed.id,
            since: ch(),
        };
        lite.set_channel(channel, true).await.unwrap();
        let mut claimed = Vec::new();
        for _ in 0..3 {
            let claim = Claimant {
                runner: keyed.id,
                key_hash: key(1),
                channel: ch(),
                seen: None,
            };
            claimed.push(lite.claim_job(claim).await.unwrap().job.unwrap().job.uuid);
        }
        let bmf = r#"{"bench": {"latency": {"value": 3.5}}}"#;
        let said = RunnerReport {
            runner: keyed.id,
            job: claimed[1],
            report: JobReport::Completed(serde_json::json!({"results": [{"stdout": bmf}]})),
        };
        let timeouts = Timeouts {
            heartbeat: std::time::Duration::from_secs(90),
            grace: std::time::Duration::from_secs(60),
        };
        lite.report_job(said, timeouts).await.unwrap();
        assert_eq!(
            lite.job(claimed[1]).await.unwrap().status,
            JobStatus::Processed
        );
        lite.delete_project(project("gone"), &actor).await.unwrap();
        lite.close_writer().await;

        // A server started on the target first: its organization and key
        // are replaced by the file's.
        drop(db.store().await);
        let mut url = url::Url::parse(&std::env::var("RUNNERS_TEST_PG").unwrap()).unwrap();
        url.set_path(&format!("/{}", db.name));
        let copied = crate::store::migrate::migrate(&path, url.as_str())
            .await
            .unwrap();
        let rows = |table: &str| copied.tables.iter().find(|(t, _)| *t == table).unwrap().1;
        let expected = [
            ("organization", 1),
            ("projects", 1),
            ("api_keys", 2),
            ("reports", 2),
            ("registry_keys", 1),
        ];
        for (table, n) in expected {
            assert_eq!(rows(table), n, "{table}");
        }
        // branch main and testbed of two runs, a benchmark and a measure.
        assert_eq!(rows("project_names"), 4);
        assert_eq!(rows("jobs"), 3);
        let pg = Store::open_db(std::path::Path::new(url.as_str()), 64)
            .await
            .unwrap();
        let lite = Store::open(&path).unwrap();

        macro_rules! same {
            ($($call:tt)*) => {
                assert_eq!(
                    format!("{:?}", lite.$($call)*.await),
                    format!("{:?}", pg.$($call)*.await),
                    "{}",
                    stringify!($($call)*)
                )
            };
        }
        same!(organization());
        // The file's registry key, not the one the started server made.
        same!(registry_keys());
        let list = ListQuery {
            sort: Sort::Name,
            direction: Direction::Asc,
            per_page: 255,
            page: 1,
            name: None,
            search: None,
            archived: true,
            status: None,
        };
        same!(list_projects(list.clone()));
        let keys = KeyQuery {
            name: None,
            search: None,
            revoked: true,
            descending: false,
            per_page: 255,
            page: 1,
        };
        for owner in owners {
            same!(list_keys(owner, keys.clone()));
        }
        for k in [10, 11, 12] {
            same!(key_holder(key(k)));
        }
        let reports = ReportQuery {
            branch: None,
            testbed: None,
            start_time: None,
            end_time: None,
            ascending: true,
            expand: true,
            per_page: 255,
            page: 1,
        };
        same!(list_reports(project("alpha"), reports.clone()));
        let (found, _) = pg.list_reports(project("alpha"), reports).await.unwrap();
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|r| r.results.is_some()));
        let jobs = JobListQuery::everything();
        same!(list_jobs(None, jobs.clone()));
        same!(list_jobs(
            None,
            JobListQuery {
                project: Some(Ref::Slug("alpha".into())),
                ..jobs.clone()
            }
        ));
        for job in &claimed {
            same!(job(*job));
        }
        same!(audit(None, None));
        let secret = |s: crate::store::SigningSecret| (s.generation, s.expose().to_vec());
        assert_eq!(
            secret(lite.signing_secret().await.unwrap()),
            secret(pg.signing_secret().await.unwrap())
        );
        // New rows take new ids after the copied ones.
        let more = new_run("alpha", "main", 9, Some(2), None, vec![]);
        let report = pg.create_run(more, &actor).await.unwrap();
        assert!(report.job.is_some());
        let lost: Result<_, StoreError> = pg.report(project("gone"), Uuid::nil()).await;
        assert!(matches!(lost, Err(StoreError::NotFound { .. })), "{lost:?}");
        pg.close_writer().await;
    })
    .await;
}
