//! The run state machine: `apply(state, input, now) -> (events, commands)`.
//!
//! Pure: no IO, no clock (the caller passes `now`), no randomness (retry
//! jitter is derived from the run, token and attempt). Decisions are made
//! here and recorded as events; the state changes only by applying those
//! events, so replay equals live execution. Pure actions (`update_context`)
//! run inline; the others become [`Command::Dispatch`] for the runtime.
//!
//! One [`Machine`] handles one input; its jobs live in submodules: `inputs`
//! (what each input does), `attempts` (starting a node, dispatching and
//! finishing attempts, retries), `children` (child runs of
//! `workflow_call`), `routing` (transitions and spawning tokens), `join`
//! (arrivals, firing joins, merging), `ending` (cancellation, failing and
//! completing the run) and `context` (what expressions see, and writes).

mod attempts;
mod children;
mod context;
mod ending;
mod inputs;
mod join;
mod routing;

pub use crate::protocol::{
    ChildCall, ChildOutcome, Command, Dispatch, Input, Outcome, Step, TaskPayload,
};
pub use children::{child_run_id, pending_children};

use crate::definition::{FanIn, Limits};
use crate::event::{ErrorInfo, Event, EventBody, LlmExchange, Millis, Usage};
use crate::graph::{CompiledNode, Graph};
use crate::state::{RunState, RunStatus, TokenStatus};
use braid_types::ErrorCode;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;

/// Applies `input` to `state`. Inputs that do not fit the state (a result
/// for a token that is not waiting for that attempt, anything after the
/// run ended) are ignored: they produce no events.
pub fn apply(state: &mut RunState, graph: &Graph, input: Input, now: Millis) -> Step {
    apply_bounded(state, graph, input, now, usize::MAX)
}

/// [`apply`], but once the step holds `max_events` events it starts no
/// further token: those stay `pending` and [`Step::more`] is set. A chain
/// or fan-out of pure actions then reaches the store in bounded slices
/// that can be written while the next one is computed. Any order of
/// starting ready tokens is a valid execution, so the outcome is the same
/// as one unbounded step.
pub fn apply_bounded(
    state: &mut RunState,
    graph: &Graph,
    input: Input,
    now: Millis,
    max_events: usize,
) -> Step {
    let mut machine = Machine::new(state, graph, now, max_events);
    machine.input(input);
    machine.step
}

/// Whether a running run has tokens waiting to be started: a step stopped
/// at its budget ([`Step::more`]) and [`Input::Continue`] is owed, also
/// after a recovery.
pub fn has_pending(state: &RunState) -> bool {
    state.status == Some(RunStatus::Running)
        && state
            .tokens
            .iter()
            .any(|t| t.status == TokenStatus::Pending)
}

/// One input being applied: the state it changes, and what the step has
/// emitted and queued so far.
struct Machine<'a> {
    /// Changed only through [`RunState::apply_event`], by [`Machine::emit`].
    state: &'a mut RunState,
    graph: &'a Graph,
    now: Millis,
    step: Step,
    /// Tokens to start, by index in `state.tokens`.
    ready: VecDeque<usize>,
    limits: Limits,
    /// Events after which no further token is started in this step.
    budget: usize,
    /// The `llm_request` of the attempt being finished, with its token:
    /// emitted just before that token's outcome event, whichever path
    /// (success, mapping failure, retry, final failure) emits it.
    pending_llm: Option<(usize, Box<LlmExchange>)>,
}

/// Why a node failed, before it is routed.
struct Failure {
    error: ErrorInfo,
    attempt: u32,
    /// What the failing attempt cost (`None` for failures that sent no request).
    usage: Option<Usage>,
}

impl Failure {
    /// A failure that cost nothing: routing, joins, expressions, templates.
    fn unpaid(error: ErrorInfo, attempt: u32) -> Failure {
        Failure {
            error,
            attempt,
            usage: None,
        }
    }
}

impl<'a> Machine<'a> {
    /// A machine that starts no further token once its step holds `max_events` events.
    fn new(state: &'a mut RunState, graph: &'a Graph, now: Millis, max_events: usize) -> Self {
        Machine {
            state,
            graph,
            now,
            step: Step::default(),
            ready: VecDeque::new(),
            limits: graph.limits,
            budget: max_events.max(1),
            pending_llm: None,
        }
    }

    /// Emits an event about `token` (an index in `state.tokens`) and applies it.
    fn emit(&mut self, token: Option<usize>, body: EventBody) {
        if matches!(
            body,
            EventBody::NodeCompleted { .. }
                | EventBody::NodeRetrying { .. }
                | EventBody::NodeFailed { .. }
        ) && let Some(t) = token
            && self.pending_llm.as_ref().is_some_and(|(p, _)| *p == t)
            && let Some((_, exchange)) = self.pending_llm.take()
        {
            self.emit(token, EventBody::LlmRequest(exchange));
        }
        let (token_id, node) = match token {
            Some(token) => {
                let t = &self.state.tokens[token];
                (
                    Some(t.id.clone()),
                    Some(self.graph.nodes[t.node].ref_.clone()),
                )
            }
            None => (None, None),
        };
        self.emit_raw(token_id, node, body);
    }

    fn emit_raw(&mut self, token_id: Option<String>, node: Option<String>, body: EventBody) {
        let e = Event {
            seq: self.state.seq + 1,
            ts: self.now,
            token_id,
            node,
            body,
        };
        self.state.apply_event(self.graph, &e);
        self.step.events.push(e);
    }

    /// Starts ready tokens and fires joins until nothing moves, then ends
    /// the run if no token is live.
    fn run(&mut self) {
        loop {
            while let Some(token) = self.ready.pop_front() {
                if self.state.status != Some(RunStatus::Running) {
                    return;
                }
                if self.step.events.len() >= self.budget {
                    // The rest stays pending in the state until Continue;
                    // sets settled by this step's input fire now.
                    self.check_joins();
                    self.ready.clear();
                    self.step.more = true;
                    return;
                }
                self.start(token);
                self.check_joins();
            }
            self.check_joins();
            if self.ready.is_empty() {
                break;
            }
        }
        if self.state.status == Some(RunStatus::Running) && self.state.live == 0 {
            self.complete();
        }
    }

    fn node(&self, token: usize) -> &'a CompiledNode {
        &self.graph.nodes[self.state.tokens[token].node]
    }

    fn expr_error(&self, token: usize, what: &str, msg: &str) -> ErrorInfo {
        let n = self.node(token);
        let mut e = ErrorInfo::new(
            ErrorCode::Expression,
            format!("node `{}`, {what}: {msg}", n.ref_),
        );
        e.node = Some(n.ref_.clone());
        e.action = Some(n.action_ref.clone());
        e
    }

    fn node_error(&self, token: usize, code: ErrorCode, msg: String) -> ErrorInfo {
        let n = self.node(token);
        let mut e = ErrorInfo::new(code, msg);
        e.node = Some(n.ref_.clone());
        e.action = Some(n.action_ref.clone());
        e
    }
}

/// Records that a snapshot of `state` is being taken: appends (and applies)
/// a `snapshot_created` event covering itself, so the snapshot taken right
/// after includes it. `None` once the run has ended: no event follows the
/// final one.
pub fn mark_snapshot(state: &mut RunState, graph: &Graph, now: Millis) -> Option<Event> {
    if state.status != Some(RunStatus::Running) {
        return None;
    }
    let seq = state.seq + 1;
    let e = Event {
        seq,
        ts: now,
        token_id: None,
        node: None,
        body: EventBody::SnapshotCreated { seq },
    };
    state.apply_event(graph, &e);
    Some(e)
}

fn describe(violations: &[braid_expr::SchemaViolation]) -> String {
    braid_expr::SchemaViolation::describe_all(violations)
}

fn fan_in_name(f: FanIn) -> &'static str {
    match f {
        FanIn::All => "all",
        FanIn::Any => "any",
        FanIn::MOfN { .. } => "m_of_n",
    }
}

fn digest(p: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(p).unwrap_or_default();
    let d = Sha256::digest(&bytes);
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}
