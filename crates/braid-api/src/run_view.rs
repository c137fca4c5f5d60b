//! What the run view reads: the per-node summary it colours the graph with
//! (`GET /api/runs/{id}/nodes`) and the sibling sets it groups branches by
//! (`GET /api/runs/{id}/sibling-sets`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::RunUsage;

/// `GET /api/runs/{id}/nodes`: one item per node of the run's graph, in the
/// definition's node order (not paged: a graph has few nodes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeList {
    /// The nodes.
    pub items: Vec<NodeSummary>,
}

/// The visits of one node of a run (docs/api.md, "Node summaries").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeSummary {
    /// Node ref.
    pub node: String,
    /// Visits (tokens) by token status; every status is present, 0 when
    /// no visit has it.
    pub visits: BTreeMap<String, u64>,
    /// Attempts over all visits.
    pub attempts: u64,
    /// Attempts beyond the first of each visit.
    pub retries: u64,
    /// Visits that ended `failed`.
    pub failures: u64,
    /// Durations of the visits that have both a start and an end.
    pub duration_ms: NodeDurations,
    /// LLM usage of the visits' attempts, failed ones included.
    pub usage: RunUsage,
}

/// Durations (`ended_at - started_at`, the latest attempt of each visit)
/// over a node's visits that have both times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeDurations {
    /// Their sum (0 when there is none).
    pub sum: u64,
    /// Their median; the mean of the two middle values for an even count;
    /// `null` when there is none.
    #[schema(required = true)]
    pub median: Option<f64>,
    /// Their maximum; `null` when there is none.
    #[schema(required = true)]
    pub max: Option<u64>,
}

/// One sibling set of a run (the tokens one fan-out created).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SiblingSet {
    /// `ss_<n>` (the same id as a member token's `sibling_set`).
    pub id: String,
    /// The node whose visit spawned the set.
    pub fan_out_node: String,
    /// That visit's token.
    pub origin_token_id: String,
    /// The node that joins the set; `null` when no node joins its fan-out node.
    #[schema(required = true)]
    pub join_node: Option<String>,
    /// Number of members (branches).
    pub total: u64,
    /// Members by the status of each branch's latest token (a branch that
    /// moved through several nodes counts once); every status is present.
    pub counts: BTreeMap<String, u64>,
    /// The join fired.
    pub fired: bool,
    /// The set whose branch spawned this one; `null` for a set spawned in
    /// the root scope.
    #[schema(required = true)]
    pub parent_sibling_set: Option<String>,
}
