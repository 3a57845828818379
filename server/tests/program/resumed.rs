//! A replica stopped (SIGSTOP) while a runner waits on it, and resumed
//! (SIGCONT) after the runner moved to another replica and took a job
//! there: the stale channel never hands the runner a second job, and never
//! claims one for a channel that is gone (issue 26). Needs PostgreSQL:
//! without `RUNNERS_TEST_PG` it says SKIPPED and passes.

use std::process::Command;
use std::time::Duration;

use anyhow::ensure;
use runners_sdk::types::{JobStatus, JsonNewSpec};
use runners_tests::agent::{Agent, output};
use runners_tests::{
    create_job, create_spec, eventually, job, new_job, new_spec, runner_with_spec,
};

use super::{Serving, block_on};

/// Rounds of stop, move and resume: the stale channel's race with the
/// close it is told to make went the wrong way about half the time.
const ROUNDS: usize = 8;

fn signal(server: &Serving, signal: &str) {
    let pid = server.child.id().to_string();
    let status = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

#[test]
fn a_resumed_replica_never_gives_a_runner_a_second_job_nor_loses_one() {
    let Ok(admin_url) = std::env::var("RUNNERS_TEST_PG") else {
        eprintln!("SKIPPED: replicas need PostgreSQL (set RUNNERS_TEST_PG)");
        return;
    };
    let db = block_on(runners_server::store::pg::fresh_database(&admin_url)).unwrap();
    let a = Serving::start_on(&db, Vec::new());
    let b = Serving::start_on(&db, Vec::new());
    let token = a.bootstrap_token().expect("the first start");
    let on_b = runners_sdk::client_with_token(&b.url, &token).unwrap();
    let result = block_on(async {
        let fallback = JsonNewSpec {
            fallback: true,
            ..new_spec("Resumed box")
        };
        let spec = create_spec(&on_b, fallback).await;
        let (runner, key) = runner_with_spec(&on_b, "Moved", &spec.slug).await;
        for round in 0..ROUNDS {
            // The runner waits on A; A stops.
            let mut stale = Some(Agent::connect_to(&a.url, &runner.slug, &key).await?);
            stale.as_mut().unwrap().ready(60).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
            signal(&a, "-STOP");
            // It moves to B and takes a job there; another is queued.
            let mut fresh = Agent::connect_to(&b.url, &runner.slug, &key).await?;
            let first = create_job(&on_b, new_job(None, 0)).await;
            ensure!(fresh.take_job(5).await?.uuid == first.uuid);
            let second = create_job(&on_b, new_job(None, 0)).await;
            // In every fourth round the old socket is gone before A resumes.
            let closed = round % 4 == 3;
            if closed {
                stale = None;
            }
            signal(&a, "-CONT");
            if let Some(stale) = stale.as_mut() {
                // A closes its channel, and sends no job first.
                stale.patience = Duration::from_secs(10);
                let (code, reason) = stale.expect_close().await?;
                ensure!(code == 1008, "round {round}: {code} {reason}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let queued = job(&on_b, second.uuid).await;
            ensure!(
                queued.status == JobStatus::Pending,
                "round {round}: the second job was taken: {queued:?}"
            );
            // The runner finishes its job and takes the second, on B.
            fresh.complete(first.uuid, vec![output(0, "first")]).await?;
            fresh.expect_ack(first.uuid).await?;
            ensure!(fresh.take_job(5).await?.uuid == second.uuid);
            fresh
                .complete(second.uuid, vec![output(0, "second")])
                .await?;
            fresh.expect_ack(second.uuid).await?;
            for done in [first.uuid, second.uuid] {
                let ended = eventually(Duration::from_secs(5), || async {
                    let j = job(&on_b, done).await;
                    (j.status != JobStatus::Running).then_some(j)
                })
                .await?;
                ensure!(
                    ended.status == JobStatus::Completed,
                    "round {round}: {ended:?}"
                );
            }
            fresh.close().await?;
        }
        anyhow::Ok(())
    });
    // A stopped replica must not outlive a failure.
    signal(&a, "-CONT");
    result.unwrap();
}
