//! [`ErrorCode`]: every code a user can see, in a run's errors (docs/errors.md)
//! and in the HTTP API's answers (docs/api.md).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Declares the codes once: the variant, its documentation, the string users
/// see, whether the default `retryable_errors` include it, and where it can
/// appear (a run's error, an API answer, or both).
macro_rules! codes {
    ($( $(#[doc = $doc:literal])+ $variant:ident = $name:literal, retryable: $retry:literal, run: $run:literal, api: $api:literal; )+) => {
        /// A stable, user-visible error code, serialized as the documented
        /// upper-case name (`"NO_MATCHING_TRANSITION"`, `"RATE_LIMITED"`, …).
        ///
        /// The list is also in `docs/errors.md`; a test keeps the two equal.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum ErrorCode {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )+ ];

            /// The code as users see it, e.g. `"RATE_LIMITED"`.
            pub const fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $name, )+ }
            }

            /// Whether the default `retryable_errors` of a retry policy
            /// (docs/definitions.md) include this code: `TIMEOUT`, `RATE_LIMITED`,
            /// `UNAVAILABLE`, `NETWORK`. A policy's own list still decides.
            pub const fn retryable_by_default(self) -> bool {
                match self { $( ErrorCode::$variant => $retry, )+ }
            }

            /// Whether the code can be a run's, a node's or an attempt's
            /// error (`run.error`, `state._last_error`, events).
            pub const fn is_run_error(self) -> bool {
                match self { $( ErrorCode::$variant => $run, )+ }
            }

            /// Whether the code can be the `error.code` of an HTTP answer.
            pub const fn is_api_error(self) -> bool {
                match self { $( ErrorCode::$variant => $api, )+ }
            }
        }
    };
}

codes! {
    /// A node succeeded, it has outgoing transitions, and none matched.
    NoMatchingTransition = "NO_MATCHING_TRANSITION", retryable: false, run: true, api: false;
    /// A CEL expression (condition, mapping, update, spawn count) failed to evaluate.
    Expression = "EXPRESSION", retryable: false, run: true, api: false;
    /// A branch tried to write `output.*`.
    BranchOutputWrite = "BRANCH_OUTPUT_WRITE", retryable: false, run: true, api: false;
    /// A token reached a join outside the sibling sets that join closes.
    JoinScope = "JOIN_SCOPE", retryable: false, run: true, api: false;
    /// Every member arrived or ended with fewer arrivals than the join needs.
    JoinUnsatisfied = "JOIN_UNSATISFIED", retryable: false, run: true, api: false;
    /// A merge could not be applied (e.g. `merge_object` of a non-object).
    MergeError = "MERGE_ERROR", retryable: false, run: true, api: false;
    /// The run's final output does not match its `output_schema`.
    OutputSchema = "OUTPUT_SCHEMA", retryable: false, run: true, api: false;
    /// An input does not match its `input_schema` (a run's, or a child run's).
    InputSchema = "INPUT_SCHEMA", retryable: false, run: true, api: true;
    /// The run passed `limits.timeout_ms`.
    RunTimeout = "RUN_TIMEOUT", retryable: false, run: true, api: false;
    /// The run would pass `limits.max_run_tokens`.
    TokenLimit = "TOKEN_LIMIT", retryable: false, run: true, api: false;
    /// An LLM call found a budget spent (`limits.max_cost_usd` or
    /// `limits.max_llm_tokens` of its run or an ancestor, or its node's
    /// `execution.max_cost_usd`) and was not sent. Never retried.
    BudgetExceeded = "BUDGET_EXCEEDED", retryable: false, run: true, api: false;
    /// A prompt template could not be rendered (e.g. a missing variable).
    Template = "TEMPLATE", retryable: false, run: true, api: false;
    /// A structured output (or an artifact's content) does not match its schema.
    SchemaMismatch = "SCHEMA_MISMATCH", retryable: false, run: true, api: false;
    /// A child run failed (`_last_error.cause` holds its error).
    SubworkflowFailed = "SUBWORKFLOW_FAILED", retryable: false, run: true, api: false;
    /// The work was cancelled (a cancelled child run fails its node with it).
    Cancelled = "CANCELLED", retryable: false, run: true, api: false;
    /// Sub-workflows nested deeper than 32 levels.
    DepthLimit = "DEPTH_LIMIT", retryable: false, run: true, api: false;
    /// The provider answered 429 (its `Retry-After` is honoured).
    RateLimited = "RATE_LIMITED", retryable: true, run: true, api: false;
    /// The provider (or a store the action needs, or the server) is temporarily unavailable.
    Unavailable = "UNAVAILABLE", retryable: true, run: true, api: true;
    /// The connection could not be made or broke while reading the answer.
    Network = "NETWORK", retryable: true, run: true, api: false;
    /// No answer within the attempt's `timeout_ms`.
    Timeout = "TIMEOUT", retryable: true, run: true, api: false;
    /// The prompt does not fit the model's context window.
    ContextLength = "CONTEXT_LENGTH", retryable: false, run: true, api: false;
    /// The provider refused the key (401/403), or no key is configured.
    Auth = "AUTH", retryable: false, run: true, api: false;
    /// The provider rejected the request (other 4xx), or the profile is
    /// misconfigured; in an API answer (422), a request field names
    /// something that does not fit (a fork's node, seq, version or change,
    /// the runs of a comparison), `details.field` naming it.
    InvalidRequest = "INVALID_REQUEST", retryable: false, run: true, api: true;
    /// The provider answered something that cannot be used.
    BadResponse = "BAD_RESPONSE", retryable: false, run: true, api: false;
    /// A fault of Braid itself; the message never leaks internals over HTTP.
    Internal = "INTERNAL", retryable: false, run: true, api: true;
    /// 400: the body or a query parameter cannot be read.
    MalformedBody = "MALFORMED_BODY", retryable: false, run: false, api: true;
    /// 404: no such workflow, version, run, token or artifact (also the
    /// error of a `workflow_call` whose workflow or version does not exist).
    NotFound = "NOT_FOUND", retryable: false, run: true, api: true;
    /// 403: a browser request from another origin, or with a `Host` that is
    /// not one of the server's names (DNS rebinding).
    CrossOrigin = "CROSS_ORIGIN", retryable: false, run: false, api: true;
    /// 405: the path exists but not with this method.
    MethodNotAllowed = "METHOD_NOT_ALLOWED", retryable: false, run: false, api: true;
    /// 409: the run has already ended (e.g. cancelling it).
    RunEnded = "RUN_ENDED", retryable: false, run: false, api: true;
    /// 409: a storage precondition failed (e.g. a concurrent save).
    Conflict = "CONFLICT", retryable: false, run: false, api: true;
    /// 413: the body is larger than the server's limit.
    BodyTooLarge = "BODY_TOO_LARGE", retryable: false, run: false, api: true;
    /// 422: the bundle has the wrong shape or fails validation (every problem
    /// listed); also the error of a `workflow_call` whose version cannot be compiled.
    InvalidDefinition = "INVALID_DEFINITION", retryable: false, run: true, api: true;
    /// 422: a fork's target version lacks a node, action or join that the
    /// copied history refers to (`details.missing` names each).
    ForkIncompatible = "FORK_INCOMPATIBLE", retryable: false, run: false, api: true;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the [`ErrorCode`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCode(pub String);

impl fmt::Display for UnknownCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not an error code", self.0)
    }
}

impl std::error::Error for UnknownCode {}

impl FromStr for ErrorCode {
    type Err = UnknownCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCode(s.to_string()))
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_string_and_serde() {
        for &code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(
                json,
                format!("\"{}\"", code.as_str()),
                "serde name of {code:?}"
            );
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert!(
                code.is_run_error() || code.is_api_error(),
                "{code} is used somewhere"
            );
        }
        assert_eq!(
            "BOOM".parse::<ErrorCode>().unwrap_err().to_string(),
            "`BOOM` is not an error code"
        );
        let retryable: Vec<&str> = ErrorCode::ALL
            .iter()
            .filter(|c| c.retryable_by_default())
            .map(|c| c.as_str())
            .collect();
        assert_eq!(
            retryable,
            ["RATE_LIMITED", "UNAVAILABLE", "NETWORK", "TIMEOUT"]
        );
    }

    /// `docs/errors.md` lists every code in a table whose first cell is the
    /// code in backticks; the documented set must be exactly this type's.
    #[test]
    fn the_codes_are_the_documented_list() {
        let doc = include_str!("../../../docs/errors.md");
        let mut documented: Vec<(String, bool, bool)> = Vec::new();
        let mut section = "";
        for line in doc.lines() {
            if let Some(h) = line.strip_prefix("## ") {
                section = if h.starts_with("Run") {
                    "run"
                } else if h.starts_with("API") {
                    "api"
                } else {
                    ""
                };
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() > 2 && cells[1].starts_with('`') && !section.is_empty() {
                let code = cells[1].split('`').nth(1).unwrap_or_default().to_string();
                match documented.iter_mut().find(|d| d.0 == code) {
                    Some(d) => {
                        if section == "run" {
                            d.1 = true
                        } else {
                            d.2 = true
                        }
                    }
                    None => documented.push((code, section == "run", section == "api")),
                }
            }
        }
        let mut ours: Vec<(String, bool, bool)> = ErrorCode::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), c.is_run_error(), c.is_api_error()))
            .collect();
        documented.sort();
        ours.sort();
        assert_eq!(documented, ours, "docs/errors.md and ErrorCode disagree");
    }
}
