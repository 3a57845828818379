//! Project keys and user keys on SQLite: kept as SHA-256 only, listed,
//! renamed and revoked by their owner's path, found by their hash.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use uuid::Uuid;

use super::audit::record;
use super::projects::read_user;
use super::{SqliteStore, to_text, uuid_at};
use crate::store::error::StoreError;
use crate::store::model::read::ReadRow;
use crate::store::model::{
    Actor, KeyHolder, KeyHolderOwner, KeyOwner, KeyQuery, KeyRef, KeyRename, KeyRow, Kind, NewKey,
    RunnerKeyHash, now,
};
use crate::store::operations::KeyOps;
use crate::store::rules::KeyAudit;
use crate::store::sql::{KEY_COLUMNS, USER_COLUMNS};
use crate::validate::Ref;

/// The condition that a key (alias `k`) is `owner`'s, and its argument.
fn owner_filter(owner: KeyOwner) -> (&'static str, Value) {
    match owner {
        KeyOwner::Project(uuid) => (
            "k.project_id = (SELECT id FROM projects WHERE uuid = ?)",
            Value::Text(uuid.to_string()),
        ),
        KeyOwner::User(uuid) => (
            "k.user_id = (SELECT id FROM users WHERE uuid = ?)",
            Value::Text(uuid.to_string()),
        ),
    }
}

fn key(conn: &Connection, owner: KeyOwner, uuid: Uuid) -> Result<KeyRow, StoreError> {
    let (filter, arg) = owner_filter(owner);
    conn.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.uuid = ? AND {filter}"
    ))?
    .query_row(params![uuid.to_string(), arg], |r| KeyRow::read(r, 0))
    .optional()?
    .ok_or(StoreError::NotFound {
        kind: Kind::Key,
        by: Ref::Uuid(uuid),
    })
}

impl KeyOps for SqliteStore {
    /// Creates a key (its hash only), with its audit row.
    async fn create_key(&self, new: NewKey, actor: &Actor) -> Result<KeyRow, StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let (project, user) = match new.owner {
                KeyOwner::Project(uuid) => (Some(uuid.to_string()), None),
                KeyOwner::User(uuid) => (None, Some(uuid.to_string())),
            };
            let uuid = crate::store::model::new_uuid();
            tx.prepare_cached(
                "INSERT INTO api_keys (uuid, project_id, user_id, name, key_hash, creator,
                                       created, expires)
                 VALUES (?1, (SELECT id FROM projects WHERE uuid = ?2),
                         (SELECT id FROM users WHERE uuid = ?3), ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                uuid.to_string(),
                project,
                user,
                &*new.name,
                &new.hash.0[..],
                actor.user.map(|u| u.to_string()),
                to_text(new.created),
                to_text(new.expires)
            ])?;
            let row = key(tx, new.owner, uuid)?;
            let audit = KeyAudit::created(new.owner, &row);
            record(tx, &actor, audit.action, Some(uuid), None, audit.fields)?;
            Ok(row)
        })
        .await
    }

    /// One page of `owner`'s keys matching `q`, and how many match in all.
    async fn list_keys(
        &self,
        owner: KeyOwner,
        q: KeyQuery,
    ) -> Result<(Vec<KeyRow>, u64), StoreError> {
        self.scan(move |c| {
            let (filter, arg) = owner_filter(owner);
            let mut filters = vec![filter.to_owned()];
            let mut args = vec![arg];
            // Bencher's: `revoked=true` lists only revoked keys.
            filters.push(
                if q.revoked {
                    "k.revoked IS NOT NULL"
                } else {
                    "k.revoked IS NULL"
                }
                .to_owned(),
            );
            if let Some(name) = &q.name {
                filters.push("k.name = ?".to_owned());
                args.push(Value::Text(name.clone()));
            }
            if let Some(search) = &q.search {
                filters.push(
                    "(instr(fold(k.name), fold(?)) > 0 OR instr(k.uuid, lower(?)) > 0)".to_owned(),
                );
                args.extend([Value::Text(search.clone()), Value::Text(search.clone())]);
            }
            let order = if q.descending { "DESC" } else { "ASC" };
            let sql = format!(
                "SELECT {KEY_COLUMNS}, count(*) OVER () FROM api_keys k WHERE {}
                 ORDER BY k.name {order}, k.id {order} LIMIT {} OFFSET {}",
                filters.join(" AND "),
                q.per_page,
                u64::from(q.page - 1) * u64::from(q.per_page)
            );
            let mut total = 0u64;
            let rows = c
                .prepare(&sql)?
                .query_map(params_from_iter(&args), |r| {
                    total = r.get::<_, i64>(7)? as u64;
                    KeyRow::read(r, 0)
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            if rows.is_empty() && q.page > 1 {
                let count = format!(
                    "SELECT count(*) FROM api_keys k WHERE {}",
                    filters.join(" AND ")
                );
                total =
                    c.query_row(&count, params_from_iter(&args), |r| r.get::<_, i64>(0))? as u64;
            }
            Ok((rows, total))
        })
        .await
    }

    /// One of `owner`'s keys.
    async fn key(&self, key_ref: KeyRef) -> Result<KeyRow, StoreError> {
        let KeyRef { owner, uuid } = key_ref;
        self.read(move |c| key(c, owner, uuid)).await
    }

    /// Renames one of `owner`'s keys (audited if the name changed).
    async fn rename_key(&self, renamed: KeyRename, actor: &Actor) -> Result<KeyRow, StoreError> {
        let KeyRename {
            key: KeyRef { owner, uuid },
            name,
        } = renamed;
        let actor = actor.clone();
        self.write(move |tx| {
            let current = key(tx, owner, uuid)?;
            if current.name == *name {
                return Ok(current);
            }
            tx.prepare_cached("UPDATE api_keys SET name = ? WHERE uuid = ?")?
                .execute(params![&*name, uuid.to_string()])?;
            let audit = KeyAudit::renamed(owner, &name);
            record(tx, &actor, audit.action, Some(uuid), None, audit.fields)?;
            key(tx, owner, uuid)
        })
        .await
    }

    /// Revokes one of `owner`'s keys (revoking a revoked key keeps its
    /// first time).
    async fn revoke_key(&self, key_ref: KeyRef, actor: &Actor) -> Result<(), StoreError> {
        let KeyRef { owner, uuid } = key_ref;
        let actor = actor.clone();
        self.write(move |tx| {
            let current = key(tx, owner, uuid)?;
            if current.revoked.is_some() {
                return Ok(());
            }
            tx.prepare_cached("UPDATE api_keys SET revoked = ? WHERE uuid = ?")?
                .execute(params![to_text(now()), uuid.to_string()])?;
            let audit = KeyAudit::revoked(owner);
            record(tx, &actor, audit.action, Some(uuid), None, audit.fields)?;
            Ok(())
        })
        .await
    }

    /// The key with this hash and its owner, if any.
    async fn key_holder(&self, hash: RunnerKeyHash) -> Result<Option<KeyHolder>, StoreError> {
        self.read(move |c| {
            Ok(c.prepare_cached(&format!(
                "SELECT k.uuid, k.expires, k.revoked IS NOT NULL, p.uuid, p.slug, {USER_COLUMNS}
                 FROM api_keys k LEFT JOIN projects p ON p.id = k.project_id
                 LEFT JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?"
            ))?
            .query_row([&hash.0[..]], |r| {
                let owner = match r.get::<_, Option<String>>(4)? {
                    Some(slug) => KeyHolderOwner::Project {
                        uuid: uuid_at(r, 3)?,
                        slug,
                    },
                    None => KeyHolderOwner::User(read_user(r, 5)?),
                };
                Ok(KeyHolder {
                    key: uuid_at(r, 0)?,
                    expires: super::time_at(r, 1)?,
                    revoked: r.get(2)?,
                    owner,
                })
            })
            .optional()?)
        })
        .await
    }
}
