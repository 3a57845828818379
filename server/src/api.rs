//! The API, declared once. Doc comments here become the OpenAPI document's
//! summaries and descriptions; function names are the operation ids, which
//! are Bencher's, so SDK methods carry Bencher's names.

use dropshot::{
    HttpError, HttpResponseCreated, HttpResponseHeaders, HttpResponseOk, Path, RequestContext,
};

use crate::extract::{JsonBody, QueryParams};
use crate::types::{
    JsonApiVersion, JsonNewRunner, JsonRunner, JsonRunnerToken, JsonSpec, JsonUpdateRunner,
    RunnerPath, RunnersQuery, TotalCountHeader,
};

/// The title of the OpenAPI document.
pub const API_TITLE: &str = "Runners API";
/// The version of the OpenAPI document.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A page of runners with the number of runners matching the filters.
pub type RunnersPage = HttpResponseHeaders<HttpResponseOk<Vec<JsonRunner>>, TotalCountHeader>;

/// The runners API (Bencher's `/v0/runners` and `/v0/server` endpoints).
#[dropshot::api_description]
pub trait RunnersApi {
    type Context;

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
        query: QueryParams<RunnersQuery>,
    ) -> Result<RunnersPage, HttpError>;

    /// Create a runner
    ///
    /// Create a new runner on the server. Without a slug, one is generated
    /// from the name (with a short random suffix if that slug is taken).
    /// Returns the runner token, which is only shown this once.
    /// The user must be an admin to use this endpoint.
    #[endpoint { method = POST, path = "/v0/runners", tags = ["runners"] }]
    async fn runners_post(
        rqctx: RequestContext<Self::Context>,
        body: JsonBody<JsonNewRunner>,
    ) -> Result<HttpResponseCreated<JsonRunnerToken>, HttpError>;

    /// View a runner
    ///
    /// View a runner on the server, by slug or UUID.
    /// The user must be an admin to use this endpoint.
    #[endpoint { method = GET, path = "/v0/runners/{runner}", tags = ["runners"] }]
    async fn runner_get(
        rqctx: RequestContext<Self::Context>,
        path: Path<RunnerPath>,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError>;

    /// Update a runner
    ///
    /// Update a runner's name or slug, or archive or unarchive it. Absent
    /// fields are left unchanged.
    /// The user must be an admin to use this endpoint.
    #[endpoint { method = PATCH, path = "/v0/runners/{runner}", tags = ["runners"] }]
    async fn runner_patch(
        rqctx: RequestContext<Self::Context>,
        path: Path<RunnerPath>,
        body: JsonBody<JsonUpdateRunner>,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError>;

    /// Rotate runner token
    ///
    /// Generate a new token for a runner, invalidating the old one at once.
    /// Returns the new token, which is only shown this once. An archived
    /// runner's token cannot be rotated.
    /// The user must be an admin to use this endpoint.
    #[endpoint { method = POST, path = "/v0/runners/{runner}/token", tags = ["runners"] }]
    async fn runner_token_post(
        rqctx: RequestContext<Self::Context>,
        path: Path<RunnerPath>,
    ) -> Result<HttpResponseCreated<JsonRunnerToken>, HttpError>;

    /// Runner heartbeat
    ///
    /// Record that a runner is alive. Authenticated with that runner's own
    /// token (`Authorization: Bearer bencher_runner_...`), which is accepted
    /// only while the runner is not archived.
    #[endpoint { method = POST, path = "/v0/runners/{runner}/heartbeat", tags = ["runners"] }]
    async fn runner_heartbeat_post(
        rqctx: RequestContext<Self::Context>,
        path: Path<RunnerPath>,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError>;

    /// View server version
    ///
    /// View the API version of the server. No authentication needed.
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
    ) -> Result<HttpResponseOk<JsonSpec>, HttpError>;
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
         benchmark runners, and rotate their tokens.",
    )
    .license_name("Apache-2.0")
    .write(&mut out)
    .expect("the OpenAPI document serializes");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}
