//! The API layer's error type, and its one conversion to dropshot's
//! [`HttpError`] with the contract's stable `error_code` strings.

use dropshot::{ClientErrorStatusCode, HttpError};
use http::header::{RETRY_AFTER, WWW_AUTHENTICATE};

use crate::store::StoreError;

/// The `error_code` of a request that breaks a validation rule.
pub const INVALID_REQUEST: &str = "InvalidRequest";

/// Seconds a client should wait before retrying when the database is busy.
pub const RETRY_AFTER_SECS: u32 = 1;

/// What went wrong in a request, as the client should see it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing, malformed, expired, revoked or unknown credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the right to do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A request that breaks a validation rule; the message names the field
    /// and the rule.
    #[error("{0}")]
    InvalidRequest(String),
    /// The database stayed busy past its timeout.
    #[error("the database is busy; retry in {RETRY_AFTER_SECS} second(s)")]
    Unavailable,
    /// A fault of the server. The detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The stable `error_code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "Unauthorized",
            Self::Forbidden(_) => "Forbidden",
            Self::NotFound(_) => "NotFound",
            Self::Conflict(_) => "Conflict",
            Self::InvalidRequest(_) => INVALID_REQUEST,
            Self::Unavailable => "ServiceUnavailable",
            Self::Internal(_) => "Internal",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(what) => Self::Conflict(what),
            StoreError::Busy => Self::Unavailable,
            StoreError::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        let code = Some(e.code().to_owned());
        let status = match &e {
            ApiError::Unauthorized(_) => ClientErrorStatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => ClientErrorStatusCode::FORBIDDEN,
            ApiError::NotFound(_) => ClientErrorStatusCode::NOT_FOUND,
            ApiError::Conflict(_) => ClientErrorStatusCode::CONFLICT,
            ApiError::InvalidRequest(_) => ClientErrorStatusCode::BAD_REQUEST,
            ApiError::Unavailable => {
                let mut err = HttpError::for_unavail(code, e.to_string());
                err.external_message = e.to_string();
                // Static, valid header values: adding them cannot fail.
                let _ = err.add_header(RETRY_AFTER, RETRY_AFTER_SECS.to_string());
                return err;
            }
            ApiError::Internal(detail) => return HttpError::for_internal_error(detail.clone()),
        };
        let mut err = HttpError::for_client_error(code, status, e.to_string());
        if status == ClientErrorStatusCode::UNAUTHORIZED {
            let _ = err.add_header(WWW_AUTHENTICATE, "Bearer");
        }
        err
    }
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

/// Gives an error raised by dropshot's own body extractor the contract's
/// `InvalidRequest` code, and the status HTTP has for it: 413 for a body over
/// the limit, 415 for a body that is not JSON, 400 for the rest.
pub fn invalid_request(mut e: HttpError) -> HttpError {
    if !e.status_code.is_client_error() {
        return e;
    }
    let message = e.external_message.as_str();
    let status = if message.contains("exceeded maximum size") {
        Some(ClientErrorStatusCode::PAYLOAD_TOO_LARGE)
    } else if message.starts_with("expected content type")
        || message.starts_with("unsupported content-type")
    {
        Some(ClientErrorStatusCode::UNSUPPORTED_MEDIA_TYPE)
    } else {
        None
    };
    if let Some(status) = status {
        e.status_code = status.into();
    }
    e.error_code
        .get_or_insert_with(|| INVALID_REQUEST.to_owned());
    e
}
