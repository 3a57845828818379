//! Version 11 rebuilds `jobs` (its status CHECK gains `processed`, SQLite
//! cannot alter one) and `job_releases` with it: a version-10 file keeps
//! every row of both, and every index, key and check of the new table.

use rusqlite::types::Value;
use rusqlite::{Connection, params};
use uuid::Uuid;

use crate::store::Store;
use crate::store::model::{JobReport, RunnerKeyHash};
use crate::store::rules::{Reported, RunnerReport, Timeouts};
use crate::store::sqlite::schema;

/// Every row of version 10's tables, each as its version-10 columns'
/// values, table by table.
fn v10_rows(conn: &Connection) -> Vec<Vec<Vec<Value>>> {
    [
        "SELECT id, uuid, name, admin, created FROM users",
        "SELECT * FROM specs",
        "SELECT id, uuid, name, name_folded, slug, token_hash, archived, last_heartbeat, created,
                modified, os, arch, version, channel, channel_replica FROM runners",
        "SELECT id, runner_id, spec_id FROM runner_specs",
        "SELECT id, uuid, status, spec_id, runner_id, priority, config, timeout, output, claimed,
                started, completed, last_heartbeat, created, modified FROM jobs",
        "SELECT job_id, runner_id FROM job_releases",
        "SELECT * FROM audit",
    ]
    .iter()
    .map(|sql| {
        let mut stmt = conn.prepare(&format!("{sql} ORDER BY 1, 2")).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    })
    .collect()
}

fn job_uuid(n: u128) -> Uuid {
    Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0100 + n)
}

#[tokio::test]
async fn a_version_10_database_keeps_its_jobs_and_releases_through_the_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v10.db");
    let conn = schema::at_version(&path, 10);
    let t = "2026-01-02T00:00:00.123456Z";
    conn.execute_batch(&format!(
        "INSERT INTO users (uuid, name, admin, created)
             VALUES ('{u}', 'admin', 1, '{t}');
         INSERT INTO specs (uuid, name, name_folded, slug, architecture, os, cpu, memory, disk,
                            network, fallback, created, modified)
             VALUES ('{s}', 'Linux', 'linux', 'linux', 'x86_64', 'linux', 4, 8589934592,
                     1099511627776, 0, '{t}', '{t}', '{t}');
         INSERT INTO runners (uuid, name, name_folded, slug, token_hash, created, modified)
             VALUES ('{r}', 'R', 'r', 'r', zeroblob(32), '{t}', '{t}');
         INSERT INTO runner_specs (runner_id, spec_id) VALUES (1, 1);",
        u = Uuid::from_u128(1),
        s = Uuid::from_u128(2),
        r = Uuid::from_u128(3),
    ))
    .unwrap();
    let statuses = [
        "pending",
        "claimed",
        "running",
        "completed",
        "failed",
        "canceled",
    ];
    for (n, status) in (1u128..).zip(statuses) {
        let held = !matches!(status, "pending" | "canceled");
        let ended = matches!(status, "completed" | "failed" | "canceled");
        conn.execute(
            "INSERT INTO jobs (uuid, status, spec_id, runner_id, priority, config, timeout,
                               output, claimed, completed, created, modified)
             VALUES (?, ?, 1, ?, ?, ?, 3600, ?, ?, ?, ?, ?)",
            params![
                job_uuid(n).to_string(),
                status,
                held.then_some(1),
                i64::try_from(n).unwrap(),
                format!(r#"{{"n": {n}}}"#),
                ended.then_some(r#"{"results": ["out"]}"#),
                held.then_some(t),
                ended.then_some(t),
                t,
                t
            ],
        )
        .unwrap();
    }
    conn.execute_batch(&format!(
        "INSERT INTO job_releases (job_id, runner_id) VALUES (1, 1);
         INSERT INTO audit (time, action, target_uuid, changes)
             VALUES ('{t}', 'job.create', '{}', '{{}}');",
        job_uuid(1)
    ))
    .unwrap();
    let before = v10_rows(&conn);
    assert_eq!(before[4].len(), 6, "a job of each status");
    drop(conn);

    let store = Store::open(&path).unwrap();
    let conn = schema::at_version(&path, schema::MIGRATIONS.len());
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        version,
        schema::MIGRATIONS.len() as i64,
        "at the latest version"
    );
    let keys = store.registry_keys().await.unwrap();
    assert_eq!(keys.len(), 1, "version 12: a registry key made at open");
    assert_eq!(v10_rows(&conn), before, "every row kept as it was");
    // Version 14 counted the jobs by status, and its triggers keep counting.
    let jobs = async || store.gauges().await.unwrap().jobs;
    let each = |processed, completed| {
        crate::store::model::gauges::jobs_by_status([1, 1, 1, completed, processed, 1, 1])
    };
    assert_eq!(jobs().await, each(0, 1));
    let added: i64 = conn
        .query_row(
            "SELECT count(*) FROM jobs WHERE project_id IS NOT NULL OR adapter IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(added, 0);
    // The rebuilt tables' keys hold, and their indexes are all there.
    let broken: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(broken, 0);
    let indexes: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'jobs'
             AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        [
            "jobs_active",
            "jobs_busy",
            "jobs_pending",
            "jobs_project",
            "jobs_runner",
            "jobs_spec"
        ]
    );
    let temp: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE '%_v1%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(temp, 0, "no table of the rebuild is left");
    // The new status is allowed, a made-up one is not; a job's runner must
    // still exist.
    conn.execute("UPDATE jobs SET status = 'processed' WHERE id = 4", [])
        .expect("processed is a status");
    assert_eq!(jobs().await, each(1, 0), "the trigger moved one job");
    assert!(
        conn.execute("UPDATE jobs SET status = 'bogus' WHERE id = 4", [])
            .is_err()
    );
    assert!(
        conn.execute("UPDATE jobs SET runner_id = 99 WHERE id = 2", [])
            .is_err()
    );
    assert!(
        conn.execute(
            "INSERT INTO job_releases (job_id, runner_id) VALUES (99, 1)",
            []
        )
        .is_err()
    );
    for n in 1..=6 {
        let job = store.job(job_uuid(n)).await.unwrap();
        assert_eq!((job.project, job.adapter), (None, None));
        assert_eq!(job.config["n"], u64::try_from(n).unwrap());
    }
    // Runner 1's late report on the job taken back from it: dropped.
    let keyed = store
        .runner_by_key_hash(RunnerKeyHash([0; 32]))
        .await
        .unwrap()
        .unwrap();
    let late = RunnerReport {
        runner: keyed.id,
        job: job_uuid(1),
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
}
