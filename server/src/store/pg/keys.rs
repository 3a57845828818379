//! Project keys and user keys on PostgreSQL (the twin of
//! `../sqlite/keys.rs`): kept as SHA-256 only, listed, renamed and revoked
//! by their owner's path, found by their hash. A rename or a revoke locks
//! the key's row first: racing ones apply one after the other.
//!
//! A list's `search` matches the name as SQLite's `fold()` does (Rust's
//! `to_lowercase`, which no PostgreSQL function is), so a search reads the
//! owner's keys the other filters keep and matches them here; a list
//! without one is paged by PostgreSQL.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::projects::read_user;
use super::{PgStore, StoreError, now, record};
use crate::store::model::read::ReadRow;
use crate::store::model::{
    Actor, KeyHolder, KeyHolderOwner, KeyOwner, KeyQuery, KeyRef, KeyRename, KeyRow, Kind, NewKey,
    RunnerKeyHash, new_uuid,
};
use crate::store::operations::KeyOps;
use crate::store::rules::KeyAudit;
use crate::store::sql::{KEY_COLUMNS, USER_COLUMNS};
use crate::validate::Ref;

/// The condition that a key (alias `k`) is `owner`'s (its UUID the
/// statement's first parameter), and that UUID.
fn owner_filter(owner: KeyOwner) -> (&'static str, Uuid) {
    match owner {
        KeyOwner::Project(uuid) => (
            "k.project_id = (SELECT id FROM projects WHERE uuid = $1)",
            uuid,
        ),
        KeyOwner::User(uuid) => ("k.user_id = (SELECT id FROM users WHERE uuid = $1)", uuid),
    }
}

/// One of `owner`'s keys; `lock`: its row locked until the transaction
/// ends.
async fn key(
    c: &impl GenericClient,
    owner: KeyOwner,
    uuid: Uuid,
    lock: bool,
) -> Result<KeyRow, StoreError> {
    let (filter, owner_uuid) = owner_filter(owner);
    let lock = if lock { " FOR UPDATE OF k" } else { "" };
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k WHERE {filter} AND k.uuid = $2{lock}"
        ))
        .await?;
    match c.query_opt(&stmt, &[&owner_uuid, &uuid]).await? {
        Some(row) => KeyRow::read(&row, 0),
        None => Err(StoreError::NotFound {
            kind: Kind::Key,
            by: Ref::Uuid(uuid),
        }),
    }
}

/// Whether key `row` matches `search` as SQLite's list matches it: in its
/// name, both folded (`fold()`), or in its UUID (`search` lowered by
/// SQLite's `lower()`, ASCII only).
fn matches(row: &KeyRow, search: &str) -> bool {
    row.name.to_lowercase().contains(&search.to_lowercase())
        || row.uuid.to_string().contains(&search.to_ascii_lowercase())
}

impl KeyOps for PgStore {
    /// Creates a key (its hash only), with its audit row.
    async fn create_key(&self, new: NewKey, actor: &Actor) -> Result<KeyRow, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let (project, user) = match new.owner {
            KeyOwner::Project(uuid) => (Some(uuid), None),
            KeyOwner::User(uuid) => (None, Some(uuid)),
        };
        let uuid = new_uuid();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO api_keys (uuid, project_id, user_id, name, key_hash, creator,
                                       created, expires)
                 VALUES ($1, (SELECT id FROM projects WHERE uuid = $2),
                         (SELECT id FROM users WHERE uuid = $3), $4, $5, $6, $7, $8)",
            )
            .await?;
        let name: &str = &new.name;
        let hash: &[u8] = &new.hash.0;
        let created = chrono::SubsecRound::trunc_subsecs(new.created, 6);
        let expires = chrono::SubsecRound::trunc_subsecs(new.expires, 6);
        let args: [&(dyn ToSql + Sync); 8] = [
            &uuid,
            &project,
            &user,
            &name,
            &hash,
            &actor.user,
            &created,
            &expires,
        ];
        tx.execute(&stmt, &args).await?;
        let row = key(&tx, new.owner, uuid, false).await?;
        let audit = KeyAudit::created(new.owner, &row);
        record(&tx, actor, audit.action, Some(uuid), None, audit.fields).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// One page of `owner`'s keys matching `q`, and how many match in all,
    /// in one snapshot.
    async fn list_keys(
        &self,
        owner: KeyOwner,
        q: KeyQuery,
    ) -> Result<(Vec<KeyRow>, u64), StoreError> {
        let (filter, owner_uuid) = owner_filter(owner);
        let mut filters = vec![filter.to_owned()];
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&owner_uuid];
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
            args.push(name);
            filters.push(format!("k.name = ${}", args.len()));
        }
        let filter = filters.join(" AND ");
        let order = if q.descending { "DESC" } else { "ASC" };
        let per_page = usize::try_from(q.per_page).unwrap_or(usize::MAX);
        let skip = u64::from(q.page.saturating_sub(1)) * u64::from(q.per_page);
        let client = self.client().await?;
        if let Some(search) = &q.search {
            let rows = client
                .query(
                    &format!(
                        "SELECT {KEY_COLUMNS} FROM api_keys k WHERE {filter}
                         ORDER BY k.name {order}, k.id {order}"
                    ),
                    &args,
                )
                .await?;
            let mut found = Vec::new();
            for row in &rows {
                let key = KeyRow::read(row, 0)?;
                if matches(&key, search) {
                    found.push(key);
                }
            }
            let total = found.len() as u64;
            let page = found
                .into_iter()
                .skip(usize::try_from(skip).unwrap_or(usize::MAX))
                .take(per_page)
                .collect();
            return Ok((page, total));
        }
        // The count's one row, joined to the page's rows: a page past the
        // end is that row alone, and still carries the count.
        let (limit, offset) = (
            i64::from(q.per_page),
            i64::try_from(skip).unwrap_or(i64::MAX),
        );
        let n = args.len();
        args.push(&limit);
        args.push(&offset);
        let rows = client
            .query(
                &format!(
                    "WITH page AS (
                         SELECT {KEY_COLUMNS}, k.id AS page_id FROM api_keys k WHERE {filter}
                         ORDER BY k.name {order}, k.id {order} LIMIT ${} OFFSET ${})
                     SELECT page.*, total.n
                       FROM (SELECT count(*) FROM api_keys k WHERE {filter}) AS total (n)
                       LEFT JOIN page ON true
                      ORDER BY page.name {order}, page.page_id {order}",
                    n + 1,
                    n + 2
                ),
                &args,
            )
            .await?;
        let mut total = 0;
        let mut page = Vec::with_capacity(rows.len());
        for row in &rows {
            total = row.try_get::<_, i64>(8)?;
            if row.try_get::<_, Option<i64>>(7)?.is_some() {
                page.push(KeyRow::read(row, 0)?);
            }
        }
        Ok((page, u64::try_from(total).unwrap_or(0)))
    }

    /// One of `owner`'s keys.
    async fn key(&self, key_ref: KeyRef) -> Result<KeyRow, StoreError> {
        let KeyRef { owner, uuid } = key_ref;
        let client = self.client().await?;
        key(&client, owner, uuid, false).await
    }

    /// Renames one of `owner`'s keys (audited if the name changed).
    async fn rename_key(&self, renamed: KeyRename, actor: &Actor) -> Result<KeyRow, StoreError> {
        let KeyRename {
            key: KeyRef { owner, uuid },
            name,
        } = renamed;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let current = key(&tx, owner, uuid, true).await?;
        if current.name == *name {
            return Ok(current);
        }
        let new_name: &str = &name;
        tx.execute(
            "UPDATE api_keys SET name = $1 WHERE uuid = $2",
            &[&new_name, &uuid],
        )
        .await?;
        let audit = KeyAudit::renamed(owner, &name);
        record(&tx, actor, audit.action, Some(uuid), None, audit.fields).await?;
        let row = key(&tx, owner, uuid, false).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Revokes one of `owner`'s keys (revoking a revoked key keeps its
    /// first time).
    async fn revoke_key(&self, key_ref: KeyRef, actor: &Actor) -> Result<(), StoreError> {
        let KeyRef { owner, uuid } = key_ref;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let current = key(&tx, owner, uuid, true).await?;
        if current.revoked.is_some() {
            return Ok(());
        }
        tx.execute(
            "UPDATE api_keys SET revoked = $1 WHERE uuid = $2",
            &[&now(), &uuid],
        )
        .await?;
        let audit = KeyAudit::revoked(owner);
        record(&tx, actor, audit.action, Some(uuid), None, audit.fields).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The key with this hash and its owner, if any.
    async fn key_holder(&self, hash: RunnerKeyHash) -> Result<Option<KeyHolder>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT k.uuid, k.expires, k.revoked IS NOT NULL, p.uuid, p.slug, {USER_COLUMNS}
                 FROM api_keys k LEFT JOIN projects p ON p.id = k.project_id
                 LEFT JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1"
            ))
            .await?;
        let hash: &[u8] = &hash.0;
        let Some(r) = client.query_opt(&stmt, &[&hash]).await? else {
            return Ok(None);
        };
        let owner = match r.try_get::<_, Option<String>>(4)? {
            Some(slug) => KeyHolderOwner::Project {
                uuid: r.try_get(3)?,
                slug,
            },
            None => KeyHolderOwner::User(read_user(&r, 5)?),
        };
        Ok(Some(KeyHolder {
            key: r.try_get(0)?,
            expires: r.try_get(1)?,
            revoked: r.try_get(2)?,
            owner,
        }))
    }
}
