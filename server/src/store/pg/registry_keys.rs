//! The keys that sign registry tokens on PostgreSQL (the twin of
//! `../sqlite/registry_keys.rs`): every replica signs with the newest.

use tokio_postgres::Row;

use super::{PgStore, StoreError, now, record};
use crate::store::model::{Actor, AuditAction, NewRegistryKey, RegistryKeyRow};
use crate::store::operations::RegistryKeyOps;

/// Makes the first registry key if the database has none yet (replicas
/// starting at once: the first insert wins, the others change nothing).
pub(super) async fn ensure_registry_key(client: &tokio_postgres::Client) -> anyhow::Result<()> {
    let none: bool = client
        .query_one("SELECT NOT EXISTS (SELECT 1 FROM registry_keys)", &[])
        .await?
        .try_get(0)?;
    if none {
        let new = NewRegistryKey::generate()?;
        client
            .execute(
                "INSERT INTO registry_keys (id, kid, private_key, certificate, created)
                 VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                &[&new.kid, &new.private_key, &new.certificate, &now()],
            )
            .await?;
    }
    Ok(())
}

fn key_row(r: &Row) -> Result<RegistryKeyRow, tokio_postgres::Error> {
    Ok(RegistryKeyRow {
        id: r.try_get(0)?,
        kid: r.try_get(1)?,
        private_key: r.try_get::<_, Vec<u8>>(2)?.into(),
        certificate: r.try_get(3)?,
        created: r.try_get(4)?,
        retired: r.try_get(5)?,
    })
}

impl RegistryKeyOps for PgStore {
    async fn registry_keys(&self) -> Result<Vec<RegistryKeyRow>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, kid, private_key, certificate, created, retired FROM registry_keys
                 WHERE retired IS NULL ORDER BY id DESC",
            )
            .await?;
        let rows = client.query(&stmt, &[]).await?;
        Ok(rows.iter().map(key_row).collect::<Result<_, _>>()?)
    }

    /// Racing rotations: both read one max, the second insert's key is a
    /// duplicate and fails (an admin runs it again).
    async fn rotate_registry_key(
        &self,
        new: NewRegistryKey,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO registry_keys (id, kid, private_key, certificate, created)
             VALUES ((SELECT coalesce(max(id), 0) + 1 FROM registry_keys), $1, $2, $3, $4)",
            &[&new.kid, &new.private_key, &new.certificate, &now()],
        )
        .await?;
        record(
            &tx,
            actor,
            AuditAction::RegistryKeyRotate,
            None,
            None,
            serde_json::json!({ "kid": new.kid }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn retire_registry_keys(&self, actor: &Actor) -> Result<Vec<String>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let retired: Vec<String> = tx
            .query(
                "UPDATE registry_keys SET retired = $1
                 WHERE retired IS NULL AND id < (SELECT max(id) FROM registry_keys)
                 RETURNING kid",
                &[&now()],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        if !retired.is_empty() {
            record(
                &tx,
                actor,
                AuditAction::RegistryKeyRetire,
                None,
                None,
                serde_json::json!({ "kids": retired }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(retired)
    }
}
