//! Registry tokens: Docker's token authentication, with this server as the
//! token service of an OCI registry (CNCF distribution with `auth: token`).
//! A token is an ES256 JWT naming its key by `kid` (the libtrust key ID the
//! registry's bundle gives the key), with Docker's `access` claim; the
//! registry checks its signature, `iss`, `aud` (its `service`), `exp` and
//! `nbf` (each with 60 s of leeway) and `access`.
//!
//! What a credential is granted ([`grant`]) is decided here, once: an
//! admin anything it asks; a user (who may run on any project) `pull` and
//! `push` on an existing project's repository; a project key `pull` and
//! `push` on its own project's repository; anyone else nothing. The
//! repository of a project is its UUID.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ADMIN_CACHE_TTL, Principal};
use crate::store::{Projects, Store, StoreError};
use crate::validate::OciScope;

/// How long a registry token lasts by default (Bencher's: 10 minutes).
pub const DEFAULT_OCI_TOKEN_TTL: Duration = Duration::from_secs(600);
/// The registry's `service`: every token's audience.
pub const REGISTRY_SERVICE: &str = "runners-registry";
/// Every token's issuer, which the registry trusts.
pub const REGISTRY_ISSUER: &str = "runners-server";

/// The claims of a registry token.
#[derive(Debug, Serialize, Deserialize)]
pub struct OciClaims {
    pub iss: String,
    /// Who it is for: a runner's UUID, a user's name, `project:{uuid}`, or
    /// empty (anonymous).
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
    pub access: Vec<OciAccess>,
}

/// One grant of a registry token (Docker's `access` claim).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciAccess {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// A token minted, with what Docker's token endpoint answers beside it.
pub struct OciToken {
    pub token: String,
    pub issued: DateTime<Utc>,
    pub expires_in: u64,
}

/// The key that signs now, as read from the store.
struct Signer {
    kid: String,
    key: EncodingKey,
}

/// Mints registry tokens with the newest registry key in the store (read
/// again at most every [`ADMIN_CACHE_TTL`], so that every replica signs
/// with a rotated key within that bound).
pub struct OciTokens {
    store: Store,
    ttl: Duration,
    signer: Mutex<Option<(Instant, Arc<Signer>)>>,
}

impl OciTokens {
    /// Tokens that last `ttl`, signed by `store`'s registry key.
    pub fn new(store: Store, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            signer: Mutex::new(None),
        }
    }

    async fn signer(&self) -> Result<Arc<Signer>, StoreError> {
        let cached = self.signer.lock().expect("not poisoned").clone();
        if let Some((read, signer)) = cached
            && read.elapsed() < ADMIN_CACHE_TTL
        {
            return Ok(signer);
        }
        let newest = self.store.registry_keys().await?.into_iter().next();
        let row = newest.ok_or_else(|| StoreError::Task("no registry key is stored".into()))?;
        let signer = Arc::new(Signer {
            kid: row.kid.clone(),
            key: EncodingKey::from_ec_der(row.expose()),
        });
        *self.signer.lock().expect("not poisoned") = Some((Instant::now(), Arc::clone(&signer)));
        Ok(signer)
    }

    /// A token for `subject` granting `access`.
    pub async fn mint(
        &self,
        subject: String,
        access: Vec<OciAccess>,
    ) -> Result<OciToken, StoreError> {
        let signer = self.signer().await?;
        let issued = Utc::now();
        let now = issued.timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = OciClaims {
            iss: REGISTRY_ISSUER.to_owned(),
            sub: subject,
            aud: REGISTRY_SERVICE.to_owned(),
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl),
            jti: Uuid::new_v4(),
            access,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(signer.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &signer.key)
            .map_err(|e| StoreError::Task(format!("cannot sign a registry token: {e}")))?;
        Ok(OciToken {
            token,
            issued,
            expires_in: self.ttl.as_secs(),
        })
    }

    /// A job's token: `pull` on its project's repository, for its runner.
    pub async fn job_token(&self, runner: Uuid, project: Uuid) -> Result<String, StoreError> {
        self.pull_token(&runner.to_string(), project.to_string())
            .await
    }

    /// A token for `subject` to pull from `repository` only.
    pub async fn pull_token(
        &self,
        subject: &str,
        repository: String,
    ) -> Result<String, StoreError> {
        let access = vec![OciAccess {
            kind: "repository".to_owned(),
            name: repository,
            actions: vec!["pull".to_owned()],
        }];
        Ok(self.mint(subject.to_owned(), access).await?.token)
    }
}

/// What `who` (`None`: anonymous) is granted of the scopes asked for, and
/// the token's subject. A scope granted nothing is left out; the order and
/// the actions' order are the request's.
pub async fn grant(
    store: &Store,
    who: Option<&Principal>,
    scopes: &[OciScope],
) -> Result<(String, Vec<OciAccess>), StoreError> {
    let mut granted = Vec::new();
    for scope in scopes {
        let allowed = allowed(store, who, scope).await?;
        let actions: Vec<String> = scope
            .actions
            .iter()
            .filter(|a| allowed.contains(&a.as_str()) || allowed.contains(&"*"))
            .cloned()
            .collect();
        if !actions.is_empty() {
            granted.push(OciAccess {
                kind: scope.kind.clone(),
                name: scope.name.clone(),
                actions,
            });
        }
    }
    let subject = match who {
        None => String::new(),
        Some(Principal::User { name, .. }) => name.clone(),
        Some(Principal::Project { project, .. }) => format!("project:{project}"),
    };
    Ok((subject, granted))
}

/// The actions `who` may take on `scope`'s resource (`*`: all).
async fn allowed(
    store: &Store,
    who: Option<&Principal>,
    scope: &OciScope,
) -> Result<&'static [&'static str], StoreError> {
    const PULL_PUSH: &[&str] = &["pull", "push"];
    let project = (scope.kind == "repository")
        .then(|| Uuid::try_parse(&scope.name).ok())
        .flatten();
    Ok(match (who, project) {
        (Some(Principal::User { admin: true, .. }), _) => &["*"],
        (Some(Principal::Project { project: own, .. }), Some(p)) if *own == p => PULL_PUSH,
        (Some(Principal::User { .. }), Some(p)) => match store.item::<Projects>(&p.into()).await {
            Ok(_) => PULL_PUSH,
            Err(StoreError::NotFound { .. }) => &[],
            Err(e) => return Err(e),
        },
        _ => &[],
    })
}
