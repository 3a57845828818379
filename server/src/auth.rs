//! Authentication and authorization: API tokens (HS256 JWTs checked against
//! their database row) for admin endpoints, runner tokens (stored only as
//! SHA-256) for a runner's own heartbeat.
//!
//! Secrets are compared in constant time or not at all: JWT signatures are
//! checked by aws-lc's constant-time HMAC verification, and tokens are only
//! ever looked up by their SHA-256, never compared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::random::random_bytes;
use crate::store::{
    Actor, KeyedRunner, NewApiToken, RunnerKeyHash, RunnerRow, SigningSecret, Store, StoreError,
    TokenPrincipal,
};
use crate::validate::Ref;

/// Prefix of every runner key.
pub const RUNNER_KEY_PREFIX: &str = "bencher_runner_";
/// Characters after the prefix of a runner key (Bencher v0.6.4's form).
const RUNNER_KEY_CHARS: usize = 30;
/// Alphabet of a runner key's characters.
const RUNNER_KEY_ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Hex characters after the prefix of a runner key of Bencher v0.6.2's form
/// (still accepted until rotated; never issued).
const LEGACY_RUNNER_KEY_HEX: usize = 64;
/// How long an API token lives unless told otherwise.
pub const DEFAULT_API_TOKEN_TTL_DAYS: i64 = 365;

/// Why a request's credentials were refused. The wording is here, once;
/// the HTTP edge answers 401 or 403 ([`AuthError::is_forbidden`]).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing Authorization header: send `Authorization: Bearer <token>`")]
    MissingHeader,
    #[error("malformed Authorization header: expected `Bearer <token>`")]
    MalformedHeader,
    #[error("the API token has expired: create a new one with `runners-server token create`")]
    Expired,
    #[error("the API token's signature is not valid for this server")]
    BadSignature,
    #[error("the API token must be signed with HS256")]
    WrongAlgorithm,
    #[error("the API token is not a valid JWT issued by this server")]
    NotAJwt,
    #[error("the API token is not known to this server")]
    UnknownToken,
    #[error("the API token has been revoked")]
    Revoked,
    #[error("user `{0}` is not an admin: this endpoint needs an admin API token")]
    NotAdmin(String),
    #[error(
        "a runner key only authenticates its runner's heartbeat: \
         this endpoint needs an admin API token"
    )]
    RunnerKeyOnAdminEndpoint,
    #[error(
        "this endpoint needs the runner's key (`bencher_runner_` followed by 30 letters and \
         digits, or by 64 hex characters for a key issued by Bencher v0.6.2)"
    )]
    NotARunnerKey,
    #[error("the runner key is not valid: it may have been rotated")]
    UnknownRunnerKey,
    #[error("the runner is archived: its key is not accepted until it is unarchived")]
    RunnerArchived,
    #[error("a runner key only authenticates its own runner")]
    OtherRunner,
    #[error("the runner key is no longer valid")]
    RunnerKeyChanged,
    /// The credentials could not be checked.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuthError {
    /// Valid credentials without the right to do this (403), rather than
    /// credentials that are not valid (401).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Self::NotAdmin(_) | Self::OtherRunner)
    }
}

/// The claims of an API token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user's UUID.
    pub sub: Uuid,
    /// The token's UUID: its row in `api_tokens`.
    pub jti: Uuid,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

/// The server's HS256 keys, made from the secret kept in the database.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Keys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Signs an API token for these claims.
    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::InvalidAlgorithm => AuthError::WrongAlgorithm,
                _ => AuthError::NotAJwt,
            })
    }
}

/// The signing keys a running server verifies with, and the generation of
/// their secret. When a token's signature does not verify, the secret is
/// re-read from the database (one short read by primary key), and kept only
/// if its generation is newer: after `runners-server key rotate`, tokens
/// signed with the new secret work at once, and a slow re-read never puts
/// back an older secret.
pub struct KeyRing {
    keys: std::sync::RwLock<Arc<(i64, Keys)>>,
}

impl KeyRing {
    pub fn new(secret: &SigningSecret) -> Self {
        Self {
            keys: std::sync::RwLock::new(Arc::new((secret.generation, Keys::new(secret.expose())))),
        }
    }

    fn current(&self) -> Arc<(i64, Keys)> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&keys)
    }

    /// Keeps `secret` if it is newer than the one held; returns the newest.
    fn offer(&self, secret: &SigningSecret) -> Arc<(i64, Keys)> {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if secret.generation > keys.0 {
            *keys = Arc::new((secret.generation, Keys::new(secret.expose())));
        }
        Arc::clone(&keys)
    }

    /// Verifies `token`, re-reading the secret if its signature fails.
    async fn verify(&self, store: &Store, token: &str) -> Result<Claims, AuthError> {
        let held = self.current();
        match held.1.verify(token) {
            Err(AuthError::BadSignature) => {
                let newest = self.offer(&store.signing_secret().await?);
                if newest.0 == held.0 {
                    return Err(AuthError::BadSignature);
                }
                newest.1.verify(token)
            }
            verified => verified,
        }
    }
}

/// Creates an API token for user `user_name` (created if needed; `admin`
/// makes it an admin), valid for `ttl`, recording its `jti` and signing it
/// in the same transaction. The token itself is returned once and stored
/// nowhere.
pub async fn issue_api_token(
    store: &Store,
    user_name: &str,
    admin: bool,
    ttl: Duration,
    actor: &Actor,
) -> Result<(Uuid, String), StoreError> {
    let issued = Utc::now();
    let expires = issued + ttl;
    let sign = Box::new(move |secret: &[u8], sub: Uuid, jti: Uuid| {
        Keys::new(secret).sign(&Claims {
            sub,
            jti,
            iat: issued.timestamp(),
            exp: expires.timestamp(),
        })
    });
    let new = NewApiToken {
        user_name: user_name.to_owned(),
        admin,
        issued,
        expires,
    };
    store.issue_api_token(new, actor, sign).await
}

/// A new runner key: `bencher_runner_` + 30 characters of `[0-9A-Za-z]`
/// from the OS CSPRNG (about 178 bits), each drawn uniformly: a byte is
/// used only if it is below 248 (4 × 62), so `byte % 62` has no bias.
pub fn new_runner_key() -> String {
    let mut key = String::with_capacity(RUNNER_KEY_PREFIX.len() + RUNNER_KEY_CHARS);
    key.push_str(RUNNER_KEY_PREFIX);
    let mut left = RUNNER_KEY_CHARS;
    while left > 0 {
        for byte in random_bytes::<64>() {
            if left > 0 && byte < 248 {
                key.push(char::from(RUNNER_KEY_ALPHABET[usize::from(byte % 62)]));
                left -= 1;
            }
        }
    }
    key
}

/// The SHA-256 of a runner key: the only form in which it is stored.
pub fn hash_runner_key(key: &str) -> RunnerKeyHash {
    RunnerKeyHash(Sha256::digest(key.as_bytes()).into())
}

/// Whether `token` has the form of a runner key: v0.6.4's, or v0.6.2's
/// (64 lowercase hex characters).
fn is_runner_key(token: &str) -> bool {
    token.strip_prefix(RUNNER_KEY_PREFIX).is_some_and(|rest| {
        (rest.len() == RUNNER_KEY_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
            || (rest.len() == LEGACY_RUNNER_KEY_HEX
                && rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    })
}

/// Whether `headers` carry a bearer token shaped as a runner key, without
/// looking it up (no database): what a runner key's check refuses first.
pub fn runner_key_shape(headers: &HeaderMap) -> Result<(), AuthError> {
    if is_runner_key(bearer(headers)?) {
        Ok(())
    } else {
        Err(AuthError::NotARunnerKey)
    }
}

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthError::MissingHeader)?;
    let value = value.to_str().map_err(|_| AuthError::MalformedHeader)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::MalformedHeader)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token)
}

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

/// A runner authenticated by its own key, for the runner named in the
/// request's path. Nothing about runner keys is cached, so a rotation takes
/// effect at once.
#[derive(Clone, Debug)]
pub struct RunnerKey {
    runner: KeyedRunner,
}

impl RunnerKey {
    /// `runner`, taken at its word with no key checked: for a server
    /// context that checks no credentials (the benchmark's ceiling). No
    /// request reaches it: the product's context checks every key.
    pub fn unchecked(runner: KeyedRunner) -> Self {
        Self { runner }
    }

    /// The runner this key authenticates.
    pub fn runner(&self) -> &KeyedRunner {
        &self.runner
    }

    /// Checks that `headers` carry the live key of the active runner that
    /// `path` (the `{runner}` segment) names.
    pub async fn from_request(
        store: &Store,
        headers: &HeaderMap,
        path: &Ref,
    ) -> Result<Self, AuthError> {
        runner_key_shape(headers)?;
        let token = bearer(headers)?;
        let runner = store
            .runner_by_key_hash(hash_runner_key(token))
            .await?
            .ok_or(AuthError::UnknownRunnerKey)?;
        if runner.archived {
            return Err(AuthError::RunnerArchived);
        }
        let own = match path {
            Ref::Uuid(uuid) => *uuid == runner.uuid,
            Ref::Slug(slug) => *slug == runner.slug,
        };
        if !own {
            return Err(AuthError::OtherRunner);
        }
        Ok(Self { runner })
    }

    /// Records the runner's heartbeat, provided its key is still live (not
    /// rotated, the runner not archived since it was checked).
    pub async fn heartbeat(&self, store: &Store) -> Result<RunnerRow, AuthError> {
        store
            .heartbeat(&self.runner)
            .await?
            .ok_or(AuthError::RunnerKeyChanged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(generation: i64, byte: u8) -> SigningSecret {
        SigningSecret::new(generation, vec![byte; 32])
    }

    fn token(byte: u8) -> String {
        Keys::new(&[byte; 32]).sign(&Claims {
            sub: Uuid::nil(),
            jti: Uuid::nil(),
            iat: 0,
            exp: i64::MAX / 2,
        })
    }

    #[test]
    fn a_re_read_never_puts_back_an_older_secret() {
        let ring = KeyRing::new(&secret(1, 1));
        assert_eq!(ring.offer(&secret(3, 3)).0, 3, "a newer secret is kept");
        // A slow re-read that started before the last rotation.
        assert_eq!(ring.offer(&secret(2, 2)).0, 3, "an older one is not");
        assert!(ring.current().1.verify(&token(3)).is_ok());
        assert!(matches!(
            ring.current().1.verify(&token(2)),
            Err(AuthError::BadSignature)
        ));
    }
}

/// How long a job's registry token lasts (Bencher's: 10 minutes).
pub const OCI_TOKEN_TTL: StdDuration = StdDuration::from_secs(600);

/// The claims of a registry token: the Docker registry token format's
/// `access` (repository, pull only), for the job's runner.
#[derive(Debug, Serialize, Deserialize)]
pub struct OciClaims {
    pub iss: String,
    /// The runner's UUID.
    pub sub: Uuid,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    pub access: Vec<OciAccess>,
}

/// One grant of a registry token.
#[derive(Debug, Serialize, Deserialize)]
pub struct OciAccess {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// Mints the short-lived registry tokens given with each claimed job. The
/// key is made at start and kept in memory only (no stored secret): a
/// token outlives neither its ten minutes nor the process.
pub struct OciTokens {
    key: EncodingKey,
    decoding: DecodingKey,
}

impl Default for OciTokens {
    fn default() -> Self {
        let secret = random_bytes::<32>();
        Self {
            key: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
        }
    }
}

impl OciTokens {
    /// A token for `runner` to pull from repository `project`.
    pub fn mint(&self, runner: Uuid, project: Uuid) -> String {
        let now = Utc::now().timestamp();
        let claims = OciClaims {
            iss: "runners-server".to_owned(),
            sub: runner,
            aud: "oci".to_owned(),
            iat: now,
            exp: now + OCI_TOKEN_TTL.as_secs() as i64,
            jti: Uuid::new_v4(),
            access: vec![OciAccess {
                kind: "repository".to_owned(),
                name: project.to_string(),
                actions: vec!["pull".to_owned()],
            }],
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// The claims of a token this process minted (for tests and a
    /// registry in the same process).
    pub fn verify(&self, token: &str) -> Option<OciClaims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&["oci"]);
        jsonwebtoken::decode::<OciClaims>(token, &self.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }
}
