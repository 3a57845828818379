//! The ceiling: dropshot serving the runners endpoints from memory, with no
//! auth and no database. Same paths, same wire types (so the same response
//! bytes), same `X-Total-Count`: what the framework can do at best.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::RwLock;

use chrono::Utc;
use dropshot::{
    ApiDescription, ConfigDropshot, HttpError, HttpResponseCreated, HttpResponseHeaders,
    HttpResponseOk, HttpServer, Path, Query, RequestContext, ServerBuilder, TypedBody, endpoint,
};
use runners_server::types::{
    JsonNewRunner, JsonRunner, JsonRunnerKey, RunnerPath, RunnersQuery, TotalCountHeader,
};
use runners_server::validate::Ref;

/// The runners, sorted as the default list sorts them (name, then slug),
/// with an index by slug and by uuid.
pub struct Memory {
    inner: RwLock<Inner>,
}

struct Inner {
    sorted: Vec<JsonRunner>,
    index: HashMap<String, usize>,
}

impl Memory {
    pub fn new(mut runners: Vec<JsonRunner>) -> Self {
        runners.sort_by(|a, b| (&a.name, &a.slug).cmp(&(&b.name, &b.slug)));
        let mut index = HashMap::with_capacity(runners.len() * 2);
        for (i, r) in runners.iter().enumerate() {
            index.insert(r.slug.clone(), i);
            index.insert(r.uuid.to_string(), i);
        }
        Self {
            inner: RwLock::new(Inner {
                sorted: runners,
                index,
            }),
        }
    }
}

/// The index key of a path's runner: its slug, or its UUID as text.
fn key(runner: Ref) -> String {
    match runner {
        Ref::Uuid(uuid) => uuid.to_string(),
        Ref::Slug(slug) => slug,
    }
}

fn not_found(runner: &str) -> HttpError {
    HttpError::for_not_found(None, format!("runner `{runner}` not found"))
}

type Page = HttpResponseHeaders<HttpResponseOk<Vec<JsonRunner>>, TotalCountHeader>;

#[endpoint { method = GET, path = "/v0/runners" }]
async fn runners_get(
    rqctx: RequestContext<Memory>,
    query: Query<RunnersQuery>,
) -> Result<Page, HttpError> {
    let q = query.into_inner();
    let per_page = q.per_page.map_or(8, |p| p.get()) as usize;
    let offset = (q.page.map_or(1, |p| p.get()) as usize - 1) * per_page;
    let inner = rqctx.context().inner.read().unwrap();
    let (page, total) = match &q.search {
        None => {
            let end = (offset + per_page).min(inner.sorted.len());
            let page = inner.sorted.get(offset..end).unwrap_or_default().to_vec();
            (page, inner.sorted.len())
        }
        Some(search) => {
            let search = search.to_lowercase();
            let matches = |r: &&JsonRunner| {
                r.name.to_lowercase().contains(&search)
                    || r.slug.contains(&search)
                    || r.uuid.to_string().contains(&search)
            };
            let total = inner.sorted.iter().filter(matches).count();
            let page = inner
                .sorted
                .iter()
                .filter(matches)
                .skip(offset)
                .take(per_page)
                .cloned()
                .collect();
            (page, total)
        }
    };
    Ok(HttpResponseHeaders::new(
        HttpResponseOk(page),
        TotalCountHeader {
            x_total_count: total.to_string(),
        },
    ))
}

#[endpoint { method = POST, path = "/v0/runners" }]
async fn runners_post(
    _rqctx: RequestContext<Memory>,
    body: TypedBody<JsonNewRunner>,
) -> Result<HttpResponseCreated<JsonRunnerKey>, HttpError> {
    let _new = body.into_inner();
    Ok(HttpResponseCreated(JsonRunnerKey::new(
        uuid::Uuid::new_v4(),
        runners_server::auth::new_runner_key(),
    )))
}

#[endpoint { method = GET, path = "/v0/runners/{runner}" }]
async fn runner_get(
    rqctx: RequestContext<Memory>,
    path: Path<RunnerPath>,
) -> Result<HttpResponseOk<JsonRunner>, HttpError> {
    let runner = key(path.into_inner().runner);
    let inner = rqctx.context().inner.read().unwrap();
    let i = *inner.index.get(&runner).ok_or_else(|| not_found(&runner))?;
    Ok(HttpResponseOk(inner.sorted[i].clone()))
}

#[endpoint { method = POST, path = "/v0/runners/{runner}/key" }]
async fn runner_token_post(
    rqctx: RequestContext<Memory>,
    path: Path<RunnerPath>,
) -> Result<HttpResponseCreated<JsonRunnerKey>, HttpError> {
    let runner = key(path.into_inner().runner);
    let inner = rqctx.context().inner.read().unwrap();
    let i = *inner.index.get(&runner).ok_or_else(|| not_found(&runner))?;
    Ok(HttpResponseCreated(JsonRunnerKey::new(
        inner.sorted[i].uuid,
        runners_server::auth::new_runner_key(),
    )))
}

#[endpoint { method = POST, path = "/v0/runners/{runner}/heartbeat" }]
async fn runner_heartbeat_post(
    rqctx: RequestContext<Memory>,
    path: Path<RunnerPath>,
) -> Result<HttpResponseOk<JsonRunner>, HttpError> {
    let runner = key(path.into_inner().runner);
    let mut inner = rqctx.context().inner.write().unwrap();
    let i = *inner.index.get(&runner).ok_or_else(|| not_found(&runner))?;
    let runner = &mut inner.sorted[i];
    runner.last_heartbeat = Some(Utc::now());
    Ok(HttpResponseOk(runner.clone()))
}

/// Starts the ceiling on 127.0.0.1:0, on the current runtime, with the
/// request log or without it.
pub fn start(memory: Memory, logged: bool) -> anyhow::Result<HttpServer<Memory>> {
    let mut api = ApiDescription::new();
    api.register(runners_get)?;
    api.register(runners_post)?;
    api.register(runner_get)?;
    api.register(runner_token_post)?;
    api.register(runner_heartbeat_post)?;
    let config = ConfigDropshot {
        bind_address: SocketAddr::from(([127, 0, 0, 1], 0)),
        default_request_body_max_bytes: runners_server::server::REQUEST_BODY_MAX_BYTES,
        ..Default::default()
    };
    // The product's request log, same format, level and locking, to
    // /dev/null (where the benchmark sends the server's too): the ceiling
    // leaves out auth and the database, not the framework's logging.
    let log = if logged {
        runners_server::server::request_log(slog::Level::Info, std::fs::File::create("/dev/null")?)
    } else {
        slog::Logger::root(slog::Discard, slog::o!())
    };
    ServerBuilder::new(api, memory, log)
        .config(config)
        .start()
        .map_err(|e| anyhow::anyhow!("cannot start the ceiling: {e}"))
}
