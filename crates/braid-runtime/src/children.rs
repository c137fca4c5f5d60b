//! Child runs of `workflow_call` nodes: starting them (idempotently, in
//! order with the parent's commit), telling the parent, and bounding them
//! by the node's timeout.
//!
//! Coordinators ask for child starts through the queue in
//! [`crate::shared::Inner::start_child`]; this module consumes it and spawns
//! the child's coordinator, so the coordinator never calls up into it.

use crate::clock::deadline_after;
use crate::coordinator;
use crate::inbox::{Msg, attempt_failed, child_outcome};
use crate::shared::{ChildStart, Inner};
use braid_core::event::ErrorInfo;
use braid_core::machine::{ChildCall, Input};
use braid_store::{RunRecord, StoredDef};
use braid_types::ErrorCode;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Nesting limit of `workflow_call`.
pub const MAX_DEPTH: i64 = 32;

/// Starts every child run queued by a coordinator, each on its own task.
pub(crate) fn spawn_starter(inner: &Arc<Inner>, mut starts: mpsc::UnboundedReceiver<ChildStart>) {
    let weak = Arc::downgrade(inner);
    tokio::spawn(async move {
        while let Some(start) = starts.recv().await {
            let Some(inner) = weak.upgrade() else { return };
            tokio::spawn(start_child(inner, start));
        }
    });
}

/// Starts the child run of a `workflow_call` attempt and tells the parent.
/// Idempotent: the child's id is derived from (parent, token, attempt).
pub(crate) async fn start_child(inner: Arc<Inner>, start: ChildStart) {
    let ChildStart {
        parent,
        call,
        after,
    } = start;
    // A retry's not-before is the engine's time.
    inner
        .clock
        .sleep_until_us(call.not_before.saturating_mul(1000))
        .await;
    if let Ok(Some(existing)) = inner.store.get_run(&call.child_run_id).await {
        announce_existing(&inner, &parent, &call, existing);
        return;
    }
    let fail = |code: ErrorCode, message: String| {
        attempt_failed(&call.token, call.attempt, ErrorInfo::new(code, message), 0)
    };
    if parent.depth + 1 > MAX_DEPTH {
        let msg = format!(
            "workflow_call of `{}` would nest runs {} deep; the limit is {MAX_DEPTH}: look for unbounded recursion",
            call.workflow,
            parent.depth + 1
        );
        inner.send(&parent.id, fail(ErrorCode::DepthLimit, msg));
        return;
    }
    let def = match resolve(&inner, &parent, &call).await {
        Ok(def) => def,
        Err(failure) => {
            inner.send(&parent.id, failure);
            return;
        }
    };
    let graph = match inner.definitions.graph(&def.def_id).await {
        Ok(g) => g,
        Err(e) => {
            let message = format!("workflow `{}` v{}: {e}", def.name, def.version);
            inner.send(&parent.id, fail(ErrorCode::InvalidDefinition, message));
            return;
        }
    };
    let every = inner.snapshot_every(&def.project_id).await;
    // The parent learns of the child before the child can end, so the
    // child's "finished" always finds the parent waiting for it.
    let announced = inner.send(
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
    // A child gets what is left of its parent's budgets as its own.
    let limits = inner.budgets.child_limits(&parent.id, graph.limits);
    let Some(tx) = coordinator::spawn_new_run(
        &inner,
        &call.child_run_id,
        &def,
        graph,
        limits,
        Some((&parent, &call.token, after.is_none())),
        every,
        None,
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
        arm_child_timeout(&inner, &parent.id, &call, ms, ms);
    }
}

/// A child started before a restart: re-announce it, and its end if it ended.
fn announce_existing(
    inner: &Arc<Inner>,
    parent: &RunRecord,
    call: &ChildCall,
    existing: RunRecord,
) {
    inner.send(
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
            inner.send(
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
                let elapsed = (inner.clock.now_ms() - existing.created_at).max(0) as u64;
                arm_child_timeout(inner, &parent.id, call, ms, ms.saturating_sub(elapsed));
            }
        }
    }
}

/// The version a `workflow_call` names, or the failure its parent applies.
async fn resolve(
    inner: &Inner,
    parent: &RunRecord,
    call: &ChildCall,
) -> Result<Arc<StoredDef>, Msg> {
    let fail = |code: ErrorCode, message: String| {
        attempt_failed(&call.token, call.attempt, ErrorInfo::new(code, message), 0)
    };
    let resolved = match inner
        .store
        .resolve_def(&parent.project_id, &call.workflow, call.version)
        .await
    {
        Ok(Some(id)) => inner.definitions.stored_def(&id).await.map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(e.into()),
    };
    match resolved {
        Ok(Some(d)) => Ok(d),
        Ok(None) => {
            let what = match call.version {
                Some(v) => format!("version {v} of workflow `{}`", call.workflow),
                None => format!("workflow `{}`", call.workflow),
            };
            Err(fail(
                ErrorCode::NotFound,
                format!("{what} does not exist in this project"),
            ))
        }
        Err(e) => Err(fail(
            ErrorCode::Internal,
            format!("loading `{}`: {e}", call.workflow),
        )),
    }
}

/// The node's `timeout_ms` bounds its child: after `left_ms` on the
/// engine's clock the attempt fails with TIMEOUT (retryable) and the child
/// is cancelled.
fn arm_child_timeout(inner: &Arc<Inner>, parent_id: &str, call: &ChildCall, ms: u64, left_ms: u64) {
    let weak = Arc::downgrade(inner);
    let clock = inner.clock.clone();
    let deadline = deadline_after(clock.now_ms(), left_ms);
    let (parent_id, token, attempt) = (parent_id.to_string(), call.token.clone(), call.attempt);
    tokio::spawn(async move {
        clock.sleep_until_us(deadline.saturating_mul(1000)).await;
        if let Some(inner) = weak.upgrade() {
            let mut error = ErrorInfo::new(
                ErrorCode::Timeout,
                format!("the child run exceeded the node's timeout of {ms} ms and was cancelled"),
            );
            error.retryable = true;
            inner.send(&parent_id, attempt_failed(&token, attempt, error, ms));
        }
    });
}
