//! Error codes shared by every provider (SPEC §4, §5).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The user-visible code of a failed LLM call.
///
/// Serialized as the SPEC's upper-case names (`"RATE_LIMITED"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// HTTP 429: the provider asks us to slow down (see `retry_after_ms`).
    RateLimited,
    /// HTTP 5xx / 529 or an `overloaded_error`: the provider is temporarily unavailable.
    Unavailable,
    /// The connection could not be made or broke while reading the answer.
    Network,
    /// No answer within the deadline.
    Timeout,
    /// The prompt does not fit the model's context window.
    ContextLength,
    /// HTTP 401/403, or no API key configured.
    Auth,
    /// Any other request the provider rejects (other 4xx), or a misconfigured profile.
    InvalidRequest,
    /// The provider answered something we cannot use (not JSON, missing fields, output not a JSON object).
    BadResponse,
    /// The structured output does not match `produces` (raised by the runtime, or injected by a script).
    SchemaMismatch,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::Network,
        ErrorCode::Timeout,
        ErrorCode::ContextLength,
        ErrorCode::Auth,
        ErrorCode::InvalidRequest,
        ErrorCode::BadResponse,
        ErrorCode::SchemaMismatch,
    ];

    /// The code as users see it, e.g. `"RATE_LIMITED"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Network => "NETWORK",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::ContextLength => "CONTEXT_LENGTH",
            ErrorCode::Auth => "AUTH",
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::BadResponse => "BAD_RESPONSE",
            ErrorCode::SchemaMismatch => "SCHEMA_MISMATCH",
        }
    }

    /// Whether the default `retryable_errors` (SPEC §5) include this code:
    /// `TIMEOUT`, `RATE_LIMITED`, `UNAVAILABLE`, `NETWORK`.
    pub fn retryable_by_default(self) -> bool {
        matches!(
            self,
            ErrorCode::Timeout
                | ErrorCode::RateLimited
                | ErrorCode::Unavailable
                | ErrorCode::Network
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
                format!(
                    "unknown error code {s:?} (expected one of {})",
                    known.join(", ")
                )
            })
    }
}

/// A failed LLM call. `message` names the provider, the model and (when there was one)
/// the HTTP status, and never contains an API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct LlmError {
    /// What went wrong, as a SPEC error code.
    pub code: ErrorCode,
    /// Human-readable detail (provider, model, status, truncated provider message).
    pub message: String,
    /// How long the provider asked us to wait (`Retry-After` / `retry-after-ms`), in milliseconds.
    pub retry_after_ms: Option<u64>,
    /// The HTTP status of the provider's answer, when there was one.
    pub http_status: Option<u16>,
}

impl LlmError {
    /// An error with no HTTP status and no retry hint.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        LlmError {
            code,
            message: message.into(),
            retry_after_ms: None,
            http_status: None,
        }
    }

    /// Whether the default retry policy retries this error.
    pub fn retryable(&self) -> bool {
        self.code.retryable_by_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_str_and_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>().unwrap(), code);
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::json!(code.as_str()));
            assert_eq!(serde_json::from_value::<ErrorCode>(json).unwrap(), code);
        }
        assert!("rate_limited".parse::<ErrorCode>().is_err());
    }

    #[test]
    fn default_retryable_set_matches_spec() {
        let retryable: Vec<&str> = ErrorCode::ALL
            .into_iter()
            .filter(|c| c.retryable_by_default())
            .map(ErrorCode::as_str)
            .collect();
        assert_eq!(
            retryable,
            ["RATE_LIMITED", "UNAVAILABLE", "NETWORK", "TIMEOUT"]
        );
    }

    #[test]
    fn display_includes_code_and_message() {
        let e = LlmError::new(ErrorCode::Auth, "openai model m: HTTP 401");
        assert_eq!(e.to_string(), "AUTH: openai model m: HTTP 401");
    }
}
