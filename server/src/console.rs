//! The console (`/console/`): the web pages of `console/`, built into
//! `console/dist/` (checked in, rebuilt and compared by CI) and embedded in
//! the binary, so the server serves them with no Node on the machine. Same
//! origin as the API: no CORS. Every answer carries a strict
//! Content-Security-Policy (scripts and styles from this origin only, no
//! inline script or style, no frames), and the pages keep the token in
//! session storage: never in a URL or a cookie. Not part of the API: no
//! operation in `openapi.json`.

use dropshot::{
    ApiDescription, ApiEndpoint, ApiEndpointVersions, Body, HttpError, Path, RequestContext,
    ServerContext,
};
use http::header;
use schemars::JsonSchema;
use serde::Deserialize;

/// The policy every console answer carries.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The built files: name, content type, bytes.
const FILES: [(&str, &str, &[u8]); 3] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../console/dist/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/dist/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../console/dist/app.css"),
    ),
];

/// The path under `/console/`.
#[derive(Deserialize, JsonSchema)]
pub struct ConsolePath {
    path: Vec<String>,
}

/// Adds the console's route to `api`, unpublished (it needs no context of
/// the server's: any will do).
pub fn register<C: ServerContext>(api: &mut ApiDescription<C>) -> anyhow::Result<()> {
    let endpoint = ApiEndpoint::new(
        "console_get".to_owned(),
        console_get::<C>,
        http::Method::GET,
        "application/json",
        "/console/{path:.*}",
        ApiEndpointVersions::All,
    );
    api.register(endpoint.visible(false))
        .map_err(|e| anyhow::anyhow!("the console's route: {e}"))
}

/// `/console/` (and `/console`): the page; `/console/app.js`,
/// `/console/app.css`: its files; anything else under it: 404.
async fn console_get<C: ServerContext>(
    _rqctx: RequestContext<C>,
    path: Path<ConsolePath>,
) -> Result<http::Response<Body>, HttpError> {
    let path = path.into_inner().path;
    let name = match path.as_slice() {
        [] => "index.html",
        [one] => one.as_str(),
        _ => "",
    };
    let Some((_, kind, bytes)) = FILES.iter().find(|(file, ..)| *file == name) else {
        return Err(HttpError::for_not_found(
            None,
            format!("no console file {name:?}"),
        ));
    };
    answer(
        http::StatusCode::OK,
        kind,
        Body::from(bytes::Bytes::from_static(bytes)),
    )
}

fn answer(
    status: http::StatusCode,
    kind: &str,
    body: Body,
) -> Result<http::Response<Body>, HttpError> {
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, kind)
        .header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
        .header(header::X_FRAME_OPTIONS, "DENY")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        // The names carry no hash: ask every time (a 49 KiB script).
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .map_err(|e| HttpError::for_internal_error(e.to_string()))
}
