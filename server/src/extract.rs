//! Request extractors. They describe themselves to the OpenAPI document
//! exactly as dropshot's `TypedBody` and `Query` do, but every parse error
//! they raise carries the `InvalidRequest` error code and names the field;
//! a query comes to the handler in its [`Validate`]d form.

use async_trait::async_trait;
use dropshot::{
    ApiEndpointBodyContentType, ExclusiveExtractor, ExtractorMetadata, HttpError, Path, Query,
    RequestContext, ServerContext, SharedExtractor, TypedBody,
};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::error::invalid_request;
use crate::validate::{Invalid, QueryRules, Validate};

/// A JSON request body of type `T` (whose field types keep their rules).
pub struct JsonBody<T>(pub T);

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
        match <TypedBody<T> as ExclusiveExtractor>::from_request(rqctx, request).await {
            Ok(body) => Ok(Self(body.into_inner())),
            Err(e) => {
                // A bad credential answers before a bad body.
                crate::credential::credential_settled(rqctx).await;
                Err(invalid_request(e))
            }
        }
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <TypedBody<T> as ExclusiveExtractor>::metadata(content_type)
    }
}

/// Path parameters of type `T`: dropshot's `Path`, with the contract's
/// `InvalidRequest` code on a value that breaks its rule.
pub struct PathParams<T>(pub T);

#[async_trait]
impl<T: Wire> SharedExtractor for PathParams<T> {
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        match Self::parse(rqctx) {
            Ok(path) => Ok(path),
            Err(e) => {
                // A bad credential answers before a bad path.
                crate::credential::credential_settled(rqctx).await;
                Err(e)
            }
        }
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <Path<T> as SharedExtractor>::metadata(content_type)
    }
}

impl<T: Wire> PathParams<T> {
    /// The path's parameters, without waiting for anything (dropshot's
    /// `Path` extractor awaits nothing).
    pub(crate) fn parse<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        let parsed = <Path<T> as SharedExtractor>::from_request(rqctx);
        match futures::FutureExt::now_or_never(parsed) {
            Some(parsed) => parsed
                .map(|path| Self(path.into_inner()))
                .map_err(invalid_request),
            None => Err(HttpError::for_internal_error(
                "the path extractor did not complete at once".into(),
            )),
        }
    }
}

/// Query parameters of type `T`, checked by its rules.
pub struct QueryParams<T: Validate>(pub T::Valid);

#[async_trait]
impl<T> SharedExtractor for QueryParams<T>
where
    T: JsonSchema + DeserializeOwned + QueryRules + Validate + Send + Sync + 'static,
    T::Valid: Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        let parsed = Self::parse(rqctx);
        if parsed.is_err() {
            // A bad credential answers before a bad query.
            crate::credential::credential_settled(rqctx).await;
        }
        parsed
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
    fn parse<Context: ServerContext>(rqctx: &RequestContext<Context>) -> Result<Self, HttpError> {
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
        Ok(Self(query.validate()?))
    }
}
