//! One registry size, side by side: seed it, start the server and the
//! ceiling, run each workload against both (A B A B), and print the table.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::load::{self, MakeRequest, Run};
use crate::process::Process;
use crate::replica_reads::replica_reads;
use crate::seed::seed;
use crate::workload::{Plan, Workload};
use crate::{Args, CONNECTIONS};

/// How many `fdatasync`s a second the disk under `dir` does, one after the
/// other, each after a 1-byte write (what a commit costs at least).
fn fsyncs_per_second(dir: &Path) -> anyhow::Result<f64> {
    use std::os::unix::fs::FileExt as _;
    let file = std::fs::File::create(dir.join("fsync-probe"))?;
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        file.write_at(&[count as u8], 0)?;
        file.sync_data()?;
        count += 1;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

pub(crate) fn bench_size(size: usize, args: &Args) -> anyhow::Result<Vec<(Workload, Run)>> {
    let dir = tempfile::tempdir()?;
    let fsyncs = fsyncs_per_second(dir.path())?;
    println!("disk: {fsyncs:.0} fsyncs/s (one writer, 1-byte writes, fdatasync)");
    let runtime = tokio::runtime::Runtime::new()?;
    let db = match &args.db_url {
        Some(url) => {
            PathBuf::from(runtime.block_on(runners_server::store::pg::fresh_database(url))?)
        }
        None => dir.path().join("bench.db"),
    };
    let seeded = runtime.block_on(seed(&db, size))?;
    let plan = Arc::new(Plan {
        size,
        admin: seeded.admin,
        uuids: seeded.runners.iter().map(|r| r.uuid.to_string()).collect(),
        runner_tokens: seeded.runner_tokens,
        created: AtomicU64::new(0),
    });
    let server = Process::start(&["serve".as_ref(), db.as_os_str()])?;
    let mut ceiling_args = vec!["ceiling".as_ref(), db.as_os_str()];
    if args.unlogged_ceiling {
        ceiling_args.push("--unlogged".as_ref());
    }
    let ceiling = Process::start(&ceiling_args)?;
    let ceiling_addr = ceiling.addr;
    let run_for = Duration::from_secs_f64(args.seconds);
    println!(
        "{:<16} {:>10} {:>10} {:>7}   {:>17} {:>17}",
        "workload", "server/s", "ceiling/s", "ratio", "server p50/p99", "ceiling p50/p99"
    );
    let mut results = Vec::new();
    let (mut anon, mut file) = (0.0f64, 0.0f64);
    for workload in Workload::ALL {
        if args.only.is_some_and(|only| only != workload) {
            continue;
        }
        let target = workload.target(&server);
        let a = workload.requests(&plan, target);
        let b = workload.requests(&plan, ceiling_addr);
        let drive = |addr, make: &MakeRequest, time| {
            runtime.block_on(load::drive(
                addr,
                CONNECTIONS,
                time,
                workload.expect(),
                Arc::clone(make),
            ))
        };
        // Warm up both (connections, caches), then A B A B.
        let ceiling = workload.has_ceiling();
        drive(target, &a, Duration::from_millis(300))?;
        if ceiling {
            drive(ceiling_addr, &b, Duration::from_millis(300))?;
        }
        let mut runs_a = Vec::new();
        let mut runs_b = Vec::new();
        for _ in 0..2 {
            runs_a.push(drive(target, &a, run_for).with_context(|| workload.name())?);
            if ceiling {
                runs_b.push(drive(ceiling_addr, &b, run_for).with_context(|| workload.name())?);
            }
        }
        anon = anon.max(server.memory_mib("RssAnon"));
        file = file.max(server.memory_mib("RssFile"));
        let a = Run::merge(runs_a);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (b_rate, ratio, b_latency) = if ceiling {
            let b = Run::merge(runs_b);
            (
                format!("{:.0}", b.per_second()),
                format!("{:.2}x", a.per_second() / b.per_second()),
                format!(
                    "{:>7.2}/{:>6.2} ms",
                    ms(b.percentile(0.5)),
                    ms(b.percentile(0.99))
                ),
            )
        } else {
            ("-".into(), "-".into(), "-".into())
        };
        println!(
            "{:<16} {:>10.0} {:>10} {:>7}   {:>7.2}/{:>6.2} ms {:>17}",
            workload.name(),
            a.per_second(),
            b_rate,
            ratio,
            ms(a.percentile(0.5)),
            ms(a.percentile(0.99)),
            b_latency,
        );
        results.push((workload, a));
    }
    let rate = |w: Workload| results.iter().find(|r| r.0 == w).map(|r| r.1.per_second());
    if let Some(page1) = rate(Workload::ListPage1) {
        for w in [Workload::ListSearch, Workload::ListDeepPage] {
            if let Some(r) = rate(w) {
                println!("{}: {:.2}x list page 1", w.name(), r / page1);
            }
        }
    }
    for w in [
        Workload::Create,
        Workload::Heartbeat,
        Workload::RotateToken,
        Workload::SpecCreate,
    ] {
        if let Some(r) = rate(w) {
            println!("{}: {:.2}x the disk's fsyncs/s", w.name(), r / fsyncs);
        }
    }
    println!(
        "server memory: peak RSS {:.1} MiB (VmHWM); largest seen after a workload: \
         {anon:.1} MiB anonymous, {file:.1} MiB file-backed",
        server.memory_mib("VmHWM")
    );
    if args.db_url.is_some() {
        drop(ceiling);
        replica_reads(&runtime, &plan, &server, &db, run_for)?;
    }
    Ok(results)
}
