//! What the API is besides its declarations: the answers' type aliases,
//! the API description to serve, and the OpenAPI document made from the
//! declarations alone.

use dropshot::{HttpResponseCreated, HttpResponseHeaders, HttpResponseOk};

use super::{RunnersApi, runners_api_mod};
use crate::credential::{self, declare_security};
use crate::types::{
    CloseReason, JsonAuditEntry, JsonClaimedJob, JsonJob, JsonJobEvent, JsonProject,
    JsonProjectKey, JsonReport, JsonRunner, JsonRunnerEvent, JsonSpec, JsonUserKey, LocationHeader,
    RunnerMessage, ServerMessage, TotalCountHeader,
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

/// A page of projects with the number matching the filters.
pub type ProjectsPage = HttpResponseHeaders<HttpResponseOk<Vec<JsonProject>>, TotalCountHeader>;
/// A page of reports with the number matching the filters.
pub type ReportsPage = HttpResponseHeaders<HttpResponseOk<Vec<JsonReport>>, TotalCountHeader>;
/// A page of a project's keys with the number matching the filters.
pub type ProjectKeysPage =
    HttpResponseHeaders<HttpResponseOk<Vec<JsonProjectKey>>, TotalCountHeader>;
/// A page of the audit trail with the number of rows matching the filters.
pub type AuditPage = HttpResponseHeaders<HttpResponseOk<Vec<JsonAuditEntry>>, TotalCountHeader>;
/// A page of a user's keys with the number matching the filters.
pub type UserKeysPage = HttpResponseHeaders<HttpResponseOk<Vec<JsonUserKey>>, TotalCountHeader>;

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
    declare_event_stream(&mut spec);
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
    generator.subschema_for::<JsonRunnerEvent>();
    generator.subschema_for::<JsonJobEvent>();
    let schemas = &mut spec["components"]["schemas"];
    for (name, schema) in generator.take_definitions() {
        if schemas.get(&name).is_none() {
            schemas[name] = serde_json::to_value(schema).expect("a schema serializes");
        }
    }
}

/// States what `GET /v0/events` answers (dropshot describes a streamed
/// body as anything): 200 `text/event-stream`, whose events' `data` are
/// `JsonRunnerEvent` and `JsonJobEvent` (in the components, from
/// [`declare_channel_messages`]), and how to read it.
fn declare_event_stream(spec: &mut serde_json::Value) {
    let op = &mut spec["paths"]["/v0/events"]["get"];
    op["description"] = serde_json::json!(
        "Server-Sent Events, admin only, across replicas: `event: open` first; \
         `event: runner` (data: a `JsonRunnerEvent`) when a runner's channel opens or \
         closes, it is archived or restored, or a job of its changes; `event: job` (data: \
         a `JsonJobEvent`) when a job is created or its status or runner changes; \
         `event: resync` when events were missed (read again what you show); a comment \
         line every 15 s of quiet. Each event carries the status at the time it is sent. \
         Browsers read it with `fetch` and the `Authorization` header (an `EventSource` \
         cannot send one; never put a token in the URL)."
    );
    op["responses"] = serde_json::json!({
        "200": {
            "description": "The event stream.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}}
        },
        "4XX": {"$ref": "#/components/responses/Error"},
        "5XX": {"$ref": "#/components/responses/Error"}
    });
}
