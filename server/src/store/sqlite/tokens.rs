//! The signing key, users and API tokens.

use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::audit::record;
use super::{SqliteStore, to_text, uuid_at};
use crate::random::random_bytes;
use crate::store::error::StoreError;
use crate::store::model::{
    Actor, ApiTokenRow, AuditAction, NewApiToken, SIGNING_KEY_BYTES, SigningSecret, TokenPrincipal,
};
use crate::store::model::{new_uuid, now};
use crate::store::operations::TokenOps;

/// Generates the signing secret if the database has none yet.
pub(super) fn ensure_signing_key(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO signing_key (id, secret, created) VALUES (1, ?, ?)",
        params![random_bytes::<SIGNING_KEY_BYTES>().to_vec(), to_text(now())],
    )
    .map(drop)
}

fn signing_secret(conn: &Connection) -> rusqlite::Result<SigningSecret> {
    conn.prepare_cached("SELECT generation, secret FROM signing_key WHERE id = 1")?
        .query_row([], |r| Ok(SigningSecret::new(r.get(0)?, r.get(1)?)))
}

/// Creates user `name` if there is none (recorded as `user.create`), or
/// promotes it to admin if `admin` and it is not one yet (`user.promote`);
/// an admin is never demoted here, and an unchanged user records nothing.
fn ensure_user(
    conn: &Connection,
    name: &str,
    admin: bool,
    actor: &Actor,
) -> Result<(i64, Uuid), StoreError> {
    let existing = conn
        .prepare_cached("SELECT id, uuid, admin FROM users WHERE name = ?")?
        .query_row([name], |r| {
            Ok((r.get(0)?, uuid_at(r, 1)?, r.get::<_, bool>(2)?))
        })
        .optional()?;
    match existing {
        Some((id, uuid, was_admin)) => {
            if admin && !was_admin {
                conn.prepare_cached("UPDATE users SET admin = 1 WHERE id = ?")?
                    .execute([id])?;
                record(
                    conn,
                    actor,
                    AuditAction::UserPromote,
                    Some(uuid),
                    Some(name),
                    serde_json::json!({ "admin": true }),
                )?;
            }
            Ok((id, uuid))
        }
        None => {
            let uuid = new_uuid();
            let id = conn
                .prepare_cached(
                    "INSERT INTO users (uuid, name, admin, created) VALUES (?, ?, ?, ?)
                     RETURNING id",
                )?
                .query_row(
                    params![uuid.to_string(), name, admin, to_text(now())],
                    |r| r.get(0),
                )?;
            record(
                conn,
                actor,
                AuditAction::UserCreate,
                Some(uuid),
                Some(name),
                serde_json::json!({ "name": name, "admin": admin }),
            )?;
            Ok((id, uuid))
        }
    }
}

impl TokenOps for SqliteStore {
    /// The secret that signs API tokens, with its generation.
    async fn signing_secret(&self) -> Result<SigningSecret, StoreError> {
        self.read(|c| Ok(signing_secret(c)?)).await
    }

    /// Whether any admin user exists.
    async fn has_admin(&self) -> Result<bool, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE admin = 1)",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Creates an API token for user `user_name` (created if needed, and
    /// promoted to admin with `admin`), valid from `issued` to `expires`,
    /// in one transaction that also reads the secret `sign` signs with: a
    /// rotation commits either before it (the token is signed with the new
    /// secret) or after it (and then revokes it), never in between. Returns
    /// the token's UUID (`jti`) and the token, which is stored nowhere.
    async fn issue_api_token(
        &self,
        new: NewApiToken,
        actor: &Actor,
    ) -> Result<(Uuid, String), StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let (user_id, user) = ensure_user(tx, &new.user_name, new.admin, &actor)?;
            let jti = new_uuid();
            tx.prepare_cached(
                "INSERT INTO api_tokens (uuid, user_id, created, expires) VALUES (?, ?, ?, ?)",
            )?
            .execute(params![
                jti.to_string(),
                user_id,
                to_text(new.issued),
                to_text(new.expires)
            ])?;
            let audited = new.audited(user);
            record(
                tx,
                &actor,
                AuditAction::TokenCreate,
                Some(jti),
                None,
                audited,
            )?;
            let secret = signing_secret(tx)?;
            Ok((jti, (new.sign)(secret.expose(), user, jti)))
        })
        .await
    }

    /// The user behind an API token's `jti`, if the token is known.
    async fn token_principal(&self, jti: Uuid) -> Result<Option<TokenPrincipal>, StoreError> {
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT u.uuid, u.name, u.admin, t.revoked IS NOT NULL
                 FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.uuid = ?",
            )?
            .query_row([jti.to_string()], |r| {
                Ok(TokenPrincipal {
                    user: uuid_at(r, 0)?,
                    user_name: r.get(1)?,
                    admin: r.get(2)?,
                    revoked: r.get(3)?,
                })
            })
            .optional()?)
        })
        .await
    }

    /// Every API token, oldest first.
    async fn list_api_tokens(&self) -> Result<Vec<ApiTokenRow>, StoreError> {
        self.scan(|c| {
            let mut stmt = c.prepare(
                "SELECT t.uuid, u.name, u.admin, t.created, t.expires, t.revoked
                 FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id",
            )?;
            let rows = stmt.query_map([], |r| ApiTokenRow::read(r))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Revokes an API token. Revoking a revoked token is a no-op.
    async fn revoke_api_token(&self, jti: Uuid, actor: &Actor) -> Result<(), StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let found = tx.execute(
                "UPDATE api_tokens SET revoked = coalesce(revoked, ?) WHERE uuid = ?",
                params![to_text(now()), jti.to_string()],
            )?;
            if found == 0 {
                return Err(StoreError::ApiTokenNotFound(jti));
            }
            record(
                tx,
                &actor,
                AuditAction::TokenRevoke,
                Some(jti),
                None,
                serde_json::json!({"revoked": true}),
            )?;
            Ok(())
        })
        .await
    }

    /// Replaces the signing secret with a new one from the OS CSPRNG and
    /// revokes every API token (all were signed with the old secret), in one
    /// transaction: a running server refuses them within its 1 s bound.
    /// Returns how many tokens were revoked.
    async fn rotate_signing_key(&self, actor: &Actor) -> Result<usize, StoreError> {
        let actor = actor.clone();
        self.write(move |tx| {
            let stamp = to_text(now());
            tx.execute(
                "UPDATE signing_key SET secret = ?, created = ?, generation = generation + 1
                 WHERE id = 1",
                params![random_bytes::<SIGNING_KEY_BYTES>().to_vec(), stamp],
            )?;
            let revoked = tx.execute(
                "UPDATE api_tokens SET revoked = ? WHERE revoked IS NULL",
                params![stamp],
            )?;
            record(
                tx,
                &actor,
                AuditAction::KeyRotate,
                None,
                None,
                serde_json::json!({"api_tokens_revoked": revoked}),
            )?;
            Ok(revoked)
        })
        .await
    }
}
