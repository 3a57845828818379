//! The signing key, users and API tokens on PostgreSQL (the twin of
//! `../sqlite/tokens.rs`). Each replica reads the one `signing_key` row and the
//! tokens' `revoked` from the shared database, so the 1 s bounds of a
//! revoked token and a rotated key hold across replicas as on one file.

use uuid::Uuid;

use super::{PgStore, StoreError, Tx, now, record};
use crate::random::random_bytes;
use crate::store::model::new_uuid;
use crate::store::model::{
    Actor, ApiTokenRow, AuditAction, NewApiToken, SIGNING_KEY_BYTES, SigningSecret, TokenPrincipal,
};
use crate::store::operations::TokenOps;

/// Generates the signing secret if the database has none yet (replicas
/// starting at once: the first insert wins, the others change nothing).
pub(super) async fn ensure_signing_key(
    client: &tokio_postgres::Client,
) -> Result<(), tokio_postgres::Error> {
    let secret = random_bytes::<SIGNING_KEY_BYTES>().to_vec();
    client
        .execute(
            "INSERT INTO signing_key (id, secret, created) VALUES (1, $1, $2)
             ON CONFLICT (id) DO NOTHING",
            &[&secret, &now()],
        )
        .await
        .map(drop)
}

async fn signing_secret(tx: &Tx<'_>) -> Result<SigningSecret, StoreError> {
    let stmt = tx
        .prepare_cached("SELECT generation, secret FROM signing_key WHERE id = 1")
        .await?;
    let row = tx.query_one(&stmt, &[]).await?;
    Ok(SigningSecret::new(row.try_get(0)?, row.try_get(1)?))
}

/// Creates user `name` if there is none, or promotes it to admin (as
/// SQLite's `ensure_user`, with the same audit rows). Racing creates of one
/// user: `ON CONFLICT` makes the loser read the winner's row.
async fn ensure_user(
    tx: &Tx<'_>,
    name: &str,
    admin: bool,
    actor: &Actor,
) -> Result<(i64, Uuid), StoreError> {
    let uuid = new_uuid();
    let inserted = tx
        .query_opt(
            "INSERT INTO users (uuid, name, admin, created) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO NOTHING RETURNING id",
            &[&uuid, &name, &admin, &now()],
        )
        .await?;
    if let Some(row) = inserted {
        record(
            tx,
            actor,
            AuditAction::UserCreate,
            Some(uuid),
            Some(name),
            serde_json::json!({ "name": name, "admin": admin }),
        )
        .await?;
        return Ok((row.try_get(0)?, uuid));
    }
    let row = tx
        .query_one(
            "SELECT id, uuid, admin FROM users WHERE name = $1 FOR UPDATE",
            &[&name],
        )
        .await?;
    let (id, uuid, was_admin): (i64, Uuid, bool) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if admin && !was_admin {
        tx.execute("UPDATE users SET admin = true WHERE id = $1", &[&id])
            .await?;
        record(
            tx,
            actor,
            AuditAction::UserPromote,
            Some(uuid),
            Some(name),
            serde_json::json!({ "admin": true }),
        )
        .await?;
    }
    Ok((id, uuid))
}

impl TokenOps for PgStore {
    /// The secret that signs API tokens, with its generation.
    async fn signing_secret(&self) -> Result<SigningSecret, StoreError> {
        let mut client = self.client().await?;
        let tx = client.build_transaction().read_only(true).start().await?;
        let secret = signing_secret(&tx).await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// Whether any admin user exists.
    async fn has_admin(&self) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_one("SELECT EXISTS (SELECT 1 FROM users WHERE admin)", &[])
            .await?
            .try_get(0)?)
    }

    /// Creates an API token for `user_name` (as `Store::issue_api_token`):
    /// the secret is read in the same transaction, after a share lock on
    /// its row, so a racing rotation commits either before (the token is
    /// signed with the new secret) or after (and revokes it).
    async fn issue_api_token(
        &self,
        new: NewApiToken,
        actor: &Actor,
    ) -> Result<(Uuid, String), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // A rotation (an UPDATE of this row) waits for this transaction,
        // and this one for a rotation under way: never in between.
        tx.execute("SELECT 1 FROM signing_key WHERE id = 1 FOR SHARE", &[])
            .await?;
        let (user_id, user) = ensure_user(&tx, &new.user_name, new.admin, actor).await?;
        let jti = new_uuid();
        tx.execute(
            "INSERT INTO api_tokens (uuid, user_id, created, expires) VALUES ($1, $2, $3, $4)",
            &[&jti, &user_id, &new.issued, &new.expires],
        )
        .await?;
        let audited = new.audited(user);
        record(
            &tx,
            actor,
            AuditAction::TokenCreate,
            Some(jti),
            None,
            audited,
        )
        .await?;
        let secret = signing_secret(&tx).await?;
        tx.commit().await?;
        Ok((jti, (new.sign)(secret.expose(), user, jti)))
    }

    /// The user behind an API token's `jti`, if the token is known.
    async fn token_principal(&self, jti: Uuid) -> Result<Option<TokenPrincipal>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT u.uuid, u.name, u.admin, t.revoked IS NOT NULL
                 FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.uuid = $1",
            )
            .await?;
        client
            .query_opt(&stmt, &[&jti])
            .await?
            .map(|r| {
                Ok(TokenPrincipal {
                    user: r.try_get(0)?,
                    user_name: r.try_get(1)?,
                    admin: r.try_get(2)?,
                    revoked: r.try_get(3)?,
                })
            })
            .transpose()
    }

    /// Every API token, oldest first.
    async fn list_api_tokens(&self) -> Result<Vec<ApiTokenRow>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT t.uuid, u.name, u.admin, t.created, t.expires, t.revoked
                 FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id",
                &[],
            )
            .await?;
        rows.iter().map(ApiTokenRow::read).collect()
    }

    /// Revokes an API token. Revoking a revoked token is a no-op.
    async fn revoke_api_token(&self, jti: Uuid, actor: &Actor) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let found = tx
            .execute(
                "UPDATE api_tokens SET revoked = coalesce(revoked, $1) WHERE uuid = $2",
                &[&now(), &jti],
            )
            .await?;
        if found == 0 {
            return Err(StoreError::ApiTokenNotFound(jti));
        }
        record(
            &tx,
            actor,
            AuditAction::TokenRevoke,
            Some(jti),
            None,
            serde_json::json!({"revoked": true}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the signing secret and revokes every API token, in one
    /// transaction (racing rotations serialise on the key's row: each
    /// counts the generation up once). Returns how many were revoked.
    async fn rotate_signing_key(&self, actor: &Actor) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let stamp = now();
        let secret = random_bytes::<SIGNING_KEY_BYTES>().to_vec();
        tx.execute(
            "UPDATE signing_key SET secret = $1, created = $2, generation = generation + 1
             WHERE id = 1",
            &[&secret, &stamp],
        )
        .await?;
        let revoked = tx
            .execute(
                "UPDATE api_tokens SET revoked = $1 WHERE revoked IS NULL",
                &[&stamp],
            )
            .await?;
        let revoked = usize::try_from(revoked).unwrap_or(usize::MAX);
        record(
            &tx,
            actor,
            AuditAction::KeyRotate,
            None,
            None,
            serde_json::json!({"api_tokens_revoked": revoked}),
        )
        .await?;
        tx.commit().await?;
        Ok(revoked)
    }
}
