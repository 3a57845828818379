//! The schema's versions: racing migrations, a newer database refused.

use super::{column, connect, on_db, secret_bytes};
use crate::store::operations::{EngineOps as _, TokenOps};
use crate::store::pg::{PgStore, schema};

/// Two replicas (here: eight tasks, each with its own connection) migrating
/// one new database at once all succeed; the schema is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_migrations_all_succeed() {
    on_db("racing_migrations_all_succeed", async |db| {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let config = db.config.clone();
                tokio::spawn(async move {
                    let mut client = connect(&config).await;
                    schema::migrate(&mut client).await
                })
            })
            .collect();
        let mut found = Vec::new();
        for task in tasks {
            found.push(task.await.unwrap().expect("every migration succeeds"));
        }
        found.sort();
        // One found an empty database; every other found it migrated.
        assert_eq!(found[0], 0, "{found:?}");
        assert!(
            found[1..].iter().all(|&v| v == schema::latest()),
            "{found:?}"
        );
        let client = connect(&db.config).await;
        let versions: Vec<i32> = column(
            &client,
            "SELECT version FROM runners_schema ORDER BY version",
        )
        .await;
        // Each version applied once.
        let all: Vec<i32> = schema::MIGRATIONS.iter().map(|&(v, _)| v).collect();
        assert_eq!(versions, all);
        // And stores opening at once (migrate + signing key) agree on one key.
        let stores =
            futures::future::join_all((0..4).map(|_| PgStore::open_config(db.config.clone())))
                .await
                .into_iter()
                .map(|s| s.expect("store opens"))
                .collect::<Vec<_>>();
        let mut secrets = Vec::new();
        for store in &stores {
            secrets.push(secret_bytes(&store.signing_secret().await.unwrap()));
        }
        assert!(secrets.windows(2).all(|w| w[0] == w[1]));
        drop(stores);
    })
    .await;
}

/// A database from a newer server is refused, untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_schema_is_refused() {
    on_db("newer_schema_is_refused", async |db| {
        let mut client = connect(&db.config).await;
        schema::migrate(&mut client).await.unwrap();
        client
            .execute(
                "INSERT INTO runners_schema (version) VALUES ($1)",
                &[&(schema::latest() + 1)],
            )
            .await
            .unwrap();
        let e = schema::migrate(&mut client).await.unwrap_err().to_string();
        assert!(e.contains("newer than this server understands"), "{e}");
    })
    .await;
}

/// The rows of version 10's tables, each as PostgreSQL's text of its
/// version-10 columns, table by table.
async fn v10_rows(client: &tokio_postgres::Client) -> Vec<Vec<String>> {
    let mut tables = Vec::new();
    for sql in [
        "SELECT (id, uuid, name, admin, created)::text FROM users ORDER BY id",
        "SELECT (id, uuid, name, name_folded, slug, architecture, os, cpu, memory, disk, network,
                 sandbox, fallback, archived, created, modified)::text FROM specs ORDER BY id",
        "SELECT (id, uuid, name, name_folded, slug, token_hash, archived, last_heartbeat, created,
                 modified, os, arch, version, channel, channel_replica)::text
           FROM runners ORDER BY id",
        "SELECT (id, runner_id, spec_id)::text FROM runner_specs ORDER BY id",
        "SELECT (id, uuid, status, spec_id, runner_id, priority, config, timeout, output, claimed,
                 started, completed, last_heartbeat, created, modified)::text FROM jobs ORDER BY id",
        "SELECT (job_id, runner_id)::text FROM job_releases ORDER BY job_id, runner_id",
        "SELECT (id, action, target_uuid, changes)::text FROM audit ORDER BY id",
    ] {
        tables.push(column(client, sql).await);
    }
    tables
}

/// A database at version 10 with a job of every status and a job taken
/// back from a runner (`job_releases`) migrates to version 11 keeping every
/// row as it was: its jobs read as before (no project, no adapter), the
/// status `processed` is now allowed (and no made-up one), the release
/// still drops the runner's late report, and the organization is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_10_database_migrates_keeping_every_row() {
    use crate::store::model::{JobReport, RunnerId};
    use crate::store::operations::{ClaimOps, JobOps, ProjectOps};
    use crate::store::rules::{Reported, RunnerReport, Timeouts};

    on_db(
        "a_version_10_database_migrates_keeping_every_row",
        async |db| {
            let mut client = connect(&db.config).await;
            assert_eq!(schema::migrate_to(&mut client, 10).await.unwrap(), 0);
            client
                .batch_execute(
                    r#"
INSERT INTO users (uuid, name, admin, created)
    VALUES ('00000000-0000-7000-8000-000000000001', 'admin', true, '2026-01-01 00:00:00Z');
INSERT INTO specs (uuid, name, name_folded, slug, architecture, os, cpu, memory, disk, network,
                   fallback, created, modified)
    VALUES ('00000000-0000-7000-8000-000000000002', 'Linux', 'linux', 'linux', 'x86_64',
            'linux', 4, 8589934592, 1099511627776, false, '2026-01-01 00:00:00.5Z',
            '2026-01-01 00:00:00Z', '2026-01-01 00:00:00Z');
INSERT INTO runners (uuid, name, name_folded, slug, token_hash, created, modified)
    VALUES ('00000000-0000-7000-8000-000000000003', 'R', 'r', 'r',
            decode(repeat('01', 32), 'hex'), '2026-01-01 00:00:00Z', '2026-01-01 00:00:00Z');
INSERT INTO runner_specs (runner_id, spec_id) VALUES (1, 1);
INSERT INTO jobs (uuid, status, spec_id, runner_id, priority, config, timeout, output, claimed,
                  started, completed, last_heartbeat, created, modified)
    SELECT ('00000000-0000-7000-8000-0000000001' || lpad(n::text, 2, '0'))::uuid, status,
           1, CASE WHEN status IN ('pending', 'canceled') THEN NULL ELSE 1 END, n,
           jsonb_build_object('n', n, 'cmd', jsonb_build_array('bench')), 3600,
           CASE WHEN status IN ('completed', 'failed') THEN '{"results": ["\u0000out"]}' END,
           CASE WHEN status <> 'pending' THEN '2026-01-02 00:00:00.123456Z'::timestamptz END,
           CASE WHEN status IN ('running', 'completed', 'failed')
                THEN '2026-01-02 00:00:01Z'::timestamptz END,
           CASE WHEN status IN ('completed', 'failed', 'canceled')
                THEN '2026-01-02 00:00:02Z'::timestamptz END,
           NULL, '2026-01-02 00:00:00Z', '2026-01-02 00:00:03Z'
      FROM unnest(ARRAY['pending', 'claimed', 'running', 'completed', 'failed', 'canceled'])
           WITH ORDINALITY AS s (status, n);
INSERT INTO job_releases (job_id, runner_id) VALUES (1, 1);
INSERT INTO audit (time, action, target_uuid, changes)
    VALUES ('2026-01-02 00:00:00Z', 'job.create', '00000000-0000-7000-8000-000000000101', '{}');
"#,
                )
                .await
                .unwrap();
            let before = v10_rows(&client).await;
            assert_eq!(before[4].len(), 6, "a job of each status");

            let store = db.store().await;
            let versions: Vec<i32> = column(
                &client,
                "SELECT version FROM runners_schema ORDER BY version",
            )
            .await;
            assert_eq!(versions, [7, 8, 9, 10, 11, 12, 13, 14, 15]);
            assert_eq!(v10_rows(&client).await, before, "every row kept as it was");
            // Version 14 counted the jobs by status; its trigger counts on.
            let jobs = async || store.gauges().await.unwrap().jobs;
            let each = |processed, completed| {
                crate::store::model::gauges::jobs_by_status([1, 1, 1, completed, processed, 1, 1])
            };
            assert_eq!(jobs().await, each(0, 1));
            client
                .execute("UPDATE jobs SET status = 'processed' WHERE id = 4", &[])
                .await
                .unwrap();
            assert_eq!(jobs().await, each(1, 0), "the trigger moved one job");
            client
                .execute("UPDATE jobs SET status = 'completed' WHERE id = 4", &[])
                .await
                .unwrap();
            let added: Vec<i64> = column(
                &client,
                "SELECT count(*) FROM jobs WHERE project_id IS NOT NULL OR adapter IS NOT NULL",
            )
            .await;
            assert_eq!(added, [0]);
            for n in 1..=6u128 {
                let job = store
                    .job(uuid::Uuid::from_u128(
                        0x0000_0000_0000_7000_8000_0000_0000_0100 + n,
                    ))
                    .await
                    .unwrap();
                assert_eq!((job.project, job.adapter), (None, None));
                assert_eq!(job.priority, i32::try_from(n).unwrap());
            }
            // The new status is allowed, a made-up one is not.
            client
                .execute("UPDATE jobs SET status = 'processed' WHERE id = 4", &[])
                .await
                .expect("processed is a status");
            let bogus = client
                .execute("UPDATE jobs SET status = 'bogus' WHERE id = 4", &[])
                .await
                .unwrap_err();
            assert_eq!(
                bogus.as_db_error().and_then(|e| e.constraint()),
                Some("jobs_status_check")
            );
            // Runner 1's late report on the job taken back from it: dropped.
            let late = RunnerReport {
                runner: RunnerId(1),
                job: uuid::Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0101),
                report: JobReport::Running,
            };
            let timeouts = Timeouts {
                heartbeat: std::time::Duration::from_secs(90),
                grace: std::time::Duration::from_secs(60),
            };
            assert_eq!(
                store.report_job(late, timeouts).await.unwrap(),
                Reported::Dropped
            );
            store.organization().await.unwrap();
            drop(store);
        },
    )
    .await;
}
