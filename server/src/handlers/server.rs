//! The server's own endpoints: its version, liveness, readiness, live
//! event stream and audit trail.

use std::convert::Infallible;

use dropshot::{Body, HttpError, HttpResponseOk, RequestContext};
use futures::StreamExt as _;

use super::support::api_version;
use crate::api::AuditPage;
use crate::auth::Admin;
use crate::extract::QueryParams;
use crate::server::Context;
use crate::types::{AuditListQuery, JsonApiVersion, JsonAuditEntry, JsonServerStatus};

/// Bencher's API version for the request's `api-version` header.
pub(super) fn version(rqctx: &RequestContext<Context>) -> HttpResponseOk<JsonApiVersion> {
    let requested = rqctx.request.headers().get("api-version");
    let version = api_version(requested.and_then(|v| v.to_str().ok()));
    HttpResponseOk(JsonApiVersion {
        version: version.to_owned(),
    })
}

/// `status`, as the probes answer it.
pub(super) fn status(status: &str) -> HttpResponseOk<JsonServerStatus> {
    HttpResponseOk(JsonServerStatus {
        status: status.to_owned(),
    })
}

/// Ready, or 503 saying why not.
pub(super) async fn ready(cx: &Context) -> Result<HttpResponseOk<JsonServerStatus>, HttpError> {
    let ready = cx.store.readiness().await;
    ready.map_err(|why| crate::error::unavailable(format!("not ready: {why}")))?;
    Ok(status("ready"))
}

/// The live event stream ([`crate::live`]), for as long as the client reads
/// it and the server runs.
pub(super) fn events(cx: &Context, _: &Admin) -> Result<http::Response<Body>, HttpError> {
    let mut events = cx.channel.hub.live.subscribe();
    let frames = futures::stream::poll_fn(move |poll| events.poll_recv(poll))
        .map(|bytes| Ok::<_, Infallible>(hyper::body::Frame::data(bytes)));
    http::Response::builder()
        .header(http::header::CONTENT_TYPE, "text/event-stream")
        .header(http::header::CACHE_CONTROL, "no-store")
        // Proxies that buffer answers (nginx) pass this one on at once.
        .header("x-accel-buffering", "no")
        .body(Body::wrap(http_body_util::StreamBody::new(frames)))
        .map_err(|e| HttpError::for_internal_error(e.to_string()))
}

/// A page of the audit trail, newest first.
pub(super) async fn audit(
    cx: &Context,
    admin: &Admin,
    query: QueryParams<AuditListQuery>,
) -> Result<AuditPage, HttpError> {
    let found = cx.store.audit_page(query.open(admin)?).await?;
    Ok(super::support::page::<_, JsonAuditEntry>(found))
}
