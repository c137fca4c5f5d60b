//! The definition format (docs/definitions.md): a *bundle* holds one workflow plus the
//! actions, prompt specs, model profiles and artifact types it uses.
//!
//! These types are the serde model of the files users write. They carry no
//! ids: objects refer to each other by `ref`. Reading them from text lives in
//! `parse` (entry points [`Bundle::parse`], [`Bundle::from_value`]) and
//! `shape` (shape problems); validation and compilation into an executable
//! [`crate::graph::Graph`] live in [`crate::graph`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

mod parse;
mod shape;

pub use parse::{ParseError, Syntax, parse_document};

/// A workflow bundle as written in a JSON or YAML file.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// The workflow's name, unique in its project.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema the run input must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// JSON Schema the final output must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// The node the first token visits.
    pub initial_node: String,
    /// The graph's nodes.
    pub nodes: Vec<Node>,
    /// The graph's edges.
    #[serde(default)]
    pub transitions: Vec<Transition>,
    /// `{ path in output: CEL }`, written into `output` at completion.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub output_mapping: BTreeMap<String, String>,
    /// Run limits (overridable per run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Actions nodes may name by ref.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionDef>,
    /// Prompt specs `llm_call` actions name by ref.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt_specs: Vec<PromptSpec>,
    /// Model profiles `llm_call` actions name by ref.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_profiles: Vec<ModelProfile>,
    /// Artifact types this bundle defines (project scoped once saved).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifact_types: Vec<ArtifactTypeDef>,
    /// The editor's node positions, `{ <node ref>: { x, y } }`. Kept with the
    /// version but not part of its content ([`Bundle::canonical`]): moving a
    /// node on the canvas is not a new version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub layout: BTreeMap<String, Position>,
}

/// Where the editor draws a node (the top-left corner, in canvas units).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Horizontal.
    pub x: f64,
    /// Vertical, growing downwards.
    pub y: f64,
}

/// Run limits. `None` fields fall back to the engine defaults.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock budget of the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Maximum number of tokens the run may create (default 1,000,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_run_tokens: Option<u64>,
    /// Budget in USD of the LLM calls of the run and its child runs
    /// (default none). A call that finds it spent fails with `BUDGET_EXCEEDED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// Budget of LLM tokens (input + output) of the run and its child runs
    /// (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_llm_tokens: Option<u64>,
}

impl Limits {
    /// Default for `max_run_tokens`.
    pub const DEFAULT_MAX_RUN_TOKENS: u64 = 1_000_000;

    /// `max_run_tokens`, or the default.
    pub fn max_tokens(&self) -> u64 {
        self.max_run_tokens.unwrap_or(Self::DEFAULT_MAX_RUN_TOKENS)
    }

    /// `self` with every field `other` sets replacing it.
    pub fn overridden_by(self, other: Option<Limits>) -> Limits {
        let Some(o) = other else { return self };
        Limits {
            timeout_ms: o.timeout_ms.or(self.timeout_ms),
            max_run_tokens: o.max_run_tokens.or(self.max_run_tokens),
            max_cost_usd: o.max_cost_usd.or(self.max_cost_usd),
            max_llm_tokens: o.max_llm_tokens.or(self.max_llm_tokens),
        }
    }

    /// What is wrong with these limits: (field, message) for each value
    /// out of range. The save of a definition and the start of a run with
    /// overrides report them the same way.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if let Some(problem) = usd_problem("limits.max_cost_usd", self.max_cost_usd) {
            problems.push(("limits.max_cost_usd", problem));
        }
        problems
    }
}

/// Why `value` (an amount in USD named `field`) is not a budget: negative
/// or not a finite number. `None` when it is one (or absent).
pub fn usd_problem(field: &str, value: Option<f64>) -> Option<String> {
    let v = value?;
    if !v.is_finite() {
        Some(format!("{field} must be a finite number of USD, not {v}"))
    } else if v < 0.0 {
        Some(format!("{field} must be zero or more, not {v}"))
    } else {
        None
    }
}

/// A node: one visit of it is one token.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Unique ref of the node in the bundle.
    #[serde(rename = "ref")]
    pub ref_: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The action: a ref into `actions`, or an inline definition.
    pub action: ActionRef,
    /// `{ field: CEL }`: the action's input.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub input_mapping: BTreeMap<String, String>,
    /// `{ target path: CEL over result and context }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub output_mapping: BTreeMap<String, String>,
    /// How many matching transitions are taken.
    #[serde(default, skip_serializing_if = "is_default")]
    pub fan_out: FanOut,
    /// Makes this node a join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_in: Option<FanIn>,
    /// The node whose fan-out this join closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joins: Option<String>,
    /// How arrived branch outputs are combined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<Merge>,
    /// What happens to members still live when the join fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_early_complete: Option<EarlyComplete>,
    /// Overrides of the action's timeout and retry policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<Execution>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A node's action: a ref or an inline action (whose ref becomes `<node>.action`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ActionRef {
    /// Ref of an action in the bundle.
    Ref(String),
    /// An inline action.
    Inline(Box<ActionBody>),
}

impl<'de> Deserialize<'de> for ActionRef {
    // Not `untagged`: a misspelt inline kind must say which kinds exist,
    // not that nothing matched.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(ActionRef::Ref(s)),
            v @ Value::Object(_) => {
                check_action_keys(&v, false).map_err(serde::de::Error::custom)?;
                ActionBody::deserialize(v)
                    .map(|b| ActionRef::Inline(Box::new(b)))
                    .map_err(serde::de::Error::custom)
            }
            other => Err(serde::de::Error::custom(format!(
                "expected an action ref (string) or an inline action (object), got {other}"
            ))),
        }
    }
}

/// Rejects unknown fields of an action object. (`#[serde(flatten)]` of the
/// kind enum rules out `deny_unknown_fields`, so a misplaced `timeout_ms`
/// would otherwise be silently dropped.)
fn check_action_keys(v: &Value, with_ref: bool) -> Result<(), String> {
    let Value::Object(m) = v else { return Ok(()) };
    let Some(kind_fields) = m
        .get("kind")
        .and_then(Value::as_str)
        .and_then(shape::kind_fields)
    else {
        return Ok(()); // serde names the unknown or missing kind
    };
    let kind_fields: Vec<&str> = kind_fields.iter().map(|f| f.name).collect();
    for key in m.keys() {
        let known = key == "kind"
            || key == "execution"
            || (with_ref && key == "ref")
            || kind_fields.contains(&key.as_str());
        if !known {
            let mut allowed: Vec<&str> = vec!["kind", "execution"];
            if with_ref {
                allowed.push("ref");
            }
            allowed.extend(&kind_fields);
            return Err(format!(
                "unknown field `{key}` in a {} action, expected one of {}",
                m["kind"].as_str().unwrap_or_default(),
                allowed
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

/// `first_match` (default) or `all`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FanOut {
    /// Take the first matching transition.
    #[default]
    FirstMatch,
    /// Take every matching transition of the first group with a match.
    All,
}

/// Join wait mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FanIn {
    /// Every member arrived or ended.
    All,
    /// The first arrival.
    Any,
    /// `{ m_of_n: M }`: M arrivals.
    #[serde(untagged)]
    MOfN {
        /// How many arrivals fire the join.
        m_of_n: u64,
    },
}

// By hand: the derive nests an untagged variant's fields one level too deep.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for FanIn {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let mode = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["all", "any"]))
            .description(Some(
                "`all`: every member arrived or ended; `any`: the first arrival.",
            ));
        let m_of_n = ObjectBuilder::new()
            .property(
                "m_of_n",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Int64,
                    )))
                    .minimum(Some(0))
                    .description(Some("How many arrivals fire the join.")),
            )
            .required("m_of_n")
            .description(Some("`{ m_of_n: M }`: M arrivals."));
        OneOfBuilder::new()
            .item(mode)
            .item(m_of_n)
            .description(Some("Join wait mode."))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for FanIn {
    fn name() -> std::borrow::Cow<'static, str> {
        "FanIn".into()
    }
}

/// `merge: { source, target, strategy }`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Merge {
    /// Path inside each member's `_branch.output` (`*` = all of it).
    pub source: String,
    /// Path in the continuation's scope that the result replaces.
    pub target: String,
    /// How values are combined.
    pub strategy: MergeStrategy,
}

/// Merge strategies of docs/definitions.md.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeStrategy {
    /// A list in branch-index order, lists flattened one level.
    Append,
    /// A list in branch-index order, one element per member.
    Collect,
    /// Shallow object merge in index order, higher index wins.
    MergeObject,
    /// `{ "<index>": value }`.
    KeyedByBranch,
    /// The value of the latest arrival.
    LastWins,
}

/// `on_early_complete` modes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EarlyComplete {
    /// Abort remaining members.
    #[default]
    Cancel,
    /// Let them run; ignore their results.
    Abandon,
    /// Merge late arrivals while the continuation's scope is live.
    AllowLateMerge,
}

/// An edge of the graph.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// Optional ref (required with `loop`).
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub ref_: Option<String>,
    /// Source node ref.
    pub from: String,
    /// Target node ref.
    pub to: String,
    /// Lower first; default 0.
    #[serde(default, skip_serializing_if = "is_default")]
    pub priority: i64,
    /// Absent = true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// Which outcome the transition applies to.
    #[serde(default, skip_serializing_if = "is_default")]
    pub on: On,
    /// Tokens per taking: an integer or a CEL expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn_count: Option<SpawnCount>,
    /// One token per element of a collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreach: Option<Foreach>,
    /// Makes the transition a bounded loop edge.
    #[serde(rename = "loop", default, skip_serializing_if = "Option::is_none")]
    pub loop_: Option<Loop>,
}

/// `spawn_count`: an integer or CEL.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SpawnCount {
    /// A fixed count.
    Fixed(u64),
    /// A CEL expression giving an int.
    Expr(String),
}

/// `foreach: { collection, item_var }`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Foreach {
    /// CEL giving a list.
    pub collection: String,
    /// Name the item is bound to (besides `_branch.item`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_var: Option<String>,
}

/// `loop: { max_iterations }`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Loop {
    /// How many times the transition may be taken along a lineage.
    pub max_iterations: u64,
}

/// The outcome a transition applies to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum On {
    /// Node succeeded (default).
    #[default]
    Success,
    /// Node failed.
    Failure,
    /// Either.
    Always,
}

/// A condition: CEL text or a structured condition (compiled to CEL).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    /// CEL source.
    Cel(String),
    /// Editor-friendly form.
    Structured(Structured),
}

pub use braid_expr::Structured;

/// An action defined at bundle level.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionDef {
    /// Unique ref among actions.
    #[serde(rename = "ref")]
    pub ref_: String,
    /// The action's body.
    #[serde(flatten)]
    pub body: ActionBody,
}

impl<'de> Deserialize<'de> for ActionDef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "ref")]
            ref_: String,
            #[serde(flatten)]
            body: ActionBody,
        }
        let v = Value::deserialize(d)?;
        check_action_keys(&v, true).map_err(serde::de::Error::custom)?;
        let raw = Raw::deserialize(v).map_err(serde::de::Error::custom)?;
        Ok(ActionDef {
            ref_: raw.ref_,
            body: raw.body,
        })
    }
}

/// An action: kind-specific configuration plus execution policy.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionBody {
    /// What the action does.
    #[serde(flatten)]
    pub kind: ActionKind,
    /// Timeout and retry policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<Execution>,
}

/// The action kinds of docs/definitions.md.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionKind {
    /// Pure context writes.
    UpdateContext {
        /// Applied in order.
        #[serde(default)]
        updates: Vec<Update>,
    },
    /// A call to a model.
    LlmCall {
        /// Prompt spec ref.
        prompt: String,
        /// Model profile ref.
        model: String,
    },
    /// A typed, persisted output.
    WriteArtifact {
        /// Artifact type name (defined in the bundle or the project).
        artifact_type: String,
        /// Name in `artifacts.<name>`.
        name: String,
        /// `{ field: CEL }`.
        #[serde(default)]
        content_mapping: BTreeMap<String, String>,
    },
    /// A child run.
    WorkflowCall {
        /// Workflow name, or `{ from_context: CEL }`.
        workflow: FromContextOr<String>,
        /// Version number, `{ from_context }`, or latest at call time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<FromContextOr<u64>>,
        /// Give the child the parent's artifacts.
        #[serde(default, skip_serializing_if = "is_default")]
        inherit_artifacts: bool,
        /// `propagate` (default) or `catch`.
        #[serde(default, skip_serializing_if = "is_default")]
        on_failure: OnChildFailure,
    },
}

impl ActionKind {
    /// The kind's name as written in files.
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::UpdateContext { .. } => "update_context",
            ActionKind::LlmCall { .. } => "llm_call",
            ActionKind::WriteArtifact { .. } => "write_artifact",
            ActionKind::WorkflowCall { .. } => "workflow_call",
        }
    }
}

/// A static value or `{ from_context: CEL }`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FromContextOr<T> {
    /// A static value.
    Value(T),
    /// Computed at call time.
    FromContext {
        /// CEL over the context.
        from_context: String,
    },
}

/// What a `workflow_call` does when its child fails.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnChildFailure {
    /// The node fails with `SUBWORKFLOW_FAILED`.
    #[default]
    Propagate,
    /// The node succeeds with `result.error`.
    Catch,
}

/// One `update_context` write.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    /// Target path (`state.*`, `output.*`, `_branch.output.*`).
    pub path: String,
    /// CEL giving the value.
    pub expr: String,
}

/// `execution: { timeout_ms, retry_policy, max_cost_usd }`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    /// Per-attempt timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Retry policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<crate::retry::RetryPolicy>,
    /// Budget in USD of one visit's LLM attempts (retries included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
}

/// A prompt: Handlebars template and optional output schema.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptSpec {
    /// Unique ref among prompt specs.
    #[serde(rename = "ref")]
    pub ref_: String,
    /// System prompt (also a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The user message template.
    pub template: String,
    /// JSON Schema of the structured output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub produces: Option<Value>,
}

/// A provider + model + parameters + prices.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelProfile {
    /// Unique ref among model profiles.
    #[serde(rename = "ref")]
    pub ref_: String,
    /// `openai | anthropic | openai_compatible | scripted`.
    pub provider: String,
    /// The provider's model name.
    pub model: String,
    /// Overrides the provider's endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Environment variable holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// temperature, max_tokens, top_p, stop.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub parameters: Map<String, Value>,
    /// In-flight calls to this profile's endpoint (provider, base URL,
    /// model, key variable), shared by every run and version (default 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Requests and tokens per minute to this profile's endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// USD per 1k input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_1k_input_tokens: Option<f64>,
    /// USD per 1k output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_1k_output_tokens: Option<f64>,
    /// The `scripted` provider's responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<Value>,
}

/// A model profile's `rate_limit`: token buckets of capacity R refilled at
/// R/60 per second, shared by every profile of the same endpoint.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per minute (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Prompt and completion tokens per minute (at least 1): a call draws
    /// its prompt's estimated tokens, corrected by the reported usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u32>,
}

/// An artifact type: a named JSON Schema, versioned per project.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactTypeDef {
    /// The type's name (its ref).
    #[serde(rename = "ref")]
    pub ref_: String,
    /// JSON Schema of the content.
    pub schema: Value,
}

impl Bundle {
    /// The canonical content: JSON with sorted keys and defaults made
    /// explicit-or-omitted, so two bundles that differ only in key order or
    /// JSON/YAML form compare equal.
    /// The editor's `layout` is not content: it is left out.
    pub fn canonical(&self) -> String {
        // serde_json's Map is a BTreeMap (no `preserve_order`): keys sort.
        let mut v = serde_json::to_value(self).expect("bundle serializes");
        if let Some(fields) = v.as_object_mut() {
            fields.remove("layout");
        }
        serde_json::to_string(&v).expect("value serializes")
    }
}
