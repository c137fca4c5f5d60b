//! Lining up the node visits of two runs (`GET /api/runs/{a}/compare/{b}`).
//!
//! A visit's key is its node, its branch index path and its occurrence. The
//! path is read from the events: the first token has none, a transition's
//! tokens inherit their parent's, a sibling-set member appends its index
//! to its origin's, and a join's continuation takes its origin's (the scope
//! the set was spawned in). The occurrence counts the earlier tokens (in
//! creation order) with the same node and path.

use crate::error::ApiError;
use braid_api::{
    ComparedVisit, ComparisonTotals, RunComparison, RunUsage, SideTotals, TokenStatus, VisitKey,
    VisitSide,
};
use braid_core::event::EventBody;
use braid_store::{RunRecord, Store, TokenRecord};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// One run's visits, keyed, in token creation order.
pub struct Side {
    visits: Vec<(VisitKey, VisitSide)>,
    totals: SideTotals,
}

/// Reads a run's tokens and events and keys its visits.
pub async fn load(store: &dyn Store, run: &RunRecord) -> Result<Side, ApiError> {
    let mut tokens: Vec<TokenRecord> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.tokens(&run.id, cursor.as_deref(), 1000).await?;
        tokens.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut paths: HashMap<String, Vec<u64>> = HashMap::new();
    let mut results: HashMap<String, (Value, u64)> = HashMap::new();
    for e in braid_runtime::stored_events_from(store, &run.id, 0).await? {
        let token = e.token_id.clone().unwrap_or_default();
        let path_of =
            |paths: &HashMap<String, Vec<u64>>, t: &str| paths.get(t).cloned().unwrap_or_default();
        match e.body {
            EventBody::WorkflowStarted { .. } => {
                paths.insert(token, Vec::new());
            }
            EventBody::TransitionTaken {
                tokens: created, ..
            } => {
                let p = path_of(&paths, &token);
                for t in created {
                    paths.insert(t, p.clone());
                }
            }
            EventBody::TokenSpawned {
                index,
                parent_token,
                ..
            } => {
                let mut p = path_of(&paths, &parent_token);
                p.push(index);
                paths.insert(token, p);
            }
            EventBody::FanInCompleted {
                continuation,
                origin_token,
                ..
            } => {
                let p = path_of(&paths, &origin_token);
                paths.insert(continuation, p);
            }
            EventBody::NodeCompleted {
                result,
                duration_ms,
                ..
            } => {
                results.insert(token, (result, duration_ms));
            }
            _ => {}
        }
    }
    let mut seen: BTreeMap<(String, Vec<u64>), u64> = BTreeMap::new();
    let visits = tokens
        .into_iter()
        .map(|t| {
            let branch = paths.remove(&t.id).unwrap_or_default();
            let n = seen.entry((t.node.clone(), branch.clone())).or_insert(0);
            let key = VisitKey {
                node: t.node.clone(),
                branch,
                occurrence: *n,
            };
            *n += 1;
            let (output, duration_ms) = results.remove(&t.id).unwrap_or_else(|| {
                let ran = match (t.started_at, t.ended_at) {
                    (Some(s), Some(e)) => (e - s).max(0) as u64,
                    _ => 0,
                };
                (Value::Null, ran)
            });
            let side = VisitSide {
                status: t.status.parse().unwrap_or(TokenStatus::Pending),
                token_id: t.id,
                output,
                duration_ms,
                usage: crate::convert::usage_totals(&t.usage),
            };
            (key, side)
        })
        .collect();
    let usage: RunUsage = serde_json::from_value(run.usage.clone()).unwrap_or_default();
    let duration_ms = match (run.started_at, run.ended_at) {
        (Some(s), Some(e)) => (e - s).max(0) as u64,
        _ => 0,
    };
    Ok(Side {
        visits,
        totals: SideTotals {
            duration_ms,
            llm_calls: usage.llm_calls,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cost_usd: usage.cost_usd,
        },
    })
}

/// Both runs' visits side by side: `a`'s in its order, then the ones only
/// `b` made, in `b`'s order.
pub fn compare(a: &Side, b: &Side) -> RunComparison {
    let b_index: HashMap<&VisitKey, &VisitSide> = b.visits.iter().map(|(k, s)| (k, s)).collect();
    let mut visits = Vec::with_capacity(a.visits.len().max(b.visits.len()));
    let mut matched = std::collections::HashSet::new();
    for (key, side) in &a.visits {
        let other = b_index.get(key).copied();
        if other.is_some() {
            matched.insert(key);
        }
        visits.push(visit(key, Some(side), other));
    }
    for (key, side) in &b.visits {
        if !matched.contains(key) {
            visits.push(visit(key, None, Some(side)));
        }
    }
    let first_difference = visits.iter().find(|v| !v.equal).map(|v| VisitKey {
        node: v.node.clone(),
        branch: v.branch.clone(),
        occurrence: v.occurrence,
    });
    RunComparison {
        visits,
        totals: ComparisonTotals {
            a: a.totals.clone(),
            b: b.totals.clone(),
        },
        first_difference,
    }
}

fn visit(key: &VisitKey, a: Option<&VisitSide>, b: Option<&VisitSide>) -> ComparedVisit {
    let equal =
        matches!((a, b), (Some(x), Some(y)) if x.status == y.status && x.output == y.output);
    ComparedVisit {
        node: key.node.clone(),
        branch: key.branch.clone(),
        occurrence: key.occurrence,
        a: a.cloned(),
        b: b.cloned(),
        equal,
    }
}
