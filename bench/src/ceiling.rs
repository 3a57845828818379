//! The ceiling: dropshot serving the runners API from memory, with no auth
//! and no database: a second implementation of [`RunnersApi`], so that its
//! paths, extractors and wire types are the product's, checked by the
//! compiler (same response bytes, same `X-Total-Count`, same `Location`).
//! What the framework can do at best. The operations the benchmark does not
//! send answer 404.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::RwLock;

use chrono::Utc;
use dropshot::{
    ConfigDropshot, HttpError, HttpResponseDeleted, HttpResponseHeaders, HttpResponseOk,
    HttpServer, RequestContext, ServerBuilder,
};
use runners_server::api as a;
use runners_server::api::{Created, RunnersApi, RunnersPage, SpecsPage};
use runners_server::auth::{self, Admin, AuthError};
use runners_server::credential::{AdminUser, ChannelAuth, Credentials, RunnerAuth};
use runners_server::credential::{RegistryCredential, Submitter};
use runners_server::extract::{JsonBody, PathParams, QueryParams, RawQuery};
use runners_server::handlers::created;
use runners_server::types as t;
use runners_server::types::{
    JsonApiVersion, JsonNewRunner, JsonNewRunnerSpec, JsonNewSpec, JsonOpenApi, JsonRunner,
    JsonRunnerKey, JsonSpec, JsonUpdateRunner, JsonUpdateSpec, RunnerPath, RunnerSpecPath,
    RunnersQuery, SpecPath, SpecsQuery, TotalCountHeader,
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

    /// The index of the runner `runner` names.
    fn find(&self, runner: &Ref) -> Result<usize, HttpError> {
        let key = key(runner);
        let inner = self.inner.read().unwrap();
        inner
            .index
            .get(&key)
            .copied()
            .ok_or_else(|| not_found(&key))
    }
}

/// The ceiling checks no credentials: every request is the admin's, and a
/// heartbeat is its path's runner's.
#[async_trait::async_trait]
impl Credentials for Memory {
    /// The path's runner, taken at its word.
    type Runner = Ref;

    async fn admin(&self, _: &http::HeaderMap) -> Result<Admin, AuthError> {
        Ok(Admin {
            user: uuid::Uuid::nil(),
            user_name: "ceiling".to_owned(),
            token: uuid::Uuid::nil(),
        })
    }

    async fn principal(&self, _: &http::HeaderMap) -> Result<auth::Principal, AuthError> {
        Err(AuthError::ProjectKeyOnlyItsRuns)
    }

    async fn runner(&self, _: &http::HeaderMap, runner: &Ref) -> Result<Ref, AuthError> {
        Ok(runner.clone())
    }
}

/// The index key of a path's runner: its slug, or its UUID as text.
fn key(runner: &Ref) -> String {
    match runner {
        Ref::Uuid(uuid) => uuid.to_string(),
        Ref::Slug(slug) => slug.clone(),
    }
}

fn not_found(what: &str) -> HttpError {
    HttpError::for_not_found(None, format!("`{what}` is not served by the ceiling"))
}

/// A new key for runner `i`, as a rotation answers.
fn new_key(cx: &Memory, runner: &Ref) -> Result<Created<JsonRunnerKey>, HttpError> {
    let i = cx.find(runner)?;
    let uuid = cx.inner.read().unwrap().sorted[i].uuid;
    let key = JsonRunnerKey::new(uuid, auth::new_runner_key());
    Ok(created(key, "runners", uuid))
}

/// Operations the ceiling does not serve (the submitter side): each is a
/// 404 naming it.
macro_rules! not_served {
    ($($op:ident($($arg:ty),*) -> $out:ty;)*) => {$(
        async fn $op(_: RequestContext<Memory>, $(_: $arg),*) -> Result<$out, HttpError> {
            Err(not_found(stringify!($op)))
        }
    )*};
}

/// The ceiling's implementation of [`RunnersApi`].
pub enum Ceiling {}

impl RunnersApi for Ceiling {
    type Context = Memory;

    async fn runners_get(
        rqctx: RequestContext<Memory>,
        AdminUser(admin): AdminUser,
        query: QueryParams<RunnersQuery>,
    ) -> Result<RunnersPage, HttpError> {
        let q = query.open(&admin)?;
        let per_page = q.per_page as usize;
        let offset = usize::try_from(q.offset()).unwrap_or(usize::MAX);
        let inner = rqctx.context().inner.read().unwrap();
        let (page, total) = match &q.search {
            None => {
                let start = offset.min(inner.sorted.len());
                let end = start.saturating_add(per_page).min(inner.sorted.len());
                (inner.sorted[start..end].to_vec(), inner.sorted.len())
            }
            // Lowercased already by the query's rules.
            Some(search) => {
                let matches = |r: &&JsonRunner| {
                    r.name.to_lowercase().contains(search)
                        || r.slug.contains(search)
                        || r.uuid.to_string().contains(search)
                };
                let total = inner.sorted.iter().filter(matches).count();
                let page = inner.sorted.iter().filter(matches);
                (page.skip(offset).take(per_page).cloned().collect(), total)
            }
        };
        Ok(HttpResponseHeaders::new(
            HttpResponseOk(page),
            TotalCountHeader {
                x_total_count: total.to_string(),
            },
        ))
    }

    async fn runners_post(
        _: RequestContext<Memory>,
        _: AdminUser,
        _: JsonBody<JsonNewRunner>,
    ) -> Result<Created<JsonRunnerKey>, HttpError> {
        let uuid = uuid::Uuid::new_v4();
        let key = JsonRunnerKey::new(uuid, auth::new_runner_key());
        Ok(created(key, "runners", uuid))
    }

    async fn runner_get(
        rqctx: RequestContext<Memory>,
        AdminUser(admin): AdminUser,
        path: PathParams<RunnerPath>,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError> {
        let cx = rqctx.context();
        let i = cx.find(&path.open(&admin)?.runner)?;
        Ok(HttpResponseOk(cx.inner.read().unwrap().sorted[i].clone()))
    }

    async fn runner_patch(
        _: RequestContext<Memory>,
        _: AdminUser,
        _: PathParams<RunnerPath>,
        _: JsonBody<JsonUpdateRunner>,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError> {
        Err(not_found("PATCH /v0/runners/{runner}"))
    }

    async fn runner_key_post(
        rqctx: RequestContext<Memory>,
        AdminUser(admin): AdminUser,
        path: PathParams<RunnerPath>,
    ) -> Result<Created<JsonRunnerKey>, HttpError> {
        new_key(rqctx.context(), &path.open(&admin)?.runner)
    }

    /// The same as `/key`, under v0.6.2's name.
    async fn runner_token_post(
        rqctx: RequestContext<Memory>,
        admin: AdminUser,
        path: PathParams<RunnerPath>,
    ) -> Result<Created<JsonRunnerKey>, HttpError> {
        Self::runner_key_post(rqctx, admin, path).await
    }

    async fn runner_channel(
        _: RequestContext<Memory>,
        _: ChannelAuth,
        _: dropshot::WebsocketConnection,
    ) -> dropshot::WebsocketChannelResult {
        Ok(())
    }

    async fn runner_jobs_get(
        _: RequestContext<Memory>,
        _: AdminUser,
        _: PathParams<RunnerPath>,
        _: QueryParams<runners_server::types::RunnerJobsQuery>,
    ) -> Result<runners_server::api::JobsPage, HttpError> {
        Err(not_found("GET /v0/runners/{runner}/jobs"))
    }

    async fn jobs_post(
        _: RequestContext<Memory>,
        _: AdminUser,
        _: JsonBody<runners_server::types::JsonNewJob>,
    ) -> Result<Created<runners_server::types::JsonJob>, HttpError> {
        Err(not_found("POST /v0/jobs"))
    }

    async fn jobs_get(
        _: RequestContext<Memory>,
        _: AdminUser,
        _: QueryParams<runners_server::types::JobsQuery>,
    ) -> Result<runners_server::api::JobsPage, HttpError> {
        Err(not_found("GET /v0/jobs"))
    }

    async fn job_get(
        _: RequestContext<Memory>,
        _: AdminUser,
        _: PathParams<runners_server::types::JobPath>,
    ) -> Result<HttpResponseOk<runners_server::types::JsonJob>, HttpError> {
        Err(not_found("GET /v0/jobs/{job}"))
    }

    async fn job_cancel_post(
        _: RequestContext<Memory>,
        _: AdminUser,
        _: PathParams<runners_server::types::JobPath>,
    ) -> Result<HttpResponseOk<runners_server::types::JsonJob>, HttpError> {
        Err(not_found("POST /v0/jobs/{job}/cancel"))
    }

    async fn runner_specs_get(
        _: RequestContext<Memory>,
        _: AdminUser,
        _: PathParams<RunnerPath>,
    ) -> Result<HttpResponseOk<Vec<JsonSpec>>, HttpError> {
        Err(not_found("GET /v0/runners/{runner}/specs"))
    }

    async fn runner_specs_post(
        _: RequestContext<Memory>,
        _: AdminUser,
        _: PathParams<RunnerPath>,
        _: JsonBody<JsonNewRunnerSpec>,
    ) -> Result<Created<JsonSpec>, HttpError> {
        Err(not_found("POST /v0/runners/{runner}/specs"))
    }

    async fn runner_spec_delete(
        _: RequestContext<Memory>,
        _: AdminUser,
        _: PathParams<RunnerSpecPath>,
    ) -> Result<HttpResponseDeleted, HttpError> {
        Err(not_found("DELETE /v0/runners/{runner}/specs/{spec}"))
    }

    async fn runner_heartbeat_post(
        rqctx: RequestContext<Memory>,
        runner: RunnerAuth,
    ) -> Result<HttpResponseOk<JsonRunner>, HttpError> {
        let cx = rqctx.context();
        let i = cx.find(&runner.open(cx)?)?;
        let mut inner = cx.inner.write().unwrap();
        let runner = &mut inner.sorted[i];
        runner.last_heartbeat = Some(Utc::now());
        Ok(HttpResponseOk(runner.clone()))
    }

    async fn specs_get(
        _: RequestContext<Memory>,
        _: AdminUser,
        _: QueryParams<SpecsQuery>,
    ) -> Result<SpecsPage, HttpError> {
        Err(not_found("GET /v0/specs"))
    }

    async fn specs_post(
        _: RequestContext<Memory>,
        _: AdminUser,
        _: JsonBody<JsonNewSpec>,
    ) -> Result<Created<JsonSpec>, HttpError> {
        Err(not_found("POST /v0/specs"))
    }

    async fn spec_get(
        _: RequestContext<Memory>,
        _: AdminUser,
        _: PathParams<SpecPath>,
    ) -> Result<HttpResponseOk<JsonSpec>, HttpError> {
        Err(not_found("GET /v0/specs/{spec}"))
    }

    async fn spec_patch(
        _: RequestContext<Memory>,
        _: AdminUser,
        _: PathParams<SpecPath>,
        _: JsonBody<JsonUpdateSpec>,
    ) -> Result<HttpResponseOk<JsonSpec>, HttpError> {
        Err(not_found("PATCH /v0/specs/{spec}"))
    }

    async fn spec_delete(
        _: RequestContext<Memory>,
        _: AdminUser,
        _: PathParams<SpecPath>,
    ) -> Result<HttpResponseDeleted, HttpError> {
        Err(not_found("DELETE /v0/specs/{spec}"))
    }

    async fn server_version_get(
        _: RequestContext<Memory>,
    ) -> Result<HttpResponseOk<JsonApiVersion>, HttpError> {
        Err(not_found("GET /v0/server/version"))
    }

    async fn server_spec_get(
        _: RequestContext<Memory>,
    ) -> Result<HttpResponseOk<JsonOpenApi>, HttpError> {
        Err(not_found("GET /v0/server/spec"))
    }

    not_served! {
        run_post(Submitter, JsonBody<t::JsonNewRun>) -> Created<t::JsonReport>;
        org_projects_get(Submitter, PathParams<t::OrganizationPath>, QueryParams<t::ProjectsQuery>)
            -> a::ProjectsPage;
        org_project_post(Submitter, PathParams<t::OrganizationPath>, JsonBody<t::JsonNewProject>)
            -> Created<t::JsonProject>;
        projects_get(Submitter, QueryParams<t::ProjectsQuery>) -> a::ProjectsPage;
        project_get(Submitter, PathParams<t::ProjectPath>) -> HttpResponseOk<t::JsonProject>;
        project_patch(AdminUser, PathParams<t::ProjectPath>, JsonBody<t::JsonUpdateProject>)
            -> HttpResponseOk<t::JsonProject>;
        project_delete(AdminUser, PathParams<t::ProjectPath>, QueryParams<t::ProjectDeleteQuery>)
            -> dropshot::HttpResponseDeleted;
        proj_jobs_get(Submitter, PathParams<t::ProjectPath>, QueryParams<t::RunnerJobsQuery>)
            -> a::JobsPage;
        proj_job_get(Submitter, PathParams<t::ProjectJobPath>) -> HttpResponseOk<t::JsonJob>;
        proj_reports_get(Submitter, PathParams<t::ProjectPath>, QueryParams<t::ReportsQuery>)
            -> a::ReportsPage;
        proj_report_get(Submitter, PathParams<t::ReportPath>) -> HttpResponseOk<t::JsonReport>;
        proj_keys_get(AdminUser, PathParams<t::ProjectPath>, QueryParams<t::KeysQuery>)
            -> a::ProjectKeysPage;
        proj_key_post(AdminUser, PathParams<t::ProjectPath>, JsonBody<t::JsonNewKey>)
            -> Created<t::JsonProjectKeyCreated>;
        proj_key_get(AdminUser, PathParams<t::ProjectKeyPath>)
            -> HttpResponseOk<t::JsonProjectKey>;
        proj_key_patch(AdminUser, PathParams<t::ProjectKeyPath>, JsonBody<t::JsonUpdateKey>)
            -> HttpResponseOk<t::JsonProjectKey>;
        proj_key_delete(AdminUser, PathParams<t::ProjectKeyPath>) -> dropshot::HttpResponseDeleted;
        user_keys_get(Submitter, PathParams<t::UserPath>, QueryParams<t::KeysQuery>)
            -> a::UserKeysPage;
        user_key_post(Submitter, PathParams<t::UserPath>, JsonBody<t::JsonNewKey>)
            -> Created<t::JsonUserKeyCreated>;
        user_key_get(Submitter, PathParams<t::UserKeyPath>) -> HttpResponseOk<t::JsonUserKey>;
        user_key_patch(Submitter, PathParams<t::UserKeyPath>, JsonBody<t::JsonUpdateKey>)
            -> HttpResponseOk<t::JsonUserKey>;
        user_key_delete(Submitter, PathParams<t::UserKeyPath>) -> dropshot::HttpResponseDeleted;
        server_config_console_get() -> HttpResponseOk<t::JsonConsole>;
        auth_oci_token_get(RegistryCredential, RawQuery<t::OciTokenQuery>)
            -> HttpResponseOk<t::JsonOciToken>;
        server_live_get() -> HttpResponseOk<t::JsonServerStatus>;
        server_ready_get() -> HttpResponseOk<t::JsonServerStatus>;
        events_get(AdminUser) -> http::Response<dropshot::Body>;
        audit_get(AdminUser, QueryParams<t::AuditListQuery>) -> a::AuditPage;
    }
}

/// Starts the ceiling on 127.0.0.1:0, on the current runtime, with the
/// request log or without it.
pub fn start(memory: Memory, logged: bool) -> anyhow::Result<HttpServer<Memory>> {
    let api = runners_server::api::api_description::<Ceiling>()
        .map_err(|e| anyhow::anyhow!("invalid API description: {e}"))?;
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
