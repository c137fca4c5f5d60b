//! Runs, events, tokens, snapshots and out-of-line results: their records,
//! the group-commit batch ([`WriteOp`]) and [`RunStore`].

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use braid_core::state::UsageTotals;
pub use braid_types::RunStatus;

use crate::view::{
    EventFilter, NodeStats, ParentFilter, SiblingSetRecord, SiblingSetSummary, TokenFilter,
};
use crate::{Millis, Page, Result, TaskRecord};

/// A run row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// `run_…`.
    pub id: String,
    /// Project id.
    pub project_id: String,
    /// `wf_…`.
    pub workflow_id: String,
    /// Workflow name.
    pub workflow_name: String,
    /// Version row id.
    pub def_id: String,
    /// Version number.
    pub version: i64,
    /// Status.
    pub status: RunStatus,
    /// `{ input, state, output, artifacts }` as of the last commit.
    pub context: Value,
    /// `{ code, message, node, action, attempt, cause? }` when failed.
    pub error: Option<Value>,
    /// `{ llm_calls, input_tokens, output_tokens, cost_usd }`.
    pub usage: Value,
    /// Effective limits.
    pub limits: Value,
    /// Parent run, for child runs.
    pub parent_run_id: Option<String>,
    /// Parent token, for child runs.
    pub parent_token_id: Option<String>,
    /// Nesting depth (0 for a root run).
    pub depth: i64,
    /// Highest event seq written.
    pub last_seq: i64,
    /// Creation.
    pub created_at: Millis,
    /// Start.
    pub started_at: Option<Millis>,
    /// End.
    pub ended_at: Option<Millis>,
    /// The process that owns the live run (scale-out on PostgreSQL: a
    /// `servers` id); `None` on a database served by one process.
    #[serde(default)]
    pub owner: Option<String>,
    /// The run's ownership epoch: 0 on a database served by one process, 1
    /// when created by a process of a cluster, one more at each adoption.
    /// [`WriteOp::UpdateRun`] is applied only while the stored epoch is
    /// still this one (fencing).
    #[serde(default)]
    pub epoch: i64,
    /// The run and the last seq a forked run's history was copied from
    /// (docs/lifecycles.md); `None` for a run that was not forked.
    #[serde(default)]
    pub forked_from: Option<ForkedFrom>,
}

/// Where a forked run's history came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkedFrom {
    /// The source run.
    pub run_id: String,
    /// The last seq copied, in the source run's numbering.
    pub seq: i64,
}

/// Filters for listing runs.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Project id.
    pub project_id: Option<String>,
    /// Status.
    pub status: Option<RunStatus>,
    /// Workflow id or name.
    pub workflow: Option<String>,
    /// Parent run id.
    pub parent: Option<String>,
}

/// A token row (one node visit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Run.
    pub run_id: String,
    /// The token's number in its run (1, 2, 3 … in creation order; `tk_7`
    /// is 7): its key with `run_id`, and the listing order.
    pub seq: i64,
    /// Token id (unique within the run).
    pub id: String,
    /// Node ref.
    pub node: String,
    /// `pending`, `running`, … (docs/definitions.md).
    pub status: String,
    /// The token whose visit created it.
    pub parent_token_id: Option<String>,
    /// Sibling set id, for members.
    pub sibling_set: Option<String>,
    /// Index in its sibling set.
    pub branch_index: Option<i64>,
    /// Attempts made.
    pub attempts: i64,
    /// Creation.
    pub created_at: Millis,
    /// Last start.
    pub started_at: Option<Millis>,
    /// End.
    pub ended_at: Option<Millis>,
    /// What this visit's attempts cost, failed ones included (the ledger).
    #[serde(default)]
    pub usage: UsageTotals,
    /// The seq of the first event about this token (its envelope's
    /// `token_id`); `None` before it has one. An upsert with `None` keeps
    /// the stored value, and the first value written is kept.
    #[serde(default)]
    pub first_seq: Option<i64>,
    /// The seq of the latest event about this token; an upsert with `None`
    /// keeps the stored value.
    #[serde(default)]
    pub last_seq: Option<i64>,
}

/// One token's row and its events, for the node inspector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenHistory {
    /// The token row.
    pub token: TokenRecord,
    /// The events whose `token_id` is this token, by seq (payloads as
    /// stored: fields moved out of line are still references).
    pub events: Vec<EventRecord>,
}

/// An event as stored (docs/lifecycles.md envelope).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Run.
    pub run_id: String,
    /// 1, 2, 3 … per run.
    pub seq: i64,
    /// Event kind.
    pub kind: String,
    /// Time.
    pub ts: Millis,
    /// Token.
    pub token_id: Option<String>,
    /// Node ref.
    pub node: Option<String>,
    /// Payload.
    pub payload: Value,
}

/// An event to append: like [`EventRecord`], with the payload already
/// serialized (the hot path never builds a JSON tree per event).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Run.
    pub run_id: String,
    /// 1, 2, 3 … per run.
    pub seq: i64,
    /// Event kind.
    pub kind: std::borrow::Cow<'static, str>,
    /// Time.
    pub ts: Millis,
    /// Token.
    pub token_id: Option<String>,
    /// Node ref.
    pub node: Option<String>,
    /// Payload as JSON text.
    pub payload: String,
}

/// One write of a group commit ([`RunStore::commit`]).
///
/// The task-queue writes (`EnqueueTask`, `AckTask`, `DropRunTasks`,
/// `DropTokenTasks`) live here rather than on [`TaskQueue`](crate::TaskQueue)
/// because they must become durable in the same transaction as the events
/// and run rows that caused them: a task enqueued without its
/// `node_started` event, or acked without its `node_completed`, would run
/// twice or never after a crash.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Insert a new run. An existing id is [`Error::Conflict`](crate::Error::Conflict).
    CreateRun(RunRecord),
    /// Update a run's mutable fields (status, context, error, usage,
    /// last_seq, started_at, ended_at); every other field keeps its stored
    /// value. An unknown run is [`Error::NotFound`](crate::Error::NotFound);
    /// a run whose stored `epoch` is not the record's (another process
    /// adopted it) is [`Error::Fenced`](crate::Error::Fenced), and the whole
    /// batch is rolled back. Every commit of a run's progress carries one,
    /// so every commit is fenced.
    UpdateRun(RunRecord),
    /// Append events. `(run_id, seq)` is unique: a seq already stored, or
    /// twice in the batch, is [`Error::Conflict`](crate::Error::Conflict).
    AppendEvents(Vec<NewEvent>),
    /// Insert or replace token rows, keyed by `(run_id, seq)`; the last
    /// write of a key in the batch wins.
    UpsertTokens(Vec<TokenRecord>),
    /// Insert a task (ready at its `not_before`).
    EnqueueTask(TaskRecord),
    /// Delete a finished task. An unknown id is not an error (the task may
    /// have been dropped with its run).
    AckTask(String),
    /// Delete every task of a run (at its end).
    DropRunTasks(String),
    /// Delete the queued tasks of cancelled tokens (they must never run).
    /// Only tasks of `run_id`: the same token id in another run is kept.
    DropTokenTasks {
        /// Run.
        run_id: String,
        /// Token ids.
        tokens: Vec<String>,
    },
    /// Store a node result too large to stay inline in its event
    /// (`node_completed.result` then holds `{ "$result": id }`).
    PutResult {
        /// `res_…`.
        id: String,
        /// Run.
        run_id: String,
        /// Token.
        token_id: String,
        /// Attempt.
        attempt: i64,
        /// The result as JSON text.
        payload: String,
    },
    /// Insert or update sibling-set rows, keyed by `(run_id, seq)`: written
    /// again (idempotently) whenever an event of the set is, so recovery and
    /// replay never duplicate one.
    UpsertSiblingSets(Vec<SiblingSetRecord>),
    /// Store a snapshot of a run's state covering events up to `seq`.
    Snapshot {
        /// Run.
        run_id: String,
        /// Highest seq covered.
        seq: i64,
        /// The serialized state, as JSON text (serialized once, straight
        /// from the typed state).
        state: String,
    },
}

impl From<EventRecord> for NewEvent {
    /// The record with its payload serialized.
    fn from(e: EventRecord) -> NewEvent {
        NewEvent {
            run_id: e.run_id,
            seq: e.seq,
            kind: e.kind.into(),
            ts: e.ts,
            token_id: e.token_id,
            node: e.node,
            payload: e.payload.to_string(),
        }
    }
}

impl WriteOp {
    /// [`WriteOp::AppendEvents`] from records (serializes their payloads).
    pub fn append(events: Vec<EventRecord>) -> WriteOp {
        WriteOp::AppendEvents(events.into_iter().map(NewEvent::from).collect())
    }
}

/// Runs, events, tokens, snapshots and out-of-line results.
///
/// Listings clamp `limit` to `1..=1000` (0 means 1, never an error). Cursors
/// are opaque: pass back a page's `next_cursor`; one the store did not issue
/// is [`Error::Invalid`](crate::Error::Invalid).
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Applies every op in **one transaction**: either all of them become
    /// durable before this returns `Ok`, or none does (a failing op rolls
    /// back the whole batch, including the ops of other runs in it). The
    /// result is the same as applying the ops one by one in order. An
    /// empty batch is a no-op.
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<()>;
    /// A run as of the last commit; `None` when unknown.
    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>>;
    /// Runs matching every set field of `filter`, newest first: by
    /// `created_at` descending, ties by id descending. The cursor continues
    /// exactly after the last item, even among equal `created_at`.
    async fn list_runs(
        &self,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<RunRecord>>;
    /// Ids of the runs whose `parent_run_id` is `run_id`, oldest first.
    async fn children(&self, run_id: &str) -> Result<Vec<String>>;
    /// Runs with status `running`, oldest first (for recovery).
    async fn live_runs(&self) -> Result<Vec<RunRecord>>;
    /// Up to `limit` events of a run with `seq > after`, by seq ascending;
    /// empty for an unknown run.
    async fn events(&self, run_id: &str, after: i64, limit: u32) -> Result<Vec<EventRecord>>;
    /// Like [`events`](Self::events), each payload as the JSON text the
    /// store holds: a reader that only forwards events (the live stream)
    /// need not build and re-serialize a JSON tree per event.
    async fn events_text(&self, run_id: &str, after: i64, limit: u32) -> Result<Vec<NewEvent>> {
        Ok(self
            .events(run_id, after, limit)
            .await?
            .into_iter()
            .map(NewEvent::from)
            .collect())
    }
    /// Tokens of a run by `seq` (creation order), not by id nor by the
    /// order the rows were written.
    async fn tokens(
        &self,
        run_id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<TokenRecord>>;
    /// One token's row and its events (`token_id` = `token_id`), read as a
    /// range of the run's events between the row's `first_seq` and
    /// `last_seq` rather than a scan of the run; `None` when the run or
    /// the token is unknown.
    async fn token_history(&self, run_id: &str, token_id: &str) -> Result<Option<TokenHistory>>;
    /// The usage of a run and of all its descendants (child runs, their
    /// children, …), summed over their tokens' ledger columns in one query;
    /// zero for an unknown run. What `usage_total` of the API shows.
    async fn usage_total(&self, run_id: &str) -> Result<UsageTotals>;
    /// One item per node of the run's graph, in the definition's node order
    /// (nodes never visited have zero counts), aggregated over the run's
    /// token rows by the backend's query; empty for an unknown run.
    async fn node_stats(&self, run_id: &str) -> Result<Vec<NodeStats>>;
    /// The run's sibling sets by `seq` (creation order), each with its
    /// members counted by the status of each branch's latest token.
    async fn sibling_sets(
        &self,
        run_id: &str,
        parent: &ParentFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<SiblingSetSummary>>;
    /// Like [`RunStore::events`], only the events that pass `filter`, and
    /// `limit` clamped to `1..=`[`MAX_EVENTS_PAGE`](crate::MAX_EVENTS_PAGE).
    async fn filtered_events(
        &self,
        run_id: &str,
        filter: &EventFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<EventRecord>>;
    /// Like [`RunStore::tokens`], only the tokens that pass `filter`.
    async fn filtered_tokens(
        &self,
        run_id: &str,
        filter: &TokenFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<TokenRecord>>;
    /// A result stored out of line by [`WriteOp::PutResult`]; `None` when unknown.
    async fn result(&self, id: &str) -> Result<Option<Value>>;
    /// The snapshot with the highest seq: `(seq, state)`. A snapshot written
    /// again for the same seq replaces it; older ones may be deleted.
    async fn latest_snapshot(&self, run_id: &str) -> Result<Option<(i64, Value)>>;
}
