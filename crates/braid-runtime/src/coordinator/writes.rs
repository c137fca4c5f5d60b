//! The rows a coordinator's step writes: the run row, the events (large
//! results out of line), the token rows the events touched and the rows of
//! the sibling sets they created or fired.

use crate::clock::IdGen;
use crate::events::RESULT_REF;
use braid_core::event::{Event, EventBody};
use braid_core::graph::Graph;
use braid_core::state::{self, RunState};
use braid_store::{NewEvent, RunRecord, RunStatus, SiblingSetRecord, TokenRecord, WriteOp};
use std::collections::BTreeSet;

/// Larger `node_completed` payloads keep their result in the results table.
const INLINE_RESULT_BYTES: usize = 64 * 1024;

/// Brings the run row up to date with the state.
pub(super) fn update_run_row(record: &mut RunRecord, st: &RunState) {
    // A run row exists from the start request on: not started is running.
    record.status = st.status.unwrap_or(RunStatus::Running);
    record.context = st.context.to_json();
    record.error = st
        .error
        .as_ref()
        .map(|e| serde_json::to_value(e).unwrap_or_default());
    record.usage = serde_json::to_value(st.usage).unwrap_or_default();
    record.last_seq = st.seq as i64;
    record.started_at = st.started_at;
    record.ended_at = st.ended_at;
}

/// The events as rows, preceded by the out-of-line results they refer to
/// (nothing for no events).
pub(super) fn event_rows(events: &[Event], run_id: &str, ids: &dyn IdGen) -> Vec<WriteOp> {
    if events.is_empty() {
        return Vec::new();
    }
    let mut ops = Vec::new();
    let rows = events
        .iter()
        .map(|e| {
            let mut payload = e.body.payload_json();
            // A large result moves to the results table; the event keeps a reference.
            if payload.len() > INLINE_RESULT_BYTES
                && let EventBody::NodeCompleted {
                    attempt,
                    duration_ms,
                    result,
                    usage,
                } = &e.body
            {
                let id = ids.id("res");
                ops.push(WriteOp::PutResult {
                    id: id.clone(),
                    run_id: run_id.to_string(),
                    token_id: e.token_id.clone().unwrap_or_default(),
                    attempt: i64::from(*attempt),
                    payload: result.to_string(),
                });
                payload = EventBody::NodeCompleted {
                    attempt: *attempt,
                    duration_ms: *duration_ms,
                    result: serde_json::json!({ RESULT_REF: id }),
                    usage: usage.clone(),
                }
                .payload_json();
            }
            NewEvent {
                run_id: run_id.to_string(),
                seq: e.seq as i64,
                kind: e.body.kind().into(),
                ts: e.ts,
                token_id: e.token_id.clone(),
                node: e.node.clone(),
                payload,
            }
        })
        .collect();
    ops.push(WriteOp::AppendEvents(rows));
    ops
}

/// The rows of the tokens these events touched (`None` for none).
pub(super) fn token_rows(
    events: &[Event],
    st: &RunState,
    graph: &Graph,
    run_id: &str,
) -> Option<WriteOp> {
    let touched: BTreeSet<usize> = events
        .iter()
        .filter_map(|e| e.token_id.as_deref().and_then(state::token_index))
        .chain(
            events
                .iter()
                .filter_map(|e| match &e.body {
                    EventBody::TransitionTaken { tokens, .. } => Some(
                        tokens
                            .iter()
                            .filter_map(|t| state::token_index(t))
                            .collect::<Vec<_>>(),
                    ),
                    _ => None,
                })
                .flatten(),
        )
        .collect();
    if touched.is_empty() {
        return None;
    }
    Some(WriteOp::UpsertTokens(
        touched
            .into_iter()
            .filter_map(|i| st.tokens.get(i).map(|t| (i, t)))
            .map(|(i, t)| TokenRecord {
                run_id: run_id.to_string(),
                seq: i as i64 + 1,
                id: t.id.clone(),
                node: graph.nodes[t.node].ref_.clone(),
                status: t.status.as_str().to_string(),
                parent_token_id: t.parent.clone(),
                sibling_set: t.scope.map(|sc| st.sets[st.scopes[sc].set].id.clone()),
                branch_index: t.scope.map(|sc| st.scopes[sc].index as i64),
                attempts: i64::from(t.attempt),
                created_at: t.created_at,
                started_at: t.started_at,
                ended_at: t.ended_at,
                usage: t.usage,
            })
            .collect(),
    ))
}

/// The rows of the sibling sets these events created (`token_spawned`) or
/// fired (`fan_in_completed`), from the state after the step (`None` for
/// none). A set whose members span several steps is written again by each:
/// the upsert keeps one row.
pub(super) fn sibling_set_rows(
    events: &[Event],
    st: &RunState,
    graph: &Graph,
    run_id: &str,
) -> Option<WriteOp> {
    let touched: BTreeSet<usize> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::TokenSpawned { sibling_set, .. }
            | EventBody::FanInCompleted { sibling_set, .. } => state::set_index(sibling_set),
            _ => None,
        })
        .collect();
    if touched.is_empty() {
        return None;
    }
    Some(WriteOp::UpsertSiblingSets(
        touched
            .into_iter()
            .filter_map(|i| st.sets.get(i).map(|s| (i, s)))
            .map(|(i, s)| {
                let origin = st.tokens.get(s.origin);
                SiblingSetRecord {
                    run_id: run_id.to_string(),
                    seq: i as i64 + 1,
                    id: s.id.clone(),
                    fan_out_node: graph.nodes[s.fan_out_node].ref_.clone(),
                    origin_token_id: origin.map(|t| t.id.clone()).unwrap_or_default(),
                    join_node: graph.joined_by[s.fan_out_node].map(|j| graph.nodes[j].ref_.clone()),
                    total: s.total as i64,
                    fired: s.fired,
                    parent_sibling_set: origin
                        .and_then(|t| t.scope)
                        .map(|sc| st.sets[st.scopes[sc].set].id.clone()),
                }
            })
            .collect(),
    ))
}
