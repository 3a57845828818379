//! The handlers: the implementation of [`RunnersApi`]. Each names its
//! credential in its signature, makes one store call, and wraps the answer
//! (the store's rows become wire views here, through [`crate::views`]).

use dropshot::{HttpError, HttpResponseDeleted, HttpResponseOk, RequestContext};

use crate::api::{
    AuditPage, Created, JobsPage, ProjectKeysPage, ProjectsPage, ReportsPage, RunnersApi,
    RunnersPage, SpecsPage, UserKeysPage,
};
use crate::credential::{AdminUser, ChannelAuth, RegistryCredential, RunnerAuth, Submitter};
use crate::extract::{JsonBody, PathParams, QueryParams, RawQuery};
use crate::server::Context;
use crate::store::{RunnerRef, SpecRef};
use crate::types::*;

mod keys;
mod registry;
mod runs;
mod server;
mod support;
use keys::KeyAt;
pub use support::{BENCHER_API_VERSION, api_version, created};
use support::{jobs_page, new_runner_key, page, rotate_key};

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
        let specs = cx.store.runner_specs(&runner).await?.into_iter();
        Ok(HttpResponseOk(specs.map(JsonSpec::from).collect()))
    }

    async fn runner_specs_post(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<RunnerPath>,
        body: JsonBody<JsonNewRunnerSpec>,
    ) -> Result<Created<JsonSpec>, HttpError> {
        let cx = rqctx.context();
        let pair = (
            path.open(&admin)?.runner.into(),
            body.open(&admin)?.spec.into(),
        );
        let spec = cx.store.add_runner_spec(pair, &admin.actor()).await?;
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
        let new = body.open(&admin)?;
        support::only_the_registry(cx, &new.registry)?;
        let job = cx.store.create_job(new.into(), &admin.actor()).await?;
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
        let (cx, spec) = (rqctx.context(), path.open(&admin)?.spec.into());
        cx.store.delete_spec(spec, &admin.actor()).await?;
        Ok(HttpResponseDeleted())
    }

    async fn server_version_get(
        rqctx: RequestContext<Context>,
    ) -> Result<HttpResponseOk<JsonApiVersion>, HttpError> {
        Ok(server::version(&rqctx))
    }

    async fn server_spec_get(
        rqctx: RequestContext<Context>,
    ) -> Result<HttpResponseOk<JsonOpenApi>, HttpError> {
        Ok(HttpResponseOk(rqctx.context().spec.clone()))
    }

    async fn run_post(
        rqctx: RequestContext<Context>,
        Submitter(who): Submitter,
        body: JsonBody<JsonNewRun>,
    ) -> Result<Created<JsonReport>, HttpError> {
        runs::run_post(rqctx.context(), who, body).await
    }

    async fn org_projects_get(
        rqctx: RequestContext<Context>,
        Submitter(who): Submitter,
        path: PathParams<OrganizationPath>,
        query: QueryParams<ProjectsQuery>,
    ) -> Result<ProjectsPage, HttpError> {
        runs::projects_get(rqctx.context(), who, Some(path), query).await
    }

    async fn org_project_post(
        rqctx: RequestContext<Context>,
        Submitter(who): Submitter,
        path: PathParams<OrganizationPath>,
        body: JsonBody<JsonNewProject>,
    ) -> Result<Created<JsonProject>, HttpError> {
        runs::org_project_post(rqctx.context(), who, path, body).await
    }

    async fn projects_get(
        rqctx: RequestContext<Context>,
        Submitter(who): Submitter,
        query: QueryParams<ProjectsQuery>,
    ) -> Result<ProjectsPage, HttpError> {
        runs::projects_get(rqctx.context(), who, None, query).await
    }

    async fn project_get(
        rqctx: RequestContext<Context>,
        Submitter(who): Submitter,
        path: PathParams<ProjectPath>,
    ) -> Result<HttpResponseOk<JsonProject>, HttpError> {
        runs::project_get(rqctx.context(), who, path).await
    }

    async fn project_patch(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<ProjectPath>,
        body: JsonBody<JsonUpdateProject>,
    ) -> Result<HttpResponseOk<JsonProject>, HttpError> {
        runs::project_patch(rqctx.context(), admin, path, body).await
    }

    async fn project_delete(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<ProjectPath>,
        query: QueryParams<ProjectDeleteQuery>,
    ) -> Result<HttpResponseDeleted, HttpError> {
        runs::project_delete(rqctx.context(), admin, path, query).await
    }

    async fn proj_jobs_get(
        rqctx: RequestContext<Context>,
        Submitter(who): Submitter,
        path: PathParams<ProjectPath>,
        query: QueryParams<RunnerJobsQuery>,
    ) -> Result<JobsPage, HttpError> {
        runs::proj_jobs_get(rqctx.context(), who, path, query).await
    }

    async fn proj_job_get(
        rqctx: RequestContext<Context>,
        Submitter(who): Submitter,
        path: PathParams<ProjectJobPath>,
    ) -> Result<HttpResponseOk<JsonJob>, HttpError> {
        runs::proj_job_get(rqctx.context(), who, path).await
    }

    async fn proj_reports_get(
        rqctx: RequestContext<Context>,
        Submitter(who): Submitter,
        path: PathParams<ProjectPath>,
        query: QueryParams<ReportsQuery>,
    ) -> Result<ReportsPage, HttpError> {
        runs::proj_reports_get(rqctx.context(), who, path, query).await
    }

    async fn proj_report_get(
        rqctx: RequestContext<Context>,
        Submitter(who): Submitter,
        path: PathParams<ReportPath>,
    ) -> Result<HttpResponseOk<JsonReport>, HttpError> {
        runs::proj_report_get(rqctx.context(), who, path).await
    }

    async fn proj_keys_get(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<ProjectPath>,
        query: QueryParams<KeysQuery>,
    ) -> Result<ProjectKeysPage, HttpError> {
        keys::proj_keys_get(rqctx.context(), admin, path, query).await
    }

    async fn proj_key_post(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<ProjectPath>,
        body: JsonBody<JsonNewKey>,
    ) -> Result<Created<JsonProjectKeyCreated>, HttpError> {
        keys::proj_key_post(rqctx.context(), admin, path, body).await
    }

    async fn proj_key_get(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<ProjectKeyPath>,
    ) -> Result<HttpResponseOk<JsonProjectKey>, HttpError> {
        keys::key_get(rqctx.context(), KeyAt::Project(admin, path)).await
    }

    async fn proj_key_patch(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<ProjectKeyPath>,
        body: JsonBody<JsonUpdateKey>,
    ) -> Result<HttpResponseOk<JsonProjectKey>, HttpError> {
        keys::key_patch(rqctx.context(), KeyAt::Project(admin, path), body).await
    }

    async fn proj_key_delete(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        path: PathParams<ProjectKeyPath>,
    ) -> Result<HttpResponseDeleted, HttpError> {
        keys::key_delete(rqctx.context(), KeyAt::Project(admin, path)).await
    }

    async fn user_keys_get(
        rqctx: RequestContext<Context>,
        Submitter(who): Submitter,
        path: PathParams<UserPath>,
        query: QueryParams<KeysQuery>,
    ) -> Result<UserKeysPage, HttpError> {
        keys::user_keys_get(rqctx.context(), who, path, query).await
    }

    async fn user_key_post(
        rqctx: RequestContext<Context>,
        Submitter(who): Submitter,
        path: PathParams<UserPath>,
        body: JsonBody<JsonNewKey>,
    ) -> Result<Created<JsonUserKeyCreated>, HttpError> {
        keys::user_key_post(rqctx.context(), who, path, body).await
    }

    async fn user_key_get(
        rqctx: RequestContext<Context>,
        Submitter(who): Submitter,
        path: PathParams<UserKeyPath>,
    ) -> Result<HttpResponseOk<JsonUserKey>, HttpError> {
        keys::key_get(rqctx.context(), KeyAt::User(who, path)).await
    }

    async fn user_key_patch(
        rqctx: RequestContext<Context>,
        Submitter(who): Submitter,
        path: PathParams<UserKeyPath>,
        body: JsonBody<JsonUpdateKey>,
    ) -> Result<HttpResponseOk<JsonUserKey>, HttpError> {
        keys::key_patch(rqctx.context(), KeyAt::User(who, path), body).await
    }

    async fn user_key_delete(
        rqctx: RequestContext<Context>,
        Submitter(who): Submitter,
        path: PathParams<UserKeyPath>,
    ) -> Result<HttpResponseDeleted, HttpError> {
        keys::key_delete(rqctx.context(), KeyAt::User(who, path)).await
    }

    async fn server_config_console_get(
        rqctx: RequestContext<Context>,
    ) -> Result<HttpResponseOk<JsonConsole>, HttpError> {
        Ok(runs::console(rqctx.context()))
    }

    async fn auth_oci_token_get(
        rqctx: RequestContext<Context>,
        who: RegistryCredential,
        query: RawQuery<OciTokenQuery>,
    ) -> Result<HttpResponseOk<JsonOciToken>, HttpError> {
        registry::token(rqctx.context(), who, query).await
    }

    async fn server_live_get(
        _rqctx: RequestContext<Context>,
    ) -> Result<HttpResponseOk<JsonServerStatus>, HttpError> {
        Ok(server::status("live"))
    }

    async fn server_ready_get(
        rqctx: RequestContext<Context>,
    ) -> Result<HttpResponseOk<JsonServerStatus>, HttpError> {
        server::ready(rqctx.context()).await
    }

    async fn events_get(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
    ) -> Result<http::Response<dropshot::Body>, HttpError> {
        server::events(rqctx.context(), &admin)
    }

    async fn audit_get(
        rqctx: RequestContext<Context>,
        AdminUser(admin): AdminUser,
        query: QueryParams<AuditListQuery>,
    ) -> Result<AuditPage, HttpError> {
        server::audit(rqctx.context(), &admin, query).await
    }
}
