//! The dispatch latency across two replicas on PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};

use super::fleet::Fleet;
use super::http::{bulk, create_spec, http};
use super::measure::{dispatch, ms, percentile, settle, wait_until};
use super::{JobsArgs, seed};
use crate::process::Process;
use crate::workload::request;

/// The dispatch latency across replicas on PostgreSQL: the idle runners on
/// replica B, the jobs created through replica A, then through B.
pub(super) fn across_replicas(args: &JobsArgs, url: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let db =
        std::path::PathBuf::from(runtime.block_on(runners_server::store::pg::fresh_database(url))?);
    let n = args.idle_runners;
    let seeded = runtime.block_on(seed(&db, n))?;
    let a = Process::start(&["serve".as_ref(), db.as_os_str()])?;
    let mut b = Process::start(&["serve".as_ref(), db.as_os_str()])?;
    println!(
        "two replicas on one PostgreSQL database ({url}, a fresh database): A {} and B {}, \
         each a child process (`serve URL`)",
        a.addr, b.addr
    );
    runtime.block_on(async {
        let admin = seeded.admin;
        let mut api_a = http(a.addr).await?;
        let spec = create_spec(&mut api_a, a.addr, &admin, "bench idle").await?;
        let runners = Arc::new(seeded.runners.clone());
        bulk(a.addr, n, 201, {
            let (admin, runners, spec, addr) =
                (admin.clone(), Arc::clone(&runners), spec.clone(), a.addr);
            move |i| {
                let body = format!("{{\"spec\": \"{spec}\"}}");
                let path = format!("/v0/runners/{}/specs", runners[i].slug);
                request(addr, "POST", &path, &admin, body.into())
            }
        })
        .await
        .context("adding the spec to the runners")?;
        let project = uuid::Uuid::new_v4();
        let (fleet, mut seen) = Fleet::connect(b.addr, &seeded.runners, 900).await?;
        fleet.go();
        wait_until(&mut b, "every idle runner waits on B", |s| s.waiting == n).await?;
        settle(&mut b, Duration::from_millis(500)).await?;
        let mut figures = Vec::new();
        for (through, addr) in [
            ("A (across replicas)", a.addr),
            ("B (the runners' own)", b.addr),
        ] {
            let mut api = http(addr).await?;
            let (latencies, answers) = dispatch(
                args.dispatch_samples,
                addr,
                &mut b,
                &mut api,
                &admin,
                &spec,
                project,
                &mut seen,
                n,
            )
            .await?;
            println!(
                "dispatch latency, {n} idle runners on B, {} jobs one at a time created through \
                 {through}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (the 201 answers: p50 \
                 {:.2} ms, p99 {:.2} ms)",
                latencies.len(),
                ms(percentile(&latencies, 0.5)),
                ms(percentile(&latencies, 0.99)),
                ms(percentile(&latencies, 1.0)),
                ms(percentile(&answers, 0.5)),
                ms(percentile(&answers, 0.99)),
            );
            figures.push(latencies);
        }
        let done = fleet.stop().await?;
        let given: usize = figures.iter().map(Vec::len).sum();
        ensure!(
            done == given as u64,
            "the runners completed {done} jobs, not {given}"
        );
        let p99 = ms(percentile(&figures[0], 0.99));
        let met = if p99 <= 50.0 { "met" } else { "NOT met" };
        println!("- dispatch p99 across replicas <= 50 ms: {p99:.2} ms, {met}");
        anyhow::Ok(())
    })?;
    drop(a);
    drop(b);
    Ok(())
}
