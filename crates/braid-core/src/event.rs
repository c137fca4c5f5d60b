//! Events (docs/lifecycles.md): the append-only record of every state change of a run.
//!
//! The state machine changes a run's state **only** by applying events
//! ([`crate::state::RunState::apply_event`]), so the state rebuilt from the
//! event log is the live state by construction.

use braid_types::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// An event with its envelope. `run_id` is added by the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// 1, 2, 3 … per run, no gaps.
    pub seq: u64,
    /// When the core decided it (the time of the input that caused it).
    pub ts: Millis,
    /// The token concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// The node concerned (its ref).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Kind and payload.
    #[serde(flatten)]
    pub body: EventBody,
}

/// Usage of one LLM call.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// From the profile's prices.
    pub cost_usd: f64,
    /// Wall time of the call.
    #[serde(default)]
    pub latency_ms: u64,
    /// The provider's request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The model that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// A user-visible error: a stable code plus where it happened.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// Stable code (`NO_MATCHING_TRANSITION`, `RATE_LIMITED`, …).
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
    /// Node ref.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Action ref.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Attempt (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Whether the code is retryable.
    #[serde(default)]
    pub retryable: bool,
    /// The underlying error (e.g. a child run's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub cause: Option<Box<ErrorInfo>>,
}

impl ErrorInfo {
    /// An error with a code and message only.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorInfo {
        ErrorInfo {
            code,
            message: message.into(),
            node: None,
            action: None,
            attempt: None,
            retryable: false,
            cause: None,
        }
    }
}

/// One context write. `value: None` removes the path.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Write {
    /// Target path (`state.a`, `output.b`, `artifacts.c`, `_branch.output.d`).
    pub path: String,
    /// The value written; absent for a removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// One request an `llm_call` attempt sent and what came back: the payload
/// of `llm_request`, carried from the executor to the core inside the
/// attempt's [`crate::protocol::Outcome`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmExchange {
    /// The attempt (1-based).
    pub attempt: u32,
    /// `openai`, `anthropic`, `openai_compatible` or `scripted`.
    pub provider: String,
    /// The model asked for.
    pub model: String,
    /// The provider's request id, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// When the request was sent (after the wait for a slot), in ms since the epoch.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub sent_at: Millis,
    /// Time spent waiting for a concurrency slot before sending.
    pub wait_ms: u64,
    /// From sending to the answer (or to the timeout).
    pub duration_ms: u64,
    /// The rendered messages sent, as a Chat Completions list
    /// `[{ role, content }]` (docs/lifecycles.md).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<ChatMessage>))]
    pub messages: Value,
    /// The raw response body: JSON as received, or its text when it is not
    /// JSON; absent when no answer arrived (a timeout, a network error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    /// Why the attempt failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RequestError>,
    /// What the request cost, when the provider reported usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// One rendered message of [`LlmExchange::messages`], as sent (the
/// document's description of that list; the field itself stays JSON, so a
/// provider's extra keys are kept).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The rendered text.
    pub content: String,
}

/// The error of one LLM request: its code and message.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestError {
    /// Stable code (`SCHEMA_MISMATCH`, `RATE_LIMITED`, …).
    pub code: ErrorCode,
    /// What happened.
    pub message: String,
}

/// Event kinds and payloads.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum EventBody {
    /// The run started; the initial token is the envelope's.
    WorkflowStarted {
        /// Validated input.
        input: Value,
        /// Artifacts inherited from a parent run (`inherit_artifacts`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        artifacts: Option<Value>,
    },
    /// The run completed.
    WorkflowCompleted {
        /// Final output.
        output: Value,
    },
    /// The run failed.
    WorkflowFailed {
        /// Why.
        error: ErrorInfo,
    },
    /// The run was cancelled.
    WorkflowCancelled {
        /// Why.
        reason: String,
    },
    /// An attempt of the node's action started (or was dispatched).
    NodeStarted {
        /// 1-based attempt.
        attempt: u32,
        /// Action ref.
        action: String,
        /// Digest of the action's resolved input.
        input_digest: String,
        /// What the action received, on the first attempt of an action that
        /// has an input: an `llm_call`'s or `update_context`'s
        /// `input_mapping` arguments (when it has any), a `workflow_call`'s
        /// child input, a `write_artifact`'s content. Stored out of line
        /// beyond 64 KiB like a large result.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<Value>,
    },
    /// The node's action succeeded.
    NodeCompleted {
        /// Attempt that succeeded.
        attempt: u32,
        /// Duration of the attempt.
        duration_ms: u64,
        /// The action's output.
        result: Value,
        /// LLM usage.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    /// The node failed for good (no more attempts).
    NodeFailed {
        /// Last attempt.
        attempt: u32,
        /// The error.
        error: ErrorInfo,
        /// What the last attempt cost, when it sent a request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    /// One `llm_call` attempt's request and answer, written just before
    /// that attempt's outcome event. The state machine ignores it.
    LlmRequest(Box<LlmExchange>),
    /// An attempt failed and another is scheduled.
    NodeRetrying {
        /// Attempt that failed.
        attempt: u32,
        /// Its error.
        error: ErrorInfo,
        /// What the failed attempt cost, when it sent a request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
        /// Delay before the next attempt.
        delay_ms: u64,
        /// Earliest start of the next attempt, in milliseconds since the Unix epoch.
        #[cfg_attr(feature = "openapi", schema(value_type = i64))]
        not_before: Millis,
    },
    /// A transition was taken from the envelope's token.
    TransitionTaken {
        /// Transition ref, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transition: Option<String>,
        /// Source node ref.
        from: String,
        /// Target node ref.
        to: String,
        /// Ids of the tokens created.
        tokens: Vec<String>,
    },
    /// A sibling-set member was created.
    TokenSpawned {
        /// Sibling set id.
        sibling_set: String,
        /// Branch index.
        index: u64,
        /// Branch count.
        total: u64,
        /// The token whose visit spawned it.
        parent_token: String,
        /// `_branch.item` of a foreach member.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item: Option<Value>,
        /// The foreach's `item_var`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_var: Option<String>,
    },
    /// A member arrived at its join and waits.
    TokenWaiting {
        /// Sibling set id.
        sibling_set: String,
        /// Join node ref.
        join_node: String,
    },
    /// A join fired.
    FanInCompleted {
        /// Sibling set id.
        sibling_set: String,
        /// Arrived members, in index order.
        merged: Vec<String>,
        /// Merge strategy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strategy: Option<String>,
        /// Merge target path.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// The continuation token (the envelope's token).
        continuation: String,
        /// The token whose visit spawned the set.
        origin_token: String,
        /// `all`, `any` or `m_of_n`.
        fan_in: String,
    },
    /// A member was merged.
    TokenMerged {
        /// Sibling set id.
        sibling_set: String,
    },
    /// A token was cancelled.
    TokenCancelled {
        /// Sibling set id, for members.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sibling_set: Option<String>,
        /// Why.
        reason: String,
    },
    /// Context writes in the envelope token's scope.
    ContextUpdated {
        /// Paths and values, in order.
        writes: Vec<Write>,
    },
    /// An artifact was stored; `artifacts.<name>` now holds its id.
    ArtifactCreated {
        /// Artifact id.
        artifact_id: String,
        /// Type name.
        #[serde(rename = "type")]
        type_name: String,
        /// Type version.
        type_version: i64,
        /// Name.
        name: String,
    },
    /// A `workflow_call` started its child run (the envelope's token waits for it).
    SubworkflowStarted {
        /// The child run.
        child_run_id: String,
        /// The workflow called.
        workflow: String,
        /// The version resolved at call time.
        version: i64,
        /// Attempt of the calling node.
        attempt: u32,
    },
    /// The child run completed.
    SubworkflowCompleted {
        /// The child run.
        child_run_id: String,
        /// Its final output (the node's `result`).
        output: Value,
    },
    /// The child run failed or was cancelled.
    SubworkflowFailed {
        /// The child run.
        child_run_id: String,
        /// Its error.
        error: ErrorInfo,
    },
    /// A snapshot covers events up to `seq`.
    SnapshotCreated {
        /// Highest seq covered.
        seq: u64,
    },
    /// The events before this one were copied from another run (a fork,
    /// docs/lifecycles.md); from here the run goes on live on `version`.
    /// Tokens that were running, waiting for a retry or for a child run
    /// start again at attempt 1; the copied history's usage is not this
    /// run's (its totals start at zero).
    WorkflowForked {
        /// The run the history was copied from.
        from_run_id: String,
        /// The last seq copied, in the source run's numbering.
        from_seq: u64,
        /// The version this run continues on.
        version: i64,
    },
}

impl EventBody {
    /// The event kind as stored and shown.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::WorkflowStarted { .. } => "workflow_started",
            EventBody::WorkflowCompleted { .. } => "workflow_completed",
            EventBody::WorkflowFailed { .. } => "workflow_failed",
            EventBody::WorkflowCancelled { .. } => "workflow_cancelled",
            EventBody::NodeStarted { .. } => "node_started",
            EventBody::NodeCompleted { .. } => "node_completed",
            EventBody::NodeFailed { .. } => "node_failed",
            EventBody::LlmRequest(_) => "llm_request",
            EventBody::NodeRetrying { .. } => "node_retrying",
            EventBody::TransitionTaken { .. } => "transition_taken",
            EventBody::TokenSpawned { .. } => "token_spawned",
            EventBody::TokenWaiting { .. } => "token_waiting",
            EventBody::FanInCompleted { .. } => "fan_in_completed",
            EventBody::TokenMerged { .. } => "token_merged",
            EventBody::TokenCancelled { .. } => "token_cancelled",
            EventBody::ContextUpdated { .. } => "context_updated",
            EventBody::ArtifactCreated { .. } => "artifact_created",
            EventBody::SubworkflowStarted { .. } => "subworkflow_started",
            EventBody::SubworkflowCompleted { .. } => "subworkflow_completed",
            EventBody::SubworkflowFailed { .. } => "subworkflow_failed",
            EventBody::SnapshotCreated { .. } => "snapshot_created",
            EventBody::WorkflowForked { .. } => "workflow_forked",
        }
    }

    /// Every event kind the API may show, in the order of docs/lifecycles.md:
    /// what an events filter (`?kind=`) accepts. Kept beside [`EventBody::kind`];
    /// a test checks that every variant is listed.
    pub const KINDS: &'static [&'static str] = &[
        "workflow_started",
        "workflow_completed",
        "workflow_failed",
        "workflow_cancelled",
        "node_started",
        "node_completed",
        "node_failed",
        "node_retrying",
        "llm_request",
        "transition_taken",
        "token_spawned",
        "token_waiting",
        "fan_in_completed",
        "token_merged",
        "token_cancelled",
        "context_updated",
        "artifact_created",
        "subworkflow_started",
        "subworkflow_completed",
        "subworkflow_failed",
        "snapshot_created",
        "workflow_forked",
    ];

    /// The payload as JSON (the stored `payload` column).
    pub fn payload(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut m)) => m.remove("payload").unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// The payload as JSON text, without building a JSON tree.
    pub fn payload_json(&self) -> String {
        // Adjacently tagged: `{"kind":"<kind>","payload":<payload>}`.
        let full = serde_json::to_string(self).unwrap_or_default();
        let prefix = format!("{{\"kind\":\"{}\",\"payload\":", self.kind());
        match full.strip_prefix(&prefix).and_then(|s| s.strip_suffix('}')) {
            Some(p) => p.to_string(),
            None => self.payload().to_string(),
        }
    }

    /// Rebuilds a body from a stored kind and payload.
    pub fn from_parts(kind: &str, payload: Value) -> Result<EventBody, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "kind": kind, "payload": payload }))
    }

    /// True for the four events that end a run.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            EventBody::WorkflowCompleted { .. }
                | EventBody::WorkflowFailed { .. }
                | EventBody::WorkflowCancelled { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_is_listed() {
        // serde names every variant when it meets an unknown one.
        let err = EventBody::from_parts("no_such_kind", json!({})).unwrap_err();
        let message = err.to_string();
        let variants: Vec<&str> = message.split('`').skip(3).step_by(2).collect();
        assert!(variants.contains(&"node_started"), "{message}");
        for v in &variants {
            assert!(EventBody::KINDS.contains(v), "`{v}` is missing from KINDS");
        }
        // `llm_request` is listed ahead of its variant, which is being added.
        for k in EventBody::KINDS {
            assert!(
                variants.contains(k) || *k == "llm_request",
                "`{k}` is no event kind"
            );
        }
    }

    #[test]
    fn payload_text_equals_the_payload_tree() {
        let bodies = [
            EventBody::WorkflowStarted {
                input: json!({ "q": "a \"quoted\" }" }),
                artifacts: None,
            },
            EventBody::TransitionTaken {
                transition: None,
                from: "a".into(),
                to: "b".into(),
                tokens: vec!["tk_2".into()],
            },
            EventBody::ContextUpdated {
                writes: vec![Write {
                    path: "state.x".into(),
                    value: Some(json!([1, { "k": null }])),
                }],
            },
            EventBody::NodeFailed {
                attempt: 2,
                error: ErrorInfo::new(ErrorCode::Timeout, "slow}"),
                usage: Some(Usage {
                    input_tokens: 3,
                    ..Usage::default()
                }),
            },
            EventBody::LlmRequest(Box::new(LlmExchange {
                attempt: 1,
                provider: "openai".into(),
                model: "m".into(),
                request_id: Some("req_1".into()),
                sent_at: 5,
                wait_ms: 0,
                duration_ms: 9,
                messages: json!([{ "role": "user", "content": "hi }" }]),
                response: Some(json!("not json")),
                error: Some(RequestError {
                    code: ErrorCode::BadResponse,
                    message: "m".into(),
                }),
                usage: None,
            })),
            EventBody::NodeStarted {
                attempt: 1,
                action: "a".into(),
                input_digest: String::new(),
                input: Some(json!({ "x": 1 })),
            },
        ];
        for b in bodies {
            let text: Value = serde_json::from_str(&b.payload_json()).unwrap();
            assert_eq!(text, b.payload(), "{}", b.kind());
            assert_eq!(EventBody::from_parts(b.kind(), text).unwrap(), b);
        }
    }
}
