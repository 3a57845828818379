//! The four phases on one server (SQLite): idle channels, dispatch
//! latency, Bencher's agent's default, cycles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};

use super::fleet::{Fleet, Seen};
use super::http::{SETUP_CONNECTIONS, bulk, count_jobs, create_spec, http, job_body};
use super::measure::{count_calls, dispatch, ms, percentile, settle, wait_until};
use super::{JobsArgs, Seeded};
use crate::process::Process;
use crate::workload::request;

pub(super) async fn phases(
    args: &JobsArgs,
    server: &mut Process,
    seeded: Seeded,
) -> anyhow::Result<()> {
    let addr = server.addr;
    let admin = Arc::new(seeded.admin);
    let (idle, cycling) = seeded.runners.split_at(args.idle_runners);
    let mut api = http(addr).await?;

    // Two specs: one for the idle runners, one for the cycle runners, so
    // that the queued jobs wait for the cycle runners only.
    let idle_spec = create_spec(&mut api, addr, &admin, "bench idle").await?;
    let cycle_spec = create_spec(&mut api, addr, &admin, "bench cycle").await?;
    let assign: Vec<(String, String)> = idle
        .iter()
        .map(|r| (r.slug.clone(), idle_spec.clone()))
        .chain(cycling.iter().map(|r| (r.slug.clone(), cycle_spec.clone())))
        .collect();
    let assign = Arc::new(assign);
    bulk(addr, assign.len(), 201, {
        let admin = Arc::clone(&admin);
        let assign = Arc::clone(&assign);
        move |i| {
            let (runner, spec) = &assign[i];
            let body = format!("{{\"spec\": \"{spec}\"}}");
            request(
                addr,
                "POST",
                &format!("/v0/runners/{runner}/specs"),
                &admin,
                body.into(),
            )
        }
    })
    .await
    .context("adding the specs to the runners")?;
    let project = uuid::Uuid::new_v4();

    // 1. Idle channels: memory and database calls.
    let n = idle.len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_none = server.memory_kib("VmRSS");
    let anon_none = server.memory_kib("RssAnon");
    let before = server.stats()?;
    ensure!(
        before.open == 0,
        "channels open before any runner: {before:?}"
    );
    let started = Instant::now();
    let (fleet, mut seen) = Fleet::connect(addr, idle, 900).await?;
    fleet.go();
    let stats = wait_until(server, "every idle runner waits", |s| s.waiting == n).await?;
    let connected_in = started.elapsed();
    // Their claims (which found nothing) committed, and a moment more.
    settle(server, Duration::from_millis(500)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = server.memory_kib("VmRSS");
    let anon_idle = server.memory_kib("RssAnon");
    println!(
        "\n== {n} idle runners (poll_timeout 900): connected, `ready` and waiting in {:.2} s \
         ({} channels open, {} waiting)",
        connected_in.as_secs_f64(),
        stats.open,
        stats.waiting
    );
    let per_channel = (rss_idle - rss_none) / n as f64;
    println!(
        "server VmRSS: {:.1} MiB with no channel, {:.1} MiB with {n} idle: {per_channel:.1} KiB \
         per idle channel (RssAnon: {:.1} KiB per channel)",
        rss_none / 1024.0,
        rss_idle / 1024.0,
        (anon_idle - anon_none) / n as f64,
    );
    let per_minute_900 = count_calls(server, n, args.window).await?;
    println!(
        "database calls per idle runner per minute (poll_timeout 900, {:.0} s): {}",
        args.window,
        per_minute_900.line()
    );

    // 2. Dispatch latency, with the idle runners waiting. (A new connection:
    // the server closed the last one, idle through the window.)
    let mut api = http(addr).await?;
    let (latencies, answers) = dispatch(
        args.dispatch_samples,
        addr,
        server,
        &mut api,
        &admin,
        &idle_spec,
        project,
        &mut seen,
        n,
    )
    .await?;
    println!(
        "dispatch latency (POST /v0/jobs sent → `job` frame received), {} jobs one at a time \
         with {n} idle runners: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 1.0)),
    );
    println!(
        "(the same POSTs' 201 answers: p50 {:.2} ms, p99 {:.2} ms)",
        ms(percentile(&answers, 0.5)),
        ms(percentile(&answers, 0.99)),
    );
    let done = fleet.stop().await?;
    ensure!(
        done == latencies.len() as u64,
        "the idle runners completed {done} jobs, not {}",
        latencies.len()
    );
    wait_until(server, "every idle channel closed", |s| s.open == 0).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "server VmRSS after they closed: {:.1} MiB",
        server.memory_kib("VmRSS") / 1024.0
    );
    drop(seen);

    // 3. Bencher's agent's default: `ready` with poll_timeout 55, again
    // after each `no_job`.
    let (fleet, seen) = Fleet::connect(addr, idle, 55).await?;
    fleet.go();
    wait_until(server, "every runner waits (poll_timeout 55)", |s| {
        s.waiting == n
    })
    .await?;
    settle(server, Duration::from_millis(500)).await?;
    drop(seen);
    let rss_again = server.memory_kib("VmRSS");
    let per_minute_55 = count_calls(server, n, args.window).await?;
    println!(
        "\n== {n} idle runners, Bencher's agent's default (poll_timeout 55, `ready` again after \
         each `no_job`)\nserver VmRSS with them: {:.1} MiB\n\
         database calls per idle runner per minute ({:.0} s): {}",
        rss_again / 1024.0,
        args.window,
        per_minute_55.line()
    );
    fleet.stop().await?;
    wait_until(server, "every channel closed", |s| s.open == 0).await?;

    // 4. Cycles: queued jobs, then the runners that take them.
    let queued = args.queued;
    let spec = cycle_spec.clone();
    let created_in = bulk(addr, queued, 201, {
        let admin = Arc::clone(&admin);
        move |_| {
            request(
                addr,
                "POST",
                "/v0/jobs",
                &admin,
                job_body(project, &spec).into(),
            )
        }
    })
    .await
    .context("queueing the jobs")?;
    println!(
        "\n== {queued} jobs queued in {:.2} s ({:.0} creates/s over {SETUP_CONNECTIONS} \
         connections), then {} runners claim → running → complete",
        created_in.as_secs_f64(),
        queued as f64 / created_in.as_secs_f64(),
        cycling.len()
    );
    let (fleet, mut seen) = Fleet::connect(addr, cycling, 900).await?;
    let before = server.stats()?;
    let started = Instant::now();
    fleet.go();
    let mut cycles = Vec::with_capacity(queued);
    while cycles.len() < queued {
        match tokio::time::timeout(Duration::from_secs(30), seen.recv()).await {
            Ok(Some(Seen::Done { took })) => cycles.push(took),
            Ok(Some(_)) => {}
            Ok(None) => bail!("every cycle runner stopped"),
            Err(_) => bail!("no job completed for 30 s ({} done)", cycles.len()),
        }
    }
    let elapsed = started.elapsed();
    let after = server.stats()?;
    let done = fleet.stop().await?;
    cycles.sort_unstable();
    let rate = queued as f64 / elapsed.as_secs_f64();
    println!(
        "{queued} cycles in {:.2} s: {rate:.0} cycles/s; a cycle (`ready` sent → `completed` \
         acknowledged) p50 {:.2} ms, p99 {:.2} ms",
        elapsed.as_secs_f64(),
        ms(percentile(&cycles, 0.5)),
        ms(percentile(&cycles, 0.99)),
    );
    let (writes, commits) = (after.writes - before.writes, after.commits - before.commits);
    println!(
        "server during the cycles: {} database calls ({:.1} a cycle), {writes} writes in \
         {commits} commits ({:.1} writes a commit)",
        after.calls - before.calls,
        (after.calls - before.calls) as f64 / queued as f64,
        writes as f64 / commits.max(1) as f64,
    );
    let mut api = http(addr).await?;
    let completed = count_jobs(&mut api, addr, &admin, &cycle_spec, "completed").await?;
    ensure!(
        done == queued as u64 && completed == queued as u64,
        "runners completed {done} jobs, the server lists {completed} completed, of {queued}"
    );
    println!(
        "checked: each of the {queued} jobs completed once (runners' counts and the job list agree)"
    );

    println!("\nagainst the targets (issue 18):");
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let p99 = ms(percentile(&latencies, 0.99));
    println!(
        "- dispatch p99 <= 20 ms with {n} idle runners: {p99:.2} ms, {}",
        met(p99 <= 20.0)
    );
    println!("- >= 1,000 cycles/s: {rate:.0}/s, {}", met(rate >= 1000.0));
    println!(
        "- <= 64 KiB per idle channel: {per_channel:.1} KiB, {}",
        met(per_channel <= 64.0)
    );
    println!(
        "- 0 database calls per idle runner: {:.3} a minute, {}",
        per_minute_900.per_runner_minute,
        met(per_minute_900.calls == 0)
    );
    println!(
        "server peak RSS (VmHWM): {:.1} MiB",
        server.memory_kib("VmHWM") / 1024.0
    );
    Ok(())
}
