//! The live WebSockets: `/api/runs/{id}/live` (a run's events as they
//! commit) and `/api/live` (run-level changes, for lists).
//!
//! The store is the source of truth; the engine's broadcast of durable
//! events ([`Engine::subscribe`](braid_runtime::Engine::subscribe)) wakes a
//! connection and, once it is caught up, hands it the rows just committed.
//! A connection subscribes first, then reads the store after the last seq it
//! sent, so a slow client, a lagged broadcast or a reconnect is caught up
//! from the store with no gap and no duplicate; caught up, it forwards the
//! published rows that follow its last seq, and any gap sends it back to
//! the store. It holds at most one page plus a bounded queue (decision 59).

use crate::error::ApiError;
use crate::extract::{self, Path, Query};
use crate::{AppState, Draining, convert, project_id};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Extension, State};
use axum::response::Response;
use braid_api::{ErrorBody, LiveFrame, LiveRun, RunChange, RunStatus, RunUsage};
use braid_runtime::Published;
use braid_store::{NewEvent, RunRecord};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::AbortHandle;
use utoipa::IntoParams;

/// Most events in one `events` frame.
pub const MAX_FRAME_EVENTS: usize = 1_000;
/// Most bytes of JSON in one `events` frame (an event larger than this on
/// its own still goes out, alone: events are never split).
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// Events read from the store by the first read of a connection, before
/// their size is known; later reads aim at one frame's worth of bytes.
const FIRST_PAGE_EVENTS: u32 = 16;
/// `/api/live` sends at most one message per run per this period.
pub const RUN_CHANGE_PERIOD: Duration = Duration::from_millis(250);

/// `?after=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LiveQuery {
    /// Send the events with `seq` greater than this (default 0: all).
    #[param(value_type = Option<i64>)]
    after: Option<String>,
}

/// `?project=&workflow=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LiveRunsQuery {
    /// Project name or id (default `default`, as for `GET /api/runs`).
    project: Option<String>,
    /// Workflow id or name (default: every workflow of the project).
    workflow: Option<String>,
}

/// Follow a run's events over a WebSocket.
///
/// Every text frame is a `LiveFrame`: `events` frames carry every event
/// after `after` in `seq` order (stored backlog first, then events as they
/// commit), at most 1,000 events and 1 MiB each, never empty; after the
/// run's final event, one `end` frame and a normal close (1000). A server
/// shutting down closes with 1001 (going away): reconnect with the last seq
/// received as `after`.
#[utoipa::path(
    get, path = "/api/runs/{id}/live", tag = "runs", operation_id = "live_run_events",
    params(("id" = String, Path, description = "Run id (`run_…`)"), LiveQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol; each text frame is a `LiveFrame`", body = LiveFrame),
        (status = 400, description = "`MALFORMED_BODY`: `after` is not a non-negative integer, or the request is not a WebSocket upgrade", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: unknown run (answered before the upgrade)", body = ErrorBody),
    )
)]
pub async fn run_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LiveQuery>,
    draining: Option<Extension<Draining>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let after = extract::non_negative("after", q.after.as_deref())?.unwrap_or(0);
    // Subscribed before the first read of the store, so nothing committed
    // after that read can go unnoticed.
    let wakeup = Wakeup::for_run(state.engine.subscribe(), id.clone());
    if state.engine.store().get_run(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("run `{id}` does not exist")));
    }
    let upgrade = upgrade.map_err(not_websocket)?;
    let draining = draining.map(|Extension(d)| d);
    Ok(upgrade.on_upgrade(move |socket| async move {
        let mut stream = RunStream {
            socket,
            state,
            run_id: id,
            last_sent: after,
            page_events: FIRST_PAGE_EVENTS,
            wakeup,
            draining,
        };
        let outcome = stream.run().await;
        stream.finish(outcome).await;
    }))
}

/// Follow run-level changes over a WebSocket, for lists.
///
/// Every text frame is a `RunChange`: `{ "type": "run", "run": { … } }` when
/// a run of the project (and workflow, if given) starts and whenever its
/// status or usage changes, at most one per run per 250 ms.
#[utoipa::path(
    get, path = "/api/live", tag = "runs", operation_id = "live_runs",
    params(LiveRunsQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol; each text frame is a `RunChange`", body = RunChange),
        (status = 400, description = "`MALFORMED_BODY`: a bad query parameter, or the request is not a WebSocket upgrade", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: unknown project (answered before the upgrade)", body = ErrorBody),
    )
)]
pub async fn runs(
    State(state): State<AppState>,
    Query(q): Query<LiveRunsQuery>,
    draining: Option<Extension<Draining>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let dirty = DirtyRuns::follow(state.engine.subscribe());
    let project_id = project_id(&state, q.project.as_deref()).await?;
    let upgrade = upgrade.map_err(not_websocket)?;
    let draining = draining.map(|Extension(d)| d);
    let filter = ChangeFilter {
        project_id,
        workflow: q.workflow,
    };
    Ok(upgrade.on_upgrade(move |socket| async move {
        let mut changes = RunChanges {
            socket,
            state,
            filter,
            dirty,
            sent: HashMap::new(),
            draining,
        };
        let outcome = changes.run().await;
        finish_socket(&mut changes.socket, outcome).await;
    }))
}

fn not_websocket(r: WebSocketUpgradeRejection) -> ApiError {
    ApiError::malformed(format!(
        "this route is a WebSocket: connect with `Connection: upgrade` and `Upgrade: websocket` ({})",
        r.body_text()
    ))
}

/// Why a socket's loop stopped.
enum Outcome {
    /// Everything was sent: close normally.
    Done,
    /// The server is shutting down: close with 1001 (going away).
    Draining,
    /// The client closed or the connection broke: nothing more to send.
    Gone,
    /// Reading the store failed: close with 1011 (the cause is logged).
    Failed(braid_store::Error),
}

/// Sends the close frame `outcome` calls for.
/// An event's envelope as `GET /api/runs/{id}/events` writes it
/// ([`convert::event`]), all but the payload.
#[derive(Serialize)]
struct EnvelopeHead<'a> {
    run_id: &'a str,
    seq: i64,
    kind: &'a str,
    ts: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
}

/// The envelope's JSON with the payload spliced in as the store holds it:
/// forwarding an event costs no JSON tree (a W2 10,000 run streams 70,000).
fn envelope_json(e: &NewEvent) -> serde_json::Result<String> {
    let mut json = serde_json::to_string(&EnvelopeHead {
        run_id: &e.run_id,
        seq: e.seq,
        kind: &e.kind,
        ts: convert::time(e.ts),
        token_id: e.token_id.as_deref(),
        node: e.node.as_deref(),
    })?;
    json.pop(); // the closing brace
    json.push_str(",\"payload\":");
    json.push_str(&e.payload);
    json.push('}');
    Ok(json)
}

async fn finish_socket(socket: &mut WebSocket, outcome: Outcome) {
    let (code, reason) = match outcome {
        Outcome::Done => (close_code::NORMAL, "the run has ended"),
        Outcome::Draining => (close_code::AWAY, "the server is shutting down"),
        Outcome::Gone => return,
        Outcome::Failed(e) => {
            tracing::error!(error = %e, "a live WebSocket failed to read the store");
            (
                close_code::ERROR,
                "the server failed; reconnect with `after`",
            )
        }
    };
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// A wake-up for one run: a task drains the engine's broadcast as it comes
/// (so a slow connection never pins published batches in the channel),
/// keeps the run's batches as stored for the connection to forward without
/// reading them back (at most [`QUEUED_EVENTS`]; beyond that, or when the
/// broadcast lagged, it marks a gap and the connection reads the store) and
/// rings a [`Notify`], whose stored permit means no wake-up is lost between
/// a read of the store and the next wait. Dropping it stops the task.
struct Wakeup {
    notify: Arc<Notify>,
    queued: Arc<Mutex<Queued>>,
    forwarder: AbortHandle,
}

/// Most events a connection keeps queued from the broadcast.
const QUEUED_EVENTS: usize = 10_000;

/// Published batches of one run not yet forwarded.
#[derive(Default)]
struct Queued {
    batches: Vec<Arc<Vec<NewEvent>>>,
    events: usize,
    /// Some batch was not kept: only the store has every event.
    gap: bool,
}

impl Queued {
    fn push(&mut self, stored: Arc<Vec<NewEvent>>) {
        if self.gap || stored.is_empty() || self.events + stored.len() > QUEUED_EVENTS {
            self.gap = true;
            self.batches.clear();
            self.events = 0;
        } else {
            self.events += stored.len();
            self.batches.push(stored);
        }
    }
}

impl Wakeup {
    fn for_run(mut events: broadcast::Receiver<Published>, run_id: String) -> Wakeup {
        let notify = Arc::new(Notify::new());
        let queued = Arc::new(Mutex::new(Queued::default()));
        let (ring, keep) = (notify.clone(), queued.clone());
        let forwarder = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(p) if p.run_id == run_id => {
                        keep.lock().expect("queue lock").push(p.stored);
                        ring.notify_one();
                    }
                    Ok(_) => {}
                    // Missed batches may have been this run's: re-read.
                    Err(RecvError::Lagged(_)) => {
                        keep.lock().expect("queue lock").gap = true;
                        ring.notify_one();
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        })
        .abort_handle();
        Wakeup {
            notify,
            queued,
            forwarder,
        }
    }

    /// The batches queued since the last call (none and `gap` after a loss).
    fn take(&self) -> Queued {
        std::mem::take(&mut *self.queued.lock().expect("queue lock"))
    }
}

impl Drop for Wakeup {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

/// What forwarding the queued batches came to.
enum Forwarded {
    /// Every queued event is out: wait for the next batch.
    CaughtUp,
    /// Events are missing from the queue, or the run ended: read the store.
    ReadStore,
}

/// Kinds after which the run's row says it has ended.
const RUN_END_KINDS: [&str; 3] = [
    "workflow_completed",
    "workflow_failed",
    "workflow_cancelled",
];

/// What a connection may be woken by while it is caught up.
enum Woken {
    Events,
    Draining,
    Gone,
}

/// Waits for whichever comes first: `events`, the server draining, or the
/// client closing (a message other than close is ignored: the socket is
/// one-way).
async fn wait_for(
    socket: &mut WebSocket,
    events: impl Future<Output = ()>,
    draining: Option<&Draining>,
) -> Woken {
    let draining = async {
        match draining {
            Some(d) => d.clone().started().await,
            None => std::future::pending().await,
        }
    };
    let closed = async {
        loop {
            match socket.recv().await {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            }
        }
    };
    tokio::select! {
        () = events => Woken::Events,
        () = draining => Woken::Draining,
        () = closed => Woken::Gone,
    }
}

fn is_draining(draining: Option<&Draining>) -> bool {
    draining.is_some_and(|d| *d.0.borrow())
}

/// One `/api/runs/{id}/live` connection.
struct RunStream {
    socket: WebSocket,
    state: AppState,
    run_id: String,
    /// Seq of the last event sent (or the requested `after`).
    last_sent: i64,
    /// Events per read of the store: about [`MAX_FRAME_BYTES`] of the run's
    /// recent events, so a connection holds about one frame whatever the
    /// events' size.
    page_events: u32,
    wakeup: Wakeup,
    draining: Option<Draining>,
}

impl RunStream {
    /// Sends until the run's final event is out (or the client or server goes).
    async fn run(&mut self) -> Outcome {
        loop {
            match self.catch_up().await {
                Ok(()) => {}
                Err(outcome) => return outcome,
            }
            // Caught up: forward each committed batch as published, and go
            // back to the store only on a gap or at the run's end.
            // In a cluster another process may own the run: its commits
            // arrive as wake-ups, and the store is read again every
            // heartbeat in case one was lost.
            let poll = self.state.engine.cluster_poll();
            loop {
                let notify = self.wakeup.notify.clone();
                let woken = async {
                    match poll {
                        Some(p) => {
                            if tokio::time::timeout(p, notify.notified()).await.is_err() {
                                self.wakeup.queued.lock().expect("queue lock").gap = true;
                            }
                        }
                        None => notify.notified().await,
                    }
                };
                match wait_for(&mut self.socket, woken, self.draining.as_ref()).await {
                    Woken::Events => {}
                    Woken::Draining => return Outcome::Draining,
                    Woken::Gone => return Outcome::Gone,
                }
                match self.forward(self.wakeup.take()).await {
                    Ok(Forwarded::CaughtUp) => {}
                    Ok(Forwarded::ReadStore) => break,
                    Err(outcome) => return outcome,
                }
            }
        }
    }

    /// Reads the store from the last seq sent until the log ends, then
    /// returns (caught up) or, when the run has ended, sends `end` and
    /// stops with the outcome.
    async fn catch_up(&mut self) -> Result<(), Outcome> {
        loop {
            if is_draining(self.draining.as_ref()) {
                return Err(Outcome::Draining);
            }
            let store = self.state.engine.store().clone();
            let page = store
                .events_text(&self.run_id, self.last_sent, self.page_events)
                .await
                .map_err(Outcome::Failed)?;
            // A short page means the log ended there a moment ago: look at
            // the run rather than read an empty page again.
            let full = page.len() >= self.page_events as usize;
            if !page.is_empty() {
                self.send_page(&page).await?;
            }
            if full {
                continue;
            }
            let run = match store.get_run(&self.run_id).await {
                Ok(Some(run)) => run,
                Ok(None) => {
                    return Err(Outcome::Failed(braid_store::Error::NotFound(
                        self.run_id.clone(),
                    )));
                }
                Err(e) => return Err(Outcome::Failed(e)),
            };
            if run.last_seq > self.last_sent {
                // Committed between the two reads.
                continue;
            }
            if run.status.is_ended() {
                return Err(self.send_end(run.status, run.last_seq).await);
            }
            return Ok(());
        }
    }

    /// Sends the queued batches' events after the last seq sent, as long as
    /// they follow it without a gap.
    async fn forward(&mut self, queued: Queued) -> Result<Forwarded, Outcome> {
        if queued.gap {
            return Ok(Forwarded::ReadStore);
        }
        let mut ended = false;
        for batch in queued.batches {
            let fresh = batch.partition_point(|e| e.seq <= self.last_sent);
            let page = &batch[fresh..];
            match page.first() {
                None => continue,
                Some(e) if e.seq != self.last_sent + 1 => return Ok(Forwarded::ReadStore),
                Some(_) => {}
            }
            ended |= page
                .iter()
                .any(|e| RUN_END_KINDS.contains(&e.kind.as_ref()));
            self.send_page(page).await?;
        }
        Ok(if ended {
            Forwarded::ReadStore
        } else {
            Forwarded::CaughtUp
        })
    }

    /// Sends a page of stored events as frames within both bounds. Each
    /// `send` waits until the socket took the frame, so a client that reads
    /// nothing holds the server at one frame.
    async fn send_page(&mut self, page: &[NewEvent]) -> Result<(), Outcome> {
        let mut frame = EventsFrame::new();
        let (events, mut bytes) = (page.len(), 0);
        for e in page {
            let seq = e.seq;
            let json = envelope_json(e)
                .map_err(|e| Outcome::Failed(braid_store::Error::Backend(e.to_string())))?;
            if !frame.fits(&json) {
                self.send_frame(frame.finish()).await?;
                frame = EventsFrame::new();
            }
            frame.push(&json);
            bytes += json.len();
            self.last_sent = seq;
        }
        if !frame.is_empty() {
            self.send_frame(frame.finish()).await?;
        }
        let per_event = (bytes / events).max(1);
        self.page_events = (MAX_FRAME_BYTES / per_event).clamp(1, MAX_FRAME_EVENTS) as u32;
        Ok(())
    }

    async fn send_frame(&mut self, text: String) -> Result<(), Outcome> {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .map_err(|_| Outcome::Gone)
    }

    async fn send_end(&mut self, status: RunStatus, last_seq: i64) -> Outcome {
        let end = LiveFrame::End { status, last_seq };
        let text = serde_json::to_string(&end).expect("an end frame serializes");
        match self.send_frame(text).await {
            Ok(()) => Outcome::Done,
            Err(outcome) => outcome,
        }
    }

    async fn finish(&mut self, outcome: Outcome) {
        finish_socket(&mut self.socket, outcome).await;
    }
}

/// An `events` frame being assembled from events serialized one by one, so
/// that its size is known exactly before it is sent.
struct EventsFrame {
    text: String,
    count: usize,
}

const FRAME_HEAD: &str = r#"{"type":"events","events":["#;
const FRAME_TAIL: &str = "]}";

impl EventsFrame {
    fn new() -> EventsFrame {
        EventsFrame {
            text: String::from(FRAME_HEAD),
            count: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether one more event (`json`) keeps the frame within both bounds;
    /// an empty frame takes any event.
    fn fits(&self, json: &str) -> bool {
        self.count == 0
            || (self.count < MAX_FRAME_EVENTS
                && self.text.len() + 1 + json.len() + FRAME_TAIL.len() <= MAX_FRAME_BYTES)
    }

    fn push(&mut self, json: &str) {
        if self.count > 0 {
            self.text.push(',');
        }
        self.text.push_str(json);
        self.count += 1;
    }

    fn finish(mut self) -> String {
        self.text.push_str(FRAME_TAIL);
        self.text
    }
}

/// Run ids with new events since the last flush, filled by a task that
/// drains the engine's broadcast; `lagged` when batches were missed (every
/// run must then be looked at again). Dropping it stops the task.
struct DirtyRuns {
    shared: Arc<Mutex<Dirty>>,
    forwarder: AbortHandle,
}

#[derive(Default)]
struct Dirty {
    runs: HashSet<String>,
    lagged: bool,
}

impl DirtyRuns {
    fn follow(mut events: broadcast::Receiver<Published>) -> DirtyRuns {
        let shared = Arc::new(Mutex::new(Dirty::default()));
        let collect = shared.clone();
        let forwarder = tokio::spawn(async move {
            loop {
                let got = events.recv().await;
                let mut dirty = collect.lock().expect("dirty runs lock");
                match got {
                    Ok(p) => {
                        dirty.runs.insert(p.run_id);
                    }
                    Err(RecvError::Lagged(_)) => dirty.lagged = true,
                    Err(RecvError::Closed) => return,
                }
            }
        })
        .abort_handle();
        DirtyRuns { shared, forwarder }
    }

    fn take(&self) -> Dirty {
        std::mem::take(&mut *self.shared.lock().expect("dirty runs lock"))
    }
}

impl Drop for DirtyRuns {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

/// Which runs a `/api/live` connection is about.
struct ChangeFilter {
    project_id: String,
    /// Workflow id or name.
    workflow: Option<String>,
}

impl ChangeFilter {
    fn matches(&self, r: &RunRecord) -> bool {
        r.project_id == self.project_id
            && self
                .workflow
                .as_deref()
                .is_none_or(|w| w == r.workflow_id || w == r.workflow_name)
    }
}

/// One `/api/live` connection.
struct RunChanges {
    socket: WebSocket,
    state: AppState,
    filter: ChangeFilter,
    dirty: DirtyRuns,
    /// What was last sent of each live run (ended runs are forgotten: they
    /// do not change again), to send only real changes.
    sent: HashMap<String, (RunStatus, RunUsage)>,
    draining: Option<Draining>,
}

impl RunChanges {
    async fn run(&mut self) -> Outcome {
        let mut tick = tokio::time::interval(RUN_CHANGE_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let tick = tick.tick();
            let woken = wait_for(
                &mut self.socket,
                async {
                    tick.await;
                },
                self.draining.as_ref(),
            )
            .await;
            match woken {
                Woken::Events => {}
                Woken::Draining => return Outcome::Draining,
                Woken::Gone => return Outcome::Gone,
            }
            if let Err(outcome) = self.flush().await {
                return outcome;
            }
        }
    }

    /// Reads the runs that changed since the last flush and sends those
    /// that are new to this connection or whose status or usage changed.
    async fn flush(&mut self) -> Result<(), Outcome> {
        let Dirty { runs, lagged } = self.dirty.take();
        let mut ids: Vec<String> = runs.into_iter().collect();
        if lagged {
            // Which runs changed is lost: look at every run still live here.
            ids.extend(self.sent.keys().cloned());
            ids.sort();
            ids.dedup();
        }
        let store = self.state.engine.store().clone();
        for id in ids {
            let record = match store.get_run(&id).await {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => return Err(Outcome::Failed(e)),
            };
            if !self.filter.matches(&record) {
                continue;
            }
            let run = live_run(&record);
            let now = (run.status, run.usage.clone());
            if self.sent.get(&id) == Some(&now) {
                continue;
            }
            if run.status.is_ended() {
                self.sent.remove(&id);
            } else {
                self.sent.insert(id, now);
            }
            let text =
                serde_json::to_string(&RunChange::Run { run }).expect("a run change serializes");
            self.socket
                .send(Message::Text(text.into()))
                .await
                .map_err(|_| Outcome::Gone)?;
        }
        Ok(())
    }
}

fn live_run(r: &RunRecord) -> LiveRun {
    let summary = convert::run_summary(r);
    LiveRun {
        id: summary.id,
        workflow: summary.workflow,
        status: summary.status,
        created_at: summary.created_at,
        ended_at: summary.ended_at,
        usage: summary.usage,
        parent_run_id: summary.parent_run_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seqs: std::ops::RangeInclusive<i64>) -> Arc<Vec<NewEvent>> {
        Arc::new(
            seqs.map(|seq| NewEvent {
                run_id: "run_1".into(),
                seq,
                kind: "node_started".into(),
                ts: 0,
                token_id: None,
                node: None,
                payload: "{}".into(),
            })
            .collect(),
        )
    }

    #[test]
    fn the_queue_keeps_batches_up_to_its_bound_then_marks_a_gap() {
        let mut q = Queued::default();
        q.push(batch(1..=4_000));
        q.push(batch(4_001..=10_000));
        assert!(!q.gap);
        assert_eq!((q.batches.len(), q.events), (2, 10_000));
        // One event more than the bound: nothing is kept, the store is read.
        q.push(batch(10_001..=10_001));
        assert!(q.gap && q.batches.is_empty() && q.events == 0);
        // A gap stays until the connection takes the queue.
        q.push(batch(10_002..=10_002));
        assert!(q.gap && q.batches.is_empty());
        let mut fresh = Queued::default();
        // A batch written while nobody was subscribed carries no rows.
        fresh.push(Arc::new(Vec::new()));
        assert!(fresh.gap);
    }

    #[test]
    fn a_forwarded_envelope_equals_the_event_log_item() {
        for (token_id, node) in [(Some("tk_3"), Some("judge")), (None, None)] {
            let payload = serde_json::json!({ "attempt": 2, "result": { "vote": "A", "why": "\"quoted\" ü" } });
            let record = braid_store::EventRecord {
                run_id: "run_1".into(),
                seq: 7,
                kind: "node_completed".into(),
                ts: 1_700_000_000_123,
                token_id: token_id.map(String::from),
                node: node.map(String::from),
                payload,
            };
            let text = NewEvent::from(record.clone());
            let forwarded: serde_json::Value =
                serde_json::from_str(&envelope_json(&text).unwrap()).unwrap();
            assert_eq!(
                forwarded,
                serde_json::to_value(convert::event(record)).unwrap()
            );
        }
    }

    #[test]
    fn frames_hold_at_most_the_bounds_and_read_as_live_frames() {
        let small = r#"{"run_id":"r","seq":1,"kind":"k","ts":"t","payload":{}}"#;
        let mut frame = EventsFrame::new();
        let mut sent = 0;
        while frame.fits(small) {
            frame.push(small);
            sent += 1;
        }
        assert_eq!(sent, MAX_FRAME_EVENTS);
        let text = frame.finish();
        let parsed: LiveFrame = serde_json::from_str(&text).expect("a LiveFrame");
        assert!(matches!(parsed, LiveFrame::Events { events } if events.len() == MAX_FRAME_EVENTS));

        let big = format!(
            r#"{{"run_id":"r","seq":1,"kind":"k","ts":"t","payload":{{"x":"{}"}}}}"#,
            "a".repeat(400 * 1024)
        );
        let mut frame = EventsFrame::new();
        assert!(frame.fits(&big), "an empty frame takes any event");
        frame.push(&big);
        assert!(frame.fits(&big));
        frame.push(&big);
        assert!(!frame.fits(&big), "a third would pass 1 MiB");
        assert!(frame.finish().len() <= MAX_FRAME_BYTES);
    }
}
