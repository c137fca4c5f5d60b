//! The messages a coordinator receives, from whoever sends them: the
//! engine's API (start, cancel), executors (task results), other runs
//! (a child's start and end), timers (timeouts) and shutdown (barrier).

use crate::committer::Ticket;
use braid_core::event::ErrorInfo;
use braid_core::machine::{ChildOutcome, Input, Outcome};
use braid_store::{RunRecord, RunStatus};
use braid_types::ErrorCode;
use tokio::sync::{mpsc, oneshot};

/// A message to a coordinator.
pub(crate) enum Msg {
    /// Apply an input; reply once its effects are durable.
    Input(Input, Option<oneshot::Sender<()>>),
    /// Apply an input caused by another run's writes in commit `Ticket`,
    /// which may not be durable yet: this run's commit is written only
    /// with it or after it.
    After(Input, Ticket),
    /// Ack of a task whose result this input carries (deleted in the same commit).
    TaskResult { task_id: String, input: Input },
    /// Reply once everything sent before is durable (graceful shutdown).
    Barrier(oneshot::Sender<()>),
    /// Another process owns the run now (scale-out): stop serving it.
    Lost,
}

/// The sending end of a coordinator's inbox.
pub(crate) type Inbox = mpsc::UnboundedSender<Msg>;

/// The failure of a `workflow_call` attempt, as the parent applies it.
pub(crate) fn attempt_failed(token: &str, attempt: u32, error: ErrorInfo, duration_ms: u64) -> Msg {
    Msg::Input(
        Input::TaskResult {
            token: token.to_string(),
            attempt,
            outcome: Outcome::Failure {
                error,
                retry_after_ms: None,
                duration_ms,
                usage: None,
                llm: None,
            },
        },
        None,
    )
}

/// How an ended run ended, as its parent sees it; `None` while it runs.
pub(crate) fn child_outcome(r: &RunRecord) -> Option<ChildOutcome> {
    match r.status {
        RunStatus::Running => None,
        RunStatus::Completed => Some(ChildOutcome::Completed(r.context["output"].clone())),
        RunStatus::Failed => Some(ChildOutcome::Failed(
            r.error
                .clone()
                .and_then(|e| serde_json::from_value(e).ok())
                .unwrap_or_else(|| ErrorInfo::new(ErrorCode::Internal, "the child run failed")),
        )),
        RunStatus::Cancelled => Some(ChildOutcome::Cancelled(
            "the child run was cancelled".into(),
        )),
    }
}
