//! Fork and compare (docs/api.md): `POST /api/runs/{id}/fork` and
//! `GET /api/runs/{a}/compare/{b}`.

use crate::RunUsage;
use braid_types::TokenStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Where a forked run's history came from (`forked_from` of a run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ForkedFrom {
    /// The source run.
    pub run_id: String,
    /// The last event copied, in the source run's numbering.
    pub seq: i64,
}

/// Where to fork: before the first visit of a node starts, or after the
/// last step boundary at or before an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ForkFrom {
    /// `{ "node": "<ref>" }`.
    Node {
        /// A node ref the source run started.
        node: String,
    },
    /// `{ "seq": N }`.
    Seq {
        /// An event seq of the source run (1 … its last).
        seq: u64,
    },
}

/// Objects of the target version to replace, each by the one with the same
/// `ref` (the shapes of a bundle's lists).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForkChanges {
    /// Prompt specs. (Read as JSON first, so that a changed object of the
    /// wrong shape is reported like a save, with its path.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<braid_core::definition::PromptSpec>)]
    pub prompt_specs: Vec<Value>,
    /// Model profiles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<braid_core::definition::ModelProfile>)]
    pub model_profiles: Vec<Value>,
    /// Actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<braid_core::definition::ActionDef>)]
    pub actions: Vec<Value>,
}

/// Body of `POST /api/runs/{id}/fork`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    /// The fork point.
    pub from: ForkFrom,
    /// Objects replaced in the target version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<ForkChanges>,
    /// The target version (default: the source run's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// Answer of `POST /api/runs/{id}/fork` (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ForkCreated {
    /// The new run.
    pub run_id: String,
    /// The version it goes on with (an experiment when the changes made a
    /// new one).
    pub version: i64,
}

/// What lines up the visits of two runs: the node, the branch index path
/// (outermost fan-out first; empty outside any fan-out) and the order of
/// the visits with that node and path (0 first; loops visit again).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct VisitKey {
    /// Node ref.
    pub node: String,
    /// Branch indices, outermost first.
    pub branch: Vec<u64>,
    /// 0 for the first visit with this node and branch, 1 for the next, …
    pub occurrence: u64,
}

/// One run's side of a visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VisitSide {
    /// The token of the visit.
    pub token_id: String,
    /// Its status.
    pub status: TokenStatus,
    /// The action's result (`null` when the visit produced none).
    #[schema(value_type = Option<Object>, required = true)]
    pub output: Value,
    /// Duration of the attempt that produced the result, else from start
    /// to end (0 when it never ran).
    pub duration_ms: u64,
    /// This run's attempts of the visit (a forked run's copied visits cost
    /// it nothing).
    pub usage: RunUsage,
}

/// One visit of `GET /api/runs/{a}/compare/{b}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ComparedVisit {
    /// Node ref.
    pub node: String,
    /// Branch indices, outermost first.
    pub branch: Vec<u64>,
    /// Order among the visits with this node and branch.
    pub occurrence: u64,
    /// Run `a`'s visit; `null` when it has none with this key.
    #[schema(required = true)]
    pub a: Option<VisitSide>,
    /// Run `b`'s visit; `null` when it has none with this key.
    #[schema(required = true)]
    pub b: Option<VisitSide>,
    /// Both runs made this visit with the same status and output.
    pub equal: bool,
}

/// One run's totals in a comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SideTotals {
    /// From the run's start to its end (or to now while it runs).
    pub duration_ms: u64,
    /// Requests this run sent.
    pub llm_calls: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cost in USD.
    pub cost_usd: f64,
}

/// Both runs' totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ComparisonTotals {
    /// Run `a`.
    pub a: SideTotals,
    /// Run `b`.
    pub b: SideTotals,
}

/// Answer of `GET /api/runs/{a}/compare/{b}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunComparison {
    /// Every visit of either run, in `a`'s visit order, then those only
    /// `b` made in `b`'s order.
    pub visits: Vec<ComparedVisit>,
    /// Both runs' totals.
    pub totals: ComparisonTotals,
    /// The first visit (in `visits` order) that is not equal; `null` when
    /// every visit is.
    #[schema(required = true)]
    pub first_difference: Option<VisitKey>,
}
