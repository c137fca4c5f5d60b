//! The one place where failures become HTTP responses.
//!
//! Every handler, extractor rejection, fallback and panic ends up as an
//! [`ApiError`], rendered as `{ "error": { code, message, details? } }`
//! (docs/api.md). 4xx messages name the field or object at fault; 5xx messages
//! never carry internals (the cause goes to the log).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use braid_api::{DefinitionProblem, ErrorBody, ErrorCode, ErrorDetail};
use braid_core::definition::ParseError;
use braid_core::graph::DefinitionError;
use serde_json::{Value, json};

/// An API error: status, stable code, message and optional details.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code (docs/errors.md).
    pub code: ErrorCode,
    /// What is wrong and what to do.
    pub message: String,
    /// Structured details (`{ errors: [...] }`).
    pub details: Option<Value>,
}

/// The message of every 500: the cause is logged, never sent.
const INTERNAL_MESSAGE: &str =
    "the server failed to handle the request; the cause is in the server log";

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// 400 `MALFORMED_BODY`: the body or query cannot be read.
    pub fn malformed(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedBody, message)
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    /// 403 `CROSS_ORIGIN`.
    pub fn cross_origin(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, ErrorCode::CrossOrigin, message)
    }

    /// 405 `METHOD_NOT_ALLOWED`.
    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            message,
        )
    }

    /// 413 `BODY_TOO_LARGE`.
    pub fn body_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            format!("the request body exceeds the server's limit of {limit} bytes"),
        )
    }

    /// 422 `INVALID_DEFINITION` with every problem in `details.errors`.
    pub fn invalid_definition(errors: &[DefinitionError]) -> ApiError {
        let problems: Vec<DefinitionProblem> = errors.iter().map(problem).collect();
        let message = match errors {
            [one] => format!(
                "the workflow definition is invalid: {} `{}`, field `{}`: {}",
                one.kind, one.ref_, one.field, one.message
            ),
            _ => format!(
                "the workflow definition has {} problems (see details.errors); the first: {}",
                errors.len(),
                errors
                    .first()
                    .map(|e| format!(
                        "{} `{}`, field `{}`: {}",
                        e.kind, e.ref_, e.field, e.message
                    ))
                    .unwrap_or_default()
            ),
        };
        ApiError {
            details: Some(json!({ "errors": problems })),
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidDefinition,
                message,
            )
        }
    }

    /// 422 `INVALID_REQUEST`: `field` (a path in the request) names
    /// something that does not fit; `details.field` repeats it.
    pub fn invalid_request(field: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError {
            details: Some(json!({ "field": field })),
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidRequest,
                format!("`{field}`: {message}"),
            )
        }
    }

    /// 500 `INTERNAL`: logs `cause`, answers a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error while handling an API request");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            INTERNAL_MESSAGE,
        )
    }
}

/// The API form of a core validation problem.
pub fn problem(e: &DefinitionError) -> DefinitionProblem {
    DefinitionProblem {
        kind: e.kind.clone(),
        ref_: e.ref_.clone(),
        field: e.field.clone(),
        message: e.message.clone(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                details: self.details,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<ParseError> for ApiError {
    fn from(e: ParseError) -> ApiError {
        match e {
            ParseError::Malformed(m) => ApiError::malformed(m),
            ParseError::Shape(problems) => ApiError::invalid_definition(&problems),
        }
    }
}

impl From<braid_runtime::Error> for ApiError {
    fn from(e: braid_runtime::Error) -> ApiError {
        use braid_runtime::Error as E;
        match e {
            E::InvalidDefinition(errors) => ApiError::invalid_definition(&errors),
            E::InvalidLimits(errors) => {
                let first = errors
                    .first()
                    .map(|e| format!("`{}`: {}", e.field, e.message))
                    .unwrap_or_default();
                ApiError {
                    message: format!("the run's limits are invalid: {first}"),
                    ..ApiError::invalid_definition(&errors)
                }
            }
            E::NotFound(m) => ApiError::not_found(m),
            E::InputSchema { message, errors } => ApiError {
                details: Some(json!({ "errors": errors })),
                ..ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::InputSchema,
                    message,
                )
            },
            E::InvalidRequest { field, message } => ApiError::invalid_request(&field, message),
            E::ForkIncompatible(missing) => ApiError {
                message: format!(
                    "the target version cannot continue the source run's history: it lacks {}",
                    missing.join(", ")
                ),
                details: Some(json!({ "missing": missing })),
                ..ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::ForkIncompatible,
                    "",
                )
            },
            E::RunEnded(run) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::RunEnded,
                format!("run `{run}` has already ended; only a running run can be cancelled"),
            ),
            E::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "the server is shutting down; retry once it has restarted",
            ),
            E::Store(e) => e.into(),
        }
    }
}

impl From<braid_store::Error> for ApiError {
    fn from(e: braid_store::Error) -> ApiError {
        use braid_store::Error as E;
        match e {
            E::NotFound(_) => ApiError::not_found(e.to_string()),
            E::Conflict(m) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                format!("{m}; retry the request"),
            ),
            E::Invalid(m) => ApiError::malformed(m),
            E::BadDefinition(message) => {
                ApiError::invalid_definition(&[braid_core::graph::DefinitionError {
                    kind: "workflow".into(),
                    ref_: String::new(),
                    field: String::new(),
                    message,
                }])
            }
            E::Backend(_) | E::Fenced(_) => ApiError::internal(e),
        }
    }
}
