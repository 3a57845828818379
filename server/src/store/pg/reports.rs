//! Runs and reports on PostgreSQL (the twin of `../sqlite/reports.rs`): a
//! run's report (and its job), the named things of a project made on first
//! use, and a job's results written to its report when it is processed.
//!
//! Races, each made safe explicitly (READ COMMITTED):
//! - a named thing: `INSERT … ON CONFLICT DO NOTHING`, then read back;
//!   one run's are inserted in one statement in a fixed order (kind, then
//!   name), so two runs making the same new names never deadlock;
//! - a run to a slug that two runs create at once: the project insert is
//!   `ON CONFLICT (slug) DO NOTHING`, and the loser reads the winner's;
//! - two runs with one idempotency key: the report insert is `ON CONFLICT
//!   (project_id, idempotency_key) DO NOTHING`, and the loser rolls back
//!   and starts again, to find the winner's report.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, SubsecRound, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::items::find;
use super::jobs::insert_job;
use super::projects::{insert_with_slug, lock_project};
use super::{PgStore, StoreError, Tx, now, record};
use crate::bmf::BenchmarkResult;
use crate::store::model::events::Event;
use crate::store::model::read::ReadRow;
use crate::store::model::{
    Actor, AuditAction, JobId, Kind, NameKind, NameRow, NewProject, NewRun, ProjectRef, Projects,
    ReportQuery, ReportRow, RunProject, Visibility, name_slug, new_uuid, stored_results,
};
use crate::store::operations::ReportOps;
use crate::store::sql::{REPORT_COLUMNS, REPORT_FROM, report_columns};
use crate::validate::Ref;

/// How many times a run starts again after losing a race (its idempotency
/// key used by a run that committed meanwhile, a project made and deleted
/// under it).
const RUN_ATTEMPTS: usize = 3;

/// A project's named things by kind and name: each one's row id and row.
type Names = HashMap<(NameKind, String), (i64, NameRow)>;

/// The named things `wanted` of project `project`, those that are new
/// made (in one statement, in the order of kind, then name).
async fn named(
    tx: &Tx<'_>,
    project: i64,
    wanted: BTreeSet<(&str, &str)>,
) -> Result<Names, StoreError> {
    let created = now();
    let (mut uuids, mut kinds, mut names, mut slugs, mut units) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &(kind, name) in &wanted {
        let uuid = new_uuid();
        let kind = NameKind::parse(kind).expect("a kind's own text");
        uuids.push(uuid);
        kinds.push(kind.as_str());
        names.push(name);
        slugs.push(name_slug(kind, name, uuid));
        units.push((kind == NameKind::Measure).then(|| crate::bmf::measure_units(name)));
    }
    let insert = tx
        .prepare_cached(
            "INSERT INTO project_names (uuid, project_id, kind, name, slug, units, created)
             SELECT u, $1, k, n, s, un, $2
               FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[])
                    WITH ORDINALITY AS w (u, k, n, s, un, i)
              ORDER BY i
             ON CONFLICT (project_id, kind, name) DO NOTHING",
        )
        .await?;
    let args: [&(dyn ToSql + Sync); 7] =
        [&project, &created, &uuids, &kinds, &names, &slugs, &units];
    tx.execute(&insert, &args).await?;
    let select = tx
        .prepare_cached(
            "SELECT id, kind, uuid, name, slug, units, created FROM project_names
             WHERE project_id = $1 AND (kind, name) IN (SELECT * FROM unnest($2::text[], $3::text[]))",
        )
        .await?;
    let mut found = Names::with_capacity(wanted.len());
    for row in tx.query(&select, &[&project, &kinds, &names]).await? {
        let kind: String = row.try_get(1)?;
        let kind =
            NameKind::parse(&kind).ok_or_else(|| StoreError::Task(format!("kind {kind}")))?;
        let name = NameRow::read(&row, 2)?;
        found.insert((kind, name.name.clone()), (row.try_get(0)?, name));
    }
    Ok(found)
}

/// The names `results` refers to (benchmarks and measures), added to
/// `wanted`.
fn result_names<'a>(results: &'a [Vec<BenchmarkResult>], wanted: &mut BTreeSet<(&str, &'a str)>) {
    for result in results.iter().flatten() {
        wanted.insert((NameKind::Benchmark.as_str(), &result.benchmark));
        for (measure, _) in &result.measures {
            wanted.insert((NameKind::Measure.as_str(), measure));
        }
    }
}

/// One named thing of `names` (made by [`named`]).
fn name_of(names: &Names, kind: NameKind, name: &str) -> Result<(i64, NameRow), StoreError> {
    names
        .get(&(kind, name.to_owned()))
        .cloned()
        .ok_or_else(|| StoreError::Task(format!("the {kind} `{name}` was not made")))
}

/// Results as a report keeps them, each name from `names`.
fn stored(names: &Names, results: &[Vec<BenchmarkResult>]) -> Result<String, StoreError> {
    stored_results(results, |kind, name| {
        name_of(names, kind, name).map(|(_, row)| row)
    })
}

/// Writes a processed job's results to its report (none once its project
/// was deleted), in the transaction of the job's move.
pub(super) async fn store_results(
    tx: &Tx<'_>,
    job: JobId,
    results: &[Vec<BenchmarkResult>],
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached("SELECT id, project_id FROM reports WHERE job_id = $1")
        .await?;
    let Some(row) = tx.query_opt(&stmt, &[&job]).await? else {
        return Ok(());
    };
    let (id, project): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    let mut wanted = BTreeSet::new();
    result_names(results, &mut wanted);
    let names = named(tx, project, wanted).await?;
    let results = stored(&names, results)?;
    tx.execute(
        "UPDATE reports SET results = $1 WHERE id = $2",
        &[&results, &id],
    )
    .await?;
    Ok(())
}

/// The reports `filter` selects (its parameters `args`), in its order.
async fn report_where(
    c: &impl GenericClient,
    filter: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<ReportRow>, StoreError> {
    reports_where(c, REPORT_COLUMNS, filter, args).await
}

/// The reports `filter` selects, read from `columns`.
async fn reports_where(
    c: &impl GenericClient,
    columns: &str,
    filter: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<ReportRow>, StoreError> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {columns} FROM {REPORT_FROM} WHERE {filter}"
        ))
        .await?;
    c.query(&stmt, args)
        .await?
        .iter()
        .map(ReportRow::read)
        .collect()
}

async fn report_by_id(c: &impl GenericClient, id: i64) -> Result<ReportRow, StoreError> {
    report_where(c, "r.id = $1", &[&id])
        .await?
        .pop()
        .ok_or(StoreError::Task(
            "a report vanished within its transaction".into(),
        ))
}

/// The project a run goes to (its row locked `FOR KEY SHARE`): found, or
/// made from its slug (made by a racing run meanwhile: that one).
async fn run_project(tx: &Tx<'_>, project: &RunProject, actor: &Actor) -> Result<i64, StoreError> {
    let (name, slug) = match project {
        RunProject::Existing(uuid) => return lock_project(tx, &ProjectRef::from(*uuid)).await,
        RunProject::Create {
            name,
            slug: Some(slug),
        } => (name, slug),
        RunProject::Create { name, slug: None } => {
            let new = NewProject {
                name: name.clone(),
                slug: None,
                url: None,
                visibility: Visibility::Public,
            };
            return Ok(super::projects::insert_project(tx, &new, actor).await?.0);
        }
    };
    let by_slug = ProjectRef::from(Ref::Slug(slug.to_string()));
    for _ in 0..RUN_ATTEMPTS {
        match lock_project(tx, &by_slug).await {
            Ok(id) => return Ok(id),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let new = NewProject {
            name: name.clone(),
            slug: Some(slug.clone()),
            url: None,
            visibility: Visibility::Public,
        };
        if let Some((id, _)) = insert_with_slug(tx, &new, slug, actor).await? {
            return Ok(id);
        }
    }
    Err(StoreError::Busy)
}

/// One attempt at run `run`: its report, or `None` if a run with its
/// idempotency key committed meanwhile (the caller rolls back and starts
/// again).
async fn try_run(
    tx: &Tx<'_>,
    run: &NewRun,
    actor: &Actor,
) -> Result<Option<ReportRow>, StoreError> {
    let project = run_project(tx, &run.project, actor).await?;
    if let Some(key) = run.idempotency_key {
        let first = tx
            .query_opt(
                "SELECT id FROM reports WHERE project_id = $1 AND idempotency_key = $2",
                &[&project, &key],
            )
            .await?;
        if let Some(first) = first {
            return Ok(Some(report_by_id(tx, first.try_get(0)?).await?));
        }
    }
    let mut wanted = BTreeSet::from([
        (NameKind::Branch.as_str(), run.branch.as_str()),
        (NameKind::Testbed.as_str(), run.testbed.as_str()),
    ]);
    if run.job.is_none() {
        result_names(&run.results, &mut wanted);
    }
    let names = named(tx, project, wanted).await?;
    let (branch, _) = name_of(&names, NameKind::Branch, &run.branch)?;
    let (testbed, _) = name_of(&names, NameKind::Testbed, &run.testbed)?;
    let (job, spec) = match &run.job {
        Some(new) => {
            let (id, spec, _) = insert_job(tx, new, actor, Some((project, run.adapter))).await?;
            (Some(id), Some(spec))
        }
        None => (None, None),
    };
    let results = match job {
        Some(_) => None,
        None => Some(stored(&names, &run.results)?),
    };
    let micros = |t: DateTime<Utc>| t.trunc_subsecs(6);
    let stmt = tx
        .prepare_cached(
            "INSERT INTO reports (uuid, project_id, user_id, branch_id, testbed_id, adapter,
                                  start_time, end_time, job_id, idempotency_key, results, created)
             VALUES ($1, $2, (SELECT id FROM users WHERE uuid = $3), $4, $5, $6, $7, $8, $9, $10,
                     $11, $12)
             ON CONFLICT (project_id, idempotency_key) DO NOTHING
             RETURNING id",
        )
        .await?;
    let uuid = new_uuid();
    let args: [&(dyn ToSql + Sync); 12] = [
        &uuid,
        &project,
        &run.user,
        &branch,
        &testbed,
        &run.adapter.as_str(),
        &micros(run.start_time),
        &micros(run.end_time),
        &job,
        &run.idempotency_key,
        &results,
        &now(),
    ];
    let Some(id) = tx.query_opt(&stmt, &args).await? else {
        return Ok(None);
    };
    let report = report_by_id(tx, id.try_get(0)?).await?;
    let fields = serde_json::json!({
        "project": report.project.uuid, "job": report.job,
    });
    record(tx, actor, AuditAction::RunCreate, Some(uuid), None, fields).await?;
    if let Some(spec) = spec {
        super::events::notify(tx, &Event::JobPending { spec }).await?;
    }
    Ok(Some(report))
}

impl ReportOps for PgStore {
    /// Records a run: its report and, with a job, the job (queued as any
    /// other: runners waiting for its spec, on every replica, are told when
    /// it commits); with an idempotency key already used in the project,
    /// the first run's report instead.
    async fn create_run(&self, run: NewRun, actor: &Actor) -> Result<ReportRow, StoreError> {
        let mut client = self.client().await?;
        for _ in 0..RUN_ATTEMPTS {
            let tx = client.transaction().await?;
            match try_run(&tx, &run, actor).await? {
                Some(report) => {
                    tx.commit().await?;
                    return Ok(report);
                }
                None => tx.rollback().await?,
            }
        }
        Err(StoreError::Busy)
    }

    /// One report of a project.
    async fn report(&self, project: ProjectRef, uuid: Uuid) -> Result<ReportRow, StoreError> {
        let mut client = self.client().await?;
        let tx = client.build_transaction().read_only(true).start().await?;
        let (project, _) = find::<Projects>(&tx, &project, false).await?;
        let found = report_where(&tx, "r.uuid = $1 AND r.project_id = $2", &[&uuid, &project])
            .await?
            .pop();
        tx.commit().await?;
        found.ok_or(StoreError::NotFound {
            kind: Kind::Report,
            by: Ref::Uuid(uuid),
        })
    }

    /// One page of a project's reports matching `q`, and how many match,
    /// in one snapshot.
    async fn list_reports(
        &self,
        project: ProjectRef,
        q: ReportQuery,
    ) -> Result<(Vec<ReportRow>, u64), StoreError> {
        let mut client = self.client().await?;
        let tx = super::snapshot(&mut client).await?;
        let (project, _) = find::<Projects>(&tx, &project, false).await?;
        let times = (
            q.start_time.map(|t| t.trunc_subsecs(6)),
            q.end_time.map(|t| t.trunc_subsecs(6)),
        );
        let mut filters = vec!["r.project_id = $1".to_owned()];
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&project];
        for (alias, name) in [("b", &q.branch), ("t", &q.testbed)] {
            if let Some(name) = name {
                args.push(name);
                let n = args.len();
                filters.push(format!(
                    "({alias}.name = ${n} OR {alias}.slug = ${n} OR {alias}.uuid::text = ${n})"
                ));
            }
        }
        if let Some(t) = &times.0 {
            args.push(t);
            filters.push(format!("r.start_time >= ${}", args.len()));
        }
        if let Some(t) = &times.1 {
            args.push(t);
            filters.push(format!("r.end_time <= ${}", args.len()));
        }
        let filter = filters.join(" AND ");
        let total: i64 = tx
            .query_one(
                &format!("SELECT count(*) FROM {REPORT_FROM} WHERE {filter}"),
                &args,
            )
            .await?
            .try_get(0)?;
        let order = if q.ascending { "ASC" } else { "DESC" };
        let limit = i64::from(q.per_page);
        let offset = i64::from(q.page.saturating_sub(1)) * i64::from(q.per_page);
        let n = args.len();
        args.push(&limit);
        args.push(&offset);
        let page = format!(
            "{filter} ORDER BY r.start_time {order}, r.id {order} LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let columns = report_columns(q.expand, "NULL::text");
        let reports = reports_where(&tx, &columns, &page, &args).await?;
        tx.commit().await?;
        Ok((reports, u64::try_from(total).unwrap_or(0)))
    }
}
