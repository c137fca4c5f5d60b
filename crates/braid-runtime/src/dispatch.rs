//! The hand-off from coordinators to the executor pool, imported by both
//! so neither imports the other.
//!
//! A coordinator queues a task in its commit ([`TaskEnvelope`] is what an
//! executor needs besides the core's payload) and, when a worker slot is
//! free, reserves it and hands the task over directly once the commit is
//! durable ([`Dispatcher::hand_over`]); otherwise it wakes the claim loop.
//! The [`Dispatcher`] also knows which attempts are in flight, so a
//! coordinator can abort the attempts of tokens it cancels.

use crate::options::Options;
use braid_core::machine::TaskPayload;
use braid_store::TaskRecord;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::AbortHandle;

/// What an executor needs besides the core's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TaskEnvelope {
    pub def_id: String,
    pub project_id: String,
    pub node: String,
    pub timeout_ms: Option<u64>,
    /// The node's budget for this visit (`execution.max_cost_usd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    pub payload: TaskPayload,
}

/// A task handed over with the worker slot reserved for it.
pub(crate) type Handed = (TaskRecord, OwnedSemaphorePermit);

/// An attempt in flight: its task (whose lease is renewed) and how to abort it.
struct InFlight {
    task_id: String,
    abort: AbortHandle,
}

/// Worker slots, the direct hand-off queue and the attempts in flight.
pub(crate) struct Dispatcher {
    workers: Arc<Semaphore>,
    capacity: usize,
    lease_ms: i64,
    wake: Arc<Notify>,
    /// Set when the drain starts: attempts that have not begun give up.
    drained: watch::Sender<bool>,
    handed: mpsc::UnboundedSender<Handed>,
    /// (run, token) → the attempt in flight.
    inflight: Mutex<HashMap<(String, String), InFlight>>,
}

impl Dispatcher {
    /// The dispatcher and the receiving end of its hand-off queue (the
    /// executor pool's).
    pub(crate) fn new(opts: &Options) -> (Dispatcher, mpsc::UnboundedReceiver<Handed>) {
        let (handed, receiver) = mpsc::unbounded_channel();
        let dispatcher = Dispatcher {
            workers: Arc::new(Semaphore::new(opts.workers.max(1))),
            capacity: opts.workers.max(1),
            lease_ms: opts.lease_ms,
            wake: Arc::new(Notify::new()),
            drained: watch::Sender::new(false),
            handed,
            inflight: Mutex::new(HashMap::new()),
        };
        (dispatcher, receiver)
    }

    /// A free worker slot, if any, for a task handed over directly by its
    /// coordinator (inserted already leased: no claim round trip).
    pub(crate) fn try_reserve(&self) -> Option<OwnedSemaphorePermit> {
        if self.is_draining() {
            return None;
        }
        self.workers.clone().try_acquire_owned().ok()
    }

    /// Hands a durable task to the executor pool on its reserved slot.
    pub(crate) fn hand_over(&self, task: TaskRecord, permit: OwnedSemaphorePermit) {
        // The pool stops only with the engine; then the slot goes back.
        let _ = self.handed.send((task, permit));
    }

    /// The lease given to a task when it is handed over or claimed.
    pub(crate) fn lease_ms(&self) -> i64 {
        self.lease_ms
    }

    /// New tasks may be claimable.
    pub(crate) fn notify(&self) {
        self.wake.notify_one();
    }

    /// Aborts in-flight attempts of these tokens (the HTTP request is
    /// dropped); their task rows are deleted by the coordinator's commit.
    pub(crate) fn cancel(&self, run_id: &str, tokens: &[String]) {
        let mut map = self.inflight.lock().expect("inflight lock");
        for t in tokens {
            if let Some(f) = map.remove(&(run_id.to_string(), t.clone())) {
                f.abort.abort();
            }
        }
    }

    /// Aborts every in-flight attempt of a run this process no longer owns.
    pub(crate) fn cancel_run(&self, run_id: &str) {
        let mut map = self.inflight.lock().expect("inflight lock");
        map.retain(|(run, _), f| {
            let keep = run != run_id;
            if !keep {
                f.abort.abort();
            }
            keep
        });
    }

    /// Stops claiming and starting attempts and waits up to `deadline` for
    /// those in flight. Real time, not the engine's clock: this bounds how
    /// long a process takes to stop.
    pub(crate) async fn drain(&self, deadline: Duration) {
        self.drained.send_replace(true);
        self.wake.notify_one();
        let end = Instant::now() + deadline;
        while Instant::now() < end && self.workers.available_permits() < self.capacity {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The drain has started: nothing new is claimed or started.
    pub(crate) fn is_draining(&self) -> bool {
        *self.drained.borrow()
    }

    /// Watches for the start of the drain.
    pub(crate) fn drained(&self) -> watch::Receiver<bool> {
        self.drained.subscribe()
    }

    /// Worker slots free now.
    pub(crate) fn free_workers(&self) -> usize {
        self.workers.available_permits()
    }

    /// Waits for a free worker slot (`None` once the pool is closed).
    pub(crate) async fn acquire_worker(&self) -> Option<OwnedSemaphorePermit> {
        self.workers.clone().acquire_owned().await.ok()
    }

    /// Notified when tasks may be claimable.
    pub(crate) fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Records the attempt `start` spawns as in flight for (run, token).
    /// The lock is held across the spawn so a fast attempt cannot forget
    /// its entry before it is recorded.
    pub(crate) fn track(
        &self,
        run_and_token: (String, String),
        task_id: String,
        start: impl FnOnce() -> AbortHandle,
    ) {
        let mut map = self.inflight.lock().expect("inflight lock");
        let abort = start();
        map.insert(run_and_token, InFlight { task_id, abort });
    }

    /// The attempt is no longer in flight (finished or given back).
    pub(crate) fn forget(&self, task: &TaskRecord) {
        self.inflight
            .lock()
            .expect("inflight lock")
            .remove(&(task.run_id.clone(), task.token_id.clone()));
    }

    /// Whether this process already runs `task` (claimed again after its
    /// lease ran out while the attempt was still going, e.g. on a loaded
    /// machine whose renewal came late).
    pub(crate) fn is_running(&self, task: &TaskRecord) -> bool {
        self.inflight
            .lock()
            .expect("inflight lock")
            .get(&(task.run_id.clone(), task.token_id.clone()))
            .is_some_and(|f| f.task_id == task.id)
    }

    /// The tasks of the attempts in flight (their leases are renewed).
    pub(crate) fn inflight_task_ids(&self) -> Vec<String> {
        self.inflight
            .lock()
            .expect("inflight lock")
            .values()
            .map(|f| f.task_id.clone())
            .collect()
    }
}
