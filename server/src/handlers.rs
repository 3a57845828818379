//! The handlers: the implementation of [`RunnersApi`]. Each names its
//! credential in its signature, makes one store call, and wraps the answer
//! (the store's rows become wire views here, through [`crate::views`]).

use dropshot::{
    HttpError, HttpResponseCreated, HttpResponseDeleted, HttpResponseHeaders, HttpResponseOk,
    RequestContext,
};

use crate::api::{Created, JobsPage, RunnersApi, RunnersPage, SpecsPage};
use crate::auth;
use crate::credential::{AdminUser, ChannelAuth, RunnerAuth};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::server::Context;
use crate::store::model::JobRow;
use crate::store::{RunnerKeyHash, RunnerRef, SpecRef};
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
fn new_runner_key() -> (String, RunnerKeyHash) {
    let key = auth::new_runner_key();
    let hash = auth::hash_runner_key(&key);
    (key, hash)
}

/// Rotates a runner's key: `/key` and its v0.6.2 name `/token`.
async fn rotate_key(
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
fn page<R, T>(
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

/// A page of jobs as their wire views.
fn jobs_page((jobs, total): (Vec<JobRow>, u64)) -> Result<JobsPage, HttpError> {
    let jobs = jobs
        .into_iter()
        .map(JsonJob::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page((jobs, total)))
}

/// The implementation of [`RunnersApi`].
pub enum RunnersImpl {}

impl RunnersApi for RunnersImpl {
    type Context = Context;

    async fn runners_get(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        query: QueryParams<RunnersQuery>,
    ) -> Result<RunnersPage, HttpError> {
        let cx = rqctx.context();
        Ok(page(cx.store.list_runners(query.open(&admin)?).await?))
    }

    async fn runners_post(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        body: JsonBody<JsonNewRunner>,
    ) -> Result<Created<JsonRunnerKey>, HttpError> {
        let cx = rqctx.context();
        let (key, hash) = new_runner_key();
        let new = body.open(&admin)?.into();
        let runner = cx.store.create_runner((new, hash), &admin.actor()).await?;
        Ok(created(
            JsonRunnerKey::new(runner.uuid, key),
            "runners",
            runner.uuid,
        ))
    }

    async fn runner_get(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<RunnerPath>,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError> {
        let cx = rqctx.context();
        let runner: RunnerRef = path.open(&admin)?.runner.into();
        Ok(HttpResponseOk(cx.store.item(&runner).await?.into()))
    }

    async fn runner_patch(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<RunnerPath>,
        body: JsonBody<JsonUpdateRunner>,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError> {
        let cx = rqctx.context();
        let runner: RunnerRef = path.open(&admin)?.runner.into();
        let changes = body.open(&admin)?.into();
        let updated = cx.store.update(runner, changes, &admin.actor()).await?;
        Ok(HttpResponseOk(updated.into()))
    }

    async fn runner_key_post(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<RunnerPath>,
    ) -> Result<Created<JsonRunnerKey>, HttpError> {
        rotate_key(rqctx, admin, path).await
    }

    async fn runner_token_post(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<RunnerPath>,
    ) -> Result<Created<JsonRunnerKey>, HttpError> {
        rotate_key(rqctx, admin, path).await
    }

    async fn runner_specs_get(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<RunnerPath>,
    ) -> Result<HttpResponseOk<Vec<JsonSpec>>, HttpError> {
        let cx = rqctx.context();
        let runner = path.open(&admin)?.runner.into();
        let specs = cx.store.runner_specs(&runner).await?;
        Ok(HttpResponseOk(
            specs.into_iter().map(JsonSpec::from).collect(),
        ))
    }

    async fn runner_specs_post(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<RunnerPath>,
        body: JsonBody<JsonNewRunnerSpec>,
    ) -> Result<Created<JsonSpec>, HttpError> {
        let cx = rqctx.context();
        let (runner, spec) = (
            path.open(&admin)?.runner.into(),
            body.open(&admin)?.spec.into(),
        );
        let spec = cx
            .store
            .add_runner_spec((runner, spec), &admin.actor())
            .await?;
        Ok(created(JsonSpec::from(spec.clone()), "specs", spec.uuid))
    }

    async fn runner_spec_delete(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<RunnerSpecPath>,
    ) -> Result<HttpResponseDeleted, HttpError> {
        let cx = rqctx.context();
        let RunnerSpecPath { runner, spec } = path.open(&admin)?;
        cx.store
            .remove_runner_spec((runner.into(), spec.into()), &admin.actor())
            .await?;
        Ok(HttpResponseDeleted())
    }

    async fn runner_heartbeat_post(
        rqctx: RequestContext<Context>,
        runner: RunnerAuth,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError> {
        let cx = rqctx.context();
        let key = runner.open(cx)?;
        Ok(HttpResponseOk(key.heartbeat(&cx.store).await?.into()))
    }

    async fn runner_channel(
        rqctx: RequestContext<Context>,
        ChannelAuth(runner): ChannelAuth,
        upgraded: dropshot::WebsocketConnection,
    ) -> dropshot::WebsocketChannelResult {
        let key = runner.open(rqctx.context())?;
        let channel = std::sync::Arc::clone(&rqctx.context().channel);
        channel.serve(key, upgraded).await;
        Ok(())
    }

    async fn runner_jobs_get(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<RunnerPath>,
        query: QueryParams<RunnerJobsQuery>,
    ) -> Result<JobsPage, HttpError> {
        let cx = rqctx.context();
        let runner = Some(path.open(&admin)?.runner.into());
        jobs_page(cx.store.list_jobs(runner, query.open(&admin)?).await?)
    }

    async fn jobs_post(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        body: JsonBody<JsonNewJob>,
    ) -> Result<Created<JsonJob>, HttpError> {
        let cx = rqctx.context();
        let job = cx
            .store
            .create_job(body.open(&admin)?.into(), &admin.actor())
            .await?;
        let uuid = job.uuid;
        Ok(created(JsonJob::try_from(job)?, "jobs", uuid))
    }

    async fn jobs_get(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        query: QueryParams<JobsQuery>,
    ) -> Result<JobsPage, HttpError> {
        let cx = rqctx.context();
        jobs_page(cx.store.list_jobs(None, query.open(&admin)?).await?)
    }

    async fn job_get(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<JobPath>,
    ) -> Result<HttpResponseOk<JsonJob>, HttpError> {
        let cx = rqctx.context();
        Ok(HttpResponseOk(
            cx.store.job(path.open(&admin)?.job).await?.try_into()?,
        ))
    }

    async fn job_cancel_post(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<JobPath>,
    ) -> Result<HttpResponseOk<JsonJob>, HttpError> {
        let cx = rqctx.context();
        let job = cx
            .store
            .cancel_job(path.open(&admin)?.job, &admin.actor())
            .await?;
        Ok(HttpResponseOk(job.try_into()?))
    }

    async fn specs_get(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        query: QueryParams<SpecsQuery>,
    ) -> Result<SpecsPage, HttpError> {
        let cx = rqctx.context();
        Ok(page(cx.store.list_specs(query.open(&admin)?).await?))
    }

    async fn specs_post(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        body: JsonBody<JsonNewSpec>,
    ) -> Result<Created<JsonSpec>, HttpError> {
        let cx = rqctx.context();
        let spec = cx
            .store
            .create_spec(body.open(&admin)?.into(), &admin.actor())
            .await?;
        Ok(created(JsonSpec::from(spec.clone()), "specs", spec.uuid))
    }

    async fn spec_get(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<SpecPath>,
    ) -> Result<HttpResponseOk<JsonSpec>, HttpError> {
        let cx = rqctx.context();
        let spec: SpecRef = path.open(&admin)?.spec.into();
        Ok(HttpResponseOk(cx.store.item(&spec).await?.into()))
    }

    async fn spec_patch(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<SpecPath>,
        body: JsonBody<JsonUpdateSpec>,
    ) -> Result<HttpResponseOk<JsonSpec>, HttpError> {
        let cx = rqctx.context();
        let spec: SpecRef = path.open(&admin)?.spec.into();
        let changes = body.open(&admin)?.into();
        let updated = cx.store.update(spec, changes, &admin.actor()).await?;
        Ok(HttpResponseOk(updated.into()))
    }

    async fn spec_delete(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<SpecPath>,
    ) -> Result<HttpResponseDeleted, HttpError> {
        let cx = rqctx.context();
        cx.store
            .delete_spec(path.open(&admin)?.spec.into(), &admin.actor())
            .await?;
        Ok(HttpResponseDeleted())
    }

    async fn server_version_get(
        rqctx: RequestContext<Context>,
    ) -> Result<HttpResponseOk<JsonApiVersion>, HttpError> {
        let requested = rqctx.request.headers().get("api-version");
        let version = api_version(requested.and_then(|v| v.to_str().ok()));
        Ok(HttpResponseOk(JsonApiVersion {
            version: version.to_owned(),
        }))
    }

    async fn server_spec_get(
        rqctx: RequestContext<Context>,
    ) -> Result<HttpResponseOk<JsonOpenApi>, HttpError> {
        Ok(HttpResponseOk(rqctx.context().spec.clone()))
    }
}
