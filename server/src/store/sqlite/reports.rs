//! Runs and reports on SQLite: a run's report (and its job), the named
//! things of a project made on first use, and a job's results written to
//! its report when it is processed.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use uuid::Uuid;

use super::audit::record;
use super::items;
use super::jobs::insert_job;
use super::projects::insert_project;
use super::{SqliteStore, to_text};
use crate::bmf::BenchmarkResult;
use crate::store::error::StoreError;
use crate::store::model::events::Event;
use crate::store::model::read::ReadRow;
use crate::store::model::{
    Actor, AuditAction, JobId, Kind, NameKind, NameRow, NewProject, NewRun, ProjectRef,
    ReportQuery, ReportRow, RunProject, SpecId, Visibility, name_slug, new_uuid, now,
    stored_results,
};
use crate::store::operations::ReportOps;
use crate::store::sql::{REPORT_COLUMNS, REPORT_FROM, report_columns};
use crate::validate::Ref;

/// The named thing `name` of kind `kind` in project `project`, made if it
/// is new.
fn named(
    conn: &Connection,
    project: i64,
    kind: NameKind,
    name: &str,
) -> Result<(i64, NameRow), StoreError> {
    let uuid = new_uuid();
    let units = (kind == NameKind::Measure).then(|| crate::bmf::measure_units(name));
    conn.prepare_cached(
        "INSERT INTO project_names (uuid, project_id, kind, name, slug, units, created)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project_id, kind, name) DO NOTHING",
    )?
    .execute(params![
        uuid.to_string(),
        project,
        kind.as_str(),
        name,
        name_slug(kind, name, uuid),
        units,
        to_text(now())
    ])?;
    Ok(conn
        .prepare_cached(
            "SELECT id, uuid, name, slug, units, created FROM project_names
             WHERE project_id = ? AND kind = ? AND name = ?",
        )?
        .query_row(params![project, kind.as_str(), name], |r| {
            Ok((r.get(0)?, NameRow::read(r, 1)?))
        })?)
}

/// Results as a report keeps them, each name made on first use.
fn stored(
    conn: &Connection,
    project: i64,
    results: &[Vec<BenchmarkResult>],
) -> Result<String, StoreError> {
    stored_results(results, |kind, name| {
        named(conn, project, kind, name).map(|(_, row)| row)
    })
}

/// Writes a processed job's results to its report (none once its project
/// was deleted).
pub(super) fn store_results(
    conn: &Connection,
    job: JobId,
    results: &[Vec<BenchmarkResult>],
) -> Result<(), StoreError> {
    let report: Option<(i64, i64)> = conn
        .prepare_cached("SELECT id, project_id FROM reports WHERE job_id = ?")?
        .query_row([job], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((id, project)) = report {
        let results = stored(conn, project, results)?;
        conn.prepare_cached("UPDATE reports SET results = ? WHERE id = ?")?
            .execute(params![results, id])?;
    }
    Ok(())
}

fn report_where(
    conn: &Connection,
    filter: &str,
    args: &[Value],
) -> Result<Vec<ReportRow>, StoreError> {
    reports_where(conn, REPORT_COLUMNS, filter, args)
}

/// The reports `filter` selects, read from `columns`.
fn reports_where(
    conn: &Connection,
    columns: &str,
    filter: &str,
    args: &[Value],
) -> Result<Vec<ReportRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {columns} FROM {REPORT_FROM} WHERE {filter}"
        ))?
        .query_map(params_from_iter(args), |r| ReportRow::read(r))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

fn report_by_id(conn: &Connection, id: i64) -> Result<ReportRow, StoreError> {
    report_where(conn, "r.id = ?", &[Value::Integer(id)])?
        .pop()
        .ok_or(StoreError::Task(
            "a report vanished within its transaction".into(),
        ))
}

/// The project a run goes to: found, or made from its slug.
fn run_project(conn: &Connection, project: &RunProject, actor: &Actor) -> Result<i64, StoreError> {
    match project {
        RunProject::Existing(uuid) => {
            Ok(items::identify::<crate::store::model::Projects>(conn, &(*uuid).into())?.id)
        }
        RunProject::Create { name, slug } => {
            let found = match slug {
                Some(slug) => conn
                    .prepare_cached("SELECT id FROM projects WHERE slug = ?")?
                    .query_row([&**slug], |r| r.get(0))
                    .optional()?,
                None => None,
            };
            match found {
                Some(id) => Ok(id),
                None => {
                    let new = NewProject {
                        name: name.clone(),
                        slug: slug.clone(),
                        url: None,
                        visibility: Visibility::Public,
                    };
                    Ok(insert_project(conn, &new, actor)?.0)
                }
            }
        }
    }
}

impl ReportOps for SqliteStore {
    /// Records a run: its report and, with a job, the job (queued as any
    /// other); with an idempotency key already used in the project, the
    /// first run's report instead.
    async fn create_run(&self, run: NewRun, actor: &Actor) -> Result<ReportRow, StoreError> {
        let actor = actor.clone();
        let (report, spec) = self
            .write(move |tx| {
                let project = run_project(tx, &run.project, &actor)?;
                if let Some(key) = run.idempotency_key {
                    let first: Option<i64> = tx
                        .prepare_cached(
                            "SELECT id FROM reports WHERE project_id = ? AND idempotency_key = ?",
                        )?
                        .query_row(params![project, key.to_string()], |r| r.get(0))
                        .optional()?;
                    if let Some(id) = first {
                        return Ok((report_by_id(tx, id)?, None));
                    }
                }
                let (branch, _) = named(tx, project, NameKind::Branch, &run.branch)?;
                let (testbed, _) = named(tx, project, NameKind::Testbed, &run.testbed)?;
                let (job, spec) = match &run.job {
                    Some(new) => {
                        let (id, spec, _) =
                            insert_job(tx, new, &actor, Some((project, run.adapter)))?;
                        (Some(id), Some(SpecId(spec)))
                    }
                    None => (None, None),
                };
                let results = match job {
                    Some(_) => None,
                    None => Some(stored(tx, project, &run.results)?),
                };
                let user = run.user.map(|u| u.to_string());
                let uuid = new_uuid();
                let id: i64 = tx
                    .prepare_cached(
                        "INSERT INTO reports (uuid, project_id, user_id, branch_id, testbed_id,
                             adapter, start_time, end_time, job_id, idempotency_key, results,
                             created)
                         VALUES (?, ?, (SELECT id FROM users WHERE uuid = ?), ?, ?, ?, ?, ?, ?, ?,
                                 ?, ?) RETURNING id",
                    )?
                    .query_row(
                        params![
                            uuid.to_string(),
                            project,
                            user,
                            branch,
                            testbed,
                            run.adapter.as_str(),
                            to_text(run.start_time),
                            to_text(run.end_time),
                            job,
                            run.idempotency_key.map(|k| k.to_string()),
                            results,
                            to_text(now())
                        ],
                        |r| r.get(0),
                    )?;
                let report = report_by_id(tx, id)?;
                let fields = serde_json::json!({
                    "project": report.project.uuid, "job": report.job,
                });
                record(tx, &actor, AuditAction::RunCreate, Some(uuid), None, fields)?;
                Ok((report, spec))
            })
            .await?;
        if let Some(spec) = spec {
            self.publish(Event::JobPending { spec });
        }
        Ok(report)
    }

    /// One report of a project.
    async fn report(&self, project: ProjectRef, uuid: Uuid) -> Result<ReportRow, StoreError> {
        self.read(move |c| {
            let project = items::identify(c, &project)?;
            report_where(
                c,
                "r.uuid = ? AND r.project_id = ?",
                &[Value::Text(uuid.to_string()), Value::Integer(project.id)],
            )?
            .pop()
            .ok_or(StoreError::NotFound {
                kind: Kind::Report,
                by: Ref::Uuid(uuid),
            })
        })
        .await
    }

    /// One page of a project's reports matching `q`, and how many match.
    async fn list_reports(
        &self,
        project: ProjectRef,
        q: ReportQuery,
    ) -> Result<(Vec<ReportRow>, u64), StoreError> {
        self.scan(move |c| {
            let project = items::identify(c, &project)?;
            let mut filters = vec!["r.project_id = ?".to_owned()];
            let mut args = vec![Value::Integer(project.id)];
            for (alias, name) in [("b", &q.branch), ("t", &q.testbed)] {
                if let Some(name) = name {
                    filters.push(format!(
                        "({alias}.name = ? OR {alias}.slug = ? OR {alias}.uuid = ?)"
                    ));
                    args.extend(std::iter::repeat_n(Value::Text(name.clone()), 3));
                }
            }
            if let Some(t) = q.start_time {
                filters.push("r.start_time >= ?".to_owned());
                args.push(Value::Text(to_text(t)));
            }
            if let Some(t) = q.end_time {
                filters.push("r.end_time <= ?".to_owned());
                args.push(Value::Text(to_text(t)));
            }
            let filter = filters.join(" AND ");
            let total: i64 = c
                .prepare(&format!(
                    "SELECT count(*) FROM {REPORT_FROM} WHERE {filter}"
                ))?
                .query_row(params_from_iter(&args), |r| r.get(0))?;
            let order = if q.ascending { "ASC" } else { "DESC" };
            let page = format!(
                "{filter} ORDER BY r.start_time {order}, r.id {order} LIMIT {} OFFSET {}",
                q.per_page,
                u64::from(q.page - 1) * u64::from(q.per_page)
            );
            let columns = report_columns(q.expand, "NULL");
            Ok((reports_where(c, &columns, &page, &args)?, total as u64))
        })
        .await
    }
}
