//! Telemetry (docs/observability.md): the Prometheus metrics of SPEC §10
//! and the OpenTelemetry traces of runs, recorded where the facts are known.
//!
//! - Run, node, error and LLM metrics, and every span, come from the events
//!   a coordinator has **committed** ([`RunTelemetry::committed`], called
//!   when a batch is durable): a counter equals what the database holds, a
//!   batch that fails is never counted, and its replay is.
//! - The committer times its transactions ([`store_committed`]); the
//!   executor reports queue and `max_concurrency` waits ([`TaskQueued`],
//!   [`limiter_waited`]).
//!
//! Metrics go through the `metrics` facade: without a recorder installed
//! (the library, its tests, the bench) every call is a no-op, and with
//! [`crate::Options::metrics`] off the coordinator does not even keep a
//! batch's events for it. Labels never hold a run or token id.

mod spans;

pub use spans::Traces;

use braid_core::event::{Event, EventBody, Millis, Usage};
use braid_core::graph::{CompiledAction, Graph};
use braid_core::state::{self, RunState};
use braid_store::RunRecord;
use metrics::{counter, gauge, histogram};
use std::collections::HashMap;
use std::time::Duration;

/// Run durations: from 10 ms pure chains to hour-long pipelines.
const RUN_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0, 3600.0,
];
/// One attempt or one LLM request: from inline steps to slow completions.
const ATTEMPT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Waiting for a worker or a `max_concurrency` slot.
const WAIT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0,
];
/// One group commit (one fsync).
const COMMIT_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Every histogram and its fixed buckets (seconds). A recorder must be
/// given these (`set_buckets_for_metric`) so they render as histograms.
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[
    ("braid_run_duration_seconds", RUN_BUCKETS),
    ("braid_node_attempt_duration_seconds", ATTEMPT_BUCKETS),
    ("braid_task_queue_wait_seconds", WAIT_BUCKETS),
    ("braid_llm_request_duration_seconds", ATTEMPT_BUCKETS),
    ("braid_llm_limiter_wait_seconds", WAIT_BUCKETS),
    ("braid_store_commit_duration_seconds", COMMIT_BUCKETS),
];

/// What the engine records, from [`crate::Options`].
#[derive(Clone, Default)]
pub(crate) struct Telemetry {
    pub(crate) metrics: bool,
    pub(crate) traces: Option<Traces>,
}

impl Telemetry {
    /// True when committed events are wanted at all.
    pub(crate) fn enabled(&self) -> bool {
        self.metrics || self.traces.is_some()
    }
}

/// The label value of an action kind (`kind` of `braid_node_attempts_total`).
fn kind_name(action: &CompiledAction) -> &'static str {
    match action {
        CompiledAction::UpdateContext(_) => "update_context",
        CompiledAction::LlmCall { .. } => "llm_call",
        CompiledAction::WriteArtifact { .. } => "write_artifact",
        CompiledAction::WorkflowCall { .. } => "workflow_call",
    }
}

fn seconds(ms: i64) -> f64 {
    ms.max(0) as f64 / 1000.0
}

/// One attempt's end as the committed events tell it.
pub(crate) struct AttemptEnd<'a> {
    pub(crate) token: &'a str,
    pub(crate) node: usize,
    pub(crate) attempt: u32,
    pub(crate) started: Millis,
    pub(crate) ended: Millis,
    pub(crate) outcome: &'static str,
    pub(crate) error: Option<&'a braid_core::event::ErrorInfo>,
    pub(crate) usage: Option<&'a Usage>,
}

/// The telemetry of one run, owned by its coordinator.
pub(crate) struct RunTelemetry {
    telemetry: Telemetry,
    /// Token index → (attempt, start) of attempts started and not ended:
    /// a failed attempt's event carries no duration.
    started: HashMap<usize, (u32, Millis)>,
    trace: Option<spans::RunTrace>,
}

impl RunTelemetry {
    /// `None` when nothing is recorded. `adopted`: a run recovered live
    /// (its start was counted by an earlier process).
    pub(crate) fn new(telemetry: &Telemetry, adopted: bool) -> Option<RunTelemetry> {
        if !telemetry.enabled() {
            return None;
        }
        if adopted && telemetry.metrics {
            gauge!("braid_runs_live").increment(1.0);
        }
        Some(RunTelemetry {
            telemetry: telemetry.clone(),
            started: HashMap::new(),
            trace: None,
        })
    }

    /// Finds the run's trace (that of its root run) before its first event.
    pub(crate) async fn resolve_trace(&mut self, store: &dyn braid_store::Store, run: &RunRecord) {
        if let Some(traces) = &self.telemetry.traces {
            self.trace = Some(traces.run_trace(store, run).await);
        }
    }

    /// Records a batch of `run`'s events now durable.
    pub(crate) fn committed(
        &mut self,
        run: &RunRecord,
        graph: &Graph,
        state: &RunState,
        events: &[Event],
    ) {
        let metrics = self.telemetry.metrics;
        // Visits that ended in this batch: (token index, end, failed).
        let mut visits: Vec<(usize, Millis, bool)> = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let token = e.token_id.as_deref();
            let index = token.and_then(state::token_index);
            let node = e.node.as_deref().and_then(|n| graph.index.get(n).copied());
            match &e.body {
                EventBody::WorkflowStarted { .. } if metrics => {
                    counter!("braid_runs_started_total", "workflow" => run.workflow_name.clone())
                        .increment(1);
                    gauge!("braid_runs_live").increment(1.0);
                }
                EventBody::WorkflowCompleted { .. }
                | EventBody::WorkflowFailed { .. }
                | EventBody::WorkflowCancelled { .. } => self.run_ended(run, state, e),
                EventBody::NodeStarted { attempt, .. } => {
                    if let Some(t) = index {
                        self.started.insert(t, (*attempt, e.ts));
                    }
                }
                EventBody::NodeCompleted {
                    attempt,
                    duration_ms,
                    usage,
                    ..
                } => {
                    let fallback = e.ts - *duration_ms as i64;
                    if let (Some(t), Some(n), Some(tk)) = (index, node, token) {
                        let end = self.attempt_end(tk, t, n, *attempt, fallback, e.ts, "completed");
                        self.attempt_ended(
                            run,
                            graph,
                            AttemptEnd {
                                usage: usage.as_ref(),
                                ..end
                            },
                        );
                        visits.push((t, e.ts, false));
                    }
                }
                EventBody::NodeRetrying {
                    attempt,
                    error,
                    usage,
                    ..
                } => {
                    self.error(error);
                    if let (Some(t), Some(n), Some(tk)) = (index, node, token) {
                        let end = self.attempt_end(tk, t, n, *attempt, e.ts, e.ts, "retrying");
                        let end = AttemptEnd {
                            error: Some(error),
                            usage: usage.as_ref(),
                            ..end
                        };
                        self.attempt_ended(run, graph, end);
                    }
                }
                EventBody::NodeFailed {
                    attempt,
                    error,
                    usage,
                } => {
                    self.error(error);
                    let (Some(t), Some(n), Some(tk)) = (index, node, token) else {
                        continue;
                    };
                    // Routing after a success fails the visit, not the
                    // attempt (it completed); a token failed before it
                    // started had no attempt.
                    let routing = events[..i].iter().rev().any(|p| {
                        p.token_id.as_deref() == token
                            && matches!(p.body, EventBody::NodeCompleted { attempt: a, .. } if a == *attempt)
                    });
                    if *attempt > 0 && !routing {
                        let end = self.attempt_end(tk, t, n, *attempt, e.ts, e.ts, "failed");
                        let end = AttemptEnd {
                            error: Some(error),
                            usage: usage.as_ref(),
                            ..end
                        };
                        self.attempt_ended(run, graph, end);
                    }
                    visits.push((t, e.ts, true));
                }
                EventBody::TokenCancelled { .. } | EventBody::TokenMerged { .. } => {
                    if let Some(t) = index {
                        self.started.remove(&t);
                        visits.push((t, e.ts, false));
                    }
                }
                _ => {}
            }
        }
        if let Some(trace) = &self.trace {
            trace.visits(run, graph, state, &mut visits);
        }
    }

    /// The attempt of token `t` that ended at `ended`, with its start as
    /// recorded (else `fallback`: the attempt started before a restart).
    #[allow(clippy::too_many_arguments)]
    fn attempt_end<'a>(
        &mut self,
        token: &'a str,
        t: usize,
        node: usize,
        attempt: u32,
        fallback: Millis,
        ended: Millis,
        outcome: &'static str,
    ) -> AttemptEnd<'a> {
        let started = match self.started.remove(&t) {
            Some((a, ts)) if a == attempt => ts,
            _ => fallback,
        };
        AttemptEnd {
            token,
            node,
            attempt,
            started: started.min(ended),
            ended,
            outcome,
            error: None,
            usage: None,
        }
    }

    fn attempt_ended(&mut self, run: &RunRecord, graph: &Graph, end: AttemptEnd<'_>) {
        let node = &graph.nodes[end.node];
        let profile = match &node.action {
            CompiledAction::LlmCall { model, .. } => graph.model_profiles.get(model),
            _ => None,
        };
        if self.telemetry.metrics {
            let kind = kind_name(&node.action);
            counter!(
                "braid_node_attempts_total",
                "workflow" => run.workflow_name.clone(),
                "node" => node.ref_.clone(),
                "kind" => kind,
                "outcome" => end.outcome,
            )
            .increment(1);
            histogram!("braid_node_attempt_duration_seconds", "kind" => kind)
                .record(seconds(end.ended - end.started));
            // A request reached the provider exactly when the attempt
            // carries usage (`AttemptError::usage`).
            if let (Some(p), Some(usage)) = (profile, end.usage) {
                let code = end.error.map_or("OK", |e| e.code.as_str());
                let (provider, model) = (p.provider.clone(), p.model.clone());
                counter!("braid_llm_requests_total", "provider" => provider.clone(), "model" => model.clone(), "code" => code)
                    .increment(1);
                histogram!("braid_llm_request_duration_seconds", "provider" => provider.clone(), "model" => model.clone())
                    .record(usage.latency_ms as f64 / 1000.0);
                counter!("braid_llm_tokens_total", "provider" => provider.clone(), "model" => model.clone(), "type" => "input")
                    .increment(usage.input_tokens);
                counter!("braid_llm_tokens_total", "provider" => provider.clone(), "model" => model.clone(), "type" => "output")
                    .increment(usage.output_tokens);
                // `metrics` counters count whole units: a fractional sum
                // that only grows is a gauge to it (TYPE gauge on /metrics).
                gauge!("braid_llm_cost_usd_total", "provider" => provider, "model" => model)
                    .increment(usage.cost_usd);
            }
        }
        if let Some(trace) = &self.trace {
            trace.attempt(run, node, profile, &end);
        }
    }

    fn error(&self, error: &braid_core::event::ErrorInfo) {
        if self.telemetry.metrics {
            counter!("braid_errors_total", "code" => error.code.as_str()).increment(1);
        }
    }

    fn run_ended(&mut self, run: &RunRecord, state: &RunState, e: &Event) {
        let status = match &e.body {
            EventBody::WorkflowCompleted { .. } => "completed",
            EventBody::WorkflowFailed { error } => {
                // A node's failure was counted with its node_failed; the
                // run's own errors (RUN_TIMEOUT, OUTPUT_SCHEMA, …) name no node.
                if error.node.is_none() {
                    self.error(error);
                }
                "failed"
            }
            _ => "cancelled",
        };
        let started = state.started_at.unwrap_or(run.created_at);
        if self.telemetry.metrics {
            let workflow = run.workflow_name.clone();
            counter!("braid_runs_ended_total", "workflow" => workflow.clone(), "status" => status)
                .increment(1);
            gauge!("braid_runs_live").decrement(1.0);
            histogram!("braid_run_duration_seconds", "workflow" => workflow, "status" => status)
                .record(seconds(e.ts - started));
        }
        if let Some(trace) = &self.trace {
            trace.run(run, started, e);
        }
    }

    /// The run has ended here: its trace is no longer a parent to look up.
    pub(crate) fn finished(&self, run: &RunRecord) {
        if let Some(traces) = &self.telemetry.traces {
            traces.forget(&run.id);
        }
    }
}

/// A group commit is durable: its duration and the events it wrote.
pub(crate) fn store_committed(metrics: bool, took: Duration, events: usize) {
    if metrics {
        histogram!("braid_store_commit_duration_seconds").record(took.as_secs_f64());
        counter!("braid_events_written_total").increment(events as u64);
    }
}

/// A commit of a run was refused because another process adopted the run.
pub(crate) fn commit_fenced(metrics: bool) {
    if metrics {
        counter!("braid_commits_fenced_total").increment(1);
    }
}

/// This process adopted `n` runs of processes that are gone.
pub(crate) fn runs_adopted(metrics: bool, n: usize) {
    if metrics {
        counter!("braid_runs_adopted_total").increment(n as u64);
    }
}

/// The live processes sharing the database, this one included.
pub(crate) fn servers_live(metrics: bool, n: u64) {
    if metrics {
        gauge!("braid_servers_live").set(n as f64);
    }
}

/// A task an executor holds that has not started yet (its retry delay):
/// counted in `braid_tasks_queued` until [`TaskQueued::started`] or until
/// it is dropped (the attempt was cancelled).
pub(crate) struct TaskQueued {
    metrics: bool,
    counted: bool,
}

impl TaskQueued {
    pub(crate) fn new(metrics: bool) -> TaskQueued {
        if metrics {
            gauge!("braid_tasks_queued").increment(1.0);
        }
        TaskQueued {
            metrics,
            counted: metrics,
        }
    }

    /// The attempt starts, `waited_ms` after it was due.
    pub(crate) fn started(mut self, waited_ms: i64) {
        if self.metrics {
            histogram!("braid_task_queue_wait_seconds").record(seconds(waited_ms));
        }
        self.release();
    }

    fn release(&mut self) {
        if std::mem::take(&mut self.counted) {
            gauge!("braid_tasks_queued").decrement(1.0);
        }
    }
}

impl Drop for TaskQueued {
    fn drop(&mut self) {
        self.release();
    }
}

/// An LLM call waited this long for its model profile's `max_concurrency` slot.
pub(crate) fn limiter_waited(
    metrics: bool,
    profile: &braid_core::definition::ModelProfile,
    took: Duration,
) {
    if metrics {
        histogram!("braid_llm_limiter_wait_seconds", "provider" => profile.provider.clone(), "model" => profile.model.clone())
            .record(took.as_secs_f64());
    }
}
