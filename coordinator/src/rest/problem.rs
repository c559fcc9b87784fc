//! Problem documents (RFC 9457, `application/problem+json`): how the HTTP render API answers
//! an error. Every [`ApiError`] maps to one status and one problem `type`, as every one maps
//! to one gRPC status in [`crate::error`].

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::json_field;
use crate::error::ApiError;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Problem `type`s are URNs under this prefix, followed by the kind (`invalid-argument`, …).
pub const TYPE_PREFIX: &str = "urn:reelfarm:problem:";

/// An error answer (RFC 9457).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:reelfarm:problem:invalid-argument",
    "title": "The request is invalid",
    "status": 400,
    "detail": "tokens.first_name: longer than 256 characters",
    "field": "tokens.first_name"
}))]
pub struct Problem {
    /// What kind of problem: `urn:reelfarm:problem:` and one of `invalid-argument`,
    /// `unauthenticated`, `not-found`, `conflict`, `failed-precondition`, `too-large`,
    /// `unsupported-media-type`, `lane-full`, `unavailable`, `internal`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind, the same for every problem of that kind.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this request.
    pub detail: String,
    /// For `invalid-argument`: the request field at fault, as a path in the JSON body or the
    /// name of a query parameter (`template`, `tokens.first_name`, `page_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A problem answer with its status and headers.
#[derive(Debug)]
pub struct ProblemResponse {
    /// Boxed: it travels as the error of results on every handler's path.
    pub problem: Box<Problem>,
    /// `Retry-After`, in whole seconds.
    pub retry_after_s: Option<u64>,
}

impl ProblemResponse {
    /// A problem of `kind` with `status`, `title` and `detail`.
    pub fn new(status: StatusCode, kind: &str, title: &str, detail: impl Into<String>) -> Self {
        ProblemResponse {
            problem: Box::new(Problem {
                kind: format!("{TYPE_PREFIX}{kind}"),
                title: title.to_owned(),
                status: status.as_u16(),
                detail: detail.into(),
                field: None,
            }),
            retry_after_s: None,
        }
    }

    /// A 400 naming the request field at fault.
    pub fn invalid(field: &str, message: &str) -> Self {
        let mut p = ProblemResponse::new(
            StatusCode::BAD_REQUEST,
            "invalid-argument",
            "The request is invalid",
            if field.is_empty() {
                message.to_owned()
            } else {
                format!("{field}: {message}")
            },
        );
        p.problem.field = (!field.is_empty()).then(|| field.to_owned());
        p
    }

    /// 413 for a request body over `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        ProblemResponse::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "The request is too large",
            format!("the request body is larger than {limit} bytes"),
        )
    }
}

impl From<ApiError> for ProblemResponse {
    fn from(e: ApiError) -> ProblemResponse {
        match e {
            ApiError::InvalidArgument { field, message } => {
                ProblemResponse::invalid(&json_field(&field), &message)
            }
            ApiError::Unauthenticated(m) => ProblemResponse::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Missing or unknown API key",
                // The authenticator speaks of gRPC metadata; here it is a header.
                m.replace("metadata", "header"),
            ),
            ApiError::NotFound(what) => ProblemResponse::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!("{what} not found"),
            ),
            ApiError::AlreadyExists(m) => ProblemResponse::new(
                StatusCode::CONFLICT,
                "conflict",
                "Idempotency key already used for another request",
                m,
            ),
            ApiError::FailedPrecondition(m) => ProblemResponse::new(
                StatusCode::PRECONDITION_FAILED,
                "failed-precondition",
                "Not possible in the current state",
                m,
            ),
            ApiError::ResourceExhausted {
                message,
                retry_after_ms: 0,
            } => ProblemResponse::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "The request is too large",
                message,
            ),
            ApiError::ResourceExhausted {
                message,
                retry_after_ms,
            } => ProblemResponse {
                retry_after_s: Some(retry_after_ms.div_ceil(1000)),
                ..ProblemResponse::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "lane-full",
                    "The lane is full; retry later",
                    message,
                )
            },
            ApiError::Unavailable(m) => ProblemResponse {
                retry_after_s: Some(1),
                ..ProblemResponse::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Temporarily unavailable; retry",
                    m,
                )
            },
            ApiError::Internal(m) => {
                // Details stay in the log; the caller gets a generic message.
                tracing::error!(error = %m, "internal error (HTTP API)");
                ProblemResponse::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "internal error; see the coordinator log",
                )
            }
        }
    }
}

impl IntoResponse for ProblemResponse {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut response = (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        if let Some(s) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The problem for a body that does not parse as the request type: the field the error is
/// in, or the one that is missing or unknown.
pub fn from_json_error(e: &serde_path_to_error::Error<serde_json::Error>) -> ProblemResponse {
    let inner = e.inner();
    let path = e.path().to_string();
    let message = inner.to_string();
    let field = if path != "." && !path.is_empty() {
        Some(path)
    } else {
        // Serde names a missing or unknown field in the message, not in the path.
        ["missing field `", "unknown field `"]
            .iter()
            .find_map(|p| message.strip_prefix(p))
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    match field {
        Some(field) => ProblemResponse::invalid(&field, &message),
        None => ProblemResponse::invalid("", &format!("the body is not valid JSON: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> ProblemResponse {
        let mut de = serde_json::Deserializer::from_str(body);
        match serde_path_to_error::deserialize::<_, super::super::json::SubmitRenderRequest>(
            &mut de,
        ) {
            Ok(_) => panic!("{body} should not parse"),
            Err(e) => from_json_error(&e),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        let p = parse(r#"{"template": "t", "tokens": {"first_name": 7}}"#).problem;
        assert_eq!(p.field.as_deref(), Some("tokens.first_name"), "{p:?}");
        assert_eq!(p.status, 400);
        let p = parse(r#"{"template": "t", "preset": "4k"}"#).problem;
        assert_eq!(p.field.as_deref(), Some("preset"), "{p:?}");
        let p = parse(r#"{"tokens": {}}"#).problem;
        assert_eq!(p.field.as_deref(), Some("template"), "{p:?}");
        let p = parse(r#"{"template": "t", "colour": "red"}"#).problem;
        assert_eq!(p.field.as_deref(), Some("colour"), "{p:?}");
        let p = parse(r#"{"template": "t", "deadline_s": -1}"#).problem;
        assert_eq!(p.field.as_deref(), Some("deadline_s"), "{p:?}");
        let p = parse("not json").problem;
        assert_eq!(p.field, None);
        assert!(p.detail.contains("not valid JSON"), "{p:?}");
    }

    #[test]
    fn api_errors_map_to_statuses() {
        let cases = [
            (
                ApiError::invalid("spec.tokens.x", "bad"),
                400,
                "invalid-argument",
            ),
            (
                ApiError::Unauthenticated("unknown API key"),
                401,
                "unauthenticated",
            ),
            (ApiError::NotFound("render `x`".into()), 404, "not-found"),
            (ApiError::AlreadyExists("used".into()), 409, "conflict"),
            (
                ApiError::FailedPrecondition("no".into()),
                412,
                "failed-precondition",
            ),
            (
                ApiError::ResourceExhausted {
                    message: "full".into(),
                    retry_after_ms: 1_500,
                },
                429,
                "lane-full",
            ),
            (
                ApiError::ResourceExhausted {
                    message: "big".into(),
                    retry_after_ms: 0,
                },
                413,
                "too-large",
            ),
            (ApiError::Unavailable("busy".into()), 503, "unavailable"),
            (ApiError::Internal("secret detail".into()), 500, "internal"),
        ];
        for (error, status, kind) in cases {
            let p = ProblemResponse::from(error);
            assert_eq!(p.problem.status, status);
            assert_eq!(p.problem.kind, format!("{TYPE_PREFIX}{kind}"));
            assert!(!p.problem.detail.contains("secret"));
        }
        let p = ProblemResponse::from(ApiError::invalid("spec.tokens.x", "bad"));
        assert_eq!(p.problem.field.as_deref(), Some("tokens.x"));
        assert_eq!(p.problem.detail, "tokens.x: bad");
        let full = ProblemResponse::from(ApiError::ResourceExhausted {
            message: "full".into(),
            retry_after_ms: 1_500,
        });
        assert_eq!(full.retry_after_s, Some(2), "rounded up");
        let response = full.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
