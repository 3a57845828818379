//! Jobs on PostgreSQL: create, read, list and cancel (the twin of
//! `../sqlite/jobs.rs`); what a runner's channel does is in [`super::claims`].

use tokio_postgres::Row;
use uuid::Uuid;

use super::item::PgItem;
use super::items::find;
use super::{PgStore, StoreError, Tx, now, record};
use crate::store::model::events::Event;
use crate::store::model::new_uuid;
use crate::store::model::{
    Actor, AuditAction, JobId, JobRow, Kind, NewJob, ProjectRef, Projects, RunnerRef, SpecId,
    SpecRef, Specs,
};
use crate::store::operations::JobOps;
use crate::store::rules::{Cancel, Claimed, Move};
use crate::validate::{Direction, JobListQuery, Ref};

/// The columns [`job_at`] reads; its spec is read by its id.
pub(super) const COLUMNS: &str = "j.id, j.uuid, j.status, j.spec_id, j.config, \
    (SELECT uuid FROM runners WHERE runners.id = j.runner_id), j.claimed, j.started, \
    j.completed, j.created, j.modified, j.output, j.priority, j.last_heartbeat, j.timeout, \
    j.runner_id, j.adapter, (SELECT uuid FROM projects WHERE projects.id = j.project_id)";

/// [`COLUMNS`] for a list of jobs, which never carries a job's output:
/// `NULL::text` in its place, so that a page does not even read it.
fn list_columns() -> String {
    COLUMNS.replacen("j.output", "NULL::text", 1)
}

/// A job's row id, its spec's row id, and the job with its spec.
pub(super) async fn job_at(tx: &Tx<'_>, row: &Row) -> Result<Claimed, StoreError> {
    let spec_id: SpecId = row.try_get(3)?;
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {} FROM specs WHERE id = $1",
            Specs::COLUMNS
        ))
        .await?;
    let spec = Specs::row_at(&tx.query_one(&stmt, &[&spec_id]).await?, 0)?;
    Ok(Claimed {
        id: row.try_get(0)?,
        spec_id,
        job: JobRow::read(row, spec)?,
    })
}

pub(super) async fn job_by_uuid(tx: &Tx<'_>, uuid: Uuid) -> Result<Claimed, StoreError> {
    let stmt = tx
        .prepare_cached(&format!("SELECT {COLUMNS} FROM jobs j WHERE j.uuid = $1"))
        .await?;
    let row = tx
        .query_opt(&stmt, &[&uuid])
        .await?
        .ok_or(StoreError::NotFound {
            kind: Kind::Job,
            by: Ref::Uuid(uuid),
        })?;
    job_at(tx, &row).await
}

/// Moves job `id` from one of `from` to `to`, stamping `stamp` (a column,
/// if any) and `last_heartbeat`; whether it moved. One conditional write:
/// its row lock makes racing transitions apply one after the other, and
/// the second finds the status it left gone.
pub(super) async fn transition(tx: &Tx<'_>, id: JobId, m: &Move) -> Result<bool, StoreError> {
    let (from, to, stamp, output) = (&m.from, m.to, m.stamp, m.output.as_ref());
    let set_stamp = stamp.map(|c| format!(", {c} = $1")).unwrap_or_default();
    let set_output = if output.is_some() {
        ", output = $5"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE jobs SET status = $2, modified = $1, last_heartbeat = $1{set_stamp}{set_output}
         WHERE id = $3 AND status = ANY($4)"
    );
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let stmt = tx.prepare_cached(&sql).await?;
    let n = match output {
        Some(o) => {
            let text = o.to_string();
            tx.execute(&stmt, &[&now(), &to.as_str(), &id, &from, &text])
                .await?
        }
        None => {
            tx.execute(&stmt, &[&now(), &to.as_str(), &id, &from])
                .await?
        }
    };
    Ok(n > 0)
}

/// A runner's row id, by reference.
async fn runner_id(tx: &Tx<'_>, r: &RunnerRef) -> Result<i64, StoreError> {
    let row = match r.by() {
        Ref::Uuid(uuid) => {
            tx.query_opt("SELECT id FROM runners WHERE uuid = $1", &[uuid])
                .await?
        }
        Ref::Slug(slug) => {
            tx.query_opt("SELECT id FROM runners WHERE slug = $1", &[slug])
                .await?
        }
    };
    let row = row.ok_or_else(|| StoreError::NotFound {
        kind: Kind::Runner,
        by: r.by().clone(),
    })?;
    Ok(row.try_get(0)?)
}

pub(super) async fn job_by_id(tx: &Tx<'_>, id: JobId) -> Result<Claimed, StoreError> {
    let stmt = tx
        .prepare_cached(&format!("SELECT {COLUMNS} FROM jobs j WHERE j.id = $1"))
        .await?;
    job_at(tx, &tx.query_one(&stmt, &[&id]).await?).await
}

/// Inserts a pending job for its spec (the fallback spec if none is named),
/// with its audit row; `run`: the project row id and adapter of a run's
/// job. Its row id, its spec's, and the job. (The caller notifies
/// [`Event::JobPending`] in its transaction.)
pub(super) async fn insert_job(
    tx: &Tx<'_>,
    new: &NewJob,
    actor: &Actor,
    run: Option<(i64, crate::bmf::Adapter)>,
) -> Result<(JobId, SpecId, JobRow), StoreError> {
    let (spec_id, spec) = match &new.spec {
        Some(r) => find::<Specs>(tx, r, false).await?,
        None => {
            let sql = format!(
                "SELECT id, {} FROM specs WHERE fallback IS NOT NULL",
                Specs::COLUMNS
            );
            let row = tx
                .query_opt(&sql, &[])
                .await?
                .ok_or(StoreError::NoFallbackSpec)?;
            (row.try_get(0)?, Specs::row_at(&row, 1)?)
        }
    };
    if spec.archived.is_some() {
        return Err(StoreError::SpecArchivedForJob(spec.slug));
    }
    let uuid = new_uuid();
    let t = now();
    let (project, adapter) = (run.map(|r| r.0), run.map(|r| r.1.as_str()));
    let stmt = tx
        .prepare_cached(
            "INSERT INTO jobs (uuid, status, spec_id, priority, config, timeout, created,
                               modified, project_id, adapter)
             VALUES ($1, 'pending', $2, $3, $4, $5, $6, $6, $7, $8) RETURNING id",
        )
        .await?;
    let id: JobId = tx
        .query_one(
            &stmt,
            &[
                &uuid,
                &spec_id,
                &new.priority,
                &new.config,
                &i64::from(new.timeout),
                &t,
                &project,
                &adapter,
            ],
        )
        .await?
        .try_get(0)?;
    let job = job_by_id(tx, id).await?.job;
    let fields = serde_json::json!({
        "spec": spec.uuid, "spec_slug": spec.slug, "priority": new.priority,
        "config": new.config,
    });
    record(tx, actor, AuditAction::JobCreate, Some(uuid), None, fields).await?;
    Ok((id, SpecId(spec_id), job))
}

impl JobOps for PgStore {
    /// Creates a pending job for its spec (the fallback spec if none is
    /// named), with its audit row; runners waiting for that spec, on every
    /// replica, are told when it commits.
    async fn create_job(&self, new: NewJob, actor: &Actor) -> Result<JobRow, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let (_, spec, job) = insert_job(&tx, &new, actor, None).await?;
        super::events::notify(&tx, &Event::JobPending { spec }).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// One job, by UUID.
    async fn job(&self, uuid: Uuid) -> Result<JobRow, StoreError> {
        let mut client = self.client().await?;
        let tx = client.build_transaction().read_only(true).start().await?;
        let job = job_by_uuid(&tx, uuid).await?.job;
        tx.commit().await?;
        Ok(job)
    }

    /// One page of the jobs matching `q` (and of runner `runner`'s only, if
    /// given), and how many match in all, in one snapshot.
    async fn list_jobs(
        &self,
        runner: Option<RunnerRef>,
        q: JobListQuery,
    ) -> Result<(Vec<JobRow>, u64), StoreError> {
        let mut client = self.client().await?;
        let tx = super::snapshot(&mut client).await?;
        let mut filters = Vec::new();
        let mut args: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = Vec::new();
        let named: Option<RunnerRef> = runner.or(q.runner.clone().map(Into::into));
        if let Some(r) = &named {
            args.push(Box::new(runner_id(&tx, r).await?));
            filters.push(format!("j.runner_id = ${}", args.len()));
        }
        if let Some(spec) = &q.spec {
            let (id, _) = find::<Specs>(&tx, &SpecRef::from(spec.clone()), false).await?;
            args.push(Box::new(id));
            filters.push(format!("j.spec_id = ${}", args.len()));
        }
        if let Some(project) = &q.project {
            let (id, _) = find::<Projects>(&tx, &ProjectRef::from(project.clone()), false).await?;
            args.push(Box::new(id));
            filters.push(format!("j.project_id = ${}", args.len()));
        }
        if !q.statuses.is_empty() {
            args.push(Box::new(q.statuses.clone()));
            filters.push(format!("j.status = ANY(${})", args.len()));
        }
        let where_sql = if filters.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", filters.join(" AND "))
        };
        let total: i64 = tx
            .query_one(
                &format!("SELECT count(*) FROM jobs j{where_sql}"),
                &super::items::params(&args),
            )
            .await?
            .try_get(0)?;
        let order = match q.direction {
            Direction::Asc => "j.id ASC",
            Direction::Desc => "j.id DESC",
        };
        let (limit, offset) = (args.len() + 1, args.len() + 2);
        let per_page = i64::from(q.per_page);
        let skip = i64::try_from(q.offset()).unwrap_or(i64::MAX);
        let mut page_args = super::items::params(&args);
        page_args.push(&per_page);
        page_args.push(&skip);
        let rows = tx
            .query(
                &format!(
                    "SELECT {} FROM jobs j{where_sql} ORDER BY {order}
                     LIMIT ${limit} OFFSET ${offset}",
                    list_columns()
                ),
                &page_args,
            )
            .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            jobs.push(job_at(&tx, row).await?.job);
        }
        tx.commit().await?;
        Ok((jobs, u64::try_from(total).unwrap_or(0)))
    }

    /// Cancels a job that has not ended, with its audit row: a pending one
    /// at once; a claimed or running one's runner, on whichever replica
    /// holds its channel, is told to stop it.
    async fn cancel_job(&self, uuid: Uuid, actor: &Actor) -> Result<JobRow, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Locked: a claim or report racing the cancel waits, or went first.
        tx.execute("SELECT 1 FROM jobs WHERE uuid = $1 FOR UPDATE", &[&uuid])
            .await?;
        let read = job_by_uuid(&tx, uuid).await?;
        let cancel = Cancel::of(uuid, read.job.status)?;
        transition(&tx, read.id, &cancel.moving()).await?;
        let job = job_by_id(&tx, read.id).await?.job;
        let (stops, audited) = (cancel.stops_runner(), cancel.audited);
        record(
            &tx,
            actor,
            AuditAction::JobCancel,
            Some(uuid),
            None,
            audited,
        )
        .await?;
        if let (Some(runner), true) = (job.runner, stops) {
            super::events::notify(&tx, &Event::JobCanceled { runner, job: uuid }).await?;
        }
        tx.commit().await?;
        Ok(job)
    }
}
