//! Jobs on SQLite: the queue, reading jobs, cancel, and the writes of the
//! timeout rules (the rules themselves are in [`super::rules`]; what a
//! runner's channel does, the claim and its reports, in [`super::claims`]).
//! Every transition is one conditional write (its `WHERE` names the status
//! it leaves), so two writers can never both make it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter, types::Value};
use uuid::Uuid;

use super::audit::record;
use super::item::SqliteItem;
use super::items;
use super::{SqliteStore, to_text};
use crate::store::error::StoreError;
use crate::store::model::events::Event;
use crate::store::model::{
    Actor, Architecture, AuditAction, JobId, JobRow, Kind, NewJob, OperatingSystem, Projects,
    RunnerId, RunnerRef, Runners, SpecId, SpecRow, Specs,
};
use crate::store::model::{new_uuid, now};
use crate::store::operations::JobOps;
use crate::store::rules::{ACTIVE, Cancel, Expiry, Move, Timeouts, expired, expiry};
use crate::validate::{Direction, JobListQuery, Ref};

/// The columns [`job_at`] reads (the spec is read by its id, once per
/// statement for the jobs of one spec).
pub(super) const COLUMNS: &str = "j.id, j.uuid, j.status, j.spec_id, j.config, \
    (SELECT uuid FROM runners WHERE runners.id = j.runner_id), j.claimed, j.started, \
    j.completed, j.created, j.modified, j.output, j.priority, j.last_heartbeat, j.timeout, \
    j.runner_id, j.adapter, (SELECT uuid FROM projects WHERE projects.id = j.project_id)";

/// [`COLUMNS`] for a list of jobs, which never carries a job's output:
/// `NULL` in its place, so that a page does not even read it.
fn list_columns() -> String {
    COLUMNS.replacen("j.output", "NULL", 1)
}

/// A job's row id, its spec's and its runner's row ids, and the job
/// without its spec.
pub(super) struct Read {
    pub(super) id: JobId,
    pub(super) spec_id: SpecId,
    pub(super) runner_id: Option<RunnerId>,
    pub(super) row: JobRow,
}

fn job_at(row: &Row<'_>, spec: SpecRow) -> rusqlite::Result<Read> {
    Ok(Read {
        id: row.get(0)?,
        spec_id: row.get(3)?,
        runner_id: row.get(15)?,
        row: JobRow::read(row, spec)?,
    })
}

/// A placeholder spec, replaced by the real one once read.
fn no_spec() -> SpecRow {
    SpecRow {
        uuid: Uuid::nil(),
        name: String::new(),
        slug: String::new(),
        architecture: Architecture::X86_64,
        os: OperatingSystem::Linux,
        cpu: 0,
        memory: 0,
        disk: 0,
        network: false,
        sandbox: None,
        fallback: None,
        archived: None,
        created: DateTime::<Utc>::MIN_UTC,
        modified: DateTime::<Utc>::MIN_UTC,
    }
}

/// Reads the jobs `sql` selects (with [`COLUMNS`]), each with its spec.
pub(super) fn query_jobs(
    conn: &Connection,
    sql: &str,
    args: &[Value],
) -> Result<Vec<Read>, StoreError> {
    let mut reads = conn
        .prepare_cached(sql)?
        .query_map(params_from_iter(args), |r| job_at(r, no_spec()))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut specs: HashMap<SpecId, SpecRow> = HashMap::new();
    let mut spec_stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM specs WHERE id = ?",
        Specs::COLUMNS
    ))?;
    for read in &mut reads {
        let spec = match specs.get(&read.spec_id) {
            Some(spec) => spec.clone(),
            None => {
                let spec = spec_stmt.query_row([read.spec_id], |r| Specs::row_at(r, 0))?;
                specs.insert(read.spec_id, spec.clone());
                spec
            }
        };
        read.row.spec = spec;
    }
    Ok(reads)
}

pub(super) fn job_by_id(conn: &Connection, id: JobId) -> Result<Read, StoreError> {
    query_jobs(
        conn,
        &format!("SELECT {COLUMNS} FROM jobs j WHERE j.id = ?"),
        &[Value::Integer(id.0)],
    )?
    .pop()
    .ok_or(StoreError::Task(
        "a job vanished within its transaction".into(),
    ))
}

pub(super) fn job_by_uuid(conn: &Connection, uuid: Uuid) -> Result<Read, StoreError> {
    query_jobs(
        conn,
        &format!("SELECT {COLUMNS} FROM jobs j WHERE j.uuid = ?"),
        &[Value::Text(uuid.to_string())],
    )?
    .pop()
    .ok_or_else(|| StoreError::NotFound {
        kind: Kind::Job,
        by: Ref::Uuid(uuid),
    })
}

/// Moves job `id` from one of `from` to `to`, stamping `column` (if any)
/// and `last_heartbeat`; whether it moved.
pub(super) fn transition(conn: &Connection, id: JobId, m: &Move) -> Result<bool, StoreError> {
    let (from, to, stamp, output) = (&m.from, m.to, m.stamp, m.output.as_ref());
    let t = to_text(now());
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let set_stamp = stamp.map(|c| format!(", {c} = ?1")).unwrap_or_default();
    let set_output = if output.is_some() {
        ", output = ?4"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE jobs SET status = ?2, modified = ?1, last_heartbeat = ?1{set_stamp}{set_output}
         WHERE id = ?3 AND status IN ({})",
        from.iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let output = output.map(|o| o.to_string());
    let n = match output {
        Some(o) => conn.prepare_cached(&sql)?.execute(params![t, to, id, o])?,
        None => conn.prepare_cached(&sql)?.execute(params![t, to, id])?,
    };
    Ok(n > 0)
}

/// Applies the timeout rules to job `id` now.
pub(super) fn expire(
    conn: &Connection,
    id: JobId,
    timeouts: &Timeouts,
) -> Result<Expiry, StoreError> {
    let job = job_by_id(conn, id)?.row;
    let (status, output) = match expiry(&job, timeouts, now()) {
        Ok(change) => change,
        Err(answer) => return Ok(answer),
    };
    let moved = transition(conn, id, &Move::end(ACTIVE, status, output))?;
    Ok(expired(moved, status))
}

/// Inserts a pending job for its spec (the fallback spec if none is named),
/// with its audit row; `run`: the project row id and adapter of a run's
/// job. Its row id, its spec's, and the job.
pub(super) fn insert_job(
    tx: &Connection,
    new: &NewJob,
    actor: &Actor,
    run: Option<(i64, crate::bmf::Adapter)>,
) -> Result<(JobId, i64, JobRow), StoreError> {
    let (spec_id, spec) = match &new.spec {
        Some(r) => items::find(tx, r)?,
        None => tx
            .prepare_cached(&format!(
                "SELECT id, {} FROM specs WHERE fallback IS NOT NULL",
                Specs::COLUMNS
            ))?
            .query_row([], |r| Ok((r.get(0)?, Specs::row_at(r, 1)?)))
            .optional()?
            .ok_or(StoreError::NoFallbackSpec)?,
    };
    if spec.archived.is_some() {
        return Err(StoreError::SpecArchivedForJob(spec.slug));
    }
    let uuid = new_uuid();
    let t = to_text(now());
    let id: JobId = tx
        .prepare_cached(
            "INSERT INTO jobs (uuid, status, spec_id, priority, config, timeout,
                               created, modified, project_id, adapter)
             VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8) RETURNING id",
        )?
        .query_row(
            params![
                uuid.to_string(),
                spec_id,
                new.priority,
                new.config.to_string(),
                new.timeout,
                t,
                run.map(|r| r.0),
                run.map(|r| r.1.as_str())
            ],
            |r| r.get(0),
        )?;
    let job = job_by_id(tx, id)?.row;
    let fields = serde_json::json!({
        "spec": spec.uuid, "spec_slug": spec.slug, "priority": new.priority,
        "config": new.config,
    });
    record(tx, actor, AuditAction::JobCreate, Some(uuid), None, fields)?;
    Ok((id, spec_id, job))
}

impl JobOps for SqliteStore {
    /// Creates a pending job for its spec (the fallback spec if none is
    /// named), with its audit row; runners waiting for that spec are told.
    async fn create_job(&self, new: NewJob, actor: &Actor) -> Result<JobRow, StoreError> {
        let actor = actor.clone();
        let (spec_id, job) = self
            .write(move |tx| insert_job(tx, &new, &actor, None).map(|(_, spec, job)| (spec, job)))
            .await?;
        self.publish(Event::JobPending {
            spec: SpecId(spec_id),
        });
        Ok(job)
    }

    /// One job, by UUID.
    async fn job(&self, uuid: Uuid) -> Result<JobRow, StoreError> {
        self.read(move |c| job_by_uuid(c, uuid).map(|r| r.row))
            .await
    }

    /// One page of the jobs matching `q` (and of runner `runner`'s only, if
    /// given), and how many match in all.
    async fn list_jobs(
        &self,
        runner: Option<RunnerRef>,
        q: JobListQuery,
    ) -> Result<(Vec<JobRow>, u64), StoreError> {
        self.scan(move |c| {
            let tx = c.unchecked_transaction()?;
            let mut filters = Vec::new();
            let mut args = Vec::new();
            if let Some(r) =
                runner
                    .as_ref()
                    .or(q.runner.as_ref().map(|r| r.clone().into()).as_ref())
            {
                let id = items::identify::<Runners>(&tx, r)?.id;
                filters.push("j.runner_id = ?".to_owned());
                args.push(Value::Integer(id));
            }
            if let Some(spec) = &q.spec {
                let id = items::identify::<Specs>(&tx, &spec.clone().into())?.id;
                filters.push("j.spec_id = ?".to_owned());
                args.push(Value::Integer(id));
            }
            if let Some(project) = &q.project {
                let id = items::identify::<Projects>(&tx, &project.clone().into())?.id;
                filters.push("j.project_id = ?".to_owned());
                args.push(Value::Integer(id));
            }
            if !q.statuses.is_empty() {
                let marks = vec!["?"; q.statuses.len()].join(", ");
                filters.push(format!("j.status IN ({marks})"));
                args.extend(q.statuses.iter().map(|s| Value::Text(s.clone())));
            }
            let where_sql = if filters.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", filters.join(" AND "))
            };
            let total: i64 = tx
                .prepare_cached(&format!("SELECT count(*) FROM jobs j{where_sql}"))?
                .query_row(params_from_iter(&args), |r| r.get(0))?;
            let order = match q.direction {
                Direction::Asc => "j.id ASC",
                Direction::Desc => "j.id DESC",
            };
            args.push(Value::Integer(i64::from(q.per_page)));
            args.push(Value::Integer(
                i64::try_from(q.offset()).unwrap_or(i64::MAX),
            ));
            let jobs = query_jobs(
                &tx,
                &format!(
                    "SELECT {} FROM jobs j{where_sql} ORDER BY {order} LIMIT ? OFFSET ?",
                    list_columns()
                ),
                &args,
            )?;
            tx.commit()?;
            Ok((
                jobs.into_iter().map(|r| r.row).collect(),
                u64::try_from(total).unwrap_or(0),
            ))
        })
        .await
    }

    /// Cancels a job that has not ended, with its audit row: a pending one
    /// at once; a claimed or running one's runner is told to stop it.
    async fn cancel_job(&self, uuid: Uuid, actor: &Actor) -> Result<JobRow, StoreError> {
        let actor = actor.clone();
        let (job, stops) = self
            .write(move |tx| {
                let read = job_by_uuid(tx, uuid)?;
                let cancel = Cancel::of(uuid, read.row.status)?;
                transition(tx, read.id, &cancel.moving())?;
                let job = job_by_id(tx, read.id)?.row;
                let (stops, audited) = (cancel.stops_runner(), cancel.audited);
                record(
                    tx,
                    &actor,
                    AuditAction::JobCancel,
                    Some(uuid),
                    None,
                    audited,
                )?;
                Ok((job, stops))
            })
            .await?;
        if let (Some(runner), true) = (job.runner, stops) {
            self.publish(Event::JobCanceled { runner, job: uuid });
        }
        Ok(job)
    }
}
