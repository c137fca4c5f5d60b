//! The task queue: [`TaskRecord`] and [`TaskQueue`].

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Millis, Result};

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

/// The task queue: claiming, leasing and scheduling the tasks that
/// [`WriteOp::EnqueueTask`](crate::WriteOp::EnqueueTask) inserted.
///
/// Enqueueing and acknowledging are not methods here: they are
/// [`WriteOp`](crate::WriteOp)s, so that they commit in the same transaction
/// as the run's events (see [`RunStore::commit`](crate::RunStore::commit)).
///
/// A task is **due** at `max(not_before, lease_until)` (a missing lease
/// counts as 0): a task never claimed is due at its `not_before`, a claimed
/// one when its lease expires. Delivery is at least once: a task whose
/// executor dies is claimed again when its lease runs out, with
/// `deliveries` counting every claim.
#[async_trait]
pub trait TaskQueue: Send + Sync {
    /// Claims up to `limit` tasks due at `now`, earliest due first (ties by
    /// `created_at`), and returns them ordered by `(not_before, created_at,
    /// id)`. Each claimed task gets `lease_until = now + lease_ms`
    /// (saturating) and `deliveries + 1`, and the returned records show
    /// those new values. Atomic: concurrent callers (in any process) never
    /// claim the same task under the same lease. `limit == 0` claims nothing.
    async fn claim_tasks(&self, now: Millis, lease_ms: i64, limit: u32) -> Result<Vec<TaskRecord>>;
    /// Sets `lease_until` of the given tasks (extending a running task's
    /// lease, or handing a task back at once with a time in the past, e.g.
    /// 0). Ids that no longer exist are skipped; an empty list is a no-op.
    /// Does not check who holds the lease.
    async fn renew_leases(&self, task_ids: &[String], lease_until: Millis) -> Result<()>;
    /// Clears every lease and returns how many tasks had one. Only for a
    /// store served by one process (the embedded SQLite file): at start-up,
    /// leases held by a process that died are void, so its tasks can be
    /// delivered again at once.
    async fn release_all_leases(&self) -> Result<u64>;
    /// The earliest due time of any task, leased or not (so that a task
    /// whose executor died is re-delivered without polling); `None` when the
    /// queue is empty. The executor sleeps until then.
    async fn next_task_due(&self) -> Result<Option<Millis>>;
}
