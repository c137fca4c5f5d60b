//! The rows a coordinator's step writes: the run row, the events (large
//! results out of line), the token rows the events touched and the rows of
//! the sibling sets they created or fired.

use crate::clock::IdGen;
use crate::events::{RESULT_REF, out_of_line_fields};
use braid_core::event::{Event, EventBody};
use braid_core::graph::Graph;
use braid_core::state::{self, RunState};
use braid_store::{NewEvent, RunRecord, RunStatus, SiblingSetRecord, TokenRecord, WriteOp};
use std::collections::{BTreeMap, BTreeSet};

/// Larger fields (a result, an input, an LLM exchange's messages or
/// response) go to the results table.
const INLINE_FIELD_BYTES: usize = 64 * 1024;

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
            // Only a payload this large can hold a field this large.
            if payload.len() > INLINE_FIELD_BYTES {
                payload = move_large_fields(e, payload, run_id, ids, &mut ops);
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

/// The payload with each of its fields larger than 64 KiB replaced by
/// `{ "$result": id }`, the field itself pushed as a [`WriteOp::PutResult`].
fn move_large_fields(
    e: &Event,
    payload: String,
    run_id: &str,
    ids: &dyn IdGen,
    ops: &mut Vec<WriteOp>,
) -> String {
    let fields = out_of_line_fields(e.body.kind());
    let Ok(mut tree) = serde_json::from_str::<serde_json::Value>(&payload) else {
        return payload;
    };
    let attempt = tree["attempt"].as_i64().unwrap_or(0);
    let mut moved = false;
    for field in fields {
        let Some(value) = tree.get_mut(*field) else {
            continue;
        };
        let text = value.to_string();
        if text.len() <= INLINE_FIELD_BYTES {
            continue;
        }
        let id = ids.id("res");
        ops.push(WriteOp::PutResult {
            id: id.clone(),
            run_id: run_id.to_string(),
            token_id: e.token_id.clone().unwrap_or_default(),
            attempt,
            payload: text,
        });
        *value = serde_json::json!({ RESULT_REF: id });
        moved = true;
    }
    if moved { tree.to_string() } else { payload }
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
    // Each token's first and last event of this batch: the store keeps the
    // first ever written and the latest (the inspector's range of seqs).
    let mut bounds: BTreeMap<usize, (i64, i64)> = BTreeMap::new();
    for e in events {
        if let Some(i) = e.token_id.as_deref().and_then(state::token_index) {
            let seq = e.seq as i64;
            let b = bounds.entry(i).or_insert((seq, seq));
            b.1 = seq;
        }
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
                first_seq: bounds.get(&i).map(|b| b.0),
                last_seq: bounds.get(&i).map(|b| b.1),
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
