//! Recovery: a run that was live when its process stopped is rebuilt from
//! the database (snapshot + replay) and adopted by a new coordinator, with
//! the child starts it still owed and its run timeout. At start-up on a
//! database served by one process, every live run; in a cluster, the run
//! trees adopted from processes that are gone (`cluster.rs`).

use crate::budgets::Seed;
use crate::clock::deadline_after;
use crate::coordinator;
use crate::error::Error;
use crate::events::load_state;
use crate::shared::Inner;
use braid_core::definition::Limits;
use braid_core::graph::Graph;
use braid_core::state::RunState;
use braid_store::RunRecord;
use std::sync::Arc;

/// Adopts every run that was live when the process stopped.
pub(crate) async fn recover(inner: &Arc<Inner>) -> Result<(), Error> {
    let live = inner.store.live_runs().await?;
    adopt_runs(inner, live).await
}

/// Rebuilds and adopts `records` (parents before children).
pub(crate) async fn adopt_runs(inner: &Arc<Inner>, records: Vec<RunRecord>) -> Result<(), Error> {
    for record in records {
        let graph = match inner.definitions.graph(&record.def_id).await {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(run = %record.id, error = %e, "cannot recover run: its definition does not compile");
                continue;
            }
        };
        let mut state = load_state(inner.store.as_ref(), &record.id, &graph).await?;
        let run_id = record.id.clone();
        let limits: Limits = serde_json::from_value(record.limits.clone()).unwrap_or_default();
        let started = record.started_at.unwrap_or(record.created_at);
        let children =
            braid_core::machine::pending_children(&mut state, &graph, inner.clock.now_ms());
        let seed = seed(inner, &record, &limits, &state, &graph).await?;
        inner
            .budgets
            .open(&run_id, record.parent_run_id.as_deref(), &limits, seed);
        let parent = record.clone();
        let every = inner.snapshot_every(&record.project_id).await;
        coordinator::spawn_adopted(inner, record, graph, state, every);
        for call in children {
            inner.start_child(parent.clone(), call, None);
        }
        if let Some(ms) = limits.timeout_ms {
            inner.arm_run_timeout(&run_id, deadline_after(started, ms));
        }
    }
    Ok(())
}

/// What an adopted run has spent so far, as the store recorded it: its
/// tree's usage (read only when the run has a budget: a run without one
/// has no ancestor with one either, since a child's limits are at most
/// what is left of its parent's), and its live visits of nodes with a
/// budget of their own.
async fn seed(
    inner: &Arc<Inner>,
    record: &RunRecord,
    limits: &Limits,
    state: &RunState,
    graph: &Graph,
) -> Result<Seed, Error> {
    let mut seed = Seed::default();
    if limits.max_cost_usd.is_some() || limits.max_llm_tokens.is_some() {
        let total = inner.store.usage_total(&record.id).await?;
        seed.cost_usd = total.cost_usd;
        seed.llm_tokens = total.input_tokens + total.output_tokens;
    }
    seed.visits = state
        .tokens
        .iter()
        .filter(|t| t.status.is_live() && t.usage.cost_usd > 0.0)
        .filter(|t| {
            graph
                .nodes
                .get(t.node)
                .is_some_and(|n| n.max_cost_usd.is_some())
        })
        .map(|t| (t.id.clone(), t.usage.cost_usd))
        .collect();
    Ok(seed)
}
