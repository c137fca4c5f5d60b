//! The node inspector's body (`GET /api/runs/{id}/tokens/{token_id}`): one
//! visit of one node with every attempt, folded from that token's events.

use crate::{RunError, RunUsage};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// One node visit as the inspector shows it (docs/api.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenDetail {
    /// Token id.
    pub id: String,
    /// Node ref.
    pub node: String,
    /// Token status (`running`, `completed`, `failed`, …).
    pub status: String,
    /// The token whose visit created it.
    #[schema(required = true)]
    pub parent_token_id: Option<String>,
    /// Sibling set id, for fan-out members.
    #[schema(required = true)]
    pub sibling_set: Option<String>,
    /// Its place in the sibling set, for fan-out members.
    #[schema(required = true)]
    pub branch: Option<BranchInfo>,
    /// What the action received after `input_mapping` (`null` when it has none).
    #[schema(value_type = Option<Object>, required = true)]
    pub input: Option<Value>,
    /// The action's output, once it completed.
    #[schema(value_type = Option<Object>, required = true)]
    pub result: Option<Value>,
    /// Context paths this visit wrote, in order.
    pub writes: Vec<String>,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptDetail>,
    /// The child run of a `workflow_call` (the latest attempt's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_run_id: Option<String>,
    /// What this visit's attempts cost, failed ones included.
    pub usage: RunUsage,
    /// Seq of the token's first event.
    #[schema(required = true)]
    pub first_seq: Option<i64>,
    /// Seq of the token's latest event.
    #[schema(required = true)]
    pub last_seq: Option<i64>,
}

/// A fan-out member's place in its sibling set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BranchInfo {
    /// `_branch.index`, 0-based.
    pub index: u64,
    /// Members of the set.
    pub total: u64,
    /// `_branch.item` of a `foreach` member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub item: Option<Value>,
}

/// One attempt of the visit (timings: docs/api.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AttemptDetail {
    /// 1-based.
    pub attempt: u32,
    /// When the core queued it.
    #[schema(format = DateTime, required = true)]
    pub queued_at: Option<String>,
    /// When an executor began it.
    #[schema(format = DateTime, required = true)]
    pub started_at: Option<String>,
    /// When its outcome was recorded.
    #[schema(format = DateTime, required = true)]
    pub ended_at: Option<String>,
    /// How long it ran.
    #[schema(required = true)]
    pub duration_ms: Option<u64>,
    /// Time spent waiting for a provider slot before sending.
    #[schema(required = true)]
    pub wait_ms: Option<u64>,
    /// `running`, `completed`, `retrying`, `failed` or `cancelled`.
    pub outcome: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    /// The LLM request it sent, for an `llm_call`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmCallDetail>,
}

/// One LLM request and its answer (from `llm_request`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LlmCallDetail {
    /// `openai`, `anthropic`, `openai_compatible` or `scripted`.
    pub provider: String,
    /// The model asked for.
    pub model: String,
    /// The provider's request id.
    #[schema(required = true)]
    pub request_id: Option<String>,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cost from the model profile's prices, in USD.
    pub cost_usd: f64,
    /// The rendered messages sent, `[{ role, content }]`.
    #[schema(value_type = Vec<braid_core::event::ChatMessage>)]
    pub messages: Value,
    /// The raw response body (JSON, or its text); `null` when none arrived.
    #[schema(value_type = Option<Object>, required = true)]
    pub response: Option<Value>,
}
