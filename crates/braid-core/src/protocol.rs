//! The protocol between the run state machine and the runtime: the
//! [`Input`]s the runtime feeds it, the [`Outcome`] of an attempt, and the
//! [`Step`] it returns — events to persist and [`Command`]s to carry out.

use crate::definition::Limits;
use crate::event::{ErrorInfo, Event, LlmExchange, Millis, Usage};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Something that happened to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// Start the run with this input.
    Start {
        /// The run's input (validated here against `input_schema`).
        input: Value,
        /// Effective limits.
        limits: Limits,
        /// Artifacts inherited from a parent (`inherit_artifacts: true`).
        artifacts: Option<Value>,
    },
    /// The runtime created the child run of a `workflow_call` attempt.
    ChildStarted {
        /// The calling token.
        token: String,
        /// Its attempt.
        attempt: u32,
        /// The child run (as given in [`Command::StartChild`]).
        child_run_id: String,
        /// The workflow called.
        workflow: String,
        /// The version resolved at call time.
        version: i64,
    },
    /// A child run ended.
    ChildFinished {
        /// The calling token.
        token: String,
        /// The child run.
        child_run_id: String,
        /// How it ended.
        outcome: ChildOutcome,
    },
    /// An executor started an attempt (reported for retries).
    TaskStarted {
        /// Token id.
        token: String,
        /// Attempt.
        attempt: u32,
    },
    /// An executor finished an attempt.
    TaskResult {
        /// Token id.
        token: String,
        /// Attempt.
        attempt: u32,
        /// What happened.
        outcome: Outcome,
    },
    /// Cancel the run.
    Cancel {
        /// Why.
        reason: String,
    },
    /// The run's `timeout_ms` elapsed.
    RunTimeout,
    /// Start a forked run (docs/lifecycles.md): `history` is the source
    /// run's events up to the fork point, renumbered from 1
    /// ([`crate::fork`]); they are taken as they are, then
    /// `workflow_forked` follows and the run goes on live from there.
    Fork {
        /// The copied events, seq 1, 2, 3 …
        history: Vec<Event>,
        /// The source run.
        from_run_id: String,
        /// The last source seq copied.
        from_seq: u64,
        /// The version the run continues on.
        version: i64,
    },
    /// Go on with the tokens a step left pending when it reached its event
    /// budget ([`Step::more`], [`crate::machine::apply_bounded`]).
    Continue,
}

/// Result of one attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// The action succeeded.
    Success {
        /// The action's output.
        result: Value,
        /// LLM usage.
        usage: Option<Usage>,
        /// Wall time.
        duration_ms: u64,
        /// The LLM request the attempt sent (`llm_request`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        llm: Option<Box<LlmExchange>>,
    },
    /// The attempt failed.
    Failure {
        /// The error (code, message, retryable).
        error: ErrorInfo,
        /// A provider's `Retry-After`.
        retry_after_ms: Option<u64>,
        /// Wall time.
        duration_ms: u64,
        /// What the attempt cost when it sent a request (a failed call is
        /// paid for too: a 429 counts as a request, a mismatching answer
        /// also costs its tokens).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
        /// The LLM request the attempt sent, when it sent one (`llm_request`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        llm: Option<Box<LlmExchange>>,
    },
}

/// How a child run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChildOutcome {
    /// With this output.
    Completed(Value),
    /// With this error.
    Failed(ErrorInfo),
    /// Cancelled, for this reason.
    Cancelled(String),
}

/// A child run to start for a `workflow_call` attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildCall {
    /// The calling token.
    pub token: String,
    /// Its attempt.
    pub attempt: u32,
    /// The child's id, derived from (run, token, attempt) so that starting it
    /// again after a crash is idempotent.
    pub child_run_id: String,
    /// Workflow name (resolved from context when dynamic).
    pub workflow: String,
    /// Version; `None` = the latest at call time.
    pub version: Option<i64>,
    /// The child's input (the node's `input_mapping`).
    pub input: Value,
    /// Artifacts passed down (`inherit_artifacts: true`).
    pub artifacts: Option<Value>,
    /// Bound on the child run (the node's `timeout_ms`).
    pub timeout_ms: Option<u64>,
    /// Not before (a retry's delay).
    pub not_before: Millis,
}

/// What the runtime must do after persisting the events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Queue an attempt of a non-pure action.
    Dispatch(Dispatch),
    /// Abort in-flight attempts of these tokens; their late results are ignored.
    CancelTasks(Vec<String>),
    /// Start a child run.
    StartChild(ChildCall),
    /// Cancel these child runs.
    CancelRuns(Vec<String>),
    /// The run ended: release it.
    RunEnded,
}

/// One attempt to queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispatch {
    /// Token id.
    pub token: String,
    /// Node ref.
    pub node: String,
    /// 1-based attempt.
    pub attempt: u32,
    /// Not claimable before.
    pub not_before: Millis,
    /// Per-attempt timeout.
    pub timeout_ms: Option<u64>,
    /// The node's budget in USD for this visit's attempts
    /// (`execution.max_cost_usd`), checked by the executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// The resolved action invocation (see [`TaskPayload`]).
    pub payload: TaskPayload,
}

/// Everything an executor needs: resolved by the core from the context, so
/// executors never read run state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskPayload {
    /// An LLM call.
    LlmCall {
        /// Model profile ref (resolved against the run's definition).
        model: String,
        /// Rendered system prompt.
        system: Option<String>,
        /// Rendered user prompt.
        prompt: String,
        /// Output schema.
        produces: Option<Value>,
        /// Branch index, for the scripted provider.
        branch_index: Option<u64>,
    },
    /// An artifact write (content already validated).
    WriteArtifact {
        /// Type name.
        type_name: String,
        /// Type version.
        type_version: i64,
        /// Name.
        name: String,
        /// Content.
        content: Value,
    },
}

/// The output of one [`crate::machine::apply`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Step {
    /// Events to persist, in order (already applied to the state).
    pub events: Vec<Event>,
    /// Commands to run once the events are durable.
    pub commands: Vec<Command>,
    /// The step stopped at its event budget with tokens still pending:
    /// apply [`Input::Continue`] to go on. (Until then the pending tokens
    /// are in the state like any other, so a recovered run goes on too:
    /// see [`crate::machine::has_pending`].)
    pub more: bool,
}
