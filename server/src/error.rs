//! The HTTP edge of every error: each error type of the lower layers
//! becomes dropshot's [`HttpError`] here, once, with the contract's status
//! and stable `error_code`. The wording stays with the error types.

use dropshot::{ClientErrorStatusCode, HttpError};
use http::header::{RETRY_AFTER, WWW_AUTHENTICATE};

use crate::auth::AuthError;
use crate::store::StoreError;
use crate::validate::Invalid;

/// The `error_code` of a request that breaks a validation rule.
pub const INVALID_REQUEST: &str = "InvalidRequest";

/// Seconds a client should wait before retrying when the database is busy.
pub const RETRY_AFTER_SECS: u32 = 1;

fn client_error(status: ClientErrorStatusCode, code: &str, message: String) -> HttpError {
    let mut err = HttpError::for_client_error(Some(code.to_owned()), status, message);
    if status == ClientErrorStatusCode::UNAUTHORIZED {
        // Static, valid header values: adding them cannot fail.
        let _ = err.add_header(WWW_AUTHENTICATE, "Bearer");
    }
    err
}

/// 404 `NotFound` with `message` shown to the client (dropshot's own
/// `for_not_found` keeps its message for the log only).
pub fn not_found(message: String) -> HttpError {
    client_error(ClientErrorStatusCode::NOT_FOUND, "NotFound", message)
}

/// 503 `ServiceUnavailable` with `message` shown and `Retry-After`: what the
/// server needs (a registry) is not answering.
pub fn unavailable(message: String) -> HttpError {
    let mut err = HttpError::for_unavail(Some("ServiceUnavailable".into()), message.clone());
    err.external_message = message;
    let _ = err.add_header(RETRY_AFTER, RETRY_AFTER_SECS.to_string());
    err
}

/// 409 `Conflict`: the request is fine, the server's state is not.
pub fn conflict(message: String) -> HttpError {
    client_error(ClientErrorStatusCode::CONFLICT, "Conflict", message)
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        match e {
            StoreError::NotFound { .. }
            | StoreError::RunnerLacksSpec { .. }
            | StoreError::ApiTokenNotFound(_) => {
                client_error(ClientErrorStatusCode::NOT_FOUND, "NotFound", message)
            }
            StoreError::SlugTaken { .. }
            | StoreError::NoFreeSlug(_)
            | StoreError::RunnerArchived(_)
            | StoreError::SpecArchived(_)
            | StoreError::RunnerHasSpec { .. }
            | StoreError::SpecInUse { .. }
            | StoreError::SpecArchivedForJob(_)
            | StoreError::SpecHasJobs { .. }
            | StoreError::NoFallbackSpec
            | StoreError::JobEnded { .. }
            | StoreError::ChannelNotCurrent => {
                client_error(ClientErrorStatusCode::CONFLICT, "Conflict", message)
            }
            StoreError::NotRunnersJob(_) => {
                client_error(ClientErrorStatusCode::FORBIDDEN, "Forbidden", message)
            }
            StoreError::RunnerRevoked => {
                client_error(ClientErrorStatusCode::UNAUTHORIZED, "Unauthorized", message)
            }
            StoreError::Busy
            | StoreError::Unavailable
            | StoreError::Overloaded
            | StoreError::DiskFull => {
                let message = format!("{message}; retry in {RETRY_AFTER_SECS} second(s)");
                let mut err =
                    HttpError::for_unavail(Some("ServiceUnavailable".into()), message.clone());
                err.external_message = message;
                let _ = err.add_header(RETRY_AFTER, RETRY_AFTER_SECS.to_string());
                err
            }
            // A fault of the server: the detail is logged, never sent.
            StoreError::Sqlite(_)
            | StoreError::Pg(_)
            | StoreError::Task(_)
            | StoreError::WriterStopped => HttpError::for_internal_error(message),
        }
    }
}

impl From<AuthError> for HttpError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(e) => e.into(),
            e if e.is_forbidden() => {
                client_error(ClientErrorStatusCode::FORBIDDEN, "Forbidden", e.to_string())
            }
            e => client_error(
                ClientErrorStatusCode::UNAUTHORIZED,
                "Unauthorized",
                e.to_string(),
            ),
        }
    }
}

impl From<Invalid> for HttpError {
    fn from(e: Invalid) -> Self {
        client_error(
            ClientErrorStatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            e.to_string(),
        )
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

#[cfg(test)]
mod unit {
    use super::*;

    /// A database that cannot be reached (or does not answer) is the
    /// client's 503 with `Retry-After`, as a busy one is: never a 500.
    #[test]
    fn an_unreachable_database_is_503_with_retry_after() {
        for e in [StoreError::Unavailable, StoreError::Busy] {
            let shown = e.to_string();
            let http = HttpError::from(e);
            assert_eq!(http.status_code.as_u16(), 503, "{shown}");
            assert_eq!(http.error_code.as_deref(), Some("ServiceUnavailable"));
            assert!(
                http.external_message.contains(&shown),
                "{}",
                http.external_message
            );
            let retry = http.headers.as_ref().and_then(|h| h.get(RETRY_AFTER));
            assert!(retry.is_some(), "{shown}: no Retry-After");
        }
    }
}
