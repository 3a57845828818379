//! Credentials in the handler's signature. An operation that needs one takes
//! its extractor ([`AdminUser`], [`RunnerAuth`]) as its first argument in
//! [`RunnersApi`](crate::api::RunnersApi), so:
//!
//! - a request without valid credentials is refused before its path, query
//!   or body is looked at (dropshot runs extractors in argument order);
//! - the handler cannot be written without naming its credential (it gets
//!   the admin it acts as, or the runner whose key was sent, from nowhere
//!   else);
//! - the OpenAPI document's `security` comes from the same declaration: each
//!   extractor describes itself as a marker parameter, which
//!   [`openapi_document`](crate::api::openapi_document) turns into the
//!   operation's `security` requirement ([`declare_security`]).
//!
//! An extractor checks credentials through the server's context, which
//! implements [`Credentials`]: `RunnersApi::Context` is bound by it, and the
//! API description is made by [`crate::api::api_description`], which records
//! how to reach the trait from the context (dropshot hands an extractor its
//! context as a type it knows nothing of).
//!
//! What a runner's key proves is the implementation's own type
//! ([`Credentials::Runner`]: the product keeps the runner's row, the
//! benchmark's ceiling only the path's runner). dropshot forbids `Self` in
//! an endpoint's argument types, so [`RunnerAuth`] carries it unnamed, and
//! the handler opens it with its context ([`RunnerAuth::open`]), which
//! names the type again.

use std::any::{Any, TypeId};
use std::sync::RwLock;

use async_trait::async_trait;
use dropshot::{
    ApiEndpointBodyContentType, ApiEndpointParameter, ExtensionMode, ExtractorMetadata, Header,
    HttpError, RequestContext, ServerContext, SharedExtractor,
};
use http::HeaderMap;

use crate::auth::{Admin, AuthError, Principal};
use crate::extract::{Authorized, PathParams};
use crate::types::RunnerPath;
use crate::validate::Ref;

mod registry;
pub use registry::RegistryCredential;

/// What a server context does to check a request's credentials.
#[async_trait]
pub trait Credentials: Send + Sync + 'static {
    /// What a runner's key proves, as this implementation keeps it: its
    /// handlers get it from [`RunnerAuth::open`].
    type Runner: Send + Sync + 'static;

    /// The admin behind the API token in `headers`.
    async fn admin(&self, headers: &HeaderMap) -> Result<Admin, AuthError>;

    /// Who the request's API token, user key or project key is.
    async fn principal(&self, headers: &HeaderMap) -> Result<Principal, AuthError>;

    /// The runner `runner` (from the path), authenticated by its own key in
    /// `headers`.
    async fn runner(&self, headers: &HeaderMap, runner: &Ref) -> Result<Self::Runner, AuthError>;
}

/// A runner that a context's [`Credentials::runner`] authenticated, its
/// type unnamed (it is that context's [`Credentials::Runner`]).
type Unnamed = Box<dyn Any + Send + Sync>;

/// [`Credentials`] as an extractor can call them: on a context it knows
/// only as `dyn Any`, the runner unnamed.
#[async_trait]
trait Check: Send + Sync {
    async fn check_admin(&self, headers: &HeaderMap) -> Result<Admin, AuthError>;

    async fn check_principal(&self, headers: &HeaderMap) -> Result<Principal, AuthError>;

    async fn check_runner(&self, headers: &HeaderMap, runner: &Ref) -> Result<Unnamed, AuthError>;
}

#[async_trait]
impl<C: Credentials> Check for C {
    async fn check_admin(&self, headers: &HeaderMap) -> Result<Admin, AuthError> {
        self.admin(headers).await
    }

    async fn check_principal(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        self.principal(headers).await
    }

    async fn check_runner(&self, headers: &HeaderMap, runner: &Ref) -> Result<Unnamed, AuthError> {
        Ok(Box::new(self.runner(headers, runner).await?))
    }
}

/// How to see a context of one type as [`Check`].
type Lookup = fn(&dyn Any) -> Option<&dyn Check>;

/// The context types that [`crate::api::api_description`] has seen.
static CONTEXTS: RwLock<Vec<(TypeId, Lookup)>> = RwLock::new(Vec::new());

fn lookup<C: Credentials>(cx: &dyn Any) -> Option<&dyn Check> {
    cx.downcast_ref::<C>().map(|cx| cx as &dyn Check)
}

/// Makes contexts of type `C` usable by the credential extractors.
pub(crate) fn register<C: Credentials>() {
    let mut contexts = CONTEXTS.write().unwrap_or_else(|e| e.into_inner());
    if !contexts.iter().any(|(id, _)| *id == TypeId::of::<C>()) {
        contexts.push((TypeId::of::<C>(), lookup::<C>));
    }
}

/// The request's context, as [`Check`].
fn credentials<C: ServerContext>(rqctx: &RequestContext<C>) -> Result<&dyn Check, HttpError> {
    let found = {
        let contexts = CONTEXTS.read().unwrap_or_else(|e| e.into_inner());
        contexts
            .iter()
            .find(|(id, _)| *id == TypeId::of::<C>())
            .map(|(_, lookup)| *lookup)
    };
    found
        .and_then(|lookup| lookup(rqctx.context() as &dyn Any))
        .ok_or_else(|| {
            HttpError::for_internal_error(
                "the server's context cannot check credentials: \
                 its API description was not made by `api::api_description`"
                    .to_owned(),
            )
        })
}

/// A credential, as the OpenAPI document names its security scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// An admin user's API token (a JWT).
    ApiToken,
    /// The key of the runner in the path.
    RunnerKey,
    /// A user key (`bencher_user_`), with its user's rights.
    UserKey,
    /// A project key (`bencher_run_`): its project's runs and reads.
    ProjectKey,
    /// HTTP Basic, whose password is an API token, a user key or a project
    /// key (Docker's token endpoint; the username is ignored).
    Basic,
}

impl Credential {
    /// Every credential, in the order the document declares them.
    pub const ALL: [Self; 5] = [
        Self::ApiToken,
        Self::RunnerKey,
        Self::UserKey,
        Self::ProjectKey,
        Self::Basic,
    ];

    /// The security scheme's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ApiToken => "ApiToken",
            Self::RunnerKey => "RunnerKey",
            Self::UserKey => "UserKey",
            Self::ProjectKey => "ProjectKey",
            Self::Basic => "Basic",
        }
    }

    /// The security scheme.
    fn scheme(self) -> serde_json::Value {
        match self {
            Self::ApiToken => serde_json::json!({
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "An admin user's API token (HS256 JWT), from the first start's \
                                banner or `runners-server token create --admin`."
            }),
            Self::RunnerKey => serde_json::json!({
                "type": "http",
                "scheme": "bearer",
                "description": "A runner's key: `bencher_runner_` and 30 letters and digits (or \
                                64 hex digits for a key issued by Bencher v0.6.2)."
            }),
            Self::UserKey => serde_json::json!({
                "type": "http",
                "scheme": "bearer",
                "description": "A user key: `bencher_user_` and 30 letters and digits, with its \
                                user's rights (an admin's: everything an API token may do)."
            }),
            Self::ProjectKey => serde_json::json!({
                "type": "http",
                "scheme": "bearer",
                "description": "A project key: `bencher_run_` and 30 letters and digits: runs to \
                                its project, and reads of the project, its jobs and reports."
            }),
            Self::Basic => serde_json::json!({
                "type": "http",
                "scheme": "basic",
                "description": "Any username, and as the password an API token, a user key or a \
                                project key (how Docker's clients log in to a token service)."
            }),
        }
    }

    /// The name of the marker parameter that stands for this credential in
    /// dropshot's document, until [`declare_security`] replaces it.
    fn marker(self) -> &'static str {
        match self {
            Self::ApiToken => "x-runners-credential-ApiToken",
            Self::RunnerKey => "x-runners-credential-RunnerKey",
            Self::UserKey => "x-runners-credential-UserKey",
            Self::ProjectKey => "x-runners-credential-ProjectKey",
            Self::Basic => "x-runners-credential-Basic",
        }
    }

    /// The marker parameter, as an extractor's metadata: a header parameter
    /// (dropshot's own [`Header`] describes it) named [`Credential::marker`].
    fn metadata(self) -> Vec<ApiEndpointParameter> {
        let json = ApiEndpointBodyContentType::Json;
        let metadata = match self {
            Self::ApiToken => <Header<ApiTokenMarker> as SharedExtractor>::metadata(json),
            Self::RunnerKey => <Header<RunnerKeyMarker> as SharedExtractor>::metadata(json),
            Self::UserKey => <Header<UserKeyMarker> as SharedExtractor>::metadata(json),
            Self::ProjectKey => <Header<ProjectKeyMarker> as SharedExtractor>::metadata(json),
            Self::Basic => <Header<registry::BasicMarker> as SharedExtractor>::metadata(json),
        };
        metadata.parameters
    }
}

/// The marker of [`Credential::ApiToken`] (a header no client sends).
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct ApiTokenMarker {
    #[serde(rename = "x-runners-credential-ApiToken")]
    _marker: Option<String>,
}

/// The marker of [`Credential::RunnerKey`].
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct RunnerKeyMarker {
    #[serde(rename = "x-runners-credential-RunnerKey")]
    _marker: Option<String>,
}

/// The marker of [`Credential::UserKey`].
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct UserKeyMarker {
    #[serde(rename = "x-runners-credential-UserKey")]
    _marker: Option<String>,
}

/// The marker of [`Credential::ProjectKey`].
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct ProjectKeyMarker {
    #[serde(rename = "x-runners-credential-ProjectKey")]
    _marker: Option<String>,
}

/// Declares the credentials as security schemes, and replaces each
/// operation's marker parameter by its `security` requirement (none: a
/// public operation).
pub fn declare_security(spec: &mut serde_json::Value) {
    let schemes: serde_json::Map<_, _> = Credential::ALL
        .iter()
        .map(|c| (c.name().to_owned(), c.scheme()))
        .collect();
    spec["components"]["securitySchemes"] = schemes.into();
    let Some(paths) = spec["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut().filter_map(|p| p.as_object_mut()) {
        for op in item.values_mut().filter_map(|op| op.as_object_mut()) {
            let mut security = Vec::new();
            if let Some(params) = op.get_mut("parameters").and_then(|p| p.as_array_mut()) {
                params.retain(|param| {
                    if param["in"] == "header" && param["name"] == registry::ANONYMOUS_MARKER {
                        security.push(serde_json::json!({}));
                        return false;
                    }
                    let credential = Credential::ALL.into_iter().find(|c| {
                        param["in"] == "header" && param["name"].as_str() == Some(c.marker())
                    });
                    if let Some(c) = credential {
                        security.push(serde_json::json!({ c.name(): [] }));
                    }
                    credential.is_none()
                });
                if params.is_empty() {
                    op.remove("parameters");
                }
            }
            op.insert("security".to_owned(), security.into());
        }
    }
}

/// An admin's API token: the admin that the handler acts as. Refused (401,
/// or 403 for a user who is not an admin) before anything else of the
/// request is looked at.
pub struct AdminUser(pub Admin);

impl Authorized for Admin {}

#[async_trait]
impl SharedExtractor for AdminUser {
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        let headers = rqctx.request.headers();
        Ok(Self(credentials(rqctx)?.check_admin(headers).await?))
    }

    fn metadata(_: ApiEndpointBodyContentType) -> ExtractorMetadata {
        let mut parameters = Credential::ApiToken.metadata();
        parameters.extend(Credential::UserKey.metadata());
        ExtractorMetadata {
            extension_mode: ExtensionMode::None,
            parameters,
        }
    }
}

/// Whoever submits runs and reads projects: an API token, a user key or a
/// project key ([`Principal`]); what each may do is the handler's to check
/// (`Principal`'s methods: the credential table, once).
pub struct Submitter(pub Principal);

#[async_trait]
impl SharedExtractor for Submitter {
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        let headers = rqctx.request.headers();
        Ok(Self(credentials(rqctx)?.check_principal(headers).await?))
    }

    fn metadata(_: ApiEndpointBodyContentType) -> ExtractorMetadata {
        let mut parameters = Credential::ApiToken.metadata();
        parameters.extend(Credential::UserKey.metadata());
        parameters.extend(Credential::ProjectKey.metadata());
        ExtractorMetadata {
            extension_mode: ExtensionMode::None,
            parameters,
        }
    }
}

impl Authorized for Principal {}

/// A key's owner, once the credential was found to manage its keys.
impl Authorized for crate::store::KeyOwner {}

/// The key of the runner in the path (`{runner}`, which this extractor
/// reads: the handler takes no other path): a runner authenticated by its
/// own key. A malformed path is refused first (400), then the key (401, or
/// 403 for another runner's path). The handler [`RunnerAuth::open`]s it.
pub struct RunnerAuth(Unnamed);

impl RunnerAuth {
    /// The runner the key authenticated, opened with the request's context
    /// (whose [`Credentials::runner`] made it), as that context keeps it.
    pub fn open<C: Credentials>(self, _: &C) -> Result<C::Runner, HttpError> {
        self.0.downcast().map(|runner| *runner).map_err(|_| {
            HttpError::for_internal_error(
                "a runner's credential was opened with another context than the one \
                 that checked it"
                    .to_owned(),
            )
        })
    }
}

#[async_trait]
impl SharedExtractor for RunnerAuth {
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        // The path first (its error answers first), then the check.
        let path: RunnerPath = PathParams::parse(rqctx)?;
        let headers = rqctx.request.headers();
        let credentials = credentials(rqctx)?;
        Ok(Self(credentials.check_runner(headers, &path.runner).await?))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        let mut metadata = <PathParams<RunnerPath> as SharedExtractor>::metadata(content_type);
        metadata.parameters.extend(Credential::RunnerKey.metadata());
        metadata
    }
}

/// The runner channel's credential: [`RunnerAuth`], with the WebSocket
/// handshake checked between the key's shape and its lookup. A missing or
/// malformed key is refused first (401), then a request that is not a
/// handshake (400, naming the header), then the key's lookup (401, 403),
/// on every engine: dropshot's own upgrade extractor refuses a request
/// that is not a handshake at once, while the lookup may still be awaiting
/// the database, so without this the answer would depend on that race.
pub struct ChannelAuth(pub RunnerAuth);

#[async_trait]
impl SharedExtractor for ChannelAuth {
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        crate::auth::runner_key_shape(rqctx.request.headers())?;
        handshake(rqctx.request.headers()).map_err(|message| {
            crate::error::invalid_request(HttpError::for_bad_request(None, message))
        })?;
        Ok(Self(RunnerAuth::from_request(rqctx).await?))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        RunnerAuth::metadata(content_type)
    }
}

/// Whether `headers` are a WebSocket handshake's (RFC 6455, 4.1), checked
/// as dropshot's upgrade checks them; the error names what is missing.
fn handshake(headers: &HeaderMap) -> Result<(), String> {
    let lists = |name: http::header::HeaderName, token: &str| {
        headers.get_all(&name).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split([',', ' '])
                    .any(|item| item.eq_ignore_ascii_case(token))
            })
        })
    };
    if !lists(http::header::CONNECTION, "upgrade") {
        return Err(
            "the runner channel is a WebSocket: the header `Connection` must \
                    include `Upgrade`"
                .into(),
        );
    }
    if !lists(http::header::UPGRADE, "websocket") {
        return Err(
            "the runner channel is a WebSocket: the header `Upgrade` must \
                    include `websocket`"
                .into(),
        );
    }
    if headers
        .get(http::header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err("the header `Sec-WebSocket-Version` must be `13`".into());
    }
    if !headers.contains_key(http::header::SEC_WEBSOCKET_KEY) {
        return Err("the header `Sec-WebSocket-Key` is required (a WebSocket handshake)".into());
    }
    Ok(())
}
