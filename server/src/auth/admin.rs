//! The admin behind a request's credential (an admin's API token or user
//! key), and the cache of credentials verified in the last second.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant};

use chrono::Utc;
use http::HeaderMap;
use uuid::Uuid;

use super::principal::{Principal, authenticate};
use super::{AuthError, KeyRing};
use crate::store::{Actor, Store};

/// The admin behind a request's API token.
#[derive(Clone, Debug)]
pub struct Admin {
    pub user: Uuid,
    pub user_name: String,
    /// The API token's id (`jti`), or the user key's UUID.
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

/// How long a verified credential is trusted without reading its
/// database row again: a token or key revoked while the server runs stops
/// working within this time.
pub const ADMIN_CACHE_TTL: StdDuration = StdDuration::from_secs(1);
/// Credentials remembered at most; past this the cache starts over.
const ADMIN_CACHE_CAPACITY: usize = 1024;

/// Credentials verified in the last [`ADMIN_CACHE_TTL`], by the SHA-256 of
/// the credential (so the cache holds no secret, and a lookup compares
/// hashes, not secrets). Only successes are kept: a bad credential always
/// takes the full path, so it cannot fill the cache.
#[derive(Default)]
pub struct AdminCache {
    entries: Mutex<HashMap<[u8; 32], Cached>>,
}

struct Cached {
    principal: Principal,
    /// The credential's expiry (a timestamp), checked on every use.
    expires: i64,
    verified: Instant,
}

impl AdminCache {
    pub(super) fn get(&self, key: &[u8; 32]) -> Option<Principal> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let cached = entries.get(key)?;
        let fresh = cached.verified.elapsed() < ADMIN_CACHE_TTL;
        (fresh && Utc::now().timestamp() < cached.expires).then(|| cached.principal.clone())
    }

    pub(super) fn put(&self, key: [u8; 32], principal: Principal, expires: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= ADMIN_CACHE_CAPACITY {
            entries.clear();
        }
        let verified = Instant::now();
        entries.insert(
            key,
            Cached {
                principal,
                expires,
                verified,
            },
        );
    }
}

/// Checks that the request carries a live API token or user key of an
/// admin user.
pub async fn require_admin(
    store: &Store,
    keys: &KeyRing,
    cache: &AdminCache,
    headers: &HeaderMap,
) -> Result<Admin, AuthError> {
    authenticate(store, keys, cache, headers).await?.admin()
}
