//! Runner keys: made from the OS CSPRNG, stored only as their SHA-256,
//! and the runner a request's key authenticates ([`RunnerKey`]).

use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::{AuthError, bearer};
use crate::random::random_bytes;
use crate::store::{KeyedRunner, RunnerKeyHash, RunnerRow, Store};
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

/// A new runner key: `bencher_runner_` + 30 characters of `[0-9A-Za-z]`
/// from the OS CSPRNG (about 178 bits), each drawn uniformly: a byte is
/// used only if it is below 248 (4 × 62), so `byte % 62` has no bias.
pub fn new_runner_key() -> String {
    new_key(RUNNER_KEY_PREFIX)
}

/// A new key: `prefix` and 30 letters and digits from the OS CSPRNG (a
/// runner's, a project's or a user's: Bencher's shape of all three).
pub fn new_key(prefix: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + RUNNER_KEY_CHARS);
    key.push_str(prefix);
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

/// Whether `token` is `prefix` and 30 letters and digits.
pub(super) fn has_key_shape(token: &str, prefix: &str) -> bool {
    token.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == RUNNER_KEY_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The SHA-256 of a runner key: the only form in which it is stored.
pub fn hash_runner_key(key: &str) -> RunnerKeyHash {
    RunnerKeyHash(Sha256::digest(key.as_bytes()).into())
}

/// Whether `token` has the form of a runner key: v0.6.4's, or v0.6.2's
/// (64 lowercase hex characters).
pub(super) fn is_runner_key(token: &str) -> bool {
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

/// A runner authenticated by its own key, for the runner named in the
/// request's path: what a runner's key proves to the product's context
/// ([`crate::credential::Credentials::Runner`]), made only by
/// [`RunnerKey::from_request`]. Nothing about runner keys is cached, so a
/// rotation takes effect at once.
#[derive(Clone, Debug)]
pub struct RunnerKey {
    runner: KeyedRunner,
}

impl RunnerKey {
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
