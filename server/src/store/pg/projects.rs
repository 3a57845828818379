//! Projects on PostgreSQL, the one organization, and users as keys and
//! reports name them (the twin of `../sqlite/projects.rs`). A project is an
//! item: its lookup, update and list are `items.rs`'s.
//!
//! Races: a slug is taken by `INSERT … ON CONFLICT (slug) DO NOTHING`, so
//! of two creates of one slug exactly one wins; a write that refers to a
//! project locks its row `FOR KEY SHARE` ([`lock_project`]) and a delete
//! locks it `FOR UPDATE`, so a write racing a delete either goes first or
//! finds the project gone (never a foreign-key error).

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::item::{Param, PgItem};
use super::items::{find, list_items};
use super::{PgStore, StoreError, Tx, now, record};
use crate::store::model::{
    Actor, AuditAction, Change, Kind, NewProject, OrgRow, ProjectChanges, ProjectRef, ProjectRow,
    Projects, UserRow, changes, new_uuid,
};
use crate::store::operations::ProjectOps;
use crate::store::sql::USER_COLUMNS;
use crate::validate::{ListQuery, Ref, generated_slug, slug_from_name};

impl PgItem for Projects {
    const COLUMNS: &'static str = "uuid, name, slug, url, visibility, archived, created, modified";

    fn own_columns(row: &ProjectRow) -> Vec<(&'static str, Param)> {
        vec![
            ("url", Box::new(row.url.clone())),
            ("visibility", Box::new(row.visibility.as_str())),
        ]
    }

    async fn apply_more(
        _tx: &Tx<'_>,
        _actor: &Actor,
        change: Change<'_, Projects>,
    ) -> Result<(), StoreError> {
        ProjectChanges::apply_own(change);
        Ok(())
    }
}

/// Makes the organization if the database has none yet (replicas starting
/// at once: the first insert wins, the others change nothing).
pub(super) async fn ensure_organization(
    client: &tokio_postgres::Client,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO organization (id, uuid, created) VALUES (1, $1, $2)
             ON CONFLICT (id) DO NOTHING",
            &[&new_uuid(), &now()],
        )
        .await
        .map(drop)
}

/// Tries to find a free generated slug before giving up (as SQLite).
const GENERATED_SLUG_ATTEMPTS: usize = 8;

/// Inserts project `new` with slug `slug`, with its audit row: its row id
/// and row, or `None` if the slug is taken (a racing insert of it waited
/// for, so exactly one wins).
pub(super) async fn insert_with_slug(
    tx: &Tx<'_>,
    new: &NewProject,
    slug: &str,
    actor: &Actor,
) -> Result<Option<(i64, ProjectRow)>, StoreError> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO projects (uuid, name, name_folded, slug, url, visibility, created,
                                   modified)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
             ON CONFLICT (slug) DO NOTHING
             RETURNING id, {}",
            Projects::COLUMNS
        ))
        .await?;
    let name: &str = &new.name;
    let args: [&(dyn ToSql + Sync); 7] = [
        &new_uuid(),
        &name,
        &name.to_lowercase(),
        &slug,
        &new.url,
        &new.visibility.as_str(),
        &now(),
    ];
    let Some(row) = tx.query_opt(&stmt, &args).await? else {
        return Ok(None);
    };
    let (id, row) = (row.try_get(0)?, Projects::row_at(&row, 1)?);
    record(
        tx,
        actor,
        AuditAction::ProjectCreate,
        Some(row.uuid),
        Some(&row.slug),
        changes(None, &row),
    )
    .await?;
    Ok(Some((id, row)))
}

/// Inserts project `new` (its slug given: taken is
/// [`StoreError::SlugTaken`]; or made from its name until one is free),
/// with its audit row.
pub(super) async fn insert_project(
    tx: &Tx<'_>,
    new: &NewProject,
    actor: &Actor,
) -> Result<(i64, ProjectRow), StoreError> {
    if let Some(slug) = new.slug.as_deref() {
        return insert_with_slug(tx, new, slug, actor)
            .await?
            .ok_or_else(|| StoreError::SlugTaken {
                kind: Kind::Project,
                slug: slug.to_owned(),
            });
    }
    let base = slug_from_name(&new.name);
    for i in 0..GENERATED_SLUG_ATTEMPTS {
        let slug = generated_slug(base.as_deref(), Kind::Project.name(), i);
        if let Some(found) = insert_with_slug(tx, new, &slug, actor).await? {
            return Ok(found);
        }
    }
    Err(StoreError::NoFreeSlug(GENERATED_SLUG_ATTEMPTS))
}

/// The row id of project `r`, its row locked `FOR KEY SHARE` until the
/// transaction ends: a delete under way is waited for (and then the
/// project is not found), and a delete after waits for this transaction.
pub(super) async fn lock_project(tx: &Tx<'_>, r: &ProjectRef) -> Result<i64, StoreError> {
    let (column, value): (&str, &(dyn ToSql + Sync)) = match r.by() {
        Ref::Uuid(uuid) => ("uuid", uuid),
        Ref::Slug(slug) => ("slug", slug),
    };
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT id FROM projects WHERE {column} = $1 FOR KEY SHARE"
        ))
        .await?;
    match tx.query_opt(&stmt, &[value]).await? {
        Some(row) => Ok(row.try_get(0)?),
        None => Err(StoreError::NotFound {
            kind: Kind::Project,
            by: r.by().clone(),
        }),
    }
}

/// A user by UUID or name: its row id and row.
pub(super) async fn user(c: &impl GenericClient, r: &Ref) -> Result<(i64, UserRow), StoreError> {
    let (column, value): (&str, &(dyn ToSql + Sync)) = match r {
        Ref::Uuid(uuid) => ("uuid", uuid),
        Ref::Slug(name) => ("name", name),
    };
    let stmt = c
        .prepare_cached(&format!(
            "SELECT id, {USER_COLUMNS} FROM users u WHERE {column} = $1"
        ))
        .await?;
    match c.query_opt(&stmt, &[value]).await? {
        Some(row) => Ok((row.try_get(0)?, read_user(&row, 1)?)),
        None => Err(StoreError::NotFound {
            kind: Kind::User,
            by: r.clone(),
        }),
    }
}

/// A user from [`USER_COLUMNS`], from `at` on.
pub(super) fn read_user(row: &tokio_postgres::Row, at: usize) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        uuid: row.try_get(at)?,
        name: row.try_get(at + 1)?,
        admin: row.try_get(at + 2)?,
    })
}

impl ProjectOps for PgStore {
    /// The organization that stands for this server.
    async fn organization(&self) -> Result<OrgRow, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT uuid, created FROM organization", &[])
            .await?;
        Ok(OrgRow {
            uuid: row.try_get(0)?,
            created: row.try_get(1)?,
        })
    }

    /// One page of projects matching `q`, and how many match in all (one
    /// statement: one snapshot for both).
    async fn list_projects(&self, q: ListQuery) -> Result<(Vec<ProjectRow>, u64), StoreError> {
        let client = self.client().await?;
        list_items::<Projects>(&client, &q).await
    }

    /// Creates a project.
    async fn create_project(
        &self,
        new: NewProject,
        actor: &Actor,
    ) -> Result<ProjectRow, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let (_, row) = insert_project(&tx, &new, actor).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Deletes a project with its keys, reports and named things; its jobs
    /// stay (without a project). Its jobs' rows are locked before its own:
    /// a runner's report on one of them (which holds the job, then the
    /// project) never waits on this delete while it waits on the report.
    async fn delete_project(&self, r: ProjectRef, actor: &Actor) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let (id, _) = find::<Projects>(&tx, &r, false).await?;
        tx.execute(
            "UPDATE jobs SET project_id = NULL WHERE project_id = $1",
            &[&id],
        )
        .await?;
        let (uuid, slug): (uuid::Uuid, String) = match tx
            .query_opt(
                "SELECT uuid, slug FROM projects WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?
        {
            Some(row) => (row.try_get(0)?, row.try_get(1)?),
            // Deleted meanwhile.
            None => {
                return Err(StoreError::NotFound {
                    kind: Kind::Project,
                    by: r.by().clone(),
                });
            }
        };
        tx.execute("DELETE FROM reports WHERE project_id = $1", &[&id])
            .await?;
        tx.execute("DELETE FROM projects WHERE id = $1", &[&id])
            .await?;
        record(
            &tx,
            actor,
            AuditAction::ProjectDelete,
            Some(uuid),
            Some(&slug),
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A user, by UUID or name.
    async fn user(&self, r: Ref) -> Result<UserRow, StoreError> {
        let client = self.client().await?;
        Ok(user(&client, &r).await?.1)
    }
}
