//! One coordinator per live run: the single writer of that run's state.
//!
//! It feeds inputs to the pure core, persists the resulting events with the
//! state change (and the tasks they dispatch) through the group committer,
//! and only then acts on the commands: tasks go to executors through the
//! [`crate::dispatch::Dispatcher`], child starts through
//! [`crate::shared::Inner::start_child`]. Everything it is told arrives in
//! its inbox ([`crate::inbox::Msg`]).

mod writes;

use crate::clock::deadline_after;
use crate::committer::{CommitError, Committer, Ticket};
use crate::dispatch::TaskEnvelope;
use crate::events::load_state;
use crate::inbox::{Inbox, Msg, child_outcome};
use crate::shared::Inner;
use crate::telemetry::RunTelemetry;
use braid_core::definition::Limits;
use braid_core::event::Event;
use braid_core::graph::Graph;
use braid_core::machine::{self, Command, Input};
use braid_core::state::RunState;
use braid_store::{ForkedFrom, NewEvent, RunRecord, RunStatus, StoredDef, TaskRecord, WriteOp};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

/// How long the start of a retry attempt waits for company before it is
/// committed alone. Real time, not the engine's clock: it trades commit
/// latency for fewer fsyncs and means nothing to the run.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// Retry delays up to this are waited by a reserved worker instead of the claim loop.
const DIRECT_DELAY_MS: i64 = 2_000;

pub(crate) struct Coordinator {
    inner: Arc<Inner>,
    graph: Arc<Graph>,
    state: RunState,
    record: RunRecord,
    /// Set for a run that is not in the database yet.
    create: bool,
    /// Events written since the last snapshot.
    since_snapshot: u64,
    /// The project's `snapshot_every_events`.
    snapshot_every: u64,
    /// Tasks of the current batch handed to workers after the commit.
    direct: Vec<(TaskRecord, OwnedSemaphorePermit)>,
    /// This coordinator's entry in the live runs (set when spawned).
    generation: u64,
    /// Metrics and spans of the run's committed events (`None`: neither).
    telemetry: Option<RunTelemetry>,
    /// A forked run's copied events, at the head of its first batch: they
    /// are the new run's events, but their attempts were the source run's,
    /// so metrics and spans leave them out.
    copied: usize,
}

/// The parent of a child run being started: (parent run, parent token,
/// whether this start replaces a coordinator already live here).
pub(crate) type ParentLink<'a> = (&'a RunRecord, &'a str, bool);

/// Creates the coordinator of a new run (not yet durable: its first commit
/// creates the row) and arms its run timeout. `None` when a start that does
/// not replace finds the run already live here. `fork`: where a forked
/// run's history came from, and how many events were copied.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn_new_run(
    inner: &Arc<Inner>,
    run_id: &str,
    def: &StoredDef,
    graph: Arc<Graph>,
    limits: Limits,
    parent: Option<ParentLink<'_>>,
    snapshot_every: u64,
    fork: Option<(ForkedFrom, usize)>,
) -> Option<Inbox> {
    let replace = parent.is_none_or(|(_, _, replace)| replace);
    let now = inner.clock.now_ms();
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
        created_at: now,
        started_at: None,
        ended_at: None,
        owner: inner.server_id().map(str::to_string),
        epoch: if inner.server_id().is_some() { 1 } else { 0 },
        forked_from: fork.as_ref().map(|(from, _)| from.clone()),
    };
    let state = RunState::new(run_id);
    let mut coordinator = Coordinator::new(inner, graph, state, record, true, snapshot_every);
    coordinator.copied = fork.map_or(0, |(_, copied)| copied);
    let inbox = coordinator.spawn(replace)?;
    let parent_id = parent.map(|(p, _, _)| p.id.as_str());
    inner
        .budgets
        .open(run_id, parent_id, &limits, crate::budgets::Seed::default());
    if let Some(ms) = limits.timeout_ms {
        inner.arm_run_timeout(run_id, deadline_after(now, ms));
    }
    Some(inbox)
}

/// Adopts a live run whose state was rebuilt from the database (recovery),
/// replacing any coordinator of it.
pub(crate) fn spawn_adopted(
    inner: &Arc<Inner>,
    record: RunRecord,
    graph: Arc<Graph>,
    state: RunState,
    snapshot_every: u64,
) {
    Coordinator::new(inner, graph, state, record, false, snapshot_every).spawn(true);
}

/// A batch submitted to the committer and not yet durable, with what is
/// done once it is: answers, hand-offs, published events, commands.
struct Flight {
    ticket: Ticket,
    written: oneshot::Receiver<crate::committer::Outcome>,
    replies: Vec<oneshot::Sender<()>>,
    events: Vec<Event>,
    /// The events' rows as written, for live streams (empty without subscribers).
    stored: Vec<NewEvent>,
    commands: Vec<Command>,
    direct: Vec<(TaskRecord, OwnedSemaphorePermit)>,
    /// Tasks acked in this batch (their leases go back if it fails).
    acks: Vec<String>,
    /// The batch's other inputs that nobody would send again (a timeout, a
    /// cancel, a child's start): applied again if the batch fails.
    inputs: Vec<Input>,
    ended: bool,
    wake_executor: bool,
    /// The batch creates the run's row.
    creates: bool,
}

/// Batches of one run written but not yet durable at most. The next batch
/// is computed while the previous ones are written; each depends on the
/// one before, so they become durable in order or not at all.
const MAX_IN_FLIGHT: usize = 4;

/// Events per step of the core: a long chain or a wide fan-out of pure
/// actions reaches the store in slices of about this size, each written
/// while the next is computed.
const STEP_EVENTS: usize = 8192;

/// `to.extend(from)`, moving `from` when `to` is empty (a step can hold
/// thousands of events: no second buffer, no copy).
/// A copy of the event rows among a commit's writes.
fn stored_rows(ops: &[WriteOp]) -> Vec<NewEvent> {
    ops.iter()
        .find_map(|op| match op {
            WriteOp::AppendEvents(rows) => Some(rows.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn append<T>(to: &mut Vec<T>, mut from: Vec<T>) {
    if to.is_empty() {
        *to = from;
    } else {
        to.append(&mut from);
    }
}

/// Waits for the oldest batch in flight (never, when there is none).
async fn oldest(inflight: &mut VecDeque<Flight>) -> crate::committer::Outcome {
    match inflight.front_mut() {
        Some(f) => Committer::done(&mut f.written).await,
        None => std::future::pending().await,
    }
}

impl Coordinator {
    fn new(
        inner: &Arc<Inner>,
        graph: Arc<Graph>,
        state: RunState,
        record: RunRecord,
        create: bool,
        snapshot_every: u64,
    ) -> Coordinator {
        Coordinator {
            inner: inner.clone(),
            graph,
            state,
            record,
            create,
            since_snapshot: 0,
            snapshot_every,
            direct: Vec::new(),
            generation: 0,
            telemetry: RunTelemetry::new(&inner.telemetry, !create),
            copied: 0,
        }
    }

    /// Registers this coordinator as its run's and starts it. With
    /// `replace` false, a run already live here keeps its coordinator and
    /// nothing is spawned (`None`): a child started before its parent's
    /// dispatch was durable never displaces the start issued after the
    /// parent reloaded.
    fn spawn(mut self, replace: bool) -> Option<Inbox> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.generation = self
            .inner
            .register_run(&self.record.id, tx.clone(), replace)?;
        tokio::spawn(self.run(rx));
        Some(tx)
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        if let Some(t) = &mut self.telemetry {
            t.resolve_trace(self.inner.store.as_ref(), &self.record)
                .await;
        }
        let mut batch = Vec::new();
        let mut inflight: VecDeque<Flight> = VecDeque::new();
        // Tokens left pending by a step cut at its budget (also after a recovery).
        let mut more = machine::has_pending(&self.state);
        // No input is taken after the batch that ended the run.
        let mut ending = false;
        let mut closed = false;
        loop {
            let may_apply = !ending && inflight.len() < MAX_IN_FLIGHT;
            if may_apply && (more || !batch.is_empty()) {
                if more {
                    batch.push(Msg::Input(Input::Continue, None));
                }
                while batch.len() < 4096 {
                    match rx.try_recv() {
                        Ok(m) => batch.push(m),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                }
            } else {
                if inflight.is_empty() && (closed || ending) {
                    return;
                }
                tokio::select! {
                    biased;
                    r = oldest(&mut inflight) => {
                        let flight = inflight.pop_front().expect("a batch in flight");
                        match r {
                            Ok(()) => {
                                if self.done(flight) {
                                    return;
                                }
                            }
                            Err(e) => {
                                let Some(again) = self.failed(flight, &mut inflight, &e).await else {
                                    return;
                                };
                                batch.extend(again.into_iter().map(|i| Msg::Input(i, None)));
                                ending = false;
                                more = machine::has_pending(&self.state);
                            }
                        }
                        continue;
                    }
                    n = rx.recv_many(&mut batch, 4096), if may_apply && !closed => {
                        if n == 0 {
                            closed = true;
                            continue;
                        }
                    }
                }
            }
            if batch.iter().any(|m| matches!(m, Msg::Lost)) {
                self.lost(false);
                return;
            }
            let (flight, left) = self.apply(&mut batch, &mut rx, &mut inflight).await;
            more = left;
            let Some(flight) = flight else {
                continue; // nothing changed: nothing to write
            };
            ending = flight.ended;
            inflight.push_back(flight);
            if more {
                // Let the committer take this slice before the next is
                // computed: woken from this task, it would otherwise wait in
                // this worker's slot for the whole burst.
                tokio::task::yield_now().await;
            }
        }
    }

    /// Applies `batch` (and, for a lone retry start, what comes within
    /// [`LINGER`]), submits the writes and returns them in flight (none when
    /// nothing changed: a duplicate or stale input), with whether the core
    /// left tokens pending.
    async fn apply(
        &mut self,
        batch: &mut Vec<Msg>,
        rx: &mut mpsc::UnboundedReceiver<Msg>,
        inflight: &mut VecDeque<Flight>,
    ) -> (Option<Flight>, bool) {
        let mut events: Vec<Event> = Vec::new();
        let mut commands = Vec::new();
        let mut acks = Vec::new();
        let mut replies = Vec::new();
        let mut inputs = Vec::new();
        // This batch is written with or after the one before it.
        let mut after: Vec<Ticket> = inflight.back().map(|f| f.ticket).into_iter().collect();
        let mut more = false;
        let mut now;
        // Only the start of a retry attempt so far: nothing waits for it
        // to be durable (a lost start is redone with its attempt), so it
        // lingers and shares the commit of what comes next, usually the
        // attempt's result, instead of taking an fsync of its own.
        let mut lingering = inflight.is_empty();
        loop {
            now = self.inner.clock.now_ms();
            for msg in batch.drain(..) {
                let input = match msg {
                    Msg::Input(input, reply) => {
                        lingering &= reply.is_none() && matches!(input, Input::TaskStarted { .. });
                        // Whoever waits for a reply is told of a failure and
                        // may try again; the rest would be lost with it.
                        if reply.is_none()
                            && !matches!(input, Input::Start { .. } | Input::Continue)
                        {
                            inputs.push(input.clone());
                        }
                        replies.extend(reply);
                        input
                    }
                    Msg::After(input, ticket) => {
                        lingering = false;
                        after.push(ticket);
                        input
                    }
                    Msg::TaskResult { task_id, input } => {
                        lingering = false;
                        acks.push(task_id);
                        input
                    }
                    Msg::Barrier(reply) => {
                        lingering = false;
                        replies.push(reply);
                        continue;
                    }
                    // Taken out before `apply`.
                    Msg::Lost => continue,
                };
                let step =
                    machine::apply_bounded(&mut self.state, &self.graph, input, now, STEP_EVENTS);
                more |= step.more;
                // Usually one input per batch: move its events, do not copy them.
                append(&mut events, step.events);
                append(&mut commands, step.commands);
            }
            if !lingering || !commands.is_empty() {
                break;
            }
            match tokio::time::timeout(LINGER, rx.recv_many(batch, 4096)).await {
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
        if events.is_empty()
            && commands.is_empty()
            && acks.is_empty()
            && replies.is_empty()
            && !self.create
        {
            return (None, more);
        }
        let ended = commands.iter().any(|c| matches!(c, Command::RunEnded));
        // Not in the middle of a burst of pure steps: its slices follow one
        // another at once, and the snapshot comes after the last.
        let snapshot = (self.snapshot_due(&events) && !more).then(|| {
            events.extend(machine::mark_snapshot(&mut self.state, &self.graph, now));
            self.since_snapshot = 0;
            WriteOp::Snapshot {
                run_id: self.record.id.clone(),
                seq: self.state.seq as i64,
                state: serde_json::to_string(&self.state).unwrap_or_default(),
            }
        });
        let creates = self.create;
        let mut ops = self.ops(&events, &commands, now);
        self.create = false;
        let stored = if self.inner.has_subscribers() {
            stored_rows(&ops)
        } else {
            Vec::new()
        };
        if !self.inner.has_subscribers() && self.telemetry.is_none() {
            // Nobody streams or records them: do not hold two copies until the commit.
            events = Vec::new();
        }
        ops.extend(acks.iter().cloned().map(WriteOp::AckTask));
        ops.extend(snapshot);
        if ended {
            ops.push(WriteOp::DropRunTasks(self.record.id.clone()));
        }
        // The claim loop only has work if this commit queued a task no
        // worker took directly, or freed a worker (an ack).
        let wake_executor = ops.iter().any(|o| match o {
            WriteOp::EnqueueTask(t) => t.lease_until.is_none(),
            WriteOp::AckTask(_) => true,
            _ => false,
        });
        let (ticket, written) = self.inner.committer.submit(ops, after);
        // What only needs this commit to be written first, not to be
        // durable yet, goes now: children start (their first commit
        // depends on this one) and a parent learns that its child ended
        // (its commit depends on this one).
        commands.retain(|c| match c {
            Command::StartChild(call) => {
                self.inner
                    .start_child(self.record.clone(), call.clone(), Some(ticket));
                false
            }
            _ => true,
        });
        if ended {
            self.notify_parent(ticket);
        }
        let flight = Flight {
            ticket,
            written,
            replies,
            events,
            stored,
            commands,
            direct: std::mem::take(&mut self.direct),
            acks,
            inputs,
            ended,
            wake_executor,
            creates,
        };
        (Some(flight), more)
    }

    /// A batch is durable: act on it. True when the run has ended.
    fn done(&mut self, flight: Flight) -> bool {
        for (task, permit) in flight.direct {
            self.inner.dispatcher.hand_over(task, permit);
        }
        for r in flight.replies {
            let _ = r.send(());
        }
        if let Some(t) = &mut self.telemetry {
            let copied = std::mem::take(&mut self.copied).min(flight.events.len());
            let own = &flight.events[copied..];
            t.committed(&self.record, &self.graph, &self.state, own);
            if flight.ended {
                t.finished(&self.record);
            }
        }
        // Moved, not cloned: a live client must not cost a copy of every event.
        self.inner
            .publish(&self.record.id, flight.events, flight.stored);
        for c in flight.commands {
            match c {
                Command::Dispatch(_) => {} // queued in the commit; executors notified below
                Command::CancelTasks(tokens) => {
                    // Their task rows were deleted in the commit.
                    self.inner.dispatcher.cancel(&self.record.id, &tokens);
                }
                Command::StartChild(_) => {} // started when the batch was submitted
                Command::CancelRuns(runs) => {
                    for r in runs {
                        self.inner
                            .cancel_run(&r, "its parent run no longer waits for it");
                    }
                }
                Command::RunEnded => {}
            }
        }
        if flight.wake_executor {
            self.inner.dispatcher.notify();
        }
        if flight.ended {
            // The parent was told when this end was submitted; should that
            // message have been lost with a failed batch of the parent, this
            // one (a duplicate otherwise, a no-op) still reaches it.
            self.notify_parent_durable();
            self.inner.run_ended(&self.record.id, self.generation);
        }
        flight.ended
    }

    /// A batch was not written: neither it nor any batch after it (they
    /// depend on it) is durable, and nobody was answered; handed-over
    /// tasks were not inserted (their slots go back). Goes on from what is
    /// durable: later messages still reach this coordinator, and the
    /// results of these batches are delivered again; their other plain
    /// inputs are returned, to be applied again to the reloaded state
    /// (inputs that depended on another run's commit are sent again by that
    /// run). `None` when the run was never created (the coordinator stops).
    async fn failed(
        &mut self,
        flight: Flight,
        inflight: &mut VecDeque<Flight>,
        error: &CommitError,
    ) -> Option<Vec<Input>> {
        match error {
            CommitError::Fenced(run) if *run == self.record.id => {
                self.lost(true);
                return None;
            }
            // Another run of the transaction was fenced: this process may
            // have lost this one too (adopted together). Reloading it would
            // hand the new owner's tasks back; ask first.
            CommitError::Fenced(_) if self.owned_elsewhere().await => {
                self.lost(false);
                return None;
            }
            _ => {}
        }
        let mut unapplied = flight.acks;
        let mut again = flight.inputs;
        let mut never_created = flight.creates;
        for f in inflight.drain(..) {
            unapplied.extend(f.acks);
            again.extend(f.inputs);
            never_created |= f.creates;
        }
        if never_created {
            tracing::error!(run = %self.record.id, error = %error, "commit failed; the run was not created");
            self.inner.forget_run(&self.record.id, self.generation);
            return None;
        }
        match error {
            // Another run of the same transaction was fenced: nothing is
            // wrong with this one.
            CommitError::Fenced(_) => {
                tracing::info!(run = %self.record.id, error = %error, "commit refused with another run's; reloading the run from the database")
            }
            CommitError::Failed(_) => {
                tracing::error!(run = %self.record.id, error = %error, "commit failed; reloading the run from the database")
            }
        }
        self.reload(&unapplied).await;
        Some(again)
    }

    /// Another process adopted this run (its commit was fenced): this
    /// process stops writing it and running its attempts. Whoever waits
    /// for its end here is answered from the database by the new owner's
    /// commits.
    /// `fenced`: learnt from this run's own refused commit (counted in
    /// `braid_commits_fenced_total`).
    fn lost(&mut self, fenced: bool) {
        tracing::warn!(run = %self.record.id, epoch = self.record.epoch,
            "another process owns this run now; dropping it here");
        if fenced {
            crate::telemetry::commit_fenced(self.inner.telemetry.metrics);
        }
        if let Some(t) = &self.telemetry {
            t.dropped(&self.record);
        }
        self.inner.forget_run(&self.record.id, self.generation);
        self.inner.dispatcher.cancel_run(&self.record.id);
    }

    /// Whether the database says another process owns this run now (false
    /// when it cannot tell, or outside a cluster).
    async fn owned_elsewhere(&self) -> bool {
        let Some(c) = &self.inner.cluster else {
            return false;
        };
        let ids = [self.record.id.clone()];
        matches!(c.store.lost(&c.server_id, &ids).await, Ok(lost) if !lost.is_empty())
    }

    /// After a failed commit: releases the leases of the tasks whose results
    /// were not applied (so they are delivered again), and rebuilds the
    /// state from the database (snapshot + events), retrying while the store
    /// fails.
    async fn reload(&mut self, unapplied: &[String]) {
        let mut delay = std::time::Duration::from_millis(50);
        loop {
            let loaded = match self.inner.store.renew_leases(unapplied, 0).await {
                Ok(()) => load_state(self.inner.store.as_ref(), &self.record.id, &self.graph)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match loaded {
                Ok(mut state) => {
                    let children = machine::pending_children(
                        &mut state,
                        &self.graph,
                        self.inner.clock.now_ms(),
                    );
                    self.state = state;
                    self.since_snapshot = 0;
                    for call in children {
                        self.inner.start_child(self.record.clone(), call, None);
                    }
                    self.inner.dispatcher.notify();
                    return;
                }
                Err(e) => {
                    tracing::warn!(run = %self.record.id, error = %e, "reloading the run failed; retrying");
                    // Real time: a back-off for a failing store, not run time.
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
    }

    /// Whether to snapshot after this batch. The replay tail stays under
    /// `snapshot_every_events`; a fan-in snapshots early (its merge is the
    /// costly part to replay). Snapshot cost grows with the run's size, so
    /// the interval grows with the token count: snapshots stay amortized
    /// O(1) per event even for 100,000-way fan-outs.
    fn snapshot_due(&mut self, events: &[Event]) -> bool {
        self.since_snapshot += events.len() as u64;
        if self.state.status != Some(braid_core::state::RunStatus::Running) {
            return false;
        }
        let every = self.snapshot_every.max(self.state.tokens.len() as u64 / 2);
        let fan_in = events
            .iter()
            .any(|e| matches!(e.body, braid_core::event::EventBody::FanInCompleted { .. }));
        self.since_snapshot >= every || (fan_in && self.since_snapshot >= every / 2)
    }

    /// A child run tells its parent how it ended (idempotent on the
    /// parent's side), before its own final commit (`ticket`) is durable:
    /// the parent's commit is written only with it or after it. Should that
    /// commit fail, the child reloads, ends again and tells again.
    fn notify_parent(&self, ticket: Ticket) {
        self.tell_parent(|input| Msg::After(input, ticket));
    }

    /// [`Coordinator::notify_parent`] once the end is durable.
    fn notify_parent_durable(&self) {
        self.tell_parent(|input| Msg::Input(input, None));
    }

    fn tell_parent(&self, msg: impl FnOnce(Input) -> Msg) {
        let (Some(parent), Some(token)) =
            (&self.record.parent_run_id, &self.record.parent_token_id)
        else {
            return;
        };
        if let Some(outcome) = child_outcome(&self.record) {
            self.inner.send(
                parent,
                msg(Input::ChildFinished {
                    token: token.clone(),
                    child_run_id: self.record.id.clone(),
                    outcome,
                }),
            );
        }
    }

    /// The writes of a step: the run row, the events, the touched token
    /// rows, and the tasks it dispatches or cancels.
    fn ops(&mut self, events: &[Event], commands: &[Command], now: i64) -> Vec<WriteOp> {
        let mut ops = Vec::with_capacity(4 + commands.len());
        writes::update_run_row(&mut self.record, &self.state);
        ops.push(if self.create {
            WriteOp::CreateRun(self.record.clone())
        } else {
            WriteOp::UpdateRun(self.record.clone())
        });
        let run_id = &self.record.id;
        ops.extend(writes::event_rows(events, run_id, self.inner.ids.as_ref()));
        ops.extend(writes::token_rows(events, &self.state, &self.graph, run_id));
        ops.extend(writes::sibling_set_rows(
            events,
            &self.state,
            &self.graph,
            run_id,
        ));
        for c in commands {
            if let Command::CancelTasks(tokens) = c {
                ops.push(WriteOp::DropTokenTasks {
                    run_id: run_id.clone(),
                    tokens: tokens.clone(),
                });
            }
            if let Command::Dispatch(d) = c {
                let envelope = TaskEnvelope {
                    def_id: self.record.def_id.clone(),
                    project_id: self.record.project_id.clone(),
                    node: d.node.clone(),
                    timeout_ms: d.timeout_ms,
                    max_cost_usd: d.max_cost_usd,
                    payload: d.payload.clone(),
                };
                // A task due now goes straight to a free worker once the
                // commit is durable: it is inserted already leased.
                // A short retry delay is waited in-process on a reserved
                // worker (its lease covers the wait and is renewed); a long
                // one goes through the queue's not-before.
                let permit = (d.not_before <= now + DIRECT_DELAY_MS)
                    .then(|| self.inner.dispatcher.try_reserve())
                    .flatten();
                let task = TaskRecord {
                    id: self.inner.ids.id("task"),
                    run_id: run_id.clone(),
                    token_id: d.token.clone(),
                    attempt: i64::from(d.attempt),
                    payload: serde_json::to_value(&envelope).unwrap_or_default(),
                    not_before: d.not_before.max(now),
                    lease_until: permit
                        .as_ref()
                        .map(|_| d.not_before.max(now) + self.inner.dispatcher.lease_ms()),
                    deliveries: i64::from(permit.is_some()),
                    created_at: now,
                };
                if let Some(p) = permit {
                    self.direct.push((task.clone(), p));
                }
                ops.push(WriteOp::EnqueueTask(task));
            }
        }
        ops
    }
}
