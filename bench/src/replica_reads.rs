//! Reads through two replicas against one (PostgreSQL only).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::CONNECTIONS;
use crate::load::{self, Run};
use crate::process::Process;
use crate::workload::{Plan, Workload};

/// Reads (view by slug, list page 1) through two server processes on one
/// PostgreSQL database, half the connections to each, against all of them
/// to one; alternating one, two, one, two. Prints requests/s of both.
pub(crate) fn replica_reads(
    runtime: &tokio::runtime::Runtime,
    plan: &Arc<Plan>,
    a: &Process,
    db: &Path,
    run_for: Duration,
) -> anyhow::Result<()> {
    let b = Process::start(&["serve".as_ref(), db.as_os_str()])?;
    println!(
        "two replicas (two `serve` processes on this database) against one, \
         {CONNECTIONS} connections ({} to each of the two):",
        CONNECTIONS / 2
    );
    println!(
        "{:<16} {:>10} {:>10} {:>7}   {:>17} {:>17}",
        "workload", "one/s", "two/s", "ratio", "one p50/p99", "two p50/p99"
    );
    for workload in [Workload::ViewBySlug, Workload::ListPage1] {
        let to_a = workload.requests(plan, a.addr);
        let to_b = workload.requests(plan, b.addr);
        let expect = workload.expect();
        let one = |time| {
            runtime.block_on(load::drive(
                a.addr,
                CONNECTIONS,
                time,
                expect,
                Arc::clone(&to_a),
            ))
        };
        let two = |time| -> anyhow::Result<Run> {
            runtime.block_on(async {
                let half = CONNECTIONS / 2;
                let (x, y) = tokio::join!(
                    load::drive(a.addr, half, time, expect, Arc::clone(&to_a)),
                    load::drive(b.addr, CONNECTIONS - half, time, expect, Arc::clone(&to_b)),
                );
                let (x, y) = (x?, y?);
                // One run: both halves' requests over the longer elapsed.
                let elapsed = x.elapsed.max(y.elapsed);
                let mut latencies = x.latencies;
                latencies.extend(y.latencies);
                latencies.sort_unstable();
                Ok(Run {
                    requests: latencies.len() as u64,
                    elapsed,
                    latencies,
                })
            })
        };
        one(Duration::from_millis(300))?;
        two(Duration::from_millis(300))?;
        let (mut ones, mut twos) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            ones.push(one(run_for).with_context(|| workload.name())?);
            twos.push(two(run_for).with_context(|| workload.name())?);
        }
        let (one, two) = (Run::merge(ones), Run::merge(twos));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:<16} {:>10.0} {:>10.0} {:>6.2}x   {:>7.2}/{:>6.2} ms {:>7.2}/{:>6.2} ms",
            workload.name(),
            one.per_second(),
            two.per_second(),
            two.per_second() / one.per_second(),
            ms(one.percentile(0.5)),
            ms(one.percentile(0.99)),
            ms(two.percentile(0.5)),
            ms(two.percentile(0.99)),
        );
    }
    Ok(())
}
