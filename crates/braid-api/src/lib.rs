//! The HTTP API's data model (docs/api.md): request and response bodies shared
//! by the server (`braid-server`), the CLI and the generated OpenAPI
//! document.
//!
//! These types are the wire contract. They hold no behaviour: the server
//! converts store records into them, the CLI deserializes them. Times are
//! RFC 3339 strings in UTC with millisecond precision
//! (`2026-11-02T09:30:00.125Z`).
//!
//! Workflow bundles and event payloads are braid-core's own serde types
//! ([`Bundle`], [`EventBody`]), re-exported here with their OpenAPI schemas
//! (braid-core's `openapi` feature), so the document describes exactly what
//! the server parses and writes.

mod run_view;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

mod fork;
mod inspect;
pub use fork::{
    ComparedVisit, ComparisonTotals, ForkChanges, ForkCreated, ForkFrom, ForkRequest, ForkedFrom,
    RunComparison, SideTotals, VisitKey, VisitSide,
};
pub use inspect::{AttemptDetail, BranchInfo, LlmCallDetail, TokenDetail};
pub use run_view::{NodeDurations, NodeList, NodeSummary, SiblingSet};

/// The stable error codes (`error.code` of an answer, `code` of a run's
/// error) and the run statuses: the one definition every crate shares.
pub use braid_types::{ErrorCode, RunStatus, TokenStatus};

/// The definition format (docs/definitions.md): the body of
/// `POST /api/workflow-defs` and of `GET /api/workflow-defs/{workflow}`.
pub use braid_core::definition::Bundle;

/// Event kinds and their payloads (docs/lifecycles.md): `{ kind, payload }`.
pub use braid_core::event::EventBody;

/// Every non-2xx answer: `{ "error": { code, message, details? } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// One API error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code (docs/errors.md, "API errors").
    pub code: ErrorCode,
    /// What is wrong (naming the field or object) and what to do.
    pub message: String,
    /// Structured details: `{ errors: [...] }` for `INVALID_DEFINITION`
    /// (`DefinitionProblem`) and `INPUT_SCHEMA` (`InputProblem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ErrorDetails>)]
    pub details: Option<Value>,
}

/// `error.details` of the codes that carry some.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ErrorDetails {
    /// `INVALID_DEFINITION`: every problem of the bundle.
    InvalidDefinition(DefinitionProblems),
    /// `INPUT_SCHEMA`: every violation of the run's `input_schema`.
    InputSchema(InputProblems),
}

/// `details` of an `INVALID_DEFINITION` error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DefinitionProblems {
    /// Every problem found, not only the first.
    pub errors: Vec<DefinitionProblem>,
}

/// `details` of an `INPUT_SCHEMA` error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InputProblems {
    /// Every violation found, not only the first.
    pub errors: Vec<InputProblem>,
}

/// One validation problem of a workflow definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DefinitionProblem {
    /// `workflow`, `node`, `transition`, `action`, `prompt_spec`, `model_profile` or `artifact_type`.
    pub kind: String,
    /// The object's ref (`from->to` for a transition without a ref).
    #[serde(rename = "ref")]
    pub ref_: String,
    /// The field at fault.
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// One violation of a run's `input_schema`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InputProblem {
    /// JSON Pointer into `input` (`""` for the input itself).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// A page of a list: pass `next_cursor` back as `cursor` for the next page;
/// `null` when there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Opaque cursor of the next page, `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Answer to saving a bundle (`POST /api/workflow-defs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SavedDefinition {
    /// `wf_…`: the workflow across all its versions.
    pub id: String,
    /// The workflow's name.
    pub name: String,
    /// The version the content is saved as (new or unchanged).
    pub version: i64,
    /// `true` (status 201) when a new version was created, `false` (status
    /// 200) when the content equals the latest version.
    pub created: bool,
    /// Problems that do not prevent saving (e.g. a branch that can end without a join).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<DefinitionProblem>,
}

/// One workflow in `GET /api/workflow-defs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowSummary {
    /// `wf_…`.
    pub id: String,
    /// Name, unique in its project.
    pub name: String,
    /// Latest version number.
    pub latest_version: i64,
    /// When the workflow (its first version) was created.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// Run limits (docs/definitions.md); a field given here replaces the definition's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock budget of the whole run (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Maximum number of tokens the run may create (default 1,000,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_run_tokens: Option<u64>,
    /// Budget in USD of the LLM calls of the run and its child runs
    /// (default none; zero or more). A call that finds it spent fails with
    /// `BUDGET_EXCEEDED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// Budget of LLM tokens (input + output) of the run and its child runs
    /// (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_llm_tokens: Option<u64>,
}

/// Body of `POST /api/workflow-defs/{workflow}/runs`. Unknown fields are
/// rejected (a misspelt `inputs` would otherwise run with `{}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// The run input: user data, a JSON object validated against the
    /// definition's `input_schema`. Default `{}`.
    #[serde(default = "empty_object")]
    #[schema(value_type = std::collections::BTreeMap<String, Value>)]
    pub input: Value,
    /// The version to run; the latest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Overrides of the definition's limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

impl Default for StartRun {
    fn default() -> Self {
        StartRun {
            input: empty_object(),
            version: None,
            limits: None,
        }
    }
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// A run was started (status 201), or is still running when `?wait=true`
/// timed out (status 202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunStarted {
    /// `run_…`.
    pub run_id: String,
}

/// The 201 answer of `POST /api/workflow-defs/{workflow}/runs`: `{ run_id }`,
/// or with `?wait=true` the run once it has ended. (Untagged: a `Run` has
/// `id`, a `RunStarted` has `run_id`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StartRunAnswer {
    /// The ended run (`?wait=true`).
    Ended(Box<Run>),
    /// The started run's id.
    Started(RunStarted),
}

/// Body of `POST /api/runs/{id}/cancel` (optional; an empty body is fine).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRun {
    /// Recorded in the `workflow_cancelled` event (default `cancelled through the API`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The workflow version a run executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowRef {
    /// `wf_…`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Version number.
    pub version: i64,
}

/// A run's data (docs/definitions.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunContext {
    /// The validated input (immutable): user data, shaped by the
    /// definition's `input_schema`.
    #[schema(value_type = std::collections::BTreeMap<String, Value>)]
    pub input: Value,
    /// Mutable state: user data the nodes write.
    #[schema(value_type = std::collections::BTreeMap<String, Value>)]
    pub state: Value,
    /// The final output (complete once the run has completed): user data,
    /// shaped by the definition's `output_schema`.
    #[schema(value_type = std::collections::BTreeMap<String, Value>)]
    pub output: Value,
    /// Artifact name → artifact id (`art_…`).
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub artifacts: Value,
}

/// A user-visible run or node error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunError {
    /// Stable code (`NO_MATCHING_TRANSITION`, `RATE_LIMITED`, `RUN_TIMEOUT`, …).
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
    /// The underlying error (e.g. a child run's), nested down to the root cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub cause: Option<Box<RunError>>,
}

/// LLM usage totals: every attempt that sent a request counts, failed ones
/// included (a failed call is paid for too).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct RunUsage {
    /// Requests sent to providers, failed ones included.
    pub llm_calls: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cost from the model profiles' prices, in USD.
    pub cost_usd: f64,
}

/// One run (`GET /api/runs/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    /// `run_…`.
    pub id: String,
    /// Project id.
    pub project_id: String,
    /// The workflow version it executes.
    pub workflow: WorkflowRef,
    /// Status.
    pub status: RunStatus,
    /// `{ input, state, output, artifacts }` as of the last durable step.
    pub context: RunContext,
    /// Why the run failed; `null` unless `status` is `failed`.
    #[schema(required = true)]
    pub error: Option<RunError>,
    /// This run's own attempts.
    pub usage: RunUsage,
    /// The run and all its descendants (child runs, their children, …).
    pub usage_total: RunUsage,
    /// Effective limits.
    pub limits: Limits,
    /// Parent run, for a child run.
    #[schema(required = true)]
    pub parent_run_id: Option<String>,
    /// The parent's `workflow_call` token, for a child run.
    #[schema(required = true)]
    pub parent_token_id: Option<String>,
    /// For a forked run, the run and the last seq its history was copied from.
    #[serde(default)]
    #[schema(required = true)]
    pub forked_from: Option<ForkedFrom>,
    /// Child run ids.
    pub children: Vec<String>,
    /// Seq of the latest event (pass as `after` to read only newer events).
    pub last_seq: i64,
    /// Creation time.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Start time.
    #[schema(format = DateTime, required = true)]
    pub started_at: Option<String>,
    /// End time; `null` while running.
    #[schema(format = DateTime, required = true)]
    pub ended_at: Option<String>,
}

/// One run in `GET /api/runs` (no context: read the run for it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunSummary {
    /// `run_…`.
    pub id: String,
    /// Project id.
    pub project_id: String,
    /// The workflow version it executes.
    pub workflow: WorkflowRef,
    /// Status.
    pub status: RunStatus,
    /// Why the run failed, when it did.
    #[schema(required = true)]
    pub error: Option<RunError>,
    /// LLM usage totals.
    pub usage: RunUsage,
    /// Parent run, for a child run.
    #[schema(required = true)]
    pub parent_run_id: Option<String>,
    /// For a forked run, the run and the last seq its history was copied from.
    #[serde(default)]
    #[schema(required = true)]
    pub forked_from: Option<ForkedFrom>,
    /// Creation time.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Start time.
    #[schema(format = DateTime, required = true)]
    pub started_at: Option<String>,
    /// End time.
    #[schema(format = DateTime, required = true)]
    pub ended_at: Option<String>,
}

/// One token (one node visit) of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Token {
    /// Token id (unique within the run).
    pub id: String,
    /// Node ref.
    pub node: String,
    /// `pending`, `running`, `retry_wait`, `waiting_join`, `waiting_child`,
    /// `completed`, `failed`, `cancelled` or `merged`.
    #[schema(value_type = braid_types::TokenStatus)]
    pub status: String,
    /// The token whose visit created it.
    #[schema(required = true)]
    pub parent_token_id: Option<String>,
    /// Sibling set id, for fan-out members.
    #[schema(required = true)]
    pub sibling_set: Option<String>,
    /// Index in its sibling set.
    #[schema(required = true)]
    pub branch_index: Option<i64>,
    /// Attempts made so far.
    pub attempts: i64,
    /// Creation time.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Start of the latest attempt.
    #[schema(format = DateTime, required = true)]
    pub started_at: Option<String>,
    /// End time.
    #[schema(format = DateTime, required = true)]
    pub ended_at: Option<String>,
}

/// One event (docs/lifecycles.md). `kind` and `payload` are kept as plain
/// JSON here (the server copies them from the store without decoding); the
/// OpenAPI schema documents them per kind, as [`EventBody`]'s variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Run id.
    pub run_id: String,
    /// 1, 2, 3 … per run, without gaps.
    pub seq: i64,
    /// `workflow_started`, `node_completed`, … (docs/lifecycles.md).
    pub kind: String,
    /// When it happened.
    pub ts: String,
    /// The token concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// The node concerned (its ref).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Kind-specific payload.
    pub payload: Value,
}

impl utoipa::PartialSchema for Event {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        EventSchema::schema()
    }
}

impl ToSchema for Event {
    fn name() -> std::borrow::Cow<'static, str> {
        "Event".into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        EventSchema::schemas(schemas);
    }
}

// The documented shape of an `Event`: `kind` and `payload` as one of
// `EventBody`'s variants (a derive, so a new variant is documented without
// touching this). Only its schema is used; tests check real events against it.
/// One event of a run's log (docs/lifecycles.md): the envelope (`run_id`,
/// `seq`, `ts`, `token_id`, `node`) plus `kind` and the `payload` of that
/// kind.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
struct EventSchema {
    /// Run id.
    run_id: String,
    /// 1, 2, 3 … per run, without gaps.
    seq: i64,
    /// When it happened.
    #[schema(format = DateTime)]
    ts: String,
    /// The token concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_id: Option<String>,
    /// The node concerned (its ref).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    /// `kind` (`workflow_started`, `node_completed`, …) and its `payload`.
    #[serde(flatten)]
    body: EventBody,
}

/// A typed, persisted output of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Artifact {
    /// `art_…`.
    pub id: String,
    /// Project id.
    pub project_id: String,
    /// Artifact type name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Artifact type version the content was validated against.
    pub type_version: i64,
    /// Name under `context.artifacts`.
    pub name: String,
    /// The content: user data, valid against the artifact type's schema.
    #[schema(value_type = std::collections::BTreeMap<String, Value>)]
    pub content: Value,
    /// The run that wrote it.
    pub created_by_workflow_run_id: String,
    /// The node that wrote it.
    pub created_by_node: String,
    /// Creation time.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers.
    pub status: String,
}

/// One text frame of `GET /api/runs/{id}/live` (tagged by `type`).
///
/// `events` frames carry every event after the requested seq, in `seq` order,
/// without gap or duplicate, at most 1,000 events and 1 MiB of JSON each,
/// never empty; one `end` frame follows the run's final event, then a normal
/// close (1000).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveFrame {
    /// The next events of the run.
    Events {
        /// Envelopes exactly as `GET /api/runs/{id}/events` lists them.
        events: Vec<Event>,
    },
    /// Every event of the ended run has been sent.
    End {
        /// The run's final status.
        status: RunStatus,
        /// The seq of the run's final event.
        last_seq: i64,
    },
}

/// One message of `GET /api/live` (tagged by `type`): a run started, or its
/// status or usage changed (at most one per run per 250 ms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunChange {
    /// The run as it is now.
    Run {
        /// What a runs list shows of it.
        run: LiveRun,
    },
}

/// A run as a live list shows it (`RunChange`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LiveRun {
    /// `run_…`.
    pub id: String,
    /// The workflow version it executes.
    pub workflow: WorkflowRef,
    /// Status.
    pub status: RunStatus,
    /// Creation time.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// End time; `null` while running.
    #[schema(format = DateTime, required = true)]
    pub ended_at: Option<String>,
    /// This run's own LLM usage.
    pub usage: RunUsage,
    /// Parent run, for a child run.
    #[schema(required = true)]
    pub parent_run_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn start_run_defaults_input_and_rejects_unknown_fields() {
        let r: StartRun = serde_json::from_value(json!({})).unwrap();
        assert_eq!(r.input, json!({}));
        let r: StartRun = serde_json::from_value(json!({ "input": null })).unwrap();
        assert_eq!(
            r.input,
            Value::Null,
            "an explicit null is kept, so the server can reject it"
        );
        let e = serde_json::from_value::<StartRun>(json!({ "inputs": {} })).unwrap_err();
        assert!(e.to_string().contains("unknown field `inputs`"), "{e}");
    }

    #[test]
    fn run_error_nests_causes_and_status_round_trips() {
        let e: RunError = serde_json::from_value(json!({
            "code": "SUBWORKFLOW_FAILED", "message": "child failed", "node": "call",
            "cause": { "code": "TIMEOUT", "message": "slow", "retryable": true }
        }))
        .unwrap();
        assert_eq!(e.cause.as_ref().unwrap().code, "TIMEOUT");
        assert!(!e.retryable);
        assert_eq!(e.code, ErrorCode::SubworkflowFailed);
    }
}
