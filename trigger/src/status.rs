//! The one place where the trigger layer's errors become gRPC statuses (and the HTTP answers
//! of the same failures).
//!
//! The rule, the same as the coordinator's: a store that is busy or unreachable answers
//! UNAVAILABLE, which callers may retry; anything else from the database (a bug, a corrupt row)
//! answers INTERNAL with a generic message, because retrying cannot help and the raw database
//! text is for operators, not callers; it goes to the log. Request errors name the offending
//! field.

use axum::http::StatusCode;
use tonic::{Code, Status};

use crate::store::StoreError;

/// An error answered to a caller of the TriggerService.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// No usable API key.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A request field is wrong; `field` is its name in the request (`events_json`).
    #[error("{field}: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    /// The store is busy or unreachable; the caller may retry the same call.
    #[error("trigger store: {0}")]
    Unavailable(StoreError),
    /// A bug or corrupt data: logged, answered without details.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// An INVALID_ARGUMENT naming `field`.
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::InvalidArgument {
            field,
            message: message.into(),
        }
    }

    /// NOT_FOUND for the campaign `name` (quoted, cut to 64 characters).
    pub(crate) fn campaign_not_found(name: &str) -> ApiError {
        ApiError::NotFound(format!(
            "campaign `{}`",
            name.chars().take(64).collect::<String>()
        ))
    }

    /// The gRPC status code this error answers with.
    pub(crate) fn code(&self) -> Code {
        match self {
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::InvalidArgument { .. } => Code::InvalidArgument,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable(e),
            StoreError::Database(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        match &e {
            ApiError::Internal(detail) => {
                // Details stay in the log; the caller gets a generic message.
                tracing::error!(error = %detail, "internal error");
                Status::internal("internal error; see the trigger log")
            }
            _ => Status::new(e.code(), e.to_string()),
        }
    }
}

/// Lets service methods apply `?` to store calls; the mapping is [`ApiError`]'s.
impl From<StoreError> for Status {
    fn from(e: StoreError) -> Status {
        ApiError::from(e).into()
    }
}

/// The HTTP answer to a store failure while `failed` (e.g. "events could not be stored"):
/// 503 and an invitation to retry when the store is unavailable, 500 without details otherwise.
/// The details go to the log.
pub(crate) fn store_http(e: &StoreError, failed: &str) -> (StatusCode, String) {
    match e {
        StoreError::Unavailable(_) => {
            tracing::warn!(error = %e, "{failed}");
            (StatusCode::SERVICE_UNAVAILABLE, format!("{failed}; retry"))
        }
        StoreError::Database(_) => {
            tracing::error!(error = %e, "{failed}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{failed}: internal error; see the trigger log"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_store_is_retryable_with_its_reason() {
        let status = Status::from(StoreError::Unavailable("pool timed out".into()));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            "trigger store: database unavailable: pool timed out"
        );
    }

    #[test]
    fn database_errors_are_internal_without_details() {
        let status = Status::from(StoreError::Database(
            "column campaign_json: bad JSON: secret detail".into(),
        ));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret detail"), "{status:?}");
        assert!(!status.message().contains("campaign_json"), "{status:?}");
    }

    #[test]
    fn request_errors_keep_field_and_message() {
        let status = Status::from(ApiError::invalid("limit", "at most 1000"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "limit: at most 1000");
        let status = Status::from(ApiError::campaign_not_found(&"x".repeat(100)));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), format!("campaign `{}`", "x".repeat(64)));
        let status = Status::from(ApiError::Unauthenticated("unknown API key"));
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "unknown API key");
    }

    #[test]
    fn http_answers_follow_the_same_rule() {
        let (code, message) = store_http(
            &StoreError::Unavailable("busy".into()),
            "events could not be stored",
        );
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(message, "events could not be stored; retry");
        let (code, message) = store_http(
            &StoreError::Database("secret detail".into()),
            "events could not be stored",
        );
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!message.contains("secret detail"), "{message}");
    }
}
