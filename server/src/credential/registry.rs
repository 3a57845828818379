//! The credential of Docker's token endpoint: none (anonymous), HTTP Basic
//! whose password is the credential (the username is ignored), or a bearer
//! credential; each checked as [`super::Submitter`] checks its own.

use async_trait::async_trait;
use dropshot::{
    ApiEndpointBodyContentType, ExtensionMode, ExtractorMetadata, Header, HttpError,
    RequestContext, ServerContext, SharedExtractor,
};
use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};

use super::{Credential, credentials};
use crate::auth::{AuthError, Principal};
use crate::extract::Authorized;

/// The marker parameter of an operation that also takes no credential:
/// its `security` gains `{}`.
pub(super) const ANONYMOUS_MARKER: &str = "x-runners-credential-none";

/// Who asks for a registry token: `None` when no credential was sent. A
/// credential sent and not valid is refused (401), as Docker's token
/// authentication asks.
pub struct RegistryCredential(pub Option<Principal>);

impl Authorized for RegistryCredential {}

#[async_trait]
impl SharedExtractor for RegistryCredential {
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        let headers = rqctx.request.headers();
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Ok(Self(None));
        };
        let check = credentials(rqctx)?;
        let principal = match basic_password(value)? {
            Some(password) => {
                let bearer = HeaderValue::try_from(format!("Bearer {password}"))
                    .map_err(|_| AuthError::MalformedHeader)?;
                let mut headers = HeaderMap::new();
                headers.insert(AUTHORIZATION, bearer);
                check.check_principal(&headers).await?
            }
            None => check.check_principal(headers).await?,
        };
        Ok(Self(Some(principal)))
    }

    fn metadata(_: ApiEndpointBodyContentType) -> ExtractorMetadata {
        let json = ApiEndpointBodyContentType::Json;
        let mut parameters = Credential::Basic.metadata();
        parameters.extend(Credential::ApiToken.metadata());
        parameters.extend(Credential::UserKey.metadata());
        parameters.extend(Credential::ProjectKey.metadata());
        parameters.extend(<Header<AnonymousMarker> as SharedExtractor>::metadata(json).parameters);
        ExtractorMetadata {
            extension_mode: ExtensionMode::None,
            parameters,
        }
    }
}

/// The password of `Authorization: Basic …`, or `None` for another scheme.
fn basic_password(value: &HeaderValue) -> Result<Option<String>, AuthError> {
    let text = value.to_str().map_err(|_| AuthError::MalformedHeader)?;
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = data_encoding::BASE64
        .decode(encoded.trim().as_bytes())
        .map_err(|_| AuthError::MalformedBasic)?;
    let decoded = String::from_utf8(decoded).map_err(|_| AuthError::MalformedBasic)?;
    let (_, password) = decoded.split_once(':').ok_or(AuthError::MalformedBasic)?;
    if password.is_empty() || password.contains(char::is_control) {
        return Err(AuthError::MalformedBasic);
    }
    Ok(Some(password.to_owned()))
}

/// The marker of [`Credential::Basic`] (a header no client sends).
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub(super) struct BasicMarker {
    #[serde(rename = "x-runners-credential-Basic")]
    _marker: Option<String>,
}

/// The marker of an operation that takes no credential too.
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct AnonymousMarker {
    #[serde(rename = "x-runners-credential-none")]
    _marker: Option<String>,
}
