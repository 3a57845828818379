//! Job lists carry no job's output (issue 26, item 8): outputs are what
//! runners report, up to a channel message each, and an admin's list of 255
//! jobs used to carry every one (133 MB a page). A list leaves `output`
//! null, whatever the job's status; the job's own view carries it.

use anyhow::ensure;
use runners_sdk::types::{JobStatus, ResourceId, StatusList};
use runners_tests::agent::{Agent, output};
use runners_tests::*;

/// Jobs made, each with a large output.
const JOBS: usize = 6;
/// The stdout each reports: near the channel's message limit (512 KiB).
const STDOUT_BYTES: usize = 500 * 1024;
/// The most bytes a job may take in a list: its spec, config and stamps,
/// a few hundred bytes each, never its output.
const LISTED_BYTES_PER_JOB: usize = 2048;

/// `GET path` with the admin token: the status and the body's bytes.
async fn get_raw(server: &TestServer, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", server.url))
        .bearer_auth(&server.admin_token)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.bytes().await?.to_vec()))
}

#[tokio::test]
async fn job_lists_leave_outputs_out_and_the_job_view_carries_them() -> anyhow::Result<()> {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (_, runner, key) = fallback_runner(&admin, "Loud").await;
    let mut agent = Agent::connect(&server, &runner.slug, &key).await?;
    let loud = "x".repeat(STDOUT_BYTES);
    let mut made = Vec::new();
    for n in 0..JOBS {
        let created = create_job(&admin, new_job(None, 0)).await;
        let taken = agent.take_job(5).await?;
        ensure!(taken.uuid == created.uuid, "{taken:?}");
        if n % 2 == 0 {
            agent.complete(taken.uuid, vec![output(0, &loud)]).await?;
        } else {
            agent
                .fail(taken.uuid, vec![output(1, &loud)], "it broke")
                .await?;
        }
        agent.expect_ack(taken.uuid).await?;
        made.push(created.uuid);
    }

    // Both lists, as bytes: small, and no job in them has an output.
    let runner_jobs = format!("/v0/runners/{}/jobs?per_page=255", runner.slug);
    for path in ["/v0/jobs?per_page=255", runner_jobs.as_str()] {
        let (status, body) = get_raw(&server, path).await?;
        ensure!(status == 200, "{path}: {status}");
        ensure!(
            body.len() < JOBS * LISTED_BYTES_PER_JOB,
            "{path}: {} bytes for {JOBS} jobs",
            body.len()
        );
        let jobs: Vec<serde_json::Value> = serde_json::from_slice(&body)?;
        ensure!(jobs.len() == JOBS, "{path}: {} jobs", jobs.len());
        for j in &jobs {
            ensure!(j["status"] != "pending", "{path}: {j}");
            ensure!(j["output"].is_null(), "{path}: an output listed: {j}");
        }
    }
    // Through the SDK too, with a status filter.
    let ended = admin
        .runner_jobs_get()
        .runner(runner.slug.parse::<ResourceId>()?)
        .status("completed,failed".parse::<StatusList>()?)
        .per_page(255u32)
        .send()
        .await?;
    ensure!(ended.len() == JOBS, "{} jobs", ended.len());
    ensure!(ended.iter().all(|j| j.output.is_none()), "{:?}", ended[0]);

    // Each job's view carries its output, whole, and a failure's error.
    for (n, uuid) in made.into_iter().enumerate() {
        let viewed = job(&admin, uuid).await;
        let kept = viewed.output.as_ref().map(|o| &o.results[..]);
        let said = kept.and_then(|r| r.first()).and_then(|r| r.stdout.as_ref());
        ensure!(said == Some(&loud), "job {n}: no output viewed");
        let error = viewed.output.as_ref().and_then(|o| o.error.as_deref());
        let (status, want) = if n % 2 == 0 {
            (JobStatus::Completed, None)
        } else {
            (JobStatus::Failed, Some("it broke"))
        };
        ensure!(
            viewed.status == status && error == want,
            "job {n}: {error:?}"
        );
    }
    agent.close().await
}
