//! A small client of an OCI registry's v2 API: a tag resolved to the digest
//! of its manifest, which a job then pins (the agent pulls
//! `{host}/{project}@{digest}`), the way a `docker pull` would resolve it.
//!
//! `HEAD /v2/{repository}/manifests/{tag}` first, for its
//! `Docker-Content-Digest`; `GET` when the `HEAD` gives none (or is not
//! allowed), then the digest is that header's, else the SHA-256 of the
//! manifest's bytes. Bounded: 5 s to connect, 10 s in all for each request.

use std::sync::LazyLock;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap};
use sha2::{Digest as _, Sha256};

use crate::validate;

/// How long to wait for the registry's TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request to the registry may take, answer included.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest manifest read (distribution's own bound on a manifest).
pub const MANIFEST_MAX_BYTES: usize = 4 << 20;

/// The manifest types asked for: an OCI index or manifest, a Docker v2
/// manifest list or manifest (without the last two, distribution 2.x
/// rewrites a Docker manifest into its legacy schema 1, of another digest).
pub const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Why a tag could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No connection, or no answer in time: the caller answers 503 naming
    /// the registry.
    #[error("the registry {registry} could not be reached: {reason}")]
    Unreachable {
        /// The registry's base URL.
        registry: String,
        /// What went wrong (connection refused, timed out, …).
        reason: String,
    },
    /// The registry has no such repository or tag (404).
    #[error("the registry {registry} has no tag `{tag}` in the repository `{repository}`")]
    NotFound {
        /// The registry's base URL.
        registry: String,
        /// The repository asked for.
        repository: String,
        /// The tag asked for.
        tag: String,
    },
    /// The registry refused the credentials, or their absence (401 or 403).
    #[error(
        "the registry {registry} refused to show `{repository}:{tag}` (HTTP {status}): it \
         does not accept this server's credentials for it"
    )]
    Refused {
        /// The registry's base URL.
        registry: String,
        /// The repository asked for.
        repository: String,
        /// The tag asked for.
        tag: String,
        /// 401 or 403.
        status: u16,
    },
    /// Anything else: another status, an unusable URL, a manifest too large.
    #[error("the registry {registry} could not resolve the tag: {reason}")]
    Other {
        /// The registry's base URL.
        registry: String,
        /// What went wrong.
        reason: String,
    },
}

/// The client every resolution shares (its connections are reused).
static CLIENT: LazyLock<Result<reqwest::Client, String>> =
    LazyLock::new(|| client(CONNECT_TIMEOUT, TOTAL_TIMEOUT).map_err(|e| e.to_string()));

/// A client with these bounds.
fn client(connect: Duration, total: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(total)
        .build()
}

/// Resolves `repository:tag` in the registry at `registry` (a base URL such
/// as `http://127.0.0.1:5000`; only its scheme, host and port are used) to
/// its manifest's digest, `sha256:` and 64 lowercase hex digits. `bearer`
/// goes in `Authorization: Bearer` on each request.
pub async fn resolve_tag(
    registry: &str,
    repository: &str,
    tag: &str,
    bearer: Option<&str>,
) -> Result<String, ResolveError> {
    let client = CLIENT.as_ref().map_err(|e| ResolveError::Other {
        registry: registry.to_owned(),
        reason: format!("no HTTP client: {e}"),
    })?;
    resolve_with(client, registry, repository, tag, bearer).await
}

/// [`resolve_tag`] with the client given.
async fn resolve_with(
    client: &reqwest::Client,
    registry: &str,
    repository: &str,
    tag: &str,
    bearer: Option<&str>,
) -> Result<String, ResolveError> {
    let other = |reason: String| ResolveError::Other {
        registry: registry.to_owned(),
        reason,
    };
    let url = manifest_url(registry, repository, tag).map_err(other)?;
    let request = |method: reqwest::Method| {
        let request = client
            .request(method, url.clone())
            .header(ACCEPT, MANIFEST_TYPES);
        match bearer {
            Some(token) => request.header(AUTHORIZATION, format!("Bearer {token}")),
            None => request,
        }
    };
    let failed = |e: reqwest::Error| {
        if e.is_connect() || e.is_timeout() {
            ResolveError::Unreachable {
                registry: registry.to_owned(),
                reason: describe(&e),
            }
        } else {
            other(describe(&e))
        }
    };
    let status_error = |status: StatusCode| match status.as_u16() {
        404 => Some(ResolveError::NotFound {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.to_owned(),
        }),
        status @ (401 | 403) => Some(ResolveError::Refused {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.to_owned(),
            status,
        }),
        _ => None,
    };

    let head = request(reqwest::Method::HEAD)
        .send()
        .await
        .map_err(failed)?;
    if let Some(e) = status_error(head.status()) {
        return Err(e);
    }
    if head.status().is_success()
        && let Some(digest) = header_digest(head.headers())
    {
        return Ok(digest);
    }

    let mut get = request(reqwest::Method::GET).send().await.map_err(failed)?;
    if let Some(e) = status_error(get.status()) {
        return Err(e);
    }
    if !get.status().is_success() {
        return Err(other(format!("it answered HTTP {}", get.status())));
    }
    if let Some(digest) = header_digest(get.headers()) {
        return Ok(digest);
    }
    let mut hash = Sha256::new();
    let mut read = 0;
    while let Some(chunk) = get.chunk().await.map_err(failed)? {
        read += chunk.len();
        if read > MANIFEST_MAX_BYTES {
            return Err(other(format!(
                "its manifest is larger than {MANIFEST_MAX_BYTES} bytes"
            )));
        }
        hash.update(&chunk);
    }
    Ok(format!("sha256:{}", hex::encode(hash.finalize())))
}

/// `{scheme}://{host}[:{port}]/v2/{repository}/manifests/{tag}`, each path
/// segment escaped.
fn manifest_url(registry: &str, repository: &str, tag: &str) -> Result<url::Url, String> {
    let mut url =
        url::Url::parse(registry).map_err(|e| format!("`{registry}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "`{registry}` is not an http:// or https:// URL with a host"
        ));
    }
    if repository.is_empty() || tag.is_empty() {
        return Err("the repository and the tag must not be empty".to_owned());
    }
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| format!("`{registry}` cannot have a path"))?
        .clear()
        .push("v2")
        .extend(repository.split('/'))
        .push("manifests")
        .push(tag);
    Ok(url)
}

/// The `Docker-Content-Digest` header, if it is a SHA-256 digest.
fn header_digest(headers: &HeaderMap) -> Option<String> {
    let digest = headers.get("docker-content-digest")?.to_str().ok()?;
    validate::digest("digest", digest).ok()?;
    Some(digest.to_owned())
}

/// An error with its causes (reqwest's own message names only the first).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests;
