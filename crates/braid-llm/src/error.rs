//! Error codes shared by every provider (docs/errors.md).

/// The user-visible code of a failed LLM call: the one [`ErrorCode`] of
/// every crate. Providers answer with the provider codes of docs/errors.md (`RATE_LIMITED`,
/// `UNAVAILABLE`, `NETWORK`, `TIMEOUT`, `CONTEXT_LENGTH`, `AUTH`,
/// `INVALID_REQUEST`, `BAD_RESPONSE`) and `SCHEMA_MISMATCH`.
pub use braid_types::ErrorCode;

/// A failed LLM call. `message` names the provider, the model and (when there was one)
/// the HTTP status, and never contains an API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct LlmError {
    /// What went wrong, as a documented error code (docs/errors.md).
    pub code: ErrorCode,
    /// Human-readable detail (provider, model, status, truncated provider message).
    pub message: String,
    /// How long the provider asked us to wait (`Retry-After` / `retry-after-ms`), in milliseconds.
    pub retry_after_ms: Option<u64>,
    /// The HTTP status of the provider's answer, when there was one.
    pub http_status: Option<u16>,
    /// The tokens the provider reported for an answer it charged but that
    /// cannot be used (a 2xx refusal or unparseable output): spent money.
    pub usage: Option<crate::Usage>,
    /// The provider's answer, when one arrived: the body as JSON, or its
    /// text (a JSON string) when it is not JSON.
    pub response: Option<serde_json::Value>,
    /// The provider's id of the request, when its answer named one (a
    /// header, else the body's `id`): what its support asks for. Boxed to
    /// keep the error within 128 bytes (it travels in every `Result`).
    pub request_id: Option<Box<str>>,
}

impl LlmError {
    /// An error with no HTTP status and no retry hint.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        LlmError {
            code,
            message: message.into(),
            retry_after_ms: None,
            http_status: None,
            usage: None,
            response: None,
            request_id: None,
        }
    }

    /// The same error, with the usage the provider reported for the answer.
    pub fn with_usage(mut self, usage: crate::Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    /// The same error, with the provider's id of the request (if any).
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id.map(String::into_boxed_str);
        self
    }

    /// The same error, with the provider's answer.
    pub fn with_response(mut self, response: serde_json::Value) -> Self {
        self.response = Some(response);
        self
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
    fn display_includes_code_and_message() {
        let e = LlmError::new(ErrorCode::Auth, "openai model m: HTTP 401");
        assert_eq!(e.to_string(), "AUTH: openai model m: HTTP 401");
        assert!(!e.retryable());
        assert!(LlmError::new(ErrorCode::RateLimited, "429").retryable());
    }
}
