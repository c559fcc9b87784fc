//! The one place where coordinator errors become gRPC statuses.

use tonic::{Code, Status};

use crate::store::StoreError;

/// An error answered to a gRPC caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request field is wrong; `field` is its path in the request (`spec.tokens.first_name`).
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    #[error("{0} not found")]
    NotFound(String),
    /// Idempotency key reused with a different request.
    #[error("{0}")]
    AlreadyExists(String),
    /// The attempt is not current, or the render is not in a state that allows this.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A lane is full: retry after `retry_after_ms`; 0 for a limit that waiting does not lift
    /// (a file too large).
    #[error("{message}{}", retry_hint(*retry_after_ms))]
    ResourceExhausted {
        message: String,
        retry_after_ms: u64,
    },
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The store is busy or unreachable; the caller may retry the same call.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// `; retry after N ms`, or nothing for 0.
fn retry_hint(retry_after_ms: u64) -> String {
    if retry_after_ms > 0 {
        format!("; retry after {retry_after_ms} ms")
    } else {
        String::new()
    }
}

impl ApiError {
    /// An INVALID_ARGUMENT naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The gRPC status code this error answers with.
    pub fn code(&self) -> Code {
        match self {
            ApiError::InvalidArgument { .. } => Code::InvalidArgument,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::AlreadyExists(_) => Code::AlreadyExists,
            ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
            ApiError::ResourceExhausted { .. } => Code::ResourceExhausted,
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::AlreadyExists { what } => {
                ApiError::AlreadyExists(format!("{what} already exists"))
            }
            StoreError::StaleFence { .. } => ApiError::FailedPrecondition(e.to_string()),
            StoreError::NotFound { what } => ApiError::NotFound(what),
            StoreError::Unavailable(m) => {
                ApiError::Unavailable(format!("database unavailable: {m}"))
            }
            StoreError::Database(m) => ApiError::Internal(m),
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        match &e {
            ApiError::Internal(m) => {
                // Details stay in the log; the caller gets a generic message.
                tracing::error!(error = %m, "internal error");
                Status::internal("internal error; see the coordinator log")
            }
            ApiError::ResourceExhausted { retry_after_ms, .. } => {
                let mut status = Status::resource_exhausted(e.to_string());
                // 0: a limit that waiting does not lift (a file too large).
                if *retry_after_ms > 0 {
                    if let Ok(v) = retry_after_ms.to_string().parse() {
                        status.metadata_mut().insert(proto::auth::RETRY_AFTER_MS, v);
                    }
                }
                status
            }
            _ => Status::new(e.code(), e.to_string()),
        }
    }
}
