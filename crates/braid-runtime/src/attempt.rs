//! [`AttemptError`]: why one attempt of an action gave no result, typed, with
//! each kind's code, its default retryability and what it cost; and
//! [`LlmRecorder`], the `llm_request` of an attempt as it goes.

use braid_core::event::{ErrorInfo, LlmExchange, RequestError, Usage};
use braid_core::protocol::Outcome;
use braid_llm::LlmError;
use braid_types::ErrorCode;
use serde_json::Value;
use std::sync::Mutex;
use std::time::Instant;

/// The request an `llm_call` attempt sent, kept outside the attempt's
/// future so that an attempt aborted by its timeout still reports it.
#[derive(Default)]
pub(crate) struct LlmRecorder(Mutex<Option<(Instant, LlmExchange)>>);

impl LlmRecorder {
    /// The request is about to go out (`sent_at`, `wait_ms`, `messages` set).
    pub(crate) fn sent(&self, exchange: LlmExchange) {
        *self.0.lock().expect("llm recorder lock") = Some((Instant::now(), exchange));
    }

    /// Whether a request went out.
    pub(crate) fn is_sent(&self) -> bool {
        self.0.lock().expect("llm recorder lock").is_some()
    }

    /// The provider answered (`response` is `None` when nothing arrived).
    pub(crate) fn answered(&self, response: Option<Value>, request_id: Option<String>) {
        if let Some((sent, x)) = self.0.lock().expect("llm recorder lock").as_mut() {
            x.duration_ms = sent.elapsed().as_millis() as u64;
            x.response = response;
            x.request_id = request_id;
        }
    }

    /// Attaches the recorded request to the attempt's outcome, with the
    /// outcome's error and usage (what the core records for the attempt).
    pub(crate) fn finish(self, outcome: &mut Outcome) {
        let Some((sent, mut x)) = self.0.into_inner().expect("llm recorder lock") else {
            return;
        };
        if x.response.is_none() && x.duration_ms == 0 {
            // Cut off before an answer (the attempt's timeout).
            x.duration_ms = sent.elapsed().as_millis() as u64;
        }
        let slot = match outcome {
            Outcome::Success { usage, llm, .. } => {
                x.usage = usage.clone();
                llm
            }
            Outcome::Failure {
                error, usage, llm, ..
            } => {
                x.error = Some(RequestError {
                    code: error.code,
                    message: error.message.clone(),
                });
                x.usage = usage.clone();
                llm
            }
        };
        *slot = Some(Box::new(x));
    }
}

/// Why one attempt of an action gave no result.
///
/// Each kind knows its [`ErrorCode`] and so its default retryability
/// ([`ErrorCode::retryable_by_default`]); the node's retry policy still
/// decides (`retryable_errors`), in the core.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AttemptError {
    /// The executor is draining and the attempt never began: it is not a
    /// failure, and the task goes back to the queue unreported.
    #[error("the executor is shutting down")]
    NotStarted,
    /// The attempt passed its `timeout_ms` and was aborted.
    #[error(
        "node `{node}`: attempt {attempt} exceeded its timeout of {ms} ms (execution.timeout_ms); the call was aborted"
    )]
    Timeout {
        /// Node ref.
        node: String,
        /// The attempt (1-based).
        attempt: u32,
        /// The timeout.
        ms: u64,
        /// Whether a request had gone to a provider before the timeout.
        sent: bool,
    },
    /// The provider answered with an error (or none): its code and
    /// `Retry-After`. The request was sent, so it counts as one; `usage` is
    /// what the provider reported for it, priced (zero tokens when none).
    #[error("{error}")]
    Provider {
        /// The provider's error.
        error: LlmError,
        /// The priced usage of the request.
        usage: Usage,
    },
    /// The provider could not be set up (no key, a bad profile): nothing was sent.
    #[error("{0}")]
    ProviderSetup(LlmError),
    /// The model answered, but not in the shape of `produces`. The answer
    /// was paid for: `usage` is what it cost.
    #[error("{message}")]
    SchemaMismatch {
        /// What does not match.
        message: String,
        /// The answer's usage.
        usage: Usage,
    },
    /// A budget of the run, an ancestor or the node's visit is spent: the
    /// request was not sent (the message names the budget, what is spent
    /// and the limit).
    #[error("{0}")]
    BudgetExceeded(String),
    /// Storing an artifact failed.
    #[error("{0}")]
    ArtifactStore(String),
    /// The model profile cannot be used (unknown profile or provider).
    #[error("{0}")]
    Misconfigured(String),
    /// A fault of Braid's (an unreadable task, a definition that cannot be loaded).
    #[error("{0}")]
    Internal(String),
}

impl AttemptError {
    /// The user-visible code.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            AttemptError::NotStarted | AttemptError::Internal(_) => ErrorCode::Internal,
            AttemptError::Timeout { .. } => ErrorCode::Timeout,
            AttemptError::Provider { error: e, .. } | AttemptError::ProviderSetup(e) => e.code,
            AttemptError::SchemaMismatch { .. } => ErrorCode::SchemaMismatch,
            AttemptError::BudgetExceeded(_) => ErrorCode::BudgetExceeded,
            AttemptError::ArtifactStore(_) => ErrorCode::Unavailable,
            AttemptError::Misconfigured(_) => ErrorCode::InvalidRequest,
        }
    }

    /// Whether the default retry policy retries it.
    pub(crate) fn retryable_by_default(&self) -> bool {
        self.code().retryable_by_default()
    }

    /// What the attempt cost: `None` when no request reached a provider.
    /// A request that was sent counts as one (`llm_calls`), with the tokens
    /// the provider reported, if any.
    fn usage(&self) -> Option<Usage> {
        match self {
            AttemptError::Timeout { sent: true, .. } => Some(Usage::default()),
            AttemptError::Provider { usage, .. } | AttemptError::SchemaMismatch { usage, .. } => {
                Some(usage.clone())
            }
            _ => None,
        }
    }

    /// The outcome the core receives for this failed attempt.
    pub(crate) fn into_outcome(self, duration_ms: u64) -> Outcome {
        let usage = self.usage();
        let retry_after_ms = match &self {
            AttemptError::Provider { error: e, .. } => e.retry_after_ms,
            _ => None,
        };
        let message = match &self {
            AttemptError::Provider { error: e, .. } | AttemptError::ProviderSetup(e) => {
                e.message.clone()
            }
            other => other.to_string(),
        };
        let mut error = ErrorInfo::new(self.code(), message);
        error.retryable = self.retryable_by_default();
        Outcome::Failure {
            error,
            retry_after_ms,
            duration_ms,
            usage,
            llm: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_code_retryability_and_cost() {
        let cases = [
            (
                AttemptError::Timeout {
                    node: "n".into(),
                    attempt: 2,
                    ms: 50,
                    sent: true,
                },
                ErrorCode::Timeout,
                true,
                Some(0),
            ),
            (
                AttemptError::Timeout {
                    node: "n".into(),
                    attempt: 1,
                    ms: 50,
                    sent: false,
                },
                ErrorCode::Timeout,
                true,
                None,
            ),
            (
                AttemptError::Provider {
                    error: LlmError::new(ErrorCode::RateLimited, "429"),
                    usage: Usage::default(),
                },
                ErrorCode::RateLimited,
                true,
                Some(0),
            ),
            (
                AttemptError::Provider {
                    error: LlmError::new(ErrorCode::BadResponse, "refused"),
                    usage: Usage {
                        input_tokens: 40,
                        output_tokens: 2,
                        ..Usage::default()
                    },
                },
                ErrorCode::BadResponse,
                false,
                Some(42),
            ),
            (
                AttemptError::ProviderSetup(LlmError::new(ErrorCode::Auth, "no key")),
                ErrorCode::Auth,
                false,
                None,
            ),
            (
                AttemptError::SchemaMismatch {
                    message: "bad".into(),
                    usage: Usage {
                        input_tokens: 7,
                        output_tokens: 3,
                        cost_usd: 0.5,
                        ..Usage::default()
                    },
                },
                ErrorCode::SchemaMismatch,
                false,
                Some(10),
            ),
            (
                AttemptError::BudgetExceeded("spent".into()),
                ErrorCode::BudgetExceeded,
                false,
                None,
            ),
            (
                AttemptError::ArtifactStore("disk".into()),
                ErrorCode::Unavailable,
                true,
                None,
            ),
            (
                AttemptError::Misconfigured("p".into()),
                ErrorCode::InvalidRequest,
                false,
                None,
            ),
            (
                AttemptError::Internal("x".into()),
                ErrorCode::Internal,
                false,
                None,
            ),
        ];
        for (error, code, retryable, tokens) in cases {
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(error.retryable_by_default(), retryable, "{error:?}");
            let Outcome::Failure {
                error: info, usage, ..
            } = error.into_outcome(5)
            else {
                panic!("a failure");
            };
            assert_eq!(info.code, code);
            assert_eq!(info.retryable, retryable);
            assert_eq!(usage.map(|u| u.input_tokens + u.output_tokens), tokens);
        }
    }
}
