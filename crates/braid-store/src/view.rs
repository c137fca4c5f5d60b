//! What the run view reads from the store: per-node aggregates, sibling
//! sets, and the filters of the event and token listings. Every aggregate is
//! computed by the backend's query (GROUP BY over the `tokens` rows), never
//! by reading a run's rows into the caller.

use serde::{Deserialize, Serialize};

use crate::UsageTotals;

/// The visits of one node of a run's graph ([`RunStore::node_stats`](crate::RunStore::node_stats)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStats {
    /// Node ref.
    pub node: String,
    /// Visits (token rows) by token status; statuses without a visit are absent.
    pub visits: Vec<(String, u64)>,
    /// Attempts over all visits (the sum of the tokens' `attempts`).
    pub attempts: u64,
    /// Attempts beyond the first of each visit: `sum(max(attempts - 1, 0))`.
    pub retries: u64,
    /// Visits that ended `failed`.
    pub failures: u64,
    /// `ended_at - started_at` summed over the visits that have both.
    pub duration_sum_ms: u64,
    /// Their median (the mean of the two middle values for an even count);
    /// `None` when no visit has both times.
    pub duration_median_ms: Option<f64>,
    /// Their maximum; `None` when no visit has both times.
    pub duration_max_ms: Option<u64>,
    /// The ledger summed over the visits.
    pub usage: UsageTotals,
}

/// A sibling-set row: written in the commit of the events that create it
/// (its first `token_spawned`, or the `fan_in_completed` of an empty set)
/// and fire it ([`WriteOp::UpsertSiblingSets`](crate::WriteOp::UpsertSiblingSets)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiblingSetRecord {
    /// Run.
    pub run_id: String,
    /// The set's number in its run (`ss_7` is 7): its key with `run_id`, and
    /// the listing order.
    pub seq: i64,
    /// `ss_<n>`.
    pub id: String,
    /// The node whose visit spawned the set.
    pub fan_out_node: String,
    /// That visit's token.
    pub origin_token_id: String,
    /// The node that joins sets of `fan_out_node`; `None` when none does.
    pub join_node: Option<String>,
    /// Number of members (branches).
    pub total: i64,
    /// The join fired.
    pub fired: bool,
    /// The set the origin token belongs to (`None`: the root scope).
    pub parent_sibling_set: Option<String>,
}

/// A sibling set as listed: the row plus its members by token status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiblingSetSummary {
    /// The stored row.
    pub set: SiblingSetRecord,
    /// Members (branches) by the status of each branch's latest token;
    /// statuses without a member are absent.
    pub counts: Vec<(String, u64)>,
}

/// Which sibling sets to list, by the set their origin token belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ParentFilter {
    /// Every set of the run.
    #[default]
    Any,
    /// Sets spawned in the root scope (no parent set).
    Root,
    /// Sets spawned inside a branch of this set (`ss_<n>`).
    Set(String),
}

/// Filters of [`RunStore::filtered_events`](crate::RunStore::filtered_events);
/// every given one must hold (they are combined with AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only these kinds (empty: any kind).
    pub kinds: Vec<String>,
    /// Only events of this node ref.
    pub node: Option<String>,
    /// Only [`EventFilter::FAILURE_KINDS`].
    pub failed: bool,
}

impl EventFilter {
    /// The events that record a failure: what `failed: true` selects.
    pub const FAILURE_KINDS: &'static [&'static str] = &[
        "node_failed",
        "node_retrying",
        "workflow_failed",
        "subworkflow_failed",
    ];

    /// The kinds to select: `None` for any kind, else the kinds that pass
    /// both `kinds` and `failed` (possibly none).
    pub fn selected_kinds(&self) -> Option<Vec<String>> {
        let failure = |k: &str| Self::FAILURE_KINDS.contains(&k);
        match (self.kinds.is_empty(), self.failed) {
            (true, false) => None,
            (true, true) => Some(Self::FAILURE_KINDS.iter().map(|k| k.to_string()).collect()),
            (false, false) => Some(self.kinds.clone()),
            (false, true) => Some(self.kinds.iter().filter(|k| failure(k)).cloned().collect()),
        }
    }
}

/// Filters of [`RunStore::filtered_tokens`](crate::RunStore::filtered_tokens);
/// every given one must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFilter {
    /// Node ref.
    pub node: Option<String>,
    /// Token status (`running`, `failed`, …).
    pub status: Option<String>,
    /// Sibling set id: its members' tokens.
    pub sibling_set: Option<String>,
}

/// Largest page of [`RunStore::filtered_events`](crate::RunStore::filtered_events):
/// a run view reads a long log in few round trips.
pub const MAX_EVENTS_PAGE: u32 = 10_000;
