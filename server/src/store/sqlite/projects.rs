//! Projects on SQLite, the one organization, and users as keys and
//! reports name them.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};

use super::audit::record_delete;
use super::item::SqliteItem;
use super::items;
use super::{SqliteStore, to_text};
use crate::store::error::StoreError;
use crate::store::model::{
    Actor, AuditAction, Kind, NewProject, OrgRow, ProjectChanges, ProjectRef, ProjectRow, Projects,
    UserRow, new_uuid, now,
};
use crate::store::operations::ProjectOps;
use crate::store::sql::USER_COLUMNS;
use crate::validate::{ListQuery, Ref};

impl SqliteItem for Projects {
    const COLUMNS: &'static str = "uuid, name, slug, url, visibility, archived, created, modified";

    fn own_columns(row: &ProjectRow) -> Vec<(&'static str, Value)> {
        vec![
            ("url", row.url.clone().into()),
            (
                "visibility",
                Value::Text(row.visibility.as_str().to_owned()),
            ),
        ]
    }

    fn apply_more(
        _conn: &Connection,
        _actor: &Actor,
        change: crate::store::model::Change<'_, Projects>,
    ) -> Result<(), StoreError> {
        ProjectChanges::apply_own(change);
        Ok(())
    }
}

/// Makes the organization if the database has none yet (its UUID is made
/// here, once).
pub(super) fn ensure_organization(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO organization (id, uuid, created) VALUES (1, ?, ?)",
        params![new_uuid().to_string(), to_text(now())],
    )
    .map(drop)
}

/// Inserts project `new` (its slug given, or made from its name), with its
/// audit row.
pub(super) fn insert_project(
    conn: &Connection,
    new: &NewProject,
    actor: &Actor,
) -> Result<(i64, ProjectRow), StoreError> {
    let columns = Projects::COLUMNS;
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO projects (uuid, name, name_folded, slug, url, visibility, created, modified)
         VALUES (?1, ?2, fold(?2), ?3, ?4, ?5, ?6, ?6) RETURNING {columns}"
    ))?;
    let created = to_text(now());
    let attempt = |slug: &str| {
        insert.query_row(
            params![
                new_uuid().to_string(),
                &*new.name,
                slug,
                new.url,
                new.visibility.as_str(),
                created
            ],
            |r| Projects::row_at(r, 0),
        )
    };
    let row = items::create::<Projects>(conn, actor, new.slug.as_deref(), &new.name, attempt)?;
    let id = conn.query_row(
        "SELECT id FROM projects WHERE uuid = ?",
        [row.uuid.to_string()],
        |r| r.get(0),
    )?;
    Ok((id, row))
}

/// A user by UUID or name.
pub(super) fn user(conn: &Connection, r: &Ref) -> Result<(i64, UserRow), StoreError> {
    let (filter, arg) = match r {
        Ref::Uuid(uuid) => ("uuid", uuid.to_string()),
        Ref::Slug(name) => ("name", name.clone()),
    };
    conn.prepare_cached(&format!(
        "SELECT id, {USER_COLUMNS} FROM users u WHERE {filter} = ?"
    ))?
    .query_row([arg], |row| Ok((row.get(0)?, read_user(row, 1)?)))
    .optional()?
    .ok_or_else(|| StoreError::NotFound {
        kind: Kind::User,
        by: r.clone(),
    })
}

/// A user from [`USER_COLUMNS`], from `at` on.
pub(super) fn read_user(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        uuid: super::uuid_at(row, at)?,
        name: row.get(at + 1)?,
        admin: row.get(at + 2)?,
    })
}

impl ProjectOps for SqliteStore {
    /// The organization that stands for this server.
    async fn organization(&self) -> Result<OrgRow, StoreError> {
        self.read(|c| {
            Ok(
                c.query_row("SELECT uuid, created FROM organization", [], |r| {
                    Ok(OrgRow {
                        uuid: super::uuid_at(r, 0)?,
                        created: super::time_at(r, 1)?,
                    })
                })?,
            )
        })
        .await
    }

    /// One page of projects matching `q`, and how many match in all.
    async fn list_projects(&self, q: ListQuery) -> Result<(Vec<ProjectRow>, u64), StoreError> {
        self.scan(move |c| items::list::<Projects>(c, &q)).await
    }

    /// Creates a project.
    async fn create_project(
        &self,
        new: NewProject,
        actor: &Actor,
    ) -> Result<ProjectRow, StoreError> {
        let actor = actor.clone();
        self.write(move |tx| insert_project(tx, &new, &actor).map(|(_, row)| row))
            .await
    }

    /// Deletes a project with its keys, reports and named things; its jobs
    /// stay (without a project).
    async fn delete_project(&self, r: ProjectRef, actor: &Actor) -> Result<(), StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let found = items::identify(tx, &r)?;
            tx.prepare_cached("DELETE FROM reports WHERE project_id = ?")?
                .execute([found.id])?;
            tx.prepare_cached("DELETE FROM projects WHERE id = ?")?
                .execute([found.id])?;
            record_delete(
                tx,
                &actor,
                AuditAction::ProjectDelete,
                (found.uuid, &found.slug),
            )?;
            Ok(())
        })
        .await
    }

    /// A user, by UUID or name.
    async fn user(&self, r: Ref) -> Result<UserRow, StoreError> {
        self.read(move |c| user(c, &r).map(|(_, u)| u)).await
    }
}
