//! The state every part of the engine shares ([`Inner`]): the store, the
//! clock and ids, the group committer, the dispatcher, the definitions
//! cache, the provider limits, and the registry of live runs through which any part reaches a
//! run's coordinator.
//!
//! It sits below the coordinator, the executor pool and the child starts,
//! which all import it; it imports none of them. The one request that goes
//! up from a coordinator to the module that spawns coordinators, starting a
//! child run, goes through a queue ([`Inner::start_child`]).

use crate::clock::{Clock, IdGen};
use crate::committer::{Committer, Ticket};
use crate::definitions::Definitions;
use crate::dispatch::Dispatcher;
use crate::events::Published;
use crate::inbox::{Inbox, Msg};
use crate::options::Options;
use crate::telemetry::Telemetry;
use braid_core::event::Event;
use braid_core::machine::{ChildCall, Input};
use braid_store::{NewEvent, RunRecord, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, oneshot};

/// A child run to start for a `workflow_call` attempt of `parent`. `after`
/// is the parent's commit that dispatched it when that may not be durable
/// yet: the child's first commit is written only with it or after it.
pub(crate) struct ChildStart {
    pub(crate) parent: RunRecord,
    pub(crate) call: ChildCall,
    pub(crate) after: Option<Ticket>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdGen>,
    pub(crate) committer: Committer,
    pub(crate) dispatcher: Dispatcher,
    pub(crate) definitions: Definitions,
    /// Live runs: run id → (the coordinator's generation, its inbox).
    runs: Mutex<HashMap<String, (u64, Inbox)>>,
    /// The next coordinator generation.
    generations: AtomicU64,
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>,
    events: broadcast::Sender<Published>,
    /// Projects' `snapshot_every_events`, read once.
    settings: Mutex<HashMap<String, u64>>,
    snapshot_default: u64,
    child_starts: mpsc::UnboundedSender<ChildStart>,
    /// What is recorded of runs (metrics, traces).
    pub(crate) telemetry: Telemetry,
    /// Set when this process is one of a cluster.
    pub(crate) cluster: Option<crate::options::ClusterOptions>,
    /// Provider limits by endpoint, shared by every run and version; the
    /// cluster's heartbeat tells them how many processes share each limit.
    pub(crate) limits: crate::limits::Limits,
    /// What each live run tree's LLM calls have spent, against its budgets.
    pub(crate) budgets: crate::budgets::Budgets,
}

impl Inner {
    /// The shared state, and the receiving end of the child-start queue.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        opts: &Options,
        committer: Committer,
        dispatcher: Dispatcher,
    ) -> (Inner, mpsc::UnboundedReceiver<ChildStart>) {
        let (events, _) = broadcast::channel(1024);
        let (child_starts, starts) = mpsc::unbounded_channel();
        let inner = Inner {
            definitions: Definitions::new(store.clone()),
            store,
            clock: opts.clock.clone(),
            ids: opts.ids.clone(),
            committer,
            dispatcher,
            runs: Mutex::new(HashMap::new()),
            generations: AtomicU64::new(1),
            waiters: Mutex::new(HashMap::new()),
            events,
            settings: Mutex::new(HashMap::new()),
            snapshot_default: opts.snapshot_every_events.max(1),
            child_starts,
            telemetry: Telemetry {
                metrics: opts.metrics,
                traces: opts.traces.clone(),
            },
            cluster: opts.cluster.clone(),
            limits: crate::limits::Limits::new(opts.endpoint_limits.clone()),
            budgets: crate::budgets::Budgets::default(),
        };
        (inner, starts)
    }

    /// This process's id when it is one of a cluster: it owns the runs it
    /// creates.
    pub(crate) fn server_id(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.server_id.as_str())
    }

    /// The ids of the runs live here.
    pub(crate) fn live_run_ids(&self) -> Vec<String> {
        self.runs
            .lock()
            .expect("runs lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Stops serving a run another process owns now: its coordinator
    /// forgets it and aborts its attempts in flight.
    pub(crate) fn drop_run(&self, run_id: &str) {
        if !self.send(run_id, Msg::Lost) {
            self.dispatcher.cancel_run(run_id);
        }
    }

    /// Runs committed by another process: live streams of them are woken,
    /// and whoever waits here for one of them to end checks the database.
    pub(crate) fn remote_progress(self: &Arc<Self>, run_ids: Vec<String>) {
        let mut waited = Vec::new();
        {
            let waiters = self.waiters.lock().expect("waiters lock");
            let runs = self.runs.lock().expect("runs lock");
            for id in run_ids {
                if runs.contains_key(&id) {
                    continue; // its own commits wake its watchers
                }
                if waiters.contains_key(&id) {
                    waited.push(id.clone());
                }
                if self.events.receiver_count() > 0 {
                    let _ = self.events.send(Published::wake(id));
                }
            }
        }
        if waited.is_empty() {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            for id in waited {
                if let Ok(Some(r)) = inner.store.get_run(&id).await
                    && r.status != braid_store::RunStatus::Running
                {
                    inner.wake_waiters(&id);
                }
            }
        });
    }

    /// Wake-ups may have been missed: every waiter checks the database, and
    /// every live stream reads it.
    pub(crate) fn remote_progress_all(self: &Arc<Self>) {
        let waited: Vec<String> = self
            .waiters
            .lock()
            .expect("waiters lock")
            .keys()
            .cloned()
            .collect();
        self.remote_progress(waited);
    }

    /// Answers whoever waits for `run_id` to end.
    pub(crate) fn wake_waiters(&self, run_id: &str) {
        if let Some(ws) = self.waiters.lock().expect("waiters lock").remove(run_id) {
            for w in ws {
                let _ = w.send(());
            }
        }
    }

    /// Registers the inbox of a new coordinator of `run_id` and returns its
    /// generation. With `replace` false, a run already live here keeps its
    /// coordinator (`None`).
    pub(crate) fn register_run(&self, run_id: &str, inbox: Inbox, replace: bool) -> Option<u64> {
        let mut runs = self.runs.lock().expect("runs lock");
        if !replace && runs.contains_key(run_id) {
            return None;
        }
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        runs.insert(run_id.to_string(), (generation, inbox));
        Some(generation)
    }

    /// The inbox of a live run, if it is live here.
    pub(crate) fn inbox(&self, run_id: &str) -> Option<Inbox> {
        self.runs
            .lock()
            .expect("runs lock")
            .get(run_id)
            .map(|(_, tx)| tx.clone())
    }

    /// The inboxes of every live run.
    pub(crate) fn inboxes(&self) -> Vec<Inbox> {
        self.runs
            .lock()
            .expect("runs lock")
            .values()
            .map(|(_, tx)| tx.clone())
            .collect()
    }

    /// Delivers a message to a live run's coordinator; false if the run is not live here.
    pub(crate) fn send(&self, run_id: &str, msg: Msg) -> bool {
        self.inbox(run_id).is_some_and(|tx| tx.send(msg).is_ok())
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

    /// Removes the live entry of `run_id` if it is still that of the
    /// coordinator `generation` (another start may have replaced it).
    pub(crate) fn forget_run(&self, run_id: &str, generation: u64) {
        let mut runs = self.runs.lock().expect("runs lock");
        if runs.get(run_id).is_some_and(|(g, _)| *g == generation) {
            runs.remove(run_id);
            self.budgets.close(run_id);
        }
    }

    /// The run has ended: it is no longer live, and whoever waits for its end is woken.
    pub(crate) fn run_ended(&self, run_id: &str, generation: u64) {
        self.forget_run(run_id, generation);
        self.wake_waiters(run_id);
    }

    /// Woken when `run_id` ends here.
    pub(crate) fn wait_for_end(&self, run_id: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .expect("waiters lock")
            .entry(run_id.to_string())
            .or_default()
            .push(tx);
        rx
    }

    /// Fails the run with its run timeout when the clock reaches `deadline_ms`.
    pub(crate) fn arm_run_timeout(self: &Arc<Self>, run_id: &str, deadline_ms: i64) {
        let inner = Arc::downgrade(self);
        let clock = self.clock.clone();
        let run_id = run_id.to_string();
        tokio::spawn(async move {
            clock.sleep_until_us(deadline_ms.saturating_mul(1000)).await;
            if let Some(inner) = inner.upgrade() {
                inner.send(&run_id, Msg::Input(Input::RunTimeout, None));
            }
        });
    }

    /// Queues the start of a child run (see [`ChildStart`]).
    pub(crate) fn start_child(&self, parent: RunRecord, call: ChildCall, after: Option<Ticket>) {
        // The queue closes only with the engine: nobody waits for the child then.
        let _ = self.child_starts.send(ChildStart {
            parent,
            call,
            after,
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

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.events.subscribe()
    }

    pub(crate) fn has_subscribers(&self) -> bool {
        self.events.receiver_count() > 0
    }

    pub(crate) fn publish(&self, run_id: &str, events: Vec<Event>, stored: Vec<NewEvent>) {
        if !events.is_empty() && self.events.receiver_count() > 0 {
            let _ = self.events.send(Published {
                run_id: run_id.to_string(),
                events: Arc::new(events),
                stored: Arc::new(stored),
            });
        }
    }
}
