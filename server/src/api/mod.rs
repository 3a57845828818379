//! The API, declared once (doc comments: descriptions; names: Bencher's
//! operation ids; the first argument after the context: the credential).

use dropshot::{
    HttpError, HttpResponseDeleted, HttpResponseOk, RequestContext, WebsocketChannelResult,
    WebsocketConnection,
};

mod document;
pub use document::*;

use crate::credential::{
    AdminUser, ChannelAuth, Credentials, RegistryCredential, RunnerAuth, Submitter,
};
use crate::extract::{JsonBody, PathParams, QueryParams, RawQuery};
use crate::types::*;

/// The runners API: Bencher's runners, specs, runs, projects and keys.
#[dropshot::api_description]
pub trait RunnersApi {
    type Context: Credentials;

    /// List runners
    ///
    /// Runners, a page at a time, by name (then slug) or creation order,
    /// only active ones by default; `X-Total-Count` counts all pages.
    #[endpoint { method = GET, path = "/v0/runners", tags = ["runners"] }]
    async fn runners_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        query: QueryParams<RunnersQuery>,
    ) -> Result<RunnersPage, HttpError>;

    /// Create a runner
    ///
    /// Create a new runner on the server. Without a slug, one is generated
    /// from the name (with a short random suffix if that slug is taken).
    /// Returns the runner key, which is only shown this once.
    #[endpoint { method = POST, path = "/v0/runners", tags = ["runners"] }]
    async fn runners_post(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        body: JsonBody<JsonNewRunner>,
    ) -> Result<Created<JsonRunnerKey>, HttpError>;

    /// View a runner (by slug or UUID)
    #[endpoint { method = GET, path = "/v0/runners/{runner}", tags = ["runners"] }]
    async fn runner_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<RunnerPath>,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError>;

    /// Update a runner
    ///
    /// Update a runner's name or slug, or archive or unarchive it. Absent
    /// fields are left unchanged.
    #[endpoint { method = PATCH, path = "/v0/runners/{runner}", tags = ["runners"] }]
    async fn runner_patch(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<RunnerPath>,
        body: JsonBody<JsonUpdateRunner>,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError>;

    /// Rotate runner key
    ///
    /// Generate a new key for a runner, invalidating the old one at once.
    /// Returns the new key, which is only shown this once. An archived
    /// runner's key cannot be rotated.
    #[endpoint { method = POST, path = "/v0/runners/{runner}/key", tags = ["runners"] }]
    async fn runner_key_post(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<RunnerPath>,
    ) -> Result<Created<JsonRunnerKey>, HttpError>;

    /// Rotate runner token (v0.6.2's name for `POST /v0/runners/{runner}/key`)
    #[endpoint { method = POST, path = "/v0/runners/{runner}/token", tags = ["runners"],
                 deprecated = true }]
    async fn runner_token_post(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<RunnerPath>,
    ) -> Result<Created<JsonRunnerKey>, HttpError>;

    /// List a runner's specs (in the order added)
    #[endpoint { method = GET, path = "/v0/runners/{runner}/specs", tags = ["runners"] }]
    async fn runner_specs_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<RunnerPath>,
    ) -> Result<HttpResponseOk<Vec<JsonSpec>>, HttpError>;

    /// Add a runner spec
    ///
    /// Add a hardware spec (by slug or UUID) to the specs a runner offers.
    /// A spec the runner has already is a conflict.
    #[endpoint { method = POST, path = "/v0/runners/{runner}/specs", tags = ["runners"] }]
    async fn runner_specs_post(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<RunnerPath>,
        body: JsonBody<JsonNewRunnerSpec>,
    ) -> Result<Created<JsonSpec>, HttpError>;

    /// Remove a spec from the specs a runner offers
    #[endpoint { method = DELETE, path = "/v0/runners/{runner}/specs/{spec}", tags = ["runners"] }]
    async fn runner_spec_delete(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<RunnerSpecPath>,
    ) -> Result<HttpResponseDeleted, HttpError>;

    /// Runner heartbeat
    ///
    /// Record that a runner is alive, with that runner's own key (`Bearer
    /// bencher_runner_…`), accepted only while the runner is not archived.
    #[endpoint { method = POST, path = "/v0/runners/{runner}/heartbeat", tags = ["runners"] }]
    async fn runner_heartbeat_post(
        rqctx: RequestContext<Self::Context>,
        runner: RunnerAuth,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError>;

    /// Runner channel
    ///
    /// The WebSocket on which a runner's agent (Bencher's `runner up`) takes
    /// its jobs, with its runner's key (401 or 403 before the upgrade).
    /// Frames are `RunnerMessage`s and `ServerMessage`s, JSON tagged by
    /// `event`; it closes with a `CloseReason` (docs/jobs.md).
    #[channel { protocol = WEBSOCKETS, path = "/v0/runners/{runner}/channel", tags = ["runners"] }]
    async fn runner_channel(
        rqctx: RequestContext<Self::Context>,
        runner: ChannelAuth,
        upgraded: WebsocketConnection,
    ) -> WebsocketChannelResult;

    /// List the jobs a runner has claimed
    #[endpoint { method = GET, path = "/v0/runners/{runner}/jobs", tags = ["jobs"] }]
    async fn runner_jobs_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<RunnerPath>,
        query: QueryParams<RunnerJobsQuery>,
    ) -> Result<JobsPage, HttpError>;

    /// Create a job
    ///
    /// Queue a job: its image (pulled as `{registry host}/{project}@{digest}`),
    /// the spec a runner must have (default: the fallback spec), Bencher's job
    /// options; a body of 64 KiB at most. No such spec, or an archived one: 409.
    #[endpoint { method = POST, path = "/v0/jobs", tags = ["jobs"], request_body_max_bytes = 65536 }]
    async fn jobs_post(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        body: JsonBody<JsonNewJob>,
    ) -> Result<Created<JsonJob>, HttpError>;

    /// List jobs
    ///
    /// Jobs, oldest first by default, a page at a time, filtered by statuses
    /// (comma-separated), runner or spec; `X-Total-Count` counts all pages.
    /// A list carries no job's output: view the job for it.
    #[endpoint { method = GET, path = "/v0/jobs", tags = ["jobs"] }]
    async fn jobs_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        query: QueryParams<JobsQuery>,
    ) -> Result<JobsPage, HttpError>;

    /// View a job
    ///
    /// View a job, by UUID: its status, its runner, and once it has ended
    /// its results (`output`, which lists of jobs leave out).
    #[endpoint { method = GET, path = "/v0/jobs/{job}", tags = ["jobs"] }]
    async fn job_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<JobPath>,
    ) -> Result<HttpResponseOk<JsonJob>, HttpError>;

    /// Cancel a job
    ///
    /// Cancel a job that has not ended (else 409): a pending one at once; a
    /// claimed or running one's runner is told to stop (`cancel`).
    #[endpoint { method = POST, path = "/v0/jobs/{job}/cancel", tags = ["jobs"] }]
    async fn job_cancel_post(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<JobPath>,
    ) -> Result<HttpResponseOk<JsonJob>, HttpError>;

    /// List specs
    ///
    /// Specs, a page at a time, by name (then slug) or creation order, only
    /// active ones by default; `X-Total-Count` counts all pages.
    #[endpoint { method = GET, path = "/v0/specs", tags = ["specs"] }]
    async fn specs_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        query: QueryParams<SpecsQuery>,
    ) -> Result<SpecsPage, HttpError>;

    /// Create a spec
    ///
    /// Create a new hardware spec (without a slug, one is made from the name).
    /// With `fallback`, it becomes the fallback spec and no other spec is.
    #[endpoint { method = POST, path = "/v0/specs", tags = ["specs"] }]
    async fn specs_post(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        body: JsonBody<JsonNewSpec>,
    ) -> Result<Created<JsonSpec>, HttpError>;

    /// View a spec (by slug or UUID)
    #[endpoint { method = GET, path = "/v0/specs/{spec}", tags = ["specs"] }]
    async fn spec_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<SpecPath>,
    ) -> Result<HttpResponseOk<JsonSpec>, HttpError>;

    /// Update a spec
    ///
    /// Update a spec's name or slug, make it the fallback spec or not, or
    /// archive (clearing the fallback) or unarchive it. Absent fields stay.
    #[endpoint { method = PATCH, path = "/v0/specs/{spec}", tags = ["specs"] }]
    async fn spec_patch(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<SpecPath>,
        body: JsonBody<JsonUpdateSpec>,
    ) -> Result<HttpResponseOk<JsonSpec>, HttpError>;

    /// Delete a spec
    ///
    /// Delete a hardware spec that no runner has (archived runners too); a
    /// spec still in use is a conflict naming a runner that has it.
    #[endpoint { method = DELETE, path = "/v0/specs/{spec}", tags = ["specs"] }]
    async fn spec_delete(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<SpecPath>,
    ) -> Result<HttpResponseDeleted, HttpError>;

    /// View server version
    ///
    /// The Bencher API version: the request's `api-version` header if it is
    /// 0.6.2 to 0.6.12 (the versions served), else `0.6.2`. No authentication.
    #[endpoint { method = GET, path = "/v0/server/version", tags = ["server"] }]
    async fn server_version_get(
        rqctx: RequestContext<Self::Context>,
    ) -> Result<HttpResponseOk<JsonApiVersion>, HttpError>;

    /// View server OpenAPI specification (`openapi.json`; no authentication)
    #[endpoint { method = GET, path = "/v0/server/spec", tags = ["server"] }]
    async fn server_spec_get(
        rqctx: RequestContext<Self::Context>,
    ) -> Result<HttpResponseOk<JsonOpenApi>, HttpError>;

    /// Submit a run
    ///
    /// Bencher's `bencher run`: queue `job` (its output becomes the report), or
    /// record `results` (Bencher Metric Format) now. A body of 4 MiB at most.
    #[endpoint { method = POST, path = "/v0/run", tags = ["runs"],
                 request_body_max_bytes = 4194304 }]
    async fn run_post(
        rqctx: RequestContext<Self::Context>,
        who: Submitter,
        body: JsonBody<JsonNewRun>,
    ) -> Result<Created<JsonReport>, HttpError>;

    /// List an organization's projects (`default`: this server's one)
    #[endpoint { method = GET, path = "/v0/organizations/{organization}/projects",
                 tags = ["projects"] }]
    async fn org_projects_get(
        rqctx: RequestContext<Self::Context>,
        who: Submitter,
        path: PathParams<OrganizationPath>,
        query: QueryParams<ProjectsQuery>,
    ) -> Result<ProjectsPage, HttpError>;

    /// Create a project in an organization (`default`; not with a project key)
    #[endpoint { method = POST, path = "/v0/organizations/{organization}/projects",
                 tags = ["projects"], request_body_max_bytes = 16384 }]
    async fn org_project_post(
        rqctx: RequestContext<Self::Context>,
        who: Submitter,
        path: PathParams<OrganizationPath>,
        body: JsonBody<JsonNewProject>,
    ) -> Result<Created<JsonProject>, HttpError>;

    /// List projects (a project key: its own)
    #[endpoint { method = GET, path = "/v0/projects", tags = ["projects"] }]
    async fn projects_get(
        rqctx: RequestContext<Self::Context>,
        who: Submitter,
        query: QueryParams<ProjectsQuery>,
    ) -> Result<ProjectsPage, HttpError>;

    /// View a project
    #[endpoint { method = GET, path = "/v0/projects/{project}", tags = ["projects"] }]
    async fn project_get(
        rqctx: RequestContext<Self::Context>,
        who: Submitter,
        path: PathParams<ProjectPath>,
    ) -> Result<HttpResponseOk<JsonProject>, HttpError>;

    /// Update a project
    #[endpoint { method = PATCH, path = "/v0/projects/{project}", tags = ["projects"],
                 request_body_max_bytes = 16384 }]
    async fn project_patch(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<ProjectPath>,
        body: JsonBody<JsonUpdateProject>,
    ) -> Result<HttpResponseOk<JsonProject>, HttpError>;

    /// Delete a project, its keys and reports (its jobs stay)
    #[endpoint { method = DELETE, path = "/v0/projects/{project}", tags = ["projects"] }]
    async fn project_delete(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<ProjectPath>,
        query: QueryParams<ProjectDeleteQuery>,
    ) -> Result<HttpResponseDeleted, HttpError>;

    /// List a project's jobs
    #[endpoint { method = GET, path = "/v0/projects/{project}/jobs", tags = ["projects"] }]
    async fn proj_jobs_get(
        rqctx: RequestContext<Self::Context>,
        who: Submitter,
        path: PathParams<ProjectPath>,
        query: QueryParams<RunnerJobsQuery>,
    ) -> Result<JobsPage, HttpError>;

    /// View a project's job
    #[endpoint { method = GET, path = "/v0/projects/{project}/jobs/{job}", tags = ["projects"] }]
    async fn proj_job_get(
        rqctx: RequestContext<Self::Context>,
        who: Submitter,
        path: PathParams<ProjectJobPath>,
    ) -> Result<HttpResponseOk<JsonJob>, HttpError>;

    /// List a project's reports
    #[endpoint { method = GET, path = "/v0/projects/{project}/reports", tags = ["projects"] }]
    async fn proj_reports_get(
        rqctx: RequestContext<Self::Context>,
        who: Submitter,
        path: PathParams<ProjectPath>,
        query: QueryParams<ReportsQuery>,
    ) -> Result<ReportsPage, HttpError>;

    /// View a project's report
    #[endpoint { method = GET, path = "/v0/projects/{project}/reports/{report}",
                 tags = ["projects"] }]
    async fn proj_report_get(
        rqctx: RequestContext<Self::Context>,
        who: Submitter,
        path: PathParams<ReportPath>,
    ) -> Result<HttpResponseOk<JsonReport>, HttpError>;

    /// List a project's keys
    #[endpoint { method = GET, path = "/v0/projects/{project}/keys", tags = ["keys"] }]
    async fn proj_keys_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<ProjectPath>,
        query: QueryParams<KeysQuery>,
    ) -> Result<ProjectKeysPage, HttpError>;

    /// Create a project key
    ///
    /// A `bencher_run_` key: runs to this project and reads of it, its jobs
    /// and reports. Shown this once.
    #[endpoint { method = POST, path = "/v0/projects/{project}/keys", tags = ["keys"] }]
    async fn proj_key_post(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<ProjectPath>,
        body: JsonBody<JsonNewKey>,
    ) -> Result<Created<JsonProjectKeyCreated>, HttpError>;

    /// View a project key
    #[endpoint { method = GET, path = "/v0/projects/{project}/keys/{key}", tags = ["keys"] }]
    async fn proj_key_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<ProjectKeyPath>,
    ) -> Result<HttpResponseOk<JsonProjectKey>, HttpError>;

    /// Rename a project key
    #[endpoint { method = PATCH, path = "/v0/projects/{project}/keys/{key}", tags = ["keys"] }]
    async fn proj_key_patch(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<ProjectKeyPath>,
        body: JsonBody<JsonUpdateKey>,
    ) -> Result<HttpResponseOk<JsonProjectKey>, HttpError>;

    /// Revoke a project key
    #[endpoint { method = DELETE, path = "/v0/projects/{project}/keys/{key}", tags = ["keys"] }]
    async fn proj_key_delete(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<ProjectKeyPath>,
    ) -> Result<HttpResponseDeleted, HttpError>;

    /// List a user's keys
    #[endpoint { method = GET, path = "/v0/users/{user}/keys", tags = ["keys"] }]
    async fn user_keys_get(
        rqctx: RequestContext<Self::Context>,
        who: Submitter,
        path: PathParams<UserPath>,
        query: QueryParams<KeysQuery>,
    ) -> Result<UserKeysPage, HttpError>;

    /// Create a user key (`bencher_user_…`: the user's rights; shown this once)
    #[endpoint { method = POST, path = "/v0/users/{user}/keys", tags = ["keys"] }]
    async fn user_key_post(
        rqctx: RequestContext<Self::Context>,
        who: Submitter,
        path: PathParams<UserPath>,
        body: JsonBody<JsonNewKey>,
    ) -> Result<Created<JsonUserKeyCreated>, HttpError>;

    /// View a user key
    #[endpoint { method = GET, path = "/v0/users/{user}/keys/{key}", tags = ["keys"] }]
    async fn user_key_get(
        rqctx: RequestContext<Self::Context>,
        who: Submitter,
        path: PathParams<UserKeyPath>,
    ) -> Result<HttpResponseOk<JsonUserKey>, HttpError>;

    /// Rename a user key
    #[endpoint { method = PATCH, path = "/v0/users/{user}/keys/{key}", tags = ["keys"] }]
    async fn user_key_patch(
        rqctx: RequestContext<Self::Context>,
        who: Submitter,
        path: PathParams<UserKeyPath>,
        body: JsonBody<JsonUpdateKey>,
    ) -> Result<HttpResponseOk<JsonUserKey>, HttpError>;

    /// Revoke a user key
    #[endpoint { method = DELETE, path = "/v0/users/{user}/keys/{key}", tags = ["keys"] }]
    async fn user_key_delete(
        rqctx: RequestContext<Self::Context>,
        who: Submitter,
        path: PathParams<UserKeyPath>,
    ) -> Result<HttpResponseDeleted, HttpError>;

    /// View the console's URL (where Bencher's CLI links a report; no authentication)
    #[endpoint { method = GET, path = "/v0/server/config/console", tags = ["server"] }]
    async fn server_config_console_get(
        rqctx: RequestContext<Self::Context>,
    ) -> Result<HttpResponseOk<JsonConsole>, HttpError>;

    /// Liveness: 200 while the process serves (Kubernetes' probe; no authentication)
    #[endpoint { method = GET, path = "/v0/server/live", tags = ["server"] }]
    async fn server_live_get(
        rqctx: RequestContext<Self::Context>,
    ) -> Result<HttpResponseOk<JsonServerStatus>, HttpError>;

    /// Readiness
    ///
    /// 200 while the database answers, its writer lives and (PostgreSQL)
    /// LISTEN is connected; else 503 saying which (for a load balancer).
    #[endpoint { method = GET, path = "/v0/server/ready", tags = ["server"] }]
    async fn server_ready_get(
        rqctx: RequestContext<Self::Context>,
    ) -> Result<HttpResponseOk<JsonServerStatus>, HttpError>;

    /// Get a registry token
    ///
    /// Docker's token endpoint for the OCI registry that trusts this server:
    /// a token granting of each `scope` what the credential may (none sent:
    /// nothing). A credential sent and not valid: 401.
    #[endpoint { method = GET, path = "/v0/auth/oci/token", tags = ["registry"] }]
    async fn auth_oci_token_get(
        rqctx: RequestContext<Self::Context>,
        who: RegistryCredential,
        query: RawQuery<OciTokenQuery>,
    ) -> Result<HttpResponseOk<JsonOciToken>, HttpError>;

    /// Live events: runners' and jobs' statuses as they change (admin)
    #[endpoint { method = GET, path = "/v0/events", tags = ["server"] }]
    async fn events_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
    ) -> Result<http::Response<dropshot::Body>, HttpError>;

    /// List the audit trail (newest first; `X-Total-Count` counts all pages)
    #[endpoint { method = GET, path = "/v0/audit", tags = ["server"] }]
    async fn audit_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        query: QueryParams<AuditListQuery>,
    ) -> Result<AuditPage, HttpError>;
}
