//! Who a request's bearer credential is, whatever its kind: an API token
//! (a JWT), a user key (`bencher_user_`, with its user's rights) or a
//! project key (`bencher_run_`, its project's runs and reads only), and
//! what each may do (the contract's credential table, once). Verified
//! credentials are trusted for at most [`super::ADMIN_CACHE_TTL`].

use chrono::Utc;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::runner_key::{has_key_shape, hash_runner_key, is_runner_key};
use super::{Admin, AdminCache, AuthError, KeyRing, bearer};
use crate::store::{Actor, KeyHolderOwner, ProjectRow, Store, TokenPrincipal};

/// What a project key starts with (Bencher v0.6.12's `bencher_run_`).
pub const PROJECT_KEY_PREFIX: &str = "bencher_run_";
/// What a user key starts with (Bencher v0.6.12's `bencher_user_`).
pub const USER_KEY_PREFIX: &str = "bencher_user_";

/// Who a request's credential is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A user, by an API token or a user key (`credential`: the token's
    /// `jti` or the key's UUID).
    User {
        user: Uuid,
        name: String,
        admin: bool,
        credential: Uuid,
    },
    /// A project key: its project, and the key's UUID. Not its slug: a
    /// slug may change while a verified key is trusted, so a path by slug is
    /// decided by the project found.
    Project { project: Uuid, key: Uuid },
}

impl Principal {
    /// As the audit trail records it.
    pub fn actor(&self) -> Actor {
        match self {
            Self::User {
                user,
                name,
                credential,
                ..
            } => Actor {
                user: Some(*user),
                user_name: Some(name.clone()),
                token: Some(*credential),
            },
            Self::Project { key, .. } => Actor {
                user: None,
                user_name: None,
                token: Some(*key),
            },
        }
    }

    /// The admin it is (an admin's API token or user key), or why not.
    pub fn admin(self) -> Result<Admin, AuthError> {
        match self {
            Self::User {
                user,
                name,
                admin: true,
                credential,
            } => Ok(Admin {
                user,
                user_name: name,
                token: credential,
            }),
            Self::User { name, .. } => Err(AuthError::NotAdmin(name)),
            Self::Project { .. } => Err(AuthError::ProjectKeyOnlyItsRuns),
        }
    }

    /// The user it is (what a project key may not do: make projects,
    /// manage user keys), or why not.
    pub fn user(&self) -> Result<Uuid, AuthError> {
        match self {
            Self::User { user, .. } => Ok(*user),
            Self::Project { .. } => Err(AuthError::ProjectKeyOnlyItsRuns),
        }
    }

    /// Whether it may act on the keys of the user a path names (by name or
    /// UUID, as written), before any lookup: that user, or an admin.
    pub fn may_manage_user(&self, path: &crate::validate::Ref) -> Result<(), AuthError> {
        match (self, path) {
            (Self::User { admin: true, .. }, _) => Ok(()),
            (Self::User { user, .. }, crate::validate::Ref::Uuid(u)) if u == user => Ok(()),
            (Self::User { name, .. }, crate::validate::Ref::Slug(s)) if s == name => Ok(()),
            (Self::User { .. }, _) => Err(AuthError::OtherUser),
            (Self::Project { .. }, _) => Err(AuthError::ProjectKeyOnlyItsRuns),
        }
    }

    /// Whether it may submit runs to and read the project a path names,
    /// before any lookup: a project key names its own by UUID (by slug, only
    /// the project found can say: [`Self::may_see`]); a user any.
    pub fn may_use_project(&self, path: &crate::validate::Ref) -> Result<(), AuthError> {
        match (self, path) {
            (Self::Project { project, .. }, crate::validate::Ref::Uuid(uuid))
                if uuid != project =>
            {
                Err(AuthError::OtherProject)
            }
            _ => Ok(()),
        }
    }

    /// Whether a project it found is one it may use (a project key's
    /// project may have been renamed since the key was checked).
    pub fn may_see(&self, project: &ProjectRow) -> Result<(), AuthError> {
        match self {
            Self::Project { project: own, .. } if *own != project.uuid => {
                Err(AuthError::OtherProject)
            }
            _ => Ok(()),
        }
    }
}

/// Checks the request's bearer credential: an API token, a user key or a
/// project key (a runner key is refused: it is only its runner's).
pub async fn authenticate(
    store: &Store,
    keys: &KeyRing,
    cache: &AdminCache,
    headers: &HeaderMap,
) -> Result<Principal, AuthError> {
    let token = bearer(headers)?;
    if is_runner_key(token) {
        return Err(AuthError::RunnerKeyOnAdminEndpoint);
    }
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if let Some(principal) = cache.get(&digest) {
        return Ok(principal);
    }
    let is_key = |prefix| token.starts_with(prefix);
    let (principal, expires) = if is_key(PROJECT_KEY_PREFIX) || is_key(USER_KEY_PREFIX) {
        by_key(store, token).await?
    } else {
        by_token(store, keys, token).await?
    };
    cache.put(digest, principal.clone(), expires);
    Ok(principal)
}

/// A project or user key's principal and its expiry (a timestamp).
async fn by_key(store: &Store, token: &str) -> Result<(Principal, i64), AuthError> {
    if !has_key_shape(token, PROJECT_KEY_PREFIX) && !has_key_shape(token, USER_KEY_PREFIX) {
        return Err(AuthError::MalformedKey);
    }
    let holder = store
        .key_holder(hash_runner_key(token))
        .await?
        .ok_or(AuthError::UnknownKey)?;
    if holder.revoked {
        return Err(AuthError::KeyRevoked);
    }
    if holder.expires <= Utc::now() {
        return Err(AuthError::KeyExpired);
    }
    let principal = match holder.owner {
        KeyHolderOwner::Project { uuid, .. } => Principal::Project {
            project: uuid,
            key: holder.key,
        },
        KeyHolderOwner::User(user) => Principal::User {
            user: user.uuid,
            name: user.name,
            admin: user.admin,
            credential: holder.key,
        },
    };
    Ok((principal, holder.expires.timestamp()))
}

/// An API token's principal and its expiry.
async fn by_token(
    store: &Store,
    keys: &KeyRing,
    token: &str,
) -> Result<(Principal, i64), AuthError> {
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
    let principal = Principal::User {
        user,
        name: user_name,
        admin,
        credential: claims.jti,
    };
    Ok((principal, claims.exp))
}
