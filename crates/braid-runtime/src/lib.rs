//! Braid's runtime: drives the pure core against a store.
//!
//! - one **coordinator** per live run, the single writer of that run;
//! - a **group committer** that makes the writes of many runs durable with
//!   one transaction;
//! - an **executor pool** that runs non-pure actions (LLM calls, artifact
//!   writes) from the durable task queue, under leases and timeouts;
//! - **recovery** that adopts every live run again at start-up.
//!
//! [`Engine`] is the cheap, cloneable handle the server and CLI use.

mod committer;
mod coordinator;
mod executor;

use braid_core::definition::{Bundle, Limits};
use braid_core::event::ErrorInfo;
use braid_core::event::{Event, EventBody};
use braid_core::graph::{self, DefinitionError, Env, Graph};
use braid_core::machine::{ChildCall, ChildOutcome, Input, Outcome, TaskPayload};
use braid_core::state::RunState;
use braid_store::{RunRecord, RunStatus, SaveOutcome, Store};
use committer::Committer;
use coordinator::{Coordinator, Msg};
use executor::Executor;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

/// A source of time, injectable for tests.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Microseconds since the Unix epoch (precise waits for short retry
    /// delays). Defaults to [`Clock::now_ms`] in microseconds.
    fn now_us(&self) -> i64 {
        self.now_ms().saturating_mul(1000)
    }
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    fn now_us(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
    }
}

/// A source of ids, injectable for tests.
pub trait IdGen: Send + Sync {
    /// A new unique id with the given prefix (`run` → `run_…`).
    fn id(&self, prefix: &str) -> String;
}

/// Time-ordered UUID v7 ids.
pub struct UuidIds;

impl IdGen for UuidIds {
    fn id(&self, prefix: &str) -> String {
        format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
    }
}

/// Engine options.
#[derive(Clone)]
pub struct Options {
    /// Actions in flight at once (default 512).
    pub workers: usize,
    /// Task lease; renewed while an attempt runs (default 30 s).
    pub lease_ms: i64,
    /// Fallback poll interval for due tasks (default 1 s).
    pub poll_ms: u64,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Id source.
    pub ids: Arc<dyn IdGen>,
    /// HTTP client for providers.
    pub http: Option<reqwest::Client>,
    /// Default `snapshot_every_events` (a project's setting wins; default 100).
    pub snapshot_every_events: u64,
    /// The store is used by this process alone (the embedded SQLite file):
    /// leases left by a previous process are released at start-up, so its
    /// in-flight tasks are delivered again at once instead of after their
    /// lease. Default true; false when several processes share a database.
    pub exclusive: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: 512,
            lease_ms: 30_000,
            poll_ms: 1_000,
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidIds),
            http: None,
            snapshot_every_events: 100,
            exclusive: true,
        }
    }
}

/// Errors of engine operations, each with a user-facing meaning.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle could not be read.
    #[error("{0}")]
    Malformed(String),
    /// The bundle (or a stored version) does not validate.
    #[error("the definition is invalid ({} problems)", .0.len())]
    InvalidDefinition(Vec<DefinitionError>),
    /// Unknown workflow, version or run.
    #[error("{0}")]
    NotFound(String),
    /// The input is not an object or violates `input_schema`.
    #[error("{message}")]
    InputSchema {
        /// Summary.
        message: String,
        /// `[{ path, message }]`.
        errors: Vec<Value>,
    },
    /// The run has already ended.
    #[error("run {0} has already ended")]
    RunEnded(String),
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] braid_store::Error),
}

/// What an executor needs besides the core's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TaskEnvelope {
    pub def_id: String,
    pub project_id: String,
    pub node: String,
    pub timeout_ms: Option<u64>,
    pub payload: TaskPayload,
}

/// A batch of events of one run, as published to live subscribers.
#[derive(Debug, Clone)]
pub struct Published {
    /// Run id.
    pub run_id: String,
    /// Events in seq order.
    pub events: Arc<Vec<Event>>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdGen>,
    pub(crate) committer: Committer,
    pub(crate) executor: Executor,
    graphs: Mutex<HashMap<String, Arc<Graph>>>,
    /// Stored versions by row id (immutable once saved), loaded once.
    defs: Mutex<HashMap<String, Arc<braid_store::StoredDef>>>,
    /// Live runs: run id → (the coordinator's generation, its inbox).
    runs: Mutex<HashMap<String, (u64, mpsc::UnboundedSender<Msg>)>>,
    /// The next coordinator generation.
    generations: std::sync::atomic::AtomicU64,
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>,
    events: broadcast::Sender<Published>,
    settings: Mutex<HashMap<String, u64>>,
    snapshot_default: u64,
}

/// The handle to a running engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Starts the committer and executor pool and adopts every live run.
    pub async fn start(store: Arc<dyn Store>, opts: Options) -> Result<Engine, Error> {
        let run_store: Arc<dyn braid_store::RunStore> = store.clone();
        let committer = Committer::start(run_store);
        let http = opts.http.clone().unwrap_or_else(braid_llm::http_client);
        let executor = Executor::new(&opts, http);
        let (events, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            store,
            clock: opts.clock.clone(),
            ids: opts.ids.clone(),
            committer,
            executor,
            graphs: Mutex::new(HashMap::new()),
            defs: Mutex::new(HashMap::new()),
            runs: Mutex::new(HashMap::new()),
            generations: std::sync::atomic::AtomicU64::new(1),
            waiters: Mutex::new(HashMap::new()),
            events,
            settings: Mutex::new(HashMap::new()),
            snapshot_default: opts.snapshot_every_events.max(1),
        });
        let engine = Engine {
            inner: inner.clone(),
        };
        if opts.exclusive {
            let released = inner.store.release_all_leases().await?;
            if released > 0 {
                tracing::info!(released, "released the task leases of a previous process");
            }
        }
        engine.recover().await?;
        executor::spawn(inner);
        Ok(engine)
    }

    /// The store behind the engine (for reads).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Subscribes to the events of all runs as they become durable.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.inner.events.subscribe()
    }

    /// Validates a bundle against a project and saves it (new version only when changed).
    pub async fn save_definition(
        &self,
        project_id: &str,
        bundle: &Bundle,
    ) -> Result<(SaveOutcome, Vec<DefinitionError>), Error> {
        let compiled = self.inner.compile_checked(project_id, bundle).await?;
        let now = self.inner.clock.now_ms();
        let outcome = self
            .inner
            .store
            .save_bundle(project_id, bundle, now)
            .await?;
        // The first run of this version needs no second compilation.
        self.inner
            .graphs
            .lock()
            .expect("graphs lock")
            .entry(outcome.def_id.clone())
            .or_insert_with(|| Arc::new(compiled.graph));
        Ok((outcome, compiled.warnings))
    }

    /// Validates without saving.
    pub async fn validate(
        &self,
        project_id: &str,
        bundle: &Bundle,
    ) -> Result<Vec<DefinitionError>, Error> {
        Ok(self
            .inner
            .compile_checked(project_id, bundle)
            .await?
            .warnings)
    }

    /// Starts a run of a workflow version; returns once the run is durable.
    pub async fn start_run(
        &self,
        project_id: &str,
        workflow: &str,
        version: Option<i64>,
        input: Value,
        limits: Option<Limits>,
    ) -> Result<String, Error> {
        let def_id = self
            .inner
            .store
            .resolve_def(project_id, workflow, version)
            .await?
            .ok_or_else(|| match version {
                Some(v) => Error::NotFound(format!(
                    "workflow `{workflow}` has no version {v} in this project"
                )),
                None => Error::NotFound(format!(
                    "workflow `{workflow}` does not exist in this project"
                )),
            })?;
        let def = self.inner.stored_def(&def_id).await?;
        let graph = self.inner.graph(&def_id).await?;
        if !input.is_object() {
            return Err(Error::InputSchema {
                message: "`input` must be a JSON object".into(),
                errors: vec![serde_json::json!({ "path": "", "message": "expected an object" })],
            });
        }
        if let Some(schema) = &graph.input_schema
            && let Err(v) = schema.validate(&input)
        {
            return Err(Error::InputSchema {
                message: format!(
                    "the input does not match the input_schema of `{}`",
                    def.name
                ),
                errors: v
                    .into_iter()
                    .map(|v| serde_json::json!({ "path": v.path, "message": v.message }))
                    .collect(),
            });
        }
        let limits = graph.limits.overridden_by(limits);
        let run_id = self.inner.ids.id("run");
        let every = self.inner.snapshot_every(project_id).await;
        let tx = self
            .inner
            .spawn_run(&run_id, &def, graph, limits, None, every)
            .ok_or(Error::ShuttingDown)?;
        let (reply, done) = oneshot::channel();
        tx.send(Msg::Input(
            Input::Start {
                input,
                limits,
                artifacts: None,
            },
            Some(reply),
        ))
        .map_err(|_| Error::ShuttingDown)?;
        done.await.map_err(|_| {
            Error::Store(braid_store::Error::Backend(
                "the run could not be persisted".into(),
            ))
        })?;
        Ok(run_id)
    }

    /// Cancels a live run and its live child runs.
    pub async fn cancel(&self, run_id: &str, reason: &str) -> Result<(), Error> {
        let tx = self
            .inner
            .runs
            .lock()
            .expect("runs lock")
            .get(run_id)
            .map(|(_, tx)| tx.clone());
        if let Some(tx) = tx {
            let (reply, done) = oneshot::channel();
            if tx
                .send(Msg::Input(
                    Input::Cancel {
                        reason: reason.into(),
                    },
                    Some(reply),
                ))
                .is_ok()
                && done.await.is_ok()
            {
                return Ok(());
            }
        }
        match self.inner.store.get_run(run_id).await? {
            None => Err(Error::NotFound(format!("run `{run_id}` does not exist"))),
            Some(r) if r.status != RunStatus::Running => Err(Error::RunEnded(run_id.into())),
            Some(_) => Err(Error::ShuttingDown),
        }
    }

    /// Waits until a run has ended or `timeout` passes; returns the run record
    /// (whatever its status) or `None` if it does not exist.
    pub async fn wait(&self, run_id: &str, timeout: Duration) -> Result<Option<RunRecord>, Error> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .waiters
            .lock()
            .expect("waiters lock")
            .entry(run_id.to_string())
            .or_default()
            .push(tx);
        let Some(r) = self.inner.store.get_run(run_id).await? else {
            return Ok(None);
        };
        if r.status != RunStatus::Running {
            return Ok(Some(r));
        }
        let _ = tokio::time::timeout(timeout, rx).await;
        Ok(self.inner.store.get_run(run_id).await?)
    }

    /// Stops claiming new tasks and waits up to `deadline` for in-flight attempts.
    pub async fn shutdown(&self, deadline: Duration) {
        let end = tokio::time::Instant::now() + deadline;
        self.inner.executor.drain(deadline).await;
        // Every result handed to a coordinator is committed before we return.
        let runs: Vec<_> = self
            .inner
            .runs
            .lock()
            .expect("runs lock")
            .values()
            .map(|(_, tx)| tx.clone())
            .collect();
        let mut pending = Vec::with_capacity(runs.len());
        for tx in runs {
            let (reply, done) = oneshot::channel();
            if tx.send(Msg::Barrier(reply)).is_ok() {
                pending.push(done);
            }
        }
        let _ = tokio::time::timeout_at(end, futures::future::join_all(pending)).await;
    }

    /// Adopts every run that was live when the process stopped.
    async fn recover(&self) -> Result<(), Error> {
        for record in self.inner.store.live_runs().await? {
            let graph = match self.inner.graph(&record.def_id).await {
                Ok(g) => g,
                Err(e) => {
                    tracing::error!(run = %record.id, error = %e, "cannot recover run: its definition does not compile");
                    continue;
                }
            };
            let mut state = self.inner.load_state(&record.id, &graph).await?;
            let run_id = record.id.clone();
            let limits: Limits = serde_json::from_value(record.limits.clone()).unwrap_or_default();
            let started = record.started_at.unwrap_or(record.created_at);
            let parent_project = record.project_id.clone();
            let children = braid_core::machine::pending_children(
                &mut state,
                &graph,
                self.inner.clock.now_ms(),
            );
            let parent = record.clone();
            let coordinator = Coordinator {
                inner: self.inner.clone(),
                graph,
                state,
                record,
                create: false,
                since_snapshot: 0,
                snapshot_every: self.inner.snapshot_every(&parent_project).await,
                direct: Vec::new(),
                generation: 0,
            };
            self.inner.spawn_coordinator(&run_id, coordinator, true);
            for call in children {
                tokio::spawn(self.inner.clone().start_child(parent.clone(), call, None));
            }
            if let Some(ms) = limits.timeout_ms {
                // Saturating: `timeout_ms` comes from the request (any u64).
                let deadline = started.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX));
                let left = deadline.saturating_sub(self.inner.clock.now_ms()).max(0);
                self.inner.arm_timeout(&run_id, left as u64);
            }
        }
        Ok(())
    }
}

impl Inner {
    /// A run's state as the database has it: the latest snapshot, then the
    /// events after it (recovery, and a coordinator whose commit failed).
    pub(crate) async fn load_state(&self, run_id: &str, graph: &Graph) -> Result<RunState, Error> {
        // The latest snapshot, then the events after it.
        let (mut state, mut after) = match self.store.latest_snapshot(run_id).await? {
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
            let page = stored_events(self.store.as_ref(), run_id, after).await?;
            let Some(last) = page.last() else { break };
            after = last.seq as i64;
            for ev in &page {
                state.apply_event(graph, ev);
            }
        }
        Ok(state)
    }

    /// Every save-time check: compilation against the project, and the
    /// model profiles' scripts and parameters.
    async fn compile_checked(
        &self,
        project_id: &str,
        bundle: &Bundle,
    ) -> Result<graph::Compiled, Error> {
        let env = self.env(project_id).await?;
        let profile_errors = check_profiles(bundle);
        match graph::compile(bundle, &env) {
            Ok(c) if profile_errors.is_empty() => Ok(c),
            Ok(_) => Err(Error::InvalidDefinition(profile_errors)),
            Err(mut errors) => {
                errors.extend(profile_errors);
                Err(Error::InvalidDefinition(errors))
            }
        }
    }

    async fn env(&self, project_id: &str) -> Result<Env, Error> {
        let store = &self.store;
        Ok(Env {
            artifact_types: store
                .artifact_types(project_id)
                .await?
                .into_iter()
                .map(|a| (a.name, (a.version, a.schema)))
                .collect(),
            workflows: store
                .workflow_names(project_id)
                .await?
                .into_iter()
                .collect(),
        })
    }

    /// A stored version by row id (loaded once, then cached: a version never
    /// changes). Rows that do not decode are `InvalidDefinition`.
    pub(crate) async fn stored_def(
        &self,
        def_id: &str,
    ) -> Result<Arc<braid_store::StoredDef>, Error> {
        if let Some(d) = self.defs.lock().expect("defs lock").get(def_id) {
            return Ok(d.clone());
        }
        let def = self
            .store
            .get_def_by_id(def_id)
            .await
            .map_err(bad_definition)?
            .ok_or_else(|| {
                Error::NotFound(format!("definition version `{def_id}` does not exist"))
            })?;
        let def = Arc::new(def);
        self.defs
            .lock()
            .expect("defs lock")
            .insert(def_id.to_string(), def.clone());
        Ok(def)
    }

    /// The compiled graph of a stored version (compiled once, then cached).
    pub(crate) async fn graph(&self, def_id: &str) -> Result<Arc<Graph>, Error> {
        if let Some(g) = self.graphs.lock().expect("graphs lock").get(def_id) {
            return Ok(g.clone());
        }
        let def = self.stored_def(def_id).await?;
        let compiled = self.compile_checked(&def.project_id, &def.bundle).await?;
        let g = Arc::new(compiled.graph);
        self.graphs
            .lock()
            .expect("graphs lock")
            .insert(def_id.to_string(), g.clone());
        Ok(g)
    }

    /// Creates the coordinator of a new run (not yet durable: its first
    /// commit creates the row) and arms its run timeout.
    fn spawn_run(
        self: &Arc<Self>,
        run_id: &str,
        def: &braid_store::StoredDef,
        graph: Arc<Graph>,
        limits: Limits,
        // (parent run, parent token, whether this start replaces a live one)
        parent: Option<(&RunRecord, &str, bool)>,
        snapshot_every: u64,
    ) -> Option<mpsc::UnboundedSender<Msg>> {
        let replace = parent.is_none_or(|(_, _, replace)| replace);
        let record = RunRecord {
            id: run_id.to_string(),
            project_id: def.project_id.clone(),
            workflow_id: def.workflow_id.clone(),
            workflow_name: def.name.clone(),
            def_id: def.def_id.clone(),
            version: def.version,
            status: RunStatus::Running,
            context: Value::Null,
            error: None,
            usage: Value::Null,
            limits: serde_json::to_value(limits).unwrap_or_default(),
            parent_run_id: parent.map(|(p, _, _)| p.id.clone()),
            parent_token_id: parent.map(|(_, t, _)| t.to_string()),
            depth: parent.map(|(p, _, _)| p.depth + 1).unwrap_or(0),
            last_seq: 0,
            created_at: self.clock.now_ms(),
            started_at: None,
            ended_at: None,
        };
        let coordinator = Coordinator {
            inner: self.clone(),
            graph,
            state: RunState::new(run_id),
            record,
            create: true,
            since_snapshot: 0,
            snapshot_every,
            direct: Vec::new(),
            generation: 0,
        };
        let tx = self.spawn_coordinator(run_id, coordinator, replace)?;
        if let Some(ms) = limits.timeout_ms {
            self.arm_timeout(run_id, ms);
        }
        Some(tx)
    }

    /// Starts the child run of a `workflow_call` attempt and tells the parent.
    /// Idempotent: the child's id is derived from (parent, token, attempt).
    /// `after` is the parent's commit that
    /// dispatched it when that may not be durable yet: the child's first
    /// commit is written only with it or after it.
    pub(crate) async fn start_child(
        self: Arc<Self>,
        parent: RunRecord,
        call: ChildCall,
        after: Option<committer::Ticket>,
    ) {
        let wait = call.not_before - self.clock.now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        let fail = |code: &str, message: String| {
            attempt_failed(&call.token, call.attempt, ErrorInfo::new(code, message), 0)
        };
        if let Ok(Some(existing)) = self.store.get_run(&call.child_run_id).await {
            // Started before a restart: re-announce it, and its end if it ended.
            self.send(
                &parent.id,
                Msg::Input(
                    Input::ChildStarted {
                        token: call.token.clone(),
                        attempt: call.attempt,
                        child_run_id: existing.id.clone(),
                        workflow: existing.workflow_name.clone(),
                        version: existing.version,
                    },
                    None,
                ),
            );
            match child_outcome(&existing) {
                Some(outcome) => {
                    self.send(
                        &parent.id,
                        Msg::Input(
                            Input::ChildFinished {
                                token: call.token.clone(),
                                child_run_id: existing.id,
                                outcome,
                            },
                            None,
                        ),
                    );
                }
                None => {
                    // Still running: its bound runs from when it was created.
                    if let Some(ms) = call.timeout_ms {
                        let elapsed = (self.clock.now_ms() - existing.created_at).max(0) as u64;
                        self.arm_child_timeout(&parent.id, &call, ms, ms.saturating_sub(elapsed));
                    }
                }
            }
            return;
        }
        if parent.depth + 1 > MAX_DEPTH {
            let msg = format!(
                "workflow_call of `{}` would nest runs {} deep; the limit is {MAX_DEPTH}: look for unbounded recursion",
                call.workflow,
                parent.depth + 1
            );
            self.send(&parent.id, fail("DEPTH_LIMIT", msg));
            return;
        }
        let resolved = match self
            .store
            .resolve_def(&parent.project_id, &call.workflow, call.version)
            .await
        {
            Ok(Some(id)) => self.stored_def(&id).await.map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e.into()),
        };
        let def = match resolved {
            Ok(Some(d)) => d,
            Ok(None) => {
                let what = match call.version {
                    Some(v) => format!("version {v} of workflow `{}`", call.workflow),
                    None => format!("workflow `{}`", call.workflow),
                };
                self.send(
                    &parent.id,
                    fail(
                        "NOT_FOUND",
                        format!("{what} does not exist in this project"),
                    ),
                );
                return;
            }
            Err(e) => {
                self.send(
                    &parent.id,
                    fail("INTERNAL", format!("loading `{}`: {e}", call.workflow)),
                );
                return;
            }
        };
        let graph = match self.graph(&def.def_id).await {
            Ok(g) => g,
            Err(e) => {
                self.send(
                    &parent.id,
                    fail(
                        "INVALID_DEFINITION",
                        format!("workflow `{}` v{}: {e}", def.name, def.version),
                    ),
                );
                return;
            }
        };
        let every = self.snapshot_every(&def.project_id).await;
        // The parent learns of the child before the child can end, so the
        // child's "finished" always finds the parent waiting for it.
        let announced = self.send(
            &parent.id,
            Msg::Input(
                Input::ChildStarted {
                    token: call.token.clone(),
                    attempt: call.attempt,
                    child_run_id: call.child_run_id.clone(),
                    workflow: def.name.clone(),
                    version: def.version,
                },
                None,
            ),
        );
        if !announced {
            return; // the parent is gone: nobody waits for this child
        }
        let limits = graph.limits;
        let Some(tx) = self.spawn_run(
            &call.child_run_id,
            &def,
            graph,
            limits,
            Some((&parent, &call.token, after.is_none())),
            every,
        ) else {
            return; // already live here, started again after a reload
        };
        let start = Input::Start {
            input: call.input.clone(),
            limits,
            artifacts: call.artifacts.clone(),
        };
        let _ = tx.send(match after {
            Some(ticket) => Msg::After(start, ticket),
            None => Msg::Input(start, None),
        });
        if let Some(ms) = call.timeout_ms {
            self.arm_child_timeout(&parent.id, &call, ms, ms);
        }
    }

    /// The node's `timeout_ms` bounds its child: after `left_ms` the attempt
    /// fails with TIMEOUT (retryable) and the child is cancelled.
    fn arm_child_timeout(
        self: &Arc<Self>,
        parent_id: &str,
        call: &ChildCall,
        ms: u64,
        left_ms: u64,
    ) {
        let inner = Arc::downgrade(self);
        let (parent_id, token, attempt) = (parent_id.to_string(), call.token.clone(), call.attempt);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(left_ms)).await;
            if let Some(inner) = inner.upgrade() {
                let mut error = ErrorInfo::new(
                    "TIMEOUT",
                    format!(
                        "the child run exceeded the node's timeout of {ms} ms and was cancelled"
                    ),
                );
                error.retryable = true;
                inner.send(&parent_id, attempt_failed(&token, attempt, error, ms));
            }
        });
    }

    /// The project's `snapshot_every_events` (cached), else the engine default.
    pub(crate) async fn snapshot_every(&self, project_id: &str) -> u64 {
        if let Some(n) = self.settings.lock().expect("settings lock").get(project_id) {
            return *n;
        }
        let n = match self.store.project_settings(project_id).await {
            Ok(s) => s.snapshot_every_events.unwrap_or(self.snapshot_default),
            Err(_) => self.snapshot_default,
        };
        self.settings
            .lock()
            .expect("settings lock")
            .insert(project_id.to_string(), n);
        n
    }

    /// Asks a live run to cancel itself (no wait).
    pub(crate) fn cancel_run(&self, run_id: &str, reason: &str) {
        self.send(
            run_id,
            Msg::Input(
                Input::Cancel {
                    reason: reason.to_string(),
                },
                None,
            ),
        );
    }

    /// Spawns the coordinator of `run_id`. With `replace` false, a run
    /// already live here keeps its coordinator and nothing is spawned
    /// (`None`): a child started before its parent's dispatch was durable
    /// never displaces the start issued after the parent reloaded.
    fn spawn_coordinator(
        self: &Arc<Self>,
        run_id: &str,
        mut c: Coordinator,
        replace: bool,
    ) -> Option<mpsc::UnboundedSender<Msg>> {
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut runs = self.runs.lock().expect("runs lock");
            if !replace && runs.contains_key(run_id) {
                return None;
            }
            c.generation = self
                .generations
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            runs.insert(run_id.to_string(), (c.generation, tx.clone()));
        }
        tokio::spawn(c.run(rx));
        Some(tx)
    }

    fn arm_timeout(self: &Arc<Self>, run_id: &str, ms: u64) {
        let inner = Arc::downgrade(self);
        let run_id = run_id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            if let Some(inner) = inner.upgrade() {
                inner.send(&run_id, Msg::Input(Input::RunTimeout, None));
            }
        });
    }

    /// Delivers a message to a live run's coordinator; false if the run is not live here.
    pub(crate) fn send(&self, run_id: &str, msg: Msg) -> bool {
        let tx = self
            .runs
            .lock()
            .expect("runs lock")
            .get(run_id)
            .map(|(_, tx)| tx.clone());
        tx.is_some_and(|tx| tx.send(msg).is_ok())
    }

    /// Removes the live entry of `run_id` if it is still that of the
    /// coordinator `generation` (another start may have replaced it).
    pub(crate) fn forget_run(&self, run_id: &str, generation: u64) {
        let mut runs = self.runs.lock().expect("runs lock");
        if runs.get(run_id).is_some_and(|(g, _)| *g == generation) {
            runs.remove(run_id);
        }
    }

    pub(crate) fn run_ended(&self, run_id: &str, generation: u64) {
        self.forget_run(run_id, generation);
        if let Some(ws) = self.waiters.lock().expect("waiters lock").remove(run_id) {
            for w in ws {
                let _ = w.send(());
            }
        }
    }

    pub(crate) fn has_subscribers(&self) -> bool {
        self.events.receiver_count() > 0
    }

    pub(crate) fn publish(&self, run_id: &str, events: &[Event]) {
        if !events.is_empty() && self.events.receiver_count() > 0 {
            let _ = self.events.send(Published {
                run_id: run_id.to_string(),
                events: Arc::new(events.to_vec()),
            });
        }
    }
}

/// Stored rows that do not decode are reported like a validation failure (422).
fn bad_definition(e: braid_store::Error) -> Error {
    match e {
        braid_store::Error::BadDefinition(message) => {
            Error::InvalidDefinition(vec![DefinitionError {
                kind: "workflow".into(),
                ref_: String::new(),
                field: String::new(),
                message,
            }])
        }
        other => Error::Store(other),
    }
}

/// Nesting limit of `workflow_call`.
pub const MAX_DEPTH: i64 = 32;

/// How an ended run ended, as its parent sees it; `None` while it runs.
/// The failure of a `workflow_call` attempt, as the parent applies it.
fn attempt_failed(token: &str, attempt: u32, error: ErrorInfo, duration_ms: u64) -> Msg {
    Msg::Input(
        Input::TaskResult {
            token: token.to_string(),
            attempt,
            outcome: Outcome::Failure {
                error,
                retry_after_ms: None,
                duration_ms,
            },
        },
        None,
    )
}

pub(crate) fn child_outcome(r: &RunRecord) -> Option<ChildOutcome> {
    match r.status {
        RunStatus::Running => None,
        RunStatus::Completed => Some(ChildOutcome::Completed(r.context["output"].clone())),
        RunStatus::Failed => Some(ChildOutcome::Failed(
            r.error
                .clone()
                .and_then(|e| serde_json::from_value(e).ok())
                .unwrap_or_else(|| ErrorInfo::new("INTERNAL", "the child run failed")),
        )),
        RunStatus::Cancelled => Some(ChildOutcome::Cancelled(
            "the child run was cancelled".into(),
        )),
    }
}

/// Checks of model profiles that need the provider layer: the `scripted`
/// script's shape and the types of `parameters`.
fn check_profiles(bundle: &Bundle) -> Vec<DefinitionError> {
    let mut errors = Vec::new();
    let mut err = |r: &str, field: &str, message: String| {
        errors.push(DefinitionError {
            kind: "model_profile".into(),
            ref_: r.into(),
            field: field.into(),
            message,
        })
    };
    for m in &bundle.model_profiles {
        if m.provider == "scripted"
            && let Some(script) = &m.script
            && let Err(e) = braid_llm::validate_script(script)
        {
            err(&m.ref_, "script", e);
        }
        for key in m.parameters.keys() {
            if !["temperature", "max_tokens", "top_p", "stop"].contains(&key.as_str()) {
                err(
                    &m.ref_,
                    &format!("parameters.{key}"),
                    format!(
                        "unknown parameter `{key}`: use temperature, max_tokens, top_p or stop"
                    ),
                );
            }
        }
        if let Err(e) =
            serde_json::from_value::<braid_llm::Parameters>(Value::Object(m.parameters.clone()))
        {
            err(&m.ref_, "parameters", format!("invalid parameters: {e}"));
        }
    }
    errors
}

/// One page (up to 1,000) of a run's stored events after `after`, as core
/// events, with results stored out of line put back in place.
pub async fn stored_events(
    store: &dyn Store,
    run_id: &str,
    after: i64,
) -> Result<Vec<Event>, Error> {
    let page = store.events(run_id, after, 1_000).await?;
    let mut out = Vec::with_capacity(page.len());
    for e in page {
        let mut payload = e.payload;
        if e.kind == "node_completed"
            && let Some(id) = payload["result"][coordinator::RESULT_REF].as_str()
        {
            let id = id.to_string();
            payload["result"] = store.result(&id).await?.ok_or_else(|| {
                braid_store::Error::Backend(format!(
                    "event {}#{}: result {id} is missing",
                    run_id, e.seq
                ))
            })?;
        }
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
