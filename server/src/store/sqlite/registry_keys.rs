//! The keys that sign registry tokens (see `model/registry_key.rs`).

use rusqlite::{Connection, Row, params};

use super::audit::record;
use super::{SqliteStore, opt_time_at, time_at, to_text};
use crate::store::error::StoreError;
use crate::store::model::{Actor, AuditAction, NewRegistryKey, RegistryKeyRow, now};
use crate::store::operations::RegistryKeyOps;

/// Makes the first registry key if the database has none yet (two
/// processes opening at once: the first insert wins).
pub(super) fn ensure_registry_key(conn: &Connection) -> rusqlite::Result<()> {
    let none: bool =
        conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM registry_keys)", [], |r| {
            r.get(0)
        })?;
    if none {
        let new = NewRegistryKey::generate()
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        conn.execute(
            "INSERT OR IGNORE INTO registry_keys (id, kid, private_key, certificate, created)
             VALUES (1, ?, ?, ?, ?)",
            params![new.kid, new.private_key, new.certificate, to_text(now())],
        )?;
    }
    Ok(())
}

fn key_row(r: &Row<'_>) -> rusqlite::Result<RegistryKeyRow> {
    Ok(RegistryKeyRow {
        id: r.get(0)?,
        kid: r.get(1)?,
        private_key: r.get::<_, Vec<u8>>(2)?.into(),
        certificate: r.get(3)?,
        created: time_at(r, 4)?,
        retired: opt_time_at(r, 5)?,
    })
}

impl RegistryKeyOps for SqliteStore {
    /// The keys not retired, newest first.
    async fn registry_keys(&self) -> Result<Vec<RegistryKeyRow>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, kid, private_key, certificate, created, retired FROM registry_keys
                 WHERE retired IS NULL ORDER BY id DESC",
            )?;
            let rows = stmt.query_map([], key_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Adds `new` as the newest key (it signs from now on).
    async fn rotate_registry_key(
        &self,
        new: NewRegistryKey,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO registry_keys (id, kid, private_key, certificate, created)
                 VALUES ((SELECT coalesce(max(id), 0) + 1 FROM registry_keys), ?, ?, ?, ?)",
                params![new.kid, new.private_key, new.certificate, to_text(now())],
            )?;
            record(
                tx,
                &actor,
                AuditAction::RegistryKeyRotate,
                None,
                None,
                serde_json::json!({ "kid": new.kid }),
            )?;
            Ok(())
        })
        .await
    }

    /// Retires every key but the newest; answers the IDs retired.
    async fn retire_registry_keys(&self, actor: &Actor) -> Result<Vec<String>, StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let retired: Vec<String> = tx
                .prepare(
                    "UPDATE registry_keys SET retired = ?
                     WHERE retired IS NULL AND id < (SELECT max(id) FROM registry_keys)
                     RETURNING kid",
                )?
                .query_map([to_text(now())], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if !retired.is_empty() {
                record(
                    tx,
                    &actor,
                    AuditAction::RegistryKeyRetire,
                    None,
                    None,
                    serde_json::json!({ "kids": retired }),
                )?;
            }
            Ok(retired)
        })
        .await
    }
}
