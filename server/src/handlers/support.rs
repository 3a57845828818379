//! What the handlers share: the API version answered, a new runner key,
//! a 201 with its `Location`, a page of views.

use dropshot::{
    HttpError, HttpResponseCreated, HttpResponseHeaders, HttpResponseOk, RequestContext,
};

use crate::api::{Created, JobsPage};
use crate::auth;
use crate::extract::PathParams;
use crate::server::Context;
use crate::store::RunnerKeyHash;
use crate::store::model::JobRow;
use crate::types::*;

/// The Bencher API version this server reports when a request names none
/// it speaks (Bencher's CLI warns when it differs from its own).
pub const BENCHER_API_VERSION: &str = "0.6.2";
/// The Bencher versions whose runner endpoints this server speaks: 0.6.N
/// for N in this range.
const BENCHER_PATCHES: std::ops::RangeInclusive<u32> = 2..=12;

/// The version to report to a client that sent `api-version: requested`:
/// its own, if this server speaks it, else [`BENCHER_API_VERSION`].
pub fn api_version(requested: Option<&str>) -> &str {
    requested
        .filter(|v| {
            v.strip_prefix("0.6.")
                .and_then(|patch| patch.parse::<u32>().ok())
                .is_some_and(|patch| BENCHER_PATCHES.contains(&patch))
        })
        .filter(|v| v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        .unwrap_or(BENCHER_API_VERSION)
}

/// A new runner key with the SHA-256 that the store keeps of it.
pub(super) fn new_runner_key() -> (String, RunnerKeyHash) {
    let key = auth::new_runner_key();
    let hash = auth::hash_runner_key(&key);
    (key, hash)
}

/// Rotates a runner's key: `/key` and its v0.6.2 name `/token`.
pub(super) async fn rotate_key(
    rqctx: RequestContext<Context>,
    admin: auth::Admin,
    path: PathParams<RunnerPath>,
) -> Result<Created<JsonRunnerKey>, HttpError> {
    let cx = rqctx.context();
    let runner = path.open(&admin)?.runner;
    let (key, hash) = new_runner_key();
    let uuid = cx
        .store
        .rotate_runner_key((runner.into(), hash), &admin.actor())
        .await?;
    Ok(created(JsonRunnerKey::new(uuid, key), "runners", uuid))
}

/// A 201 answer with `Location: /v0/{collection}/{uuid}`.
pub fn created<T>(item: T, collection: &str, uuid: uuid::Uuid) -> Created<T>
where
    T: serde::Serialize + schemars::JsonSchema + Send + Sync + 'static,
{
    HttpResponseHeaders::new(
        HttpResponseCreated(item),
        LocationHeader {
            location: format!("/v0/{collection}/{uuid}"),
        },
    )
}

/// A page of the store's rows as their wire views, with its `X-Total-Count`.
pub(super) fn page<R, T>(
    (items, total): (Vec<R>, u64),
) -> HttpResponseHeaders<HttpResponseOk<Vec<T>>, TotalCountHeader>
where
    T: From<R> + serde::Serialize + schemars::JsonSchema + Send + Sync + 'static,
{
    HttpResponseHeaders::new(
        HttpResponseOk(items.into_iter().map(T::from).collect()),
        TotalCountHeader {
            x_total_count: total.to_string(),
        },
    )
}

/// With `--registry-url`, a job's registry must be it (the agent sends the
/// server's registry token to it): else 400 naming the configured one.
pub(super) fn only_the_registry(cx: &Context, registry: &str) -> Result<(), HttpError> {
    match cx.submit.registry_url.as_deref() {
        Some(ours) if ours != registry.trim_end_matches('/') => {
            Err(HttpError::from(crate::validate::Invalid {
                field: "registry".to_owned(),
                rule: format!("must be this server's registry `{ours}`"),
            }))
        }
        _ => Ok(()),
    }
}

/// A page of jobs as their wire views.
pub(super) fn jobs_page((jobs, total): (Vec<JobRow>, u64)) -> Result<JobsPage, HttpError> {
    let jobs = jobs
        .into_iter()
        .map(JsonJob::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page((jobs, total)))
}
