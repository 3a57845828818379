//! API tokens: HS256 JWTs signed with the secret kept in the database,
//! each checked against its row (see [`super::require_admin`]).

use std::sync::Arc;

use chrono::{Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AuthError;
use crate::store::{Actor, NewApiToken, SigningSecret, Store, StoreError};

/// How long an API token lives unless told otherwise.
pub const DEFAULT_API_TOKEN_TTL_DAYS: i64 = 365;

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
    pub(super) async fn verify(&self, store: &Store, token: &str) -> Result<Claims, AuthError> {
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
        sign,
    };
    store.issue_api_token(new, actor).await
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
