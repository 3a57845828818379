//! Authentication and authorization: API tokens (HS256 JWTs checked against
//! their database row) for admin endpoints, runner tokens (stored only as
//! SHA-256) for a runner's own heartbeat.
//!
//! Secrets are compared in constant time or not at all: JWT signatures are
//! checked by aws-lc's constant-time HMAC verification, and tokens are only
//! ever looked up by their SHA-256, never compared.

mod admin;
mod api_token;
mod oci;
mod principal;
mod runner_key;

use http::HeaderMap;

use crate::store::StoreError;

pub use admin::{ADMIN_CACHE_TTL, Admin, AdminCache, require_admin};
pub use api_token::{Claims, DEFAULT_API_TOKEN_TTL_DAYS, KeyRing, Keys, issue_api_token};
pub use oci::{
    DEFAULT_OCI_TOKEN_TTL, OciAccess, OciClaims, OciToken, OciTokens, REGISTRY_ISSUER,
    REGISTRY_SERVICE, grant,
};
pub use principal::{PROJECT_KEY_PREFIX, Principal, USER_KEY_PREFIX, authenticate};
pub use runner_key::{
    RUNNER_KEY_PREFIX, RunnerKey, hash_runner_key, new_key, new_runner_key, runner_key_shape,
};

/// Why a request's credentials were refused. The wording is here, once;
/// the HTTP edge answers 401 or 403 ([`AuthError::is_forbidden`]).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing Authorization header: send `Authorization: Bearer <token>`")]
    MissingHeader,
    #[error("malformed Authorization header: expected `Bearer <token>`")]
    MalformedHeader,
    #[error(
        "malformed Authorization header: expected `Basic` and the base64 of \
         `<username>:<credential>`, the credential an API token, a user key or a project key"
    )]
    MalformedBasic,
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
        "a runner key only authenticates its own runner's heartbeat and channel: this \
         endpoint needs an API token, a user key or a project key"
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
    #[error(
        "malformed key: a project key is `bencher_run_` and a user key `bencher_user_`, each \
         followed by 30 letters and digits"
    )]
    MalformedKey,
    #[error("the key is not known to this server")]
    UnknownKey,
    #[error("the key has been revoked")]
    KeyRevoked,
    #[error("the key has expired: create a new one")]
    KeyExpired,
    #[error(
        "a project key may only submit runs to its project and read that project, its jobs \
         and its reports"
    )]
    ProjectKeyOnlyItsRuns,
    #[error("a project key only gives access to its own project")]
    OtherProject,
    #[error("a user may only manage their own keys (or be an admin)")]
    OtherUser,
    /// The credentials could not be checked.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuthError {
    /// Valid credentials without the right to do this (403), rather than
    /// credentials that are not valid (401).
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            Self::NotAdmin(_)
                | Self::OtherRunner
                | Self::ProjectKeyOnlyItsRuns
                | Self::OtherProject
                | Self::OtherUser
        )
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
