//! Docker's token endpoint: its query and its answer.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

pub use crate::validate::OciTokenQuery;

/// A registry token (Docker's token endpoint's answer).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct JsonOciToken {
    /// The token: an ES256 JWT the registry checks against the certificates
    /// `runners-server registry-config` gave it. Send it as `Authorization:
    /// Bearer` to the registry.
    pub token: String,
    /// The same token (OAuth 2's name, which some clients read).
    pub access_token: String,
    /// Seconds the token is valid from `issued_at`.
    pub expires_in: u64,
    /// When the token was issued (RFC 3339).
    pub issued_at: DateTime<Utc>,
}
