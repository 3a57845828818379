//! The API, declared once. Doc comments here become the OpenAPI document's
//! summaries and descriptions; function names are the operation ids, which
//! are Bencher's, so SDK methods carry Bencher's names. An operation's
//! credential is its first argument after the request context
//! ([`AdminUser`] or [`RunnerAuth`]): checked before anything else of the
//! request, and the operation's `security` in the document.

use dropshot::{
    HttpError, HttpResponseCreated, HttpResponseDeleted, HttpResponseHeaders, HttpResponseOk,
    RequestContext, WebsocketChannelResult, WebsocketConnection,
};

use crate::credential::{self, AdminUser, ChannelAuth, Credentials, RunnerAuth, declare_security};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::types::{
    CloseReason, JobPath, JobsQuery, JsonApiVersion, JsonClaimedJob, JsonJob, JsonNewJob,
    JsonNewRunner, JsonNewRunnerSpec, JsonNewSpec, JsonOpenApi, JsonRunner, JsonRunnerKey,
    JsonSpec, JsonUpdateRunner, JsonUpdateSpec, LocationHeader, RunnerJobsQuery, RunnerMessage,
    RunnerPath, RunnerSpecPath, RunnersQuery, ServerMessage, SpecPath, SpecsQuery,
    TotalCountHeader,
};

/// The title of the OpenAPI document.
pub const API_TITLE: &str = "Runners API";
/// The version of the OpenAPI document.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A page of runners with the number of runners matching the filters.
pub type RunnersPage = HttpResponseHeaders<HttpResponseOk<Vec<JsonRunner>>, TotalCountHeader>;
/// A 201 answer with a `Location` header.
pub type Created<T> = HttpResponseHeaders<HttpResponseCreated<T>, LocationHeader>;
/// A page of specs with the number of specs matching the filters.
pub type SpecsPage = HttpResponseHeaders<HttpResponseOk<Vec<JsonSpec>>, TotalCountHeader>;
/// A page of jobs with the number of jobs matching the filters.
pub type JobsPage = HttpResponseHeaders<HttpResponseOk<Vec<JsonJob>>, TotalCountHeader>;

/// The runners API (Bencher's `/v0/runners`, `/v0/specs` and `/v0/server`
/// endpoints).
#[dropshot::api_description]
pub trait RunnersApi {
    type Context: Credentials;

    /// List runners
    ///
    /// List the runners on the server, one page at a time, sorted by name
    /// (ties broken by slug) or by creation order. By default only active
    /// runners are listed. The `X-Total-Count` header holds the number of
    /// runners matching the filters on all pages.
    /// The user must be an admin to use this endpoint.
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
    /// The user must be an admin to use this endpoint.
    #[endpoint { method = POST, path = "/v0/runners", tags = ["runners"] }]
    async fn runners_post(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        body: JsonBody<JsonNewRunner>,
    ) -> Result<Created<JsonRunnerKey>, HttpError>;

    /// View a runner
    ///
    /// View a runner on the server, by slug or UUID.
    /// The user must be an admin to use this endpoint.
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
    /// The user must be an admin to use this endpoint.
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
    /// The user must be an admin to use this endpoint.
    #[endpoint { method = POST, path = "/v0/runners/{runner}/key", tags = ["runners"] }]
    async fn runner_key_post(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<RunnerPath>,
    ) -> Result<Created<JsonRunnerKey>, HttpError>;

    /// Rotate runner token
    ///
    /// Bencher v0.6.2's name for rotating a runner's key: the same as
    /// `POST /v0/runners/{runner}/key`, kept for v0.6.2 clients.
    /// The user must be an admin to use this endpoint.
    #[endpoint {
        method = POST,
        path = "/v0/runners/{runner}/token",
        tags = ["runners"],
        deprecated = true,
    }]
    async fn runner_token_post(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<RunnerPath>,
    ) -> Result<Created<JsonRunnerKey>, HttpError>;

    /// List runner specs
    ///
    /// List the hardware specs a runner offers, in the order they were added.
    /// The user must be an admin to use this endpoint.
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
    /// The user must be an admin to use this endpoint.
    #[endpoint { method = POST, path = "/v0/runners/{runner}/specs", tags = ["runners"] }]
    async fn runner_specs_post(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<RunnerPath>,
        body: JsonBody<JsonNewRunnerSpec>,
    ) -> Result<Created<JsonSpec>, HttpError>;

    /// Remove a runner spec
    ///
    /// Remove a hardware spec from the specs a runner offers.
    /// The user must be an admin to use this endpoint.
    #[endpoint {
        method = DELETE,
        path = "/v0/runners/{runner}/specs/{spec}",
        tags = ["runners"],
    }]
    async fn runner_spec_delete(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<RunnerSpecPath>,
    ) -> Result<HttpResponseDeleted, HttpError>;

    /// Runner heartbeat
    ///
    /// Record that a runner is alive. Authenticated with that runner's own
    /// key (`Authorization: Bearer bencher_runner_...`), which is accepted
    /// only while the runner is not archived.
    #[endpoint { method = POST, path = "/v0/runners/{runner}/heartbeat", tags = ["runners"] }]
    async fn runner_heartbeat_post(
        rqctx: RequestContext<Self::Context>,
        runner: RunnerAuth,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError>;

    /// Runner channel
    ///
    /// The WebSocket on which a runner's agent (Bencher's `runner up`,
    /// v0.6.3 and later) takes its jobs, authenticated with that runner's
    /// own key (`Authorization: Bearer bencher_runner_...`), checked before
    /// the upgrade: 401 or 403 are plain HTTP answers, and an archived
    /// runner is refused. Messages are JSON text frames tagged by `event`:
    /// the runner sends `RunnerMessage`s (`ready`, `running`, `heartbeat`,
    /// `completed`, `failed`, `canceled`), the server `ServerMessage`s
    /// (`job` with a `JsonClaimedJob`, `no_job`, `ack`, `cancel`); both are
    /// in this document's components. After `ready`, the server answers
    /// `job` as soon as a job for one of the runner's specs is pending
    /// (higher `priority` first, then older), or `no_job` when the
    /// `poll_timeout` passes. A channel without a message for the heartbeat
    /// timeout (90 s by default) is closed with the reason
    /// `"heartbeat_timeout"` (a `CloseReason`), failing its job; a job
    /// running past its timeout plus 60 s is canceled (`cancel`, then the
    /// reason `"job_timeout_exceeded"`). A runner archived or re-keyed is
    /// closed at once.
    #[channel {
        protocol = WEBSOCKETS,
        path = "/v0/runners/{runner}/channel",
        tags = ["runners"],
    }]
    async fn runner_channel(
        rqctx: RequestContext<Self::Context>,
        runner: ChannelAuth,
        upgraded: WebsocketConnection,
    ) -> WebsocketChannelResult;

    /// List a runner's jobs
    ///
    /// List the jobs a runner has claimed, oldest first by default, one
    /// page at a time, optionally only those in some statuses or of one
    /// spec. The `X-Total-Count` header holds the number of jobs matching
    /// the filters on all pages. A list carries no job's output (`output`
    /// is null): view the job (`GET /v0/jobs/{job}`) for it.
    /// The user must be an admin to use this endpoint.
    #[endpoint { method = GET, path = "/v0/runners/{runner}/jobs", tags = ["jobs"] }]
    async fn runner_jobs_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<RunnerPath>,
        query: QueryParams<RunnerJobsQuery>,
    ) -> Result<JobsPage, HttpError>;

    /// Create a job
    ///
    /// Queue a benchmark job: the image to run (`registry`, `project` and
    /// `digest`; the agent pulls `{registry host}/{project}@{digest}`), the
    /// spec a runner must have to take it (the fallback spec if none is
    /// named), and Bencher's job options. A runner waiting on its channel
    /// with that spec is given it at once. The body may be up to 64 KiB.
    /// Without `spec` when no spec is the fallback, the request is fine but
    /// the server's state is not: 409, saying so (name a spec, or make one
    /// the fallback). An archived spec is 409 too, an unknown one 404.
    /// The user must be an admin to use this endpoint.
    #[endpoint {
        method = POST,
        path = "/v0/jobs",
        tags = ["jobs"],
        request_body_max_bytes = 65536,
    }]
    async fn jobs_post(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        body: JsonBody<JsonNewJob>,
    ) -> Result<Created<JsonJob>, HttpError>;

    /// List jobs
    ///
    /// List jobs, oldest first by default, one page at a time, optionally
    /// only those in some statuses (comma-separated), of one runner or of
    /// one spec. The `X-Total-Count` header holds the number of jobs
    /// matching the filters on all pages. A list carries no job's output
    /// (`output` is null): view the job (`GET /v0/jobs/{job}`) for it.
    /// The user must be an admin to use this endpoint.
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
    /// The user must be an admin to use this endpoint.
    #[endpoint { method = GET, path = "/v0/jobs/{job}", tags = ["jobs"] }]
    async fn job_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<JobPath>,
    ) -> Result<HttpResponseOk<JsonJob>, HttpError>;

    /// Cancel a job
    ///
    /// Cancel a job that has not ended: a pending one at once; a claimed or
    /// running one is canceled and its runner told to stop (`cancel` on its
    /// channel). A job that has ended is a conflict.
    /// The user must be an admin to use this endpoint.
    #[endpoint { method = POST, path = "/v0/jobs/{job}/cancel", tags = ["jobs"] }]
    async fn job_cancel_post(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<JobPath>,
    ) -> Result<HttpResponseOk<JsonJob>, HttpError>;

    /// List specs
    ///
    /// List the hardware specs on the server, one page at a time, sorted by
    /// name (ties broken by slug) or by creation order. By default only
    /// active specs are listed. The `X-Total-Count` header holds the number
    /// of specs matching the filters on all pages.
    /// The user must be an admin to use this endpoint.
    #[endpoint { method = GET, path = "/v0/specs", tags = ["specs"] }]
    async fn specs_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        query: QueryParams<SpecsQuery>,
    ) -> Result<SpecsPage, HttpError>;

    /// Create a spec
    ///
    /// Create a new hardware spec. Without a slug, one is generated from the
    /// name. With `fallback`, it becomes the fallback spec and no other spec
    /// is.
    /// The user must be an admin to use this endpoint.
    #[endpoint { method = POST, path = "/v0/specs", tags = ["specs"] }]
    async fn specs_post(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        body: JsonBody<JsonNewSpec>,
    ) -> Result<Created<JsonSpec>, HttpError>;

    /// View a spec
    ///
    /// View a hardware spec, by slug or UUID.
    /// The user must be an admin to use this endpoint.
    #[endpoint { method = GET, path = "/v0/specs/{spec}", tags = ["specs"] }]
    async fn spec_get(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<SpecPath>,
    ) -> Result<HttpResponseOk<JsonSpec>, HttpError>;

    /// Update a spec
    ///
    /// Update a spec's name or slug, make it the fallback spec or not, or
    /// archive or unarchive it. Archiving clears the fallback. Absent fields
    /// are left unchanged.
    /// The user must be an admin to use this endpoint.
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
    /// The user must be an admin to use this endpoint.
    #[endpoint { method = DELETE, path = "/v0/specs/{spec}", tags = ["specs"] }]
    async fn spec_delete(
        rqctx: RequestContext<Self::Context>,
        admin: AdminUser,
        path: PathParams<SpecPath>,
    ) -> Result<HttpResponseDeleted, HttpError>;

    /// View server version
    ///
    /// View the Bencher API version of the server. It speaks the runner
    /// endpoints of Bencher 0.6.2 to 0.6.12: it answers the version a request
    /// names in its `api-version` header when that is one of those, and
    /// `0.6.2` otherwise. No authentication needed.
    #[endpoint { method = GET, path = "/v0/server/version", tags = ["server"] }]
    async fn server_version_get(
        rqctx: RequestContext<Self::Context>,
    ) -> Result<HttpResponseOk<JsonApiVersion>, HttpError>;

    /// View server OpenAPI specification
    ///
    /// View the OpenAPI document of the server: the same document as the
    /// repository's `openapi.json`. No authentication needed.
    #[endpoint { method = GET, path = "/v0/server/spec", tags = ["server"] }]
    async fn server_spec_get(
        rqctx: RequestContext<Self::Context>,
    ) -> Result<HttpResponseOk<JsonOpenApi>, HttpError>;
}

/// The API description of the implementation `I`, to serve: its context
/// becomes usable by the credential extractors ([`crate::credential`]).
pub fn api_description<I: RunnersApi>()
-> Result<dropshot::ApiDescription<I::Context>, dropshot::ApiDescriptionBuildErrors> {
    credential::register::<I::Context>();
    runners_api_mod::api_description::<I>()
}

/// The OpenAPI document of [`RunnersApi`], as checked in at `openapi.json`.
/// Produced from the declarations alone: no server needs to run.
pub fn openapi_document() -> String {
    let api = runners_api_mod::stub_api_description()
        .expect("the API declarations are consistent (checked by the spec test)");
    let mut out = Vec::new();
    api.openapi(
        API_TITLE,
        dropshot::semver::Version::parse(API_VERSION).expect("the crate version is semver"),
    )
    .description(
        "A Bencher-compatible runner registry: list, create, view and update \
         benchmark runners and their hardware specs, and rotate runner keys.",
    )
    .license_name("Apache-2.0")
    .write(&mut out)
    .expect("the OpenAPI document serializes");
    let mut spec: serde_json::Value = serde_json::from_slice(&out).expect("dropshot writes JSON");
    declare_security(&mut spec);
    declare_channel_messages(&mut spec);
    serde_json::to_string_pretty(&spec).expect("the OpenAPI document serializes")
}

/// Adds the runner channel's message types to the document's components
/// (dropshot describes a WebSocket's upgrade, not its messages), so that an
/// SDK generated from it has them typed.
fn declare_channel_messages(spec: &mut serde_json::Value) {
    let settings = schemars::r#gen::SchemaSettings::openapi3().with(|s| {
        s.definitions_path = "#/components/schemas/".to_owned();
    });
    let mut generator = settings.into_generator();
    generator.subschema_for::<RunnerMessage>();
    generator.subschema_for::<ServerMessage>();
    generator.subschema_for::<JsonClaimedJob>();
    generator.subschema_for::<CloseReason>();
    let schemas = &mut spec["components"]["schemas"];
    for (name, schema) in generator.take_definitions() {
        if schemas.get(&name).is_none() {
            schemas[name] = serde_json::to_value(schema).expect("a schema serializes");
        }
    }
}
