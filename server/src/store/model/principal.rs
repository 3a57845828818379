//! Who acts on the store and with what: the actor an audit row names, the
//! fields a change touched, and the API tokens' engine-free types. No
//! engine owns these: SQLite's files and PostgreSQL's (`pg/`) both import
//! them from here, so `pg/` never imports a SQLite file for them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// Who did it: the admin behind an API token, or the server program's own
/// commands (no user).
#[derive(Clone, Debug, Default)]
pub struct Actor {
    pub user: Option<Uuid>,
    pub user_name: Option<String>,
    /// The API token's id (`jti`).
    pub token: Option<Uuid>,
}

impl Actor {
    /// The server program's own commands (`token`, `key rotate`).
    pub fn program() -> Self {
        Self::default()
    }
}

/// The fields of `after` that differ from `before` (both serialized to JSON
/// objects), with their new values; `modified` is left out. With `before`
/// null, every field of `after` but its identity and stamps.
pub(crate) fn changes<T: Serialize>(before: Option<&T>, after: &T) -> serde_json::Value {
    let to_map = |v: serde_json::Value| match v {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let after = to_map(serde_json::to_value(after).unwrap_or_default());
    let before = before.map(|b| to_map(serde_json::to_value(b).unwrap_or_default()));
    let skip = ["uuid", "created", "modified", "last_heartbeat", "specs"];
    after
        .into_iter()
        .filter(|(field, value)| {
            !skip.contains(&field.as_str())
                && before.as_ref().is_none_or(|b| b.get(field) != Some(value))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Bytes of the HS256 secret that signs API tokens.
pub const SIGNING_KEY_BYTES: usize = 32;

/// An API token to issue: for user `user_name` (created if needed, and
/// made an admin with `admin`), valid from `issued` to `expires`, signed by
/// `sign` with the secret read in the transaction that records it.
pub struct NewApiToken {
    pub user_name: String,
    pub admin: bool,
    pub issued: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub sign: Sign,
}

impl NewApiToken {
    /// What its audit row records, for user `user`.
    pub fn audited(&self, user: Uuid) -> serde_json::Value {
        serde_json::json!({"user": user, "expires": super::time_text(self.expires)})
    }
}

/// The identity behind an API token's `jti`.
#[derive(Clone, Debug)]
pub struct TokenPrincipal {
    pub user: Uuid,
    pub user_name: String,
    pub admin: bool,
    pub revoked: bool,
}

/// An API token's row, for `token list`.
#[derive(Clone, Debug)]
pub struct ApiTokenRow {
    pub uuid: Uuid,
    pub user_name: String,
    pub admin: bool,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub revoked: Option<DateTime<Utc>>,
}

/// The secret that signs API tokens, and its generation (1 at first, one
/// more with each rotation).
#[derive(Debug)]
pub struct SigningSecret {
    pub generation: i64,
    /// Its bytes, which `Debug` never shows ([`Self::expose`]).
    secret: secrecy::SecretSlice<u8>,
}

impl SigningSecret {
    pub fn new(generation: i64, secret: Vec<u8>) -> Self {
        Self {
            generation,
            secret: secret.into(),
        }
    }

    /// The secret's bytes, to sign or check with.
    pub fn expose(&self) -> &[u8] {
        secrecy::ExposeSecret::expose_secret(&self.secret)
    }
}

/// What signs a new API token: given the current secret, the user's and
/// the token's UUIDs, the token (a JWT, made above the store).
pub type Sign = Box<dyn FnOnce(&[u8], Uuid, Uuid) -> String + Send>;
