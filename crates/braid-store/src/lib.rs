//! Storage traits of Braid and the typed [`Error`] every backend returns.
//!
//! The runtime sees only these traits. Each backend (SQLite today,
//! PostgreSQL next) implements them with its own SQL and migrations; the
//! schema is documented in `docs/schema.md`.
//!
//! Writes that belong to a run's progress go through [`RunStore::commit`]: a
//! batch of [`WriteOp`]s applied in **one transaction**, so events, token
//! rows, run rows, new tasks and task acks of many runs become durable with a
//! single fsync (group commit). Nothing is acknowledged before `commit`
//! returns.

use async_trait::async_trait;
use braid_core::definition::Bundle;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Milliseconds since the Unix epoch (UTC).
pub type Millis = i64;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness or state precondition failed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A request argument the store cannot use (e.g. a cursor it did not issue).
    #[error("{0}")]
    Invalid(String),
    /// Stored definition rows do not form a valid bundle (e.g. written by hand
    /// with bad JSON); the message names the definition, object and column.
    #[error("{0}")]
    BadDefinition(String),
    /// The backend failed (IO, SQL, corruption). Not shown to API users verbatim.
    #[error("storage backend: {0}")]
    Backend(String),
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A saved definition version.
#[derive(Debug, Clone)]
pub struct StoredDef {
    /// `wf_…`: the workflow across versions.
    pub workflow_id: String,
    /// Id of this version's row.
    pub def_id: String,
    /// Project id.
    pub project_id: String,
    /// Workflow name.
    pub name: String,
    /// 1, 2, 3 …
    pub version: i64,
    /// The bundle rebuilt from the normalized rows.
    pub bundle: Bundle,
    /// Creation time.
    pub created_at: Millis,
}

/// What saving a bundle did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveOutcome {
    /// `wf_…`.
    pub workflow_id: String,
    /// Version row id.
    pub def_id: String,
    /// The (new or unchanged) version number.
    pub version: i64,
    /// False when the content equalled the latest version.
    pub created: bool,
}

/// One workflow in a listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowSummary {
    /// `wf_…`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Latest version number.
    pub latest_version: i64,
    /// Creation of the workflow.
    pub created_at: Millis,
}

/// A project-scoped artifact type version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactType {
    /// Row id.
    pub id: String,
    /// The type's name.
    pub name: String,
    /// 1, 2, 3 …
    pub version: i64,
    /// JSON Schema.
    pub schema: Value,
}

/// Page of results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// Per-project engine settings (`projects` columns; NULL = engine default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectSettings {
    /// Snapshot a run at least every this many events.
    pub snapshot_every_events: Option<u64>,
}

/// Definitions, projects and artifact types.
#[async_trait]
pub trait DefinitionStore: Send + Sync {
    /// Resolves a project name (or id) to its id; `default` always exists.
    async fn project_id(&self, project: &str) -> Result<String>;
    /// Per-project engine settings.
    async fn project_settings(&self, project_id: &str) -> Result<ProjectSettings>;
    /// Saves `bundle` as a new version when its canonical content differs
    /// from the latest one (and saves the artifact types it defines as new
    /// versions when their schema changed). Atomic.
    async fn save_bundle(
        &self,
        project_id: &str,
        bundle: &Bundle,
        now: Millis,
    ) -> Result<SaveOutcome>;
    /// A version by workflow id or name; latest when `version` is `None`.
    async fn get_def(
        &self,
        project_id: &str,
        id_or_name: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredDef>>;
    /// The row id of a version by workflow id or name (latest when `version`
    /// is `None`): one lookup, without loading the version.
    async fn resolve_def(
        &self,
        project_id: &str,
        id_or_name: &str,
        version: Option<i64>,
    ) -> Result<Option<String>>;
    /// A version by its row id.
    async fn get_def_by_id(&self, def_id: &str) -> Result<Option<StoredDef>>;
    /// Workflows of a project by name.
    async fn list_workflows(
        &self,
        project_id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<WorkflowSummary>>;
    /// Latest version of every artifact type of the project.
    async fn artifact_types(&self, project_id: &str) -> Result<Vec<ArtifactType>>;
    /// Names of the project's workflows (for `workflow_call` validation).
    async fn workflow_names(&self, project_id: &str) -> Result<Vec<String>>;
}

/// Run status as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Live.
    Running,
    /// Ended with output.
    Completed,
    /// Ended with an error.
    Failed,
    /// Ended by request.
    Cancelled,
}

impl RunStatus {
    /// The stored and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "running" => RunStatus::Running,
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }
}

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
    /// `pending`, `running`, … (SPEC §1).
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
}

/// An event as stored (SPEC §6 envelope).
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

impl WriteOp {
    /// [`WriteOp::AppendEvents`] from records (serializes their payloads).
    pub fn append(events: Vec<EventRecord>) -> WriteOp {
        WriteOp::AppendEvents(
            events
                .into_iter()
                .map(|e| NewEvent {
                    run_id: e.run_id,
                    seq: e.seq,
                    kind: e.kind.into(),
                    ts: e.ts,
                    token_id: e.token_id,
                    node: e.node,
                    payload: e.payload.to_string(),
                })
                .collect(),
        )
    }
}

/// A task row: one attempt of one non-pure action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// `task_…`.
    pub id: String,
    /// Run.
    pub run_id: String,
    /// Token.
    pub token_id: String,
    /// 1-based attempt.
    pub attempt: i64,
    /// Everything the executor needs (resolved by the core).
    pub payload: Value,
    /// Not claimable before this time.
    pub not_before: Millis,
    /// Claimed until this time (`None` = ready).
    pub lease_until: Option<Millis>,
    /// Times it was claimed.
    pub deliveries: i64,
    /// Creation.
    pub created_at: Millis,
}

/// An artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// `art_…`.
    pub id: String,
    /// Project id.
    pub project_id: String,
    /// Type name.
    pub type_name: String,
    /// Type version.
    pub type_version: i64,
    /// Name in `artifacts.<name>`.
    pub name: String,
    /// Validated content.
    pub content: Value,
    /// Run that wrote it.
    pub run_id: String,
    /// Node that wrote it.
    pub node: String,
    /// Makes a re-delivered write a no-op: `<run>/<token>`.
    pub idempotency_key: String,
    /// Creation.
    pub created_at: Millis,
}

/// Filters for listing artifacts.
#[derive(Debug, Clone, Default)]
pub struct ArtifactFilter {
    /// Project id.
    pub project_id: Option<String>,
    /// Type name.
    pub type_name: Option<String>,
    /// Run id.
    pub run_id: Option<String>,
}

/// One write of a group commit.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Insert a new run.
    CreateRun(RunRecord),
    /// Update a run's mutable fields (status, context, error, usage, last_seq, times).
    UpdateRun(RunRecord),
    /// Append events (seq must continue the run's sequence; a duplicate seq is an error).
    AppendEvents(Vec<NewEvent>),
    /// Insert or replace token rows.
    UpsertTokens(Vec<TokenRecord>),
    /// Insert a task.
    EnqueueTask(TaskRecord),
    /// Delete a finished task.
    AckTask(String),
    /// Delete every task of a run (at its end).
    DropRunTasks(String),
    /// Delete the queued tasks of cancelled tokens (they must never run).
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

/// Runs, events, tokens, snapshots and the task queue.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Applies every op in one transaction (one fsync).
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<()>;
    /// A run.
    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>>;
    /// Runs, newest first.
    async fn list_runs(
        &self,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<RunRecord>>;
    /// Child run ids of a run.
    async fn children(&self, run_id: &str) -> Result<Vec<String>>;
    /// Runs with status `running` (for recovery).
    async fn live_runs(&self) -> Result<Vec<RunRecord>>;
    /// Events with `seq > after`, ascending.
    async fn events(&self, run_id: &str, after: i64, limit: u32) -> Result<Vec<EventRecord>>;
    /// Tokens of a run in creation order.
    async fn tokens(
        &self,
        run_id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<TokenRecord>>;
    /// A result stored out of line by [`WriteOp::PutResult`].
    async fn result(&self, id: &str) -> Result<Option<Value>>;
    /// Latest snapshot: `(seq, state)`.
    async fn latest_snapshot(&self, run_id: &str) -> Result<Option<(i64, Value)>>;
    /// Claims up to `limit` ready tasks whose `not_before <= now` and whose
    /// lease is absent or expired, setting `lease_until = now + lease_ms`.
    async fn claim_tasks(&self, now: Millis, lease_ms: i64, limit: u32) -> Result<Vec<TaskRecord>>;
    /// Clears every lease. Only for a store served by one process (the
    /// embedded SQLite file): at start-up, leases held by a process that
    /// died are void, so its tasks can be delivered again at once.
    async fn release_all_leases(&self) -> Result<u64>;
    /// Extends the lease of claimed tasks.
    async fn renew_leases(&self, task_ids: &[String], lease_until: Millis) -> Result<()>;
    /// Earliest `not_before` of an unclaimed task, to sleep until it.
    async fn next_task_due(&self) -> Result<Option<Millis>>;
}

/// Artifacts.
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Inserts unless an artifact with the same idempotency key exists;
    /// returns the stored artifact's id either way.
    async fn put_artifact(&self, artifact: &ArtifactRecord) -> Result<String>;
    /// One artifact.
    async fn get_artifact(&self, id: &str) -> Result<Option<ArtifactRecord>>;
    /// Artifacts, newest first.
    async fn list_artifacts(
        &self,
        filter: &ArtifactFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<ArtifactRecord>>;
}

/// Everything a backend provides.
pub trait Store: DefinitionStore + RunStore + ArtifactStore {}
impl<T: DefinitionStore + RunStore + ArtifactStore> Store for T {}
