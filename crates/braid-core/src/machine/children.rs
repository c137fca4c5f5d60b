//! Child runs of `workflow_call`: their ids, how a child's end finishes the
//! calling attempt, and the starts a recovered run still owes.

use super::Machine;
use super::attempts::Work;
use crate::definition::OnChildFailure;
use crate::event::{ErrorInfo, EventBody, Millis};
use crate::graph::CompiledAction;
use crate::graph::Graph;
use crate::protocol::{ChildCall, ChildOutcome};
use crate::state::{RunState, TokenStatus};
use braid_types::ErrorCode;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The child starts a recovered run still owes: `workflow_call` attempts
/// whose child was requested but never reported started (the command was
/// lost with the process), and calls waiting on a child (the runtime checks
/// whether that child ended while nobody listened). Starting a child is
/// idempotent, so re-issuing is always safe.
pub fn pending_children(state: &mut RunState, graph: &Graph, now: Millis) -> Vec<ChildCall> {
    let waiting: Vec<usize> = (0..state.tokens.len())
        .filter(|&token| {
            let t = &state.tokens[token];
            matches!(
                graph.nodes[t.node].action,
                CompiledAction::WorkflowCall { .. }
            ) && matches!(
                t.status,
                TokenStatus::Running | TokenStatus::RetryWait | TokenStatus::WaitingChild
            )
        })
        .collect();
    let m = Machine::new(state, graph, now, usize::MAX);
    let mut calls = Vec::new();
    for token in waiting {
        let t = &m.state.tokens[token];
        let node = m.node(token);
        if let Ok(Work::Child {
            workflow,
            version,
            input,
            artifacts,
        }) = m.resolve_payload(token)
        {
            calls.push(ChildCall {
                token: t.id.clone(),
                attempt: t.attempt,
                child_run_id: t
                    .child
                    .clone()
                    .unwrap_or_else(|| child_run_id(&m.state.run_id, &t.id, t.attempt)),
                workflow,
                version,
                input,
                artifacts,
                timeout_ms: node.timeout_ms,
                // A pending retry keeps its durable delay across a restart.
                not_before: t.not_before.unwrap_or(now).max(now),
            });
        }
    }
    calls
}

/// The id of the child run of a `workflow_call` attempt: derived, so that
/// re-issuing the start after a crash finds the same run.
pub fn child_run_id(run_id: &str, token: &str, attempt: u32) -> String {
    let d = Sha256::digest(format!("{run_id}/{token}/{attempt}").as_bytes());
    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("run_{hex}")
}

impl Machine<'_> {
    /// A child run ended: the node succeeds with its output, or fails
    /// (`propagate`) / succeeds with `result.error` (`catch`).
    pub(super) fn child_finished(
        &mut self,
        token: usize,
        child_run_id: String,
        outcome: ChildOutcome,
    ) {
        let attempt = self.state.tokens[token].attempt;
        let node = self.node(token);
        let CompiledAction::WorkflowCall { on_failure, .. } = &node.action else {
            return;
        };
        let error = match outcome {
            ChildOutcome::Completed(output) => {
                self.emit(
                    Some(token),
                    EventBody::SubworkflowCompleted {
                        child_run_id,
                        output: output.clone(),
                    },
                );
                return self.succeed(token, attempt, output, None, 0);
            }
            ChildOutcome::Failed(e) => e,
            ChildOutcome::Cancelled(reason) => {
                let mut e = ErrorInfo::new(
                    ErrorCode::Cancelled,
                    format!("child run {child_run_id} was cancelled: {reason}"),
                );
                e.retryable = false;
                e
            }
        };
        self.emit(
            Some(token),
            EventBody::SubworkflowFailed {
                child_run_id: child_run_id.clone(),
                error: error.clone(),
            },
        );
        if error.code == ErrorCode::Cancelled {
            let mut e = self.node_error(token, ErrorCode::Cancelled, error.message.clone());
            e.cause = Some(Box::new(error));
            return self.attempt_failed(token, attempt, e, None, None);
        }
        match on_failure {
            OnChildFailure::Catch => {
                let result = json!({ "error": {
                    "workflow_run_id": child_run_id, "code": error.code, "message": error.message,
                } });
                self.succeed(token, attempt, result, None, 0)
            }
            OnChildFailure::Propagate => {
                let mut e = self.node_error(
                    token,
                    ErrorCode::SubworkflowFailed,
                    format!(
                        "node `{}`: child run {child_run_id} failed with {}: {}",
                        node.ref_, error.code, error.message
                    ),
                );
                e.cause = Some(Box::new(error));
                self.attempt_failed(token, attempt, e, None, None)
            }
        }
    }
}
