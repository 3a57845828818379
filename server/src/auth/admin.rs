//! The admin behind a request's API token, and the cache of admins
//! verified in the last second.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant};

use chrono::Utc;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::runner_key::is_runner_key;
use super::{AuthError, KeyRing, bearer};
use crate::store::{Actor, Store, TokenPrincipal};

/// The admin behind a request's API token.
#[derive(Clone, Debug)]
pub struct Admin {
    pub user: Uuid,
    pub user_name: String,
    /// The API token's id (`jti`).
    pub token: Uuid,
}

impl Admin {
    /// The admin as the audit trail records them.
    pub fn actor(&self) -> Actor {
        Actor {
            user: Some(self.user),
            user_name: Some(self.user_name.clone()),
            token: Some(self.token),
        }
    }
}

/// How long a verified admin API token is trusted without reading its
/// database row again: a token revoked with `runners-server token revoke`
/// while the server runs stops working within this time.
pub const ADMIN_CACHE_TTL: StdDuration = StdDuration::from_secs(1);
/// Tokens remembered at most; past this the cache starts over.
const ADMIN_CACHE_CAPACITY: usize = 1024;

/// Admin API tokens verified in the last [`ADMIN_CACHE_TTL`], by the
/// SHA-256 of the token (so the cache holds no token, and a lookup compares
/// hashes, not secrets). Only successes are kept: a bad token always takes
/// the full path, so it cannot fill the cache.
#[derive(Default)]
pub struct AdminCache {
    entries: Mutex<HashMap<[u8; 32], CachedAdmin>>,
}

struct CachedAdmin {
    admin: Admin,
    /// The token's `exp`, checked on every use.
    expires: i64,
    verified: Instant,
}

impl AdminCache {
    fn get(&self, key: &[u8; 32]) -> Option<Admin> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let cached = entries.get(key)?;
        let fresh = cached.verified.elapsed() < ADMIN_CACHE_TTL;
        (fresh && Utc::now().timestamp() < cached.expires).then(|| cached.admin.clone())
    }

    fn put(&self, key: [u8; 32], admin: Admin, expires: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= ADMIN_CACHE_CAPACITY {
            entries.clear();
        }
        let verified = Instant::now();
        entries.insert(
            key,
            CachedAdmin {
                admin,
                expires,
                verified,
            },
        );
    }
}

/// Checks that the request carries a live API token of an admin user.
pub async fn require_admin(
    store: &Store,
    keys: &KeyRing,
    cache: &AdminCache,
    headers: &HeaderMap,
) -> Result<Admin, AuthError> {
    let token = bearer(headers)?;
    if is_runner_key(token) {
        return Err(AuthError::RunnerKeyOnAdminEndpoint);
    }
    let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if let Some(admin) = cache.get(&key) {
        return Ok(admin);
    }
    let claims = keys.verify(store, token).await?;
    let TokenPrincipal {
        user,
        user_name,
        admin,
        revoked,
    } = store
        .token_principal(claims.jti)
        .await?
        .ok_or(AuthError::UnknownToken)?;
    if user != claims.sub {
        return Err(AuthError::UnknownToken);
    }
    if revoked {
        return Err(AuthError::Revoked);
    }
    if !admin {
        return Err(AuthError::NotAdmin(user_name));
    }
    let admin = Admin {
        user,
        user_name,
        token: claims.jti,
    };
    cache.put(key, admin.clone(), claims.exp);
    Ok(admin)
}
