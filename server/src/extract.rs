//! Request extractors. They describe themselves to the OpenAPI document
//! exactly as dropshot's `TypedBody` and `Query` do, but every parse error
//! they raise carries the `InvalidRequest` error code and names the field.

use async_trait::async_trait;
use dropshot::{
    ApiEndpointBodyContentType, ExclusiveExtractor, ExtractorMetadata, HttpError, Query,
    RequestContext, ServerContext, SharedExtractor, TypedBody,
};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, invalid_request};

/// A JSON request body of type `T`.
pub struct JsonBody<T>(pub T);

#[async_trait]
impl<T> ExclusiveExtractor for JsonBody<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
        request: hyper::Request<dropshot::Body>,
    ) -> Result<Self, HttpError> {
        <TypedBody<T> as ExclusiveExtractor>::from_request(rqctx, request)
            .await
            .map(|body| Self(body.into_inner()))
            .map_err(invalid_request)
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <TypedBody<T> as ExclusiveExtractor>::metadata(content_type)
    }
}

/// A query type that can say what each of its parameters accepts.
pub trait QueryRules {
    /// What `param` accepts, for error messages.
    fn rule(param: &str) -> Option<&'static str>;
}

/// Query parameters of type `T`.
pub struct QueryParams<T>(pub T);

#[async_trait]
impl<T> SharedExtractor for QueryParams<T>
where
    T: JsonSchema + DeserializeOwned + QueryRules + Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        let raw = rqctx.request.uri().query().unwrap_or("");
        let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
        serde_path_to_error::deserialize(pairs)
            .map(Self)
            .map_err(|e| {
                let field = e.path().to_string();
                let message = match T::rule(&field) {
                    _ if field == "." => format!("query string: {}", e.inner()),
                    Some(rule) => {
                        format!("query parameter `{field}`: {}; expected {rule}", e.inner())
                    }
                    None => format!("query parameter `{field}`: {}", e.inner()),
                };
                ApiError::InvalidRequest(message).into()
            })
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <Query<T> as SharedExtractor>::metadata(content_type)
    }
}
