//! Request extractors. They describe themselves to the OpenAPI document
//! exactly as dropshot's `TypedBody` and `Query` do, but every parse error
//! they raise carries the `InvalidRequest` error code and names the field;
//! a query comes to the handler in its [`Validate`]d form.
//!
//! **Credential first, by construction.** dropshot runs a handler's
//! extractors together and answers the first error; a bad body must never
//! answer 400 before a bad credential's 401/403. So these extractors never
//! fail: each holds its parse result, and the handler opens it with the
//! proof that the credential passed (`body.open(&admin)?`, [`Authorized`]).
//! Only a credential extractor can fail inside dropshot's join.

use async_trait::async_trait;
use dropshot::{
    ApiEndpointBodyContentType, ExclusiveExtractor, ExtractorMetadata, HttpError, Path, Query,
    RequestContext, ServerContext, SharedExtractor, TypedBody,
};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::error::invalid_request;
use crate::validate::{Invalid, QueryRules, Validate};

/// What a credential extractor hands a handler once the credential passed:
/// the key that opens the request's other parts.
pub trait Authorized {}

/// A JSON request body of type `T` (whose field types keep their rules),
/// or why it is not one: [`JsonBody::open`] it.
pub struct JsonBody<T>(Result<T, HttpError>);

impl<T> JsonBody<T> {
    /// The body, for a handler whose credential passed.
    pub fn open(self, _: &impl Authorized) -> Result<T, HttpError> {
        self.0
    }
}

/// What a body or path parameter type must be: described by a schema,
/// parsed by serde, and shareable across the server's tasks.
pub trait Wire: JsonSchema + DeserializeOwned + Send + Sync + 'static {}

impl<T: JsonSchema + DeserializeOwned + Send + Sync + 'static> Wire for T {}

#[async_trait]
impl<T: Wire> ExclusiveExtractor for JsonBody<T> {
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
        request: hyper::Request<dropshot::Body>,
    ) -> Result<Self, HttpError> {
        let body = <TypedBody<T> as ExclusiveExtractor>::from_request(rqctx, request).await;
        Ok(Self(
            body.map(TypedBody::into_inner).map_err(invalid_request),
        ))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <TypedBody<T> as ExclusiveExtractor>::metadata(content_type)
    }
}

/// Path parameters of type `T`: dropshot's `Path`, with the contract's
/// `InvalidRequest` code on a value that breaks its rule; [`PathParams::open`]
/// them.
pub struct PathParams<T>(Result<T, HttpError>);

#[async_trait]
impl<T: Wire> SharedExtractor for PathParams<T> {
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        Ok(Self(Self::parse(rqctx)))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <Path<T> as SharedExtractor>::metadata(content_type)
    }
}

impl<T> PathParams<T> {
    /// The path's parameters, for a handler whose credential passed.
    pub fn open(self, _: &impl Authorized) -> Result<T, HttpError> {
        self.0
    }
}

impl<T: Wire> PathParams<T> {
    /// The path's parameters, without waiting for anything (dropshot's
    /// `Path` extractor awaits nothing).
    pub(crate) fn parse<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<T, HttpError> {
        let parsed = <Path<T> as SharedExtractor>::from_request(rqctx);
        match futures::FutureExt::now_or_never(parsed) {
            Some(parsed) => parsed.map(Path::into_inner).map_err(invalid_request),
            None => Err(HttpError::for_internal_error(
                "the path extractor did not complete at once".into(),
            )),
        }
    }
}

/// Query parameters of type `T`, checked by its rules; [`QueryParams::open`]
/// them.
pub struct QueryParams<T: Validate>(Result<T::Valid, HttpError>);

impl<T: Validate> QueryParams<T> {
    /// The query, for a handler whose credential passed.
    pub fn open(self, _: &impl Authorized) -> Result<T::Valid, HttpError> {
        self.0
    }
}

#[async_trait]
impl<T> SharedExtractor for QueryParams<T>
where
    T: JsonSchema + DeserializeOwned + QueryRules + Validate + Send + Sync + 'static,
    T::Valid: Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        Ok(Self(Self::parse(rqctx)))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <Query<T> as SharedExtractor>::metadata(content_type)
    }
}

impl<T> QueryParams<T>
where
    T: JsonSchema + DeserializeOwned + QueryRules + Validate + Send + Sync + 'static,
    T::Valid: Send + Sync + 'static,
{
    fn parse<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<T::Valid, HttpError> {
        let raw = rqctx.request.uri().query().unwrap_or("");
        let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
        let query: T = serde_path_to_error::deserialize(pairs).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.inner();
            match T::rule(&field) {
                _ if field == "." => Invalid {
                    field: "query string".into(),
                    rule: inner.to_string(),
                },
                Some(rule) => Invalid {
                    field: format!("query parameter `{field}`"),
                    rule: format!("{inner}; expected {rule}"),
                },
                None => Invalid {
                    field: format!("query parameter `{field}`"),
                    rule: inner.to_string(),
                },
            }
        })?;
        Ok(query.validate()?)
    }
}

/// A query its handler reads from the raw query string (a parameter that
/// may repeat, parameters it ignores), documented as `T`: [`RawQuery::open`]
/// it.
pub struct RawQuery<T>(String, std::marker::PhantomData<fn() -> T>);

impl<T> RawQuery<T> {
    /// The raw query string (empty without one), once the credential passed.
    pub fn open(self, _: &impl Authorized) -> String {
        self.0
    }
}

#[async_trait]
impl<T> SharedExtractor for RawQuery<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        let raw = rqctx.request.uri().query().unwrap_or("").to_owned();
        Ok(Self(raw, std::marker::PhantomData))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <Query<T> as SharedExtractor>::metadata(content_type)
    }
}
