//! The API, declared once. Doc comments here become the OpenAPI document's
//! summaries and descriptions; function names are the operation ids, which
//! are Bencher's, so SDK methods carry Bencher's names. An operation's
//! credential is its first argument after the request context
//! ([`AdminUser`] or [`RunnerAuth`]): checked before anything else of the
//! request, and the operation's `security` in the document.

use dropshot::{
    HttpError, HttpResponseCreated, HttpResponseDeleted, HttpResponseHeaders, HttpResponseOk,
    RequestContext,
};

use crate::credential::{self, AdminUser, Credentials, RunnerAuth, declare_security};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::types::{
    JsonApiVersion, JsonNewRunner, JsonNewRunnerSpec, JsonNewSpec, JsonOpenApi, JsonRunner,
    JsonRunnerKey, JsonSpec, JsonUpdateRunner, JsonUpdateSpec, LocationHeader, RunnerPath,
    RunnerSpecPath, RunnersQuery, SpecPath, SpecsQuery, TotalCountHeader,
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
    serde_json::to_string_pretty(&spec).expect("the OpenAPI document serializes")
}
