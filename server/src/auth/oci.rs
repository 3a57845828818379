//! The short-lived registry tokens given with each claimed job.

use std::time::Duration as StdDuration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::random::random_bytes;

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
