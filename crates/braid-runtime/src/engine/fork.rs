//! [`Engine::fork_run`]: a new run whose history is a copy of another
//! run's up to a fork point, going on live on a target version
//! (docs/lifecycles.md, decision 71).
//!
//! The fork is one commit: the run row (with `forked_from`), the copied
//! events renumbered from 1, `workflow_forked`, the token and sibling-set
//! rows, and the first dispatches, all written by the new run's coordinator
//! as the step of [`Input::Fork`]. A crash before that commit leaves
//! nothing; after it, recovery continues the run like any other. Only the
//! target version may be saved before (as an experiment, once every check
//! has passed), which is harmless on its own and reused by the next
//! identical fork.

use super::Engine;
use crate::coordinator;
use crate::error::Error;
use crate::events::stored_events_from;
use crate::inbox::Msg;
use braid_core::definition::{Bundle, Limits, Syntax};
use braid_core::fork::{self, CutError, ForkPoint};
use braid_core::machine::Input;
use braid_store::{ForkedFrom, StoredDef};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Objects of the target version replaced by a fork: each replaces the one
/// with the same `ref` (JSON objects as in a bundle).
#[derive(Debug, Clone, Default)]
pub struct ForkChanges {
    /// Prompt specs.
    pub prompt_specs: Vec<Value>,
    /// Model profiles.
    pub model_profiles: Vec<Value>,
    /// Actions.
    pub actions: Vec<Value>,
}

impl ForkChanges {
    fn is_empty(&self) -> bool {
        self.prompt_specs.is_empty() && self.model_profiles.is_empty() && self.actions.is_empty()
    }
}

/// What a fork asks for.
#[derive(Debug, Clone)]
pub struct ForkSpec {
    /// Where the copied history ends.
    pub from: ForkPoint,
    /// Objects replaced in the target version.
    pub changes: ForkChanges,
    /// The target version (default: the source run's).
    pub version: Option<i64>,
}

/// A fork that was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forked {
    /// The new run.
    pub run_id: String,
    /// The version it goes on with.
    pub version: i64,
}

impl Engine {
    /// Forks `run_id` (docs/lifecycles.md): returns once the new run is
    /// durable. [`Error::NotFound`] for an unknown run,
    /// [`Error::InvalidRequest`] for a node the source never started, a seq
    /// outside its events, an unknown version or a change that names no
    /// object, [`Error::InvalidDefinition`] when the changed bundle does not
    /// validate, [`Error::ForkIncompatible`] when the target version lacks
    /// what the copied history refers to.
    pub async fn fork_run(&self, run_id: &str, spec: ForkSpec) -> Result<Forked, Error> {
        let inner = &self.inner;
        let source = inner
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("run `{run_id}` does not exist")))?;
        let source_graph = inner.definitions.graph(&source.def_id).await?;
        let base = match spec.version {
            None => inner.definitions.stored_def(&source.def_id).await?,
            Some(v) => Arc::new(
                inner
                    .store
                    .get_def(&source.project_id, &source.workflow_id, Some(v))
                    .await?
                    .ok_or_else(|| Error::InvalidRequest {
                        field: "version".into(),
                        message: format!("workflow `{}` has no version {v}", source.workflow_name),
                    })?,
            ),
        };
        let changed = self.changed_target(&base, &spec.changes).await?;
        let graph = match &changed {
            Some((_, graph)) => graph.clone(),
            None => inner.definitions.graph(&base.def_id).await?,
        };

        let mut history = stored_events_from(inner.store.as_ref(), run_id, 0).await?;
        let count = fork::cut(&history, &spec.from).map_err(|e| Error::InvalidRequest {
            field: match e {
                CutError::UnknownNode(_) => "from.node".into(),
                CutError::SeqOutOfRange { .. } => "from.seq".into(),
            },
            message: e.to_string(),
        })?;
        // A prefix of a run's events is already numbered 1…count, as the
        // new run's own events must be.
        history.truncate(count);
        let copied = history;
        let missing = fork::missing(&copied, &source_graph, &graph);
        if !missing.is_empty() {
            return Err(Error::ForkIncompatible(missing));
        }
        // Only a fork that will be made saves its target.
        let target = match changed {
            None => base,
            Some((bundle, graph)) => {
                let now = inner.clock.now_ms();
                let saved = inner
                    .store
                    .save_experiment(&base.project_id, &bundle, now)
                    .await?;
                inner.definitions.remember_graph(&saved.def_id, graph);
                inner.definitions.stored_def(&saved.def_id).await?
            }
        };
        let graph = inner.definitions.graph(&target.def_id).await?;

        let limits: Limits = serde_json::from_value(source.limits.clone()).unwrap_or(graph.limits);
        let new_id = inner.ids.id("run");
        let every = inner.snapshot_every(&target.project_id).await;
        let from = ForkedFrom {
            run_id: run_id.to_string(),
            seq: count as i64,
        };
        let tx = coordinator::spawn_new_run(
            inner,
            &new_id,
            &target,
            graph,
            limits,
            None,
            every,
            Some((from, count)),
        )
        .ok_or(Error::ShuttingDown)?;
        let (reply, done) = oneshot::channel();
        let input = Input::Fork {
            history: copied,
            from_run_id: run_id.to_string(),
            from_seq: count as u64,
            version: target.version,
        };
        tx.send(Msg::Input(input, Some(reply)))
            .map_err(|_| Error::ShuttingDown)?;
        done.await.map_err(|_| {
            Error::Store(braid_store::Error::Backend(
                "the forked run could not be persisted".into(),
            ))
        })?;
        Ok(Forked {
            run_id: new_id,
            version: target.version,
        })
    }

    /// The changed target of a fork, compiled but not saved: `None`
    /// without changes or when they change nothing (the fork goes on with
    /// `base`).
    async fn changed_target(
        &self,
        base: &StoredDef,
        changes: &ForkChanges,
    ) -> Result<Option<(Bundle, Arc<braid_core::graph::Graph>)>, Error> {
        if changes.is_empty() {
            return Ok(None);
        }
        let bundle = changed_bundle(&base.bundle, changes)?;
        if bundle.canonical() == base.bundle.canonical() {
            return Ok(None);
        }
        let compiled = self
            .inner
            .definitions
            .compile_checked(&base.project_id, &bundle)
            .await?;
        Ok(Some((bundle, Arc::new(compiled.graph))))
    }
}

/// `base` with each changed object replacing the one with its `ref`, read
/// back through the one bundle parser (shape problems are reported like a
/// save's).
fn changed_bundle(base: &Bundle, changes: &ForkChanges) -> Result<Bundle, Error> {
    let mut doc = serde_json::to_value(base).map_err(|e| Error::InvalidRequest {
        field: "changes".into(),
        message: e.to_string(),
    })?;
    for (list, objects) in [
        ("prompt_specs", &changes.prompt_specs),
        ("model_profiles", &changes.model_profiles),
        ("actions", &changes.actions),
    ] {
        for (i, object) in objects.iter().enumerate() {
            let field = format!("changes.{list}[{i}].ref");
            let Some(r) = object.get("ref").and_then(Value::as_str) else {
                return Err(Error::InvalidRequest {
                    field,
                    message: "each changed object is a JSON object with a `ref`".into(),
                });
            };
            let slot = doc[list]
                .as_array_mut()
                .and_then(|items| items.iter_mut().find(|o| o["ref"] == r));
            match slot {
                Some(slot) => *slot = object.clone(),
                None => {
                    return Err(Error::InvalidRequest {
                        field,
                        message: format!(
                            "the target version has no {} `{r}` to replace",
                            list.trim_end_matches('s').replace('_', " ")
                        ),
                    });
                }
            }
        }
    }
    Bundle::parse_as(&doc.to_string(), Syntax::Json).map_err(|e| match e {
        braid_core::definition::ParseError::Shape(problems) => Error::InvalidDefinition(problems),
        braid_core::definition::ParseError::Malformed(m) => Error::InvalidRequest {
            field: "changes".into(),
            message: m,
        },
    })
}
