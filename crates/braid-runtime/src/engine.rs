//! The public [`Engine`] API: the cheap, cloneable handle the server and
//! CLI use to save definitions, start, cancel and await runs, subscribe to
//! their events and shut down.

mod fork;

pub use fork::{ForkChanges, ForkSpec, Forked};

use crate::children;
use crate::cluster;
use crate::committer::Committer;
use crate::coordinator;
use crate::dispatch::Dispatcher;
use crate::error::Error;
use crate::events::Published;
use crate::executor::{self, Executor};
use crate::inbox::Msg;
use crate::options::Options;
use crate::recovery;
use crate::shared::Inner;
use braid_core::definition::{Bundle, Limits};
use braid_core::graph::{DefinitionError, Graph};
use braid_core::machine::Input;
use braid_store::{RunRecord, RunStatus, SaveOutcome, Store};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};

/// The handle to a running engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Starts the committer and executor pool and adopts every live run.
    pub async fn start(store: Arc<dyn Store>, opts: Options) -> Result<Engine, Error> {
        let run_store: Arc<dyn braid_store::RunStore> = store.clone();
        let committer = Committer::start(run_store, opts.metrics);
        let (dispatcher, handed) = Dispatcher::new(&opts);
        let (inner, child_starts) = Inner::new(store, &opts, committer, dispatcher);
        let inner = Arc::new(inner);
        children::spawn_starter(&inner, child_starts);
        if let Some(c) = &opts.cluster {
            // Other processes may be serving the database: adopt only the
            // runs whose owner is gone, and leave every lease alone.
            cluster::join(&inner, c).await?;
        } else {
            if opts.exclusive {
                let released = inner.store.release_all_leases().await?;
                if released > 0 {
                    tracing::info!(released, "released the task leases of a previous process");
                }
            }
            recovery::recover(&inner).await?;
        }
        let http = opts.http.clone().unwrap_or_else(braid_llm::http_client);
        executor::spawn(&inner, Executor::new(&opts, http), handed);
        Ok(Engine { inner })
    }

    /// The store behind the engine (for reads).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Subscribes to the events of all runs as they become durable.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.inner.subscribe()
    }

    /// Validates a bundle against a project and saves it (new version only when changed).
    pub async fn save_definition(
        &self,
        project_id: &str,
        bundle: &Bundle,
    ) -> Result<(SaveOutcome, Vec<DefinitionError>), Error> {
        let definitions = &self.inner.definitions;
        let compiled = definitions.compile_checked(project_id, bundle).await?;
        let now = self.inner.clock.now_ms();
        let outcome = self
            .inner
            .store
            .save_bundle(project_id, bundle, now)
            .await?;
        definitions.remember_graph(&outcome.def_id, compiled.graph);
        Ok((outcome, compiled.warnings))
    }

    /// Validates without saving.
    pub async fn validate(
        &self,
        project_id: &str,
        bundle: &Bundle,
    ) -> Result<Vec<DefinitionError>, Error> {
        let definitions = &self.inner.definitions;
        Ok(definitions
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
        let problems = limits.unwrap_or_default().problems();
        if !problems.is_empty() {
            let errors = problems
                .into_iter()
                .map(|(field, message)| DefinitionError {
                    kind: "run".into(),
                    ref_: workflow.to_string(),
                    field: field.into(),
                    message,
                })
                .collect();
            return Err(Error::InvalidLimits(errors));
        }
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
        let def = self.inner.definitions.stored_def(&def_id).await?;
        let graph = self.inner.definitions.graph(&def_id).await?;
        check_input(&input, &graph, &def.name)?;
        let limits = graph.limits.overridden_by(limits);
        let run_id = self.inner.ids.id("run");
        let every = self.inner.snapshot_every(project_id).await;
        let tx = coordinator::spawn_new_run(
            &self.inner,
            &run_id,
            &def,
            graph,
            limits,
            None,
            every,
            None,
        )
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

    /// Cancels a live run and its live child runs. In a cluster, a run
    /// owned by another process is cancelled by its owner: the request is
    /// recorded, and this returns once the run has ended (or after
    /// [`REMOTE_CANCEL_WAIT`] with the request still standing).
    pub async fn cancel(&self, run_id: &str, reason: &str) -> Result<(), Error> {
        if let Some(tx) = self.inner.inbox(run_id) {
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
        if let Some(c) = &self.inner.cluster
            && c.store.request_cancel(run_id, reason).await?
        {
            self.wait(run_id, REMOTE_CANCEL_WAIT).await?;
            return Ok(());
        }
        match self.inner.store.get_run(run_id).await? {
            None => Err(Error::NotFound(format!("run `{run_id}` does not exist"))),
            Some(r) if r.status != RunStatus::Running => Err(Error::RunEnded(run_id.into())),
            Some(_) => Err(Error::ShuttingDown),
        }
    }

    /// Waits until a run has ended or `timeout` passes; returns the run record
    /// (whatever its status) or `None` if it does not exist. In a cluster
    /// the run may end in another process: its commits wake this wait, and
    /// the database is read again every heartbeat in case a wake-up was lost.
    pub async fn wait(&self, run_id: &str, timeout: Duration) -> Result<Option<RunRecord>, Error> {
        // Real time: `timeout` bounds the caller's wait (a long poll), not
        // anything in the run.
        let deadline = tokio::time::Instant::now() + timeout;
        let poll = self.cluster_poll();
        let mut ended = self.inner.wait_for_end(run_id);
        loop {
            let Some(r) = self.inner.store.get_run(run_id).await? else {
                return Ok(None);
            };
            let now = tokio::time::Instant::now();
            if r.status != RunStatus::Running || now >= deadline {
                return Ok(Some(r));
            }
            let step = match poll {
                Some(p) => p.min(deadline - now),
                None => deadline - now,
            };
            // A receiver that has answered cannot be polled again: the next
            // read shows the end; a new one only matters if it did not.
            if tokio::time::timeout(step, &mut ended).await.is_ok() {
                ended = self.inner.wait_for_end(run_id);
            }
        }
    }

    /// In a cluster, how often a reader of another process's run looks at
    /// the database when no wake-up came (`None`: this process serves the
    /// database alone, so every change is seen as it is committed).
    pub fn cluster_poll(&self) -> Option<Duration> {
        self.inner
            .cluster
            .as_ref()
            .map(|c| Duration::from_millis(c.heartbeat_ms.max(1)))
    }

    /// Stops claiming new tasks and waits up to `deadline` for in-flight
    /// attempts, then for the commits of what they returned. In a cluster it
    /// does not wait for attempts: it commits what is done and gives its
    /// runs up at once, for the other processes to adopt (their attempts in
    /// flight here run again there).
    pub async fn shutdown(&self, deadline: Duration) {
        let clustered = self.inner.cluster.is_some();
        let attempts = if clustered { Duration::ZERO } else { deadline };
        // Real time: the grace period bounds how long the process takes to stop.
        let end = tokio::time::Instant::now() + deadline;
        self.inner.dispatcher.drain(attempts).await;
        // Every result handed to a coordinator is committed before we return.
        let mut pending = Vec::new();
        for tx in self.inner.inboxes() {
            let (reply, done) = oneshot::channel();
            if tx.send(Msg::Barrier(reply)).is_ok() {
                pending.push(done);
            }
        }
        let _ = tokio::time::timeout_at(end, futures::future::join_all(pending)).await;
        if let Some(c) = &self.inner.cluster {
            cluster::leave(c).await;
        }
    }
}

/// How long a cancel of another process's run waits for the run to end.
const REMOTE_CANCEL_WAIT: Duration = Duration::from_secs(30);

/// The input must be an object and match the workflow's `input_schema`.
fn check_input(input: &Value, graph: &Graph, workflow: &str) -> Result<(), Error> {
    if !input.is_object() {
        return Err(Error::InputSchema {
            message: "`input` must be a JSON object".into(),
            errors: vec![serde_json::json!({ "path": "", "message": "expected an object" })],
        });
    }
    if let Some(schema) = &graph.input_schema
        && let Err(v) = schema.validate(input)
    {
        return Err(Error::InputSchema {
            message: format!("the input does not match the input_schema of `{workflow}`"),
            errors: v
                .into_iter()
                .map(|v| serde_json::json!({ "path": v.path, "message": v.message }))
                .collect(),
        });
    }
    Ok(())
}
