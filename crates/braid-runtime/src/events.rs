//! A run's events as readers see them: published live once durable, read
//! back from the store page by page, and folded into the run's state
//! (recovery, and a coordinator reloading after a failed commit).

use crate::error::Error;
use braid_core::event::{Event, EventBody};
use braid_core::graph::Graph;
use braid_core::state::RunState;
use braid_store::{NewEvent, Store};
use serde_json::Value;
use std::sync::Arc;

/// A batch of events of one run, as published to live subscribers.
#[derive(Debug, Clone)]
pub struct Published {
    /// Run id.
    pub run_id: String,
    /// Events in seq order.
    pub events: Arc<Vec<Event>>,
    /// The same events as the store holds them (payload text, large fields
    /// as references), so a live stream forwards them without reading them
    /// back; empty when nobody was subscribed as the batch was written.
    pub stored: Arc<Vec<NewEvent>>,
}

impl Published {
    /// No events, only news that `run_id` committed some elsewhere (another
    /// process of a cluster): a live stream reads them from the store.
    pub(crate) fn wake(run_id: String) -> Published {
        Published {
            run_id,
            events: Arc::new(Vec::new()),
            stored: Arc::new(Vec::new()),
        }
    }
}

/// The key of a stored event's reference to an out-of-line result.
pub(crate) const RESULT_REF: &str = "$result";

/// The payload fields of an event kind that are stored out of line (in the
/// results table, the event keeping `{ "$result": id }`) when larger than
/// 64 KiB.
pub(crate) fn out_of_line_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "node_started" => &["input"],
        "node_completed" => &["result"],
        "llm_request" => &["messages", "response"],
        _ => &[],
    }
}

/// Puts the fields of a stored payload that were moved out of line back in
/// place, so readers see the event as it was emitted.
pub async fn restore_payload(
    store: &dyn Store,
    run_id: &str,
    seq: i64,
    kind: &str,
    payload: &mut Value,
) -> Result<(), Error> {
    for field in out_of_line_fields(kind) {
        if let Some(id) = payload[*field][RESULT_REF].as_str() {
            let id = id.to_string();
            payload[*field] = store.result(&id).await?.ok_or_else(|| {
                braid_store::Error::Backend(format!(
                    "event {run_id}#{seq}: {field} {id} is missing"
                ))
            })?;
        }
    }
    Ok(())
}

/// One page (up to 1,000) of a run's stored events after `after`, as core
/// events, with fields stored out of line put back in place.
pub async fn stored_events(
    store: &dyn Store,
    run_id: &str,
    after: i64,
) -> Result<Vec<Event>, Error> {
    let page = store.events(run_id, after, 1_000).await?;
    let mut out = Vec::with_capacity(page.len());
    for e in page {
        let mut payload = e.payload;
        restore_payload(store, run_id, e.seq, &e.kind, &mut payload).await?;
        let body = EventBody::from_parts(&e.kind, payload).map_err(|err| {
            braid_store::Error::Backend(format!("event {}#{}: {err}", e.run_id, e.seq))
        })?;
        out.push(Event {
            seq: e.seq as u64,
            ts: e.ts,
            token_id: e.token_id,
            node: e.node,
            body,
        });
    }
    Ok(out)
}

/// Every stored event of a run after `after`, page by page (fork copies a
/// history; compare lines two up).
pub async fn stored_events_from(
    store: &dyn Store,
    run_id: &str,
    mut after: i64,
) -> Result<Vec<Event>, Error> {
    let mut all = Vec::new();
    loop {
        let page = stored_events(store, run_id, after).await?;
        let Some(last) = page.last() else {
            return Ok(all);
        };
        after = last.seq as i64;
        all.extend(page);
    }
}

/// A run's state as the database has it: the latest snapshot, then the
/// events after it.
pub(crate) async fn load_state(
    store: &dyn Store,
    run_id: &str,
    graph: &Graph,
) -> Result<RunState, Error> {
    let (mut state, mut after) = match store.latest_snapshot(run_id).await? {
        Some((seq, snapshot)) => match serde_json::from_value::<RunState>(snapshot) {
            Ok(s) => (s, seq),
            Err(e) => {
                tracing::warn!(run = %run_id, error = %e, "unreadable snapshot; replaying every event");
                (RunState::new(run_id), 0)
            }
        },
        None => (RunState::new(run_id), 0),
    };
    loop {
        let page = stored_events(store, run_id, after).await?;
        let Some(last) = page.last() else { break };
        after = last.seq as i64;
        state = state.replay(graph, &page);
    }
    Ok(state)
}
